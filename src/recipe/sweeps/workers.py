"""One search as N processes on one study (``hydra.sweeper.n_jobs=N``): how each worker is started and watched.

Each worker runs the search's own command line with ``hydra.sweeper.worker=<i>`` and asks the shared study for
trials until it holds ``n_trials``; the process that started them waits and writes the report. The CPU threads are
split between the workers (``OMP_NUM_THREADS``, which sets torch's thread count) and each gets one GPU
(``CUDA_VISIBLE_DEVICES``), round robin over the visible ones when there are fewer GPUs than workers.
Hand-written: Hydra's joblib launcher runs a batch of jobs whose overrides are fixed before any starts, where a
search asks for each trial after the last result; Optuna's own ``n_jobs`` runs threads in one process.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from recipe.sweeps.runs import override_key

# set by the parent on each worker's command line; the user's own values of these are replaced
WORKER_KEYS = ("hydra.sweeper.n_jobs", "hydra.sweeper.worker", "hydra.sweeper.storage", "hydra.sweep.dir")

log = logging.getLogger(__name__)


def quoted(value: str) -> str:
    """``value`` as a quoted string of Hydra's override grammar (a path with ``=`` or spaces stays one value)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def visible_gpus(env: Mapping[str, str]) -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` names them (all of them when it is unset)."""
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [device.strip() for device in listed.split(",") if device.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def worker_env(index: int, n_jobs: int, env: Mapping[str, str]) -> dict[str, str]:
    """The environment of worker ``index`` of ``n_jobs``: its share of the cores and its GPU."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    worker = {**env, "OMP_NUM_THREADS": str(max(1, cores // n_jobs))}
    if gpus := visible_gpus(env):
        worker["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
    return worker


def worker_command(argv: Sequence[str], index: int, storage: str, sweep_dir: str) -> list[str]:
    """The command of worker ``index``: this search's command line, on the parent's storage and sweep folder."""
    args = [a for a in argv[1:] if a.startswith("-") or override_key(a) not in WORKER_KEYS]
    return [
        sys.executable,
        argv[0],
        *args,
        "hydra.sweeper.n_jobs=1",
        f"hydra.sweeper.worker={index}",
        f"hydra.sweeper.storage={quoted(storage)}",
        f"hydra.sweep.dir={quoted(sweep_dir)}",
    ]


@dataclass
class Worker:
    """A started worker: its slot (which sets its threads and GPU) and its process."""

    index: int
    process: subprocess.Popen


def run_workers(
    n_jobs: int,
    argv: Sequence[str],
    storage: str,
    sweep_dir: str,
    on_lost: Callable[[int], bool],
    max_restarts: int,
) -> None:
    """Start ``n_jobs`` workers and wait for them; Ctrl-C or an error here stops them (within 10 s).

    A worker killed by a signal (SIGKILL, the out-of-memory killer) is reported to ``on_lost`` with its process id,
    which fails the trial it held, queues it again and says whether trials remain; if so a new worker takes its
    slot, at most ``max_restarts`` times in all.
    """

    def start(index: int) -> Worker:
        env = worker_env(index, n_jobs, os.environ)
        process = subprocess.Popen(worker_command(argv, index, storage, sweep_dir), env=env)
        gpu = f", GPU {env['CUDA_VISIBLE_DEVICES']}" if env.get("CUDA_VISIBLE_DEVICES") else ""
        log.info(f"Worker {index}: process {process.pid}, OMP_NUM_THREADS={env['OMP_NUM_THREADS']}{gpu}")
        return Worker(index, process)

    workers = [start(i) for i in range(n_jobs)]
    try:
        while workers:
            time.sleep(0.2)
            for worker in [w for w in workers if w.process.poll() is not None]:
                workers.remove(worker)
                code = worker.process.returncode
                if code == 0:
                    continue
                log.warning(f"Worker {worker.index} (process {worker.process.pid}) ended with exit code {code}")
                if code < 0 and on_lost(worker.process.pid) and max_restarts > 0:
                    max_restarts -= 1
                    workers.append(start(worker.index))
    finally:  # Ctrl-C reaches the workers too: each records its trial FAIL, unless it takes too long
        for worker in workers:
            try:
                worker.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.process.terminate()
                worker.process.wait()
