"""Helpers for the experiment notebooks: output folders, named tactics, trials and result tables.

The notebooks in ``notebooks/`` only call into the package; anything longer than a few lines lives
here (figures are in :mod:`nastools.plotting`). Every notebook writes to ``<out_dir>/<notebook>/``
and shares one store, ``<out_dir>/results.sqlite``, so a later notebook reuses every measurement an
earlier one made (measurements are keyed by arch, metric and hardware).

Two conventions keep the sequence cheap and the comparisons fair:

* **Common random numbers.** Every tactic of a trial starts from the same random population,
  ``space.sample(pop_size, rng=seed)`` (the random search's first batch, ConcurrentNAS's first
  population, the first ``pop_size`` of the full search's initial sample, NSGA-II's and WeakNAS's
  first batch), so tactics differ only in what they do next, and a first population measured once
  is reused by all of them.
* **Named searches.** A search is stored under ``<label>-<hash of its settings and space>``: the
  same search run again (by a later notebook, or a rerun) finds every measurement in the store and
  measures nothing, and two different searches never share an id.

Example:
    >>> exp = open_experiment("00_quickstart", "results")  # doctest: +SKIP
    >>> tactic = make_tactic("concurrent", exp.space, {"top1": "max", "macs": "min"}, 24,
    ...                      pop_size=8, n_gen=30)  # doctest: +SKIP
    >>> search_id = run_recorded(tactic, exp.evaluator, "concurrent-s0")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import kendalltau
from tqdm import TqdmWarning

with warnings.catch_warnings():  # without ipywidgets tqdm.auto falls back to text bars: fine, no warning
    warnings.simplefilter("ignore", TqdmWarning)
    from tqdm.auto import tqdm

from nastools.evaluation import Evaluator
from nastools.hardware import default_hardware_configs
from nastools.lut import published_tables
from nastools.predictors import make_predictor, predictor_learning_curve, summarize_learning_curve
from nastools.search import (
    ConcurrentNAS,
    EvolutionarySearch,
    FullSearch,
    HypervolumeIndicator,
    RandomSearch,
    Tactic,
    WeakNAS,
    hypervolume_at,
    measure_objectives,
    pareto_front_mask,
    parse_objectives,
    reference_bounds,
    run_tactic,
)
from nastools.space import Arch, SearchSpace
from nastools.supernets import load_supernet

__all__ = [
    "STORE_NAME",
    "TACTIC_KINDS",
    "Experiment",
    "TrialResults",
    "best_by_run",
    "collect_archs",
    "cross_hardware",
    "PARAMETER_KINDS",
    "default_hardware_keys",
    "embed_2d",
    "exact_objectives",
    "front_mask",
    "history_archs",
    "hypervolume_indicator",
    "latency_objectives",
    "learning_curves",
    "learning_summary",
    "make_tactic",
    "measure_targets",
    "measured_archs",
    "open_experiment",
    "popdb_tables",
    "population_snapshots",
    "predicted_vs_actual",
    "rank_agreement",
    "run_recorded",
    "run_trials",
    "search_id",
    "space_summary",
    "summary_table",
    "tau_table",
    "traces_on_grid",
]

#: The store every notebook of a sequence shares, inside ``out_dir``.
STORE_NAME = "results.sqlite"

#: Tactic names the notebooks compare (``warm-start`` is ConcurrentNAS from given archs).
TACTIC_KINDS = ("random", "nsga2", "full", "concurrent", "warm-start", "weaknas")


@dataclass
class Experiment:
    """One notebook's run: its output folder, the shared store, the supernet and an evaluator.

    Attributes:
        name: The notebook's name, e.g. ``"01_hardware_transfer"``; its files go to ``out_dir/name``.
        out_dir: The sequence's output root (holds the shared ``results.sqlite``).
        supernet: The loaded supernet.
        evaluator: Measures through the shared store.
        written: Every file written through :meth:`save_table`, :meth:`save_json`, :meth:`save_figure`.
    """

    name: str
    out_dir: Path
    supernet: Any
    evaluator: Evaluator
    written: list[Path] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        """``out_dir / name``, created on first use."""
        folder = self.out_dir / self.name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def space(self) -> SearchSpace:
        """The supernet's search space."""
        return self.supernet.space

    @property
    def top1_kind(self) -> str:
        """``"measured"`` (held-out top-1 of the sub-network) or ``"surrogate"`` (OFA's predictor)."""
        return str(self.supernet.metadata.get("top1_kind", "measured"))

    @property
    def store(self) -> Any:
        """The shared :class:`~nastools.store.ResultStore`."""
        return self.evaluator.store

    def save_table(self, table: pd.DataFrame, name: str) -> Path:
        """Write ``table`` as ``<folder>/<name>.csv`` (no index) and return the path."""
        path = self.folder / f"{name}.csv"
        table.to_csv(path, index=False)
        self.written.append(path)
        return path

    def save_json(self, data: Mapping[str, Any], name: str) -> Path:
        """Write ``data`` as ``<folder>/<name>.json`` (numpy scalars converted) and return the path.

        A ``top1_kind`` entry (``"measured"`` or ``"surrogate"``, from the supernet's metadata) is
        added, so that numbers from OFA's accuracy predictor are never read as measured top-1.
        """
        path = self.folder / f"{name}.json"
        data = {"top1_kind": self.top1_kind, **data}
        path.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
        self.written.append(path)
        return path

    def save_figure(self, figure: Any, name: str) -> Path:
        """Write a matplotlib figure as ``<folder>/<name>.png`` and return the path."""
        path = self.folder / f"{name}.png"
        figure.savefig(path, dpi=120, bbox_inches="tight")
        self.written.append(path)
        return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def open_experiment(
    name: str,
    out_dir: str | Path,
    supernet: str = "digits-mbv3",
    *,
    data_dir: str | Path | None = None,
    progress: bool = False,
    evaluator_options: Mapping[str, Any] | None = None,
) -> Experiment:
    """Load ``supernet`` and open the shared store ``out_dir/results.sqlite`` for notebook ``name``.

    Args:
        name: Output sub-folder (the notebook's name).
        out_dir: Output root shared by the notebooks of a sequence.
        supernet: Passed to :func:`~nastools.supernets.load_supernet`.
        data_dir: Folder of the public OFA files, laid out like ``../shared/data``: OFA's accuracy
            predictor (``CompOFA/acc_predictor.pth``, for the ``ofa-mbv3-*`` supernets) and the
            latency tables of the ``lut-*`` hardware keys (:func:`~nastools.lut.published_tables`).
        progress: Per-measurement progress bars (notebooks show one bar per loop instead).
        evaluator_options: Extra :class:`~nastools.evaluation.Evaluator` arguments.

    Example:
        >>> exp = open_experiment("00_quickstart", "results")  # doctest: +SKIP
        >>> ofa = open_experiment("00_quickstart", "results-ofa", "ofa-mbv3-w1.2",
        ...                       data_dir="../shared/data")  # doctest: +SKIP
    """
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    options = dict(evaluator_options or {})
    if data_dir is not None:
        options.setdefault("latency_tables", published_tables(data_dir))
    if str(supernet).startswith("ofa-"):
        net = load_supernet(supernet, ofa_data=Path(data_dir) / "CompOFA" if data_dir is not None else None)
    else:
        net = load_supernet(supernet)
    evaluator = Evaluator(net, root / STORE_NAME, progress=progress, **options)
    return Experiment(name=name, out_dir=root, supernet=net, evaluator=evaluator)


#: What the parameter-name prefixes of the MobileNetV3 spaces mean.
PARAMETER_KINDS = {
    "d": "depth: blocks kept in a stage",
    "ks": "kernel size of a block",
    "e": "expand ratio of a block",
    "r": "input resolution",
}


def space_summary(space: SearchSpace) -> pd.DataFrame:
    """One row per kind of elastic parameter (the name before ``_``): how many, their choices.

    Example:
        >>> from nastools.space import mobilenetv3_space
        >>> space_summary(mobilenetv3_space())["kind"].tolist()[:3]
        ['d', 'ks', 'e']
    """
    rows: dict[str, dict[str, Any]] = {}
    for name in space.names:
        kind = name.split("_")[0]
        row = rows.setdefault(
            kind, {"kind": kind, "meaning": PARAMETER_KINDS.get(kind, ""), "parameters": 0, "choices": set()}
        )
        row["parameters"] += 1
        row["choices"] |= set(space.choices[name])
    table = pd.DataFrame(list(rows.values()))
    table["choices"] = [" ".join(map(str, sorted(c))) for c in table["choices"]]
    return table


def default_hardware_keys(hardware: Sequence[str] | None = None) -> list[str]:
    """``hardware`` as a list, or the keys of :func:`~nastools.hardware.default_hardware_configs`.

    Example:
        >>> default_hardware_keys(["cpu-t1-b1"])
        ['cpu-t1-b1']
    """
    if hardware is not None:
        return [str(h) for h in hardware]
    return [config.key for config in default_hardware_configs()]


def latency_objectives(hardware: str, accuracy: str = "top1") -> dict[str, str]:
    """The hardware-aware objectives: accuracy up, latency on ``hardware`` down.

    Example:
        >>> latency_objectives("cpu-t1-b1")
        {'top1': 'max', 'latency_ms@cpu-t1-b1': 'min'}
    """
    return {accuracy: "max", f"latency_ms@{hardware}": "min"}


def exact_objectives(supernet: Any, objectives: Mapping[str, str]) -> dict[str, Callable]:
    """Functions for the objectives that are cheap and exact (``macs``, ``params``) of ``supernet``.

    ConcurrentNAS and the full search compute these instead of predicting them.

    Example:
        >>> sorted(exact_objectives(object(), {"top1": "max", "macs": "min"}))
        ['macs']
    """
    functions = {
        "macs": lambda archs: [float(supernet.macs(a)) for a in archs],
        "params": lambda archs: [float(supernet.params(a)) for a in archs],
    }
    return {name: functions[name] for name in objectives if name in functions}


def hypervolume_indicator(evaluator: Evaluator, objectives: Mapping[str, str]) -> HypervolumeIndicator:
    """A :class:`~nastools.search.HypervolumeIndicator` bounded by the smallest and largest subnets."""
    return HypervolumeIndicator(objectives, reference_bounds(evaluator, objectives))


def make_tactic(
    kind: str,
    space: SearchSpace,
    objectives: Mapping[str, str],
    n_validations: int,
    *,
    pop_size: int = 50,
    n_gen: int = 100,
    n_initial: int | None = None,
    predictor: str = "auto",
    exact: Mapping[str, Callable] | None = None,
    weaknas_pool_size: int = 10_000,
    weaknas_top_k: int = 1000,
    weaknas_predictor: str = "gbm",
    hypervolume: HypervolumeIndicator | None = None,
    seed: int = 0,
    initial_archs: Sequence[Arch] | None = None,
) -> Tactic:
    """Build one of :data:`TACTIC_KINDS` from a shared budget, starting from the common population.

    * ``random``: :class:`~nastools.search.RandomSearch`, batches of ``pop_size``.
    * ``nsga2``: validation-only :class:`~nastools.search.EvolutionarySearch`.
    * ``full``: :class:`~nastools.search.FullSearch`, ``n_initial`` random validations (default
      ``2 * pop_size``), then one search of ``n_gen`` generations on the predictors.
    * ``concurrent``: :class:`~nastools.search.ConcurrentNAS`, inner searches of ``n_gen``.
    * ``warm-start``: ConcurrentNAS whose first population is ``initial_archs`` (required).
    * ``weaknas``: :class:`~nastools.search.WeakNAS`, rounds of ``pop_size`` drawn from the
      predicted ``weaknas_top_k`` of a pool of ``weaknas_pool_size``.

    Unless ``initial_archs`` is given, every kind starts from ``space.sample(pop_size, rng=seed)``
    (see the module's note on common random numbers).

    Raises:
        ValueError: For an unknown kind, or ``warm-start`` without ``initial_archs``.

    Example:
        >>> from nastools.space import mobilenetv3_space
        >>> space = mobilenetv3_space()
        >>> tactic = make_tactic("nsga2", space, {"top1": "max", "macs": "min"}, 30, pop_size=6)
        >>> tactic.ask() == space.sample(6, rng=0)
        True
    """
    common = {"hypervolume": hypervolume, "seed": seed}
    start = list(initial_archs) if initial_archs is not None else None
    first = start if start is not None else space.sample(pop_size, rng=seed)
    exact = dict(exact or {})
    if kind == "random":
        return RandomSearch(
            space, objectives, n_validations, batch_size=pop_size, initial_archs=start, **common
        )
    if kind == "nsga2":
        return EvolutionarySearch(
            space, objectives, n_validations, pop_size=pop_size, initial_archs=first, **common
        )
    if kind == "full":
        return FullSearch(
            space,
            objectives,
            n_validations,
            n_initial=n_initial or 2 * pop_size,
            pop_size=pop_size,
            n_gen=n_gen,
            predictor=predictor,
            exact=exact,
            initial_archs=start,
            **common,
        )
    if kind in ("concurrent", "warm-start"):
        if kind == "warm-start" and start is None:
            raise ValueError("'warm-start' needs initial_archs (e.g. best_population of an earlier search)")
        return ConcurrentNAS(
            space,
            objectives,
            n_validations,
            pop_size=pop_size,
            n_gen=n_gen,
            predictor=predictor,
            exact=exact,
            initial_archs=start,
            **common,
        )
    if kind == "weaknas":
        return WeakNAS(
            space,
            objectives,
            n_validations,
            pool_size=weaknas_pool_size,
            batch_size=pop_size,
            top_k=weaknas_top_k,
            predictor=weaknas_predictor,
            initial_archs=first,
            **common,
        )
    raise ValueError(f"unknown tactic kind {kind!r}; choose one of {list(TACTIC_KINDS)}")


def search_id(label: str, tactic: Tactic) -> str:
    """``<label>-<8 hex digits>``: the hash covers the tactic's settings and its search space.

    Example:
        >>> from nastools.space import mobilenetv3_space
        >>> tactic = make_tactic("random", mobilenetv3_space(), {"top1": "max", "macs": "min"}, 10)
        >>> search_id("random-s0", tactic)[:10]
        'random-s0-'
    """
    settings = json.dumps(
        {
            "tactic": tactic.name,
            "config": tactic.config(),
            "space": {k: list(v) for k, v in tactic.space.choices.items()},
        },
        sort_keys=True,
        default=str,
    )
    return f"{label}-{hashlib.sha1(settings.encode()).hexdigest()[:8]}"


def run_recorded(tactic: Tactic, evaluator: Evaluator, label: str, progress: bool = False) -> str:
    """Run ``tactic`` through ``evaluator`` under :func:`search_id` and return that id.

    Running the same search again measures nothing: every arch it asks for is in the store.
    """
    sid = search_id(label, tactic)
    run_tactic(tactic, evaluator, search_id=sid, progress=progress)
    return sid


@dataclass
class TrialResults:
    """What :func:`run_trials` returns.

    Attributes:
        traces: ``tactic``, ``seed``, ``n_validations``, ``hypervolume`` (one row per batch).
        results: Every validated arch: ``tactic``, ``seed``, ``n_validations``, ``arch``, the
            objectives, ``front`` (on that run's front).
        search_ids: ``{(tactic, seed): search id}``.
        tactics: ``{(tactic, seed): the finished tactic}``.
    """

    traces: pd.DataFrame
    results: pd.DataFrame
    search_ids: dict[tuple[str, int], str]
    tactics: dict[tuple[str, int], Tactic]


def run_trials(
    kinds: Sequence[str],
    seeds: Sequence[int],
    build: Callable[[str, int], Tactic],
    evaluator: Evaluator,
    label: str = "",
    names: Mapping[str, str] | None = None,
) -> TrialResults:
    """Run ``build(kind, seed)`` for every kind and seed (one progress bar) and collect the results.

    Args:
        kinds: Tactic kinds (or any labels ``build`` understands).
        seeds: One trial per seed.
        build: Makes a fresh tactic, e.g. a ``functools.partial`` of :func:`make_tactic`.
        evaluator: Measures through the shared store.
        label: Prefix of the stored search ids (``<label><kind>-s<seed>-<hash>``).
        names: Display names of the kinds in the returned tables (default: the kinds).
    """
    names = dict(names or {})
    traces, results, ids, tactics = [], [], {}, {}
    runs = [(kind, int(seed)) for seed in seeds for kind in kinds]
    bar = tqdm(runs, desc="searches", unit="search")
    for kind, seed in bar:
        bar.set_postfix_str(f"{kind} seed {seed}")
        tactic = build(kind, seed)
        ids[(kind, seed)] = run_recorded(tactic, evaluator, f"{label}{kind}-s{seed}")
        tactics[(kind, seed)] = tactic
        name = names.get(kind, kind)
        traces.append(tactic.trace_frame().assign(tactic=name, seed=seed))
        results.append(tactic.results().assign(tactic=name, seed=seed))
    trace_columns = ["tactic", "seed", "n_validations", "hypervolume"]
    traces_df = (
        pd.concat(traces, ignore_index=True)[trace_columns] if traces else pd.DataFrame(columns=trace_columns)
    )
    results_df = pd.concat(results, ignore_index=True) if results else pd.DataFrame()
    if len(results_df):
        first = ["tactic", "seed"]
        results_df = results_df[first + [c for c in results_df.columns if c not in first]]
    return TrialResults(traces_df, results_df, ids, tactics)


def traces_on_grid(traces: pd.DataFrame, grid: Iterable[int] | None = None) -> pd.DataFrame:
    """Hypervolume of every (tactic, seed) trace read at common validation counts.

    Traces of different tactics have points at different validation counts; on a common grid they
    can be averaged and drawn with a spread over seeds. A trace keeps its last value after its
    tactic stopped and has no value before its first batch.

    Args:
        traces: Columns ``tactic``, ``seed``, ``n_validations``, ``hypervolume``.
        grid: Validation counts; default every count at which any trace has a point.

    Example:
        >>> traces = pd.DataFrame({"tactic": "a", "seed": 0, "n_validations": [10, 20],
        ...                        "hypervolume": [0.1, 0.3]})
        >>> traces_on_grid(traces, [5, 15, 30])["hypervolume"].tolist()
        [nan, 0.1, 0.3]
    """
    grid = (
        sorted(set(traces["n_validations"].astype(int)))
        if grid is None
        else sorted(set(int(g) for g in grid))
    )
    rows = []
    for (tactic, seed), trace in traces.groupby(["tactic", "seed"], sort=False):
        for n in grid:
            rows.append(
                {"tactic": tactic, "seed": seed, "n_validations": n, "hypervolume": hypervolume_at(trace, n)}
            )
    return pd.DataFrame(rows, columns=["tactic", "seed", "n_validations", "hypervolume"])


def front_mask(table: pd.DataFrame, objectives: Mapping[str, str]) -> np.ndarray:
    """Boolean mask of the rows of ``table`` on the Pareto front of ``objectives``.

    Example:
        >>> table = pd.DataFrame({"top1": [90.0, 80.0, 85.0], "macs": [10.0, 5.0, 12.0]})
        >>> front_mask(table, {"top1": "max", "macs": "min"}).tolist()
        [True, True, False]
    """
    if table.empty:
        return np.zeros(0, dtype=bool)
    parsed = parse_objectives(objectives)
    F = np.column_stack([o.sign * table[o.name].to_numpy(dtype=np.float64) for o in parsed])  # noqa: N806
    return pareto_front_mask(F)


def cross_hardware(
    fronts: Mapping[str, Sequence[str]],
    evaluator: Evaluator,
    indicators: Mapping[str, HypervolumeIndicator],
    accuracy: str = "top1",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Re-measure each hardware config's front on every config; hypervolume lost by transferring.

    Args:
        fronts: ``{found_on: [arch keys of the front found for that hardware key]}``.
        evaluator: Measures accuracy and latency (reused from the store where measured).
        indicators: ``{hardware key: HypervolumeIndicator}`` over ``accuracy`` and
            ``latency_ms@<key>``; its bounds make the values comparable per config.
        accuracy: The accuracy objective.

    Returns:
        ``points``: one row per (found_on, measured_on, arch) with ``accuracy`` and ``latency_ms``;
        ``matrix``: one row per (found_on, measured_on) with ``hypervolume`` (of that front on that
        config), ``hv_own`` (of the config's own front) and ``hv_lost_pct``
        (``100 * (1 - hypervolume / hv_own)``; 0 on the diagonal).
    """
    keys = list(fronts)
    space = evaluator.supernet.space
    points, matrix = [], []
    for measured_on in keys:
        latency = f"latency_ms@{measured_on}"
        own = None
        for found_on in [measured_on] + [k for k in keys if k != measured_on]:
            archs = [space.from_key(k) for k in fronts[found_on]]
            values = measure_objectives(evaluator, archs, [accuracy, latency])
            table = pd.DataFrame(
                {"arch": list(fronts[found_on]), accuracy: values[accuracy], "latency_ms": values[latency]}
            )
            hv = indicators[measured_on]({accuracy: table[accuracy], latency: table["latency_ms"]})
            own = hv if own is None else own
            points.append(table.assign(found_on=found_on, measured_on=measured_on))
            lost = 100.0 * (1.0 - hv / own) if own > 0 else float("nan")
            matrix.append(
                {
                    "found_on": found_on,
                    "measured_on": measured_on,
                    "hypervolume": hv,
                    "hv_own": own,
                    "hv_lost_pct": lost,
                }
            )
    points_df = pd.concat(points, ignore_index=True)[
        ["found_on", "measured_on", "arch", accuracy, "latency_ms"]
    ]
    matrix_df = pd.DataFrame(matrix)
    order = {k: i for i, k in enumerate(keys)}
    matrix_df = matrix_df.sort_values(
        ["found_on", "measured_on"], key=lambda s: s.map(order), ignore_index=True
    )
    return points_df, matrix_df


def rank_agreement(points: pd.DataFrame, value: str = "latency_ms") -> pd.DataFrame:
    """Kendall's tau of ``value`` between every pair of configs, over the archs measured on both.

    Args:
        points: From :func:`cross_hardware` (``arch``, ``measured_on``, ``value``).
        value: The column compared.

    Returns:
        ``config_a``, ``config_b``, ``n_archs``, ``kendall_tau``: 1 means the two configs rank the
        archs the same way, so a front for one is a front for the other.
    """
    table = points.drop_duplicates(["arch", "measured_on"]).pivot(
        index="arch", columns="measured_on", values=value
    )
    configs = list(dict.fromkeys(points["measured_on"]))
    rows = []
    for i, a in enumerate(configs):
        for b in configs[i + 1 :]:
            both = table[[a, b]].dropna()
            tau = float(kendalltau(both[a], both[b]).statistic) if len(both) > 1 else float("nan")
            rows.append({"config_a": a, "config_b": b, "n_archs": len(both), "kendall_tau": tau})
    return pd.DataFrame(rows, columns=["config_a", "config_b", "n_archs", "kendall_tau"])


def population_snapshots(
    evaluator: Evaluator, search_id: str, objectives: Iterable[str], label: str | None = None
) -> pd.DataFrame:
    """Every recorded population of a search with its objective values (from the store).

    Returns:
        ``generation``, ``position``, ``arch``, one column per objective, and ``search`` (``label``
        or the search id).
    """
    history = evaluator.store.history(search_id)
    names = list(objectives)
    space = evaluator.supernet.space
    unique = list(dict.fromkeys(history["arch"]))
    values = measure_objectives(evaluator, [space.from_key(k) for k in unique], names)
    lookup = pd.DataFrame({"arch": unique, **values})
    return history.merge(lookup, on="arch", how="left").assign(search=label or search_id)


def best_by_run(results: pd.DataFrame, target: str = "top1", direction: str = "max") -> pd.DataFrame:
    """Per (tactic, seed): validations spent and the best ``target`` arch with all its objectives.

    Example:
        >>> results = pd.DataFrame({"tactic": "a", "seed": 0, "n_validations": [1, 2],
        ...                         "arch": ["x", "y"], "top1": [80.0, 90.0], "macs": [1.0, 2.0]})
        >>> best_by_run(results)[["tactic", "validations", "top1", "macs"]].values.tolist()
        [['a', 2, 90.0, 2.0]]
    """
    rows = []
    for (tactic, seed), run in results.groupby(["tactic", "seed"], sort=False):
        best = run.loc[run[target].idxmax() if direction == "max" else run[target].idxmin()]
        row = {"tactic": tactic, "seed": seed, "validations": int(run["n_validations"].max())}
        row |= {c: best[c] for c in run.columns if c not in ("tactic", "seed", "n_validations", "front")}
        rows.append(row)
    return pd.DataFrame(rows)


def summary_table(
    best: pd.DataFrame, columns: Sequence[str], final_hv: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The paper's Table-2 layout: per tactic, mean and std over seeds of ``columns`` of :func:`best_by_run`.

    Args:
        best: From :func:`best_by_run`.
        columns: E.g. ``["validations", "top1", "macs"]``.
        final_hv: Optional ``tactic``, ``seed``, ``hypervolume`` (e.g. each trace's last row) to add.

    Returns:
        ``tactic``, ``n_seeds`` and ``<column>_mean`` / ``<column>_std`` (std 0 for one seed).
    """
    table = best.copy()
    columns = list(columns)
    if final_hv is not None:
        table = table.merge(final_hv[["tactic", "seed", "hypervolume"]], on=["tactic", "seed"], how="left")
        columns.append("hypervolume")
    grouped = table.groupby("tactic", sort=False)
    out = grouped.size().rename("n_seeds").to_frame()
    for column in columns:
        out[f"{column}_mean"] = grouped[column].mean()
        out[f"{column}_std"] = grouped[column].std(ddof=0)
    return out.reset_index()


def history_archs(evaluator: Evaluator, search_id: str) -> list[Arch]:
    """Every arch of every recorded generation of a search (repeats kept: survivors weigh more)."""
    space = evaluator.supernet.space
    return [space.from_key(key) for key in evaluator.store.history(search_id)["arch"]]


def embed_2d(features: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """A 2-D embedding of one-hot arch features for plotting: ``"pca"`` or ``"tsne"`` (scikit-learn).

    Example:
        >>> embed_2d(np.eye(5), "pca").shape
        (5, 2)
    """
    features = np.asarray(features, dtype=np.float64)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(features)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (len(features) - 1) / 3)))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
            features
        )
    raise ValueError(f"unknown embedding {method!r}; use 'pca' or 'tsne'")


def popdb_tables(result: Any, space: SearchSpace) -> tuple[pd.DataFrame, dict[str, Any]]:
    """What PopDB removed, per parameter, and the space size before and after.

    Args:
        result: A :class:`~nastools.search.PopDBResult`.
        space: The space PopDB constrained.

    Returns:
        ``per_parameter``: ``parameter``, ``n_before``, ``n_after``, ``kept``, ``removed`` (values
        as text), for every parameter; ``sizes``: ``size_before``, ``size_after``, ``size_ratio``,
        ``n_parameters_reduced``, ``n_values_removed``, ``n_clusters``, ``noise_share``.
    """
    rows = []
    for name in space.names:
        before, after = space.choices[name], result.space.choices[name]
        removed = [v for v in before if v not in after]
        rows.append(
            {
                "parameter": name,
                "n_before": len(before),
                "n_after": len(after),
                "kept": " ".join(map(str, after)),
                "removed": " ".join(map(str, removed)),
            }
        )
    table = pd.DataFrame(rows)
    labels = np.asarray(result.labels)
    sizes = {
        "size_before": int(result.size_before),
        "size_after": int(result.size_after),
        "size_ratio": float(result.size_after / result.size_before),
        "n_parameters_reduced": int((table["n_after"] < table["n_before"]).sum()),
        "n_values_removed": int((table["n_before"] - table["n_after"]).sum()),
        "n_clusters": int(len(set(labels[labels >= 0].tolist()))),
        "noise_share": float(np.mean(labels < 0)) if len(labels) else float("nan"),
    }
    return table, sizes


def measured_archs(evaluator: Evaluator, metric: str = "top1", hardware: str = "") -> pd.DataFrame:
    """Everything the store holds for ``evaluator``'s supernet and ``metric``: columns ``arch``, ``value``.

    One row per arch (the latest measurement), in first-measured order.
    """
    supernet = evaluator.supernet
    rows = evaluator.store.measurements(
        supernet_id=supernet.supernet_id,
        checkpoint_hash=supernet.checkpoint_hash,
        metric=metric,
        hardware=hardware,
    )
    if rows.empty:
        return pd.DataFrame(columns=["arch", "value"])
    last = rows.groupby("arch", sort=False)["value"].last()
    return last.reset_index()


def predicted_vs_actual(
    space: SearchSpace,
    archs: Sequence[Arch],
    y: Sequence[float],
    kind: str = "ridge",
    n_train: int = 100,
    seed: int = 0,
) -> tuple[pd.DataFrame, float]:
    """Fit a predictor on ``n_train`` random archs and predict the others (a held-out check).

    Returns:
        ``actual`` and ``predicted`` of the held-out archs, and Kendall's tau between them.

    Raises:
        ValueError: If ``n_train`` leaves fewer than 2 archs to test on.
    """
    y = np.asarray(y, dtype=np.float64)
    if not 1 <= n_train <= len(y) - 2:
        raise ValueError(f"n_train must leave at least 2 of the {len(y)} archs to test, got {n_train}")
    order = np.random.default_rng(seed).permutation(len(y))
    train, test = order[:n_train], order[n_train:]
    model = make_predictor(space, kind, seed=seed).fit([archs[i] for i in train], y[train])
    predicted = model.predict([archs[i] for i in test])
    tau = float(kendalltau(y[test], predicted).statistic)
    return pd.DataFrame({"actual": y[test], "predicted": predicted}), tau


def collect_archs(
    evaluator: Evaluator,
    n_archs: int,
    seed: int = 0,
    reuse_store: bool = True,
    metric: str = "top1",
    hardware: str = "",
) -> list[Arch]:
    """``n_archs`` archs to measure ``metric`` on: those in the store first (if ``reuse_store``), then random.

    With ``reuse_store`` the archs are the ones earlier searches measured (free, but biased toward
    good sub-networks); without, they are ``n_archs`` uniformly random ones (the paper's protocol).
    """
    space = evaluator.supernet.space
    chosen: dict[str, Arch] = {}
    if reuse_store:
        for key in measured_archs(evaluator, metric, hardware)["arch"]:
            if len(chosen) < n_archs:
                chosen.setdefault(key, space.from_key(key))
    rng = np.random.default_rng(seed)
    while len(chosen) < n_archs:
        for arch in space.sample(n_archs - len(chosen), rng=rng):
            chosen.setdefault(space.key(arch), arch)
    return list(chosen.values())


def measure_targets(evaluator: Evaluator, archs: Mapping[str, Sequence[Arch]]) -> dict[str, np.ndarray]:
    """Measure each target (``top1``, ``latency_ms@cpu-t1-b1`` …) on its own archs, one progress bar.

    Args:
        evaluator: Measures through the shared store (what is stored is reused).
        archs: ``{target: archs}``, e.g. from :func:`collect_archs`.

    Returns:
        ``{target: values}`` aligned with ``archs[target]``.
    """
    return {
        target: measure_objectives(evaluator, archs[target], [target])[target]
        for target in tqdm(list(archs), desc="measuring", unit="target")
    }


def learning_curves(
    space: SearchSpace,
    archs: Mapping[str, Sequence[Arch]],
    targets: Mapping[str, Sequence[float]],
    kinds: Sequence[str],
    train_sizes: Sequence[int],
    n_test: int,
    n_trials: int,
    seed: int = 0,
) -> pd.DataFrame:
    """:func:`~nastools.predictors.predictor_learning_curve` for several targets, one ``target`` column.

    Args:
        space: The search space.
        archs: ``{target: archs}`` measured for that target.
        targets: ``{target: values}`` aligned with ``archs[target]``, e.g. ``{"top1": [...],
            "latency_ms@cpu-t1-b1": [...]}``.
        kinds: Predictor kinds compared on the same splits.
        train_sizes: Training-set sizes; those that do not fit a target's archs are skipped.
        n_test: Held-out archs per trial (capped at a third of a target's archs).
        n_trials: Random splits per target.
        seed: Seed of the splits.
    """
    frames = []
    for name, values in tqdm(list(targets.items()), desc="learning curves", unit="target"):
        n = len(values)
        test = min(n_test, n // 3)
        sizes = [s for s in train_sizes if s <= n - test] or [n - test]
        curve = predictor_learning_curve(
            space, list(archs[name]), list(values), list(kinds), sizes, test, n_trials, seed
        )
        frames.append(curve.assign(target=name, n_archs=n))
    return pd.concat(frames, ignore_index=True)


def learning_summary(curves: pd.DataFrame) -> pd.DataFrame:
    """:func:`~nastools.predictors.summarize_learning_curve` per ``target`` of :func:`learning_curves`."""
    frames = [
        summarize_learning_curve(curve).assign(target=target)
        for target, curve in curves.groupby("target", sort=False)
    ]
    table = pd.concat(frames, ignore_index=True)
    return table[["target"] + [c for c in table.columns if c != "target"]]


def tau_table(curves: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table-3 layout: per target and kind, the largest train size's MAPE and Kendall tau.

    Args:
        curves: From :func:`learning_curves`.

    Returns:
        ``target``, ``kind``, ``train_size``, ``n_trials``, ``mape_mean``, ``mape_std``,
        ``kendall_tau_mean``, ``kendall_tau_std``.
    """
    summary = learning_summary(curves)
    largest = summary.groupby("target", sort=False)["train_size"].transform("max")
    return summary[summary["train_size"] == largest].reset_index(drop=True)
