"""TensorBoard laid out for diagnosis: related curves in one chart, and an HPARAMS tab that leads with what varies."""

from __future__ import annotations

import math
import time
from argparse import Namespace
from typing import Any

from lightning.fabric.utilities.logger import _convert_params, _flatten_dict
from lightning.pytorch.loggers import TensorBoardLogger as LightningTensorBoardLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.tensorboard.summary import hparams

Layout = dict[str, dict[str, list[str]]]
FLUSH_SECONDS = 10.0  # the event file is flushed at most this often while training, and at the end


class TensorBoardLogger(LightningTensorBoardLogger):
    """Lightning's ``TensorBoardLogger`` with two changes for reading runs side by side.

    - ``layout`` goes to the CUSTOM SCALARS tab when the event file is opened: each chart draws every scalar whose
      tag matches one of its regular expressions (train and validation loss together show over- and underfitting).
    - The HPARAMS tab gets each run's settings and final metrics without the one-run column list that Lightning
      writes beside them (TensorBoard takes the first run's list as the whole experiment's and sorts it by name).
      Without it TensorBoard builds the list from every run, the settings that differ across runs first.

    Args:
        layout: ``{category: {chart title: [tag regex, ...]}}``.
        **kwargs: see Lightning's ``TensorBoardLogger`` (``default_hp_metric`` is always off).
    """

    def __init__(self, layout: Layout | None = None, **kwargs: Any) -> None:
        super().__init__(default_hp_metric=False, **kwargs)  # the HPARAMS tab gets the real final metrics
        self.layout = layout or {}
        self._flushed_at = -math.inf

    def save(self) -> None:
        """Lightning's (flush the event file, write hparams.yaml once), at most every ``FLUSH_SECONDS``: Lightning
        calls it after every ``log_metrics``, and each flush makes the training thread wait for the writer thread's
        write. ``finalize`` flushes at the end of the run, however it ends."""
        if time.monotonic() - self._flushed_at >= FLUSH_SECONDS:
            super().save()
            self._flushed_at = time.monotonic()

    def finalize(self, status: str) -> None:
        self._flushed_at = -math.inf  # the last save is never skipped
        super().finalize(status)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The ``SummaryWriter``; the layout is written once, when it is created."""
        if self._experiment is not None:
            return self._experiment
        writer = super().experiment
        if self.layout:
            writer.add_custom_scalars(
                {
                    category: {title: ["Multiline", list(tags)] for title, tags in charts.items()}
                    for category, charts in self.layout.items()
                }
            )
        return writer

    @rank_zero_only
    def log_hyperparams(
        self, params: dict[str, Any] | Namespace, metrics: dict[str, Any] | None = None, step: int | None = None
    ) -> None:
        super().log_hyperparams(params, metrics=None, step=step)  # hparams.yaml; no metrics, no HPARAMS session
        if not metrics:
            return
        self.log_metrics(metrics, step)
        flat = self._sanitize_params(_flatten_dict(_convert_params(params)))
        _, session_start, session_end = hparams(flat, metrics)
        writer = self.experiment._get_file_writer()
        writer.add_summary(session_start, step)
        writer.add_summary(session_end, step)
