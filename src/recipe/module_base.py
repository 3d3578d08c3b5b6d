"""What every LightningModule here shares: a plain ``net``, and an optimizer and schedule built from specs."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.strategies import FSDPStrategy
from torch import nn
from torch.optim import Optimizer

from recipe.errors import ConfigError
from recipe.optim import OptimizerSpec, PeakLR, SchedulerSpec, build_optimizer, build_scheduler, resolve_lr
from recipe.optim.schedulers import RunLength


def global_batch_size(trainer: L.Trainer, datamodule: L.LightningDataModule | None) -> int | None:
    """Samples per optimizer step: ``data.batch_size`` (split across processes) times the accumulation."""
    batch = getattr(datamodule, "batch_size", None)
    if batch is None:
        return None
    return batch // trainer.world_size * trainer.world_size * trainer.accumulate_grad_batches


class TrainedModule(L.LightningModule):
    """Holds ``net`` and the optimizer and scheduler specs; asks the optim package to build them for the Trainer.

    Args:
        net: any ``nn.Module``; the subclass defines the loss on its outputs.
        optimizer: what ``configure_optimizers`` builds; ``None`` for evaluation only.
        scheduler: the LR schedule; ``None`` keeps the LR constant.
    """

    def __init__(self, net: nn.Module, optimizer: OptimizerSpec | None, scheduler: SchedulerSpec | None) -> None:
        super().__init__()
        self.net, self.optimizer_spec, self.scheduler_spec = net, optimizer, scheduler
        self.lr: PeakLR | None = None  # set once before fitting (see resolve_lr); every LR consumer reads it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def configure_gradient_clipping(
        self,
        optimizer: Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Lightning's clipping, except by norm under FSDP, which only the sharded root module can compute."""
        fsdp = isinstance(self.trainer.strategy, FSDPStrategy)
        if fsdp and gradient_clip_algorithm == "norm" and gradient_clip_val:
            self.trainer.strategy.model.clip_grad_norm_(gradient_clip_val)
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self) -> Any:
        if self.optimizer_spec is None:
            raise ConfigError("optimizer: none given, so this module can only be evaluated")
        if self.lr is None:  # fitted by a bare Trainer, not by src/train.py: the config's LR, scaled
            self.lr = resolve_lr(self.optimizer_spec, global_batch_size(self.trainer, self.trainer.datamodule))
        optimizer = build_optimizer(self.net, self.optimizer_spec, self.lr.peak)
        if self.scheduler_spec is None:
            return optimizer
        run = RunLength.from_trainer(self.trainer)
        return {"optimizer": optimizer, "lr_scheduler": build_scheduler(optimizer, self.scheduler_spec, run)}
