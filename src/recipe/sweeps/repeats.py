"""The runs a trial's value is averaged over: ``hydra.sweeper.seeds_per_trial`` seeds times, with
``hydra.sweeper.folds_per_trial``, every fold of ``data.folds``.

One run's value holds its seed's luck, which can be as large as the differences a search ranks; averaging over
seeds (and folds) makes a trial's value the configuration's, at k times the cost.
"""

from __future__ import annotations

from dataclasses import dataclass

from recipe.errors import config_error


@dataclass(frozen=True)
class Run:
    """One run of a trial: the overrides that make it this seed (and fold), and the suffix of its folder name."""

    overrides: tuple[str, ...]
    suffix: str


def trial_runs(seed: int | None, seeds_per_trial: int, folds: int | None) -> list[Run]:
    """The runs of one trial: seeds ``seed, seed+1, ...`` times folds ``0 .. folds-1`` (``None``: no folds).

    One plain run (no overrides, no suffix) when there is one seed and no folds, as a trial always was.
    """
    if isinstance(seeds_per_trial, bool) or not isinstance(seeds_per_trial, int) or seeds_per_trial < 1:
        raise config_error("hydra.sweeper.seeds_per_trial", seeds_per_trial, "a positive integer")
    if seeds_per_trial > 1 and seed is None:
        raise config_error("seed", seed, "an integer: seeds_per_trial counts up from it")
    seeds = [None] if seeds_per_trial == 1 else [seed + i for i in range(seeds_per_trial)]
    runs = []
    for s in seeds:
        for fold in [None] if folds is None else range(folds):
            overrides = ([] if s is None else [f"seed={s}"]) + ([] if fold is None else [f"++data.fold={fold}"])
            suffix = ("" if s is None else f"_seed{s}") + ("" if fold is None else f"_fold{fold}")
            runs.append(Run(tuple(overrides), suffix))
    return runs
