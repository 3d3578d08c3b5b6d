"""Callbacks that only take timestamps, for the benchmark scripts (``train.train(extra_callbacks=...)``
in process, or ``+callbacks.<name>._target_=clocks.<Class>`` with ``benchmarks/`` on ``PYTHONPATH``)."""

from __future__ import annotations

import time

import lightning as L

FIRST_STEP = "first training step at unix time"


class EpochClock(L.Callback):
    """Timestamps at the start of every training epoch and at the end of training."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stamps.append(time.perf_counter())

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stamps.append(time.perf_counter())


class FirstStepStamp(L.Callback):
    """Prints the wall-clock time when the first training batch starts."""

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: object, batch_idx: int
    ) -> None:
        if trainer.global_step == 0 and batch_idx == 0 and trainer.is_global_zero:
            print(f"{FIRST_STEP} {time.time():.6f}", flush=True)
