"""Loggers for trackers and dashboards: Lightning's own, fitted to a run folder (``conf/logger/``)."""

from recipe.tracking.mlflow_logger import MLFlowLogger
from recipe.tracking.tensorboard_logger import TensorBoardLogger
from recipe.tracking.wandb_logger import WandbLogger

__all__ = ["MLFlowLogger", "TensorBoardLogger", "WandbLogger"]
