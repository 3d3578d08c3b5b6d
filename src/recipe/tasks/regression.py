"""The LightningModule for regression: a real value per sample, with MAE, RMSE and R² in the target's units."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MinMetric, R2Score

from recipe.data.contract import optional
from recipe.errors import config_error
from recipe.optim import OptimizerSpec, SchedulerSpec
from recipe.tasks.base import TaskModule, epoch_mean

LOSSES = {"mse": nn.MSELoss, "huber": nn.HuberLoss, "l1": nn.L1Loss}
STAGE_METRICS = {"train": ("mae",), "val": ("mae", "r2"), "test": ("mae", "rmse", "r2")}


class Regressor(TaskModule):
    """``net``'s single output regressed on a target the data module standardized; the loss is computed on the
    standardized values, the metrics on values mapped back to the target's units with the data module's
    ``target_scale`` (kept as buffers, so a checkpoint carries them).

    Args:
        net: any ``nn.Module`` mapping a batch of inputs to one value per sample (``(batch, 1)`` or ``(batch,)``).
        num_classes: the net's output width, which must be 1 (named as the classifier's, so runs build both alike).
        optimizer: what ``configure_optimizers`` builds; ``None`` for evaluation only.
        scheduler: the LR schedule; ``None`` keeps the LR constant.
        loss: ``mse``, ``huber`` (delta ``huber_delta``, in target standard deviations) or ``l1``.
        huber_delta: where the Huber loss turns from quadratic to linear.
    """

    # every metric this module logs: optimized_metric and each callback's monitor must be one of them
    METRICS = (
        *(f"{stage}/{name}" for stage, names in STAGE_METRICS.items() for name in ("loss", *names)),
        "val/loss_best",
    )

    def __init__(
        self,
        net: nn.Module,
        num_classes: int = 1,
        optimizer: OptimizerSpec | None = None,
        scheduler: SchedulerSpec | None = None,
        loss: str = "mse",
        huber_delta: float = 1.0,
    ) -> None:
        super().__init__(net, optimizer, scheduler, best=("loss", MinMetric()))
        if num_classes != 1:
            raise config_error("num_classes", num_classes, "a regressor predicts one value: the data must give 1")
        if loss not in LOSSES:
            raise config_error("module.loss", loss, f"one of {', '.join(LOSSES)}")
        if not huber_delta > 0:
            raise config_error("module.huber_delta", huber_delta, "must be > 0")
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.criterion = nn.HuberLoss(delta=huber_delta) if loss == "huber" else LOSSES[loss]()
        self.register_buffer("target_mean", torch.tensor(0.0))
        self.register_buffer("target_std", torch.tensor(1.0))
        # Per split, the epoch's metrics: updated every step, computed (and synced) once at the end of the epoch.
        make = {
            "mae": MeanAbsoluteError,
            "rmse": lambda: MeanSquaredError(squared=False),
            "r2": R2Score,
        }
        for stage, names in STAGE_METRICS.items():
            metrics = {"loss": epoch_mean(), **{name: make[name]() for name in names}}
            setattr(self, f"{stage}_metrics", nn.ModuleDict(metrics))

    def setup(self, stage: str) -> None:
        scale = optional(self.trainer.datamodule, "target_scale")
        if scale is not None:
            self.target_mean.fill_(scale[0])
            self.target_std.fill_(scale[1])

    def update_metrics(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        pred = self.net(x).reshape(len(x))
        loss = self.criterion(pred, y.to(pred.dtype))
        metrics = getattr(self, f"{stage}_metrics")
        metrics["loss"].update(loss.detach().expand(len(y)))  # per sample; weight=len(y) is copied to the GPU
        pred_units, y_units = (t.detach().float() * self.target_std + self.target_mean for t in (pred, y))
        for name in STAGE_METRICS[stage]:
            metrics[name].update(pred_units, y_units)
        return loss
