"""pymoo algorithms by name, set up with integer choice operators."""

# pymoo's names: X is the decision matrix (choice indices), F the objective matrix.
# ruff: noqa: N803, N806

from __future__ import annotations

from math import comb
from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.moo.rnsga2 import RNSGA2
from pymoo.algorithms.moo.unsga3 import UNSGA3
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.core.algorithm import Algorithm
from pymoo.core.duplicate import DefaultDuplicateElimination
from pymoo.operators.crossover.ux import UniformCrossover
from pymoo.operators.sampling.rnd import IntegerRandomSampling
from pymoo.util.ref_dirs import get_reference_directions

from nastools.search._operators import CanonicalRepair, ChoiceResetMutation
from nastools.space import SearchSpace

__all__ = ["ALGORITHMS", "make_algorithm"]

#: Names accepted by :func:`make_algorithm`.
ALGORITHMS: tuple[str, ...] = ("nsga2", "agemoea", "rnsga2", "unsga3", "ga")


def _das_dennis_partitions(n_objectives: int, pop_size: int) -> int:
    """Largest number of partitions whose Das-Dennis directions do not outnumber ``pop_size``."""
    partitions = 1
    while comb(partitions + 1 + n_objectives - 1, n_objectives - 1) <= pop_size:
        partitions += 1
    return partitions


def make_algorithm(
    name: str,
    space: SearchSpace,
    pop_size: int = 50,
    n_objectives: int = 2,
    seed: int | None = None,
    initial_X: np.ndarray | None = None,
    **kwargs: Any,
) -> Algorithm:
    """Build a pymoo algorithm for an :class:`ArchProblem` on ``space``.

    Every algorithm samples with ``IntegerRandomSampling`` (or starts from ``initial_X``),
    recombines with ``UniformCrossover(prob=0.9)`` (as DyNAS-T does), mutates with
    :class:`ChoiceResetMutation`, repairs with :class:`CanonicalRepair` and eliminates duplicate
    networks with ``DefaultDuplicateElimination``. Keyword arguments override these or are
    passed to the pymoo class.

    Args:
        name: One of :data:`ALGORITHMS`: ``"nsga2"`` (NSGA-II, the default choice),
            ``"agemoea"`` (AGE-MOEA), ``"rnsga2"`` (R-NSGA-II; needs ``ref_points``, shape
            ``(k, n_objectives)`` in the problem's ``F`` units, i.e. maximised objectives
            negated), ``"unsga3"`` (U-NSGA-III; ``ref_dirs`` may be an array, ``"das-dennis"``
            (default, as many directions as fit in ``pop_size``) or ``"energy"``) and ``"ga"``
            (single objective).
        space: The search space (for the repair).
        pop_size: Population size.
        n_objectives: Number of objectives of the problem.
        seed: Random seed stored on the algorithm (``run_search``'s ``seed`` overrides it).
        initial_X: Warm start: integer choice indices ``(n, n_var)`` used as the first population.
        **kwargs: Algorithm-specific options or operator overrides.

    Returns:
        A pymoo algorithm, ready for :func:`run_search` or ``pymoo.optimize.minimize``.

    Example:
        >>> from nastools.space import SearchSpace
        >>> type(make_algorithm("nsga2", SearchSpace({"d": [1, 2], "k": [3, 5]}))).__name__
        'NSGA2'
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; choose one of {list(ALGORITHMS)}")
    if n_objectives < 1:
        raise ValueError(f"n_objectives must be >= 1, got {n_objectives}")
    if key == "ga" and n_objectives != 1:
        raise ValueError(f"'ga' is single-objective, got n_objectives={n_objectives}; use 'nsga2'")
    if key != "ga" and n_objectives < 2:
        raise ValueError(f"{key!r} is multi-objective; use 'ga' for a single objective")
    if pop_size < 2:
        raise ValueError(f"pop_size must be >= 2, got {pop_size}")

    if initial_X is not None:
        initial_X = np.atleast_2d(np.asarray(initial_X))
        if initial_X.shape[1] != space.n_var:
            raise ValueError(f"initial_X has {initial_X.shape[1]} columns, the space has {space.n_var}")
        sampling: Any = space.canonical_x(initial_X)
    else:
        sampling = IntegerRandomSampling()

    options: dict[str, Any] = {
        "pop_size": pop_size,
        "sampling": sampling,
        "crossover": UniformCrossover(prob=0.9),
        "mutation": ChoiceResetMutation(),
        "repair": CanonicalRepair(space),
        "eliminate_duplicates": DefaultDuplicateElimination(),
        "seed": seed,
    }

    if key == "rnsga2":
        ref_points = kwargs.pop("ref_points", None)
        if ref_points is None:
            raise ValueError(
                "'rnsga2' needs ref_points: an array (k, n_objectives) of aspiration points in F units "
                "(minimised; maximised objectives negated)"
            )
        ref_points = np.atleast_2d(np.asarray(ref_points, dtype=np.float64))
        if ref_points.shape[1] != n_objectives:
            raise ValueError(f"ref_points have {ref_points.shape[1]} columns, expected {n_objectives}")
        options["ref_points"] = ref_points
    if key == "unsga3":
        ref_dirs = kwargs.pop("ref_dirs", "das-dennis")
        if isinstance(ref_dirs, str):
            if ref_dirs == "das-dennis":
                partitions = _das_dennis_partitions(n_objectives, pop_size)
                ref_dirs = get_reference_directions("das-dennis", n_objectives, n_partitions=partitions)
            elif ref_dirs == "energy":
                ref_dirs = get_reference_directions("energy", n_objectives, pop_size, seed=seed or 0)
            else:
                raise ValueError(f"unknown ref_dirs {ref_dirs!r}; use 'das-dennis', 'energy' or an array")
        options["ref_dirs"] = np.asarray(ref_dirs, dtype=np.float64)

    options.update(kwargs)
    classes = {"nsga2": NSGA2, "rnsga2": RNSGA2, "unsga3": UNSGA3, "ga": GA}
    if key == "agemoea":
        return _agemoea_class()(**options)
    return classes[key](**options)


def _agemoea_class() -> type[Algorithm]:
    """Return pymoo's AGE-MOEA, imported on demand because it needs numba."""
    try:
        import numba  # noqa: F401
    except ImportError as error:
        raise ImportError("'agemoea' needs numba (pip install numba); 'nsga2' does not") from error
    from pymoo.algorithms.moo.age import AGEMOEA

    return AGEMOEA
