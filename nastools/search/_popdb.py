"""PopDB: cluster an earlier search's history with HDBSCAN and drop rarely chosen parameter values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nastools.search._tactic import check_count
from nastools.space import SearchSpace

__all__ = ["PopDBResult", "popdb_space"]


@dataclass
class PopDBResult:
    """A constrained search space and how it was found.

    Attributes:
        space: The constrained space (every tactic accepts it).
        removed: ``{parameter: [values removed]}`` for the parameters that lost values.
        frequencies: One row per parameter value: ``parameter``, ``value``, ``frequency`` (share
            among the clustered points where the parameter is active), ``kept``.
        labels: HDBSCAN's cluster label per clustered arch (``-1`` = noise), aligned with ``sample``.
        sample: Indices into the input archs of the points HDBSCAN clustered: all of them, or a
            seeded uniform subsample of ``max_points`` for a longer history.
        size_before: Networks in the original space.
        size_after: Networks in the constrained space.
    """

    space: SearchSpace
    removed: dict[str, list]
    frequencies: pd.DataFrame
    labels: np.ndarray
    sample: np.ndarray
    size_before: int
    size_after: int

    @property
    def size_ratio(self) -> float:
        """``size_after / size_before``."""
        return self.size_after / self.size_before


def popdb_space(
    space: SearchSpace,
    archs: Sequence[Mapping[str, int]],
    threshold: float | Mapping[str, float] = 0.01,
    *,
    min_cluster_size: int = 50,
    min_samples: int | None = 10,
    keep: Iterable[str] = (),
    max_points: int | None = 10_000,
    seed: int = 0,
) -> PopDBResult:
    """Constrain ``space`` to the parameter values an earlier search kept choosing.

    HDBSCAN (the ``hdbscan`` package) clusters the archs on their one-hot features; among the
    non-noise points, each parameter value's relative frequency is counted over the points where
    the parameter is active. A value whose frequency does not exceed the parameter's threshold is
    removed; the most frequent value of a parameter is always kept, and a parameter never active
    among the clustered points keeps all its values. The defaults are the paper's (sections 4.6,
    5.3): threshold 1%, ``min_cluster_size=50``, ``min_samples=10``, on the history of a
    100,000-sample NSGA-II on predictors (:func:`~nastools.search.predictor_history`).

    HDBSCAN's cost grows with the square of the number of points on these features (more than 60
    columns: Prim's minimum spanning tree). On ``digits-mbv3``'s 187 features it took 5.5 s of CPU
    for 5,000 points and 93 s for 20,000, so 100,000 would take about 40 minutes. A history longer
    than ``max_points`` is therefore clustered on a seeded uniform subsample of ``max_points`` archs
    (repeats kept, so the archs a search kept returning to still weigh more); ``sample`` says which.

    Args:
        space: The space the archs come from.
        archs: What the earlier search visited: :func:`~nastools.search.predictor_history`, or a
            recorded history such as ``store.history(search_id)``'s archs.
        threshold: A share in (0, 1) for every parameter, or ``{parameter: share}`` (others 0.01).
        min_cluster_size: HDBSCAN's smallest cluster.
        min_samples: HDBSCAN's density parameter (None: ``min_cluster_size``).
        keep: Parameters left with all their values, e.g. ``("r",)`` when the earlier search's
            cost ignores the input resolution (parameters) but the next one's does not (MACs).
        max_points: Most archs clustered (None: all of them, however slow).
        seed: Seed of the subsample.

    Returns:
        The constrained space and a report (:class:`PopDBResult`).

    Raises:
        ValueError: For a threshold outside (0, 1), an unknown parameter, too few archs or a
            ``max_points`` below ``min_cluster_size``.

    Example:
        >>> from nastools.space import SearchSpace
        >>> space = SearchSpace({f"k_{i}": [3, 5, 7] for i in range(6)})
        >>> archs = [dict(a, k_0=7) for a in space.sample(200, rng=0)]
        >>> popdb_space(space, archs).removed.get("k_0")
        [3, 5]
    """
    thresholds = {name: 0.01 for name in space.names}
    given = threshold if isinstance(threshold, Mapping) else dict.fromkeys(space.names, threshold)
    for name, share in given.items():
        if name not in space.choices:
            raise ValueError(f"threshold given for unknown parameter {name!r}")
        if not (isinstance(share, (int, float)) and 0.0 < share < 1.0):
            raise ValueError(f"PopDB threshold for {name!r} must lie in (0, 1), got {share!r}")
        thresholds[name] = float(share)
    keep = set(keep)
    if unknown := sorted(keep - set(space.names)):
        raise ValueError(f"keep names unknown parameter(s) {unknown}")
    min_cluster_size = check_count("min_cluster_size", min_cluster_size, minimum=2)
    if min_samples is not None:
        min_samples = check_count("min_samples", min_samples)
    needed = max(min_cluster_size, min_samples or 0, 2)
    if max_points is not None and check_count("max_points", max_points) < needed:
        raise ValueError(f"max_points={max_points} is below the {needed} archs HDBSCAN needs here")
    archs = [space.canonical(a) for a in archs]
    if len(archs) < needed:
        raise ValueError(
            f"PopDB needs at least {needed} archs to cluster (min_cluster_size={min_cluster_size}, "
            f"min_samples={min_samples}), got {len(archs)}: give a longer history (predictor_history) "
            "or smaller HDBSCAN settings"
        )
    sample = np.arange(len(archs))
    if max_points is not None and len(archs) > max_points:
        sample = np.sort(np.random.default_rng(seed).choice(len(archs), size=max_points, replace=False))
        archs = [archs[i] for i in sample]

    import hdbscan  # imported here: it is slow to import and only PopDB needs it

    features = space.features(archs)
    clusterer = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples)
    labels = clusterer.fit_predict(features)
    clustered = [a for a, label in zip(archs, labels) if label >= 0] or archs

    rows, allowed, removed = [], {}, {}
    for name in space.names:
        active = [a[name] for a in clustered if space.is_active(a, name)]
        choices = space.choices[name]
        counts = np.array([active.count(v) for v in choices], dtype=np.float64)
        share = counts / counts.sum() if counts.sum() else np.ones(len(choices))
        kept = share > thresholds[name] if name not in keep else np.ones(len(choices), dtype=bool)
        kept[int(np.argmax(share))] = True
        for value, s, k in zip(choices, share, kept):
            rows.append({"parameter": name, "value": value, "frequency": float(s), "kept": bool(k)})
        if not kept.all():
            allowed[name] = [v for v, k in zip(choices, kept) if k]
            removed[name] = [v for v, k in zip(choices, kept) if not k]
    constrained = space.restrict(allowed)
    return PopDBResult(
        space=constrained,
        removed=removed,
        frequencies=pd.DataFrame(rows),
        labels=np.asarray(labels),
        sample=sample,
        size_before=space.size,
        size_after=constrained.size,
    )
