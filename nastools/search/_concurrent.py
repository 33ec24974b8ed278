"""ConcurrentNAS (Algorithm 1 of the DyNAS-T paper) and the one-shot full search."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from nastools.hypervolume import pareto_front_mask
from nastools.objectives import Objective
from nastools.search._algorithms import check_algorithm_options
from nastools.search._surrogate import ExactFn, PredictorGuidedSearch, PredictorSearch
from nastools.search._tactic import check_count
from nastools.space import Arch, SearchSpace

__all__ = ["ConcurrentNAS", "FullSearch"]

#: Rounds of random sampling that may top a population up when the inner search's archs run out.
_RANDOM_TOP_UP_TRIES = 10


class ConcurrentNAS(PredictorGuidedSearch):
    """Measure a population, refit weak predictors on everything measured, evolve on them, repeat.

    Iteration 0 validates ``initial_archs`` (warm start) or ``pop_size`` random archs. Each later
    iteration fits one predictor per objective on all validations so far (objectives in ``exact``
    are computed instead), runs the inner algorithm on the predictors for ``n_gen`` generations,
    starting from the best validated population, and validates its final population: C_{i+1}.
    Members of C_{i+1} validated before cost nothing; the loop ends when the budget is spent.

    In a small space (a :func:`popdb_space`, say) the inner search soon returns archs validated
    already, so iterations validate little or nothing new and the tactic stops after 50 idle
    ones. ``min_new`` tops C_{i+1} up with the best-predicted unvalidated archs the inner search
    evaluated (by predicted non-dominated rank, then crowding distance), then random ones.

    Args:
        space: The search space.
        objectives: E.g. ``{"top1": "max", "macs": "min"}``.
        budget: Validations allowed.
        pop_size: Size of each measured population (and of the inner algorithm's). Small
            populations pay off early: on the OFA surrogate problem (top-1 vs MACs, 2 seeds) 20
            reached 0.678 HV in 80 validations where 50 needed 150, and 20-25 matched 50 after 500.
        n_gen: Generations of the inner search per iteration (J in the paper). Long inner searches
            pay off when the predictors rank well: on the OFA surrogate problem (top-1 vs MACs,
            5 seeds x 1,000 validations) 300 instead of 100 raised the WeakNAS/ConcurrentNAS
            validation ratio from 9.3 to 12.7 (``benchmarks/sample_efficiency.py``).
        predictor: A kind from :data:`~nastools.predictors.PREDICTOR_KINDS` for every predicted
            objective, or ``{objective label: kind}``. The default ``"auto"`` chooses ridge (the paper's)
            or gradient boosting by cross-validation at every refit: on the embedded supernet
            (measured top-1 vs MACs, 5 seeds x 200 validations) it raised HV@200 from 0.720 with
            ridge to 0.766, ahead of validation-only NSGA-II (0.740) and WeakNAS (0.744); on OFA's
            smooth surrogate ridge and ``"auto"`` are equal (12.7x and 12.3x fewer validations
            than WeakNAS).
        exact: ``{objective label: fn(archs) -> values}`` for cheap exact objectives such as MACs.
        algorithm: The inner pymoo algorithm by name.
        iteration_options: ``fn(iteration) -> dict`` of inner-search settings that change between
            iterations (keys ``n_gen``, ``pop_size`` or options of the ``algorithm``, see
            :func:`make_algorithm`); an unknown key is an error when the iteration asks for it.
        min_new: Validate at least this many new archs per iteration, while the budget and the
            space last (0, the default, is the paper's Algorithm 1).
        predictor_features: Extra predictor features, e.g. proxies (see :class:`PredictorGuidedSearch`).
        seed: Seed of the first population and the inner searches.
        initial_archs: The first population (warm start).

    Example:
        >>> from nastools.space import SearchSpace
        >>> space = SearchSpace({f"k_{i}": [3, 5, 7] for i in range(6)})
        >>> tactic = ConcurrentNAS(space, {"acc": "max", "cost": "min"}, 20, pop_size=5)
        >>> len(tactic.ask())
        5
    """

    name = "concurrent"

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, str] | Iterable[Objective],
        budget: int,
        *,
        pop_size: int = 20,
        n_gen: int = 300,
        predictor: str | Mapping[str, str] = "auto",
        exact: Mapping[str, ExactFn] | None = None,
        algorithm: str = "nsga2",
        iteration_options: Callable[[int], Mapping[str, Any]] | None = None,
        min_new: int = 0,
        predictor_features: Callable[[Sequence[Arch]], Any] | None = None,
        seed: int = 0,
        initial_archs: Sequence[Arch] | None = None,
    ) -> None:
        super().__init__(
            space,
            objectives,
            budget,
            pop_size=pop_size,
            n_gen=n_gen,
            predictor=predictor,
            exact=exact,
            algorithm=algorithm,
            predictor_features=predictor_features,
            seed=seed,
            initial_archs=initial_archs,
        )
        if iteration_options is not None and not callable(iteration_options):
            raise ValueError("iteration_options must be a function of the iteration number returning a dict")
        self.iteration_options = iteration_options
        self.min_new = check_count("min_new", min_new, minimum=0)
        self.iteration = 0

    def _propose(self) -> list[Arch]:
        if self.iteration == 0:
            proposal = self.initial_archs or self.space.sample(self.pop_size, rng=self.rng)
        else:
            options = self._iteration_settings(self.iteration)
            n_gen = check_count("n_gen", options.pop("n_gen", self.n_gen))
            pop_size = check_count("pop_size", options.pop("pop_size", self.pop_size), minimum=2)
            inner = self._inner_search(
                pop_size=pop_size, n_gen=n_gen, initial_archs=self.population(pop_size), options=options
            )
            proposal = inner.archs + self._top_up(inner)
        self.iteration += 1
        return proposal

    def _iteration_settings(self, iteration: int) -> dict[str, Any]:
        """``iteration_options(iteration)``, checked: only ``n_gen``, ``pop_size`` and algorithm options."""
        if self.iteration_options is None:
            return {}
        options = self.iteration_options(iteration)
        if not isinstance(options, Mapping):
            raise ValueError(
                f"iteration_options({iteration}) must return a dict, got {type(options).__name__}"
            )
        check_algorithm_options(
            self.algorithm, options, what=f"iteration_options({iteration}) keys", also=("n_gen", "pop_size")
        )
        return dict(options)

    def _top_up(self, inner: PredictorSearch) -> list[Arch]:
        """Unvalidated archs that bring C_{i+1}'s new members up to ``min_new``.

        The best predicted of the archs ``inner`` evaluated first, then random ones.
        """
        proposed = {self.space.key(a) for a in inner.archs}
        missing = self.min_new - len(proposed - self._values.keys())
        if missing <= 0:
            return []
        known = proposed | self._values.keys()
        _, first = np.unique(inner.visited_x, axis=0, return_index=True)
        first.sort()
        archs = self.space.decode(inner.visited_x[first])
        fresh = [i for i, arch in enumerate(archs) if self.space.key(arch) not in known]
        chosen: list[Arch] = []
        if fresh:
            F = self._F({name: column[first][fresh] for name, column in inner.visited_predicted.items()})  # noqa: N806
            for front in NonDominatedSorting().do(F):
                if len(chosen) + len(front) > missing:
                    front = front[np.argsort(-calc_crowding_distance(F[front]), kind="stable")]
                chosen += [archs[fresh[i]] for i in front[: missing - len(chosen)]]
                if len(chosen) == missing:
                    return chosen
        known |= {self.space.key(a) for a in chosen}
        for _ in range(_RANDOM_TOP_UP_TRIES):
            for arch in self.space.sample(missing - len(chosen), rng=self.rng):
                if (key := self.space.key(arch)) not in known:
                    known.add(key)
                    chosen.append(arch)
            if len(chosen) == missing:
                break
        return chosen

    def population(self, size: int | None = None) -> list[Arch]:
        """The best ``pop_size`` validated archs: the population the next iteration starts from."""
        return super().population(size or self.pop_size)


class FullSearch(PredictorGuidedSearch):
    """The paper's "full search": one round of predictors, then validate the predicted front.

    Validates ``n_initial`` random archs, fits predictors on them, runs one long search on the
    predictors and validates its final front. Two batches, then done.

    Args:
        space: The search space.
        objectives: E.g. ``{"top1": "max", "macs": "min"}``.
        budget: Validations allowed (caps both batches together).
        n_initial: Random archs validated to train the predictors.
        pop_size: Population of the predictor-driven search.
        n_gen: Its generations.
        predictor: Predictor kind for every predicted objective, or ``{objective label: kind}``
            (default ``"auto"``: ridge or gradient boosting by cross-validation).
        exact: ``{objective label: fn(archs) -> values}`` computed instead of predicted.
        algorithm: The pymoo algorithm by name.
        predictor_features: Extra predictor features, e.g. proxies (see :class:`PredictorGuidedSearch`).
        seed: Seed of the initial sample and the search.
        initial_archs: Used as the first batch.

    Example:
        >>> from nastools.space import SearchSpace
        >>> space = SearchSpace({f"k_{i}": [3, 5, 7] for i in range(6)})
        >>> tactic = FullSearch(space, {"acc": "max", "cost": "min"}, 20, n_initial=8)
        >>> len(tactic.ask())
        8
    """

    name = "full"

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, str] | Iterable[Objective],
        budget: int,
        *,
        n_initial: int = 100,
        pop_size: int = 50,
        n_gen: int = 200,
        predictor: str | Mapping[str, str] = "auto",
        exact: Mapping[str, ExactFn] | None = None,
        algorithm: str = "nsga2",
        predictor_features: Callable[[Sequence[Arch]], Any] | None = None,
        seed: int = 0,
        initial_archs: Sequence[Arch] | None = None,
    ) -> None:
        super().__init__(
            space,
            objectives,
            budget,
            pop_size=pop_size,
            n_gen=n_gen,
            predictor=predictor,
            exact=exact,
            algorithm=algorithm,
            predictor_features=predictor_features,
            seed=seed,
            initial_archs=initial_archs,
        )
        self.n_initial = check_count("n_initial", n_initial)
        self._stage = 0

    def _propose(self) -> list[Arch] | None:
        self._stage += 1
        if self._stage == 1:
            return self.initial_archs or self.space.sample(self.n_initial, rng=self.rng)
        if self._stage > 2:
            return None
        inner = self._inner_search(pop_size=self.pop_size, n_gen=self.n_gen)
        on_front = pareto_front_mask(self._F(inner.predicted))
        return [arch for arch, keep in zip(inner.archs, on_front) if keep]
