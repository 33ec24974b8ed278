"""Result tables shared by the notebooks and the benchmarks (the paper's Table 2 layout, PopDB, spaces)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from nastools.hypervolume import pareto_front_mask
from nastools.objectives import Objective, parse_objectives
from nastools.predictors import single_threaded
from nastools.space import SearchSpace

__all__ = ["best_by_run", "embed_2d", "front_mask", "popdb_tables", "space_summary", "summary_table"]


def space_summary(space: SearchSpace, descriptions: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per kind of elastic parameter (the name before ``_``): how many, their choices.

    Args:
        space: The search space.
        descriptions: Meaning of each kind (a supernet's ``parameter_descriptions``), or of one
            parameter by its full name (``"use_se"``), which then has a row of its own. A key that
            names neither a kind nor a parameter of ``space`` (a typo such as ``"kz"``) is warned of
            (``UserWarning``), with the space's kinds.

    Example:
        >>> space = SearchSpace({"d_0": [1, 2], "d_1": [1, 2], "k_0": [3, 5]})
        >>> space_summary(space, {"d": "depth"})[["kind", "meaning", "parameters"]].values.tolist()
        [['d', 'depth', 2], ['k', '', 1]]
    """
    descriptions = dict(descriptions or {})
    rows: dict[str, dict[str, Any]] = {}
    for name in space.names:
        kind = name if name in descriptions else name.split("_")[0]
        row = rows.setdefault(
            kind, {"kind": kind, "meaning": descriptions.get(kind, ""), "parameters": 0, "choices": set()}
        )
        row["parameters"] += 1
        row["choices"] |= set(space.choices[name])
    stray = [key for key in descriptions if key not in rows]
    if stray:
        warnings.warn(
            f"parameter_descriptions key(s) {stray} name no parameter of this space, whose prefixes are "
            f"{list(rows)}: their text shows nowhere; fix or drop the key(s)",
            UserWarning,
            stacklevel=2,
        )
    table = pd.DataFrame(list(rows.values()))
    table["choices"] = [" ".join(map(str, sorted(c, key=_choice_order))) for c in table["choices"]]
    return table


def _choice_order(value: Any) -> tuple:
    """Numbers (bools, ints, floats) by value, then strings: parameters of one kind may differ in type."""
    return (1, 0.0, value) if isinstance(value, str) else (0, float(value), "")


def front_mask(table: pd.DataFrame, objectives: Mapping[str, str] | Iterable[Objective]) -> np.ndarray:
    """Boolean mask of the rows of ``table`` on the Pareto front of ``objectives`` (label columns).

    Example:
        >>> table = pd.DataFrame({"top1": [90.0, 80.0, 85.0], "macs": [10.0, 5.0, 12.0]})
        >>> front_mask(table, {"top1": "max", "macs": "min"}).tolist()
        [True, True, False]
    """
    if table.empty:
        return np.zeros(0, dtype=bool)
    parsed = parse_objectives(objectives)
    F = np.column_stack([o.sign * table[o.label].to_numpy(dtype=np.float64) for o in parsed])  # noqa: N806
    return pareto_front_mask(F)


def best_by_run(results: pd.DataFrame, target: str, direction: str = "max") -> pd.DataFrame:
    """Per (tactic, seed): validations spent and the best ``target`` arch with all its objectives.

    Example:
        >>> results = pd.DataFrame({"tactic": "a", "seed": 0, "n_validated": [1, 2],
        ...                         "arch": ["x", "y"], "top1": [80.0, 90.0], "macs": [1.0, 2.0]})
        >>> best_by_run(results, "top1")[["tactic", "validations", "top1", "macs"]].values.tolist()
        [['a', 2, 90.0, 2.0]]
    """
    rows = []
    for (tactic, seed), run in results.groupby(["tactic", "seed"], sort=False):
        best = run.loc[run[target].idxmax() if direction == "max" else run[target].idxmin()]
        row = {"tactic": tactic, "seed": seed, "validations": int(run["n_validated"].max())}
        row |= {c: best[c] for c in run.columns if c not in ("tactic", "seed", "n_validated", "front")}
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


def embed_2d(features: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """A 2-D embedding of one-hot arch features for plotting: ``"pca"`` or ``"tsne"`` (scikit-learn).

    Example:
        >>> embed_2d(np.eye(5), "pca").shape
        (5, 2)
    """
    features = np.asarray(features, dtype=np.float64)
    if method == "pca":
        from sklearn.decomposition import PCA

        with single_threaded():
            return PCA(n_components=2, random_state=seed).fit_transform(features)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (len(features) - 1) / 3)))
        with single_threaded():  # OpenMP threads spinning on busy cores make t-SNE many times slower
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
