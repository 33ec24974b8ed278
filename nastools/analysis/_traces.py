"""Comparing tactics on hypervolume vs number of validations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from nastools.hypervolume import HypervolumeIndicator

__all__ = [
    "hypervolume_at",
    "hypervolume_curve",
    "summarize_traces",
    "traces_on_grid",
    "validation_ratio",
    "validations_to_reach",
]


def _sorted(trace: pd.DataFrame) -> pd.DataFrame:
    missing = {"n_validated", "hypervolume"} - set(trace.columns)
    if missing:
        raise ValueError(f"a trace needs columns n_validated and hypervolume; missing {sorted(missing)}")
    return trace.sort_values("n_validated", kind="stable")


def validations_to_reach(trace: pd.DataFrame, target: float) -> float:
    """Validations after which the trace first reaches hypervolume ``target`` (NaN if never).

    Example:
        >>> trace = pd.DataFrame({"n_validated": [50, 100, 150], "hypervolume": [0.2, 0.5, 0.6]})
        >>> validations_to_reach(trace, 0.5), validations_to_reach(trace, 0.9)
        (100.0, nan)
    """
    trace = _sorted(trace)
    reached = trace[trace["hypervolume"] >= target]
    return float(reached["n_validated"].iloc[0]) if len(reached) else float("nan")


def hypervolume_at(trace: pd.DataFrame, n_validated: int) -> float:
    """Hypervolume after at most ``n_validated`` validations (NaN if the trace starts later).

    A trace that ended earlier (its tactic stopped) keeps its last value.

    Example:
        >>> trace = pd.DataFrame({"n_validated": [50, 100, 150], "hypervolume": [0.2, 0.5, 0.6]})
        >>> hypervolume_at(trace, 120), hypervolume_at(trace, 10)
        (0.5, nan)
    """
    trace = _sorted(trace)
    before = trace[trace["n_validated"] <= n_validated]
    return float(before["hypervolume"].iloc[-1]) if len(before) else float("nan")


def summarize_traces(
    traces: pd.DataFrame,
    reference_hv: float,
    fractions: Sequence[float] = (0.9, 0.95, 0.98),
    checkpoints: Sequence[int] = (100, 250, 500, 1000),
) -> pd.DataFrame:
    """Per tactic: validations to reach fractions of ``reference_hv`` and HV at checkpoints.

    Args:
        traces: Long table with columns ``tactic``, ``seed``, ``n_validated``, ``hypervolume``.
        reference_hv: Hypervolume of the reference front (e.g. from a long search).
        fractions: Shares of ``reference_hv`` to reach.
        checkpoints: Validation counts to read the HV at.

    Returns:
        One row per tactic: ``n_seeds``; ``val_to_<p>%`` (mean over the seeds that reached it),
        ``reached_<p>%`` (how many seeds did), ``hv@<n>`` and ``hv@<n>_sd``.
    """
    rows = []
    for tactic, group in traces.groupby("tactic", sort=False):
        by_seed = [trace for _, trace in group.groupby("seed")]
        row = {"tactic": tactic, "n_seeds": len(by_seed)}
        for fraction in fractions:
            needed = np.array([validations_to_reach(t, fraction * reference_hv) for t in by_seed])
            label = f"{round(100 * fraction)}%"
            row[f"val_to_{label}"] = float(np.nanmean(needed)) if np.isfinite(needed).any() else float("nan")
            row[f"reached_{label}"] = int(np.isfinite(needed).sum())
        for n in checkpoints:
            hv = np.array([hypervolume_at(t, n) for t in by_seed])
            row[f"hv@{n}"] = float(np.nanmean(hv)) if np.isfinite(hv).any() else float("nan")
            row[f"hv@{n}_sd"] = float(np.nanstd(hv)) if np.isfinite(hv).any() else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def traces_on_grid(traces: pd.DataFrame, grid: Iterable[int] | None = None) -> pd.DataFrame:
    """Hypervolume of every (tactic, seed) trace read at common validation counts.

    Traces of different tactics have points at different validation counts; on a common grid they
    can be averaged and drawn with a spread over seeds. A trace keeps its last value after its
    tactic stopped and has no value before its first batch.

    Args:
        traces: Columns ``tactic``, ``seed``, ``n_validated``, ``hypervolume``.
        grid: Validation counts; default every count at which any trace has a point.

    Example:
        >>> traces = pd.DataFrame({"tactic": "a", "seed": 0, "n_validated": [10, 20],
        ...                        "hypervolume": [0.1, 0.3]})
        >>> traces_on_grid(traces, [5, 15, 30])["hypervolume"].tolist()
        [nan, 0.1, 0.3]
    """
    grid = sorted(set(traces["n_validated"].astype(int))) if grid is None else sorted({int(g) for g in grid})
    rows = []
    for (tactic, seed), trace in traces.groupby(["tactic", "seed"], sort=False):
        for n in grid:
            rows.append(
                {"tactic": tactic, "seed": seed, "n_validated": n, "hypervolume": hypervolume_at(trace, n)}
            )
    return pd.DataFrame(rows, columns=["tactic", "seed", "n_validated", "hypervolume"])


def hypervolume_curve(
    values: Mapping[str, Sequence[float]] | pd.DataFrame,
    indicator: HypervolumeIndicator,
    counts: Iterable[int],
) -> pd.DataFrame:
    """Hypervolume of the first ``n`` validated archs, for each ``n`` of ``counts``.

    Rebuilds a trace from what a search validated, in order (:meth:`ResultStore.validations
    <nastools.store.ResultStore.validations>` and their measured values).

    Args:
        values: One column per objective label, rows in validation order.
        indicator: The hypervolume box.
        counts: Validation counts (those beyond the rows are clipped to the last row).

    Returns:
        Columns ``n_validated`` and ``hypervolume``.
    """
    table = pd.DataFrame(values)
    total = len(table)
    grid = sorted({clipped for n in counts if (clipped := min(int(n), total)) > 0})
    rows = [{"n_validated": n, "hypervolume": indicator(table.iloc[:n])} for n in grid]
    return pd.DataFrame(rows, columns=["n_validated", "hypervolume"])


def validation_ratio(traces: pd.DataFrame, baseline: str, tactic: str) -> pd.DataFrame:
    """How many times fewer validations ``tactic`` needs than ``baseline`` to reach the baseline's best.

    The paper's headline (WeakNAS vs ConcurrentNAS): per seed, the validations the baseline needs
    to reach the hypervolume it ends with, divided by the validations ``tactic`` needs to reach the
    same hypervolume (NaN when it never does).

    Args:
        traces: Columns ``tactic``, ``seed``, ``n_validated``, ``hypervolume``.
        baseline: E.g. ``"weaknas"``.
        tactic: E.g. ``"concurrent"``.

    Returns:
        One row per seed with both tactics: ``seed``, ``target_hv``, ``baseline_validations``,
        ``tactic_validations``, ``ratio``.

    Example:
        >>> traces = pd.DataFrame({"tactic": ["w", "w", "c", "c"], "seed": 0,
        ...                        "n_validated": [100, 800, 50, 100], "hypervolume": [0.5, 0.7, 0.6, 0.75]})
        >>> validation_ratio(traces, "w", "c")["ratio"].tolist()
        [8.0]
    """
    rows = []
    for seed, group in traces.groupby("seed", sort=True):
        base, other = group[group["tactic"] == baseline], group[group["tactic"] == tactic]
        if base.empty or other.empty:
            continue
        target = float(base["hypervolume"].max())
        needed_base, needed_other = validations_to_reach(base, target), validations_to_reach(other, target)
        ratio = needed_base / needed_other if np.isfinite(needed_other) else float("nan")
        rows.append(
            {
                "seed": seed,
                "target_hv": target,
                "baseline_validations": needed_base,
                "tactic_validations": needed_other,
                "ratio": ratio,
            }
        )
    return pd.DataFrame(
        rows, columns=["seed", "target_hv", "baseline_validations", "tactic_validations", "ratio"]
    )
