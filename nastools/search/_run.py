"""Running a search: a thin wrapper over ``pymoo.optimize.minimize``."""

# pymoo's names: X is the decision matrix (choice indices), F the objective matrix.
# ruff: noqa: N803, N806

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pymoo.core.algorithm import Algorithm
from pymoo.core.callback import Callback
from pymoo.core.problem import Problem
from pymoo.core.result import Result
from pymoo.optimize import minimize

__all__ = ["GenerationCallback", "run_search"]

GenerationFn = Callable[[int, np.ndarray, np.ndarray], None]


class GenerationCallback(Callback):
    """A pymoo callback that hands ``(generation, X, F)`` of each generation's population to ``fn``.

    ``generation`` starts at 1 (the evaluated initial population); ``F`` is pymoo's minimised form
    (use :meth:`ArchProblem.values` for natural units).

    Args:
        fn: Called once per generation.

    Example:
        >>> seen = []
        >>> callback = GenerationCallback(lambda gen, X, F: seen.append(gen))
    """

    def __init__(self, fn: GenerationFn) -> None:
        super().__init__()
        self.fn = fn

    def notify(self, algorithm: Algorithm) -> None:
        """Pass the current population to ``fn``."""
        X, F = algorithm.pop.get("X", "F")
        self.fn(int(algorithm.n_gen), np.asarray(X), np.asarray(F))


def run_search(
    problem: Problem,
    algorithm: Algorithm,
    n_gen: int,
    seed: int | None = None,
    callback: GenerationFn | None = None,
) -> Result:
    """Run ``algorithm`` on ``problem`` for ``n_gen`` generations.

    Args:
        problem: Usually an :class:`ArchProblem`.
        algorithm: E.g. from :func:`make_algorithm` (it is copied, so it can be reused).
        n_gen: Number of generations (the first is the initial population).
        seed: Random seed; the same seed gives the same result.
        callback: Optional ``fn(generation, X, F)`` called after every generation.

    Returns:
        pymoo's ``Result``: ``res.X`` / ``res.F`` hold the non-dominated solutions
        (the best one for a single objective), ``res.pop`` the last population.
    """
    if n_gen < 1:
        raise ValueError(f"n_gen must be >= 1, got {n_gen}")
    options = {"callback": GenerationCallback(callback)} if callback is not None else {}
    return minimize(
        problem, algorithm, ("n_gen", n_gen), seed=seed, save_history=False, verbose=False, **options
    )
