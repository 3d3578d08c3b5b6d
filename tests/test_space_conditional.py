"""Conditional search spaces: a range per choice, and parameters that exist under one choice only."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from recipe.errors import ConfigError
from recipe.sweeps import SearchSpace

PARAMS = {
    "optimizer": "choice(adamw, sgd)",
    "optimizer.lr": {
        "optimizer=adamw": "tag(log, interval(1e-4, 1e-2))",
        "optimizer=sgd": "tag(log, interval(1e-2, 0.5))",
    },
    "optimizer.momentum": {"optimizer=sgd": "interval(0.8, 0.99)"},
}


def test_each_choice_samples_its_own_range_and_only_its_own_parameters() -> None:
    space = SearchSpace.parse(PARAMS)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(60):
        trial = study.ask()
        values = space.sample(trial)
        overrides = dict(o.split("=", 1) for o in space.overrides(values))
        seen.add(values["optimizer"])
        if values["optimizer"] == "adamw":
            assert 1e-4 <= values["optimizer.lr"] <= 1e-2
            assert "optimizer.momentum" not in overrides
            assert set(trial.params) == {"optimizer", "optimizer.lr|optimizer=adamw"}
        else:
            assert 1e-2 <= values["optimizer.lr"] <= 0.5
            assert 0.8 <= float(overrides["optimizer.momentum"]) <= 0.99
            assert set(trial.params) == {"optimizer", "optimizer.lr|optimizer=sgd", "optimizer.momentum|optimizer=sgd"}
        assert float(overrides["optimizer.lr"]) == values["optimizer.lr"]
        study.tell(trial, 0.0)
    assert seen == {"adamw", "sgd"}


def test_a_choice_fixed_on_the_command_line_keeps_only_its_branch() -> None:
    sgd = SearchSpace.parse(PARAMS, ["optimizer=sgd"])
    assert sgd.conditional == {} and sgd.fixed == ["optimizer=sgd"]
    assert sgd.distributions == {
        "optimizer.lr": FloatDistribution(1e-2, 0.5, log=True),
        "optimizer.momentum": FloatDistribution(0.8, 0.99),
    }
    assert SearchSpace.parse(PARAMS, ["optimizer=adamw"]).distributions == {
        "optimizer.lr": FloatDistribution(1e-4, 1e-2, log=True)
    }
    lr_fixed = SearchSpace.parse(PARAMS, ["optimizer.lr=0.1"])  # the command line wins over a branch too
    assert lr_fixed.distributions == {"optimizer": CategoricalDistribution(["adamw", "sgd"])}
    assert list(lr_fixed.conditional) == ["optimizer.momentum"]


def test_corners_compose_each_choice_with_its_own_parameters() -> None:
    assert SearchSpace.parse(PARAMS).corners() == [
        ["optimizer=adamw", "optimizer.lr=0.0001"],
        ["optimizer=sgd", "optimizer.lr=0.01", "optimizer.momentum=0.8"],
    ]


def test_conditions_must_name_a_choice_of_the_search_and_its_values() -> None:
    with pytest.raises(ConfigError, match=r"^optimizer.momentum='model.dropout': conditions on a key that is not"):
        SearchSpace.parse(
            {"model.dropout": "interval(0, 0.5)", "optimizer.momentum": {"model.dropout=0.1": "interval(0.8, 0.9)"}}
        )
    with pytest.raises(ConfigError, match=r"^optimizer.lr=\['adam'\]: not among the choices of optimizer"):
        SearchSpace.parse({**PARAMS, "optimizer.lr": {"optimizer=adam": "interval(0.1, 0.2)"}})
    with pytest.raises(ConfigError, match=r"^optimizer.lr=\{'sgd': .*: conditions on one choice"):
        SearchSpace.parse({**PARAMS, "optimizer.lr": {"sgd": "interval(0.1, 0.2)"}})
