"""pymoo algorithms by name, set up with integer choice operators."""

# pymoo's names: X is the decision matrix (choice indices), F the objective matrix.
# ruff: noqa: N803, N806

from __future__ import annotations

import inspect
from collections.abc import Iterable
from math import comb
from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.moo.rnsga2 import RNSGA2
from pymoo.algorithms.moo.unsga3 import UNSGA3
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.core.algorithm import Algorithm
from pymoo.operators.crossover.ux import UniformCrossover
from pymoo.operators.sampling.rnd import IntegerRandomSampling
from pymoo.util.ref_dirs import get_reference_directions

from nastools.search._operators import CanonicalRepair, ChoiceResetMutation, ExactDuplicateElimination
from nastools.space import SearchSpace

__all__ = ["ALGORITHMS", "check_algorithm_options", "make_algorithm"]

#: Names accepted by :func:`make_algorithm`.
ALGORITHMS: tuple[str, ...] = ("nsga2", "agemoea", "rnsga2", "unsga3", "ga")

#: :func:`make_algorithm`'s own parameters, which a tactic sets, with where the caller sets them instead.
_TACTIC_PARAMETERS: dict[str, str] = {
    "pop_size": "pass pop_size=... to the tactic",
    "seed": "pass seed=... to the tactic",
    "initial_X": "pass initial_archs=... to the tactic",
    "n_objectives": "it follows from the objectives",
}


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
    networks with :class:`ExactDuplicateElimination` (pymoo's default, in linear time). Keyword
    arguments override these or are passed to the pymoo class.

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
        "eliminate_duplicates": ExactDuplicateElimination(),
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
        if not np.isfinite(ref_points).all():
            raise ValueError(f"ref_points must be finite numbers, got {ref_points.tolist()}")
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

    algorithm_class = _agemoea_class() if key == "agemoea" else _CLASSES[key]
    check_algorithm_options(key, kwargs)
    options.update(kwargs)
    return algorithm_class(**options)


def check_algorithm_options(
    name: str, options: Iterable[str], *, what: str = "algorithm_options", also: Iterable[str] = ()
) -> None:
    """Raise for an option the pymoo algorithm ``name`` does not take.

    pymoo's algorithms accept ``**kwargs`` and drop what they do not know, so a typo such as
    ``n_offspring`` would silently change nothing; this checks the names against the parameters
    of the algorithm's constructors. It also rejects :func:`make_algorithm`'s own parameters
    (``pop_size``, ``seed``, ``initial_X``, ``n_objectives``), which the tactic sets, unless named in
    ``also``.

    Args:
        name: One of :data:`ALGORITHMS`.
        options: The option names given.
        what: How the caller names the options in the error.
        also: Further names the caller accepts besides the algorithm's options.

    Raises:
        ValueError: Naming the unknown options and the ones the algorithm takes, or the options that
            are the tactic's own parameters.

    Example:
        >>> check_algorithm_options("nsga2", ["n_offsprings"])
        >>> check_algorithm_options("nsga2", ["n_offspring"])
        Traceback (most recent call last):
        ...
        ValueError: algorithm_options ['n_offspring'] are not options of 'nsga2'; it takes [...]
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; choose one of {list(ALGORITHMS)}")
    accepted = _accepted_options(_agemoea_class() if key == "agemoea" else _CLASSES[key])
    options, also = list(options), list(also)
    own = [option for option in options if option in _TACTIC_PARAMETERS and option not in also]
    if own:
        hints = "; ".join(f"{option}: {_TACTIC_PARAMETERS[option]}" for option in own)
        raise ValueError(f"{what} {own} are the tactic's own parameters, not algorithm options ({hints})")
    unknown = [option for option in options if option not in accepted and option not in also]
    if unknown:
        takes = (
            f"use {', '.join(also)} or one of {sorted(accepted)}" if also else f"it takes {sorted(accepted)}"
        )
        raise ValueError(f"{what} {unknown} are not options of {key!r}; {takes}")


_CLASSES: dict[str, type[Algorithm]] = {"nsga2": NSGA2, "rnsga2": RNSGA2, "unsga3": UNSGA3, "ga": GA}


def _accepted_options(algorithm_class: type) -> set[str]:
    """Named constructor parameters along the class hierarchy, as far as ``**kwargs`` passes them on."""
    accepted: set[str] = set()
    for cls in algorithm_class.__mro__:
        init = vars(cls).get("__init__")
        if init is None or cls is object:
            continue
        parameters = inspect.signature(init).parameters.values()
        accepted |= {
            p.name
            for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
        }
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return accepted


def _agemoea_class() -> type[Algorithm]:
    """Return pymoo's AGE-MOEA, imported on demand because it needs numba."""
    try:
        import numba  # noqa: F401
    except ImportError as error:
        raise ImportError("'agemoea' needs numba (pip install numba); 'nsga2' does not") from error
    from pymoo.algorithms.moo.age import AGEMOEA

    return AGEMOEA
