"""Predictor quality: learning curves (MAPE and Kendall tau vs training size), paper Fig. 13-15, Table 3."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import kendalltau
from sklearn.metrics import mean_absolute_percentage_error

from nastools.predictors import PREDICTOR_KINDS, ArchFeatures, check_target, make_predictor, single_threaded
from nastools.space import Arch, SearchSpace

__all__ = [
    "LEARNING_CURVE_COLUMNS",
    "learning_curves",
    "learning_summary",
    "predicted_vs_actual",
    "predictor_learning_curve",
    "summarize_learning_curve",
    "tau_table",
]

LEARNING_CURVE_COLUMNS = ["kind", "train_size", "trial", "test_hash", "mape", "kendall_tau"]


def predictor_learning_curve(
    space: SearchSpace,
    archs: Any,
    y: Any,
    kind: str | Sequence[str] = "ridge",
    train_sizes: Sequence[int] = (100, 200, 500, 1000),
    n_test: int = 500,
    n_trials: int = 10,
    seed: int = 0,
) -> pd.DataFrame:
    """Held-out predictor quality against training-set size (DyNAS-T paper, section 5.4).

    Each trial draws a fresh random split: first a test set of ``n_test`` archs, shared by every
    train size (and every kind) of that trial, then for each size an independent random training
    subset of the remaining archs. Sizes larger than the remaining archs are skipped with a
    warning. All randomness comes from ``numpy.random.default_rng(seed)``.

    Args:
        space: The search space of ``archs``.
        archs: Measured archs, in any form :class:`ArchFeatures` accepts.
        y: The measured metric, one finite value per arch.
        kind: One predictor kind, or several compared on the same splits.
        train_sizes: Training-set sizes to evaluate.
        n_test: Size of each trial's held-out test set.
        n_trials: Number of random splits.
        seed: Seed of the splits and of the stochastic regressors.

    Returns:
        One row per (kind, train_size, trial) with columns ``kind``, ``train_size``, ``trial``,
        ``test_hash`` (a short hash of the trial's test indices, equal across sizes within a trial),
        ``mape`` (mean absolute percentage error, in percent) and ``kendall_tau`` (Kendall's tau
        between predicted and measured values on the test set).

    Raises:
        ValueError: Bad ``y``, too few archs for ``n_test``, unknown kind, or no usable train size.

    Example:
        >>> space = SearchSpace({f"e_{i}": [3, 4, 6] for i in range(8)})
        >>> archs = space.sample(120, rng=0)
        >>> y = [1.0 + sum(a[f"e_{i}"] for i in range(8)) for a in archs]
        >>> df = predictor_learning_curve(space, archs, y, "ridge", train_sizes=(20, 60),
        ...                               n_test=50, n_trials=2)
        >>> df.shape
        (4, 6)
    """
    kinds = [kind] if isinstance(kind, str) else list(kind)
    if not kinds:
        raise ValueError("kind must name at least one predictor kind")
    for k in kinds:
        if k not in PREDICTOR_KINDS:
            raise ValueError(f"unknown predictor kind {k!r}; choose one of {list(PREDICTOR_KINDS)}")
    features = ArchFeatures(space).transform(archs)
    y_arr = check_target(y, len(features))
    n = len(y_arr)
    if not 1 <= n_test < n:
        raise ValueError(f"n_test must be between 1 and {n - 1} (len(archs) - 1), got {n_test}")
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    sizes = []
    for size in train_sizes:
        if size < 1:
            raise ValueError(f"train sizes must be >= 1, got {size}")
        if size > n - n_test:
            warnings.warn(
                f"skipping train size {size}: only {n - n_test} archs remain after the test set of {n_test}",
                UserWarning,
                stacklevel=2,
            )
        else:
            sizes.append(int(size))
    if not sizes:
        raise ValueError(f"no train size fits in the {n - n_test} archs left after the test set")

    rng = np.random.default_rng(seed)
    with single_threaded():
        rows = _learning_curve_rows(space, features, y_arr, kinds, sizes, n, n_test, n_trials, rng, seed)
    return pd.DataFrame(rows, columns=LEARNING_CURVE_COLUMNS)


def _learning_curve_rows(space, features, y_arr, kinds, sizes, n, n_test, n_trials, rng, seed) -> list[dict]:
    rows = []
    for trial in range(n_trials):
        order = rng.permutation(n)
        test, pool = np.sort(order[:n_test]), order[n_test:]
        test_hash = hashlib.sha1(test.astype(np.int64).tobytes()).hexdigest()[:12]
        for size in sizes:
            train = rng.choice(pool, size=size, replace=False)
            for k in kinds:
                # Features were computed once above, so the pipeline's own features step is bypassed.
                model = make_predictor(space, k, seed=seed).set_params(features="passthrough")
                predicted = model.fit(features[train], y_arr[train]).predict(features[test])
                tau = kendalltau(y_arr[test], predicted).statistic
                rows.append(
                    {
                        "kind": k,
                        "train_size": size,
                        "trial": trial,
                        "test_hash": test_hash,
                        "mape": 100.0 * mean_absolute_percentage_error(y_arr[test], predicted),
                        "kendall_tau": float(tau),
                    }
                )
    return rows


def summarize_learning_curve(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation of MAPE and Kendall's tau per kind and train size.

    Args:
        df: A frame from :func:`predictor_learning_curve`.

    Returns:
        One row per (kind, train_size) with columns ``kind``, ``train_size``, ``n_trials``,
        ``mape_mean``, ``mape_std``, ``kendall_tau_mean``, ``kendall_tau_std`` (sample std, NaN for a
        single trial).

    Example:
        >>> df = pd.DataFrame({"kind": "ridge", "train_size": [10, 10, 20], "trial": [0, 1, 0],
        ...                    "mape": [4.0, 6.0, 3.0], "kendall_tau": [0.5, 0.7, 0.8]})
        >>> summarize_learning_curve(df)[["train_size", "mape_mean", "mape_std"]].values.tolist()
        [[10.0, 5.0, 1.4142135623730951], [20.0, 3.0, nan]]
    """
    missing = {"kind", "train_size", "mape", "kendall_tau"} - set(df.columns)
    if missing:
        raise ValueError(f"not a learning-curve frame: missing column(s) {sorted(missing)}")
    return (
        df.groupby(["kind", "train_size"], sort=True)
        .agg(
            n_trials=("mape", "size"),
            mape_mean=("mape", "mean"),
            mape_std=("mape", "std"),
            kendall_tau_mean=("kendall_tau", "mean"),
            kendall_tau_std=("kendall_tau", "std"),
        )
        .reset_index()
    )


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
    with single_threaded():
        model = make_predictor(space, kind, seed=seed).fit([archs[i] for i in train], y[train])
        predicted = model.predict([archs[i] for i in test])
    tau = float(kendalltau(y[test], predicted).statistic)
    return pd.DataFrame({"actual": y[test], "predicted": predicted}), tau


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
    """:func:`predictor_learning_curve` for several targets, one ``target`` column.

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
    for name, values in targets.items():
        n = len(values)
        test = min(n_test, n // 3)
        sizes = [s for s in train_sizes if s <= n - test] or [n - test]
        curve = predictor_learning_curve(
            space, list(archs[name]), list(values), list(kinds), sizes, test, n_trials, seed
        )
        frames.append(curve.assign(target=name, n_archs=n))
    return pd.concat(frames, ignore_index=True)


def learning_summary(curves: pd.DataFrame) -> pd.DataFrame:
    """:func:`summarize_learning_curve` per ``target`` of :func:`learning_curves`."""
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
