"""The search space of ``hydra.sweeper.params`` (``recipe.sweeps.space``, the Optuna sweeper's parser) as Ray Tune
searches it: through Ray's ``OptunaSearch`` (define-by-run, so conditional ranges work), as Tune's random
variants, or as a grid; and back from a Tune config to a trial's overrides."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from ray import tune

from recipe.errors import config_error
from recipe.sweeps.space import SearchSpace

GRID_KEY = "grid_point"  # a grid's Tune config holds one whole point under this key


def domain(dist: BaseDistribution) -> tune.search.sample.Domain:
    """Tune's domain for an Optuna distribution: the same range, scale and step."""
    if isinstance(dist, CategoricalDistribution):
        return tune.choice(list(dist.choices))
    if isinstance(dist, IntDistribution):
        return tune.lograndint(dist.low, dist.high + 1) if dist.log else tune.qrandint(dist.low, dist.high, dist.step)
    assert isinstance(dist, FloatDistribution)
    if dist.log:
        return tune.loguniform(dist.low, dist.high)
    return tune.quniform(dist.low, dist.high, dist.step) if dist.step else tune.uniform(dist.low, dist.high)


@dataclass
class Branch:
    """A conditional parameter as Tune's random search draws it (``tune.sample_from``): from the range of the
    choice its parent took, or no value (``None``: no override) under a choice without one."""

    parent: str
    branches: dict[str, tune.search.sample.Domain]

    def __call__(self, spec: Any) -> Any:
        domain = self.branches.get(str(spec.config[self.parent]))
        return None if domain is None else domain.sample()


def grid_values(dist: BaseDistribution, key: str) -> list[Any]:
    """Every value of a choice or a stepped range; an interval has no grid."""
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    step = getattr(dist, "step", None)
    if step is None or dist.log:
        raise config_error(key, "interval(...)", "choice(...) or range(start, stop, step) with search_alg=grid")
    count = round((dist.high - dist.low) / step) + 1
    return [dist.low + i * step for i in range(count)]


def grid_points(space: SearchSpace) -> list[dict[str, Any]]:
    """Every combination of the grid's values; a conditional parameter combined only under its parent's choice."""
    keys = list(space.distributions)
    points = []
    for combo in itertools.product(*(grid_values(space.distributions[k], k) for k in keys)):
        base = dict(zip(keys, combo, strict=True))
        branches = {
            k: c.branches[str(base[c.parent])]
            for k, c in space.conditional.items()
            if str(base[c.parent]) in c.branches
        }
        for extra in itertools.product(*(grid_values(d, k) for k, d in branches.items())):
            points.append({**base, **dict(zip(branches, extra, strict=True))})
    return points


def tune_search(
    name: str, space: SearchSpace, sampler: Callable[[], Any] | None, metric: str, mode: str
) -> tuple[Any, dict[str, Any]]:
    """The searcher (``None``: Tune's own variant generator) and the ``param_space`` of ``search_alg=name``."""
    if name == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        define_by_run = functools.partial(_sample, space)
        searcher = OptunaSearch(define_by_run, metric=metric, mode=mode, sampler=sampler() if sampler else None)
        return searcher, {}
    if name == "random":
        param_space: dict[str, Any] = {key: domain(dist) for key, dist in space.distributions.items()}
        for key, condition in space.conditional.items():
            branches = {choice: domain(dist) for choice, dist in condition.branches.items()}
            param_space[key] = tune.sample_from(Branch(condition.parent, branches))
        return None, param_space
    return None, {GRID_KEY: tune.grid_search(grid_points(space))}


def _sample(space: SearchSpace, trial: Any) -> None:
    """Draw a trial's parameters; Tune's config then holds them under their Optuna names."""
    space.sample(trial)


def trial_values(config: Mapping[str, Any]) -> dict[str, Any]:
    """A Tune config as ``config key -> value``: an Optuna parameter ``optimizer.lr|optimizer=sgd`` under its key,
    a grid's point unpacked, a conditional parameter without a value left out."""
    values = config.get(GRID_KEY, config)
    return {name.split("|")[0]: value for name, value in values.items() if value is not None}


def distributions(space: SearchSpace, values: Mapping[str, Any]) -> dict[str, BaseDistribution]:
    """The Optuna parameter name and distribution of each value a trial has (for the report's study)."""
    found = {key: dist for key, dist in space.distributions.items() if key in values}
    for key, condition in space.conditional.items():
        choice = str(values.get(condition.parent))
        if key in values and choice in condition.branches:
            found[condition.name(key, choice)] = condition.branches[choice]
    return found
