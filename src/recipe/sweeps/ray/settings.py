"""The Ray Tune sweeper's own settings (``hydra.sweeper.*``), checked before Ray loads: light to import."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recipe.errors import config_error, is_int

SEARCH_ALGS = ("optuna", "random", "grid")
SCHEDULERS = ("fifo", "asha", "pbt", "pb2")
POPULATION = ("pbt", "pb2")  # the schedulers that change values during training


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_settings(
    direction: Any,
    n_trials: Any,
    search_alg: Any,
    scheduler: Any,
    resources_per_trial: Mapping[str, Any],
    max_concurrent_trials: Any,
    max_failures: Any,
    address: Any,
) -> None:
    """Raise the ``ConfigError`` of the first bad setting."""
    if direction not in ("maximize", "minimize"):
        raise config_error("hydra.sweeper.direction", direction, "maximize or minimize")
    if not is_int(n_trials) or n_trials < 1:
        raise config_error("hydra.sweeper.n_trials", n_trials, "a positive integer")
    if search_alg not in SEARCH_ALGS:
        raise config_error("hydra.sweeper.search_alg", search_alg, " | ".join(SEARCH_ALGS))
    if scheduler not in SCHEDULERS:
        raise config_error("hydra.sweeper.scheduler", scheduler, " | ".join(SCHEDULERS))
    if scheduler in POPULATION and search_alg == "grid":
        raise config_error("hydra.sweeper.search_alg", search_alg, f"optuna or random with scheduler={scheduler}")
    for key in resources_per_trial:
        if key not in ("cpu", "gpu"):
            raise config_error(f"hydra.sweeper.resources_per_trial.{key}", resources_per_trial[key], "cpu, gpu")
    cpu, gpu = resources_per_trial.get("cpu", 1), resources_per_trial.get("gpu", 0)
    if not _number(cpu) or cpu <= 0:
        raise config_error("hydra.sweeper.resources_per_trial.cpu", cpu, "a positive number of CPUs")
    if not _number(gpu) or gpu < 0 or (gpu > 1 and not is_int(gpu)):
        raise config_error("hydra.sweeper.resources_per_trial.gpu", gpu, "0, a fraction of one GPU, or whole GPUs")
    if max_concurrent_trials is not None and (not is_int(max_concurrent_trials) or max_concurrent_trials < 1):
        raise config_error("hydra.sweeper.max_concurrent_trials", max_concurrent_trials, "a positive integer or null")
    if not is_int(max_failures) or max_failures < 0:
        raise config_error("hydra.sweeper.max_failures", max_failures, "a non-negative integer")
    if address is not None and not isinstance(address, str):
        raise config_error("hydra.sweeper.address", address, "null, auto, host:port or ray://host:port")
