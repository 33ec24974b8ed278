"""PopDB: cluster an earlier search's history with HDBSCAN and drop rarely chosen parameter values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

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
        labels: HDBSCAN's cluster label per input arch (``-1`` = noise).
        size_before: Networks in the original space.
        size_after: Networks in the constrained space.
    """

    space: SearchSpace
    removed: dict[str, list]
    frequencies: pd.DataFrame
    labels: np.ndarray
    size_before: int
    size_after: int

    @property
    def size_ratio(self) -> float:
        """``size_after / size_before``."""
        return self.size_after / self.size_before


def popdb_space(
    space: SearchSpace,
    archs: Sequence[Mapping[str, int]],
    threshold: float | Mapping[str, float] = 0.1,
    *,
    min_cluster_size: int = 10,
    min_samples: int | None = None,
    keep: Iterable[str] = (),
) -> PopDBResult:
    """Constrain ``space`` to the parameter values an earlier search kept choosing.

    HDBSCAN (the ``hdbscan`` package) clusters the archs on their one-hot features; among the
    non-noise points, each parameter value's relative frequency is counted over the points where
    the parameter is active. Values rarer than the parameter's threshold are removed; the most
    frequent value of a parameter is always kept, and a parameter never active among the
    clustered points keeps all its values.

    Args:
        space: The space the archs come from.
        archs: What the earlier search visited, e.g. ``store.history(search_id)``'s archs.
        threshold: A share in (0, 1) for every parameter, or ``{parameter: share}`` (others 0.1).
        min_cluster_size: HDBSCAN's smallest cluster.
        min_samples: HDBSCAN's density parameter (default: ``min_cluster_size``).
        keep: Parameters left with all their values, e.g. ``("r",)`` when the earlier search's
            cost ignores the input resolution (parameters) but the next one's does not (MACs).

    Returns:
        The constrained space and a report (:class:`PopDBResult`).

    Raises:
        ValueError: For a threshold outside (0, 1), an unknown parameter or too few archs.

    Example:
        >>> from nastools.space import SearchSpace
        >>> space = SearchSpace({f"k_{i}": [3, 5, 7] for i in range(6)})
        >>> archs = [dict(a, k_0=7) for a in space.sample(60, rng=0)]
        >>> popdb_space(space, archs, 0.2).removed.get("k_0")
        [3, 5]
    """
    thresholds = {name: 0.1 for name in space.names}
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
    archs = [space.canonical(a) for a in archs]
    if len(archs) < max(min_cluster_size, 2):
        raise ValueError(
            f"PopDB needs at least {max(min_cluster_size, 2)} archs to cluster, got {len(archs)}"
        )

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
        kept = share >= thresholds[name] if name not in keep else np.ones(len(choices), dtype=bool)
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
        size_before=space.size,
        size_after=constrained.size,
    )
