"""A search space written in Hydra's sweep grammar, turned into Optuna distributions.

``choice(a, b)`` is categorical (config groups included: ``optimizer: choice(adamw, sgd)``),
``interval(lo, hi)`` a float range, ``int(interval(lo, hi))`` an integer range, ``tag(log, ...)`` puts
either on a log scale, and ``range(start, stop, step)`` is a stepped range whose ``stop`` is excluded,
as everywhere in Hydra. Anything that is not a sweep is a fixed override passed to every trial.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

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


@dataclass
class SearchSpace:
    """What Optuna samples (``distributions``) and what every trial gets unchanged (``fixed``).

    Args:
        distributions: one Optuna distribution per config key.
        fixed: overrides (``key=value``) applied to every trial, before the sampled ones.
    """

    distributions: dict[str, BaseDistribution]
    fixed: list[str]

    @classmethod
    def parse(cls, params: Mapping[str, Any], arguments: Iterable[str] = ()) -> SearchSpace:
        """Read ``params`` (``key: grammar``, from the yaml), then ``arguments`` (the command line wins)."""
        lines = [f"{key}={value}" for key, value in params.items()] + list(arguments)
        distributions: dict[str, BaseDistribution] = {}
        fixed: dict[str, str] = {}
        for override in OverridesParser.create().parse_overrides(lines):
            key = override.get_key_element()
            distributions.pop(key, None)
            fixed.pop(key, None)
            if override.is_sweep_override():
                distributions[key] = _distribution(override)
            else:
                fixed[key] = override.input_line
        return cls(distributions, list(fixed.values()))

    def overrides(self, params: Mapping[str, Any]) -> list[str]:
        """The overrides of one trial: the fixed ones, then ``key=value`` for each sampled parameter."""
        return [*self.fixed, *(f"{key}={params[key]}" for key in self.distributions)]

    def corners(self) -> list[list[str]]:
        """Override lists that together use every categorical choice once, to check that they all compose."""
        base = {key: _first(dist) for key, dist in self.distributions.items()}
        batch = [self.overrides(base)]
        for key, dist in self.distributions.items():
            if isinstance(dist, CategoricalDistribution):
                batch += [self.overrides({**base, key: choice}) for choice in dist.choices[1:]]
        return batch


def _first(dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[0]
    assert isinstance(dist, (IntDistribution, FloatDistribution))
    return dist.low
