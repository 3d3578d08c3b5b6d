"""LR multipliers as pure functions of the scheduler tick (a tick is one ``scheduler.step()``).

``LambdaLR`` multiplies each group's LR by ``Schedule(tick)``. Keeping the formulas here, apart from torch,
lets tests check the LR at any step against its formula without training (the transformers approach).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field


def linear_warmup(tick: int, warmup: int, start_factor: float) -> float:
    """Rises linearly from ``start_factor`` at tick 0 to 1 at tick ``warmup``; 1 afterwards."""
    if tick >= warmup:
        return 1.0
    return start_factor + (1.0 - start_factor) * tick / warmup


def cosine_decay(progress: float, min_ratio: float) -> float:
    """Half a cosine from 1 at ``progress`` 0 to ``min_ratio`` at ``progress`` 1."""
    progress = min(max(progress, 0.0), 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def step_decay(epoch: int, gamma: float, step_size: int | None, milestones: Sequence[int]) -> float:
    """StepLR's rule (``gamma`` every ``step_size`` epochs) or MultiStepLR's (``gamma`` at each milestone)."""
    drops = sum(epoch >= m for m in milestones) if milestones else epoch // step_size
    return gamma**drops


@dataclass(frozen=True)
class Schedule:
    """Warmup then a decay, over ``total`` ticks; the last tick, ``total - 1``, reaches the decay's floor.

    Args:
        decay: ``"cosine"`` (down to ``min_ratio``), ``"step"`` (epoch-wise drops) or ``"constant"``.
        total: ticks in the run (``inf`` when unbounded; only ``constant`` and ``step`` allow that).
        warmup: ticks of linear warmup from ``start_factor`` to 1.
        ticks_per_epoch: converts a tick to an epoch for ``step``.
    """

    decay: str
    total: float
    warmup: int = 0
    start_factor: float = 0.0
    min_ratio: float = 0.0
    gamma: float = 0.1
    step_size: int | None = None
    milestones: tuple[int, ...] = field(default_factory=tuple)
    ticks_per_epoch: float = 1.0

    def __call__(self, tick: int) -> float:
        factor = linear_warmup(tick, self.warmup, self.start_factor)
        if self.decay == "cosine" and tick >= self.warmup:
            factor *= cosine_decay((tick - self.warmup) / max(1.0, self.total - 1 - self.warmup), self.min_ratio)
        elif self.decay == "step":
            factor *= step_decay(int(tick // self.ticks_per_epoch), self.gamma, self.step_size, self.milestones)
        return factor
