"""What the default run costs a step: Lightning calls only the callback hooks with work to do, and ``last.ckpt`` is
written by time (``callbacks.last_checkpoint.every_seconds``) and at the end, not at every epoch."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.tensorboard import SummaryWriter

from recipe.callbacks import LastCheckpoint
from recipe.errors import ConfigError
from recipe.runtime import step_hooks, trainer
from recipe.runtime.checkpoint_io import AtomicCheckpointIO
from recipe.runtime.step_hooks import count_hook_calls
from recipe.tracking import tensorboard_logger
from train import train

SHORT = ["trainer.max_epochs=2", "trainer.limit_train_batches=6", "trainer.limit_val_batches=2", "test=false"]
# the default callbacks' per-step work: the hooks Lightning still calls at each training step
WORKING = {
    ("LearningRateMonitor", "on_train_batch_start"),
    ("DivergenceGuard", "on_before_backward"),
    ("GradNormMonitor", "on_before_optimizer_step"),
    ("RunReport", "on_before_optimizer_step"),
    ("LastCheckpoint", "on_train_batch_end"),
    ("CheckpointOnInterrupt", "on_train_batch_end"),
    ("ProgressBar", "on_train_batch_end"),
    ("RunReport", "on_train_batch_end"),
}


def hook_calls_per_step(make_cfg, *overrides: str) -> Counter:
    with count_hook_calls() as counts:
        train(make_cfg(*SHORT, *overrides))
    steps = counts.pop("steps")
    assert steps == 12
    return Counter({key: calls / steps for key, calls in counts.items()})


def test_the_default_run_calls_only_the_hooks_with_work_to_do(make_cfg, monkeypatch):
    calls = hook_calls_per_step(make_cfg)
    assert set(calls) == WORKING and set(calls.values()) == {1.0}

    monkeypatch.setattr(trainer, "skip_idle_step_hooks", lambda trainer: None)  # as Lightning alone calls them
    every = hook_calls_per_step(make_cfg)
    assert sum(every.values()) == 6 * 15  # each of the 6 hooks of a training step, on each of the 15 callbacks
    assert sum(calls.values()) == 8


def test_a_checkpoint_that_saves_every_n_steps_still_gets_its_batch_end(make_cfg, tmp_path):
    steps = ModelCheckpoint(dirpath=tmp_path / "steps", every_n_train_steps=4, save_top_k=-1, monitor="step")
    with count_hook_calls() as calls:
        train(make_cfg(*SHORT), [steps])
    assert calls["ModelCheckpoint", "on_train_batch_end"] == 12  # its own; the best epoch's, idle, is skipped
    assert sorted(p.name for p in (tmp_path / "steps").iterdir()) == [
        "epoch=0-step=4.ckpt",
        "epoch=1-step=12.ckpt",
        "epoch=1-step=8.ckpt",
    ]


def saved_steps(make_cfg, monkeypatch, *overrides: str) -> list[int]:
    """The global step of each write of ``last.ckpt`` in a run of 3 epochs of 6 steps, the logger every 4."""
    saved = []
    real = AtomicCheckpointIO.save_checkpoint

    def save(self, checkpoint, path, storage_options=None):
        if str(path).endswith("last.ckpt"):
            saved.append(checkpoint["global_step"])
        real(self, checkpoint, path, storage_options)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", save)
    train(make_cfg(*SHORT, "trainer.max_epochs=3", "trainer.log_every_n_steps=4", *overrides))
    return saved


def test_last_ckpt_is_written_once_in_a_run_shorter_than_every_seconds(make_cfg, monkeypatch, tmp_path):
    assert saved_steps(make_cfg, monkeypatch) == [18]  # the end, not each epoch
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 18


def test_last_ckpt_every_0_seconds_is_written_at_each_epoch_end_and_logger_step_that_no_validation_follows(
    make_cfg, monkeypatch
):
    # logger steps 3, 7, 11, 15 (global step 4, 8, 12, 16 after them): 12 is the end of epoch 1, where it saves anyway
    assert saved_steps(make_cfg, monkeypatch, "callbacks.last_checkpoint.every_seconds=0") == [4, 6, 8, 12, 16, 18]


def test_every_seconds_is_checked():
    with pytest.raises(ConfigError, match=r"callbacks\.last_checkpoint\.every_seconds=-1"):
        LastCheckpoint(every_seconds=-1)


def test_step_hooks_lists_every_per_batch_hook_of_lightnings_callback():
    per_batch = {name for name in dir(ModelCheckpoint) if "batch" in name or name in step_hooks.TRAIN_STEP_HOOKS}
    assert {name for name in per_batch if name.startswith("on_")} == set(step_hooks.STEP_HOOKS)


def test_the_event_file_is_not_flushed_at_every_logged_step(make_cfg, monkeypatch):
    def flushes_in_a_run(every_seconds: float) -> int:
        flushes = []
        monkeypatch.setattr(tensorboard_logger, "FLUSH_SECONDS", every_seconds)
        monkeypatch.setattr(SummaryWriter, "flush", lambda self: flushes.append(1) or real(self))
        train(make_cfg(*SHORT, "trainer.log_every_n_steps=2"))  # 6 logged steps and 4 epoch ends
        return len(flushes)

    real = SummaryWriter.flush
    assert flushes_in_a_run(0.0) - flushes_in_a_run(10.0) >= 6  # 0: at every save Lightning asks for
