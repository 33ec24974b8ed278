"""Validation-only evolutionary search: a pymoo algorithm driven by ask/tell, every individual measured."""

# pymoo's names: X is the decision matrix (choice indices), F the objective matrix.
# ruff: noqa: N803, N806

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from pymoo.core.evaluator import Evaluator as PymooEvaluator
from pymoo.core.population import Population
from pymoo.problems.static import StaticProblem

from nastools.objectives import Objective
from nastools.search._algorithms import check_algorithm_options, make_algorithm
from nastools.search._problem import ArchProblem
from nastools.search._tactic import Tactic, check_count
from nastools.space import Arch, SearchSpace

__all__ = ["EvolutionarySearch"]


def _not_called(archs: Any) -> dict:
    raise RuntimeError("EvolutionarySearch evaluates through tell(), not through the problem")


class EvolutionarySearch(Tactic):
    """NSGA-II (or another pymoo algorithm by name) where every individual is validated.

    Each generation's offspring are asked for; individuals that were validated before are answered
    from memory without spending budget.

    Args:
        space: The search space.
        objectives: E.g. ``{"top1": "max", "macs": "min"}``.
        budget: Validations allowed.
        algorithm: A name from :data:`~nastools.search.ALGORITHMS`.
        pop_size: Population size.
        algorithm_options: Extra keyword arguments for :func:`make_algorithm` (not its own ``pop_size``,
            ``seed``, ``initial_X`` or ``n_objectives``: the tactic sets those).
        seed: Seed of the algorithm.
        initial_archs: The first population (warm start).

    Example:
        >>> from nastools.space import SearchSpace
        >>> space = SearchSpace({f"k_{i}": [3, 5, 7] for i in range(6)})
        >>> tactic = EvolutionarySearch(space, {"acc": "max", "cost": "min"}, 30, pop_size=6)
        >>> len(tactic.ask())
        6
    """

    name = "nsga2"

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, str] | Iterable[Objective],
        budget: int,
        *,
        algorithm: str = "nsga2",
        pop_size: int = 50,
        algorithm_options: Mapping[str, Any] | None = None,
        seed: int = 0,
        initial_archs: Sequence[Arch] | None = None,
    ) -> None:
        super().__init__(space, objectives, budget, seed=seed, initial_archs=initial_archs)
        self.pop_size = check_count("pop_size", pop_size)
        self.algorithm = algorithm
        self.algorithm_options = dict(algorithm_options or {})
        check_algorithm_options(algorithm, self.algorithm_options)
        initial_X = None if self.initial_archs is None else self.space.encode(self.initial_archs)
        self._engine = make_algorithm(
            algorithm,
            self.space,
            pop_size=self.pop_size,
            n_objectives=len(self.objectives),
            seed=self.seed,
            initial_X=initial_X,
            **self.algorithm_options,
        )
        self._problem = ArchProblem(self.space, self.objectives, _not_called)
        self._engine.setup(self._problem, termination=("n_gen", 10**9), seed=self.seed)
        self._infills: Population | None = None

    def _propose(self) -> list[Arch]:
        self._infills = self._engine.ask()
        X = self.space.canonical_x(np.asarray(self._infills.get("X")).astype(np.int64))
        self._infills.set("X", X)
        return self.space.decode(X)

    def _receive(self, archs: list[Arch], values: dict[str, np.ndarray]) -> None:
        if len(archs) < len(self._infills):  # the budget ran out mid-generation
            return
        by_key = {self.space.key(a): i for i, a in enumerate(archs)}
        infill_keys = [self.space.key(a) for a in self.space.decode(self._infills.get("X"))]
        rows = [by_key[key] for key in infill_keys]
        F = self._F(values)[rows]
        PymooEvaluator().eval(StaticProblem(self._problem, F=F), self._infills)
        self._engine.tell(infills=self._infills)

    def population(self, size: int | None = None) -> list[Arch]:
        """The algorithm's current population (its survivors), or the best validated before it has one."""
        pop = self._engine.pop
        if pop is None or len(pop) == 0 or pop.get("F") is None or pop.get("F")[0] is None:
            return super().population(size or self.pop_size)
        return self.space.decode(np.asarray(pop.get("X")).astype(np.int64))
