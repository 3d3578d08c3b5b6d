"""Lightning's rich progress bar, updated at the rate it is drawn."""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar

from recipe.cli.console import copy_rich_output_to_log
from recipe.runtime.private_api import logger_writes_this_step, stop_refresh_thread


class ProgressBar(RichProgressBar):
    """``lightning.pytorch.callbacks.RichProgressBar`` (same arguments) that moves its bars and reads the metrics at
    most ``refresh_rate`` times a second, the rate rich draws them at, and at the last batch of each loop. Lightning's
    does it after every batch: on a small model that reading costs a few percent of each step. While training, the
    metrics shown are read only at the steps the logger writes and at the epoch's end: reading a GPU value waits
    for the device.

    Only rank 0 draws: Lightning disables the bar on the other processes of a DDP run, and there these hooks return
    at once (Lightning's own reading of the validation batch count fails on a disabled bar).

    It also stops without waiting for Lightning's drawing thread, which sleeps ``1 / refresh_rate`` seconds between
    draws and is joined at the end of every fit, validation and test: up to a second each at the default rate.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # time.monotonic() of the last update; -inf: none yet (0.0 would hold back the first batch on a machine
        # booted less than 1 / refresh_rate seconds ago, monotonic time being the time since boot)
        self._updated = -math.inf
        self._shown: dict | None = None  # the metrics last read

    def configure_columns(self, trainer: L.Trainer) -> list:
        # Lightning calls this as it starts a bar, just after pointing rich's console at the bar's stream (stderr):
        # what rich prints there from now on (the test table, the run report) still belongs in <run>/train.log
        copy_rich_output_to_log()
        return super().configure_columns(trainer)

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, int | str | float | dict]:
        """The metrics the bar shows; while training, read (device values copied to the host, a wait for the GPU)
        only at the steps the logger writes, the ones shown before otherwise."""
        if trainer.training and self._shown is not None and not logger_writes_this_step(trainer):
            return self._shown
        self._shown = super().get_metrics(trainer, pl_module)
        return self._shown

    def _due(self, batch_idx: int, batches: int | float) -> bool:
        now = time.monotonic()
        if batch_idx + 1 < batches and now - self._updated < 1.0 / max(self.refresh_rate, 1e-9):
            return False
        self._updated = now
        return True

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.is_enabled and self._due(batch_idx, self.total_train_batches):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self.is_enabled and self._due(batch_idx, self.total_val_batches_current_dataloader):
            super().on_validation_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._shown = None  # the epoch's metrics, computed now, are read
        super().on_train_epoch_end(trainer, pl_module)

    def _stop_progress(self) -> None:  # Lightning's private hook: see recipe.runtime.private_api
        stop_refresh_thread(self.progress)  # so that stopping the display does not join the drawing thread
        super()._stop_progress()
