"""Searches on predictors: fit one predictor per objective, run a pymoo algorithm on them.

:class:`PredictorGuidedSearch` is what ConcurrentNAS and the full search share: the predictor kinds
per objective, the objectives computed exactly instead of predicted, and the inner search.
"""

# pymoo's names: X is the decision matrix (choice indices), F the objective matrix.
# ruff: noqa: N803, N806

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from nastools.objectives import Objective
from nastools.predictors import PREDICTOR_KINDS, make_predictor, single_threaded
from nastools.search._algorithms import make_algorithm
from nastools.search._problem import ArchProblem
from nastools.search._run import run_search
from nastools.search._tactic import Tactic, check_count
from nastools.space import Arch, SearchSpace

__all__ = ["ExactFn", "PredictorGuidedSearch", "PredictorSearch", "predictor_kinds", "search_on_predictors"]

#: A cheap exact objective (e.g. MACs): a list of archs in, one value per arch out.
ExactFn = Callable[[Sequence[Arch]], Sequence[float]]


def predictor_kinds(
    objectives: Sequence[Objective], predictor: str | Mapping[str, str], exact: Mapping[str, ExactFn]
) -> dict[str, str]:
    """The predictor kind of each objective that is not computed exactly; checks the labels.

    Raises:
        ValueError: An ``exact`` or ``predictor`` label that is not an objective, a non-callable
            ``exact`` value, or an unknown predictor kind.
    """
    labels = [o.label for o in objectives]
    unknown = [label for label in exact if label not in labels]
    if unknown:
        raise ValueError(f"exact objective(s) {unknown} are not objectives of the search ({labels})")
    not_callable = [label for label, fn in exact.items() if not callable(fn)]
    if not_callable:
        raise ValueError(
            f"exact[{not_callable[0]!r}] must be a function of a list of archs, "
            f"got {exact[not_callable[0]]!r}"
        )
    if isinstance(predictor, Mapping):
        stray = [label for label in predictor if label not in labels]
        if stray:
            raise ValueError(f"predictor names {stray}, which are not objectives of the search ({labels})")
    kinds = {}
    for label in labels:
        if label in exact:
            continue
        kind = predictor if isinstance(predictor, str) else predictor.get(label, "auto")
        if kind not in PREDICTOR_KINDS:
            raise ValueError(
                f"unknown predictor kind {kind!r} for {label!r}; choose one of {list(PREDICTOR_KINDS)}"
            )
        kinds[label] = kind
    return kinds


class PredictorSearch(NamedTuple):
    """What a search on predictors found: its final population and every arch it evaluated."""

    archs: list[Arch]
    """The final population."""
    predicted: dict[str, np.ndarray]
    """Its predicted objective values in natural units, by objective label."""
    visited_x: np.ndarray
    """Every individual the search evaluated, as canonical choice indices (repeats included)."""
    visited_predicted: dict[str, np.ndarray]
    """Their predicted objective values."""


def _exact_values(label: str, fn: ExactFn, archs: list[Arch]) -> np.ndarray:
    try:
        values = np.asarray(fn(archs), dtype=np.float64).reshape(-1)
    except Exception as error:  # noqa: BLE001 - any failure is the same user mistake
        detail = str(error).splitlines()[0][:160] if str(error) else "no detail"
        raise ValueError(
            f"exact[{label!r}] must take a list of archs and return one value per arch (e.g. "
            f"Evaluator.free(objectives)); calling it on {len(archs)} archs failed with "
            f"{type(error).__name__}: {detail}"
        ) from error
    if len(values) != len(archs):
        raise ValueError(f"exact[{label!r}] returned {len(values)} values for {len(archs)} archs")
    if not np.isfinite(values).all():
        raise ValueError(
            f"exact[{label!r}] returned non-finite values (e.g. {values[~np.isfinite(values)][0]})"
        )
    return values


def search_on_predictors(
    space: SearchSpace,
    objectives: Sequence[Objective],
    archs: Sequence[Arch],
    values: Mapping[str, np.ndarray],
    *,
    kinds: Mapping[str, str],
    exact: Mapping[str, ExactFn],
    predict: Mapping[str, Callable[[np.ndarray], np.ndarray]] | None = None,
    algorithm: str = "nsga2",
    pop_size: int = 50,
    n_gen: int = 100,
    initial_archs: Sequence[Arch] | None = None,
    seed: int = 0,
    algorithm_options: Mapping[str, Any] | None = None,
    predictor_features: Callable[[Sequence[Arch]], Any] | None = None,
) -> PredictorSearch:
    """Fit predictors on measured ``archs``/``values`` and run ``algorithm`` on them.

    ``predictor_features`` adds columns to every predictor's features (e.g. proxies:
    :meth:`Evaluator.proxy_features <nastools.evaluation.Evaluator.proxy_features>`). With
    ``predict`` (``{label: fn(X) -> values}`` of encoded archs, e.g. a search's own fitted models)
    nothing is fitted here: ``kinds``, ``archs``, ``values`` and ``predictor_features`` are unused.

    Returns:
        The final population and every arch evaluated on the way, with predicted objectives.
    """
    if predict is None:
        predict = {}
        with single_threaded():
            for label, kind in kinds.items():
                model = make_predictor(space, kind, seed=seed, extra_features=predictor_features)
                predict[label] = model.fit(space.encode(archs), values[label]).predict

    visited_X, visited_F = [], []

    def evaluate(X: np.ndarray) -> dict[str, np.ndarray]:
        with single_threaded():
            out = {label: fn(X) for label, fn in predict.items()}
        if exact:
            decoded = space.decode(X)
            out |= {label: _exact_values(label, fn, decoded) for label, fn in exact.items()}
        visited_X.append(X)
        visited_F.append({o.label: np.asarray(out[o.label], dtype=np.float64) for o in objectives})
        return out

    problem = ArchProblem(space, objectives, evaluate, pass_x=True)
    initial_X = space.encode(list(initial_archs)) if initial_archs else None
    engine = make_algorithm(
        algorithm,
        space,
        pop_size=pop_size,
        n_objectives=len(objectives),
        seed=seed,
        initial_X=initial_X,
        **dict(algorithm_options or {}),
    )
    with single_threaded():
        result = run_search(problem, engine, n_gen=n_gen, seed=seed)
    X = np.asarray(result.pop.get("X")).astype(np.int64)
    return PredictorSearch(
        archs=space.decode(X),
        predicted=problem.values(result.pop.get("F")),
        visited_x=np.concatenate(visited_X),
        visited_predicted={o.label: np.concatenate([f[o.label] for f in visited_F]) for o in objectives},
    )


class PredictorGuidedSearch(Tactic):
    """A tactic that validates what a search on predictors proposes (ConcurrentNAS, the full search).

    Args:
        space: The search space.
        objectives: E.g. ``{"top1": "max", "macs": "min"}``.
        budget: Validations allowed.
        pop_size: Population of the inner search.
        n_gen: Generations of the inner search.
        predictor: A kind from :data:`~nastools.predictors.PREDICTOR_KINDS` for every predicted
            objective, or ``{objective label: kind}`` (others ``"auto"``).
        exact: ``{objective label: fn(archs) -> values}`` computed instead of predicted (cheap
            exact objectives such as MACs or table latency: :meth:`Evaluator.free
            <nastools.evaluation.Evaluator.free>` gives them).
        algorithm: The inner pymoo algorithm by name.
        predictor_features: ``fn(archs) -> array (n, k)`` of extra predictor features, e.g. proxies
            (:meth:`Evaluator.proxy_features <nastools.evaluation.Evaluator.proxy_features>`).
        seed: Seed of the initial sample and the inner searches.
        initial_archs: The first batch (warm start).
    """

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, str] | Iterable[Objective],
        budget: int,
        *,
        pop_size: int,
        n_gen: int,
        predictor: str | Mapping[str, str] = "auto",
        exact: Mapping[str, ExactFn] | None = None,
        algorithm: str = "nsga2",
        predictor_features: Callable[[Sequence[Arch]], Any] | None = None,
        seed: int = 0,
        initial_archs: Sequence[Arch] | None = None,
    ) -> None:
        super().__init__(space, objectives, budget, seed=seed, initial_archs=initial_archs)
        if predictor_features is not None and not callable(predictor_features):
            raise ValueError(
                "predictor_features must be a function of a list of archs returning (n, k) values"
            )
        self.predictor_features = predictor_features
        self.pop_size = check_count("pop_size", pop_size, minimum=2)
        self.n_gen = check_count("n_gen", n_gen)
        self.predictor = predictor if isinstance(predictor, str) else dict(predictor)
        if exact is not None and not isinstance(exact, Mapping):
            raise ValueError(
                f"exact must be a dict of objective label to function, got {type(exact).__name__}"
            )
        self.exact = dict(exact or {})
        self.kinds = predictor_kinds(self.objectives, self.predictor, self.exact)
        self.algorithm = algorithm
        make_algorithm(algorithm, space, pop_size=self.pop_size, n_objectives=len(self.objectives))  # checks

    def _inner_search(
        self,
        *,
        pop_size: int,
        n_gen: int,
        initial_archs: Sequence[Arch] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> PredictorSearch:
        """Fit the predictors on everything validated and search on them."""
        return search_on_predictors(
            self.space,
            self.objectives,
            self._measured_archs(),
            self.values,
            kinds=self.kinds,
            exact=self.exact,
            algorithm=self.algorithm,
            pop_size=pop_size,
            n_gen=n_gen,
            initial_archs=initial_archs,
            seed=int(self.rng.integers(2**31)),
            algorithm_options=options,
            predictor_features=self.predictor_features,
        )
