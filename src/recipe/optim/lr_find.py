"""The LR range test: Lightning's ``Tuner.lr_find`` over log-spaced LRs, its plot saved as a PNG and shown in
TensorBoard, and the suggested LR handed back so that the optimizer and its schedule are built around it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.tuner import Tuner
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from matplotlib.figure import Figure

from recipe.errors import config_error

PLOT = "lr_find.png"
ACTIONS = ("off", "plot", "apply", "only")
MODES = ("exponential", "linear")


@dataclass(frozen=True)
class LRRangeTest:
    """The ``lr_find`` settings: what to do with the range test, and how to sweep.

    Args:
        action: ``off``; ``plot`` (save the plot, print the suggestion); ``apply`` (also train with it);
            ``only`` (stop after the plot).
        min_lr, max_lr: the LRs the sweep starts and ends at.
        num_training: steps of the sweep, one LR each.
        mode: ``exponential`` (log-spaced LRs) or ``linear``.
        early_stop_threshold: stop once the loss exceeds this multiple of its best; ``None`` sweeps to ``max_lr``.
    """

    action: Literal["off", "plot", "apply", "only"] = "off"
    min_lr: float = 1e-7
    max_lr: float = 1.0
    num_training: int = 100
    mode: Literal["exponential", "linear"] = "exponential"
    early_stop_threshold: float | None = 4.0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise config_error("lr_find", self.action, f"choose one of {list(ACTIONS)}")
        if not 0 < self.min_lr < self.max_lr:
            raise config_error("lr_find.min_lr", self.min_lr, f"must be > 0 and below lr_find.max_lr={self.max_lr}")
        if self.mode not in MODES:
            raise config_error("lr_find.mode", self.mode, f"choose one of {list(MODES)}")
        if self.num_training < 20:
            raise config_error("lr_find.num_training", self.num_training, "must be >= 20 (the suggestion skips 10)")
        if self.early_stop_threshold is not None and self.early_stop_threshold <= 1:
            raise config_error("lr_find.early_stop_threshold", self.early_stop_threshold, "must be > 1, or null")

    @property
    def wanted(self) -> bool:
        """Whether a range test runs before training."""
        return self.action != "off"


def suggest(lrs: list[float], losses: list[float], skip_begin: int = 10, skip_end: int = 1) -> float | None:
    """The LR where the loss falls fastest per decade of LR.

    Lightning's ``suggestion()`` takes the slope per unit of LR, which on log-spaced LRs favours the smallest
    LRs, where the loss has not started to fall yet. The slope against ``log10(lr)`` is the one the plot shows.
    """
    points = [(math.log10(lr), loss) for lr, loss in zip(lrs, losses, strict=True)][skip_begin:-skip_end]
    points = [(x, y) for x, y in points if math.isfinite(y)]
    if len(points) < 2:
        return None
    x, y = torch.tensor(points, dtype=torch.float64).T
    return float(10 ** x[torch.gradient(y, spacing=[x])[0].argmin()])


def find_lr(
    trainer: L.Trainer, module: L.LightningModule, datamodule: L.LightningDataModule, settings: LRRangeTest
) -> float | None:
    """Run the range test on ``trainer`` (which then fits as usual), save and log the plot, print the suggestion.

    The module's own schedule is set aside during the test (Lightning swaps in its LR sweep anyway), so a
    warmup longer than the test's few steps is not mistaken for a bad config; and ``trainer.max_epochs`` is
    lifted, so a short run or a small data set does not cut the sweep before ``max_lr``.
    """
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
            update_attr=False,  # the caller makes the suggestion the run's LR (recipe.optim.resolve_lr)
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
        "training with it"
        if settings.action == "apply"
        else f"train with it: lr_find=apply or optimizer.lr={suggestion:.3g}"
    )
    rank_zero_info(f"LR finder: suggested lr={suggestion:.3g} (steepest fall of the loss); plot: {path}; {advice}")
    return float(suggestion)
