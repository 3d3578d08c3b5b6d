"""Guards that catch the common training mistakes as they happen: a diverging loss, BatchNorm on tiny batches.

Lightning has no callback that stops on a non-finite training loss the step it appears (``EarlyStopping``'s
``check_finite`` looks at a validation metric, at the end of an epoch), so ``DivergenceGuard`` is written here.
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

from recipe.callbacks.resume import last_checkpoint_path
from recipe.errors import TrainingDiverged, require_positive_int

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class DivergenceGuard(Callback):
    """Stops the run before the backward pass of the first NaN or infinite loss, so no broken weights are
    stepped into or checkpointed, with one message naming the step, the LR and what to try.

    Args:
        check_every_n_steps: check the loss every this many optimizer steps (each check waits for the GPU).
    """

    def __init__(self, check_every_n_steps: int = 1) -> None:
        require_positive_int("callbacks.divergence_guard.check_every_n_steps", check_every_n_steps)
        self.every = check_every_n_steps

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        if trainer.global_step % self.every:
            return
        bad = not bool(torch.isfinite(loss.detach()).all())
        if not trainer.strategy.reduce_boolean_decision(bad, all=False):
            return
        lr = trainer.optimizers[0].param_groups[0]["lr"]  # the schedule's LR now, which warmup keeps below the peak
        peak = getattr(pl_module, "lr", None)  # the run's resolved LR (recipe.optim.PeakLR)
        configured = peak.configured if peak is not None else lr
        checkpoint = last_checkpoint_path(trainer)
        kept = (
            f"the last good checkpoint, {checkpoint}, is kept"
            if checkpoint and checkpoint.is_file()
            else "no checkpoint was written"
        )
        raise TrainingDiverged(
            f"training diverged: loss={loss.item()} at step {trainer.global_step} (epoch {trainer.current_epoch}) "
            f"with lr={lr:.3g}; try optimizer.lr={configured / 10:.3g} (optimizer.lr / 10), "
            f"trainer.gradient_clip_val=1.0 or trainer.precision=bf16-mixed; {kept}"
        )


class BatchNormCheck(Callback):
    """Warns when a model with BatchNorm sees fewer than ``min_samples`` samples per device per step:
    batch statistics over so few samples are noise, while GroupNorm and LayerNorm do not depend on the batch.

    Args:
        min_samples: the smallest per-device batch BatchNorm is trusted with (the recipe's 8).
    """

    def __init__(self, min_samples: int = 8) -> None:
        require_positive_int("callbacks.batch_norm_check.min_samples", min_samples)
        self.min_samples = min_samples

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        batch = getattr(trainer.datamodule, "per_device_batch_size", None)
        has_batch_norm = any(isinstance(m, BATCH_NORMS) for m in pl_module.modules())
        if has_batch_norm and batch is not None and batch < self.min_samples:
            rank_zero_warn(
                f"BatchNorm with {batch} samples per device per step (< {self.min_samples}): its batch statistics "
                "are noise; use model.norm=group or model.norm=layer, or a larger data.batch_size"
            )
