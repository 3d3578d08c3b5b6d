"""What a run cost, as metrics a search can trade accuracy against."""

from __future__ import annotations

import time

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


class FitCost(Callback):
    """Adds ``cost/fit_time_s`` (wall time of this fit, from its start to its end) and ``cost/params`` (trainable
    parameters) to the run's metrics when the fit ends, and logs them; ``optimized_metric`` can name either.
    """

    METRICS = ("cost/fit_time_s", "cost/params")  # what it logs, for the config check (recipe.validation.checks)

    def __init__(self) -> None:
        self._started = time.perf_counter()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        costs = {
            "cost/fit_time_s": time.perf_counter() - self._started,
            "cost/params": float(sum(p.numel() for p in pl_module.parameters() if p.requires_grad)),
        }
        trainer.callback_metrics.update({key: torch.tensor(value) for key, value in costs.items()})
        for logger in trainer.loggers:
            logger.log_metrics(costs, step=trainer.global_step)
