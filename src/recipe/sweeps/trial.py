"""The Optuna trial a sweep is running now, reachable from inside the training job.

Hydra's basic launcher runs each job in the sweeper's own process, so a module-level handle is enough for
the sweeper to hand a trial to a callback built by the job's config, and for the callback to hand back
whether it pruned the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import optuna


@dataclass
class ActiveTrial:
    """A trial being trained, and why it was pruned (``None`` while it was not).

    Args:
        trial: the Optuna trial the training reports to.
        pruned: the reason the training stopped early, set by the pruning callback.
        deadline: ``time.monotonic()`` after which the search's time budget is spent (``None``: no budget).
    """

    trial: optuna.Trial
    pruned: str | None = None
    deadline: float | None = None


_active: ActiveTrial | None = None


@contextmanager
def active_trial(trial: optuna.Trial, deadline: float | None = None) -> Iterator[ActiveTrial]:
    """Make ``trial`` the current one for the duration of the block."""
    global _active
    _active = ActiveTrial(trial, deadline=deadline)
    try:
        yield _active
    finally:
        _active = None


def current_trial() -> ActiveTrial | None:
    """The trial of the running sweep job, or ``None`` outside an Optuna sweep."""
    return _active


def pruned_reason() -> str | None:
    """Why the running sweep job's trial was pruned; ``None`` when it was not, or outside an Optuna sweep."""
    return _active.pruned if _active else None
