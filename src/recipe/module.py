"""The LightningModule: a classifier that asks the optim package for its optimizer and schedule."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.strategies import FSDPStrategy
from torch import nn
from torch.optim import Optimizer
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from recipe.errors import ConfigError, require_fraction
from recipe.optim import OptimizerSpec, PeakLR, SchedulerSpec, build_optimizer, build_scheduler, resolve_lr
from recipe.optim.schedulers import RunLength

STAGES = ("train", "val", "test")


def global_batch_size(trainer: L.Trainer, datamodule: L.LightningDataModule | None) -> int | None:
    """Samples per optimizer step: ``data.batch_size`` (split across processes) times the accumulation."""
    batch = getattr(datamodule, "batch_size", None)
    if batch is None:
        return None
    return batch // trainer.world_size * trainer.world_size * trainer.accumulate_grad_batches


class Classifier(L.LightningModule):
    """Cross-entropy classification of ``net``'s logits, with accuracy and best validation accuracy.

    Args:
        net: any ``nn.Module`` mapping a batch of inputs to ``num_classes`` logits.
        num_classes: number of classes, from the data module.
        optimizer: what ``configure_optimizers`` builds; ``None`` for evaluation only.
        scheduler: the LR schedule; ``None`` keeps the LR constant.
        label_smoothing: cross-entropy label smoothing (the recipe's 0.1 regularizes).
    """

    # every metric this module logs: optimized_metric and each callback's monitor must be one of them
    METRICS = (*(f"{stage}/{name}" for stage in STAGES for name in ("loss", "acc")), "val/acc_best")

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optimizer: OptimizerSpec | None = None,
        scheduler: SchedulerSpec | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        require_fraction("module.label_smoothing", label_smoothing)
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.net, self.optimizer_spec, self.scheduler_spec = net, optimizer, scheduler
        self.lr: PeakLR | None = None  # set once before fitting (see resolve_lr); every LR consumer reads it
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        # Per split, the epoch's mean loss and accuracy: updated every step, computed (and synced across
        # processes) once at the end of the epoch.
        for stage in STAGES:
            metrics = {
                "loss": MeanMetric(),
                "acc": MulticlassAccuracy(num_classes, average="micro"),
            }
            setattr(self, f"{stage}_metrics", nn.ModuleDict(metrics))
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # kept in checkpoints, so a resumed run remembers its best

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _shared_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int, stage: str) -> torch.Tensor:
        x, y = batch
        logits = self.net(x)
        loss = self.criterion(logits, y)
        metrics = getattr(self, f"{stage}_metrics")
        metrics["loss"].update(loss.detach(), weight=len(y))
        metrics["acc"].update(logits.detach(), y)
        if batch_idx == 0:
            # Lightning computes a logged metric object at the end of the epoch, so registering it once per
            # epoch is enough; a self.log call every step costs more than the step itself on small models.
            logged = {f"{stage}/{name}": metric for name, metric in metrics.items()}
            self.log_dict(logged, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def on_train_start(self) -> None:
        if self.trainer.ckpt_path is None:  # a resumed run keeps its restored best (and skips the sanity check)
            self.val_acc_best.reset()  # the sanity check's validation must not count as the best

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, batch_idx, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._shared_step(batch, batch_idx, "val")

    def on_validation_epoch_end(self) -> None:
        self.val_acc_best.update(self.val_metrics["acc"].compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)  # equal on all ranks

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._shared_step(batch, batch_idx, "test")

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
