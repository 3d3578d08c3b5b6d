"""One run per run folder: a second run started on a folder in use (same ``hydra.run.dir``, ``ckpt_path=auto``)
refuses in one line instead of writing a second best checkpoint, doubled TensorBoard curves and a mixed log.

The lock is ``fcntl.flock`` on ``<run folder>/.run.lock``, which holds the holder's pid and host. The kernel
releases a flock when its process ends however it ends, so a run killed with ``kill -9`` leaves no stale lock:
the next start takes it. Only the launching process takes it (rank 0, and not the DDP processes it starts, which
write into the same folder); each job of a ``-m`` sweep has its own folder. The file is removed when the lock is
let go, so a run that never took a step still leaves no folder behind (``recipe.cli.entry``). flock is local to
one machine, and on NFS works across machines only where the server supports locks (NFSv4).
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from recipe.errors import ConfigError, config_error

LOCK_FILE = ".run.lock"
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")  # set by torchrun, Lightning, SLURM


class RunFolderInUse(ConfigError):
    """Another live run writes into this run's folder: the folder is that run's, never removed by this one."""


def launching_process() -> bool:
    """Whether this process is the run's first (rank 0 on node 0), the one that holds the folder's lock."""
    return all(os.environ.get(name, "0") == "0" for name in RANK_VARIABLES)


def holder(folder: str | Path) -> str | None:
    """``pid <n> on <host>`` of the live run holding ``folder``'s lock; ``None`` when no run holds it."""
    try:
        fd = os.open(Path(folder) / LOCK_FILE, os.O_RDONLY)
    except OSError:  # no lock file (or no folder): no run holds it
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return _who(fd)
    finally:
        os.close(fd)  # also lets go of the shared lock


def _who(fd: int) -> str:
    """What the lock file open at ``fd`` says of its holder (empty for the instant between its lock and write)."""
    return os.pread(fd, 200, 0).decode(errors="replace").strip() or "a run that is starting"


def refusal(folder: str | Path, other: str, key: str = "hydra.run.dir") -> RunFolderInUse:
    """The one line a run gets when ``other`` (``holder``'s answer) writes into its folder."""
    allowed = f"in use by another run ({other}); wait for it to end or choose another"
    return RunFolderInUse(str(config_error(key, str(folder), allowed)))


@contextmanager
def run_lock(folder: str | Path | None = None) -> Iterator[None]:
    """Hold the lock of ``folder`` (by default the folder Hydra made for this job) while the block runs; in the
    launching process only, outside Hydra (a config composed from Python) with no default folder to lock.

    Raises:
        ConfigError: another live run holds it; the message names the folder and that run's pid and host.
    """
    key = "hydra.run.dir"
    if folder is None and HydraConfig.initialized():
        hydra = HydraConfig.get()
        folder, key = hydra.runtime.output_dir, "hydra.sweep.dir" if hydra.mode == RunMode.MULTIRUN else key
    if folder is None or not launching_process():
        yield
        return
    path = Path(folder) / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = _who(fd)
            os.close(fd)
            raise refusal(folder, other, key) from None
        try:  # the file may have been removed by the holder that just let go: then lock the new one
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)  # before letting go, so no process locks a file that is gone
        os.close(fd)
