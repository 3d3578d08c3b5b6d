"""A study: a search that answers a question (Google's Deep Learning Tuning Playbook).

The **scientific** keys are the question (``optimizer: [adamw, sgd, lion]``): each combination of their values is an
arm. The **nuisance** keys are tuned away for each arm with the same budget, in the search grammar of
``recipe.sweeps.space``, a range per arm where it differs (``optimizer.lr: {optimizer=sgd: ..., optimizer=adamw:
...}``); every other key stays fixed. This module turns the two mappings into arms and checks them from the config
alone (no Optuna, no torch), so that a bad study is one line before anything trains.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

from recipe.errors import config_error

SCIENTIFIC, NUISANCE = "hydra.sweeper.scientific", "hydra.sweeper.nuisance"


@dataclass(frozen=True)
class Arm:
    """One combination of the scientific values.

    Args:
        overrides: ``key=value`` for each scientific key, given to every run of the arm.
    """

    overrides: tuple[str, ...]

    @property
    def label(self) -> str:
        """``optimizer=adamw`` (keys joined by a space)."""
        return " ".join(self.overrides)

    @property
    def folder(self) -> str:
        """The arm's folder in the sweep folder: its label with anything but letters, digits, ``.`` and ``-`` as
        ``_`` (``optimizer_adamw``)."""
        return re.sub(r"[^\w.-]+", "_", self.label)


def _value_text(value: Any) -> str:
    """A scientific value as override text: ``adamw``, ``0.1``, ``null``, ``[64,64]``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[" + ",".join(_value_text(v) for v in value) + "]"
    return str(value)


def arms(scientific: Mapping[str, Sequence[Any]]) -> list[Arm]:
    """Every combination of the scientific values, in the order written (the first key varies slowest)."""
    columns = [[f"{key}={_value_text(v)}" for v in values] for key, values in scientific.items()]
    return [Arm(tuple(combination)) for combination in itertools.product(*columns)]


def _check_range(key: str, text: str) -> None:
    """Refuse a nuisance range with nothing in it: ``interval(lo, hi)`` with ``lo >= hi`` (or a log range through
    0), an empty ``choice()`` or ``range()``."""
    try:
        override = OverridesParser.create().parse_override(f"{key}={text}")
    except Exception as err:  # Hydra's parser: choice() is "empty choice is not legal"
        message = str(err).strip().splitlines()[-1]
        raise config_error(f"{NUISANCE}.{key}", text, f"not a range of the search grammar: {message}") from None
    sweep = override.value()
    if isinstance(sweep, IntervalSweep):
        if not sweep.start < sweep.end:
            raise config_error(f"{NUISANCE}.{key}", text, "an empty range: interval(low, high) needs low < high")
        if "log" in sweep.tags and sweep.start <= 0:
            raise config_error(f"{NUISANCE}.{key}", text, "a log range needs low > 0")
    elif isinstance(sweep, ChoiceSweep | RangeSweep) and not list(override.sweep_iterator()):
        raise config_error(f"{NUISANCE}.{key}", text, "an empty range: give it at least one value")
    elif not override.is_sweep_override():
        raise config_error(f"{NUISANCE}.{key}", text, "a range: choice(...), interval(lo, hi) or range(...)")


def command_line_ranges(arguments: Sequence[str]) -> dict[str, str]:
    """The sweeps among a command's task overrides (``optimizer.lr='interval(1e-4, 1e-2)'``): nuisance keys too,
    whose range replaces the config's for every arm (``recipe.sweeps.space``: the command line wins)."""
    parser = OverridesParser.create()
    found = {}
    for argument in arguments:
        if argument.startswith(("hydra.", "-")) or "=" not in argument:
            continue
        try:
            override = parser.parse_override(argument)
        except Exception:  # malformed: Hydra says what is wrong with it, in its own one line
            continue
        if override.is_sweep_override():
            found[override.get_key_element()] = argument.split("=", 1)[1]
    return found


def check_study(
    scientific: Mapping[str, Any], nuisance: Mapping[str, Any], group_options: Callable[[str], list[str]]
) -> list[Arm]:
    """The study's arms, after refusing in one line (``ConfigError``): no scientific key, a scientific key with no
    values or that is also nuisance, an option its config group lacks, a range conditioned on a value that is no
    arm, and an empty range.

    Args:
        scientific: key -> the values the question compares.
        nuisance: key -> a range (the search grammar), or ``{scientific_key=value: range}`` per arm.
        group_options: a config group's option names (``[]`` for a key that is not a group).
    """
    if not scientific:
        raise config_error(
            SCIENTIFIC, dict(scientific), "at least one key and its values, e.g. {optimizer: [adamw, sgd]}"
        )
    for key, values in scientific.items():
        if isinstance(values, str) or not isinstance(values, Sequence) or not values:
            raise config_error(f"{SCIENTIFIC}.{key}", values, "a list of the values to compare, e.g. [adamw, sgd]")
        if key in nuisance:
            raise config_error(f"{NUISANCE}.{key}", nuisance[key], f"{key} is scientific: it cannot also be nuisance")
        known = group_options(key)
        if unknown := [v for v in values if known and _value_text(v) not in known]:
            raise config_error(f"{SCIENTIFIC}.{key}", unknown[0], f"no such option; choose from: {', '.join(known)}")
    values_of = {key: {_value_text(v) for v in values} for key, values in scientific.items()}
    for key, value in nuisance.items():
        branches = value if isinstance(value, Mapping) else {None: value}
        for condition, text in branches.items():
            if condition is not None:  # a branch for an option left out of the arms is unused, not wrong
                parent, _, choice = str(condition).partition("=")
                if choice not in (group_options(parent) or values_of.get(parent, ())):
                    arms_text = ", ".join(f"{k}={v}" for k, vs in values_of.items() for v in sorted(vs))
                    raise config_error(f"{NUISANCE}.{key}", str(condition), f"not an arm; the arms: {arms_text}")
            _check_range(key, str(text))
    return arms(scientific)
