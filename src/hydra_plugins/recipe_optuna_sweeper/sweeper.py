"""The Optuna sweeper: asks Optuna for a trial, runs it as a Hydra job, tells Optuna how it ended."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from optuna.storages._heartbeat import get_heartbeat_thread
from optuna.trial import TrialState

from recipe.console import print_error
from recipe.errors import ConfigError, TrainingDiverged, config_error
from recipe.sweeps import SearchSpace, active_trial, write_report
from recipe.sweeps.report import OUTPUT_DIR_ATTR, OVERRIDES_ATTR, train_command
from recipe.sweeps.sampling import TrialSeededSampler
from recipe.sweeps.storage import counted_trials, fail_lost_trials, open_storage

FAILURE_ATTR = "failure"  # user attribute: why a trial failed

log = logging.getLogger(__name__)


class OptunaSweeper(Sweeper):
    """Run ``n_trials`` trials of an Optuna study, one Hydra job each, in this process.

    Args:
        direction: ``maximize`` or ``minimize`` the value the task returns (its ``optimized_metric``).
        directions: one direction per objective, for a list ``optimized_metric`` (a multi-objective study);
            replaces ``direction``.
        study_name: trials stored under this name in ``storage`` form one study.
        storage: ``sqlite:///path.db``, ``postgresql://...``, ``journal:///path.log``, or ``None`` for memory.
        n_trials: the study's total number of trials, in any state; running again adds only the missing ones.
        sampler: builds an Optuna sampler from keyword arguments (``hydra/sweeper/sampler``, ``_partial_: true``);
            each trial's draws are seeded from its ``seed`` and the trial number.
        pruner: an Optuna pruner (instantiated by Hydra from ``hydra/sweeper/pruner``).
        params: the search space, ``key: grammar`` (see ``recipe.sweeps.space``).
        enqueue_trials: parameter sets to run first (each once per study).
        heartbeat_interval: seconds between a running trial's heartbeats in a database storage; ``None``: none.
        grace_period: seconds without a heartbeat after which a trial counts as lost; ``None``: twice the interval.
        max_retry: how many times a lost trial's parameters run again.
    """

    def __init__(
        self,
        direction: str,
        study_name: str | None,
        storage: str | None,
        n_trials: int,
        sampler: functools.partial[optuna.samplers.BaseSampler] | None = None,
        pruner: optuna.pruners.BasePruner | None = None,
        params: Mapping[str, Any] | None = None,
        enqueue_trials: Sequence[Mapping[str, Any]] = (),
        heartbeat_interval: int | None = None,
        grace_period: int | None = None,
        max_retry: int = 0,
        directions: Sequence[str] | None = None,
    ) -> None:
        self.directions = list(directions) if directions else [direction]
        for key, value in (("direction", direction), *(("directions", d) for d in self.directions)):
            if value not in ("maximize", "minimize"):
                raise config_error(f"hydra.sweeper.{key}", value, "maximize or minimize")
        if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
            raise config_error("hydra.sweeper.n_trials", n_trials, "a positive integer")
        for key, value in (("heartbeat_interval", heartbeat_interval), ("grace_period", grace_period)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise config_error(f"hydra.sweeper.{key}", value, "a positive number of seconds, or null")
        if isinstance(max_retry, bool) or not isinstance(max_retry, int) or max_retry < 0:
            raise config_error("hydra.sweeper.max_retry", max_retry, "a non-negative integer")
        self.study_name, self.storage = study_name, storage
        self.n_trials, self.pruner = n_trials, pruner
        self.sampler = None if sampler is None else TrialSeededSampler(sampler)
        self.heartbeat = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period}
        self.max_retry = max_retry
        self.params = dict(params or {})
        self.enqueue_trials = [dict(p) for p in enqueue_trials]
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        launcher = str(config.hydra.launcher.get("_target_"))
        if not launcher.endswith(".BasicLauncher"):
            raise config_error(
                "hydra/launcher",
                launcher,
                "the basic launcher only: trials run in this process; to run trials in parallel, "
                "start the same search several times on one storage",
            )
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> optuna.Study:
        assert self.config is not None
        metric = _objectives(self.config.get("optimized_metric"), self.directions)
        space = SearchSpace.parse(self.params, arguments)
        self.validate_batch_is_legal(space.corners())
        study = optuna.create_study(
            storage=open_storage(self.storage, **self.heartbeat, max_retry=self.max_retry),
            sampler=self.sampler,
            pruner=self.pruner,
            study_name=self.study_name,
            directions=self.directions,
            load_if_exists=True,
        )
        for params in self.enqueue_trials:
            study.enqueue_trial(params, skip_if_exists=True)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        fail_lost_trials(study)
        log.info(f"Study {study.study_name!r} in {self.storage}: {counted_trials(study)} of {self.n_trials} trials")
        while counted_trials(study) < self.n_trials:
            self._run_trial(study, space)
            fail_lost_trials(study)
        report = write_report(study, sweep_dir, metric)
        log.info(f"Report: {', '.join(str(p) for p in report.files)}")
        if report.pareto_commands:
            log.info(f"Pareto front of {', '.join(metric)}: {len(report.pareto_commands)} trials; train one with:")
            for line in report.pareto_commands:
                log.info(line)
        elif report.best_command:
            log.info(f"Best {metric}={study.best_value:.4f} (trial {study.best_trial.number}); train it with:")
            log.info(report.best_command)
        else:
            print_error(_none_completed(study))
            raise SystemExit(1)
        return study

    def _run_trial(self, study: optuna.Study, space: SearchSpace) -> None:
        trial = study.ask()
        overrides = space.overrides(space.sample(trial))  # a parameter under another choice is left out
        trial.set_user_attr(OVERRIDES_ATTR, overrides)
        try:
            # Optuna's own heartbeat thread, as Study.optimize runs it; ask-and-tell has no public one.
            with active_trial(trial) as active, get_heartbeat_thread(trial._trial_id, study._storage):
                [job] = self.launcher.launch([overrides], initial_job_idx=trial.number)
        except BaseException:  # Ctrl-C or a config that does not compose: leave no trial RUNNING
            study.tell(trial, state=TrialState.FAIL)
            raise
        trial.set_user_attr(OUTPUT_DIR_ATTR, str(job.hydra_cfg.hydra.runtime.output_dir))
        state, value, why = _outcome(job, active.pruned)
        if state == TrialState.FAIL:
            trial.set_user_attr(FAILURE_ATTR, why)
        frozen = study.tell(trial, value, state=state)
        if state == TrialState.COMPLETE and isinstance(value, list):
            log.info(f"Trial {trial.number} complete: {', '.join(f'{v:.4g}' for v in value)}")
        elif state == TrialState.COMPLETE:
            best = study.best_trial
            log.info(f"Trial {trial.number} complete: {value:.4f} (best {best.value:.4f}, trial {best.number})")
        elif state == TrialState.PRUNED:
            log.info(f"Trial {trial.number} pruned: {why}")
        else:
            log.warning(f"Trial {trial.number} failed: {why}; rerun it alone with: {train_command(frozen)}")


def _none_completed(study: optuna.Study) -> str:
    """The one line saying that no trial of ``study`` completed, and why the last failed one failed."""
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    pruned = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
    line = f"no trial of study {study.study_name!r} completed ({len(failed)} failed, {len(pruned)} pruned)"
    if not failed:
        return line
    return f"{line}; trial {failed[-1].number}: {failed[-1].user_attrs.get(FAILURE_ATTR, 'lost its process')}"


def _objectives(metric: Any, directions: list[str]) -> str | list[str]:
    """``optimized_metric`` as one name, or a list of one name per direction."""
    names = [metric] if isinstance(metric, str) else [str(m) for m in metric or ()]
    if len(names) != len(directions):
        raise config_error("optimized_metric", metric, f"{len(directions)} names, one per hydra.sweeper.directions")
    return names[0] if len(names) == 1 else names


def _outcome(job: JobReturn, pruned: str | None) -> tuple[TrialState, float | list[float] | None, str]:
    """The state and value Optuna records for a finished job, and why when it did not complete."""
    if pruned:
        return TrialState.PRUNED, None, pruned
    try:
        value = job.return_value  # re-raises the job's exception when it failed
    except (ConfigError, TrainingDiverged) as err:  # already reported in one line by recipe.entry.entry_point
        return TrialState.FAIL, None, str(err)
    except Exception as err:
        log.error("The trial raised:", exc_info=err)
        return TrialState.FAIL, None, f"{type(err).__name__}: {err}"
    values = list(value) if isinstance(value, Sequence) else [value]  # several objectives: a list
    if any(v is None or not math.isfinite(v) for v in values):
        return TrialState.FAIL, None, f"returned {value}, not a finite optimized_metric"
    return TrialState.COMPLETE, [float(v) for v in values] if isinstance(value, Sequence) else float(value), ""
