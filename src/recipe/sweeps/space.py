"""A search space written in Hydra's sweep grammar, turned into Optuna distributions.

``choice(a, b)`` is categorical (config groups included: ``optimizer: choice(adamw, sgd)``),
``interval(lo, hi)`` a float range, ``int(interval(lo, hi))`` an integer range, ``tag(log, ...)`` puts
either on a log scale, and ``range(start, stop, step)`` is a stepped range whose ``stop`` is excluded,
as everywhere in Hydra. Anything that is not a sweep is a fixed override passed to every trial.

A parameter can depend on a choice: a mapping from ``choice_key=choice`` to a sweep gives each choice its own
range, and a choice left out gets no value at all (its trials do not override the key)::

    optimizer: choice(adamw, sgd)
    optimizer.lr: {optimizer=adamw: tag(log, interval(1e-4, 1e-2)), optimizer=sgd: tag(log, interval(1e-2, 0.5))}
    optimizer.momentum: {optimizer=sgd: interval(0.8, 0.99)}

Optuna sees each branch as its own parameter (``optimizer.lr|optimizer=sgd``), so the sampler models the SGD
learning rate apart from the AdamW one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep, Transformer
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from recipe.errors import config_error

ALLOWED = "choice(...), interval(lo, hi), int(interval(lo, hi)), tag(log, ...) or range(start, stop, step)"


def _distribution(override: Override) -> BaseDistribution:
    key, sweep = override.get_key_element(), override.value()
    if isinstance(sweep, ChoiceSweep):
        # Lists and dicts become their override text, so the chosen value goes back on the command line as is.
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if isinstance(sweep, RangeSweep):
        values = list(override.sweep_iterator())
        if not values:
            raise config_error(key, override.get_value_string(), "holds no value")
        if all(isinstance(v, int) for v in values):
            return IntDistribution(values[0], values[-1], step=int(sweep.step))
        return FloatDistribution(float(values[0]), float(values[-1]), step=float(sweep.step))
    if isinstance(sweep, IntervalSweep):
        log = "log" in sweep.tags
        if isinstance(sweep.start, int) and isinstance(sweep.end, int):
            return IntDistribution(sweep.start, sweep.end, log=log)
        return FloatDistribution(float(sweep.start), float(sweep.end), log=log)
    raise config_error(key, override.get_value_string(), f"not a sweep Optuna can sample; use {ALLOWED}")


def _parse(lines: list[str]) -> list[Override]:
    return OverridesParser.create().parse_overrides(lines)


@dataclass
class Conditional:
    """A parameter sampled from ``branches[choice]`` when ``parent`` took ``choice``, absent under other choices.

    Args:
        parent: the categorical parameter it depends on.
        branches: the parent's choice (as its override text) -> the distribution under it.
    """

    parent: str
    branches: dict[str, BaseDistribution]

    @classmethod
    def parse(cls, key: str, branches: Mapping[str, Any]) -> Conditional:
        conditions = [str(condition).split("=", 1) for condition in branches]
        parents = {condition[0].strip() for condition in conditions}
        if any(len(c) != 2 for c in conditions) or len(parents) != 1:
            allowed = "conditions on one choice, e.g. {optimizer=sgd: interval(...)}"
            raise config_error(key, dict(branches), allowed)
        overrides = _parse([f"{key}={value}" for value in branches.values()])
        return cls(parents.pop(), {c[1].strip(): _distribution(o) for c, o in zip(conditions, overrides, strict=True)})

    def name(self, key: str, choice: str) -> str:
        """The Optuna parameter of ``key`` under ``choice``."""
        return f"{key}|{self.parent}={choice}"


@dataclass
class SearchSpace:
    """What Optuna samples (``distributions``, then ``conditional``) and what every trial gets unchanged (``fixed``).

    Args:
        distributions: one Optuna distribution per config key.
        fixed: overrides (``key=value``) applied to every trial, before the sampled ones.
        conditional: the parameters that depend on a choice in ``distributions``.
    """

    distributions: dict[str, BaseDistribution]
    fixed: list[str]
    conditional: dict[str, Conditional] = field(default_factory=dict)

    @classmethod
    def parse(cls, params: Mapping[str, Any], arguments: Iterable[str] = ()) -> SearchSpace:
        """Read ``params`` (``key: grammar``, from the yaml), then ``arguments`` (the command line wins)."""
        conditional = {k: Conditional.parse(k, v) for k, v in params.items() if isinstance(v, Mapping)}
        lines = [f"{key}={value}" for key, value in params.items() if key not in conditional] + list(arguments)
        distributions: dict[str, BaseDistribution] = {}
        fixed: dict[str, str] = {}
        for override in _parse(lines):
            key = override.get_key_element()
            distributions.pop(key, None)
            fixed.pop(key, None)
            conditional.pop(key, None)
            if override.is_sweep_override():
                distributions[key] = _distribution(override)
            else:
                fixed[key] = override.input_line
        for key, condition in list(conditional.items()):
            parent = distributions.get(condition.parent)
            if condition.parent in fixed:  # the choice is made on the command line: its branch, or nothing
                choice = fixed[condition.parent].split("=", 1)[1]
                del conditional[key]
                if choice in condition.branches:
                    distributions[key] = condition.branches[choice]
            elif not isinstance(parent, CategoricalDistribution):
                raise config_error(key, condition.parent, "conditions on a key that is not a choice(...) of the search")
            elif unknown := sorted(set(condition.branches) - {str(c) for c in parent.choices}):
                raise config_error(key, unknown, f"not among the choices of {condition.parent}: {parent.choices}")
        return cls(distributions, list(fixed.values()), conditional)

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """Ask ``trial`` for a value of every parameter that exists under the choices it draws; keyed by config key."""
        values = {key: _suggest(trial, key, dist) for key, dist in self.distributions.items()}
        for key, condition in self.conditional.items():
            choice = str(values[condition.parent])
            if choice in condition.branches:
                values[key] = _suggest(trial, condition.name(key, choice), condition.branches[choice])
        return values

    def overrides(self, params: Mapping[str, Any]) -> list[str]:
        """The overrides of one trial: the fixed ones, then ``key=value`` for each parameter it has."""
        keys = [key for key in (*self.distributions, *self.conditional) if key in params]
        return [*self.fixed, *(f"{key}={params[key]}" for key in keys)]

    def corners(self) -> list[list[str]]:
        """Override lists that together use every categorical choice once, to check that they all compose."""
        base = {key: _first(dist) for key, dist in self.distributions.items()}
        batch = [self.overrides(self._first_conditionals(base))]
        for key, dist in self.distributions.items():
            if isinstance(dist, CategoricalDistribution):
                batch += [self.overrides(self._first_conditionals({**base, key: c})) for c in dist.choices[1:]]
        return batch

    def _first_conditionals(self, values: dict[str, Any]) -> dict[str, Any]:
        branches = {key: c.branches.get(str(values[c.parent])) for key, c in self.conditional.items()}
        return {**values, **{key: _first(dist) for key, dist in branches.items() if dist is not None}}


def _suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    """``trial``'s value of ``name`` drawn from ``dist``, through the public ``suggest_*`` API."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    assert isinstance(dist, FloatDistribution)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


def _first(dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[0]
    assert isinstance(dist, (IntDistribution, FloatDistribution))
    return dist.low
