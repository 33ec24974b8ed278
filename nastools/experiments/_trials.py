"""Trials: the tactics the notebooks and the benchmark compare, built one way, run and collected.

Two conventions keep the sequence cheap and the comparisons fair:

* **Common random numbers.** Every tactic of a trial starts from the same random population,
  ``space.sample(pop_size, rng=seed)`` (the random search's first batch, ConcurrentNAS's first
  population, the first ``pop_size`` of the full search's initial sample, NSGA-II's and WeakNAS's
  first batch), so tactics differ only in what they do next, and a first population measured once
  is reused by all of them.
* **Named searches.** A search is stored under the id its caller chooses (``01-concurrent-cpu-t1-b1-s0``);
  a search that builds on another takes that id as a parameter. Running the same search again finds
  every measurement in the store and measures nothing; running other settings under a stored id is
  an error that names the differing settings, never a silent re-run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from nastools._tactic_names import BUILTIN_TACTICS
from nastools.evaluation import Evaluator
from nastools.hypervolume import HypervolumeIndicator
from nastools.objectives import Objective
from nastools.search import (
    ConcurrentNAS,
    FullSearch,
    HypervolumeTrace,
    RandomSearch,
    Tactic,
    make_tactic,
    run_tactic,
    tactic_names,
    tactic_preset,
)
from nastools.search.alternatives import LibraryTactic
from nastools.space import Arch, SearchSpace

__all__ = [
    "TACTIC_KINDS",
    "WARM_START",
    "TacticSettings",
    "TrialResults",
    "build_tactic",
    "collect_archs",
    "history_archs",
    "measure_targets",
    "measured_archs",
    "population_snapshots",
    "run_recorded",
    "run_trials",
]

#: The notebooks' name for ConcurrentNAS from given archs (``initial_archs``, e.g. an earlier search's best).
WARM_START = "warm-start"
#: What :func:`build_tactic` takes: every built-in tactic name, and ``warm-start`` (a user's registered
#: tactics are taken too).
TACTIC_KINDS = (*BUILTIN_TACTICS, WARM_START)
#: Tactics whose own random start is the common population already: built without ``initial_archs``
#: (as before the one factory), they store the same settings, so their stored searches resume.
_OWN_COMMON_START = (RandomSearch, FullSearch, ConcurrentNAS)


@dataclass(frozen=True)
class TacticSettings:
    """The settings a comparison shares across tactics (notebook parameters, benchmark profiles).

    :meth:`to_settings` turns them into the ``settings`` of :func:`~nastools.search.make_tactic`,
    which applies each to the tactics that take it.

    Attributes:
        pop_size: NSGA-II's population, the random search's and WeakNAS's batch, ConcurrentNAS's
            population (unless ``concurrent_pop_size``), the common first population.
        n_gen: Generations of each inner search on the predictors (ConcurrentNAS, full search).
        n_initial: Random validations that train the full search's predictors (default ``2 * pop_size``).
        predictor: Predictor kind of ConcurrentNAS and the full search; None: each tactic's default
            (``"auto"``, or a preset's, e.g. ``concurrent-ridge``'s ridge).
        concurrent_pop_size: ConcurrentNAS's population when it differs from ``pop_size``.
        concurrent_n_gen: Generations of ConcurrentNAS's inner searches when they differ from ``n_gen``.
        min_new: ConcurrentNAS validates at least this many new archs per iteration.
        full_n_gen: Generations of the full search's one inner search (default ``n_gen``).
        weaknas_pool_size: WeakNAS's pool of random sub-networks.
        weaknas_top_k: Each WeakNAS round samples from the predicted top-k.
        weaknas_predictor: WeakNAS's predictor kind.
        weaknas_batch_size: Validations per WeakNAS round (default ``pop_size``; the paper's 100).

    Example:
        >>> TacticSettings(pop_size=8, n_gen=5).to_settings()["weaknas.top_k"]
        1000
    """

    pop_size: int = 50
    n_gen: int = 300
    n_initial: int | None = None
    predictor: str | None = None
    concurrent_pop_size: int | None = None
    concurrent_n_gen: int | None = None
    min_new: int = 0
    full_n_gen: int | None = None
    weaknas_pool_size: int = 10_000
    weaknas_top_k: int = 1000
    weaknas_predictor: str = "gbm"
    weaknas_batch_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-friendly)."""
        return asdict(self)

    def to_settings(self) -> dict[str, Any]:
        """The factory's ``settings``: shared ones by name, one tactic's as ``"<tactic>.<parameter>"``."""
        settings: dict[str, Any] = {
            "pop_size": self.pop_size,
            "n_gen": self.n_gen,
            "full.n_initial": self.n_initial if self.n_initial is not None else 2 * self.pop_size,
            "min_new": self.min_new,
            "weaknas.pool_size": self.weaknas_pool_size,
            "weaknas.top_k": self.weaknas_top_k,
            "weaknas.predictor": self.weaknas_predictor,
        }
        optional = {
            "predictor": self.predictor,
            "concurrent.pop_size": self.concurrent_pop_size,
            "concurrent.n_gen": self.concurrent_n_gen,
            "full.n_gen": self.full_n_gen,
            "weaknas.batch_size": self.weaknas_batch_size,
        }
        return settings | {key: value for key, value in optional.items() if value is not None}


def build_tactic(
    kind: str,
    space: SearchSpace,
    objectives: Mapping[str, str] | Iterable[Objective],
    budget: int,
    settings: TacticSettings,
    *,
    seed: int = 0,
    exact: Mapping[str, Callable] | None = None,
    initial_archs: Sequence[Arch] | None = None,
    shared: Mapping[str, Any] | None = None,
) -> Tactic:
    """A registered tactic from the shared settings, starting from the common population.

    A thin wrapper of :func:`~nastools.search.make_tactic` that keeps the trials' convention: every
    tactic without ``initial_archs`` starts from ``space.sample(settings.pop_size, rng=seed)``,
    except the alternatives (:mod:`nastools.search.alternatives`), which start with their library's
    own initial design, as their users run them.

    Args:
        kind: A tactic name (:func:`~nastools.search.tactic_names`: ``random``, ``nsga2``, ``full``,
            ``concurrent``, ``weaknas``, ...) or ``warm-start`` (ConcurrentNAS from ``initial_archs``).
        space: The space searched (the supernet's, or a PopDB space).
        objectives: The objectives.
        budget: Validations allowed.
        settings: The shared settings.
        seed: The trial's seed.
        exact: Objectives computed instead of predicted (:meth:`Evaluator.free
            <nastools.evaluation.Evaluator.free>`), for the tactics that take ``exact``.
        initial_archs: The first population instead of the common random one (required for
            ``warm-start``).
        shared: Further settings of the comparison, applied where a tactic takes them, e.g.
            ``{"reference_point": indicator.bounds}`` (BoTorch's hypervolume reference point).

    Raises:
        ValueError: An unknown kind, or ``warm-start`` without ``initial_archs``.
        ImportError: An alternative whose library is not installed (the message names the install line).

    Example:
        >>> space = SearchSpace({f"k_{i}": [3, 5, 7] for i in range(6)})
        >>> settings = TacticSettings(pop_size=6)
        >>> tactic = build_tactic("nsga2", space, {"acc": "max", "cost": "min"}, 30, settings)
        >>> tactic.ask() == space.sample(6, rng=0)
        True
    """
    if not isinstance(settings, TacticSettings):
        raise ValueError(f"settings is a TacticSettings, got {type(settings).__name__}")
    if kind == WARM_START and initial_archs is None:
        raise ValueError("'warm-start' needs initial_archs (e.g. best_population of an earlier search)")
    if not isinstance(kind, str) or (kind != WARM_START and kind not in tactic_names()):
        raise ValueError(f"unknown tactic kind {kind!r}; choose one of {[*tactic_names(), WARM_START]}")
    name = "concurrent" if kind == WARM_START else kind
    start = list(initial_archs) if initial_archs is not None else None
    cls = tactic_preset(name).cls
    if start is None and not issubclass(cls, (*_OWN_COMMON_START, LibraryTactic)):
        start = space.sample(settings.pop_size, rng=seed)
    common = {**settings.to_settings(), "exact": dict(exact or {}), **dict(shared or {})}
    return make_tactic(name, space, objectives, budget, settings=common, seed=seed, initial_archs=start)


def run_recorded(
    tactic: Tactic,
    evaluator: Evaluator,
    search_id: str,
    indicator: HypervolumeIndicator | None = None,
    progress: bool = False,
) -> HypervolumeTrace | None:
    """Run ``tactic`` through ``evaluator`` stored as ``search_id``; its hypervolume trace if asked for.

    Running the same search again measures nothing: every arch it asks for is in the store.
    """
    trace = HypervolumeTrace(indicator) if indicator is not None else None
    run_tactic(tactic, evaluator, search_id=search_id, callbacks=[trace] if trace else (), progress=progress)
    return trace


@dataclass
class TrialResults:
    """What :func:`run_trials` returns.

    Attributes:
        traces: ``tactic``, ``seed``, ``n_validated``, ``hypervolume`` (one row per batch).
        results: Every validated arch: ``tactic``, ``seed``, ``n_validated``, ``arch``, the
            objectives, ``front`` (on that run's front).
        search_ids: ``{(tactic, seed): search id}``.
        tactics: ``{(tactic, seed): the finished tactic}``.
    """

    traces: pd.DataFrame
    results: pd.DataFrame
    search_ids: dict[tuple[str, int], str] = field(default_factory=dict)
    tactics: dict[tuple[str, int], Tactic] = field(default_factory=dict)


def run_trials(
    kinds: Sequence[str],
    seeds: Sequence[int],
    build: Callable[[str, int], Tactic],
    evaluator: Evaluator,
    indicator: HypervolumeIndicator | Mapping[str, HypervolumeIndicator],
    *,
    label: str = "",
    names: Mapping[str, str] | None = None,
) -> TrialResults:
    """Run ``build(kind, seed)`` for every kind and seed (one progress bar) and collect the results.

    Args:
        kinds: Tactic kinds (or any labels ``build`` understands).
        seeds: One trial per seed.
        build: Makes a fresh tactic, e.g. a ``functools.partial`` of :func:`build_tactic`.
        evaluator: Measures through the shared store.
        indicator: The hypervolume box every trace is measured in, or one per kind
            (``{kind: indicator}``, e.g. one per hardware config).
        label: Prefix of the stored search ids (``<label><kind>-s<seed>``).
        names: Display names of the kinds in the returned tables (default: the kinds).
    """
    names = dict(names or {})
    if isinstance(indicator, Mapping) and (missing := [k for k in kinds if k not in indicator]):
        raise ValueError(
            f"no hypervolume indicator for kind(s) {missing}; the indicators are for {sorted(indicator)}"
        )
    traces, results, ids, tactics = [], [], {}, {}
    runs = [(kind, int(seed)) for seed in seeds for kind in kinds]
    bar = tqdm(runs, desc="searches", unit="search")
    for kind, seed in bar:
        bar.set_postfix_str(f"{kind} seed {seed}")
        tactic = build(kind, seed)
        search_id = f"{label}{kind}-s{seed}"
        box = indicator[kind] if isinstance(indicator, Mapping) else indicator
        trace = run_recorded(tactic, evaluator, search_id, box)
        ids[(kind, seed)] = search_id
        tactics[(kind, seed)] = tactic
        name = names.get(kind, kind)
        traces.append(trace.frame().assign(tactic=name, seed=seed))
        results.append(tactic.results().assign(tactic=name, seed=seed))
    trace_columns = ["tactic", "seed", "n_validated", "hypervolume"]
    traces_df = (
        pd.concat(traces, ignore_index=True)[trace_columns] if traces else pd.DataFrame(columns=trace_columns)
    )
    results_df = pd.concat(results, ignore_index=True) if results else pd.DataFrame()
    if len(results_df):
        first = ["tactic", "seed"]
        results_df = results_df[first + [c for c in results_df.columns if c not in first]]
    return TrialResults(traces_df, results_df, ids, tactics)


def population_snapshots(
    evaluator: Evaluator,
    search_id: str,
    objectives: Mapping[str, str] | Iterable[Objective],
    label: str | None = None,
) -> pd.DataFrame:
    """Every recorded population of a search with its objective values (from the store).

    Returns:
        ``generation``, ``position``, ``arch``, one column per objective label, and ``search``
        (``label`` or the search id).
    """
    history = evaluator.store.history(search_id)
    space = evaluator.supernet.space
    unique = list(dict.fromkeys(history["arch"]))
    values = evaluator.values([space.from_key(k) for k in unique], objectives)
    lookup = pd.DataFrame({"arch": unique, **values})
    return history.merge(lookup, on="arch", how="left").assign(search=label or search_id)


def history_archs(evaluator: Evaluator, search_id: str) -> list[Arch]:
    """Every arch of every recorded generation of a search (repeats kept: survivors weigh more)."""
    space = evaluator.supernet.space
    return [space.from_key(key) for key in evaluator.store.history(search_id)["arch"]]


def measured_archs(evaluator: Evaluator, objective: Objective) -> pd.DataFrame:
    """Everything the store holds of ``objective`` for the evaluator's supernet: columns ``arch``, ``value``.

    One row per arch (the latest measurement), in first-measured order; latency measured on another
    machine is not included.
    """
    supernet = evaluator.supernet
    host = ""
    if objective.hardware is not None:
        host = evaluator.hardware(objective.hardware)[0].host()
    rows = evaluator.store.measurements(
        supernet_id=supernet.supernet_id,
        checkpoint_hash=supernet.checkpoint_hash,
        metric=objective.metric,
        hardware=objective.hardware or "",
        host=host,
    )
    if rows.empty:
        return pd.DataFrame(columns=["arch", "value"])
    return rows.groupby("arch", sort=False)["value"].last().reset_index()


def collect_archs(
    evaluator: Evaluator, objective: Objective, n_archs: int, seed: int = 0, reuse_store: bool = True
) -> list[Arch]:
    """``n_archs`` archs to measure ``objective`` on: stored ones first (if ``reuse_store``), then random.

    With ``reuse_store`` the archs are the ones earlier searches measured (free, but biased toward
    good sub-networks); without, they are ``n_archs`` uniformly random ones (the paper's protocol).

    Raises:
        ValueError: ``n_archs`` exceeds the number of distinct networks of the space.
    """
    space = evaluator.supernet.space
    if n_archs > space.size:
        raise ValueError(f"cannot collect {n_archs} distinct archs: the space has {space.size} networks")
    chosen: dict[str, Arch] = {}
    if reuse_store:
        for key in measured_archs(evaluator, objective)["arch"]:
            if len(chosen) < n_archs:
                chosen.setdefault(key, space.from_key(key))
    rng = np.random.default_rng(seed)
    while len(chosen) < n_archs:
        for arch in space.sample(n_archs - len(chosen), rng=rng):
            chosen.setdefault(space.key(arch), arch)
    return list(chosen.values())


def measure_targets(evaluator: Evaluator, archs: Mapping[Objective, Sequence[Arch]]) -> dict[str, np.ndarray]:
    """Measure each objective on its own archs.

    Args:
        evaluator: Measures through the shared store (what is stored is reused).
        archs: ``{objective: archs}``, e.g. from :func:`collect_archs`.

    Returns:
        ``{objective label: values}`` aligned with ``archs[objective]``.
    """
    return {
        objective.label: evaluator.values(archs[objective], [objective])[objective.label]
        for objective in tqdm(list(archs), desc="measuring", unit="target")
    }
