"""Training and evaluation weights for schedule-free optimizers (Defazio et al. 2024).

A schedule-free optimizer trains the model at an interpolation ``y`` of a fast iterate ``z`` and their average
``x``, and the average is what should be validated, tested and saved: ``optimizer.eval()`` swaps ``x`` into the
model, ``optimizer.train()`` swaps ``y`` back. Lightning knows nothing of this, so the swap is written here, with
BatchNorm's running statistics recomputed for ``x`` (they were gathered at ``y``), as the package's README advises.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch.optim.swa_utils import update_bn

from recipe.callbacks.guards import BATCH_NORMS
from recipe.errors import config_error
from recipe.optim.optimizers import SCHEDULE_FREE, OptimizerSpec, is_schedule_free


def schedule_free_callbacks(spec: OptimizerSpec | None) -> list[Callback]:
    """``[ScheduleFreeModes()]`` when ``spec`` builds a schedule-free optimizer, for ``configure_callbacks``."""
    return [ScheduleFreeModes()] if spec is not None and issubclass(spec.cls, SCHEDULE_FREE) else []


class ScheduleFreeModes(Callback):
    """``optimizer.train()`` before each training batch; ``optimizer.eval()`` before validation, before the test,
    at the end of fitting and for every checkpoint, so all of them see the averaged weights.

    A checkpoint written in training mode (one saved mid-epoch) gets the averaged weights and the optimizer's
    evaluation-mode state in its place; resuming from it switches back to training mode before the first step.

    Args:
        bn_batches: training batches run forward (no gradients) to recompute BatchNorm's statistics for the
            averaged weights; 0 keeps those gathered while training.
    """

    def __init__(self, bn_batches: int = 50) -> None:
        if bn_batches < 0:
            raise config_error("callbacks.schedule_free.bn_batches", bn_batches, "must be >= 0")
        self.bn_batches = bn_batches

    @staticmethod
    def _in_train_mode(trainer: L.Trainer) -> list[torch.optim.Optimizer]:
        return [o for o in trainer.optimizers if is_schedule_free(o) and o.param_groups[0]["train_mode"]]

    def _to_eval(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        optimizers = self._in_train_mode(trainer)
        for optimizer in optimizers:
            optimizer.eval()
        if optimizers and self.bn_batches and any(isinstance(m, BATCH_NORMS) for m in pl_module.modules()):
            # the shuffle of these batches (and, on a GPU, their dropout masks) must not shift training's
            device = pl_module.device
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else [], device_type="cuda"):
                batches = itertools.islice(trainer.train_dataloader, self.bn_batches)
                update_bn(batches, pl_module, device=device)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        for optimizer in trainer.optimizers:
            if is_schedule_free(optimizer):
                optimizer.train()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._to_eval(trainer, pl_module)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._to_eval(trainer, pl_module)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._to_eval(trainer, pl_module)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        optimizers = self._in_train_mode(trainer)
        if not optimizers:
            return
        self._to_eval(trainer, pl_module)
        checkpoint["state_dict"] = copy.deepcopy(trainer.strategy.lightning_module_state_dict())
        if "optimizer_states" in checkpoint:
            checkpoint["optimizer_states"] = [
                copy.deepcopy(trainer.strategy.optimizer_state(o)) for o in trainer.optimizers
            ]
        for optimizer in optimizers:
            optimizer.train()
