"""Driving a tactic: measure what it asks through the Evaluator and the store, tell it the values."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable

from tqdm.auto import tqdm

from nastools.evaluation import Evaluator
from nastools.search._tactic import Callback, Tactic

__all__ = ["run_tactic"]


def _check_objectives(tactic: Tactic, evaluator: Evaluator) -> None:
    """Raise before anything runs for an objective the evaluator cannot measure.

    Warns (``UserWarning``) for an objective that goes against its metric's declared direction
    (``top1:min``, ``macs:max``): allowed, as a deliberate worst-case search is, but never silent.
    """
    supernet = evaluator.supernet
    if tactic.space.names != supernet.space.names:
        raise ValueError(
            f"the tactic's space has parameters {list(tactic.space.names)[:4]}..., supernet "
            f"{supernet.supernet_id!r} has {list(supernet.space.names)[:4]}...: search a space of this "
            "supernet"
        )
    for objective in tactic.objectives:
        metric = supernet.metric(objective.metric)
        if metric.per_hardware != (objective.hardware is not None):
            need = (
                "needs a hardware key, e.g. 'latency_ms@cpu-t1-b1'"
                if metric.per_hardware
                else "takes no hardware"
            )
            raise ValueError(f"objective {objective.label!r}: {objective.metric!r} {need}")
        if objective.direction != metric.direction:
            better = "higher" if metric.direction == "max" else "lower"
            warnings.warn(
                f"objective {objective.label}:{objective.direction} goes against {metric.name!r}, which "
                f"supernet {supernet.supernet_id!r} declares {metric.direction} ({better} is better): the "
                f"search looks for the worst values; use {objective.label}:{metric.direction} unless that "
                "is what you want",
                UserWarning,
                stacklevel=3,
            )
        if objective.hardware is not None:
            evaluator.hardware(objective.hardware)
        if metric in supernet.metrics:
            supernet.check_metric(metric.name)


def run_tactic(
    tactic: Tactic,
    evaluator: Evaluator,
    *,
    search_id: str | None = None,
    callbacks: Iterable[Callback] = (),
    progress: bool = True,
) -> Tactic:
    """Run ``tactic`` to its end: measure each batch it asks for through ``evaluator``, tell it.

    With a store on the evaluator and a ``search_id``, the search is registered (tactic name and
    config), the archs it validates are recorded in order and its population after each batch is
    recorded as a generation, which :func:`best_population` (warm start) and PopDB read; at the end
    the search is marked finished with the validations spent and the seconds taken
    (:meth:`~nastools.store.ResultStore.finish_search`). Every
    measurement is committed as it is made, so a run killed mid-way and started again with the same
    arguments re-asks the same archs, finds them in the store, measures nothing twice and ends with
    the same front (for objectives that are not timing measurements).

    Args:
        tactic: A fresh tactic.
        evaluator: Measures the objectives.
        search_id: Name under which the search is stored; None records no search.
        callbacks: Called with the tactic after every batch (e.g. a
            :class:`~nastools.search.HypervolumeTrace`).
        progress: Show a tqdm bar of validations.

    Returns:
        The tactic, finished: see :meth:`Tactic.results`; ``tactic.seconds`` holds the wall time spent
        measuring (``"measure"``) and deciding what to measure (``"search"``), and the CPU time of this
        process while deciding (``"search_cpu"``, every thread's, e.g. a library's parallel linear algebra).

    Raises:
        ValueError: For objectives the evaluator cannot measure, or a ``search_id`` stored with
            other settings; raised before anything is measured.
        SearchInProgressError: Another live process runs the search ``search_id`` (see
            :meth:`~nastools.store.ResultStore.start_search`); the search is released when this run
            ends, also on an error or Ctrl+C.
    """
    _check_objectives(tactic, evaluator)
    callbacks = list(callbacks)
    store = evaluator.store
    recording = store is not None and search_id is not None
    if recording:
        store.start_search(search_id, evaluator.supernet.supernet_id, tactic.name, tactic.config())
    bar = tqdm(
        total=tactic.budget, desc=search_id or tactic.name, unit="val", disable=not progress, leave=False
    )
    generation = 0
    tactic.seconds.setdefault("search_cpu", 0.0)
    try:
        while True:
            start, cpu = time.perf_counter(), time.process_time()
            archs = tactic.ask()
            tactic.seconds["search"] += time.perf_counter() - start
            tactic.seconds["search_cpu"] += time.process_time() - cpu
            if not archs:
                break
            start = time.perf_counter()
            values = evaluator.values(archs, tactic.objectives, search_id=search_id)
            tactic.seconds["measure"] += time.perf_counter() - start
            start, cpu = time.perf_counter(), time.process_time()
            before = tactic.n_validated
            tactic.tell(archs, values)
            tactic.seconds["search"] += time.perf_counter() - start
            tactic.seconds["search_cpu"] += time.process_time() - cpu
            bar.update(tactic.n_validated - bar.n)
            if recording:
                store.record_validations(search_id, tactic.validated[before:])
                store.record_population(
                    search_id, generation, [tactic.space.key(a) for a in tactic.population()]
                )
            for callback in callbacks:
                callback(tactic)
            generation += 1
    finally:
        bar.close()
        if recording:  # also on an error or Ctrl+C: another process (or this one) may resume the search
            store.release_search(search_id)
    if recording:
        seconds = {k: round(v, 3) for k, v in tactic.seconds.items()}
        store.finish_search(search_id, {"n_validated": tactic.n_validated, "seconds": seconds})
    return tactic
