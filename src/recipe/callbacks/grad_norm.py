"""Log the gradient norm before clipping, so clipping can be seen working in TensorBoard."""

from __future__ import annotations

import math

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.strategies import FSDPStrategy
from torch.distributed import ReduceOp
from torch.optim import Optimizer

from recipe.errors import config_error
from recipe.runtime.private_api import logger_writes_this_step


class GradNormMonitor(Callback):
    """Logs the total gradient norm of the model as ``train/grad_norm`` at the optimizer steps the logger writes
    (every ``trainer.log_every_n_steps``).

    Lightning calls ``on_before_optimizer_step`` after the backward passes of the step (all accumulated
    batches), after unscaling under ``16-mixed`` and before clipping, so the value is the true norm that
    ``trainer.gradient_clip_val`` is compared with. It uses ``torch.nn.utils.get_total_norm``, the norm
    ``clip_grad_norm_`` computes, kept on the device (Lightning's ``grad_norm`` copies one number per
    parameter to the host each step). Under FSDP each process holds a shard of the gradients, so the
    shards' norms are combined across processes; under DDP the gradients are averaged and equal on every rank.

    Args:
        norm_type: the p of the p-norm (``2.0``; ``inf`` for the largest absolute value).
        name: the metric's name.
    """

    def __init__(self, norm_type: float = 2.0, name: str = "train/grad_norm") -> None:
        norm_type = float(norm_type)
        if not norm_type > 0:
            raise config_error("callbacks.grad_norm.norm_type", norm_type, "must be > 0 (or inf)")
        self.norm_type, self.name = norm_type, name

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Optimizer) -> None:
        if not logger_writes_this_step(trainer):  # as LearningRateMonitor: only the steps the logger writes
            return
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        if not grads:
            return
        norm = torch.nn.utils.get_total_norm(grads, self.norm_type)
        if isinstance(trainer.strategy, FSDPStrategy):
            norm = self._combine_shards(trainer, norm)
        pl_module.log(self.name, norm, on_step=True, on_epoch=False)

    def _combine_shards(self, trainer: L.Trainer, norm: torch.Tensor) -> torch.Tensor:
        if math.isinf(self.norm_type):
            return trainer.strategy.reduce(norm, reduce_op=ReduceOp.MAX)
        total = trainer.strategy.reduce(norm**self.norm_type, reduce_op=ReduceOp.SUM)
        return total ** (1.0 / self.norm_type)
