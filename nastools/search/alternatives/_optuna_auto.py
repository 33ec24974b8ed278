"""The choice OptunaHub's AutoSampler makes, rebuilt from Optuna's built-in samplers (it loads from GitHub).

Imported only once a tactic has checked that Optuna is installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, NSGAIIISampler, NSGAIISampler, RandomSampler, TPESampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

__all__ = ["AutoChoiceSampler"]

#: AutoSampler's switch from TPE to NSGA-II (``_MAX_BUDGET_FOR_MULTI_GP_AND_TPE``).
TPE_TRIALS = 250


class AutoChoiceSampler(BaseSampler):
    """The sampler AutoSampler (``optunahub.load_module("samplers/auto_sampler")``) uses on choice spaces.

    Its rules for categorical parameters (registry package ``samplers/auto_sampler``, where
    ``_MAX_BUDGET_FOR_MULTI_GP_AND_TPE = 250``): random sampling until a trial completes; then
    multivariate TPE with the constant liar, for the rest of the study once two completed trials
    differ in their parameters (a define-by-run conditional space) or for a single objective;
    otherwise TPE until 250 trials completed, then NSGA-II (NSGA-III from four objectives), warm
    started with the earlier trials as its generation 0. AutoSampler's Gaussian-process branch is
    for numeric spaces only and never taken here.

    Args:
        seed: Seeds the samplers it switches between.
    """

    def __init__(self, *, seed: int | None = None) -> None:
        self._rng = np.random.RandomState(seed)
        self._sampler: BaseSampler = RandomSampler(seed=self._next_seed())

    def _next_seed(self) -> int:
        return int(self._rng.randint(2**31 - 1))

    @staticmethod
    def _conditional(study: Study) -> bool:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        return bool(trials) and any(set(t.params) != set(trials[0].params) for t in trials)

    def _tpe(self) -> TPESampler:
        if isinstance(self._sampler, TPESampler):
            return self._sampler
        # AutoSampler also passes warn_independent_sampling=False, deprecated since Optuna 4.9
        return TPESampler(seed=self._next_seed(), multivariate=True, constant_liar=True)

    def _choose(self, study: Study) -> BaseSampler:
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not complete:
            return self._sampler
        search_space = IntersectionSearchSpace().calculate(study)
        numeric = not any(isinstance(d, CategoricalDistribution) for d in search_space.values())
        if numeric and search_space:
            raise ValueError("AutoChoiceSampler covers choice spaces only (suggest_categorical)")
        if len(study.directions) == 1 or self._conditional(study) or len(complete) < TPE_TRIALS:
            return self._tpe()
        if isinstance(self._sampler, (NSGAIISampler, NSGAIIISampler)):
            return self._sampler
        many = len(study.directions) >= 4
        return (NSGAIIISampler if many else NSGAIISampler)(seed=self._next_seed())

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:  # noqa: D102 - Optuna's hook
        self._sampler = self._choose(study)
        self._sampler.before_trial(study, trial)

    def infer_relative_search_space(  # noqa: D102 - Optuna's hook
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._sampler.infer_relative_search_space(study, trial)

    def sample_relative(  # noqa: D102 - Optuna's hook
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if len(study.directions) > 1 and not isinstance(self._sampler, (NSGAIISampler, NSGAIIISampler)):
            # as AutoSampler does: trials before the switch become NSGA-II's generation 0
            nsga = NSGAIIISampler if len(study.directions) >= 4 else NSGAIISampler
            study._storage.set_trial_system_attr(trial._trial_id, nsga._get_generation_key(), 0)
        return self._sampler.sample_relative(study, trial, search_space)

    def sample_independent(  # noqa: D102 - Optuna's hook
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(  # noqa: D102 - Optuna's hook
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:  # noqa: D102 - Optuna's hook
        self._rng.seed()
        self._sampler.reseed_rng()
