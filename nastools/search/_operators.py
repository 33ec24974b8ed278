"""Operators for integer choice genes that pymoo does not provide."""

# pymoo's names: X is the decision matrix (choice indices), F the objective matrix.
# ruff: noqa: N803, N806

from __future__ import annotations

from typing import Any

import numpy as np
from pymoo.core.duplicate import DuplicateElimination
from pymoo.core.mutation import Mutation
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair

from nastools.space import SearchSpace

__all__ = ["CanonicalRepair", "ChoiceResetMutation", "ExactDuplicateElimination"]


class ChoiceResetMutation(Mutation):
    """Reset each gene, with probability ``prob_var``, to a uniformly drawn *other* choice.

    pymoo's integer mutations (polynomial mutation with rounding) assume ordered values and
    rarely jump far; for categorical choices every other value is equally likely here.

    Args:
        prob_var: Per-gene probability; ``None`` means ``1 / n_var`` (pymoo's default rule).
        **kwargs: Passed to :class:`pymoo.core.mutation.Mutation` (e.g. ``prob``, per individual).

    Example:
        >>> from pymoo.core.population import Population
        >>> from pymoo.core.problem import Problem
        >>> problem = Problem(n_var=4, xl=0, xu=2, vtype=int)
        >>> pop = Population.new(X=np.zeros((3, 4), dtype=int))
        >>> mutation = ChoiceResetMutation(prob_var=1.0)
        >>> X = mutation.do(problem, pop, random_state=np.random.default_rng(0)).get("X")
        >>> bool((X != 0).all())
        True
    """

    def __init__(self, prob_var: float | None = None, **kwargs: Any) -> None:
        super().__init__(prob_var=prob_var, **kwargs)

    def _do(
        self, problem: Problem, X: np.ndarray, *args: Any, random_state: np.random.Generator, **kwargs: Any
    ) -> np.ndarray:
        X = np.rint(X).astype(np.int64)
        xl, xu = (np.asarray(b, dtype=np.int64) for b in problem.bounds())
        n_choices = xu - xl + 1
        prob_var = np.asarray(self.get_prob_var(problem, size=len(X)), dtype=np.float64).reshape(-1, 1)
        reset = (random_state.random(X.shape) < prob_var) & (n_choices > 1)
        # a shift in 1 .. n_choices-1 (mod n_choices) gives each other choice with equal probability
        shift = 1 + np.floor(random_state.random(X.shape) * (n_choices - 1)).astype(np.int64)
        mutated = xl + (X - xl + shift) % n_choices
        return np.where(reset, mutated, X)


class CanonicalRepair(Repair):
    """Set genes that the architecture does not use to index 0 (the space's canonical form).

    With every individual canonical, :class:`ExactDuplicateElimination` on ``X`` removes
    encodings that build the same network (e.g. differing only in kernel sizes of skipped blocks).

    Args:
        space: The search space whose conditions decide which genes are active.

    Example:
        >>> from nastools.space import Condition, SearchSpace
        >>> space = SearchSpace({"d": [1, 2], "k_1": [3, 5]}, [Condition("k_1", "d", (2,))])
        >>> CanonicalRepair(space)._do(None, np.array([[0, 1], [1, 1]])).tolist()  # d=1 leaves k_1 unused
        [[0, 0], [1, 1]]
    """

    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        self.space = space

    def _do(self, problem: Problem | None, X: np.ndarray, **kwargs: Any) -> np.ndarray:
        return self.space.canonical_x(X)


class ExactDuplicateElimination(DuplicateElimination):
    """pymoo's duplicate elimination for integer genes, by hashing rows instead of pairwise distances.

    ``DefaultDuplicateElimination`` compares every pair of individuals (a distance matrix per
    generation, most of an inner search's own cost at 50 individuals); equal integer rows are the
    same network once :class:`CanonicalRepair` has run, so a set of rows decides the same in linear
    time. As pymoo's, it keeps the first of equal rows within a population.

    Example:
        >>> from pymoo.core.population import Population
        >>> pop = Population.new(X=np.array([[0, 1], [1, 1], [0, 1]]))
        >>> other = Population.new(X=np.array([[1, 1]]))
        >>> [ind.X.tolist() for ind in ExactDuplicateElimination().do(pop, other)]
        [[0, 1]]
    """

    def _do(self, pop: Any, other: Any, is_duplicate: np.ndarray) -> np.ndarray:
        rows = [row.tobytes() for row in np.asarray(self.func(pop)).astype(np.int64)]
        if other is None:
            seen: set[bytes] = set()
            for i, row in enumerate(rows):
                if row in seen:
                    is_duplicate[i] = True
                seen.add(row)
        else:
            known = {row.tobytes() for row in np.asarray(self.func(other)).astype(np.int64)}
            is_duplicate |= np.fromiter((row in known for row in rows), dtype=bool, count=len(rows))
        return is_duplicate
