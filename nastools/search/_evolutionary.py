"""Validation-only evolutionary search: a pymoo algorithm driven by ask/tell, every individual measured."""

# pymoo's names: X is the decision matrix (choice indices), F the objective matrix.
# ruff: noqa: N803, N806

from __future__ import annotations

from typing import Any

import numpy as np
from pymoo.core.evaluator import Evaluator as PymooEvaluator
from pymoo.core.population import Population
from pymoo.problems.static import StaticProblem

from nastools._encoding import canonical_x, decode_x
from nastools.search._algorithms import make_algorithm
from nastools.search._problem import ArchProblem
from nastools.search._tactic import Tactic, check_budget
from nastools.space import Arch

__all__ = ["EvolutionarySearch"]


def _not_called(archs: Any) -> dict:
    raise RuntimeError("EvolutionarySearch evaluates through tell(), not through the problem")


class EvolutionarySearch(Tactic):
    """NSGA-II (or another pymoo algorithm by name) where every individual is validated.

    Each generation's offspring are asked for; individuals that were validated before are answered
    from memory without spending budget.

    Args:
        *args: See :class:`Tactic` (space, objectives, n_validations).
        algorithm: A name from :data:`~nastools.search.ALGORITHMS`.
        pop_size: Population size.
        algorithm_options: Extra keyword arguments for :func:`make_algorithm`.
        **kwargs: See :class:`Tactic` (hypervolume, seed, initial_archs: the first population).

    Example:
        >>> from nastools.space import mobilenetv3_space
        >>> tactic = EvolutionarySearch(mobilenetv3_space(), {"top1": "max", "macs": "min"}, 100, pop_size=10)
        >>> len(tactic.ask())
        10
    """

    name = "nsga2"

    def __init__(
        self,
        *args: Any,
        algorithm: str = "nsga2",
        pop_size: int = 50,
        algorithm_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.pop_size = check_budget("pop_size", pop_size)
        self.algorithm_name = algorithm
        self.algorithm_options = dict(algorithm_options or {})
        self.name = algorithm if algorithm != "nsga2" else "nsga2"
        initial_X = None if self.initial_archs is None else self.space.encode(self.initial_archs)
        self.algorithm = make_algorithm(
            algorithm,
            self.space,
            pop_size=self.pop_size,
            n_objectives=len(self.objectives),
            seed=self.seed,
            initial_X=initial_X,
            **self.algorithm_options,
        )
        self.problem = ArchProblem(self.space, self.objectives, _not_called)
        self.algorithm.setup(self.problem, termination=("n_gen", 10**9), seed=self.seed)
        self._infills: Population | None = None

    def config(self) -> dict[str, Any]:  # noqa: D102 - documented on Tactic
        return {
            **super().config(),
            "algorithm": self.algorithm_name,
            "pop_size": self.pop_size,
            "algorithm_options": self.algorithm_options,
        }

    def _propose(self) -> list[Arch]:
        self._infills = self.algorithm.ask()
        X = canonical_x(self.space, np.asarray(self._infills.get("X")).astype(np.int64))
        self._infills.set("X", X)
        return decode_x(self.space, X)

    def _receive(self, archs: list[Arch], values: dict[str, np.ndarray]) -> None:
        if len(archs) < len(self._infills):  # the budget ran out mid-generation
            return
        by_key = {self.space.key(a): i for i, a in enumerate(archs)}
        infill_keys = [self.space.key(a) for a in decode_x(self.space, self._infills.get("X"))]
        rows = [by_key[key] for key in infill_keys]
        F = self._F(values)[rows]
        PymooEvaluator().eval(StaticProblem(self.problem, F=F), self._infills)
        self.algorithm.tell(infills=self._infills)

    def population(self, size: int | None = None) -> list[Arch]:
        """The algorithm's current population (its survivors), or the best validated before it has one."""
        pop = self.algorithm.pop
        if pop is None or len(pop) == 0 or pop.get("F") is None or pop.get("F")[0] is None:
            return super().population(size or self.pop_size)
        return decode_x(self.space, np.asarray(pop.get("X")).astype(np.int64))
