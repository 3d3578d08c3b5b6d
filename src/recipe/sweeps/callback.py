"""The Hydra callback behind every sweep's comparison (``hydra.callbacks`` in ``conf/hydra/default.yaml``)."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig

from recipe.sweeps.compare import summary_lines, write_comparison
from recipe.sweeps.runs import one_line, write_job_file
from recipe.sweeps.trial import pruned_reason
from recipe.tracking.mlflow_logger import log_sweep_comparison as mlflow_comparison
from recipe.tracking.wandb_logger import log_sweep_comparison as wandb_comparison

log = logging.getLogger(__name__)


class SweepComparison(Callback):
    """Each sweep job leaves ``job.json`` in its folder; the sweep ends with ``comparison.md/.csv/.png``.

    ``on_job_end`` runs where the job runs (this process, or a SLURM node), so the record is on disk for any
    launcher; ``on_multirun_end`` runs where the sweep was started, and reads every job back from disk.

    Args:
        enabled: write the job records and the comparison.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._started = time.monotonic()

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._started = time.monotonic()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if not self.enabled or config.hydra.mode != RunMode.MULTIRUN:
            return
        duration = time.monotonic() - self._started
        status, value, reason = "completed", None, ""
        if job_return.status == JobStatus.FAILED:
            status, reason = "failed", one_line(job_return._return_value)  # the property would re-raise it
        elif pruned := pruned_reason():
            status, reason = "pruned", pruned
        else:
            value = job_return.return_value
            values = value if isinstance(value, list) else [value]  # several objectives: a list
            if any(isinstance(v, float) and not math.isfinite(v) for v in values):
                status, value, reason = "failed", None, f"returned {value}, not a finite optimized_metric"
        folder = Path(config.hydra.runtime.output_dir)
        metric = config.get("optimized_metric")
        metric = list(metric) if isinstance(metric, ListConfig) else metric  # several objectives
        write_job_file(folder, status, value, duration, reason, metric)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not self.enabled or config.hydra.sweeper.get("worker") is not None:  # the workers' parent writes it
            return
        folder = Path(config.hydra.sweep.dir)
        if not folder.is_dir():
            return
        for line in summary_lines(write_comparison(folder), folder):
            log.info(line)
        # the comparison beside the jobs' runs in each tracker (not run_dir: there is no job folder here)
        files = [f for f in (folder / f"comparison.{ext}" for ext in ("md", "csv", "png")) if f.is_file()]
        trackers = {"mlflow": (mlflow_comparison, ("tracking_uri", "experiment_name", "artifact_location"))}
        trackers["wandb"] = (wandb_comparison, ("project", "mode", "group"))
        for name, (log_comparison, keys) in trackers.items():
            section = (config.get("logger") or {}).get(name)
            if section:
                log_comparison({k: section.get(k) for k in keys}, folder, files)
