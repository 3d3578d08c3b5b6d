"""Validate the weights a run ends with when ``trainer.max_steps`` ends it in the middle of an epoch."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback


class ValidateLastStep(Callback):
    """Moves the epoch's validation to the run's last batch when ``trainer.max_steps`` ends the run inside an epoch.

    Lightning validates at epoch ends (or every ``val_check_interval`` batches), so a run shorter than an epoch
    ended with no val metrics, no best checkpoint, and EarlyStopping raising for its missing monitor. Before the
    batch of the run's last optimizer step, Lightning's validation interval (``trainer.val_check_batch``, batches
    into the epoch) is set to end at that batch; earlier epochs are left alone. Lightning has no setting for it.
    """

    def idle_step_hooks(self, trainer: L.Trainer) -> set[str]:
        """Nothing to do per step in a run that ``trainer.max_steps`` does not end (``recipe.runtime.step_hooks``)."""
        return {"on_train_batch_start"} if trainer.max_steps < 0 else set()

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        interval = trainer.val_check_batch  # None: time-based validation; inf: a loader without a length
        if trainer.max_steps < 0 or trainer.check_val_every_n_epoch is None or interval in (None, float("inf")):
            return
        last_step = (
            trainer.global_step == trainer.max_steps - 1 and (batch_idx + 1) % trainer.accumulate_grad_batches == 0
        )
        if last_step and batch_idx + 1 < trainer.num_training_batches:
            trainer.val_check_batch = batch_idx + 1  # validates after this batch: (batch_idx + 1) % interval == 0
