"""What every LightningModule here shares: a plain ``net``; epoch metrics registered once per epoch and the best
validation value kept; an optimizer and schedule built from specs."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.strategies import FSDPStrategy
from torch import nn
from torch.optim import Optimizer
from torchmetrics import MaxMetric, MeanMetric, MinMetric

from recipe.callbacks.schedule_free import schedule_free_callbacks
from recipe.data.contract import optional
from recipe.errors import ConfigError
from recipe.optim import OptimizerSpec, PeakLR, SchedulerSpec, build_optimizer, build_scheduler, resolve_lr
from recipe.optim.schedulers import RunLength


def global_batch_size(trainer: L.Trainer, datamodule: L.LightningDataModule | None) -> int | None:
    """Samples per optimizer step: ``data.batch_size`` (split across processes) times the accumulation."""
    batch = optional(datamodule, "batch_size")
    if batch is None:
        return None
    return batch // trainer.world_size * trainer.world_size * trainer.accumulate_grad_batches


def epoch_mean() -> MeanMetric:
    """The epoch's mean loss, updated every step without reading it: torchmetrics' default NaN check reads each value
    (on a GPU, a wait for the device every step). A NaN loss stays in the mean, for ``DivergenceGuard`` to stop."""
    return MeanMetric(nan_strategy="disable")


class TaskModule(L.LightningModule):
    """Holds ``net`` and the optimizer and scheduler specs; asks the optim package to build them for the Trainer.

    Args:
        net: any ``nn.Module``; the subclass defines the loss on its outputs.
        optimizer: what ``configure_optimizers`` builds; ``None`` for evaluation only.
        scheduler: the LR schedule; ``None`` keeps the LR constant.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerSpec | None,
        scheduler: SchedulerSpec | None,
        best: tuple[str, MaxMetric | MinMetric] | None = None,
    ) -> None:
        super().__init__()
        self.net, self.optimizer_spec, self.scheduler_spec = net, optimizer, scheduler
        self.lr: PeakLR | None = None  # set once before fitting (see resolve_lr); every LR consumer reads it
        self.best_of, self.val_best = best or ("loss", MinMetric())  # val/<best_of>_best: the best epoch so far
        # val/loss_best too where the task's best is another metric: the lowest validation loss, a continuous score
        # that ranks runs on a validation split too small for its accuracy to (hparams_search=auto scores by it)
        self.val_loss_best = MinMetric() if self.best_of != "loss" else None
        for tracker in (self.val_best, self.val_loss_best):
            if tracker is not None:
                tracker.persistent(True)  # kept in checkpoints, so a resumed run remembers its best

    def update_metrics(self, batch: Any, stage: str) -> torch.Tensor:
        """The batch's loss, after updating ``<stage>_metrics`` (a ``ModuleDict`` of torchmetrics); per subclass."""
        raise NotImplementedError

    def _shared_step(self, batch: Any, batch_idx: int, stage: str) -> torch.Tensor:
        loss = self.update_metrics(batch, stage)
        if batch_idx == 0:
            # Lightning computes a logged metric object at the end of the epoch, so registering it once per
            # epoch is enough; a self.log call every step costs more than the step itself on small models.
            logged = {f"{stage}/{name}": metric for name, metric in getattr(self, f"{stage}_metrics").items()}
            self.log_dict(logged, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def on_train_start(self) -> None:
        if self.trainer.ckpt_path is None:  # a resumed run keeps its restored best (and skips the sanity check)
            for tracker in (self.val_best, self.val_loss_best):  # the sanity check's validation must not count
                if tracker is not None:
                    tracker.reset()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, batch_idx, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._shared_step(batch, batch_idx, "val")

    def on_validation_epoch_end(self) -> None:
        self.val_best.update(self.val_metrics[self.best_of].compute())
        self.log(
            f"val/{self.best_of}_best", self.val_best.compute(), prog_bar=True, sync_dist=True
        )  # same on all ranks
        if self.val_loss_best is not None:
            self.val_loss_best.update(self.val_metrics["loss"].compute())
            self.log("val/loss_best", self.val_loss_best.compute(), sync_dist=True)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._shared_step(batch, batch_idx, "test")

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

    def configure_callbacks(self) -> list[L.Callback]:
        """``ScheduleFreeModes`` when the optimizer is schedule-free: it switches the optimizer's train / eval modes
        wherever the model switches (also in the LR finder's fits and in ``trainer.test``)."""
        return schedule_free_callbacks(self.optimizer_spec)

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
