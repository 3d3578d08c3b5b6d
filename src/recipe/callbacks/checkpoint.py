"""Lightning's ``ModelCheckpoint``, written off the training thread; ``last.ckpt`` written by time."""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint

from recipe.callbacks.resume import no_validation_follows
from recipe.errors import CheckpointWriteError, config_error, is_number
from recipe.runtime.checkpoint_io import checkpoint_io, wait_for_checkpoints
from recipe.runtime.private_api import logger_writes_this_step, saves_within_epochs


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

    def idle_step_hooks(self, trainer: L.Trainer) -> set[str]:
        """``on_train_batch_end`` has nothing to do when this checkpoint saves only at epoch ends: Lightning need not
        call it (``recipe.runtime.step_hooks``)."""
        return set() if saves_within_epochs(self) else {"on_train_batch_end"}

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


class LastCheckpoint(ModelCheckpoint):
    """``<dirpath>/last.ckpt``, overwritten, to resume from: written once ``every_seconds`` have passed since its
    last write, looked at each epoch's end (after its validation) and at the steps the logger writes where no
    validation follows (a resume from there is exact); and always at the end of training (after its last epoch).
    Ctrl-C, SIGTERM (``CheckpointOnInterrupt``) and a SLURM requeue (Lightning's handler) write it too. So short
    epochs do not each build a checkpoint, and a ``kill -9`` loses at most ``every_seconds`` of training plus
    ``log_every_n_steps`` steps. Under DDP rank 0's clock decides, at those points only.

    Lightning's ``train_time_interval`` looks at the clock after every batch and, under DDP, broadcasts rank 0's
    decision each time: a collective a step. Its ``save_last`` writes ``last.ckpt`` only with a save of the monitored
    checkpoint.

    Args:
        dirpath: the checkpoint folder.
        every_seconds: the least time between two writes; ``0``: at every point above.
    """

    def __init__(self, dirpath: str | None = None, every_seconds: float = 60.0) -> None:
        if not is_number(every_seconds) or every_seconds < 0:
            raise config_error("callbacks.last_checkpoint.every_seconds", every_seconds, "must be a number >= 0")
        # every_n_epochs=0: Lightning's own hooks never save; this class decides when
        super().__init__(dirpath=dirpath, filename="last", monitor=None, every_n_epochs=0, enable_version_counter=False)
        self.every_seconds = every_seconds
        self._saved_at, self._saved_step = -math.inf, -1  # time.monotonic() and global step of the last write

    def idle_step_hooks(self, trainer: L.Trainer) -> set[str]:
        return set()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._saved_at = time.monotonic()  # the first write comes every_seconds into the fit, not at its first step

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if logger_writes_this_step(trainer) and no_validation_follows(trainer, batch_idx):
            self._save_if_due(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save_if_due(trainer, epoch_end=True)  # after the epoch's validation, where Lightning saves too

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._saved_step != trainer.global_step:  # ended otherwise than _ends_fit foresaw (max_time)
            self._save(trainer, background=False)
        super().on_train_end(trainer, pl_module)

    def _save_if_due(self, trainer: L.Trainer, epoch_end: bool = False) -> None:
        due = time.monotonic() - self._saved_at >= self.every_seconds or (epoch_end and _ends_fit(trainer))
        if trainer.strategy.broadcast(due and self._saved_step != trainer.global_step):
            self._save(trainer)

    def _save(self, trainer: L.Trainer, background: bool = True) -> None:
        path = str(Path(self.dirpath) / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}")
        with _saving(trainer, background):
            trainer.save_checkpoint(path)
        self.last_model_path = path
        self._saved_at, self._saved_step = time.monotonic(), trainer.global_step


def _ends_fit(trainer: L.Trainer) -> bool:
    """Whether the fit ends after this epoch (its last, early stopping, or ``max_steps`` reached): its end is saved
    there, as every epoch's was, in the background and before the final test."""
    last_epoch = trainer.max_epochs not in (None, -1) and trainer.current_epoch + 1 >= trainer.max_epochs
    return trainer.should_stop or last_epoch or 0 <= trainer.max_steps <= trainer.global_step
