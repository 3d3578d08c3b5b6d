"""The samplers offered to every search (hydra/sweeper/sampler=...): quasi-random, quasi-random then TPE, GP."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from optuna.distributions import FloatDistribution, IntDistribution
from scipy.stats import qmc

from recipe.cli.config import PROJECT_ROOT
from recipe.sweeps import SearchSpace
from recipe.sweeps.sampling import TrialSeededSampler

SAMPLERS = PROJECT_ROOT / "conf" / "hydra" / "sweeper" / "sampler"
SPACE = {"lr": FloatDistribution(1e-4, 1e-1, log=True), "wd": FloatDistribution(0.0, 0.1)}


def _study(name: str, storage: optuna.storages.BaseStorage | None = None, **settings) -> optuna.Study:
    """A study sampled as the sweeper samples it: the yaml ``hydra/sweeper/sampler=<name>``, seeded per trial."""
    make = instantiate(OmegaConf.merge(OmegaConf.load(SAMPLERS / f"{name}.yaml"), settings))
    return optuna.create_study(storage=storage, sampler=TrialSeededSampler(make), study_name="s", load_if_exists=True)


def _draw(study: optuna.Study, n: int) -> list[dict]:
    drawn = []
    for i in range(n):
        trial = study.ask(SPACE)
        study.tell(trial, float(i))
        drawn.append(trial.params)
    return drawn


def _halton(n: int, seed: int) -> list[dict]:
    """The first ``n`` points of scrambled Halton in SPACE: lr on a log scale, wd linear."""
    points = qmc.Halton(len(SPACE), seed=seed, scramble=True).random(n)
    return [{"lr": 1e-4 * 1e3**u, "wd": 0.1 * v} for u, v in points]


def _close(a: list[dict], b: list[dict]) -> bool:
    return all(x.keys() == y.keys() and all(math.isclose(x[k], y[k]) for k in x) for x, y in zip(a, b, strict=True))


def test_qmc_draws_the_scrambled_halton_sequence_after_the_trial_that_tells_it_the_space() -> None:
    drawn = _draw(_study("qmc"), 5)
    assert _close(drawn[1:], _halton(4, seed=0))  # trial 0 is random: Optuna learns the space from it
    assert not _close(_draw(_study("qmc", seed=1), 5)[1:], _halton(4, seed=0))


def test_qmc_continues_one_sequence_across_processes_sharing_a_study() -> None:
    storage = optuna.storages.InMemoryStorage()
    first = _draw(_study("qmc", storage), 3)
    second = _draw(_study("qmc", storage), 2)  # another process, or the command run again: the next points
    assert _close([*first, *second][1:], _halton(4, seed=0))


def test_qmc_tpe_explores_on_the_sequence_then_samples_with_tpe() -> None:
    drawn = _draw(_study("qmc_tpe", n_startup_trials=4), 6)
    halton = _halton(5, seed=0)
    assert _close(drawn[1:4], halton[:3])
    assert not _close(drawn[4:5], halton[3:4])  # trial 4 is TPE's, not the next point
    assert all(1e-4 <= p["lr"] <= 1e-1 and 0 <= p["wd"] <= 0.1 for p in drawn)


@pytest.mark.parametrize(
    "name, settings", [("qmc", {}), ("qmc_tpe", {"n_startup_trials": 3}), ("gp", {"n_startup_trials": 3})]
)
def test_sampler_handles_a_conditional_space_with_categoricals(name: str, settings: dict) -> None:
    """Parameters under a choice are drawn at random (no sampler here models a space that changes)."""
    space = SearchSpace.parse(
        {
            "optimizer": "choice(adamw, sgd)",
            "optimizer.lr": {
                "optimizer=adamw": "tag(log, interval(1e-4, 1e-2))",
                "optimizer=sgd": "tag(log, interval(1e-2, 0.5))",
            },
            "model.width": "choice(32, 64, 128)",
            "model.depth": "int(interval(1, 4))",
        }
    )
    study = _study(name, **settings)
    drawn = []
    for _ in range(6):
        trial = study.ask()
        params = space.sample(trial)
        study.tell(trial, params["model.depth"] + math.log10(params["optimizer.lr"]))
        drawn.append(params)
    ranges = {"adamw": (1e-4, 1e-2), "sgd": (1e-2, 0.5)}
    assert all(ranges[p["optimizer"]][0] <= p["optimizer.lr"] <= ranges[p["optimizer"]][1] for p in drawn)
    assert {p["optimizer"] for p in drawn} == {"adamw", "sgd"}
    assert len({p["optimizer.lr"] for p in drawn}) == 6


def test_gp_models_the_space_after_its_startup_trials() -> None:
    """After 3 random trials the GP proposes near the best value seen (a smooth objective lowest at lr=1e-2)."""
    study = _study("gp", n_startup_trials=3)
    for _ in range(8):
        trial = study.ask({"lr": SPACE["lr"], "depth": IntDistribution(1, 4)})
        study.tell(trial, (np.log10(trial.params["lr"]) + 2) ** 2)
    assert study.best_value < 0.1
