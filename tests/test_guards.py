"""Guards: a NaN loss, in training or in validation, stops the run at once and keeps the last good checkpoint,
with advice that fits the run's settings; BatchNorm on tiny batches warns; a OneCycle warmup shorter than one step
is an error."""

from __future__ import annotations

import math
import warnings
from unittest import mock

import lightning as L
import pytest
import torch

from recipe.callbacks import BatchNormCheck, DivergenceGuard
from recipe.callbacks.guards import stability_fixes
from recipe.errors import ConfigError, TrainingDiverged
from train import main, train

QUIET = [
    "trainer.enable_progress_bar=false",
    "trainer.num_sanity_val_steps=0",
    "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=2",
    "~callbacks.progress_bar",
    "~callbacks.model_summary",
    "logger=csv",
    "scheduler=constant",
]


class PoisonAtEpoch(L.Callback):
    """Fills the weights with NaN when ``epoch`` starts, so its first loss is NaN."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            with torch.no_grad():
                for p in pl_module.parameters():
                    p.fill_(math.nan)


class NanInValidation(L.Callback):
    """Makes the net's outputs NaN in the validations from ``epoch`` on, while training stays finite."""

    def __init__(self, epoch: int) -> None:
        self.epoch, self.hook = epoch, None

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch >= self.epoch and not trainer.sanity_checking:
            self.hook = pl_module.net.register_forward_hook(lambda module, args, output: output * math.nan)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.hook is not None:
            self.hook.remove()


def test_nan_loss_stops_at_once_naming_step_and_lr_and_keeps_the_last_good_checkpoint(make_cfg, tmp_path):
    cfg = make_cfg(
        *QUIET,
        "trainer.max_epochs=5",
        "callbacks.last_checkpoint.every_seconds=0",  # last.ckpt at each epoch end and each step the logger writes
        "+callbacks.poison._target_=test_guards.PoisonAtEpoch",
        "+callbacks.poison.epoch=2",
    )
    with pytest.raises(TrainingDiverged) as caught:
        train(cfg)
    message = str(caught.value)
    assert "\n" not in message
    assert "loss=nan at step 8 (epoch 2) with lr=0.001" in message  # 4 steps an epoch: epoch 2 starts at step 8
    assert "optimizer.lr=0.0001 (optimizer.lr / 10)" in message
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert f"the last good checkpoint, {last}, is kept" in message
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 8 and checkpoint["epoch"] == 1  # saved after epoch 1, not at the NaN
    assert all(torch.isfinite(w).all() for w in checkpoint["state_dict"].values())
    assert "**Verdict: diverged** (training diverged: loss=nan at step 8" in (tmp_path / "report.md").read_text()


def test_nan_val_loss_stops_the_run_and_that_epoch_is_never_kept(make_cfg, tmp_path):
    # val/loss as the monitor: Lightning's ModelCheckpoint keeps a NaN as +inf, so without the guard the NaN
    # epoch is skipped as "best" here but still written as last.ckpt, and EarlyStopping ends the run with exit 0
    monitor = ["callbacks.model_checkpoint.monitor=val/loss", "callbacks.model_checkpoint.mode=min"]
    cfg = make_cfg(*QUIET, "trainer.max_epochs=4", "callbacks.last_checkpoint.every_seconds=0", *monitor)
    with pytest.raises(TrainingDiverged) as caught:
        train(cfg, [NanInValidation(epoch=2)])
    message = str(caught.value)
    assert message.startswith("training diverged: val/loss=nan in validation at step 12 (epoch 2)")
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert f"the last good checkpoint, {last}, is kept" in message
    checkpoints = list((tmp_path / "checkpoints").iterdir())
    # nothing from epoch 2's NaN validation on (step 12) is saved: last.ckpt is from the logger's step 9 at the latest
    assert all(torch.load(c, weights_only=True)["global_step"] < 12 for c in checkpoints)
    report = (tmp_path / "report.md").read_text()
    assert "**Verdict: diverged** (training diverged: val/loss=nan" in report
    assert "| 2 |  | nan |" in report  # the NaN validation is in the table


@pytest.mark.parametrize(
    "overrides, proposed, not_proposed",
    [
        # the default run clips at 1.0, warms up and trains in bf16-mixed on CPU: only the LR is left
        ([], ["optimizer.lr=0.0001"], ["gradient_clip_val", "scheduler", "precision"]),
        (
            ["trainer.gradient_clip_val=null", "scheduler=constant", "trainer.precision=32-true"],
            ["optimizer.lr=0.0001", "trainer.gradient_clip_val=1.0", "scheduler.warmup=0.05"],
            ["precision"],
        ),
        (["scheduler=plateau"], ["scheduler=warmup_cosine"], ["gradient_clip_val"]),
    ],
)
def test_divergence_advice_leaves_out_what_the_run_already_does(make_cfg, overrides, proposed, not_proposed):
    cfg = make_cfg(*QUIET[:-1], "trainer.max_epochs=2", *overrides)
    with pytest.raises(TrainingDiverged) as caught:
        train(cfg, [NanInValidation(epoch=0)])
    advice = str(caught.value).split("; try ")[1].split("; ")[0]
    assert all(p in advice for p in proposed) and not any(n in advice for n in not_proposed)


def test_fp16_runs_are_advised_bf16():
    trainer = mock.Mock(gradient_clip_val=1.0, precision="16-mixed")
    module = mock.Mock(lr=mock.Mock(configured=0.1), optimizer_spec=mock.Mock(torch_kwargs={}))
    module.scheduler_spec.name, module.scheduler_spec.options = "warmup_cosine", {"warmup": 0.05}
    assert stability_fixes(trainer, module) == [
        "optimizer.lr=0.01 (optimizer.lr / 10)",
        "trainer.precision=bf16-mixed (fp16 overflows above 65504)",
    ]


def test_divergence_is_one_error_line_and_exit_code_1(make_cfg, capsys):
    cfg = make_cfg(
        *QUIET,
        "trainer.max_epochs=2",
        "+callbacks.poison._target_=test_guards.PoisonAtEpoch",
        "+callbacks.poison.epoch=0",
    )
    with pytest.raises(SystemExit) as exit_info:
        main(cfg)
    assert exit_info.value.code == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: training diverged: loss=nan at step 0")
    assert "no checkpoint was written" in errors[0]


def test_divergence_advice_names_a_tenth_of_the_configured_lr_even_mid_warmup(make_cfg):
    cfg = make_cfg(*QUIET, "optimizer.lr=1e9", "scheduler.warmup=10", "trainer.gradient_clip_val=null")
    with pytest.raises(TrainingDiverged) as caught:
        train(cfg)
    assert "try optimizer.lr=1e+08 (optimizer.lr / 10), trainer.gradient_clip_val=1.0 (clip" in str(caught.value)


def fit_start_warnings(make_cfg, *overrides: str) -> list[str]:
    cfg = make_cfg(*QUIET, "+trainer.fast_dev_run=1", "test=false", *overrides)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(cfg)
    return [str(w.message) for w in caught if "BatchNorm" in str(w.message)]


def test_batch_norm_with_4_samples_per_step_warns(make_cfg):
    (message,) = fit_start_warnings(make_cfg, "data.batch_size=4", "model.norm=batch")
    assert message.startswith("BatchNorm with 4 samples per device per step (< 8)")
    assert "model.norm=group or model.norm=layer" in message


@pytest.mark.parametrize(
    "overrides", [["data.batch_size=8", "model.norm=batch"], ["data.batch_size=4", "model.norm=none"]]
)
def test_no_warning_with_8_samples_or_without_batch_norm(make_cfg, overrides):
    assert fit_start_warnings(make_cfg, *overrides) == []


def test_onecycle_warmup_shorter_than_a_step_is_an_error(make_cfg, capsys):
    cfg = make_cfg(
        *QUIET, "scheduler=onecycle", "scheduler.pct_start=0.1", "trainer.max_epochs=1", "trainer.limit_train_batches=5"
    )
    with pytest.raises(SystemExit) as exit_info:
        main(cfg)
    assert exit_info.value.code == 2
    assert (
        "error: scheduler.pct_start=0.1: warms up over 0.5 of the run's 5 steps; needs >= 1" in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "make, key",
    [
        (lambda: DivergenceGuard(check_every_n_steps=0), "check_every_n_steps"),
        (lambda: BatchNormCheck(min_samples=0), "min_samples"),
    ],
)
def test_guard_settings_are_checked(make, key):
    with pytest.raises(ConfigError, match=key):
        make()
