"""A sampler seeded per trial, so that processes sharing a study, and resumed studies, draw different trials.

A sampler built once with ``seed=0`` draws the same first trials in every process that builds it: two processes on
one study, or a study resumed by running its command again, repeat earlier parameter sets. Seeding each trial's
draws from the seed and the trial's number (unique within the study, whichever process asks for it) keeps a search
reproducible from a fresh storage and gives every trial its own draws.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna import Study
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState


def trial_seed(seed: int, number: int) -> int:
    """The seed of trial ``number``'s draws: independent streams for each (seed, number), as NumPy derives them."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


class TrialSeededSampler(BaseSampler):
    """Delegate to a sampler built afresh for each trial, with the seed ``trial_seed(seed, trial.number)``.

    Optuna calls ``before_trial`` once a trial has its number and before anything is sampled for it, so each trial
    is drawn by its own sampler. Samplers that keep their history in the study (TPE, random) lose nothing.

    Args:
        make: builds the sampler from keyword arguments, e.g. ``functools.partial(TPESampler, seed=0)`` (a Hydra
            ``_partial_: true`` config); its ``seed`` keyword is the study's seed, ``None`` for random draws.
    """

    def __init__(self, make: functools.partial[BaseSampler]) -> None:
        self.make = make
        self.seed: int | None = make.keywords.get("seed")
        self.sampler = make()

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        seed = None if self.seed is None else trial_seed(self.seed, trial.number)
        self.sampler = self.make(seed=seed)
        self.sampler.before_trial(study, trial)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.sampler.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.sampler.sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self.sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> None:
        self.sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()
