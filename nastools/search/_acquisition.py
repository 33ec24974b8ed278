"""Choosing a batch to validate by expected hypervolume improvement over the validated front.

ConcurrentNAS's inner search on the predictors returns many candidate archs with a predicted mean
(and, from an uncertainty-aware predictor, a standard deviation) per predicted objective, and exact
values for the objectives computed in closed form. :func:`select_by_ehvi` picks ``q`` of them
greedily: each time the candidate whose expected hypervolume improvement (EHVI) over the current
front is largest, then adds its predicted point to the front ("Kriging believer") so that the
next pick goes elsewhere. Two objectives are computed exactly on the staircase of the front (the
usual case: a task metric against a cost); the expectation over a normal predictive distribution
uses Gauss-Hermite quadrature per uncertain objective.
"""

# F: minimised objective matrix (pymoo's convention), rows = points.
# ruff: noqa: N803, N806

from __future__ import annotations

import numpy as np

from nastools.hypervolume import pareto_front_mask

__all__ = ["expected_improvement", "hypervolume_improvement", "select_by_ehvi"]

#: Gauss-Hermite nodes per uncertain objective (probabilists' weights, normalised).
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(9)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def hypervolume_improvement(front: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The hypervolume each of ``points`` would add to ``front`` alone (two minimised objectives).

    Everything is in the unit box with reference point ``(1, 1)``: values beyond 1 add nothing,
    values below 0 count as 0.

    Args:
        front: ``(m, 2)`` points already there (dominated ones allowed).
        points: ``(n, 2)`` points to score.

    Returns:
        ``(n,)`` improvements, 0 for a point the front dominates.

    Example:
        >>> front = np.array([[0.5, 0.5]])
        >>> hypervolume_improvement(front, np.array([[0.25, 0.75], [0.6, 0.6], [0.0, 0.0]])).tolist()
        [0.0625, 0.0, 0.75]
    """
    points = np.clip(np.asarray(points, dtype=np.float64), 0.0, 1.0)
    a, b = points[:, 0], points[:, 1]
    front = np.asarray(front, dtype=np.float64).reshape(-1, 2)
    front = np.clip(front[np.all(front < 1.0, axis=1)], 0.0, 1.0)
    if not len(front):
        return (1.0 - a) * (1.0 - b)
    order = np.argsort(front[:, 0], kind="stable")
    # the front's staircase: below x = edges[k + 1] (from edges[k]) it dominates y >= heights[k]
    edges = np.concatenate([[0.0], front[order, 0], [1.0]])
    heights = np.concatenate([[1.0], np.minimum.accumulate(front[order, 1])])
    improvement = np.zeros(len(points))
    for k in range(len(heights)):  # at most a few dozen steps: a loop over the front, vectorised over points
        start = np.maximum(a, edges[k])
        width = np.maximum(edges[k + 1] - start, 0.0)
        improvement += width * np.maximum(heights[k] - b, 0.0)
    return improvement


def expected_improvement(front: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Expected :func:`hypervolume_improvement` of points with independent normal objectives.

    Args:
        front: ``(m, 2)`` front in the unit box.
        mean: ``(n, 2)`` predicted means (exact objectives: their values).
        std: ``(n, 2)`` predicted standard deviations (0 for exact objectives).

    Example:
        >>> front = np.array([[0.5, 0.5]])
        >>> sure = expected_improvement(front, np.array([[0.6, 0.6]]), np.zeros((1, 2)))
        >>> unsure = expected_improvement(front, np.array([[0.6, 0.6]]), np.array([[0.2, 0.0]]))
        >>> float(sure[0]), bool(unsure[0] > 0)
        (0.0, True)
    """
    mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    uncertain = [j for j in range(mean.shape[1]) if np.any(std[:, j] > 0)]
    if not uncertain:
        return hypervolume_improvement(front, mean)
    total = np.zeros(len(mean))
    grids = np.meshgrid(*[np.arange(len(_NODES))] * len(uncertain), indexing="ij")
    for nodes in zip(*(g.ravel() for g in grids)):
        sample = mean.copy()
        weight = 1.0
        for j, node in zip(uncertain, nodes):
            sample[:, j] += _NODES[node] * std[:, j]
            weight *= _WEIGHTS[node]
        total += weight * hypervolume_improvement(front, sample)
    return total


def select_by_ehvi(
    validated_F: np.ndarray,
    mean_F: np.ndarray,
    std_F: np.ndarray,
    q: int,
    rng: np.random.Generator,
) -> list[int]:
    """Indices of ``q`` candidates picked greedily by expected hypervolume improvement.

    The box is the validated values' range, extended down to the candidates' optimistic values
    (mean minus two standard deviations) so that going beyond today's extremes counts, with the
    reference point 10% beyond the validated worst. After each pick its predicted mean joins the
    front. When no candidate is expected to improve the front any more, the rest of the batch are
    the most uncertain remaining candidates (then random ones): a batch is never smaller than ``q``
    while candidates last.

    Args:
        validated_F: ``(m, 2)`` minimised objectives of the validated archs.
        mean_F: ``(n, 2)`` candidates' predicted (or exact) minimised objectives.
        std_F: ``(n, 2)`` their standard deviations (0 where exact).
        q: Batch size.
        rng: Breaks ties among equally uncertain candidates.

    Raises:
        ValueError: Not two objectives (this acquisition is for a metric against a cost).
    """
    if validated_F.shape[1] != 2:
        raise ValueError(
            f"expected-hypervolume-improvement batches need 2 objectives, got {validated_F.shape[1]}: use "
            "acquisition='population' (the paper's) for more"
        )
    q = min(q, len(mean_F))
    if q <= 0:
        return []
    low = np.minimum(validated_F.min(axis=0), (mean_F - 2.0 * std_F).min(axis=0))
    worst = validated_F.max(axis=0)
    span = np.where(worst > low, worst - low, 1.0)
    scale = worst + 0.1 * span - low

    def unit(F: np.ndarray) -> np.ndarray:
        return (F - low) / scale

    front = unit(validated_F)
    front = front[pareto_front_mask(front)]
    mean, std = unit(mean_F), std_F / scale
    chosen: list[int] = []
    taken = np.zeros(len(mean), dtype=bool)
    while len(chosen) < q:
        score = expected_improvement(front, mean, std)
        score[taken] = -1.0
        best = int(np.argmax(score))
        if score[best] <= 0.0:
            break
        chosen.append(best)
        taken[best] = True
        front = np.vstack([front, mean[best]])
        front = front[pareto_front_mask(front)]
    if len(chosen) < q:  # nothing promises improvement: explore where the predictors know least
        spread = std.sum(axis=1) + rng.random(len(std)) * 1e-12
        spread[taken] = -1.0
        chosen += [int(i) for i in np.argsort(-spread, kind="stable")[: q - len(chosen)]]
    return chosen
