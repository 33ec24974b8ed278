"""Warm-start: read the best population of an earlier search back from the store."""

from __future__ import annotations

from nastools.space import Arch, SearchSpace
from nastools.store import ResultStore

__all__ = ["best_population"]


def best_population(store: ResultStore, search_id: str, space: SearchSpace) -> list[Arch]:
    """The last recorded population of ``search_id``, as archs of ``space``: a warm start.

    Pass it as ``initial_archs`` to any tactic, typically for another hardware config or batch
    size than the one it was found for.

    Raises:
        ValueError: If the search does not exist in ``store`` or recorded no population.

    Example:
        >>> archs = best_population(store, "nsga2-cpu-t1-b1", supernet.space)  # doctest: +SKIP
        >>> ConcurrentNAS(supernet.space, objectives, 500, initial_archs=archs)  # doctest: +SKIP
    """
    keys = store.population(search_id)
    if not keys:
        raise ValueError(f"search {search_id!r} in {store.path} recorded no population to warm-start from")
    return [space.from_key(key) for key in keys]
