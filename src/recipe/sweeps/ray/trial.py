"""The Tune trial a Ray worker is running now, reachable from the training job's callback (as
``recipe.sweeps.trial`` is for Optuna): the basic launcher runs the job in the worker's own process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class TuneTrial:
    """What the training job of a Tune trial reports and what it changes after a restore.

    Args:
        metric: the logged metric reported to Tune after each validation (``optimized_metric``).
        mutated: config keys whose new values replace those in a restored optimizer (PBT's mutations): the
            checkpoint gives the state (weights, moments, step, data position, RNG), the trial's config the values.
    """

    metric: str
    mutated: list[str] = field(default_factory=list)


OUTPUT_DIR_KEY = "output_dir"  # reported to Tune with each result: the trial's run folder

_active: TuneTrial | None = None


@contextmanager
def tune_trial(trial: TuneTrial) -> Iterator[TuneTrial]:
    """Make ``trial`` the current one for the duration of the block."""
    global _active
    _active = trial
    try:
        yield trial
    finally:
        _active = None


def current_tune_trial() -> TuneTrial | None:
    """The Tune trial this process trains, or ``None`` outside a Ray Tune search."""
    return _active
