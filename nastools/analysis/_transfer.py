"""Hardware transfer: is a front found for one hardware config optimal on another? (paper Fig. 5/6)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from scipy.stats import kendalltau

from nastools.evaluation import Evaluator
from nastools.hypervolume import HypervolumeIndicator
from nastools.objectives import Objective

__all__ = ["cross_hardware", "latency_objectives", "rank_agreement"]


def latency_objectives(task: Objective, hardware: str) -> tuple[Objective, Objective]:
    """The hardware-aware pair: the task metric and latency on ``hardware`` (minimised).

    Example:
        >>> [o.label for o in latency_objectives(Objective("top1", "max"), "cpu-t1-b1")]
        ['top1', 'latency_ms@cpu-t1-b1']
    """
    return (task, Objective("latency_ms", "min", hardware))


def cross_hardware(
    fronts: Mapping[str, Sequence[str]],
    evaluator: Evaluator,
    indicators: Mapping[str, HypervolumeIndicator],
    task: Objective,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Re-measure each hardware config's front on every config; hypervolume lost by transferring.

    Args:
        fronts: ``{found_on: [arch keys of the front found for that hardware key]}``.
        evaluator: Measures the task metric and latency (reused from the store where measured).
        indicators: ``{hardware key: HypervolumeIndicator}`` over ``task`` and latency there; its
            bounds make the values comparable per config.
        task: The task objective (e.g. ``Objective("top1", "max")``).

    Returns:
        ``points``: one row per (found_on, measured_on, arch) with the task metric and
        ``latency_ms``; ``matrix``: one row per (found_on, measured_on) with ``hypervolume`` (of that
        front on that config), ``hv_own`` (of the config's own front) and ``hv_lost_pct``
        (``100 * (1 - hypervolume / hv_own)``; 0 on the diagonal).
    """
    keys = list(fronts)
    space = evaluator.supernet.space
    points, matrix = [], []
    for measured_on in keys:
        objectives = latency_objectives(task, measured_on)
        latency = objectives[1].label
        own = None
        for found_on in [measured_on] + [k for k in keys if k != measured_on]:
            archs = [space.from_key(k) for k in fronts[found_on]]
            values = evaluator.values(archs, objectives)
            table = pd.DataFrame(
                {
                    "arch": list(fronts[found_on]),
                    task.label: values[task.label],
                    "latency_ms": values[latency],
                }
            )
            hv = indicators[measured_on]({task.label: table[task.label], latency: table["latency_ms"]})
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
        ["found_on", "measured_on", "arch", task.label, "latency_ms"]
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
