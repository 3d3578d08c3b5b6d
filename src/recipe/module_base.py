"""What every LightningModule here shares: a plain ``net``, and an optimizer and schedule built from specs."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.strategies import FSDPStrategy
from torch import nn
from torch.optim import Optimizer

from recipe.errors import ConfigError
from recipe.optim import OptimizerSpec, SchedulerSpec, build_optimizer, build_scheduler
from recipe.optim.schedulers import RunLength


class TrainedModule(L.LightningModule):
    """Holds ``net`` and the optimizer and scheduler specs; asks the optim package to build them for the Trainer.

    Args:
        net: any ``nn.Module``; the subclass defines the loss on its outputs.
        optimizer: what ``configure_optimizers`` builds; ``None`` for evaluation only.
        scheduler: the LR schedule; ``None`` keeps the LR constant.
    """

    def __init__(self, net: nn.Module, optimizer: OptimizerSpec | None, scheduler: SchedulerSpec | None) -> None:
        super().__init__()
        if optimizer is not None and scheduler is not None:
            scheduler.check_lr(optimizer.lr)
        self.net, self.optimizer_spec, self.scheduler_spec = net, optimizer, scheduler

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _global_batch_size(self) -> int | None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None or not hasattr(datamodule, "per_device_batch_size"):
            return None
        return datamodule.per_device_batch_size * self.trainer.world_size * self.trainer.accumulate_grad_batches

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
        optimizer = build_optimizer(self.net, self.optimizer_spec, self._global_batch_size())
        if self.scheduler_spec is None:
            return optimizer
        run = RunLength.from_trainer(self.trainer)
        return {"optimizer": optimizer, "lr_scheduler": build_scheduler(optimizer, self.scheduler_spec, run)}
