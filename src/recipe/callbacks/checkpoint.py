"""Lightning's ``ModelCheckpoint``, written off the training thread."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint

from recipe.errors import CheckpointWriteError
from recipe.runtime.checkpoint_io import checkpoint_io, wait_for_checkpoints


@contextmanager
def _saving(trainer: L.Trainer, background: bool = True) -> Iterator[None]:
    """Saves made in the block, written in the background (``background``; under a strategy that saves another
    way, synchronously). A write that fails on rank 0 ends the processes its launcher started too, as Lightning does
    on Ctrl-C: they would wait for rank 0 at the next barrier and end in gloo's "Connection closed by peer"
    traceback under the one line that says why."""
    io = checkpoint_io(trainer)
    try:
        with io.in_background() if io is not None and background else nullcontext():
            yield
    except CheckpointWriteError:
        if trainer.strategy.launcher is not None:
            trainer.strategy.launcher.kill(signal.SIGKILL)
        raise


class ModelCheckpoint(LightningModelCheckpoint):
    """``lightning.pytorch.callbacks.ModelCheckpoint`` (same arguments) whose periodic saves, those made at the end
    of a training batch (``every_n_train_steps``, ``train_time_interval``), a training epoch or a validation,
    ``AtomicCheckpointIO`` writes in a background thread while training goes on. Its other saves (on an exception
    with ``save_on_exception``, ``save_last`` at the end of training) are written at once. When training ends it
    waits for its files, then for every process (a barrier): the test that follows may load the best checkpoint on
    any rank.
    """

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        with _saving(trainer):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with _saving(trainer):
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with _saving(trainer):
            super().on_validation_end(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with _saving(trainer, background=False):
            super().on_train_end(trainer, pl_module)
            wait_for_checkpoints(trainer)
        trainer.strategy.barrier("checkpoints written")
