"""Store the run's resolved config inside every checkpoint, so a checkpoint alone rebuilds its model (and a resume
continues its run), and the metrics logged so far and whether training was ending, so a resumed run whose training
had ended trains nothing and still reports them."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info

from recipe.runtime.checkpoint_io import CHECKPOINT_KEY

METRICS_KEY = "run_metrics"
STOPPING_KEY = "run_should_stop"


class StoreRunConfig(Callback):
    """Writes ``config`` (plain dicts and lists, loadable with ``weights_only=True``) under ``run_config``, the
    metrics logged so far (floats) under ``run_metrics``, and ``trainer.should_stop`` under ``run_should_stop``.

    A run that early stopping had ended, stopped during its final test, would train one more epoch when resumed:
    Lightning does not keep ``should_stop``, and ``EarlyStopping`` decides again only after the next validation. So
    it is put back on load, and the resumed fit trains nothing. Such a fit validates nothing either, so it would log
    no ``val/acc_best`` for the sweeper or the report; at the end of a fit, each metric the checkpoint had and this
    fit did not log is put back, as the run last logged it.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.restored: dict[str, float] = {}

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = self.config
        logged = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        checkpoint[METRICS_KEY] = {**self.restored, **logged}
        checkpoint[STOPPING_KEY] = trainer.should_stop

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self.restored = dict(checkpoint.get(METRICS_KEY, {}))
        if checkpoint.get(STOPPING_KEY):
            trainer.should_stop = True  # after Trainer.fit reset it: the fit loop is done before its first epoch
            rank_zero_info("The run had stopped early (trainer.should_stop): the resumed fit trains nothing.")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for key, value in self.restored.items():
            trainer.callback_metrics.setdefault(key, torch.tensor(value))
