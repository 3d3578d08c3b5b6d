"""Lightning's ``ModelCheckpoint``, written off the training thread."""

from __future__ import annotations

from contextlib import nullcontext

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint

from recipe.runtime.checkpoint_io import checkpoint_io, wait_for_checkpoints


class ModelCheckpoint(LightningModelCheckpoint):
    """``lightning.pytorch.callbacks.ModelCheckpoint`` (same arguments) whose saves ``AtomicCheckpointIO`` writes in
    a background thread while training goes on. When training ends it waits for its files, then for every process
    (a barrier): the test that follows may load the best checkpoint on any rank.
    """

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        io = checkpoint_io(trainer)
        with io.in_background() if io is not None else nullcontext():
            super()._save_checkpoint(trainer, filepath)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        wait_for_checkpoints(trainer)
        trainer.strategy.barrier("checkpoints written")
