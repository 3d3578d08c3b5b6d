"""The Ray cluster a search runs on: a local one started for the search and stopped at its end (its session files
in a temp folder removed with it), or an existing one at ``address``, asked first whether it answers."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def ray_cluster(address: str | None, num_cpus: int | None) -> Iterator[dict[str, float]]:
    """Join the cluster at ``address``, or start a local Ray of ``num_cpus`` CPUs (``None``: all); yield its
    resources; disconnect (and stop a local Ray's processes, removing its session files) at the end."""
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
        temp = tempfile.mkdtemp(prefix="ray-")
        ray.init(num_cpus=num_cpus, include_dashboard=False, _temp_dir=temp, runtime_env=runtime_env)
    try:
        yield dict(ray.cluster_resources())
    finally:
        ray.shutdown()
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


def check_resources(resources: dict[str, float], cpu: float, gpu: float) -> None:
    """Refuse a trial that asks for more CPUs or GPUs than the cluster has: Tune would wait for them forever."""
    for key, name, asked in (("cpu", "CPU", cpu), ("gpu", "GPU", gpu)):
        have = resources.get(name, 0.0)
        if asked > have:
            raise config_error(f"hydra.sweeper.resources_per_trial.{key}", asked, f"at most {have:g}, the cluster's")
