"""The Optuna sweeper: asks Optuna for a trial, runs it as a Hydra job, tells Optuna how it ended."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import math
import os
import socket
import statistics
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from recipe.errors import ConfigError, TrainingDiverged, config_error, is_int
from recipe.extras import require_storage_driver
from recipe.sweeps.auto import flat_params

# Hydra imports this module to find its plugins for every command, --help included: Optuna, torch, Lightning and
# the recipe.sweeps modules that pull them are imported by the methods that use them, when a search runs.
if TYPE_CHECKING:
    import optuna
    from optuna.trial import TrialState

    from recipe.sweeps import SearchSpace
    from recipe.sweeps.repeats import Run

FAILURE_ATTR = "failure"  # user attribute: why a trial failed
PROCESS_ATTR = "process"  # user attribute: the host, process id, torch threads and GPUs of the process that ran it
RUN_VALUES_ATTR = "run_values"  # user attribute: each run's value, when a trial averages several runs

log = logging.getLogger(__name__)


class OptunaSweeper(Sweeper):
    """Run ``n_trials`` trials of an Optuna study, one Hydra job each (or one per seed and fold), in this process
    or in ``n_jobs`` worker processes.

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
            The heartbeat finds a trial lost on another machine; on its own machine its process id finds it at once.
        grace_period: seconds without a heartbeat after which a trial counts as lost; ``None``: twice the interval.
        max_retry: how many times a lost trial's parameters run again (and a killed worker is replaced).
        n_jobs: trials run at once, each worker a process of its own with its share of the cores and one GPU.
        seeds_per_trial: a trial's value is the mean over this many runs, seeds ``seed, seed+1, ...``.
        folds_per_trial: also average over every fold of ``data.folds`` (k-fold cross-validation per trial).
        worker: set by the sweeper on its workers' command lines (``None`` in the process the user started).
        timeout: minutes after which (once a trial has completed) no trial starts and a running one stops at its
            next epoch (``None``: no limit).
        auto: ``hparams_search=auto``'s settings (``folds``, ``folds_below``, ``refit``): the space is chosen from
            the config (``recipe.sweeps.auto``), ``params`` adds to it; ``None`` for a search that names its space.
        exclude: keys ``auto`` leaves out of the space it chooses.
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
        n_jobs: int = 1,
        seeds_per_trial: int = 1,
        folds_per_trial: bool = False,
        worker: int | None = None,
        timeout: float | None = None,
        auto: Mapping[str, Any] | None = None,
        exclude: Sequence[str] = (),
    ) -> None:
        check_settings(
            direction=direction,
            directions=directions,
            n_trials=n_trials,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            max_retry=max_retry,
            n_jobs=n_jobs,
            seeds_per_trial=seeds_per_trial,
            folds_per_trial=folds_per_trial,
            timeout=timeout,
            auto=auto,
            exclude=exclude,
        )
        self.timeout, self.deadline = timeout, None
        self.auto = None if auto is None else dict(auto)
        self.exclude = list(exclude)
        self.directions = list(directions) if directions else [direction]
        self.n_jobs, self.worker = n_jobs, worker
        self.seeds_per_trial, self.folds_per_trial = seeds_per_trial, folds_per_trial
        self.study_name, self.storage = study_name, storage
        self.n_trials, self.pruner = n_trials, pruner
        if sampler is None:
            self.sampler = None
        else:
            from recipe.sweeps.sampling import TrialSeededSampler

            self.sampler = TrialSeededSampler(sampler)
        self.heartbeat = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period}
        self.max_retry = max_retry
        self.params = flat_params(params or {})
        self.enqueue_trials = [dict(p) for p in enqueue_trials]
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.opened_storage: optuna.storages.BaseStorage | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        launcher = str(config.hydra.launcher.get("_target_"))
        if not launcher.endswith(".BasicLauncher"):
            raise config_error(
                "hydra/launcher",
                launcher,
                "the basic launcher only: trials run in this process; to run trials in parallel, "
                "set hydra.sweeper.n_jobs or start the same search several times on one storage",
            )
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> optuna.Study:
        from recipe.cli.console import print_error

        try:
            return self.search(arguments)
        except NoTrialCompleted as err:
            print_error(str(err))
            raise SystemExit(1) from None

    def search(self, arguments: list[str]) -> optuna.Study:
        """The search, its report and (``auto``) its final model; ``NoTrialCompleted`` when no trial completed."""

        with _one_line():  # postgresql:// without the postgres extra: before Optuna loads
            require_storage_driver(self.storage)
        import optuna

        from recipe.sweeps import SearchSpace, write_report
        from recipe.sweeps.storage import ask_lock, counted_trials, open_storage, storage_file
        from recipe.sweeps.workers import run_workers

        assert self.config is not None
        if self.timeout is not None:
            self.deadline = time.monotonic() + 60 * self.timeout
        sweep_dir = Path(self.config.hydra.sweep.dir)
        with _one_line():
            metric = _objectives(self.config.get("optimized_metric"), self.directions)
            params, facts = self.params, None
            if self.auto is not None:
                params, facts = self._auto_params(sweep_dir)
                metric = facts.metric
            space = SearchSpace.parse(params, arguments)
            runs = self._trial_runs(space)
            storage = self._storage_url(sweep_dir)
            if self.worker is None:  # the workers' parent checked it
                self.validate_batch_is_legal(space.corners())
            lock = ask_lock(storage, sweep_dir)
            # a study file another process is making is not read half made; other locks would make the sweep folder
            with lock if storage_file(storage) else contextlib.nullcontext():
                self.opened_storage = open_storage(storage, **self.heartbeat, max_retry=self.max_retry)
                study = optuna.create_study(
                    storage=self.opened_storage,
                    sampler=self.sampler,
                    pruner=self.pruner,
                    study_name=self.study_name,
                    directions=self.directions,
                    load_if_exists=True,
                )
        if self.worker is not None:  # a worker runs trials; its parent writes the report
            self._run_trials(study, space, runs, lock)
            return study
        if facts is not None:  # auto starts from the configuration as given
            from recipe.sweeps.auto import as_given

            study.enqueue_trial(as_given(self.config, space.distributions), skip_if_exists=True)
        for params in self.enqueue_trials:
            study.enqueue_trial(params, skip_if_exists=True)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        with lock:
            self._fail_lost_trials(study)
        log.info(f"Study {study.study_name!r} in {storage}: {counted_trials(study)} of {self.n_trials} trials")
        if self.n_jobs > 1:
            lost = functools.partial(self._worker_lost, study)
            run_workers(self.n_jobs, sys.argv, str(storage), str(sweep_dir), lost, self.max_retry)
        else:
            self._run_trials(study, space, runs, lock)
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
            raise NoTrialCompleted(_none_completed(study), study)
        if facts is not None and self.auto.get("refit", True):
            self._refit(study, facts)
        return study

    def _auto_params(self, sweep_dir: Path) -> tuple[dict[str, Any], Any]:
        """``hparams_search=auto``: the space chosen from the config and the data's size, its scoring (k folds or
        repeated splits on small data) and direction (the task's); written to the sweep folder and printed."""
        from recipe.sweeps.auto import choose_scoring, data_facts, direction_of, search_params, write_space
        from recipe.validation.signatures import constructor_hints

        assert self.config is not None and self.auto is not None
        facts = data_facts(self.config)
        hints, _ = constructor_hints(str(self.config.data._target_))
        seeded = OmegaConf.to_container(self.config.data, resolve=False).get("seed") == "${seed}"
        folds_below = self.auto.get("folds_below", 5000)
        scoring = choose_scoring(facts.rows, folds_below, self.auto.get("folds", 5), "folds" in hints, seeded)
        params = search_params(self.config, self.params, self.exclude, facts.rows)
        params["optimized_metric"] = facts.metric  # what each trial returns and reports to the pruner
        if scoring.folds:
            self.folds_per_trial = True
            params["++data.folds"] = scoring.folds  # ++: a data yaml may not list folds
        self.seeds_per_trial = max(self.seeds_per_trial, scoring.seeds)
        self.directions = [direction_of(facts.task, facts.metric, self.directions[0])]
        budget = f"{self.n_trials} trials" + (f" or {self.timeout} minutes" if self.timeout else "")
        notes = {"task": facts.task, "metric": facts.metric, "direction": self.directions[0]}
        notes |= {"scoring": scoring.describe(facts.rows, folds_below), "budget": budget}
        path = write_space(sweep_dir, params, notes)
        log.info(f"hparams_search=auto: {facts.metric} ({self.directions[0]}), scored by {notes['scoring']}, {budget}")
        log.info(f"The search space (in {path}):")
        for key, value in params.items():
            log.info(f"  {key}: {value}")
        return params, facts

    def _refit(self, study: optuna.Study, facts: Any) -> None:
        """Train the best trial's configuration once more on train and validation together, for the epochs that
        trial's first run took to its best value (not the ones early stopping waited past it), and test it: the
        search's result.
        The last lines give its test metrics and the command that trains it again."""
        from recipe.sweeps.auto import epochs_to_best
        from recipe.sweeps.report import OVERRIDES_ATTR, command
        from recipe.sweeps.runs import override_key
        from recipe.validation.signatures import constructor_hints

        assert self.config is not None
        best = study.best_trial
        epochs = epochs_to_best(best.intermediate_values, self.directions[0])  # its first run's curve
        pooled = "train_on_val" in constructor_hints(str(self.config.data._target_))[0]
        searched_only = ("data.folds", "data.fold", "optimized_metric")
        final = [o for o in best.user_attrs[OVERRIDES_ATTR] if override_key(o) not in searched_only]
        final += [f"task={facts.task}", "test=true", "test_weights=last", "++callbacks.early_stopping=null"]
        final += [f"trainer.max_epochs={epochs}"] if epochs else []
        final += ["++data.train_on_val=true"] if pooled else []
        final = list({override_key(o): o for o in final}.values())  # a later value of a key replaces the earlier
        length = f"{epochs} epoch{'s' if epochs != 1 else ''}" if epochs else "its epochs"
        where = "on train and validation together" if pooled else "on the training split (the data module cannot pool)"
        log.info(f"Training trial {best.number}'s configuration {where} for {length}, then testing it")
        with _one_line():
            metrics = f"optimized_metric=[{','.join(facts.test_metrics)}]"  # what the job returns
            extra = [metrics, "++callbacks.optuna_pruning=null", "hydra.sweep.subdir=final"]  # it takes one name
            [job] = self.launcher.launch([[*final, *extra]], len(study.trials))
        _, values, why = _outcome(job, None)
        if values is None:
            from recipe.cli.console import print_error

            print_error(f"the final training failed: {why}")
            raise SystemExit(1)
        scores = ", ".join(f"{name}={value:.4f}" for name, value in zip(facts.test_metrics, values, strict=True))
        log.info(f"Final model (trial {best.number}, {length}, in {job.hydra_cfg.hydra.runtime.output_dir}): {scores}")
        log.info("Train it again with:")
        log.info(command(final))

    def _storage_url(self, sweep_dir: Path) -> str | None:
        """The study's storage; workers need one they share, so an in-memory study goes to the sweep folder."""
        if self.storage is not None or self.n_jobs == 1:
            return self.storage
        url = f"sqlite:///{(sweep_dir / 'optuna.db').absolute()}"
        log.info(f"hydra.sweeper.n_jobs={self.n_jobs} needs a storage its workers share: the study goes to {url}")
        return url

    def _trial_runs(self, space: SearchSpace) -> list[Run]:
        """The runs each trial averages over, checked against the search space."""
        from recipe.sweeps.repeats import trial_runs
        from recipe.sweeps.runs import override_key

        assert self.config is not None
        fixed = {override_key(o): o.split("=", 1)[1] for o in space.fixed if "=" in o}
        folds = fixed.get("data.folds", self.config.data.get("folds")) if self.folds_per_trial else None
        folds = int(folds) if isinstance(folds, str) and folds.isdigit() else folds
        if self.folds_per_trial and (isinstance(folds, bool) or not isinstance(folds, int) or folds < 2):
            raise config_error(
                "data.folds", folds, "2 or more folds, for hydra.sweeper.folds_per_trial to average over"
            )
        searched = {name.split("|")[0] for name in space.distributions}
        for key, option, value in (
            ("seed", "seeds_per_trial", self.seeds_per_trial),
            ("data.fold", "folds_per_trial", folds),
        ):
            if key in searched and value not in (1, None):
                raise config_error(f"hydra.sweeper.{option}", value, f"off while {key} is a search parameter")
        return trial_runs(self.config.get("seed"), self.seeds_per_trial, folds)

    def _run_trials(
        self, study: optuna.Study, space: SearchSpace, runs: list[Run], lock: contextlib.AbstractContextManager
    ) -> None:
        """Ask for trials and run them until the study holds ``n_trials``; ``lock`` (``ask_lock``) makes counting
        and asking one step for every process on the study, so that together they run exactly ``n_trials``."""
        from recipe.sweeps.storage import counted_trials

        while True:
            if self._out_of_time(study):
                log.info(f"hydra.sweeper.timeout={self.timeout} minutes reached: no more trials")
                return
            with lock:
                self._fail_lost_trials(study)
                if counted_trials(study) >= self.n_trials:
                    return
                trial = study.ask()
                trial.set_user_attr(PROCESS_ATTR, _process())
            self._run_trial(study, space, runs, trial)

    def _run_trial(self, study: optuna.Study, space: SearchSpace, runs: list[Run], trial: optuna.Trial) -> None:
        from optuna.trial import TrialState

        from recipe.sweeps import active_trial
        from recipe.sweeps.report import OUTPUT_DIR_ATTR, OVERRIDES_ATTR, train_command
        from recipe.sweeps.runs import override_key
        from recipe.sweeps.storage import heartbeat

        overrides = space.overrides(space.sample(trial))  # a parameter under another choice is left out
        trial.set_user_attr(OVERRIDES_ATTR, overrides)
        repeated = {override_key(o) for o in runs[0].overrides}  # each run sets its own seed and fold
        overrides = [o for o in overrides if override_key(o) not in repeated]
        values: list[float | list[float]] = []
        try:
            with heartbeat(self.opened_storage, trial._trial_id):
                for i, run in enumerate(runs):
                    if i and self._out_of_time(study):
                        state, value, why = (
                            TrialState.PRUNED,
                            None,
                            f"hydra.sweeper.timeout={self.timeout} minutes reached",
                        )
                        break
                    # the first run reports its curve to the pruner; the others add their value only
                    with active_trial(trial, self._deadline(study)) if i == 0 else contextlib.nullcontext() as active:
                        [job] = self.launcher.launch([[*overrides, *self._run_overrides(run)]], trial.number)
                    if i == 0:
                        trial.set_user_attr(OUTPUT_DIR_ATTR, str(job.hydra_cfg.hydra.runtime.output_dir))
                    state, value, why = _outcome(job, active.pruned if active else None)
                    if state != TrialState.COMPLETE:
                        break
                    values.append(value)
        except BaseException:  # Ctrl-C or a config that does not compose: leave no trial RUNNING
            study.tell(trial, state=TrialState.FAIL)
            raise
        if state == TrialState.COMPLETE and len(runs) > 1:
            trial.set_user_attr(RUN_VALUES_ATTR, values)
            value = _mean(values)
        if state == TrialState.FAIL:
            trial.set_user_attr(FAILURE_ATTR, why)
        frozen = study.tell(trial, value, state=state)
        of_runs = f" (mean of {len(runs)} runs)" if len(runs) > 1 else ""
        if state == TrialState.COMPLETE and isinstance(value, list):
            log.info(f"Trial {trial.number} complete: {', '.join(f'{v:.4g}' for v in value)}{of_runs}")
        elif state == TrialState.COMPLETE:
            best = study.best_trial
            log.info(
                f"Trial {trial.number} complete: {value:.4f}{of_runs} (best {best.value:.4f}, trial {best.number})"
            )
        elif state == TrialState.PRUNED:
            log.info(f"Trial {trial.number} pruned: {why}")
        else:
            log.warning(f"Trial {trial.number} failed: {why}; rerun it alone with: {train_command(frozen)}")

    def _deadline(self, study: optuna.Study) -> float | None:
        """When the time budget is spent (``time.monotonic()``); ``None`` without a budget, and until a trial has
        completed: a search stopped before then would have nothing to report."""
        from optuna.trial import TrialState

        if self.deadline is None or not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            return None
        return self.deadline

    def _out_of_time(self, study: optuna.Study) -> bool:
        deadline = self._deadline(study)
        return deadline is not None and time.monotonic() >= deadline

    def _run_overrides(self, run: Run) -> list[str]:
        """``run``'s seed and fold, and its folder: the sweep's ``subdir`` with the run's suffix."""
        from recipe.sweeps.workers import quoted

        if not run.suffix:
            return list(run.overrides)
        assert self.config is not None
        subdir = OmegaConf.to_container(self.config.hydra.sweep, resolve=False)["subdir"]
        return [*run.overrides, f"hydra.sweep.subdir={quoted(f'{subdir}{run.suffix}')}"]

    def _fail_lost_trials(self, study: optuna.Study) -> None:
        """Fail the running trials that lost their process and queue them again: on this machine as soon as the
        process is gone (a rerun right after ``kill -9`` finds it), on another once its heartbeat has been silent
        for the grace period. Called under the ask lock, so that two processes never fail one trial twice."""
        from optuna.trial import TrialState

        from recipe.sweeps.storage import fail_and_retry, fail_lost_trials, process_gone

        fail_lost_trials(study)
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            process = trial.user_attrs.get(PROCESS_ATTR, {})
            if process_gone(process):
                fail_and_retry(study, trial, self.max_retry, f"its process, {process['pid']}, is gone")

    def _worker_lost(self, study: optuna.Study, pid: int) -> bool:
        """Fail the trial a killed worker was running and queue it again; whether the study still lacks trials."""
        from optuna.trial import TrialState

        from recipe.sweeps.storage import counted_trials, fail_and_retry

        here = {"host": socket.gethostname(), "pid": pid}
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            process = trial.user_attrs.get(PROCESS_ATTR, {})
            if {key: process.get(key) for key in here} == here:
                fail_and_retry(study, trial, self.max_retry, f"its worker, process {pid}, was killed")
        return counted_trials(study) < self.n_trials


def check_settings(
    direction: Any,
    n_trials: Any,
    directions: Any = None,
    heartbeat_interval: Any = None,
    grace_period: Any = None,
    max_retry: Any = 0,
    n_jobs: Any = 1,
    seeds_per_trial: Any = 1,
    folds_per_trial: Any = False,
    timeout: Any = None,
    auto: Any = None,
    exclude: Any = (),
) -> None:
    """Check the sweeper's own settings (``hydra.sweeper.*``), raising ``ConfigError`` on the first bad one."""
    for key, value in (("direction", direction), *(("directions", d) for d in directions or ())):
        if value not in ("maximize", "minimize"):
            raise config_error(f"hydra.sweeper.{key}", value, "maximize or minimize")
    for key, value in (("n_trials", n_trials), ("n_jobs", n_jobs), ("seeds_per_trial", seeds_per_trial)):
        if not is_int(value) or value < 1:
            raise config_error(f"hydra.sweeper.{key}", value, "a positive integer")
    for key, value in (("heartbeat_interval", heartbeat_interval), ("grace_period", grace_period)):
        if value is not None and (not is_int(value) or value < 1):
            raise config_error(f"hydra.sweeper.{key}", value, "a positive number of seconds, or null")
    if not is_int(max_retry) or max_retry < 0:
        raise config_error("hydra.sweeper.max_retry", max_retry, "a non-negative integer")
    if not isinstance(folds_per_trial, bool):
        raise config_error("hydra.sweeper.folds_per_trial", folds_per_trial, "true or false")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise config_error("hydra.sweeper.timeout", timeout, "a positive number of minutes, or null")
    if not isinstance(exclude, Sequence) or isinstance(exclude, str) or not all(isinstance(k, str) for k in exclude):
        raise config_error("hydra.sweeper.exclude", exclude, "a list of keys, e.g. [data.batch_size]")
    if auto is not None:
        for key, value in auto.items():
            least = {"folds": 2, "folds_below": 0}.get(key)
            if key == "refit" and not isinstance(value, bool):
                raise config_error("hydra.sweeper.auto.refit", value, "true or false")
            if key != "refit" and (least is None or not is_int(value) or value < least):
                allowed = f"an integer >= {least}" if least is not None else "folds, folds_below or refit"
                raise config_error(f"hydra.sweeper.auto.{key}", value, allowed)


def check_search(cfg: DictConfig, arguments: Sequence[str] = ()) -> None:
    """Check a composed config's Optuna search (``hydra.sweeper``, ``optimized_metric``, and with ``auto`` the keys
    it searches, the command line's ``arguments`` among them) before Hydra builds the sweeper: Hydra shows what a
    sweeper's constructor raises as a screen of its own, where this is one line."""
    sweeper = cfg.hydra.sweeper
    if sweeper.get("_target_") != f"{OptunaSweeper.__module__}.{OptunaSweeper.__name__}":
        return
    keys = inspect.signature(check_settings).parameters
    settings = {key: sweeper.get(key) for key in keys if key in sweeper}
    check_settings(**settings)
    directions = list(settings.get("directions") or [settings.get("direction")])
    _objectives(cfg.get("optimized_metric"), directions)
    if sweeper.get("auto") is not None:
        from recipe.sweeps.auto import check_auto

        check_auto(cfg, flat_params(sweeper.get("params") or {}), list(sweeper.get("exclude") or ()), arguments)


@contextlib.contextmanager
def _one_line() -> Iterator[None]:
    """End the command with a ``ConfigError``'s one line and exit code 2: raised as is from a sweeper's method,
    Hydra would print it with a stack trace."""
    from recipe.cli.console import print_error

    try:
        yield
    except ConfigError as err:
        print_error(str(err))
        raise SystemExit(2) from None


def _process() -> dict[str, Any]:
    """Where a trial runs: host, process id, torch's CPU threads, the GPUs it sees."""
    import torch

    gpus = os.environ.get("CUDA_VISIBLE_DEVICES")
    return {"host": socket.gethostname(), "pid": os.getpid(), "threads": torch.get_num_threads(), "gpus": gpus}


def _mean(values: list[float | list[float]]) -> float | list[float]:
    """The mean of the runs' values, objective by objective."""
    if isinstance(values[0], list):
        return [statistics.fmean(column) for column in zip(*values, strict=True)]
    return statistics.fmean(values)


class NoTrialCompleted(Exception):
    """No trial of a search (``study``) completed; the message says why the last failed one failed."""

    def __init__(self, message: str, study: optuna.Study | None = None) -> None:
        super().__init__(message)
        self.study = study


def _none_completed(study: optuna.Study) -> str:
    """The one line saying that no trial of ``study`` completed, and why the last failed one failed."""
    from optuna.trial import TrialState

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
    from optuna.trial import TrialState

    if pruned:
        return TrialState.PRUNED, None, pruned
    try:
        value = job.return_value  # re-raises the job's exception when it failed
    except (ConfigError, TrainingDiverged) as err:  # already reported in one line by recipe.cli.entry.entry_point
        return TrialState.FAIL, None, str(err)
    except Exception as err:
        log.error("The trial raised:", exc_info=err)
        return TrialState.FAIL, None, f"{type(err).__name__}: {err}"
    values = list(value) if isinstance(value, Sequence) else [value]  # several objectives: a list
    if any(v is None or not math.isfinite(v) for v in values):
        return TrialState.FAIL, None, f"returned {value}, not a finite optimized_metric"
    return TrialState.COMPLETE, [float(v) for v in values] if isinstance(value, Sequence) else float(value), ""
