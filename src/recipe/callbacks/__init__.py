"""Small callbacks, one job each, for what Lightning's own callbacks do not cover."""

from recipe.callbacks.checkpoint import LastCheckpoint, ModelCheckpoint
from recipe.callbacks.cost import FitCost
from recipe.callbacks.grad_norm import GradNormMonitor
from recipe.callbacks.guards import BatchNormCheck, DivergenceGuard
from recipe.callbacks.progress import ProgressBar
from recipe.callbacks.resume import CheckpointOnInterrupt, RngState
from recipe.callbacks.run_config import StoreRunConfig
from recipe.callbacks.schedule_free import ScheduleFreeModes, schedule_free_callbacks
from recipe.data.resumable import DataPosition

__all__ = [
    "BatchNormCheck",
    "CheckpointOnInterrupt",
    "DataPosition",
    "DivergenceGuard",
    "FitCost",
    "GradNormMonitor",
    "LastCheckpoint",
    "ModelCheckpoint",
    "ProgressBar",
    "RngState",
    "ScheduleFreeModes",
    "StoreRunConfig",
    "schedule_free_callbacks",
]
