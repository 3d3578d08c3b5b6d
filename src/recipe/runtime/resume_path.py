"""``ckpt_path=auto``: resume a run in its own folder when it has a checkpoint, start it there otherwise.

A job that a scheduler requeues runs the same command again; with ``ckpt_path=auto`` it goes on from the run
folder's newest checkpoint (``checkpoints/last.ckpt``, or the ``hpc_ckpt_<n>.ckpt`` that Lightning's SLURM
requeue writes into the run folder) and keeps writing into the same folder, TensorBoard run, report and log. That
needs a run folder that the second start finds again: ``hydra.run.dir=...``, or inside a SLURM job the folder
``run_folder`` names after the job (``slurm-<job id>``, ``slurm-<array job id>_<task id>`` for array tasks).
"""

from __future__ import annotations

import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from recipe.errors import config_error

AUTO = "auto"


def slurm_job_key() -> str | None:
    """``<job id>`` or ``<array job id>_<task id>`` of the SLURM job this process runs in, else ``None``; the
    same after a requeue."""
    if os.environ.get("SLURM_ARRAY_JOB_ID") and os.environ.get("SLURM_ARRAY_TASK_ID"):
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ.get("SLURM_JOB_ID")


def run_folder(ckpt_path: str | None, timestamp: str) -> str:
    """The run folder's name (the ``run_folder`` resolver in ``conf/hydra/default.yaml``): ``slurm-<job>`` for
    ``ckpt_path=auto`` inside a SLURM job, so a requeued job finds its folder again; ``timestamp`` otherwise."""
    job = slurm_job_key() if ckpt_path == AUTO else None
    return f"slurm-{job}" if job else timestamp


def _fixed_folder() -> bool:
    """Whether a second start of the same command writes into this run's folder again."""
    if not HydraConfig.initialized():  # composed from Python: the caller chose paths.output_dir
        return True
    hydra = HydraConfig.get()
    given = any(o.split("=", 1)[0].lstrip("+") == "hydra.run.dir" for o in hydra.overrides.hydra)
    return given or slurm_job_key() is not None


def resume_path(cfg: DictConfig) -> str | None:
    """The checkpoint ``trainer.fit`` resumes from: ``ckpt_path`` as given, or for ``auto`` the run folder's
    newest checkpoint (``None``, a fresh start, when it has none).

    Raises:
        ConfigError: ``auto`` in a ``-m`` sweep (its launcher resumes requeued jobs itself), or in a run folder
            that a second start would not find again.
    """
    if cfg.ckpt_path != AUTO:
        return cfg.ckpt_path
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise config_error("ckpt_path", AUTO, "not in a -m sweep (the SLURM launcher resumes requeued jobs itself)")
    if not _fixed_folder():
        where = "a fixed run folder: add hydra.run.dir=<folder> (a SLURM job gets logs/<task>/runs/slurm-<job id>)"
        raise config_error("ckpt_path", AUTO, f"needs {where}")
    output = Path(cfg.paths.output_dir)
    found = [p for p in (output / "checkpoints" / "last.ckpt", *output.glob("hpc_ckpt_*.ckpt")) if p.is_file()]
    return str(max(found, key=lambda p: p.stat().st_mtime)) if found else None
