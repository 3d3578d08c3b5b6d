"""The Ray Tune sweeper (``hydra/sweeper=ray_tune``): the search of ``hydra.sweeper.params`` on Ray Tune, each trial
a Hydra job of the task in a Ray worker. Hydra imports this module for every command: Ray, Optuna and torch are
imported by ``sweep``, when a search runs (``recipe.sweeps.ray``)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.recipe_optuna_sweeper.sweeper import _one_line
from recipe.errors import config_error, is_int
from recipe.extras import require

if TYPE_CHECKING:
    import optuna

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


class RayTuneSweeper(Sweeper):
    """Run ``n_trials`` trials on Ray Tune.

    Args:
        direction: ``maximize`` or ``minimize`` the task's ``optimized_metric``.
        n_trials: the number of trials (a grid runs each of its points once).
        params: the search space in the Optuna sweeper's grammar (``recipe.sweeps.space``).
        search_alg: ``optuna`` (Ray's ``OptunaSearch`` with ``sampler``), ``random`` or ``grid``.
        sampler: builds the Optuna sampler (``hydra/sweeper/sampler``, the Optuna sweeper's options).
        scheduler: ``fifo``, ``asha``, ``pbt`` or ``pb2``; its knobs are the section of the same name.
        asha, pbt, pb2: each scheduler's keyword arguments for Tune (PBT and PB2: also ``mutations``).
        resources_per_trial: ``cpu`` and ``gpu`` of each trial (fractional GPUs allowed); torch's threads = its CPUs.
        max_concurrent_trials: trials at once (``null``: as many as the resources allow).
        max_failures: times a trial whose process died is retried from its last checkpoint.
        address: ``null`` starts a local Ray for the search; ``auto`` or ``ray://host:port`` joins a cluster.
        num_cpus: the CPUs of the local Ray (``null``: all of this machine's).
        study_name: the name of the report's study (an Optuna search's yaml sets it).
    """

    def __init__(
        self,
        direction: str,
        n_trials: int,
        params: Mapping[str, Any] | None = None,
        search_alg: str = "optuna",
        sampler: functools.partial | None = None,
        scheduler: str = "fifo",
        asha: Mapping[str, Any] | None = None,
        pbt: Mapping[str, Any] | None = None,
        pb2: Mapping[str, Any] | None = None,
        resources_per_trial: Mapping[str, float] | None = None,
        max_concurrent_trials: int | None = None,
        max_failures: int = 0,
        address: str | None = None,
        num_cpus: int | None = None,
        study_name: str | None = None,
    ) -> None:
        schedulers = {"asha": asha or {}, "pbt": pbt or {}, "pb2": pb2 or {}}
        resources = dict(resources_per_trial or {"cpu": 1, "gpu": 0})
        self.settings: dict[str, Any] = {
            "direction": direction,
            "n_trials": n_trials,
            "params": dict(params or {}),
            "search_alg": search_alg,
            "sampler": sampler,
            "scheduler": scheduler,
            "schedulers": {k: _plain(v) for k, v in schedulers.items()},
            "resources_per_trial": resources,
            "max_concurrent_trials": max_concurrent_trials,
            "max_failures": max_failures,
            "address": address,
            "num_cpus": num_cpus,
            "study_name": study_name or "ray_tune",
        }
        self.config: DictConfig | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def sweep(self, arguments: list[str]) -> optuna.Study:
        assert self.config is not None
        with _one_line():  # before any trial: each bad setting is one line and exit 2
            launcher = str(self.config.hydra.launcher.get("_target_"))
            if not launcher.endswith(".BasicLauncher"):
                raise config_error("hydra/launcher", launcher, "the basic launcher only: Ray places the trials")
            require("ray", "hydra/sweeper", "ray_tune")
            check_settings(**{k: self.settings[k] for k in inspect.signature(check_settings).parameters})
            from recipe.sweeps.ray.search import Search, run_search

            return run_search(Search(**self.settings), self.hydra_context, self.task_function, self.config, arguments)


def _plain(section: Mapping[str, Any]) -> dict[str, Any]:
    """A scheduler's section as plain Python values, for Tune's constructors."""
    return OmegaConf.to_container(section) if isinstance(section, DictConfig) else dict(section)
