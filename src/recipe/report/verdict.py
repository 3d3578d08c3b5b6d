"""The verdict on a run, read from its per-epoch curves: diverged, overfitting, still improving, too few epochs,
underfitting or healthy, each with the standard fixes (docs/report.md)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from recipe.errors import config_error, require_positive_int

FIXES: dict[str, tuple[str, ...]] = {
    "diverged": (
        "lower the LR 10x (or run the LR finder: lr_find=plot)",
        "clip gradients: trainer.gradient_clip_val=1.0",
        "add warmup: scheduler=warmup_cosine",
        "train in bf16 rather than fp16: trainer.precision=bf16-mixed",
    ),
    "overfitting": (
        "more data or augmentation",
        "more dropout (model.dropout) and weight decay (optimizer.weight_decay)",
        "a smaller model",
        "early stopping on val/loss (callbacks.early_stopping.patience)",
    ),
    "still improving": ("train longer: raise trainer.max_epochs",),
    "too few epochs": ("train longer: raise trainer.max_epochs (or lower callbacks.run_report.improving_epochs)",),
    "underfitting": (
        "more capacity: a wider or deeper model",
        "train longer: raise trainer.max_epochs",
        "less regularization: lower model.dropout, optimizer.weight_decay, module.label_smoothing",
        "check the LR (lr_find=plot) and the features",
    ),
    "healthy": ("nothing to fix; tune the LR and width with a sweep for the last points",),
}


@dataclass(frozen=True)
class Thresholds:
    """When a curve counts as a symptom.

    Args:
        overfit_acc_gap: train accuracy above val accuracy by more than this, once the val loss has stopped falling,
            is overfitting.
        overfit_val_rise: val loss above its minimum by more than this fraction, while the train loss still
            falls, is overfitting.
        underfit_acc: train and val accuracy both below this is underfitting.
        improving_epochs: look at the val loss over this many last epochs (a run with fewer has too few epochs
            to be called healthy or underfitting) ...
        improving_drop: ... and call the run still improving if it fell by more than this fraction.
        diverged_ratio: an epoch's train loss above this multiple of the first step's loss has diverged.
    """

    overfit_acc_gap: float = 0.10
    overfit_val_rise: float = 0.10
    underfit_acc: float = 0.70
    improving_epochs: int = 3
    improving_drop: float = 0.01
    diverged_ratio: float = 2.0

    def __post_init__(self) -> None:
        for key in ("overfit_acc_gap", "overfit_val_rise", "underfit_acc", "improving_drop"):
            if not 0 <= getattr(self, key) <= 1:
                raise config_error(f"callbacks.run_report.{key}", getattr(self, key), "must be in [0, 1]")
        require_positive_int("callbacks.run_report.improving_epochs", self.improving_epochs)
        if self.diverged_ratio <= 1:
            raise config_error("callbacks.run_report.diverged_ratio", self.diverged_ratio, "must be > 1")


@dataclass(frozen=True)
class Verdict:
    """A diagnosis, the evidence for it and what to try (by default the standard fixes of ``FIXES``; the run
    report puts in the ones that fit the run's settings)."""

    name: str
    reason: str
    fixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.fixes:
            object.__setattr__(self, "fixes", FIXES[self.name])


Epochs = Sequence[Mapping[str, float]]


def _series(epochs: Epochs, key: str) -> list[float]:
    return [e[key] for e in epochs if key in e]


def diagnose(
    epochs: Epochs, thresholds: Thresholds, first_loss: float | None = None, diverged: str | None = None
) -> Verdict:
    """Judge a run from its epochs (``train/loss``, ``val/loss``, ``train/acc``, ``val/acc`` each).

    Args:
        epochs: one mapping of metric name to value per finished epoch.
        thresholds: what counts as a symptom.
        first_loss: the loss of the first training step (the untrained model's); ``None``: the first epoch's.
        diverged: the divergence guard's message when it stopped the run.
    """
    t = thresholds
    train_loss, val_loss = _series(epochs, "train/loss"), _series(epochs, "val/loss")
    if diverged:
        return Verdict("diverged", diverged)
    if any(not math.isfinite(v) for v in train_loss + val_loss):
        return Verdict("diverged", "a loss became NaN or infinite")
    reference = first_loss if first_loss is not None else (train_loss[0] if train_loss else math.inf)
    if train_loss and max(train_loss) > t.diverged_ratio * reference:
        return Verdict(
            "diverged",
            f"train loss reached {max(train_loss):.3g}, over {t.diverged_ratio:g}x the first step's {reference:.3g}",
        )
    train_acc, val_acc = _series(epochs, "train/acc"), _series(epochs, "val/acc")
    # an accuracy gap while the val loss reaches new lows is a model that still improves (on a small val split
    # the accuracy moves in coarse steps); once the val loss stops setting new lows, the gap is overfitting
    new_low = len(val_loss) >= 2 and val_loss[-1] < (1 - t.improving_drop) * min(val_loss[:-1])
    if train_acc and val_acc and len(val_loss) >= 2 and not new_low and train_acc[-1] - val_acc[-1] > t.overfit_acc_gap:
        return Verdict(
            "overfitting",
            f"train acc {train_acc[-1]:.3f} is {train_acc[-1] - val_acc[-1]:.3f} above val acc {val_acc[-1]:.3f} "
            f"and the val loss sets no new low (its minimum: {min(val_loss):.3g})",
        )
    if (
        len(val_loss) >= 2
        and val_loss[-1] > (1 + t.overfit_val_rise) * min(val_loss)
        and train_loss[-1] < train_loss[0]
    ):
        return Verdict(
            "overfitting",
            f"val loss rose from its minimum {min(val_loss):.3g} to {val_loss[-1]:.3g} while train loss kept falling",
        )
    window = val_loss[-(t.improving_epochs + 1) :]
    if len(window) >= 2 and window[-1] < (1 - t.improving_drop) * window[0]:
        return Verdict(
            "still improving",
            f"val loss fell from {window[0]:.3g} to {window[-1]:.3g} in the last {len(window) - 1} epoch(s)",
        )
    if len(val_loss) <= t.improving_epochs:
        seen = f"{len(val_loss)} validated epoch(s) show no symptom yet" if val_loss else "no validation epoch finished"
        return Verdict("too few epochs", f"{seen}; calling the val loss settled takes {t.improving_epochs + 1}")
    if train_acc and val_acc and max(train_acc[-1], val_acc[-1]) < t.underfit_acc:
        return Verdict(
            "underfitting",
            f"train acc {train_acc[-1]:.3f} and val acc {val_acc[-1]:.3f} are both below {t.underfit_acc:g}",
        )
    return Verdict(
        "healthy", f"val loss settled at {val_loss[-1]:.3g}, train and val accuracy within {t.overfit_acc_gap:g}"
    )
