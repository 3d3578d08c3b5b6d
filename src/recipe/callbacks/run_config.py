"""Store the run's resolved config inside every checkpoint, so a checkpoint alone rebuilds its model, and the
metrics logged so far, so a resumed run whose training had ended still reports them."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from recipe.runtime.checkpoint_io import CHECKPOINT_KEY

METRICS_KEY = "run_metrics"


class StoreRunConfig(Callback):
    """Writes ``config`` (plain dicts and lists, loadable with ``weights_only=True``) under ``run_config``, and the
    metrics logged so far (floats) under ``run_metrics``.

    A fit resumed from a checkpoint of a run whose training had ended (stopped during its final test) trains and
    validates nothing, so it would log no ``val/acc_best`` for the sweeper or the report; at the end of a fit, each
    metric the checkpoint had and this fit did not log is put back, as the run last logged it.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.restored: dict[str, float] = {}

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = self.config
        logged = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        checkpoint[METRICS_KEY] = {**self.restored, **logged}

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self.restored = dict(checkpoint.get(METRICS_KEY, {}))

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for key, value in self.restored.items():
            trainer.callback_metrics.setdefault(key, torch.tensor(value))
