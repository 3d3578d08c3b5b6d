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


DECAY_SHAPES = ("linear", "cosine", "1-sqrt")


def anneal(progress: float, min_ratio: float, shape: str = "cosine") -> float:
    """From 1 at ``progress`` 0 to ``min_ratio`` at ``progress`` 1, shaped ``linear`` (1 - p), ``cosine``
    (half a cosine, (1 + cos(pi p)) / 2) or ``1-sqrt`` (1 - sqrt(p), Hägele et al. 2024's best WSD cooldown)."""
    p = min(max(progress, 0.0), 1.0)
    fall = {"linear": 1.0 - p, "cosine": 0.5 * (1.0 + math.cos(math.pi * p)), "1-sqrt": 1.0 - math.sqrt(p)}[shape]
    return min_ratio + (1.0 - min_ratio) * fall


def first_cycle(length: float, cycles: int, cycle_mult: float) -> float:
    """The first of ``cycles`` cycles that fill ``length`` ticks, each ``cycle_mult`` times the one before."""
    return length / sum(cycle_mult**i for i in range(cycles))


def restart_progress(t: float, length: float, cycles: int, cycle_mult: float) -> float:
    """Progress through the current cycle at ``t`` of ``length`` ticks cut into ``cycles`` cosine cycles, each
    ``cycle_mult`` times longer than the one before (SGDR's T_mult; Loshchilov and Hutter 2017). The cycles fill
    ``length`` exactly, so the last tick ends the last cycle."""
    start, span = 0.0, first_cycle(length, cycles, cycle_mult)
    for _ in range(cycles - 1):
        if t < start + span:
            break
        start, span = start + span, span * cycle_mult
    return (t - start) / span


def step_decay(epoch: int, gamma: float, step_size: int | None, milestones: Sequence[int]) -> float:
    """StepLR's rule (``gamma`` every ``step_size`` epochs) or MultiStepLR's (``gamma`` at each milestone)."""
    drops = sum(epoch >= m for m in milestones) if milestones else epoch // step_size
    return gamma**drops


@dataclass(frozen=True)
class Schedule:
    """Warmup then a decay, over ``total`` ticks; the last tick, ``total - 1``, reaches the decay's floor.

    Args:
        decay: ``"cosine"`` or ``"linear"`` (from the end of warmup down to ``min_ratio``), ``"wsd"`` (warmup,
            stable at 1, then ``shape`` down to ``min_ratio`` over the last ``decay_fraction`` of the run),
            ``"cosine_restarts"`` (SGDR: ``cycles`` cosines down to ``min_ratio``, each restarting at the peak),
            ``"step"`` (epoch-wise drops) or ``"constant"``.
        total: ticks in the run (``inf`` when unbounded; only ``constant`` and ``step`` allow that).
        warmup: ticks of linear warmup from ``start_factor`` to 1.
        ticks_per_epoch: converts a tick to an epoch for ``step``.
        shape: ``wsd``'s decay shape, one of ``DECAY_SHAPES``.
        decay_fraction: ``wsd``'s decay length as a fraction of ``total`` (it starts no earlier than the warmup ends).
        cycles, cycle_mult: ``cosine_restarts``' number of cycles after the warmup and each one's length over the
            previous one's.
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
    shape: str = "cosine"
    decay_fraction: float = 0.2
    cycles: int = 1
    cycle_mult: float = 1.0

    def decay_start(self) -> float:
        """The tick at which the LR starts falling from its peak."""
        if self.decay == "wsd":
            return max(float(self.warmup), self.total - round(self.decay_fraction * self.total))
        return float(self.warmup)

    def __call__(self, tick: int) -> float:
        factor = linear_warmup(tick, self.warmup, self.start_factor)
        if self.decay in ("cosine", "linear", "wsd"):
            start = self.decay_start()
            shape = self.shape if self.decay == "wsd" else self.decay
            if tick >= start:
                factor *= anneal((tick - start) / max(1.0, self.total - 1 - start), self.min_ratio, shape)
        elif self.decay == "cosine_restarts" and tick >= self.warmup:
            length = max(1.0, self.total - 1 - self.warmup)
            progress = restart_progress(tick - self.warmup, length, self.cycles, self.cycle_mult)
            factor *= anneal(progress, self.min_ratio, "cosine")
        elif self.decay == "step":
            factor *= step_decay(int(tick // self.ticks_per_epoch), self.gamma, self.step_size, self.milestones)
        return factor
