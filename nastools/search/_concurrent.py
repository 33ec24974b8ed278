"""ConcurrentNAS (Algorithm 1 of the DyNAS-T paper) and the one-shot full search."""

# pymoo's names: X is the decision matrix (choice indices), F the objective matrix.
# ruff: noqa: N803, N806

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from nastools.hypervolume import pareto_front_mask
from nastools.objectives import Objective
from nastools.search._acquisition import select_by_ehvi
from nastools.search._algorithms import check_algorithm_options
from nastools.search._models import ObjectiveModel
from nastools.search._surrogate import ExactFn, PredictorGuidedSearch, PredictorSearch, search_on_predictors
from nastools.search._tactic import check_count
from nastools.space import Arch, SearchSpace

__all__ = ["ConcurrentNAS", "FullSearch"]

#: Rounds of random sampling that may top a population up when the inner search's archs run out.
_RANDOM_TOP_UP_TRIES = 10
#: How ConcurrentNAS chooses each batch from what its inner search found.
ACQUISITIONS = ("auto", "ehvi", "population")


class ConcurrentNAS(PredictorGuidedSearch):
    """Measure a batch, refit predictors on everything measured, search on them, measure the best, repeat.

    Iteration 0 validates ``initial_archs`` (warm start) or ``pop_size`` random archs. Each later
    iteration refits one predictor per predicted objective on all validations so far (objectives in
    ``exact`` are computed instead), runs the inner algorithm on the predictors for ``n_gen``
    generations starting from the best validated population, and validates a batch C_{i+1} of
    ``pop_size`` archs chosen from what it found (``acquisition``):

    * ``"population"``: the inner search's final population, as the paper's Algorithm 1 does (with
      a population of ``pop_size``); members validated before cost nothing.
    * ``"ehvi"``: among every arch the inner search visited (its population is ``inner_pop_size``),
      the ``pop_size`` with the largest expected hypervolume improvement over the validated front,
      picked greedily (:func:`~nastools.search._acquisition.select_by_ehvi`): the predictors give a
      mean and a standard deviation, the exact objectives their values, so the batch goes where the
      front can still grow, not where it is already known. Two objectives only.
    * ``"auto"`` (the default): ``"ehvi"`` for two objectives, else ``"population"``.

    ``predictor="auto"`` (the default) lets the candidate predictors compete on each validated
    batch before it was measured (:class:`~nastools.search._models.ObjectiveModel`): a Gaussian
    process and gradient boosting, each also with the proxy features where ``predictor_features``
    gives some, at one fit per candidate per iteration.

    In a small space (a :func:`popdb_space`, say) the inner search soon returns archs validated
    already; with ``acquisition="population"`` iterations then validate little or nothing new and
    the tactic stops after 50 idle ones, which ``min_new`` prevents (it tops C_{i+1} up with the
    best-predicted unvalidated archs the inner search evaluated, then random ones). The
    expected-hypervolume batch always takes unvalidated archs.

    Args:
        space: The search space.
        objectives: E.g. ``{"top1": "max", "macs": "min"}``.
        budget: Validations allowed.
        pop_size: Archs validated per iteration (and the inner population for ``"population"``).
        n_gen: Generations of the inner search per iteration (J in the paper).
        predictor: A kind from :data:`~nastools.predictors.PREDICTOR_KINDS` for every predicted
            objective, or ``{objective label: kind}``; ``"auto"`` as above.
        exact: ``{objective label: fn(archs) -> values}`` for cheap exact objectives such as MACs.
        algorithm: The inner pymoo algorithm by name.
        acquisition: ``"auto"``, ``"ehvi"`` or ``"population"`` (above).
        inner_pop_size: Population of the inner search for ``"ehvi"`` (default ``max(50, 5 * pop_size)``).
        iteration_options: ``fn(iteration) -> dict`` of inner-search settings that change between
            iterations (keys ``n_gen``, ``pop_size`` or options of the ``algorithm``, see
            :func:`make_algorithm`); an unknown key is an error when the iteration asks for it.
        min_new: With ``"population"``: validate at least this many new archs per iteration, while
            the budget and the space last (0, the default, is the paper's Algorithm 1).
        predictor_features: Cheap exact quantities of an arch as extra predictor features
            (:meth:`Evaluator.proxy_features <nastools.evaluation.Evaluator.proxy_features>`):
            ``"auto"`` uses them where they rank better, other kinds always.
        seed: Seed of the first population and the inner searches.
        initial_archs: The first population (warm start).

    Raises:
        ValueError: An unknown acquisition, or ``"ehvi"`` with other than two objectives.

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
        pop_size: int = 10,
        n_gen: int = 50,
        predictor: str | Mapping[str, str] = "auto",
        exact: Mapping[str, ExactFn] | None = None,
        algorithm: str = "nsga2",
        acquisition: str = "auto",
        inner_pop_size: int | None = None,
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
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"unknown acquisition {acquisition!r}; choose one of {list(ACQUISITIONS)}")
        if acquisition == "ehvi" and len(self.objectives) != 2:
            raise ValueError(
                f"acquisition='ehvi' needs two objectives, got {len(self.objectives)}: use 'population' "
                "(the paper's) or 'auto'"
            )
        self.acquisition = acquisition
        self.inner_pop_size = (
            None if inner_pop_size is None else check_count("inner_pop_size", inner_pop_size, 2)
        )
        if iteration_options is not None and not callable(iteration_options):
            raise ValueError("iteration_options must be a function of the iteration number returning a dict")
        self.iteration_options = iteration_options
        self.min_new = check_count("min_new", min_new, minimum=0)
        self.iteration = 0
        self.models = {
            label: ObjectiveModel(space, kind, seed=self.seed, proxy_features=predictor_features)
            for label, kind in self.kinds.items()
        }
        self._fresh: set[str] = set()

    @property
    def uses_ehvi(self) -> bool:
        """Whether batches are chosen by expected hypervolume improvement (else the inner population)."""
        return self.acquisition == "ehvi" or (self.acquisition == "auto" and len(self.objectives) == 2)

    def _propose(self) -> list[Arch] | None:
        if self.iteration == 0:
            proposal = self.initial_archs or self.space.sample(self.pop_size, rng=self.rng)
        else:
            options = self._iteration_settings(self.iteration)
            n_gen = check_count("n_gen", options.pop("n_gen", self.n_gen))
            pop_size = check_count("pop_size", options.pop("pop_size", self.pop_size), minimum=2)
            archs, values = self._measured_archs(), self.values
            for label, model in self.models.items():
                model.fit(archs, values[label])
            predict = {label: (lambda X, m=model: m.predict(X)[0]) for label, model in self.models.items()}
            inner_pop = (self.inner_pop_size or max(50, 5 * pop_size)) if self.uses_ehvi else pop_size
            inner = search_on_predictors(
                self.space,
                self.objectives,
                archs,
                values,
                kinds=self.kinds,
                exact=self.exact,
                predict=predict,
                algorithm=self.algorithm,
                pop_size=inner_pop,
                n_gen=n_gen,
                initial_archs=self.population(inner_pop),
                seed=int(self.rng.integers(2**31)),
                algorithm_options=options,
            )
            if self.uses_ehvi:
                proposal = self._ehvi_batch(inner, pop_size)
                if not proposal:
                    return None  # every arch the inner search found is validated: the space is spent
            else:
                proposal = inner.archs + self._top_up(inner)
        self.iteration += 1
        self._fresh = {key for key in map(self.space.key, proposal) if key not in self._values}
        return proposal

    def _receive(self, archs: list[Arch], values: dict[str, np.ndarray]) -> None:
        """Score the predictors on the archs of the last batch that were new when it was proposed."""
        keys = [self.space.key(a) for a in archs]
        new = [i for i, key in enumerate(keys) if key in self._fresh]
        if new:
            for label, model in self.models.items():
                model.observe([archs[i] for i in new], np.asarray(values[label])[new])
        self._fresh = set()

    def _ehvi_batch(self, inner: PredictorSearch, q: int) -> list[Arch]:
        """The ``q`` unvalidated archs ``inner`` visited with the largest expected hypervolume improvement."""
        space = self.space
        _, first = np.unique(inner.visited_x, axis=0, return_index=True)
        first.sort()
        X = inner.visited_x[first]
        validated = {row.tobytes() for row in space.encode(self._measured_archs())}
        fresh = np.array([row.tobytes() not in validated for row in X], dtype=bool)
        X, first = X[fresh], first[fresh]
        if not len(X):
            return []
        mean = {label: column[first] for label, column in inner.visited_predicted.items()}
        std = {label: np.zeros(len(X)) for label in mean}
        for label, model in self.models.items():
            mean[label], std[label] = model.predict(X)
        std_F = np.column_stack([std[o.label] for o in self.objectives])
        chosen = select_by_ehvi(self._F(self.values), self._F(mean), std_F, q, self.rng)
        return space.decode(X[chosen])

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
            F = self._F({name: column[first][fresh] for name, column in inner.visited_predicted.items()})
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
