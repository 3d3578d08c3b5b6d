"""Guards that catch the common training mistakes as they happen: a diverging loss, BatchNorm on tiny batches.

Lightning has no callback that stops on a non-finite loss as an error: ``EarlyStopping``'s ``check_finite`` looks
at a validation metric at the end of an epoch and ends the run as a normal one, which still checkpoints and tests
that epoch. So ``DivergenceGuard`` is written here.
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

from recipe.callbacks.resume import last_checkpoint_path
from recipe.data.contract import optional
from recipe.errors import TrainingDiverged, require_positive_int
from recipe.runtime.checkpoint_io import wait_for_checkpoints
from recipe.runtime.private_api import logger_writes_this_step

VAL_LOSS = "val/loss"
MAX_KEPT = 1000  # training losses kept unread at most (with the logger off, the guard still reads them this often)
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def _warms_up(pl_module: L.LightningModule) -> bool:
    spec = getattr(pl_module, "scheduler_spec", None)
    optimizer = getattr(pl_module, "optimizer_spec", None)
    own_warmup = optimizer is not None and optimizer.torch_kwargs.get("warmup_steps")  # schedule-free
    return bool(own_warmup or (spec is not None and (spec.name == "onecycle" or spec.options.get("warmup"))))


def stability_fixes(trainer: L.Trainer, pl_module: L.LightningModule) -> list[str]:
    """What to try against a diverging loss, each a ``key=value`` with why, leaving out what the run already
    does: clipping when it clips, a warmup when it warms up, bf16 unless it trains in fp16 (where it overflows)."""
    peak = getattr(pl_module, "lr", None)  # the run's resolved LR (recipe.optim.PeakLR)
    lr = peak.configured if peak is not None else trainer.optimizers[0].param_groups[0]["lr"]
    fixes = [f"optimizer.lr={lr / 10:.3g} (optimizer.lr / 10)"]
    if not trainer.gradient_clip_val:
        fixes.append("trainer.gradient_clip_val=1.0 (clip the gradient norm)")
    if not _warms_up(pl_module):
        spec = getattr(pl_module, "scheduler_spec", None)
        takes_warmup = spec is not None and "warmup" in spec.kind.options
        fixes.append(f"{'scheduler.warmup=0.05' if takes_warmup else 'scheduler=warmup_cosine'} (warm up the LR)")
    if trainer.precision in ("16-mixed", "16-true"):
        fixes.append("trainer.precision=bf16-mixed (fp16 overflows above 65504)")
    return fixes


class DivergenceGuard(Callback):
    """Stops the run on a NaN or infinite loss, with one message naming where, the LR and what to try
    (``stability_fixes``): a training loss within ``trainer.log_every_n_steps`` steps, and always before a checkpoint
    is written, so no checkpoint ever holds the weights it broke; a validation loss (``val/loss``) at the end of its
    validation, before the checkpoint callbacks run (Lightning calls them last), so that epoch is never kept as the
    best or the last checkpoint.

    Reading a loss on the GPU waits for the device, so the host cannot queue the next step's work meanwhile: each
    step's training loss is only kept (a reference, no copy, no kernel), and they are read together, one wait, at
    the steps the logger writes (which wait for the device anyway), at the end of each epoch and before each
    checkpoint. The message names the first non-finite loss and its step.

    Args:
        check_every_n_steps: read the training losses every this many optimizer steps instead, before the backward
            pass; ``1`` stops at the first NaN before its weights are stepped, at one wait for the GPU per step.
            ``null`` (the default): at the steps the logger writes.
    """

    def __init__(self, check_every_n_steps: int | None = None) -> None:
        if check_every_n_steps is not None:
            require_positive_int("callbacks.divergence_guard.check_every_n_steps", check_every_n_steps)
        self.every = check_every_n_steps
        self._losses: list[torch.Tensor] = []  # the training losses not read yet
        self._steps: list[tuple[int, int]] = []  # their (step, epoch)

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        self._losses.append(loss.detach())
        self._steps.append((trainer.global_step, trainer.current_epoch))
        due = logger_writes_this_step(trainer) if self.every is None else trainer.global_step % self.every == 0
        if due or len(self._losses) >= MAX_KEPT:
            self._check_training_losses(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check_training_losses(trainer, pl_module)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        self._check_training_losses(trainer, pl_module)  # raising here, the checkpoint is never written

    def _check_training_losses(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        losses, steps = self._losses, self._steps
        self._losses, self._steps = [], []
        finite = torch.isfinite(torch.stack(losses)) if losses else None
        bad = finite is not None and not bool(finite.all())  # the one wait for the device
        if trainer.strategy.reduce_boolean_decision(bad, all=False):
            if not bad:
                self._stop(trainer, pl_module, "loss=nan on another process")
            first = int((~finite).int().argmax())
            self._stop(trainer, pl_module, f"loss={float(losses[first])}", *steps[first])

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn != TrainerFn.FITTING:  # trainer.validate() on a checkpoint: nothing to stop
            return
        self._check_training_losses(trainer, pl_module)  # the checkpoint callbacks save next
        loss = trainer.callback_metrics.get(VAL_LOSS)  # already reduced over processes: every rank sees the same
        if loss is not None and not bool(torch.isfinite(loss).all()):
            self._stop(trainer, pl_module, f"{VAL_LOSS}={loss.item()} in validation")

    def _stop(
        self, trainer: L.Trainer, pl_module: L.LightningModule, what: str, step: int | None = None, epoch: int = 0
    ) -> None:
        """Raise ``TrainingDiverged``: ``what`` happened at ``step`` of ``epoch`` (default: now)."""
        if step is None:
            step, epoch = trainer.global_step, trainer.current_epoch
        lr = trainer.optimizers[0].param_groups[0]["lr"]  # the schedule's LR now, which warmup keeps below the peak
        checkpoint = last_checkpoint_path(trainer)
        wait_for_checkpoints(trainer)  # the last good epoch's save may still be under way
        kept = (
            f"the last good checkpoint, {checkpoint}, is kept"
            if checkpoint and checkpoint.is_file()
            else "no checkpoint was written"
        )
        raise TrainingDiverged(
            f"training diverged: {what} at step {step} (epoch {epoch}) "
            f"with lr={lr:.3g}; try {', '.join(stability_fixes(trainer, pl_module))}; {kept}"
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
        batch = optional(trainer.datamodule, "per_device_batch_size")
        has_batch_norm = any(isinstance(m, BATCH_NORMS) for m in pl_module.modules())
        if has_batch_norm and batch is not None and batch < self.min_samples:
            rank_zero_warn(
                f"BatchNorm with {batch} samples per device per step (< {self.min_samples}): its batch statistics "
                "are noise; use model.norm=group or model.norm=layer, or a larger data.batch_size"
            )
