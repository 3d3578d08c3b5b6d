"""Optimizers and LR schedules built from config specs and the Trainer's step count."""

from recipe.optim.optimizers import OPTIMIZERS, OptimizerSpec, PeakLR, build_optimizer, resolve_lr
from recipe.optim.param_groups import split_param_groups
from recipe.optim.schedulers import SCHEDULERS, SchedulerSpec, build_scheduler

__all__ = [
    "OPTIMIZERS",
    "SCHEDULERS",
    "OptimizerSpec",
    "PeakLR",
    "SchedulerSpec",
    "build_optimizer",
    "build_scheduler",
    "resolve_lr",
    "split_param_groups",
]
