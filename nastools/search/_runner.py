"""Driving a tactic: measure what it asks through the Evaluator and the store, tell it the values."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from nastools.evaluation import HARDWARE_METRICS, METRICS, Evaluator, wide
from nastools.search._objectives import Objective, parse_objectives
from nastools.search._tactic import Tactic

__all__ = ["measure_objectives", "objective_metrics", "reference_bounds", "run_tactic"]


def objective_metrics(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split objective names into the Evaluator's metrics and hardware keys.

    ``"latency_ms@cpu-t1-b1"`` is the latency on hardware ``cpu-t1-b1``; other names are metrics.

    Example:
        >>> objective_metrics(["top1", "latency_ms@cpu-t1-b1"])
        (['top1', 'latency_ms'], ['cpu-t1-b1'])

    Raises:
        ValueError: For a name the Evaluator does not measure or a latency without ``@hardware``.
    """
    metrics, hardware = [], []
    for name in names:
        metric, _, key = name.partition("@")
        if metric not in METRICS:
            raise ValueError(
                f"objective {name!r} is not a measured metric; use one of {list(METRICS)} "
                "(per hardware: 'latency_ms@cpu-t1-b1')"
            )
        if metric in HARDWARE_METRICS and not key:
            raise ValueError(f"objective {name!r} needs a hardware key, e.g. '{metric}@cpu-t1-b1'")
        if metric not in HARDWARE_METRICS and key:
            raise ValueError(f"objective {name!r}: {metric!r} does not depend on hardware; drop '@{key}'")
        metrics.append(metric)
        if key:
            hardware.append(key)
    return list(dict.fromkeys(metrics)), list(dict.fromkeys(hardware))


def measure_objectives(
    evaluator: Evaluator,
    archs: Sequence[Mapping[str, int]],
    names: Iterable[str],
    search_id: str | None = None,
) -> dict[str, np.ndarray]:
    """Measure objective columns (``top1``, ``macs``, ``latency_ms@cpu-t1-b1`` …) of ``archs``.

    Every measurement goes through ``evaluator`` (and so into its store, or comes from it).

    Returns:
        One array per name, aligned with ``archs``.
    """
    names = list(names)
    metrics, hardware = objective_metrics(names)
    table = wide(evaluator.measure(archs, metrics, hardware, search_id=search_id)).set_index("arch")
    keys = [evaluator.supernet.space.key(arch) for arch in archs]
    return {name: table.loc[keys, name].to_numpy(dtype=np.float64) for name in names}


def reference_bounds(
    evaluator: Evaluator,
    objectives: Mapping[str, str] | Iterable[Objective],
    margin: float = 0.05,
) -> dict[str, tuple[float, float]]:
    """Hypervolume bounds from the supernet's smallest and largest sub-networks.

    Each objective's box runs between its values at the smallest and the largest sub-network (every
    parameter at its first or its last choice; choices are listed in increasing order),
    widened by ``margin`` of that range on both sides: the reference point (the worst corner) is a
    little worse than the smallest network's accuracy and the largest network's cost, so every
    sensible sub-network lies inside and HV values of different tactics and seeds on one problem
    are comparable. Both extreme archs are measured through ``evaluator`` (two validations that
    count for no tactic).

    Example:
        >>> bounds = reference_bounds(evaluator, {"top1": "max", "macs": "min"})  # doctest: +SKIP
        >>> hv = HypervolumeIndicator({"top1": "max", "macs": "min"}, bounds)  # doctest: +SKIP
    """
    objectives = parse_objectives(objectives)
    space = evaluator.supernet.space
    extremes = [{n: c[0] for n, c in space.choices.items()}, {n: c[-1] for n, c in space.choices.items()}]
    values = measure_objectives(
        evaluator, extremes, [o.name for o in objectives], search_id="reference-bounds"
    )
    bounds = {}
    for o in objectives:
        low, high = sorted(float(v) for v in values[o.name])
        pad = margin * (high - low) if high > low else max(abs(high), 1.0) * margin
        bounds[o.name] = (low - pad, high + pad)
    return bounds


def run_tactic(
    tactic: Tactic,
    evaluator: Evaluator,
    *,
    search_id: str | None = None,
    progress: bool = True,
) -> Tactic:
    """Run ``tactic`` to its end: measure each batch it asks for through ``evaluator``, tell it.

    With a store on the evaluator and a ``search_id``, the search is registered (tactic name and
    config) and the tactic's population after each batch is recorded as a generation, which
    :func:`best_population` (warm-start) and PopDB read. Every measurement is committed as it is
    made, so a run killed mid-way and started again with the same arguments re-asks the same archs,
    finds them in the store, measures nothing twice and ends with the same front (for objectives
    that are not timing measurements).

    Args:
        tactic: A fresh tactic.
        evaluator: Measures the objectives (``top1``, ``macs``, ``latency_ms@<hardware>`` …).
        search_id: Name under which the search is stored; None records no search.
        progress: Show a tqdm bar of validations.

    Returns:
        The tactic, finished: see :meth:`Tactic.results` and :meth:`Tactic.trace_frame`;
        ``tactic.seconds`` holds the wall time spent measuring (``"measure"``) and deciding what to
        measure (``"search"``: predictors, inner searches, bookkeeping).

    Raises:
        ValueError: For objectives the evaluator cannot measure, or a ``search_id`` stored with
            other settings.
    """
    names = list(tactic.names)
    objective_metrics(names)
    store = evaluator.store
    recording = store is not None and search_id is not None
    if recording:
        store.start_search(search_id, evaluator.supernet.supernet_id, tactic.name, tactic.config())
    bar = tqdm(
        total=tactic.n_validations_max, desc=tactic.name, unit="val", disable=not progress, leave=False
    )
    generation = 0
    try:
        while True:
            start = time.perf_counter()
            archs = tactic.ask()
            tactic.seconds["search"] += time.perf_counter() - start
            if not archs:
                break
            start = time.perf_counter()
            values = measure_objectives(evaluator, archs, names, search_id=search_id)
            tactic.seconds["measure"] += time.perf_counter() - start
            start = time.perf_counter()
            tactic.tell(archs, values)
            tactic.seconds["search"] += time.perf_counter() - start
            bar.update(tactic.n_validations - bar.n)
            if recording:
                store.record_population(
                    search_id, generation, [tactic.space.key(a) for a in tactic.population()]
                )
            generation += 1
    finally:
        bar.close()
    return tactic
