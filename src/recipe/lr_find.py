"""The LR range test: Lightning's ``Tuner.lr_find`` over log-spaced LRs, its plot saved as a PNG and shown in
TensorBoard, and the suggested LR handed to the optimizer spec so the schedule is built around it."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.tuner import Tuner
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from matplotlib.figure import Figure
from omegaconf import DictConfig

from recipe.errors import config_error
from recipe.module import Classifier

PLOT = "lr_find.png"
MODES = ("exponential", "linear")


def wanted(settings: DictConfig | None, ckpt_path: str | None = None) -> bool:
    """Whether the ``lr_find`` settings ask for a range test (``apply`` and ``only`` imply it)."""
    if not settings or not (settings.enabled or settings.apply or settings.only):
        return False
    if ckpt_path:
        raise config_error("lr_find.enabled", True, "not with ckpt_path: a resumed run keeps its optimizer's LR")
    return True


def _check(s: DictConfig) -> None:
    if not 0 < s.min_lr < s.max_lr:
        raise config_error("lr_find.min_lr", s.min_lr, f"must be > 0 and below lr_find.max_lr={s.max_lr}")
    if s.mode not in MODES:
        raise config_error("lr_find.mode", s.mode, f"choose one of {list(MODES)}")
    if s.num_training < 20:
        raise config_error("lr_find.num_training", s.num_training, "must be >= 20 (the suggestion skips the first 10)")
    if s.early_stop_threshold is not None and s.early_stop_threshold <= 1:
        raise config_error("lr_find.early_stop_threshold", s.early_stop_threshold, "must be > 1, or null to never stop")


def suggest(lrs: list[float], losses: list[float], skip_begin: int = 10, skip_end: int = 1) -> float | None:
    """The LR where the loss falls fastest per decade of LR.

    Lightning's ``suggestion()`` takes the slope per unit of LR, which on log-spaced LRs favours the smallest
    LRs: on the digits MLP it picks 5e-5, where the loss has not started to fall, while the fall is steepest
    near 2e-3. The slope against ``log10(lr)`` is the one the plot shows.
    """
    points = [(math.log10(lr), loss) for lr, loss in zip(lrs, losses, strict=True)][skip_begin:-skip_end]
    points = [(x, y) for x, y in points if math.isfinite(y)]
    if len(points) < 2:
        return None
    x, y = torch.tensor(points, dtype=torch.float64).T
    return float(10 ** x[torch.gradient(y, spacing=[x])[0].argmin()])


def find_lr(
    trainer: L.Trainer, module: Classifier, datamodule: L.LightningDataModule, settings: DictConfig
) -> float | None:
    """Run the range test on ``trainer`` (which then fits as usual), save and log the plot, print the suggestion.

    The module's own schedule is set aside during the test (Lightning swaps in its LR sweep anyway), so a
    warmup longer than the test's few steps is not mistaken for a bad config; and ``trainer.max_epochs`` is
    lifted, so a short run or a small data set does not cut the sweep before ``max_lr``.
    """
    _check(settings)
    schedule, module.scheduler_spec = module.scheduler_spec, None
    max_epochs, trainer.fit_loop.max_epochs = trainer.fit_loop.max_epochs, -1
    try:
        result = Tuner(trainer).lr_find(
            module,
            datamodule=datamodule,
            min_lr=settings.min_lr,
            max_lr=settings.max_lr,
            num_training=settings.num_training,
            mode=settings.mode,
            early_stop_threshold=settings.early_stop_threshold,
            update_attr=False,  # the LR goes into the optimizer spec, see apply_lr
        )
    finally:
        module.scheduler_spec, trainer.fit_loop.max_epochs = schedule, max_epochs
    if result is None:  # fast_dev_run: Lightning skips the test
        return None
    suggestion = (
        suggest(result.results["lr"], result.results["loss"]) if settings.mode == "exponential" else result.suggestion()
    )
    figure = Figure(figsize=(6.4, 4.8), layout="constrained")  # no pyplot: no GUI backend needed
    ax = figure.subplots()
    result.plot(ax=ax)
    if suggestion:
        ax.axvline(suggestion, color="red", linestyle="--", label=f"suggested lr = {suggestion:.3g}")
        ax.legend()
    ax.set_title("LR range test")
    path = Path(trainer.default_root_dir) / PLOT
    if trainer.is_global_zero:
        figure.savefig(path, dpi=100)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_figure("lr_find", figure, global_step=0)
                logger.experiment.flush()
    if suggestion is None:
        rank_zero_warn(
            f"LR finder: only {len(result.results['lr'])} steps ran, too few for a suggestion; "
            "raise trainer.max_epochs or trainer.limit_train_batches"
        )
        return None
    advice = (
        "training with it" if settings.apply else f"train with it: lr_find.apply=true or optimizer.lr={suggestion:.3g}"
    )
    rank_zero_info(f"LR finder: suggested lr={suggestion:.3g} (steepest fall of the loss); plot: {path}; {advice}")
    return float(suggestion)


def apply_lr(module: Classifier, lr: float) -> float:
    """Make ``lr`` the peak LR the optimizer and its schedule are built with.

    The range test ran at the real batch size, so ``lr`` is already the scaled LR: the spec's ``lr`` is set
    so that ``lr_scaling`` gives ``lr`` back. Returns the new ``optimizer.lr``.
    """
    schedule = module.scheduler_spec
    if schedule is not None and schedule.options.get("max_lr") is not None:
        raise config_error(
            "scheduler.max_lr", schedule.options["max_lr"], "must be null for lr_find.apply to set the peak"
        )
    spec = module.optimizer_spec
    global_batch = module._global_batch_size()
    spec.lr = lr * spec.lr / spec.scaled_lr(global_batch)
    if schedule is not None:
        schedule.check_lr(spec.lr)
    return spec.lr
