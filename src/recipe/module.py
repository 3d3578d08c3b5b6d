"""The LightningModule: a classifier that asks the optim package for its optimizer and schedule."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics import MaxMetric
from torchmetrics.classification import MulticlassAccuracy

from recipe.errors import ConfigError, config_error
from recipe.optim import OptimizerSpec, SchedulerSpec, build_optimizer, build_scheduler
from recipe.optim.schedulers import RunLength


class Classifier(L.LightningModule):
    """Cross-entropy classification of ``net``'s logits, with accuracy and best validation accuracy.

    Args:
        net: any ``nn.Module`` mapping a batch of inputs to ``num_classes`` logits.
        num_classes: number of classes, from the data module.
        optimizer: what ``configure_optimizers`` builds; ``None`` for evaluation only.
        scheduler: the LR schedule; ``None`` keeps the LR constant.
        label_smoothing: cross-entropy label smoothing (the recipe's 0.1 regularizes).
    """

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optimizer: OptimizerSpec | None = None,
        scheduler: SchedulerSpec | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0 <= label_smoothing < 1:
            raise config_error("module.label_smoothing", label_smoothing, "must be in [0, 1)")
        if optimizer is not None and scheduler is not None:
            scheduler.check_lr(optimizer.lr)
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.net, self.optimizer_spec, self.scheduler_spec = net, optimizer, scheduler
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc_best = MaxMetric()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _shared_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str, accuracy: MulticlassAccuracy) -> torch.Tensor:
        x, y = batch
        logits = self.net(x)
        loss = self.criterion(logits, y)
        accuracy.update(logits, y)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=stage != "train")
        self.log(f"{stage}/acc", accuracy, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def on_train_start(self) -> None:
        self.val_acc_best.reset()  # the sanity check's validation must not count as the best

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train", self.train_acc)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._shared_step(batch, "val", self.val_acc)

    def on_validation_epoch_end(self) -> None:
        self.val_acc_best.update(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._shared_step(batch, "test", self.test_acc)

    def _global_batch_size(self) -> int | None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None or not hasattr(datamodule, "per_device_batch_size"):
            return None
        return datamodule.per_device_batch_size * self.trainer.world_size * self.trainer.accumulate_grad_batches

    def configure_optimizers(self) -> Any:
        if self.optimizer_spec is None:
            raise ConfigError("optimizer: none given, so this module can only be evaluated")
        optimizer = build_optimizer(self.net, self.optimizer_spec, self._global_batch_size())
        if self.scheduler_spec is None:
            return optimizer
        run = RunLength.from_trainer(self.trainer)
        return {"optimizer": optimizer, "lr_scheduler": build_scheduler(optimizer, self.scheduler_spec, run)}
