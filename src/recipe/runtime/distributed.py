"""Make Lightning's DDP process launch work inside Hydra multirun jobs.

Lightning's launcher (``strategy=ddp`` without torchrun or SLURM) starts processes 1..N-1 by re-running the
command line with ``hydra.run.dir`` set to the parent's run folder. In a ``-m`` sweep that command line is
the whole sweep: each child would run every job of the sweep itself (asking an Optuna sweeper for its own
trials), write its logs to a second sweep folder stamped with its own start time, and the parent would
start no new children for later jobs because the first job's launch left ``LOCAL_RANK`` in its
environment. And in a job that a submitit launcher started (``python -m submitit.core._submit``), the command
line is submitit's. ``isolate_multirun_job`` fixes all of these before each job's Trainer is built: children run
the entry script with this job's overrides only and this job's folder, and the previous job's launch is undone.
Processes started by torchrun or SLURM (``LOCAL_RANK``/``SLURM_PROCID`` set from outside) are left alone:
there every process runs the same sweep in step, as those launchers intend.
"""

from __future__ import annotations

import os
import sys

import torch.distributed as dist
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import read_write

# What Lightning's launcher writes into the parent's environment.
LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
# Hydra flags that choose the config and must reach the children; the rest of argv is the sweep.
CONFIG_FLAGS = ("-cn", "--config-name", "-cp", "--config-path", "-cd", "--config-dir")


def launch_env() -> dict[str, str | None]:
    """The launch variables as the process started with them: read by the entry point before any job runs."""
    return {key: os.environ.get(key) for key in LAUNCH_ENV}


def single_job_argv(argv: list[str], overrides: list[str]) -> list[str]:
    """``argv`` with ``-m`` and the sweep's overrides replaced by one job's ``overrides``."""
    kept, args = [argv[0]], iter(argv[1:])
    for arg in args:
        if arg in CONFIG_FLAGS:
            kept += [arg, next(args, "")]
        elif arg.startswith(tuple(f"{flag}=" for flag in CONFIG_FLAGS)):
            kept.append(arg)
    return [*kept, *overrides]


def isolate_multirun_job(env_at_start: dict[str, str | None], entry_script: str) -> None:
    """Before a multirun job builds its Trainer: undo the last job's launch, point children at this job.

    Args:
        env_at_start: ``launch_env()`` as the process started, before any job's launch changed it.
        entry_script: the path of the script whose ``main`` runs the job (``src/train.py``).
    """
    launched_externally = env_at_start["LOCAL_RANK"] is not None or "SLURM_PROCID" in os.environ
    if not HydraConfig.initialized() or launched_externally:
        return
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return
    for key, value in env_at_start.items():
        if value is None:
            os.environ.pop(key, None)
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()  # its other ranks were the previous job's children, now gone
    sys.argv = single_job_argv([entry_script, *sys.argv[1:]], list(hydra_cfg.overrides.task))
    sys.modules["__main__"].__spec__ = None  # Lightning re-runs `python <argv[0]>`, not `python -m <__main__>`
    with read_write(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir  # Lightning passes hydra.run.dir to its children
