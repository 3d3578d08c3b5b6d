"""A callback the distributed tests add by override: each process writes what it ended training with."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback


class WriteRankMetrics(Callback):
    """Writes ``rank<N>.json`` into ``folder``: the process's final metrics, LR, batch and world size.

    Args:
        folder: where every process writes its file.
    """

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        record = {
            "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
            "lr": trainer.optimizers[0].param_groups[0]["lr"],
            "per_device_batch_size": trainer.datamodule.per_device_batch_size,
            "world_size": trainer.world_size,
            "optimizer_steps": trainer.global_step,
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))
