"""Schedulers built from the ``scheduler`` config group and the run length the Trainer reports.

Warmup, cosine, linear, warmup-stable-decay, cosine with restarts, step and constant are ``Schedule`` multipliers
in a ``LambdaLR``; OneCycle and plateau are torch's own classes. Each kind knows the interval it must be stepped at,
so a per-epoch rule is never stepped per batch; total steps always come from ``trainer.estimated_stepping_batches``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytorch_optimizer
import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR, ReduceLROnPlateau

from recipe.errors import ConfigError, config_error, require_positive_int
from recipe.optim.lr_lambdas import DECAY_SHAPES, Schedule, first_cycle
from recipe.optim.optimizers import is_schedule_free

_WARMUP = {"warmup", "warmup_start_factor"}
_ANNEALS = {  # name -> Schedule.decay
    "warmup_cosine": "cosine",
    "cosine": "cosine",
    "linear": "linear",
    "wsd": "wsd",
    "cosine_restarts": "cosine_restarts",
}


def _torch_options(cls: type, *exclude: str) -> set[str]:
    skip = {"self", "optimizer", "last_epoch", "verbose", *exclude}
    return set(inspect.signature(cls.__init__).parameters) - skip


@dataclass(frozen=True)
class Kind:
    """What a scheduler name means: how it is stepped and which options it takes."""

    interval: str
    options: frozenset[str]
    monitor: str | None = None


SCHEDULERS: dict[str, Kind] = {
    "warmup_cosine": Kind("step", frozenset({*_WARMUP, "min_lr"})),
    "cosine": Kind("step", frozenset({*_WARMUP, "min_lr"})),
    "linear": Kind("step", frozenset({*_WARMUP, "min_lr"})),
    "wsd": Kind("step", frozenset({*_WARMUP, "min_lr", "decay", "decay_shape"})),
    "cosine_restarts": Kind("step", frozenset({*_WARMUP, "min_lr", "cycles", "cycle_mult"})),
    "step": Kind("step", frozenset({*_WARMUP, "step_size", "milestones", "gamma"})),
    "constant": Kind("step", frozenset(_WARMUP)),
    "onecycle": Kind("step", frozenset(_torch_options(OneCycleLR, "total_steps", "epochs", "steps_per_epoch"))),
    "plateau": Kind("epoch", frozenset(_torch_options(ReduceLROnPlateau)), monitor="val/loss"),
}


@dataclass(frozen=True)
class RunLength:
    """How long the run is in optimizer steps (``inf`` when unbounded) and steps per epoch."""

    total_steps: float
    steps_per_epoch: float

    @classmethod
    def from_trainer(cls, trainer: Any) -> RunLength:
        total = float(trainer.estimated_stepping_batches)  # sets up the train data when the run is bounded
        per_epoch = trainer.num_training_batches / trainer.accumulate_grad_batches
        return cls(total, float(math.ceil(per_epoch)) if math.isfinite(per_epoch) else math.inf)

    def ticks(self, interval: str, frequency: int) -> float:
        if interval == "epoch" and math.isfinite(self.total_steps):
            return math.ceil(self.total_steps / self.steps_per_epoch) / frequency
        return self.total_steps / frequency


class SchedulerSpec:
    """A scheduler name with its options, checked when the config is instantiated.

    Args:
        name: one of ``SCHEDULERS``.
        interval: ``step`` or ``epoch``; ``None`` picks the kind's own.
        frequency: step the scheduler every ``frequency`` intervals.
        monitor: metric for ``plateau``; ``None`` picks ``val/loss``.
        **options: the kind's options (``warmup``: a fraction of the run below 1, or a whole number of ticks,
            ``2.0`` as ``2``;
            ``min_lr``; ``decay`` and ``decay_shape`` for ``wsd``; ``cycles`` and ``cycle_mult`` for
            ``cosine_restarts``; ``step_size``/``milestones``/``gamma``; any
            OneCycleLR or ReduceLROnPlateau argument).
    """

    def __init__(
        self,
        name: str,
        interval: str | None = None,
        frequency: int = 1,
        monitor: str | None = None,
        **options: Any,
    ) -> None:
        if name not in SCHEDULERS:
            raise config_error("scheduler.name", name, f"choose one of {sorted(SCHEDULERS)}")
        kind = SCHEDULERS[name]
        unknown = set(options) - kind.options
        if unknown:
            key = sorted(unknown)[0]
            raise config_error(
                f"scheduler.{key}",
                options[key],
                f"not an option of scheduler={name}; allowed: {sorted(kind.options)}",
            )
        if interval not in (None, "step", "epoch"):
            raise config_error("scheduler.interval", interval, "choose 'step' or 'epoch'")
        require_positive_int("scheduler.frequency", frequency)
        warmup = options.get("warmup", 0)
        if (
            isinstance(warmup, bool)
            or not isinstance(warmup, (int, float))
            or warmup < 0
            or (isinstance(warmup, float) and warmup >= 1 and not warmup.is_integer())
        ):
            raise config_error("scheduler.warmup", warmup, "a fraction of the run in [0, 1) or a whole number of steps")
        if isinstance(warmup, float) and warmup >= 1:  # 2.0 is two steps, as 2 is; only a float below 1 is a fraction
            options["warmup"] = int(warmup)
        if not 0 <= options.get("warmup_start_factor", 0.0) <= 1:
            raise config_error("scheduler.warmup_start_factor", options["warmup_start_factor"], "must be in [0, 1]")
        if options.get("min_lr", 0.0) < 0:
            raise config_error("scheduler.min_lr", options["min_lr"], "must be >= 0")
        if not 0 < options.get("decay", 0.2) <= 1:
            raise config_error("scheduler.decay", options["decay"], "the decaying fraction of the run, in (0, 1]")
        if options.get("decay_shape", "cosine") not in DECAY_SHAPES:
            raise config_error("scheduler.decay_shape", options["decay_shape"], f"choose one of {list(DECAY_SHAPES)}")
        require_positive_int("scheduler.cycles", options.get("cycles", 1))
        if not options.get("cycle_mult", 1.0) >= 1:
            raise config_error("scheduler.cycle_mult", options["cycle_mult"], "each cycle's length over the last, >= 1")
        if name == "step" and not (options.get("step_size") or options.get("milestones")):
            raise ConfigError(
                "scheduler=step: set scheduler.step_size (epochs) or scheduler.milestones (a list of epochs)"
            )
        self.name, self.kind = name, kind
        self.interval = interval or kind.interval
        self.frequency = frequency
        self.monitor = monitor or kind.monitor
        self.options = options

    def check_lr(self, lr: float) -> None:
        """Reject a floor above the peak before any training happens."""
        min_lr = self.options.get("min_lr", 0.0)
        if self.name in _ANNEALS and min_lr > lr:
            raise config_error("scheduler.min_lr", min_lr, f"must not exceed optimizer.lr={lr}")

    def __repr__(self) -> str:
        return f"SchedulerSpec({self.name}, interval={self.interval}, {self.options})"


def _warmup_ticks(spec: SchedulerSpec, ticks: float) -> int:
    warmup = spec.options.get("warmup", 0)
    if isinstance(warmup, float):
        warmup = round(warmup * ticks)
    if warmup and warmup >= ticks:
        raise config_error(
            "scheduler.warmup", spec.options["warmup"], f"longer than the run's {ticks:g} {spec.interval}s"
        )
    return int(warmup)


def _check_cycles(spec: SchedulerSpec, schedule: Schedule) -> None:
    """Reject restarts closer than one tick apart: each would only reset the LR to the peak."""
    length = schedule.total - 1 - schedule.warmup
    if spec.name == "cosine_restarts" and first_cycle(length, schedule.cycles, schedule.cycle_mult) < 1:
        raise config_error(
            "scheduler.cycles", schedule.cycles, f"the first cycle would be under one of the run's {length:g} ticks"
        )


def _needs_total(spec: SchedulerSpec) -> bool:
    return spec.name in (*_ANNEALS, "onecycle") or isinstance(spec.options.get("warmup"), float)


def _lambda(optimizer: torch.optim.Optimizer, spec: SchedulerSpec, run: RunLength, ticks: float) -> LRScheduler:
    opts = spec.options
    base_lr = optimizer.defaults["lr"]
    spec.check_lr(base_lr)
    ticks_per_epoch = (run.steps_per_epoch if spec.interval == "step" else 1) / spec.frequency
    milestones: Sequence[int] = opts.get("milestones") or ()
    schedule = Schedule(
        decay=_ANNEALS.get(spec.name, spec.name),
        total=ticks,
        warmup=_warmup_ticks(spec, ticks),
        start_factor=float(opts.get("warmup_start_factor", 0.0)),
        min_ratio=float(opts.get("min_lr", 0.0)) / base_lr,
        gamma=float(opts.get("gamma", 0.1)),
        step_size=opts.get("step_size"),
        milestones=tuple(milestones),
        ticks_per_epoch=ticks_per_epoch,
        shape=opts.get("decay_shape", "cosine"),
        decay_fraction=float(opts.get("decay", 0.2)),
        cycles=int(opts.get("cycles", 1)),
        cycle_mult=float(opts.get("cycle_mult", 1.0)),
    )
    _check_cycles(spec, schedule)
    # A bound method, not the Schedule itself: LambdaLR saves a callable object's fields in the checkpoint and
    # restores them over the config's, so a WSD decay branched from a stable-phase checkpoint into a longer run
    # would decay over the old length. The schedule is rebuilt from the config on resume instead.
    return LambdaLR(optimizer, schedule.__call__)


def _onecycle(optimizer: torch.optim.Optimizer, spec: SchedulerSpec, ticks: float) -> LRScheduler:
    opts = dict(spec.options)
    peak = opts.pop("max_lr", None)
    pct_start = opts.get("pct_start", 0.3)
    if pct_start * ticks < 1:  # torch would warm up over a fraction of a step: a jump, not a ramp
        raise config_error(
            "scheduler.pct_start",
            pct_start,
            f"warms up over {pct_start * ticks:g} of the run's {ticks:g} steps; needs >= 1",
        )
    # Shampoo's "momentum" mixes the gradient with its last preconditioned step, not a heavy ball: cycled to 0.85,
    # that step feeds its statistics and they turn NaN within tens of steps
    cyclable = {"momentum", "betas"} & set(optimizer.defaults) and not isinstance(optimizer, pytorch_optimizer.Shampoo)
    if opts.get("cycle_momentum", True) and not cyclable:
        raise config_error(
            "scheduler.cycle_momentum",
            opts.get("cycle_momentum", True),
            f"{type(optimizer).__name__} has no single momentum or beta1 to cycle: set it to false",
        )
    max_lr = [g["lr"] if peak is None else peak * g.get("lr_mult", 1.0) for g in optimizer.param_groups]
    return OneCycleLR(optimizer, max_lr=max_lr, total_steps=int(ticks), **opts)


def build_scheduler(optimizer: torch.optim.Optimizer, spec: SchedulerSpec, run: RunLength) -> dict[str, Any]:
    """Lightning's ``lr_scheduler`` dict: the scheduler plus the interval, frequency and monitor it needs."""
    if is_schedule_free(optimizer) and spec.name != "constant":
        raise config_error(
            "scheduler",
            spec.name,
            "a schedule-free optimizer averages its iterates instead of decaying the LR: use scheduler=constant "
            "(its warmup, or optimizer.warmup_steps, for a warmup)",
        )
    ticks = run.ticks(spec.interval, spec.frequency)
    if math.isinf(ticks) and _needs_total(spec):
        raise ConfigError(
            f"scheduler={spec.name} needs a bounded run, but trainer.max_epochs=-1 and trainer.max_steps=-1: "
            "set one of them"
        )
    if spec.name == "onecycle":
        scheduler = _onecycle(optimizer, spec, ticks)
    elif spec.name == "plateau":
        scheduler = ReduceLROnPlateau(optimizer, **spec.options)
    else:
        scheduler = _lambda(optimizer, spec, run, ticks)
    config = {"scheduler": scheduler, "interval": spec.interval, "frequency": spec.frequency, "name": "lr"}
    if spec.monitor:
        config["monitor"] = spec.monitor
    return config
