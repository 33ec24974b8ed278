"""Comparing tactics on hypervolume vs number of validations."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["hypervolume_at", "summarize_traces", "validations_to_reach"]


def _sorted(trace: pd.DataFrame) -> pd.DataFrame:
    missing = {"n_validations", "hypervolume"} - set(trace.columns)
    if missing:
        raise ValueError(f"a trace needs columns n_validations and hypervolume; missing {sorted(missing)}")
    return trace.sort_values("n_validations", kind="stable")


def validations_to_reach(trace: pd.DataFrame, target: float) -> float:
    """Validations after which the trace first reaches hypervolume ``target`` (NaN if never).

    Example:
        >>> trace = pd.DataFrame({"n_validations": [50, 100, 150], "hypervolume": [0.2, 0.5, 0.6]})
        >>> validations_to_reach(trace, 0.5), validations_to_reach(trace, 0.9)
        (100.0, nan)
    """
    trace = _sorted(trace)
    reached = trace[trace["hypervolume"] >= target]
    return float(reached["n_validations"].iloc[0]) if len(reached) else float("nan")


def hypervolume_at(trace: pd.DataFrame, n_validations: int) -> float:
    """Hypervolume after at most ``n_validations`` validations (NaN if the trace starts later).

    A trace that ended earlier (its tactic stopped) keeps its last value.

    Example:
        >>> trace = pd.DataFrame({"n_validations": [50, 100, 150], "hypervolume": [0.2, 0.5, 0.6]})
        >>> hypervolume_at(trace, 120), hypervolume_at(trace, 10)
        (0.5, nan)
    """
    trace = _sorted(trace)
    before = trace[trace["n_validations"] <= n_validations]
    return float(before["hypervolume"].iloc[-1]) if len(before) else float("nan")


def summarize_traces(
    traces: pd.DataFrame,
    reference_hv: float,
    fractions: Sequence[float] = (0.9, 0.95, 0.98),
    checkpoints: Sequence[int] = (100, 250, 500, 1000),
) -> pd.DataFrame:
    """Per tactic: validations to reach fractions of ``reference_hv`` and HV at checkpoints.

    Args:
        traces: Long table with columns ``tactic``, ``seed``, ``n_validations``, ``hypervolume``.
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
