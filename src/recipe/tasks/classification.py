"""The LightningModule for classification: cross-entropy, accuracy, and AUROC for two classes."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MaxMetric
from torchmetrics.classification import BinaryAUROC, MulticlassAccuracy

from recipe.errors import require_fraction
from recipe.optim import OptimizerSpec, SchedulerSpec
from recipe.tasks.base import TaskModule, epoch_mean

STAGES = ("train", "val", "test")


class Classifier(TaskModule):
    """Cross-entropy classification of ``net``'s logits, with accuracy and best validation accuracy.

    Args:
        net: any ``nn.Module`` mapping a batch of inputs to ``num_classes`` logits.
        num_classes: number of classes, from the data module.
        optimizer: what ``configure_optimizers`` builds; ``None`` for evaluation only.
        scheduler: the LR schedule; ``None`` keeps the LR constant.
        label_smoothing: cross-entropy label smoothing (the recipe's 0.1 regularizes).
    """

    # every metric this module logs (AUROC with two classes): optimized_metric and each monitor must be one of them
    METRICS = (
        *(f"{stage}/{name}" for stage in STAGES for name in ("loss", "acc")),
        "val/acc_best",
        "val/loss_best",
        "val/auroc",
        "test/auroc",
    )
    TWO_CLASS_METRICS = ("val/auroc", "test/auroc")  # logged only when the data has two classes

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optimizer: OptimizerSpec | None = None,
        scheduler: SchedulerSpec | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(net, optimizer, scheduler, best=("acc", MaxMetric()))
        require_fraction("module.label_smoothing", label_smoothing)
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        # Per split, the epoch's mean loss and accuracy: updated every step, computed (and synced across
        # processes) once at the end of the epoch.
        for stage in STAGES:
            # validate_args=False: the loss has checked the labels; torchmetrics' check would wait for the GPU
            accuracy = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
            metrics = {"loss": epoch_mean(), "acc": accuracy}
            if num_classes == 2 and stage != "train":
                metrics["auroc"] = BinaryAUROC()
            setattr(self, f"{stage}_metrics", nn.ModuleDict(metrics))

    def update_metrics(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        logits = self.net(x)
        loss = self.criterion(logits, y)
        metrics = getattr(self, f"{stage}_metrics")
        metrics["loss"].update(loss.detach().expand(len(y)))  # per sample; weight=len(y) is copied to the GPU
        metrics["acc"].update(logits.detach(), y)
        if "auroc" in metrics:
            metrics["auroc"].update(logits.detach().softmax(-1)[:, 1], y)
        return loss
