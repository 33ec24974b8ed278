"""Inner searches on predictors: fit one predictor per objective, run a pymoo algorithm on them."""

# pymoo's names: X is the decision matrix (choice indices), F the objective matrix.
# ruff: noqa: N803, N806

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from nastools._encoding import decode_x
from nastools.predictors import PREDICTOR_KINDS, make_predictor, single_threaded
from nastools.search._algorithms import make_algorithm
from nastools.search._objectives import Objective
from nastools.search._problem import ArchProblem
from nastools.search._run import run_search
from nastools.space import Arch, SearchSpace

__all__ = ["ExactFn", "PredictorSearch", "predictor_kinds", "search_on_predictors"]

#: A cheap exact objective (e.g. MACs): archs in, one value per arch out.
ExactFn = Callable[[Sequence[Arch]], Sequence[float]]


def predictor_kinds(
    objectives: Sequence[Objective], predictor: str | Mapping[str, str], exact: Mapping[str, ExactFn]
) -> dict[str, str]:
    """The predictor kind of each objective that is not computed exactly; checks the names."""
    unknown = [name for name in exact if name not in {o.name for o in objectives}]
    if unknown:
        raise ValueError(f"exact objective(s) {unknown} are not objectives of the search")
    kinds = {}
    for o in objectives:
        if o.name in exact:
            continue
        kind = predictor if isinstance(predictor, str) else predictor.get(o.name, "ridge")
        if kind not in PREDICTOR_KINDS:
            raise ValueError(
                f"unknown predictor kind {kind!r} for {o.name!r}; choose one of {list(PREDICTOR_KINDS)}"
            )
        kinds[o.name] = kind
    return kinds


class PredictorSearch(NamedTuple):
    """What a search on predictors found: its final population and every arch it evaluated."""

    archs: list[Arch]
    """The final population."""
    predicted: dict[str, np.ndarray]
    """Its predicted objective values in natural units, by objective name."""
    visited_x: np.ndarray
    """Every individual the search evaluated, as canonical choice indices (repeats included)."""
    visited_predicted: dict[str, np.ndarray]
    """Their predicted objective values."""


def search_on_predictors(
    space: SearchSpace,
    objectives: Sequence[Objective],
    archs: Sequence[Arch],
    values: Mapping[str, np.ndarray],
    *,
    kinds: Mapping[str, str],
    exact: Mapping[str, ExactFn],
    algorithm: str = "nsga2",
    pop_size: int = 50,
    n_gen: int = 100,
    initial_archs: Sequence[Arch] | None = None,
    seed: int = 0,
    algorithm_options: Mapping[str, Any] | None = None,
) -> PredictorSearch:
    """Fit predictors on measured ``archs``/``values`` and run ``algorithm`` on them.

    Returns:
        The final population and every arch evaluated on the way, with predicted objectives.
    """
    predictors = {}
    with single_threaded():
        for name, kind in kinds.items():
            predictors[name] = make_predictor(space, kind, seed=seed).fit(space.encode(archs), values[name])

    visited_X, visited_F = [], []

    def evaluate(X: np.ndarray) -> dict[str, np.ndarray]:
        out = {name: model.predict(X) for name, model in predictors.items()}
        if exact:
            decoded = decode_x(space, X)
            out |= {name: np.asarray(fn(decoded), dtype=np.float64) for name, fn in exact.items()}
        visited_X.append(X)
        visited_F.append({o.name: np.asarray(out[o.name], dtype=np.float64) for o in objectives})
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
        archs=decode_x(space, X),
        predicted=problem.values(result.pop.get("F")),
        visited_x=np.concatenate(visited_X),
        visited_predicted={o.name: np.concatenate([f[o.name] for f in visited_F]) for o in objectives},
    )
