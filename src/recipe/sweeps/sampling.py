"""Samplers as the sweeper builds them: seeded per trial, and quasi-random exploration before a model-based one.

A sampler built once with ``seed=0`` draws the same first trials in every process that builds it: two processes on
one study, or a study resumed by running its command again, repeat earlier parameter sets. Seeding each trial's
draws from the seed and the trial's number (unique within the study, whichever process asks for it) keeps a search
reproducible from a fresh storage and gives every trial its own draws.

A quasi-random sequence (Optuna's ``QMCSampler``) is the exception: its points are the study's, scrambled once by the
study's seed and numbered in the study's storage, so every process draws the next point of one sequence. A builder
that takes ``study_seed`` gets the study's seed there and the trial's seed as ``seed``.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna import Study
from optuna.distributions import BaseDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.samplers import BaseSampler, QMCSampler, RandomSampler, TPESampler
from optuna.trial import FrozenTrial, TrialState


def trial_seed(seed: int, number: int) -> int:
    """The seed of trial ``number``'s draws: independent streams for each (seed, number), as NumPy derives them."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def quasi_random(
    study_seed: int | None = None, seed: int | None = None, qmc_type: str = "halton", scramble: bool = True
) -> QMCSampler:
    """Optuna's ``QMCSampler``, its sequence scrambled by ``study_seed``; what lies outside the sequence (the first
    trial, whose parameters tell the sampler the space, and parameters under a choice) is drawn at random from
    ``seed``."""
    with warnings.catch_warnings():  # "experimental" since Optuna 3.0, for every trial
        warnings.simplefilter("ignore", ExperimentalWarning)
        return QMCSampler(
            qmc_type=qmc_type,
            scramble=scramble,
            seed=study_seed,
            independent_sampler=RandomSampler(seed=seed),
            warn_asynchronous_seeding=False,
            warn_independent_sampling=False,
        )


class QuasiRandomThenTPE(BaseSampler):
    """Quasi-random trials first (``quasi_random``), then TPE: explore evenly, then exploit, as Google's Deep Learning
    Tuning Playbook recommends. Trials numbered below ``n_startup_trials`` are points of the sequence, later ones
    TPE's, modelled on every trial before them.

    Written here because Optuna's ``TPESampler`` draws its own startup trials at random and takes no other sampler
    for them; the switch is by trial number, so processes sharing a study agree on it.

    Args:
        n_startup_trials: quasi-random trials before TPE.
        study_seed: scrambles the sequence (the same in every process).
        seed: this trial's seed, for TPE's draws and for what lies outside the sequence.
        qmc_type: ``halton`` or ``sobol``.
        scramble: scramble the sequence (unscrambled Halton points line up in the first dimensions).
        **tpe: ``TPESampler``'s keyword arguments (``n_startup_trials`` excepted).
    """

    def __init__(
        self,
        n_startup_trials: int = 10,
        study_seed: int | None = None,
        seed: int | None = None,
        qmc_type: str = "halton",
        scramble: bool = True,
        **tpe: Any,
    ) -> None:
        self.n_startup_trials = n_startup_trials
        self.qmc = quasi_random(study_seed, seed, qmc_type, scramble)
        self.tpe = TPESampler(seed=seed, n_startup_trials=0, **tpe)

    def _for(self, trial: FrozenTrial) -> BaseSampler:
        return self.qmc if trial.number < self.n_startup_trials else self.tpe

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._for(trial).before_trial(study, trial)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> None:
        self._for(trial).after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.qmc.reseed_rng()
        self.tpe.reseed_rng()


class TrialSeededSampler(BaseSampler):
    """Delegate to a sampler built afresh for each trial, with the seed ``trial_seed(seed, trial.number)``.

    Optuna calls ``before_trial`` once a trial has its number and before anything is sampled for it, so each trial
    is drawn by its own sampler. Samplers that keep their history in the study (TPE, GP, random, QMC) lose nothing.

    Args:
        make: builds the sampler from keyword arguments, e.g. ``functools.partial(TPESampler, seed=0)`` (a Hydra
            ``_partial_: true`` config); its ``seed`` keyword is the study's seed, ``None`` for random draws. A
            builder with a ``study_seed`` parameter also gets the study's seed there.
    """

    def __init__(self, make: functools.partial[BaseSampler]) -> None:
        self.seed: int | None = make.keywords.get("seed")
        if "study_seed" in inspect.signature(make.func).parameters:
            make = functools.partial(make, study_seed=self.seed)
        self.make = make
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
