"""The Ray cluster a search runs on: a local one started for the search and stopped at its end (its session files
in a temp folder removed with it), or an existing one at ``address``, asked first whether it answers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ray

from recipe.errors import config_error

ANSWER_S = 3.0  # an address that does not take a connection within this long is refused
# Tune's trials keep the driver's working folder, so that the config's relative paths (data/, logs/) still work
WORKER_ENV = {"RAY_CHDIR_TO_TRIAL_DIR": "0"}


def check_address(address: str) -> None:
    """Refuse in one line an address whose Ray does not answer within ``ANSWER_S`` (``ray.init`` waits minutes)."""
    if address == "auto":
        if not os.environ.get("RAY_ADDRESS") and not os.path.exists(
            os.path.join(tempfile.gettempdir(), "ray", "ray_current_cluster")
        ):
            raise config_error("hydra.sweeper.address", address, "a running Ray on this machine (ray start --head)")
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=ANSWER_S):
            return
    except (OSError, ValueError) as err:
        why = f"a Ray cluster that answers within {ANSWER_S:g} s ({type(err).__name__}: {err})"
        raise config_error("hydra.sweeper.address", address, why) from None


def _end_orphans(record: Path) -> None:
    """End what a search killed with SIGKILL left of its local Ray (its agents and trial workers, which outlive the
    GCS and raylet that die with the driver), named by the session folder ``record`` holds; remove that folder."""
    if not record.is_file():
        return
    temp = record.read_text().strip()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if temp and temp in cmdline.read_bytes().decode(errors="replace"):
                os.kill(int(cmdline.parent.name), signal.SIGKILL)
    shutil.rmtree(temp, ignore_errors=True)
    record.unlink()


@contextmanager
def ray_cluster(address: str | None, num_cpus: int | None, record: Path) -> Iterator[dict[str, float]]:
    """Join the cluster at ``address``, or start a local Ray of ``num_cpus`` CPUs (``None``: all); yield its
    resources; disconnect (and stop a local Ray's processes, removing its session files) at the end. A local Ray's
    session folder is named in ``record`` while it runs: the next start of the search ends what a killed one left."""
    os.environ.update(WORKER_ENV)  # read by Tune in the driver and, for a local Ray, by its workers
    runtime_env = {"env_vars": dict(WORKER_ENV)}
    temp = None
    if address is not None:
        check_address(address)
        try:
            ray.init(address=address, runtime_env=runtime_env)
        except ConnectionError as err:  # a port that answers, but not as Ray's
            raise config_error("hydra.sweeper.address", address, f"a Ray cluster ({err})") from None
    else:
        # a short path: Ray's sockets live in it, and Unix socket paths are short
        _end_orphans(record)
        temp = tempfile.mkdtemp(prefix="ray-")
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(temp)
        ray.init(num_cpus=num_cpus, include_dashboard=False, _temp_dir=temp, runtime_env=runtime_env)
    try:
        yield dict(ray.cluster_resources())
    finally:
        ray.shutdown()
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
            record.unlink(missing_ok=True)


def check_resources(resources: dict[str, float], cpu: float, gpu: float) -> None:
    """Refuse a trial that asks for more CPUs or GPUs than the cluster has: Tune would wait for them forever."""
    for key, name, asked in (("cpu", "CPU", cpu), ("gpu", "GPU", gpu)):
        have = resources.get(name, 0.0)
        if asked > have:
            raise config_error(f"hydra.sweeper.resources_per_trial.{key}", asked, f"at most {have:g}, the cluster's")
