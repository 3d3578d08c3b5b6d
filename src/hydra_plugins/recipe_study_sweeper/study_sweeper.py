"""The study sweeper (``hydra/sweeper=study``): the Optuna search run once per arm of a question, each arm's best
configuration re-run over seeds, and the study's report (``recipe.sweeps.study_report``)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf, open_dict

from hydra_plugins.recipe_optuna_sweeper.sweeper import NoTrialCompleted, OptunaSweeper, _one_line, check_settings
from recipe.errors import config_error, is_int
from recipe.sweeps.study import Arm, check_study, command_line_ranges

if TYPE_CHECKING:  # Optuna and the report load when a study runs, not when Hydra lists its plugins
    import optuna

log = logging.getLogger(__name__)


class _ArmLauncher:
    """The sweeper's launcher with ``extra`` overrides added to every job (the arm's folder), so that they run
    there without entering the trial's own overrides (its ``train it with`` command)."""

    def __init__(self, launcher: Any, extra: Sequence[str]) -> None:
        self.launcher, self.extra = launcher, list(extra)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
        return self.launcher.launch([[*o, *self.extra] for o in job_overrides], initial_job_idx)


class StudySweeper(OptunaSweeper):
    """Answer a question with one Optuna search per arm: ``n_trials`` trials each over the ``nuisance`` keys, the
    arm's scientific overrides fixed; then each arm's best configuration over ``seeds`` seeds.

    Args:
        scientific: key -> the values compared (``{optimizer: [adamw, sgd]}``); each combination is an arm.
        nuisance: key -> a range in the search grammar, or ``{scientific_key=value: range}`` per arm.
        seeds: runs of each arm's best configuration, seeds ``seed, seed+1, ...``: the isolation plot's spread.
        **optuna: the Optuna sweeper's settings (``n_trials`` counts per arm); ``params`` must stay empty.
    """

    def __init__(
        self, scientific: Mapping[str, Any], nuisance: Mapping[str, Any], seeds: int = 3, **optuna: Any
    ) -> None:
        check_study_settings(optuna.get("params"), seeds)
        super().__init__(**optuna)
        self.scientific = OmegaConf.to_container(scientific) if isinstance(scientific, DictConfig) else scientific
        self.nuisance = OmegaConf.to_container(nuisance) if isinstance(nuisance, DictConfig) else nuisance
        self.seeds = seeds

    def sweep(self, arguments: list[str]) -> optuna.Study:
        from recipe.sweeps.report import OVERRIDES_ATTR
        from recipe.sweeps.study_report import ArmResult, write_study_report
        from recipe.sweeps.workers import quoted

        assert self.config is not None and self.hydra_context is not None
        loader = self.hydra_context.config_loader
        with _one_line():
            nuisance = {**self.nuisance, **command_line_ranges(arguments)}
            arms = check_study(self.scientific, nuisance, loader.get_group_options)
            if self.n_jobs > 1:
                raise config_error("hydra.sweeper.n_jobs", self.n_jobs, "1 in a study: its arms run one after another")
            seed = self.config.get("seed")
            if not is_int(seed):
                raise config_error("seed", seed, "an integer: hydra.sweeper.seeds counts up from it")
        root, name, launcher = Path(self.config.hydra.sweep.dir), self.study_name, self.launcher
        self.params = dict(self.nuisance)
        studies, failures = [], []
        for arm in arms:
            log.info(f"Arm {arm.label}: {self.n_trials} trials of {', '.join(nuisance)}")
            self.study_name = f"{name}/{arm.label}"
            self.launcher = _ArmLauncher(launcher, [f"hydra.sweep.dir={quoted(str(root / arm.folder))}"])
            with _sweep_dir(self.config, root / arm.folder):
                try:
                    studies.append(self.search([*arguments, *arm.overrides]))
                    failures.append(None)
                except NoTrialCompleted as err:  # the arm's answer: reported, and the other arms still run
                    log.warning(f"Arm {arm.label}: {err}; it gets no seeds")
                    studies.append(err.study)
                    failures.append(str(err).split("; ", 1)[-1])
        self.launcher, self.study_name = launcher, name
        if not any(failure is None for failure in failures):
            raise NoTrialCompleted(f"no arm of the study completed a trial; {failures[-1]}")
        results = []
        for arm, study, failure in zip(arms, studies, failures, strict=True):
            if failure is not None:
                results.append(ArmResult(arm, study, [], failure))
                continue
            best = study.best_trial.user_attrs[OVERRIDES_ATTR]
            seeds = [seed + i for i in range(self.seeds)]
            log.info(f"Arm {arm.label}: its best configuration over seeds {seeds}")
            jobs = [[*best, f"seed={s}", f"hydra.sweep.subdir={quoted(f'{arm.folder}_seed{s}')}"] for s in seeds]
            launcher.launch(jobs, 0)
            results.append(ArmResult(arm, study, [root / f"{arm.folder}_seed{s}" for s in seeds]))
        for line in write_study_report(root, results, str(self.config.get("optimized_metric")), self.directions[0]):
            log.info(line)
        return studies[0]


@contextlib.contextmanager
def _sweep_dir(config: DictConfig, folder: Path) -> Iterator[None]:
    """``hydra.sweep.dir`` set to ``folder`` for the Optuna sweeper (its report) and the launcher (which reads the
    same config) while one arm runs."""
    root = config.hydra.sweep.dir
    with open_dict(config):
        config.hydra.sweep.dir = str(folder)
    try:
        yield
    finally:
        with open_dict(config):
            config.hydra.sweep.dir = root


def check_study_settings(params: Any, seeds: Any) -> None:
    """The study's own settings: ``seeds`` a positive integer, and no ``params`` (the nuisance keys are the space)."""
    if params:
        raise config_error("hydra.sweeper.params", dict(params), "empty in a study: name the keys under nuisance")
    if not is_int(seeds) or seeds < 1:
        raise config_error("hydra.sweeper.seeds", seeds, "a positive integer")


def check_study_config(cfg: DictConfig, group_options: Any, arguments: Sequence[str]) -> list[Arm]:
    """Check a composed config's study before Hydra builds the sweeper (its errors would be a screen, not a line):
    the Optuna settings, the study's own and its arms and ranges (the command line's ``arguments`` among them).
    ``[]`` when the sweeper is not a study."""
    sweeper = cfg.hydra.sweeper
    if sweeper.get("_target_") != f"{StudySweeper.__module__}.{StudySweeper.__name__}":
        return []
    check_study_settings(sweeper.get("params"), sweeper.get("seeds"))
    if not is_int(cfg.get("seed")):
        raise config_error("seed", cfg.get("seed"), "an integer: hydra.sweeper.seeds counts up from it")
    check_settings(sweeper.get("direction"), sweeper.get("n_trials"), n_jobs=sweeper.get("n_jobs", 1))
    scientific, nuisance = (OmegaConf.to_container(sweeper.get(k) or {}) for k in ("scientific", "nuisance"))
    return check_study(scientific, {**nuisance, **command_line_ranges(arguments)}, group_options)
