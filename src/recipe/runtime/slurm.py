"""What a run asks of SLURM and what SLURM gave it: the launcher's resource request derived from the run's
``trainer`` and ``data``, the node sizes ``sinfo`` reports, the pending reasons that never clear, and the check
that the processes of a job step match ``trainer.devices x trainer.num_nodes``.

Written by hand: submitit and hydra-submitit-launcher pass the request through as given, and Lightning's
``SLURMEnvironment`` takes its world size from ``SLURM_NTASKS`` without comparing it with the Trainer's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig

from recipe.errors import config_error, is_int

# Pending reasons a job keeps forever: the request exceeds what the partition or the account allows.
NEVER_STARTS = {
    "PartitionConfig",
    "PartitionNodeLimit",
    "PartitionTimeLimit",
    "BadConstraints",
    "InvalidAccount",
    "InvalidQOS",
    "QOSMaxCpuPerJobLimit",
    "QOSMaxGRESPerJob",
    "QOSMaxNodePerJobLimit",
    "QOSMaxWallDurationPerJobLimit",
}


def processes_per_node(trainer: Mapping[str, Any]) -> int | None:
    """Processes Lightning runs per node for ``trainer``: ``devices`` as a count or a list of ids; 1 for ``auto``
    on a CPU; ``None`` where only the node can tell (``auto`` or ``-1`` with GPUs)."""
    devices = trainer.get("devices", "auto")
    if isinstance(devices, (list, tuple, ListConfig)):
        return len(devices)
    if is_int(devices) and devices > 0:
        return devices
    return 1 if devices == "auto" and trainer.get("accelerator") == "cpu" else None


def node_cpus(partition: str | None) -> int | None:
    """CPUs of the largest node in ``partition`` (the default one when ``None``), from ``sinfo``; ``None`` when
    sinfo is not there or says nothing."""
    if not shutil.which("sinfo"):
        return None
    cmd = ["sinfo", "-h", "-o", "%c", *(["-p", partition] if partition else [])]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout.split()
    counts = [int(c.rstrip("+")) for c in out if c.rstrip("+").isdigit()]
    return max(counts) if counts else None


def fill_request(params: dict[str, Any], cfg: DictConfig) -> dict[str, Any]:
    """The launcher's ``params`` with its ``null`` resources derived from the run's config.

    ``tasks_per_node``: one per process Lightning runs on a node (``trainer.devices``), 1 where that is unknown.
    ``gpus_per_node``: ``trainer.devices`` when ``trainer.accelerator`` is ``gpu``, else none requested.
    ``cpus_per_task``: ``data.num_workers + 1``, at most the CPUs of the partition's largest node per task.
    """
    out = dict(params)
    trainer = cfg.get("trainer") or {}
    per_node = processes_per_node(trainer)
    if out.get("tasks_per_node") is None:
        out["tasks_per_node"] = per_node or 1
    if out.get("gpus_per_node") is None and trainer.get("accelerator") in ("gpu", "cuda"):
        if per_node is None:
            raise config_error(
                "trainer.devices", trainer.get("devices"), "a GPU count, or set hydra.launcher.gpus_per_node"
            )
        out["gpus_per_node"] = per_node
    if out.get("gpus_per_node") == 0:
        out["gpus_per_node"] = None  # sbatch rejects --gpus-per-node=0
    if out.get("cpus_per_task") is None:
        wanted = int((cfg.get("data") or {}).get("num_workers") or 0) + 1
        cpus = node_cpus(out.get("partition"))
        out["cpus_per_task"] = min(wanted, max(1, cpus // out["tasks_per_node"])) if cpus else wanted
    return out


def check_processes(trainer: Mapping[str, Any]) -> None:
    """Inside a SLURM job, stop in one line unless the step runs one task per process the Trainer expects
    (``trainer.devices x trainer.num_nodes``) and was started by ``srun`` when it expects more than one.

    Lightning takes its ranks from SLURM there: ``srun -n1`` would silently train in one process, and ``python``
    without ``srun`` in a 2-task allocation waits forever for its second rank.
    """
    env = os.environ
    if "SLURM_NTASKS" not in env:
        return
    from lightning.fabric.plugins.environments import SLURMEnvironment  # in a SLURM job only: Lightning is heavy

    if not SLURMEnvironment.detect():
        return
    per_node = processes_per_node(trainer)
    if per_node is None:
        return
    expected = per_node * int(trainer.get("num_nodes") or 1)
    tasks = int(env["SLURM_NTASKS"])
    devices = trainer.get("devices")
    if expected > 1 and "SLURM_STEP_ID" not in env:
        raise config_error(
            "trainer.devices", devices, f"{expected} processes need `srun python src/train.py ...` in this SLURM job"
        )
    if tasks != expected:
        raise config_error(
            "trainer.devices",
            devices,
            f"x trainer.num_nodes={trainer.get('num_nodes', 1)} = {expected} processes, but this SLURM job step has "
            f"{tasks} task(s) (SLURM_NTASKS); match them (srun --ntasks-per-node, hydra.launcher.tasks_per_node)",
        )
