"""Store the run's resolved config inside every checkpoint, so a checkpoint alone rebuilds its model."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

CHECKPOINT_KEY = "run_config"


class StoreRunConfig(Callback):
    """Writes ``config`` (plain dicts and lists, loadable with ``weights_only=True``) under ``run_config``."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = self.config
