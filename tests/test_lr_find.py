"""The LR range test: its plot in the run folder and in TensorBoard, and the found LR in the optimizer and
the schedule when ``lr_find=apply`` asks for it."""

from __future__ import annotations

import math
import re

import pytest
import torch
from conftest import run_script
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from recipe.errors import ConfigError
from recipe.optim.lr_find import suggest
from recipe.validation.checks import check_train_config
from train import main, train

QUIET = [
    "trainer.enable_progress_bar=false",
    "trainer.num_sanity_val_steps=0",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=5",
    "trainer.limit_val_batches=2",
    "~callbacks.progress_bar",
    "~callbacks.model_summary",
    "test=false",
    "lr_find.num_training=50",
]
PNG = b"\x89PNG\r\n\x1a\n"


def suggested(caplog) -> float:
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("LR finder: suggested lr="))
    return float(line.split("lr=")[1].split(" ")[0])


def last_checkpoint(tmp_path) -> dict:
    return torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def test_apply_trains_with_the_found_lr_and_logs_the_plot(make_cfg, tmp_path, caplog):
    caplog.set_level("INFO")
    train(make_cfg(*QUIET, "scheduler=constant", "lr_find=apply"))
    lr = suggested(caplog)
    assert (tmp_path / "lr_find.png").read_bytes()[:8] == PNG
    assert "lr_find" in EventAccumulator(str(tmp_path / "tensorboard")).Reload().Tags()["images"]
    checkpoint = last_checkpoint(tmp_path)
    assert lr != pytest.approx(1e-3, rel=0.01)  # adamw's default, which the finder replaced
    assert checkpoint["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(lr, rel=1e-3)
    assert checkpoint["run_config"]["optimizer"]["lr"] == pytest.approx(lr, rel=1e-3)
    assert checkpoint["global_step"] == 5  # the range test's 50 steps were undone before training
    hparams = hparams_of(tmp_path / "tensorboard")
    assert float(hparams["optimizer.lr"]) == pytest.approx(lr, rel=1e-3)  # HPARAMS records the LR the run used


def hparams_of(tensorboard_dir) -> dict:
    """The HPARAMS a TensorBoard run recorded, as ``{name: value}``."""
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    events = EventAccumulator(str(tensorboard_dir)).Reload()
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    start = HParamsPluginData.FromString(content).session_start_info.hparams
    return {k: v.number_value if v.HasField("number_value") else v.string_value for k, v in start.items()}


def test_the_schedule_peaks_at_the_found_lr(make_cfg, tmp_path, caplog):
    caplog.set_level("INFO")
    train(make_cfg(*QUIET, "scheduler=warmup_cosine", "scheduler.warmup=2", "lr_find=apply"))
    lrs = [lr for _, lr in last_checkpoint(tmp_path)["callbacks"]["RunReport"]["lrs"]]
    assert lrs[0] == 0.0 and max(lrs) == pytest.approx(suggested(caplog), rel=1e-3) and lrs[-1] < max(lrs)


def test_without_apply_the_lr_stays(make_cfg, tmp_path, caplog):
    caplog.set_level("INFO")
    train(make_cfg(*QUIET, "scheduler=constant", "lr_find=plot"))
    assert (tmp_path / "lr_find.png").is_file()
    assert "lr_find=apply or optimizer.lr=" in caplog.text
    assert last_checkpoint(tmp_path)["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(1e-3)


def test_only_stops_after_the_plot(make_cfg, tmp_path):
    assert main(make_cfg(*QUIET, "lr_find=only")) is None
    assert (tmp_path / "lr_find.png").is_file()
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "report.md").exists()


def test_lr_find_only_on_the_command_line(tmp_path):
    result = run_script("train.py", *QUIET, "lr_find=only", run_dir=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "LR finder: suggested lr=" in result.stdout + result.stderr
    assert (tmp_path / "lr_find.png").is_file()


def test_suggestion_is_the_steepest_fall_per_decade():
    lrs = [10 ** (-7 + 7 * i / 99) for i in range(100)]
    losses = [2.3 - 1.0 / (1 + math.exp(-4 * (math.log10(lr) + 3))) for lr in lrs]  # falls fastest at 1e-3
    assert suggest(lrs, losses) == pytest.approx(1e-3, rel=0.1)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["lr_find.min_lr=1.0", "lr_find.max_lr=0.1"], "lr_find.min_lr=1.0: must be > 0 and below lr_find.max_lr=0.1"),
        (["lr_find.mode=cubic"], "lr_find.mode='cubic'"),
        (["lr_find.num_training=5"], "lr_find.num_training=5: must be >= 20"),
    ],
)
def test_nonsense_settings_are_rejected(make_cfg, overrides, message):
    cfg = make_cfg(*QUIET, "lr_find=plot", *overrides)
    with pytest.raises(ConfigError, match=re.escape(message)):  # the checks, then the build, as the entry point
        check_train_config(cfg)
        train(cfg)


def test_lr_find_is_refused_when_resuming(make_cfg):
    with pytest.raises(ConfigError, match=re.escape("lr_find='apply'")):
        check_train_config(make_cfg("lr_find=apply", "ckpt_path=run/checkpoints/last.ckpt"))
    check_train_config(make_cfg("ckpt_path=run/checkpoints/last.ckpt"))


def test_apply_refuses_a_fixed_onecycle_peak(make_cfg):
    cfg = make_cfg(*QUIET, "scheduler=onecycle", "scheduler.max_lr=0.01", "lr_find=apply")
    with pytest.raises(ConfigError, match=re.escape("scheduler.max_lr=0.01")):
        check_train_config(cfg)
