"""Hypervolume in a fixed normalised box, and the Pareto-front mask."""

# pymoo's names: X is the decision matrix (choice indices), F the objective matrix.
# ruff: noqa: N803, N806

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from nastools.metrics import _bounds_pair
from nastools.objectives import Objective, parse_objectives

__all__ = ["HypervolumeIndicator", "pareto_front_mask"]


class HypervolumeIndicator:
    """Hypervolume of objective values in a box fixed by ``bounds``, so values are comparable.

    Each objective is scaled to ``[0, 1]`` by its bounds, maximised objectives flipped so that 0
    is best in every dimension, and the hypervolume is taken against the reference point
    ``(1, ..., 1)``; it lies in ``[0, 1]``. A point worse than a bound in any objective (an
    infinite latency included) lies outside the box and contributes nothing; a value better than a
    bound (an infinite one included) counts as the bound, and :attr:`n_clipped` counts such values
    in the last call (when it grows, the box is too small to tell fronts apart: give the metric
    declared bounds, see :class:`~nastools.metrics.Metric`). A NaN value is an error: it is no
    measurement.

    Args:
        objectives: E.g. ``{"top1": "max", "macs": "min"}``.
        bounds: ``{label: (low, high)}`` for every objective, in natural units; finite, with
            ``low < high``.

    Raises:
        ValueError: A missing, NaN, infinite or empty (``low >= high``) bound, or one that is not a
            pair of numbers.

    Example:
        >>> hv = HypervolumeIndicator({"top1": "max", "macs": "min"},
        ...                           {"top1": (0.0, 1.0), "macs": (0.0, 100.0)})
        >>> hv({"top1": [0.75, 0.5], "macs": [50.0, 25.0]})
        0.5
    """

    def __init__(
        self,
        objectives: Mapping[str, str] | Iterable[Objective],
        bounds: Mapping[str, tuple[float, float]],
    ) -> None:
        self.objectives = parse_objectives(objectives)
        low, high = [], []
        for objective in self.objectives:
            if objective.label not in bounds:
                raise ValueError(f"no bounds given for objective {objective.label!r}")
            lo, hi = _bounds_pair(bounds[objective.label], f"bounds for {objective.label!r}")
            if not (np.isfinite(lo) and np.isfinite(hi)):
                raise ValueError(
                    f"bounds for {objective.label!r} must be finite numbers, got ({lo}, {hi}): give the "
                    "metric's real range, or measure the space's extremes (analysis.reference_bounds)"
                )
            if not hi > lo:
                raise ValueError(f"bounds for {objective.label!r} must satisfy low < high, got ({lo}, {hi})")
            low.append(lo)
            high.append(hi)
        self.bounds = {o.label: (lo, hi) for o, lo, hi in zip(self.objectives, low, high)}
        self.n_clipped = 0
        self._low, self._high = np.array(low), np.array(high)
        self._maximise = np.array([o.direction == "max" for o in self.objectives])
        self._hv = HV(ref_point=np.ones(len(self.objectives)))

    def normalize(self, values: Mapping[str, Any] | pd.DataFrame) -> np.ndarray:
        """Objective values as an ``(n, n_objectives)`` array in the unit box (0 best), unclipped.

        Raises:
            ValueError: ``values`` is not a mapping or DataFrame, lacks an objective, its columns
                differ in length, or a value is NaN.
        """
        labels = [o.label for o in self.objectives]
        if not isinstance(values, (Mapping, pd.DataFrame)):
            raise ValueError(
                f"values must be a dict of objective label to values, or a DataFrame with columns {labels}; "
                f"got {type(values).__name__}"
            )
        columns = []
        for label in labels:
            if label not in values:
                raise ValueError(f"values have no column for objective {label!r}")
            columns.append(np.asarray(values[label], dtype=np.float64).reshape(-1))
        lengths = {label: len(column) for label, column in zip(labels, columns)}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"values have columns of different lengths {lengths}: give one value per arch")
        for label, column in zip(labels, columns):
            if np.isnan(column).any():
                rows = np.flatnonzero(np.isnan(column)).tolist()
                raise ValueError(
                    f"values of {label!r} are NaN in row(s) {rows[:5]}: drop those archs or measure them anew"
                )
        V = np.column_stack(columns) if columns[0].size else np.empty((0, len(columns)))
        scaled = (V - self._low) / (self._high - self._low)
        return np.where(self._maximise, 1.0 - scaled, scaled)

    def __call__(self, values: Mapping[str, Any] | Any) -> float:
        """Hypervolume of ``values`` (a mapping of arrays or a DataFrame with the objective columns)."""
        F = self.normalize(values)
        F = F[np.all(F < 1.0, axis=1)]  # outside the box; a value better than a bound (-inf too) is clipped
        self.n_clipped = int((F < 0.0).sum())
        if len(F) == 0:
            return 0.0
        return float(self._hv(np.clip(F, 0.0, None)))


def pareto_front_mask(F: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``F`` (all objectives minimised).

    Example:
        >>> pareto_front_mask(np.array([[1, 2], [2, 1], [2, 2]])).tolist()
        [True, True, False]
    """
    F = np.atleast_2d(np.asarray(F, dtype=np.float64))
    mask = np.zeros(len(F), dtype=bool)
    if len(F):
        mask[NonDominatedSorting().do(F, only_non_dominated_front=True)] = True
    return mask
