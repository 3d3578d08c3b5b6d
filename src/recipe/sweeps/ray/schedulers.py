"""``hydra.sweeper.scheduler`` as Tune's trial scheduler: FIFO, ASHA, PBT or PB2, with the knobs of its section."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optuna.distributions import FloatDistribution

from recipe.errors import config_error
from recipe.sweeps.ray.space import domain
from recipe.sweeps.space import SearchSpace

TIME_ATTR = "training_iteration"  # Tune counts the reports: one per validation epoch


def mutations(space: SearchSpace, scheduler: str, keys: Sequence[str] | None) -> dict[str, FloatDistribution]:
    """What PBT or PB2 may change during training: each float ``interval`` of the search (LR, weight decay,
    momentum, dropout: values a restored checkpoint takes), or the ``keys`` listed among them. A choice and an
    integer range (a width, a batch size) stay fixed for a member's whole life, as do conditional ranges."""
    floats = {k: d for k, d in space.distributions.items() if isinstance(d, FloatDistribution)}
    if keys is not None:
        unknown = [k for k in keys if k not in floats]
        if unknown:
            allowed = f"float interval(...) parameters of the search: {sorted(floats)}"
            raise config_error(f"hydra.sweeper.{scheduler}.mutations", list(keys), allowed)
        floats = {k: floats[k] for k in keys}
    if not floats:
        allowed = "a search with a float interval(...) parameter to mutate (hydra.sweeper.params)"
        raise config_error("hydra.sweeper.scheduler", scheduler, allowed)
    return floats


@dataclass
class Clip:
    """PBT's ``custom_explore_fn``: a perturbed value (times 0.8 or 1.2) put back within its range, so that a
    momentum never passes 1 and the report's study holds every value."""

    ranges: dict[str, tuple[float, float]]

    def __call__(self, config: dict[str, Any]) -> dict[str, Any]:
        for key, (low, high) in self.ranges.items():
            if key in config:
                config[key] = min(max(config[key], low), high)
        return config


def build_scheduler(name: str, options: Mapping[str, Any], space: SearchSpace) -> Any:
    """Tune's scheduler ``name`` from its section of ``hydra.sweeper`` (``options``)."""
    from ray.tune import schedulers

    options = dict(options)
    if name == "fifo":
        return schedulers.FIFOScheduler()
    if name == "asha":
        return schedulers.ASHAScheduler(time_attr=TIME_ATTR, **options)
    mutated = mutations(space, name, options.pop("mutations", None))
    if name == "pbt":
        mutation = {key: domain(dist) for key, dist in mutated.items()}
        clip = Clip({key: (dist.low, dist.high) for key, dist in mutated.items()})
        return schedulers.PopulationBasedTraining(
            time_attr=TIME_ATTR, hyperparam_mutations=mutation, custom_explore_fn=clip, **options
        )
    from ray.tune.schedulers.pb2 import PB2

    bounds = {key: [dist.low, dist.high] for key, dist in mutated.items()}
    return PB2(time_attr=TIME_ATTR, hyperparam_bounds=bounds, **options)


def mutated_keys(name: str, options: Mapping[str, Any], space: SearchSpace) -> list[str]:
    """The config keys the scheduler may change during training (none but for PBT and PB2)."""
    return list(mutations(space, name, options.get("mutations"))) if name in ("pbt", "pb2") else []
