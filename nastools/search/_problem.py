"""The pymoo problem: integer choice genes in, one objective column per metric out."""

# pymoo's names: X is the decision matrix (choice indices), F the objective matrix.
# ruff: noqa: N803, N806

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from pymoo.core.problem import Problem

from nastools.objectives import Objective, parse_objectives
from nastools.space import Arch, SearchSpace

__all__ = ["ArchProblem"]

EvaluateFn = Callable[[Any], Mapping[str, Any]]


class ArchProblem(Problem):
    """A vectorised pymoo problem over a :class:`~nastools.space.SearchSpace`.

    Gene ``j`` is the choice index of parameter ``space.names[j]`` (``0 .. n_choices[j] - 1``).
    ``evaluate`` is called once per population with the canonical archs (or, with
    ``pass_x=True``, the canonical integer matrix, which lets predictors skip the dicts; see
    :meth:`SearchSpace.features_x`) and returns one array per objective label. Maximised objectives
    are negated in ``F`` because pymoo minimises; :meth:`values` undoes that.

    Args:
        space: The search space.
        objectives: E.g. ``{"top1": "max", "macs": "min"}`` (see :func:`parse_objectives`).
        evaluate: ``archs -> {name: array of len(archs)}``; extra keys are ignored.
        pass_x: Give ``evaluate`` the canonical ``X`` (int array ``(n, n_var)``) instead of archs.

    Example:
        >>> from nastools.space import SearchSpace
        >>> space = SearchSpace({"d_0": [1, 2], "d_1": [1, 2]})
        >>> def evaluate(archs):
        ...     return {"depth": [a["d_0"] + a["d_1"] for a in archs]}
        >>> problem = ArchProblem(space, {"depth": "max"}, evaluate)
        >>> out = problem.evaluate(np.zeros((2, space.n_var), dtype=int))
        >>> out.ravel().tolist(), problem.values(out)["depth"].tolist()
        ([-2.0, -2.0], [2.0, 2.0])
    """

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, str] | Iterable[Objective],
        evaluate: EvaluateFn,
        *,
        pass_x: bool = False,
    ) -> None:
        self.space = space
        self.objectives = parse_objectives(objectives)
        self.evaluate_fn = evaluate
        self.pass_x = pass_x
        self._signs = np.array([o.sign for o in self.objectives])
        super().__init__(
            n_var=space.n_var,
            n_obj=len(self.objectives),
            xl=np.zeros(space.n_var, dtype=np.int64),
            xu=space.n_choices - 1,
            vtype=int,
        )

    @property
    def labels(self) -> tuple[str, ...]:
        """Objective labels, in the order of ``F``'s columns."""
        return tuple(o.label for o in self.objectives)

    def decode(self, X: np.ndarray) -> list[Arch]:
        """Canonical archs for the rows of ``X`` (floats are rounded)."""
        return self.space.decode(np.atleast_2d(X))

    def _evaluate(self, X: np.ndarray, out: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        X = self.space.canonical_x(np.atleast_2d(X))
        result = self.evaluate_fn(X if self.pass_x else self.space.decode(X))
        F = np.empty((len(X), self.n_obj), dtype=np.float64)
        for j, objective in enumerate(self.objectives):
            if objective.label not in result:
                raise ValueError(
                    f"evaluate returned no values for objective {objective.label!r} (got {sorted(result)})"
                )
            column = np.asarray(result[objective.label], dtype=np.float64).reshape(-1)
            if len(column) != len(X):
                raise ValueError(
                    f"evaluate returned {len(column)} values for objective {objective.label!r}, "
                    f"expected {len(X)}"
                )
            F[:, j] = objective.sign * column
        out["F"] = F

    def values(self, F: np.ndarray) -> dict[str, np.ndarray]:
        """Objective values in natural units (maximised objectives un-negated), by name."""
        F = np.atleast_2d(np.asarray(F, dtype=np.float64))
        if F.shape[1] != self.n_obj:
            raise ValueError(f"F has {F.shape[1]} columns, the problem has {self.n_obj} objectives")
        natural = F * self._signs
        return {label: natural[:, j] for j, label in enumerate(self.labels)}
