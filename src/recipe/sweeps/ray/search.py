"""One Ray Tune search from a Hydra sweep: parse the space, start or join Ray, run (or resume) the Tuner with the
trial as a Hydra job, and write the Optuna sweeper's report from Tune's results."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from hydra.core.singleton import Singleton
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from ray import tune

from recipe.errors import ConfigError
from recipe.sweeps.ray.cluster import check_resources, ray_cluster
from recipe.sweeps.ray.history import member_history, replay_command, write_history
from recipe.sweeps.ray.results import study_of
from recipe.sweeps.ray.schedulers import build_scheduler, mutated_keys
from recipe.sweeps.ray.space import tune_search
from recipe.sweeps.ray.trainable import TRIAL_PREFIX, HydraJob, run_trial, trial_number
from recipe.sweeps.report import write_report
from recipe.sweeps.space import SearchSpace

log = logging.getLogger(__name__)
EXPERIMENT = "tune"  # Tune's own folder inside the sweep folder: its state, results and checkpoints
RAY_SESSION = ".ray_session"  # names the local Ray's session folder while the search runs


@dataclass
class Search:
    """A search as ``hydra.sweeper`` describes it (see ``conf/hydra/sweeper/ray_tune.yaml``)."""

    direction: str
    n_trials: int
    params: Mapping[str, Any]
    search_alg: str
    sampler: Callable[[], Any] | None
    scheduler: str
    schedulers: Mapping[str, Mapping[str, Any]]
    resources_per_trial: Mapping[str, float]
    max_concurrent_trials: int | None
    max_failures: int
    address: str | None
    num_cpus: int | None
    study_name: str


@dataclass
class TrialName:
    """Tune's name and folder for a trial: ``trial_<n>``, numbered from 0 in the order Tune created them."""

    first: int  # Tune's count of the first trial: 1 under a searcher, 0 for its own variants

    def __call__(self, trial: Any) -> str:
        return f"{TRIAL_PREFIX}{int(str(trial.experiment_tag).split('_')[0]) - self.first}"


def _write_history(results: Any, best: Any, mutated: list[str], space: SearchSpace, sweep_dir: Path) -> None:
    """Write the best PBT member's history and its replay command (``recipe.sweeps.ray.history``)."""
    [result] = [r for r in results if trial_number(Path(r.path).name) == best.number]
    history = member_history(sweep_dir / EXPERIMENT, result.metrics["trial_id"], result.config)
    command = replay_command(history, mutated, space.overrides)
    path = write_history(sweep_dir, best.number, best.value, history, mutated, command)
    log.info(f"The best member's history: {path}; replay it in a plain run with:")
    log.info(command)


def run_search(
    search: Search, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig, arguments: list[str]
) -> optuna.Study:
    """Run ``search`` to ``n_trials`` trials (the missing ones when its Tune folder holds an earlier, interrupted
    run of it) and write the report; return the study the report was written from."""
    metric = str(config.get("optimized_metric"))
    space = SearchSpace.parse(search.params, arguments)
    options = search.schedulers.get(search.scheduler, {})
    mode = "max" if search.direction == "maximize" else "min"
    scheduler = build_scheduler(search.scheduler, options, space)
    searcher, param_space = tune_search(search.search_alg, space, search.sampler, metric, mode)
    cpu, gpu = search.resources_per_trial.get("cpu", 1), search.resources_per_trial.get("gpu", 0)
    sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
    job = HydraJob(
        hydra_context, task_function, config, Singleton.get_state(), space, metric,
        threads=max(1, int(cpu)), mutated=mutated_keys(search.scheduler, options, space),
    )  # fmt: skip
    trainable = tune.with_resources(tune.with_parameters(run_trial, job=job), {"cpu": cpu, "gpu": gpu})
    new_folder = not sweep_dir.exists()
    with ray_cluster(search.address, search.num_cpus, sweep_dir / RAY_SESSION) as resources:
        try:
            check_resources(resources, cpu, gpu)
        except ConfigError:
            if new_folder:  # a search refused before any trial leaves no folder
                shutil.rmtree(sweep_dir, ignore_errors=True)
            raise
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(config, sweep_dir / "multirun.yaml")
        name = TrialName(first=0 if searcher is None else 1)
        tuner_path = sweep_dir / EXPERIMENT
        if tune.Tuner.can_restore(tuner_path):
            log.info(f"Resuming the search in {tuner_path}: its finished trials are kept, the others run again")
            tuner = tune.Tuner.restore(str(tuner_path), trainable, resume_unfinished=True, resume_errored=True)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=param_space,
                tune_config=tune.TuneConfig(
                    metric=metric,
                    mode=mode,
                    search_alg=searcher,
                    scheduler=scheduler,
                    num_samples=1 if search.search_alg == "grid" else search.n_trials,
                    max_concurrent_trials=search.max_concurrent_trials,
                    reuse_actors=False,  # a trial's Hydra job and its module-level state own their process
                    trial_name_creator=name,
                    trial_dirname_creator=name,
                ),
                run_config=tune.RunConfig(
                    name=EXPERIMENT,
                    storage_path=str(sweep_dir),
                    failure_config=tune.FailureConfig(max_failures=search.max_failures),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                    verbose=1,
                ),
            )
        results = tuner.fit()
    study = study_of(results, space, metric, search.direction, search.study_name, space.overrides)
    report = write_report(study, sweep_dir, metric)
    log.info(f"Report: {', '.join(str(p) for p in report.files)}")
    if report.best_command:
        log.info(f"Best {metric}={study.best_value:.4f} (trial {study.best_trial.number}); train it with:")
        log.info(report.best_command)
        if job.mutated:
            _write_history(results, study.best_trial, job.mutated, space, sweep_dir)
    else:
        from recipe.cli.console import print_error

        states = ", ".join(f"{t.number}: {t.state.name.lower()}" for t in study.trials)
        print_error(f"no trial of the Ray Tune search completed (trials {states}); see {sweep_dir}")
        raise SystemExit(1)
    return study
