"""Several objectives: the sweeper's directions, the Pareto front in the report, the cost metrics."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from conftest import NO_LOGGER
from hydra import compose, initialize_config_dir
from hydra.core.utils import JobReturn, JobStatus
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from hydra_plugins.recipe_optuna_sweeper.sweeper import OptunaSweeper, _objectives, _outcome
from recipe.build import build
from recipe.callbacks import FitCost
from recipe.cli.config import CONF_DIR
from recipe.errors import ConfigError
from recipe.sweeps import write_report
from recipe.sweeps.report import OVERRIDES_ATTR
from train import train


def _dominated(values: tuple[float, float], others: list[tuple[float, float]]) -> bool:
    """Beaten by another point: accuracy as high and time as low, and better on one (maximize, minimize)."""
    return any(a >= values[0] and t <= values[1] and (a, t) != values for a, t in others)


def test_report_of_two_objectives_lists_exactly_the_non_dominated_trials(tmp_path: Path) -> None:
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0))
    points = [(0.90, 10.0), (0.95, 30.0), (0.85, 5.0), (0.80, 20.0), (0.95, 40.0), (0.97, 60.0), (0.70, 6.0)]
    for accuracy, seconds in points:
        trial = study.ask({"optimizer.lr": FloatDistribution(1e-4, 1e-1, log=True)})
        trial.set_user_attr(OVERRIDES_ATTR, [f"optimizer.lr={trial.params['optimizer.lr']}"])
        study.tell(trial, [accuracy, seconds])

    report = write_report(study, tmp_path, ["val/acc_best", "cost/fit_time_s"])

    front = [p for p in points if not _dominated(p, points)]
    assert front == [(0.90, 10.0), (0.95, 30.0), (0.85, 5.0), (0.97, 60.0)]
    table = (tmp_path / "pareto_front.md").read_text().splitlines()
    assert table[0] == "# Pareto front: val/acc_best (maximize), cost/fit_time_s (minimize)"
    rows = [line for line in table if line.startswith("| ") and not line.startswith("| number")]
    assert [(float(r.split(" | ")[1]), float(r.split(" | ")[2])) for r in rows] == front
    assert report.best_command is None
    assert report.pareto_commands == [
        f"python src/train.py optimizer.lr={study.trials[i].params['optimizer.lr']}" for i in (0, 1, 2, 5)
    ]
    assert (tmp_path / "pareto_front.png").stat().st_size > 10_000
    assert (tmp_path / "trials.md").read_text().startswith("| number | state | val/acc_best | cost/fit_time_s |")


def test_a_trial_returning_one_value_per_objective_completes_unless_one_is_not_finite() -> None:
    job = JobReturn(status=JobStatus.COMPLETED, _return_value=[0.9, 12.5])
    assert _outcome(job, None) == (TrialState.COMPLETE, [0.9, 12.5], "")
    job = JobReturn(status=JobStatus.COMPLETED, _return_value=[0.9, float("nan")])
    assert _outcome(job, None)[:2] == (TrialState.FAIL, None)


def test_directions_and_objectives_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.directions='sideways'"):
        OptunaSweeper("maximize", None, None, 2, directions=["maximize", "sideways"])
    with pytest.raises(ConfigError, match=r"^optimized_metric='val/acc_best': 2 names"):
        _objectives("val/acc_best", ["maximize", "minimize"])
    assert _objectives(["val/acc_best", "cost/params"], ["maximize", "minimize"]) == ["val/acc_best", "cost/params"]


def test_pareto_search_composes_with_two_objectives_and_no_pruning() -> None:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["hparams_search=mnist1d_pareto"], return_hydra_config=True)
    assert list(cfg.optimized_metric) == ["val/acc_best", "cost/fit_time_s"]
    assert list(cfg.hydra.sweeper.directions) == ["maximize", "minimize"]
    assert cfg.hydra.sweeper.pruner._target_ == "optuna.pruners.NopPruner"
    assert cfg.callbacks.optuna_pruning is None and cfg.callbacks.fit_cost._target_ == "recipe.callbacks.FitCost"


def test_fit_cost_adds_fit_time_and_parameter_count_to_the_metrics(make_cfg) -> None:
    cfg = make_cfg(*NO_LOGGER, "trainer.max_epochs=1")
    metrics = train(cfg, extra_callbacks=[FitCost()])
    _, module = build(cfg)
    assert metrics["cost/params"] == sum(p.numel() for p in module.parameters() if p.requires_grad)
    assert 0 < metrics["cost/fit_time_s"] < 120
