"""The history PopDB clusters: one long NSGA-II on predictors fitted to a source search's validations."""

# pymoo's names: X is the decision matrix (choice indices).
# ruff: noqa: N806

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from nastools.objectives import Objective, parse_objectives
from nastools.predictors import make_predictor, single_threaded
from nastools.search._surrogate import ExactFn, predictor_kinds, search_on_predictors
from nastools.search._tactic import check_count
from nastools.space import Arch, SearchSpace

__all__ = ["predictor_history"]


def predictor_history(
    space: SearchSpace,
    objectives: Mapping[str, str] | Iterable[Objective],
    archs: Sequence[Arch],
    values: Mapping[str, Sequence[float]],
    *,
    n_samples: int = 100_000,
    pop_size: int = 50,
    predictor: str | Mapping[str, str] = "ridge",
    exact: Mapping[str, ExactFn] | None = None,
    algorithm: str = "nsga2",
    seed: int = 0,
) -> list[Arch]:
    """Every arch a long NSGA-II on predictors evaluates: the search history PopDB clusters in the paper.

    One predictor per objective is fitted on the validated ``archs`` and their measured ``values``
    (objectives in ``exact``, e.g. MACs, are computed instead); then one NSGA-II runs on the
    predictors until it has evaluated ``n_samples`` archs (the paper: 100,000 samples, population
    50, i.e. 2,000 generations). Repeats are kept, as in any search history: archs the search keeps
    returning to weigh more. Should the algorithm's duplicate elimination leave a generation short
    (a space smaller than the population), the search continues from its last population until the
    count is reached.

    100,000 samples took 22 s of CPU on ``digits-mbv3`` (ridge on top-1 from 24 validations, exact
    MACs) and 14 s on ``ofa-mbv3-w1.2`` (from 100 validations): 4,500 to 7,000 archs a second, most of
    it pymoo's work per generation of 50 and the thread limit set around every prediction.

    Args:
        space: The space to search.
        objectives: E.g. ``{"top1": "max", "macs": "min"}``: the source search's objectives.
        archs: The archs the source search validated.
        values: Their measured values by objective label (objectives in ``exact`` may be left out).
        n_samples: Archs in the returned history.
        pop_size: NSGA-II's population (and offspring per generation).
        predictor: A predictor kind for every predicted objective, or ``{objective label: kind}``
            (others ``"auto"``); see :data:`~nastools.predictors.PREDICTOR_KINDS`.
        exact: ``{objective label: fn(archs) -> values}`` computed instead of predicted
            (:meth:`Evaluator.free <nastools.evaluation.Evaluator.free>` gives them).
        algorithm: The pymoo algorithm by name (see :data:`~nastools.search.ALGORITHMS`).
        seed: Seed of the predictors and the search; the same seed gives the same history.

    Returns:
        ``n_samples`` canonical archs of ``space`` in the order the search evaluated them.

    Raises:
        ValueError: Too few validated archs, values missing or of the wrong length for an objective,
            a count below 1, or an unknown predictor kind or objective label.

    Example:
        >>> from nastools.space import SearchSpace
        >>> space = SearchSpace({f"k_{i}": [3, 5, 7] for i in range(6)})
        >>> archs = space.sample(30, rng=0)
        >>> values = {"score": [sum(a.values()) for a in archs], "cost": [a["k_0"] for a in archs]}
        >>> history = predictor_history(space, {"score": "max", "cost": "min"}, archs, values, n_samples=500)
        >>> len(history)
        500
    """
    objectives = parse_objectives(objectives)
    n_samples = check_count("n_samples", n_samples)
    pop_size = check_count("pop_size", pop_size, minimum=2)
    if exact is not None and not isinstance(exact, Mapping):
        raise ValueError(f"exact must be a dict of objective label to function, got {type(exact).__name__}")
    exact = dict(exact or {})
    kinds = predictor_kinds(objectives, predictor, exact)
    archs = [space.canonical(a) for a in archs]
    if kinds and len(archs) < 2:
        raise ValueError(
            f"predictor_history needs at least 2 validated archs to fit predictors, got {len(archs)}"
        )
    targets = {}
    for label in kinds:
        if label not in values:
            raise ValueError(
                f"values has no {label!r}: give the measured values of every objective not in exact "
                f"(values has {sorted(values)})"
            )
        targets[label] = np.asarray(values[label], dtype=np.float64).reshape(-1)
        if len(targets[label]) != len(archs):
            raise ValueError(f"values[{label!r}] has {len(targets[label])} values for {len(archs)} archs")

    predict = {}
    X_train = space.encode(archs) if archs else None
    with single_threaded():
        for label, kind in kinds.items():
            predict[label] = make_predictor(space, kind, seed=seed).fit(X_train, targets[label]).predict

    visited: list[np.ndarray] = []
    n_visited = 0
    population: list[Arch] | None = None
    run = 0
    while n_visited < n_samples:
        n_initial = len(population) if population else 0
        missing = n_samples - n_visited + n_initial
        result = search_on_predictors(
            space,
            objectives,
            archs,
            targets,
            kinds=kinds,
            exact=exact,
            predict=predict,
            algorithm=algorithm,
            pop_size=pop_size,
            n_gen=-(-missing // pop_size),
            initial_archs=population,
            seed=seed + run,
        )
        # a continued run starts by evaluating the last population again: counted once already
        new = result.visited_x[n_initial:]
        if not len(new):  # the population holds every network: no offspring left to make
            raise ValueError(
                f"the space has only {space.size} networks, too few for pop_size={pop_size}: "
                "give a smaller pop_size"
            )
        visited.append(new)
        n_visited += len(new)
        population, run = result.archs, run + 1
    return space.decode(np.concatenate(visited)[:n_samples])
