"""Hypervolume boxes: from the space's extremes, or from metric ranges the supernet declares."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping

from nastools.evaluation import Evaluator
from nastools.hypervolume import HypervolumeIndicator
from nastools.objectives import Objective, parse_objectives
from nastools.space import SearchSpace

__all__ = ["hypervolume_indicator", "reference_bounds"]


def reference_bounds(
    evaluator: Evaluator,
    objectives: Mapping[str, str] | Iterable[Objective],
    *,
    space: SearchSpace | None = None,
    margin: float = 0.05,
) -> dict[str, tuple[float, float]]:
    """Hypervolume bounds per objective: a metric's declared range, else its values at the extremes.

    The extremes are the smallest and the largest sub-network of ``space`` (the supernet's
    :meth:`~nastools.supernet.Supernet.extremes`; for a restricted space such as PopDB's, its own
    extremes). An objective without declared bounds (:attr:`Metric.bounds
    <nastools.metrics.Metric.bounds>`) spans its values there, widened by ``margin`` of that range
    on both sides: the reference point (the worst corner) lies a little beyond the smallest
    network's accuracy and the largest network's cost, so that every sensible sub-network lies
    inside and hypervolumes of different tactics and seeds on one problem are comparable. The two
    extremes are measured through ``evaluator`` (validations that count for no tactic).

    Raises:
        ValueError: ``space`` has other parameters than the supernet's, or ``margin`` is negative,
            NaN or infinite.

    Example:
        >>> bounds = reference_bounds(evaluator, {"top1": "max", "macs": "min"})  # doctest: +SKIP
        >>> hv = HypervolumeIndicator({"top1": "max", "macs": "min"}, bounds)  # doctest: +SKIP
    """
    if isinstance(margin, bool) or not isinstance(margin, numbers.Real) or not 0 <= margin < math.inf:
        raise ValueError(f"margin must be a finite number >= 0 (e.g. 0.05: 5% of the range), got {margin!r}")
    objectives = parse_objectives(objectives)
    supernet = evaluator.supernet
    space = space if space is not None else supernet.space
    if space.names != supernet.space.names:
        raise ValueError("space must be the supernet's space or a restriction of it (same parameters)")
    declared = {o.label: supernet.metric(o.metric).bounds for o in objectives}
    measured = [o for o in objectives if declared[o.label] is None]
    values = (
        evaluator.values(list(supernet.extremes(space)), measured, search_id="reference-bounds")
        if measured
        else {}
    )
    bounds = {}
    for objective in objectives:
        if declared[objective.label] is not None:
            bounds[objective.label] = declared[objective.label]
            continue
        low, high = sorted(float(v) for v in values[objective.label])
        pad = margin * (high - low) if high > low else max(abs(high), 1.0) * margin
        bounds[objective.label] = (low - pad, high + pad)
    return bounds


def hypervolume_indicator(
    evaluator: Evaluator,
    objectives: Mapping[str, str] | Iterable[Objective],
    *,
    space: SearchSpace | None = None,
) -> HypervolumeIndicator:
    """A :class:`~nastools.hypervolume.HypervolumeIndicator` in the box of :func:`reference_bounds`."""
    return HypervolumeIndicator(objectives, reference_bounds(evaluator, objectives, space=space))
