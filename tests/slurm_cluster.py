"""A throwaway one-node SLURM cluster in a folder: its own munge key and socket, slurm.conf, state and logs.

Needs Debian's ``slurm-wlm`` and ``munge`` and root (no systemd: the daemons run in the foreground as children
of this process). Used by the tests' ``slurm`` fixture, and by hand::

    python tests/slurm_cluster.py /tmp/slurm     # prints `export SLURM_CONF=...`, runs until Ctrl-C
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
PARTITION = "debug"


def missing() -> str | None:
    """Why a cluster cannot start here, or None."""
    absent = [name for name in (*DAEMONS, "mungekey", "sbatch") if not shutil.which(name)]
    if absent:
        return f"{', '.join(absent)} not installed (apt-get install -y slurm-wlm munge)"
    if os.geteuid() != 0:
        return "slurmd needs root"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_conf(folder: Path, cpus: int) -> Path:
    """slurm.conf for one node (this host) with ``cpus`` CPUs in partition ``debug``, no accounting, no cgroups."""
    host = socket.gethostname()
    for sub in ("state", "spool"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    conf = folder / "slurm.conf"
    conf.write_text(
        f"""ClusterName=recipe
SlurmctldHost={host}
SlurmUser=root
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthInfo=socket={folder}/munge.socket,cred_expire=10
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SchedulerParameters=sched_interval=1
MinJobAge=300
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
    )
    return conf


def _wait_idle(env: dict[str, str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=env)
        state = out.stdout.strip()
        if state == "idle":
            return
        time.sleep(0.3)
    raise RuntimeError(f"the SLURM node is {state or 'not reporting'} after {timeout:.0f} s")


@contextlib.contextmanager
def one_node_slurm(folder: Path, cpus: int | None = None, timeout: float = 30.0) -> Iterator[dict[str, str]]:
    """Start munged, slurmctld and slurmd on a config written into ``folder``; yield an environment with
    ``SLURM_CONF`` set once ``sinfo`` shows the node idle; cancel every job and stop the daemons after."""
    folder.mkdir(parents=True, exist_ok=True)
    conf = write_conf(folder, cpus or os.cpu_count() or 1)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    key = folder / "munge.key"
    subprocess.run(["mungekey", "--create", "--force", f"--keyfile={key}"], check=True, capture_output=True)
    commands = [
        ["munged", "--foreground", "--force", f"--key-file={key}", f"--socket={folder}/munge.socket",
         f"--pid-file={folder}/munged.pid", f"--log-file={folder}/munged.log", f"--seed-file={folder}/munge.seed"],
        ["slurmctld", "-D", "-i", "-f", str(conf)],
        ["slurmd", "-D", "-f", str(conf)],
    ]  # fmt: skip
    daemons: list[subprocess.Popen] = []
    try:
        for cmd in commands:
            daemons.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
            if cmd[0] == "munged":
                _wait_for(folder / "munge.socket", timeout)
        _wait_idle(env, timeout)
        yield env
    finally:
        subprocess.run(["scancel", "--full", "--user=root"], env=env, capture_output=True)
        for daemon in reversed(daemons):
            daemon.terminate()
            try:
                daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()


def _wait_for(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear in {timeout:.0f} s")
        time.sleep(0.1)


if __name__ == "__main__":
    reason = missing()
    if reason:
        sys.exit(f"error: {reason}")
    where = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/slurm").resolve()
    with one_node_slurm(where) as cluster_env, contextlib.suppress(KeyboardInterrupt):
        print(f"export SLURM_CONF={cluster_env['SLURM_CONF']}   # one node, partition {PARTITION}; Ctrl-C stops it")
        subprocess.run(["sinfo"], env=cluster_env)
        while True:
            time.sleep(3600)
