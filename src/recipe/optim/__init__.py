"""Optimizers and LR schedules built from config specs and the Trainer's step count."""

from recipe.optim.optimizers import OPTIMIZERS, OptimizerSpec, build_optimizer
from recipe.optim.param_groups import split_param_groups
from recipe.optim.schedulers import SCHEDULERS, SchedulerSpec, build_scheduler

__all__ = [
    "OPTIMIZERS",
    "SCHEDULERS",
    "OptimizerSpec",
    "SchedulerSpec",
    "build_optimizer",
    "build_scheduler",
    "split_param_groups",
]
