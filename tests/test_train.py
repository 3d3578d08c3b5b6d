"""Training through ``train.train`` with composed configs: every optimizer x scheduler pair, and
the run length flowing from the Trainer into the schedule."""

import ast
import itertools
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import FAST, ROOT, RecordLR
from lightning.pytorch.callbacks import ProgressBar

from recipe.build import build
from recipe.instantiate import instantiate_all
from recipe.runtime.trainer import build_trainer
from train import train

OPTIMIZERS = sorted(p.stem for p in (ROOT / "conf/optimizer").glob("*.yaml"))
SCHEDULERS = sorted(p.stem for p in (ROOT / "conf/scheduler").glob("*.yaml"))


CLASSIC = ["adam", "adamw", "rmsprop", "sgd"]


def test_config_groups_hold_the_documented_options():
    new = ["adafactor", "adopt", "lamb", "lion", "muon", "nadam", "prodigy", "radam", "sam", "schedulefree_adamw"]
    new += ["schedulefree_sgd", "shampoo", "soap"]
    assert sorted(CLASSIC + new) == OPTIMIZERS
    assert SCHEDULERS == [
        "constant",
        "cosine",
        "cosine_restarts",
        "linear",
        "onecycle",
        "plateau",
        "step",
        "warmup_cosine",
        "wsd",
    ]


@pytest.mark.parametrize("optimizer, scheduler", list(itertools.product(CLASSIC, SCHEDULERS)))
def test_every_optimizer_scheduler_pair_trains(make_cfg, optimizer, scheduler):
    cfg = make_cfg(f"optimizer={optimizer}", f"scheduler={scheduler}", *FAST, "logger=csv", "test=false")
    recorder = RecordLR()
    metrics = train(cfg, extra_callbacks=[recorder])
    assert metrics["val/acc"] > 0.2  # 10 classes: above chance after 8 steps
    peak = cfg.scheduler.get("max_lr") or cfg.optimizer.lr  # every schedule peaks at the configured LR
    assert 0 < max(recorder.lrs) <= peak * (1 + 1e-6) and len(recorder.lrs) == 8


@pytest.mark.parametrize("optimizer", sorted(set(OPTIMIZERS) - set(CLASSIC)))
def test_every_new_optimizer_trains_through_lightning(make_cfg, optimizer):
    """Each with the default schedule (schedule-free: constant); test_schedulers pairs each with every scheduler."""
    schedule = "scheduler=constant" if optimizer.startswith("schedulefree") else "scheduler=warmup_cosine"
    cfg = make_cfg(f"optimizer={optimizer}", schedule, *FAST, "logger=csv", "test=false")
    metrics = train(cfg)
    assert metrics["train/loss"] > 0 and 0 <= metrics["val/acc"] <= 1


def test_total_steps_follow_epochs_and_accumulation(make_cfg):
    cfg = make_cfg("scheduler.min_lr=1e-5", "scheduler.warmup=2", *FAST, "trainer.max_epochs=3")
    datamodule, module = build(cfg)
    recorder = RecordLR()
    trainer = L.Trainer(
        max_epochs=3,
        limit_train_batches=4,
        limit_val_batches=1,
        accumulate_grad_batches=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[recorder],
    )
    trainer.fit(module, datamodule=datamodule)
    assert trainer.estimated_stepping_batches == 6
    assert len(recorder.lrs) == 6
    assert recorder.lrs[0] == 0.0 and recorder.lrs[2] == pytest.approx(1e-3)
    assert recorder.lrs[-1] == pytest.approx(1e-5)


def test_checkpoint_and_tensorboard_land_in_the_run_folder(make_cfg, tmp_path: Path):
    metrics = train(make_cfg(*FAST))
    assert {"val/acc_best", "test/acc", "test/loss", "train/acc"} <= set(metrics)
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_last_ckpt_holds_the_final_epoch_even_when_the_best_is_earlier(make_cfg, tmp_path: Path):
    # mode=min on a rising accuracy keeps epoch 0 as the "best"; Lightning 2.6's save_last would then never
    # rewrite last.ckpt after epoch 0, so a resume would restart from there
    train(make_cfg(*FAST, "trainer.max_epochs=3", "callbacks.model_checkpoint.mode=min", "test=false"))
    checkpoints = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.ckpt"))
    assert len(checkpoints) == 2 and checkpoints[0].startswith("epoch_000-") and checkpoints[1] == "last.ckpt"
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (2, 3 * 4)  # 4 batches an epoch


def test_enable_progress_bar_false_also_drops_the_configured_bar(make_cfg):
    # Lightning rejects a ProgressBar callback with enable_progress_bar=False (a MisconfigurationException)
    cfg = make_cfg("trainer.enable_progress_bar=false")
    assert cfg.callbacks.progress_bar is not None
    trainer = build_trainer(cfg.trainer, callbacks=instantiate_all(cfg.callbacks), logger=False)
    assert trainer.progress_bar_callback is None
    assert not any(isinstance(c, ProgressBar) for c in trainer.callbacks)


class RecordThreads(L.Callback):
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.threads = torch.get_num_threads()


def test_threads_sets_torchs_cpu_threads_for_the_run(make_cfg):
    before, recorder = torch.get_num_threads(), RecordThreads()
    wanted = 1 if before != 1 else min(2, os.cpu_count() or 1)  # within the cores: more is refused
    try:
        train(make_cfg(*FAST, f"threads={wanted}", "test=false"), [recorder])
    finally:
        torch.set_num_threads(before)
    assert recorder.threads == wanted


def test_entry_scripts_put_waiting_openmp_threads_to_sleep_before_torch_loads():
    for script in ("train", "eval", "predict"):  # each imports recipe.cli.openmp before anything else
        tree = ast.parse((ROOT / "src" / f"{script}.py").read_text())
        imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        assert ast.unparse(imports[1]) == "import recipe.cli.openmp", script  # after from __future__ import annotations
    probe = "import sys; sys.path.insert(0, 'src'); import train, os; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.stdout.split() == ["PASSIVE"], result.stderr[-2000:]
