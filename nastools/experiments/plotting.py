"""Figures of the experiment notebooks (seaborn on matplotlib); every function returns its figure.

Column names follow the toolkit's vocabulary (``top1``, ``macs``, ``latency_ms``, ``n_validated``,
``hypervolume``, ``tactic``, ``seed``), so the tables of :mod:`nastools.analysis` and
:mod:`nastools.experiments` plot as they are.

Example:
    >>> import pandas as pd
    >>> table = pd.DataFrame({"top1": [80.0, 90.0, 85.0], "macs": [1.0, 3.0, 4.0]})
    >>> fig = plot_front(table, "macs", "top1", {"top1": "max", "macs": "min"})
    >>> len(fig.axes)
    1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import ticker
from matplotlib.figure import Figure

from nastools.hypervolume import pareto_front_mask
from nastools.objectives import parse_objectives

__all__ = [
    "axis_label",
    "palette",
    "plot_clusters",
    "plot_cross_hardware",
    "plot_front",
    "plot_hv_matrix",
    "plot_hv_traces",
    "plot_learning_curves",
    "plot_predicted_vs_actual",
    "plot_snapshots",
    "plot_validated",
    "use_style",
]


def use_style() -> None:
    """The notebooks' look: seaborn's ``whitegrid`` theme, a colour-blind safe palette."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")


#: Axis labels of the toolkit's columns; the unit in brackets.
_LABELS = {
    "top1": "top-1 (%)",
    "macs": "MACs (millions)",
    "params": "parameters (millions)",
    "naswot": "NASWOT score",
    "perplexity": "perplexity",
    "bleu": "BLEU",
    "hypervolume": "hypervolume",
    "n_validated": "validations",
}
#: Columns drawn in millions (their tick labels divided by 1e6).
MILLIONS = ("macs", "params")


def axis_label(column: str) -> str:
    """A readable axis label with its unit: ``"latency_ms@cpu-t1-b1"`` -> ``"latency on cpu-t1-b1 (ms)"``.

    Example:
        >>> axis_label("latency_ms@cpu-t1-b1"), axis_label("macs"), axis_label("other")
        ('latency on cpu-t1-b1 (ms)', 'MACs (millions)', 'other')
    """
    metric, _, hardware = column.partition("@")
    if metric == "latency_ms":
        return f"latency on {hardware} (ms)" if hardware else "latency (ms)"
    return _LABELS.get(metric, column)


def palette(n: int) -> list:
    """``n`` colours, none repeated: the colour-blind palette up to 10, evenly spaced hues beyond."""
    return sns.color_palette("colorblind", n) if n <= 10 else sns.color_palette("husl", n)


def _format_axis(ax: plt.Axes, x: str | None, y: str | None) -> None:
    """Units in the labels; MACs and parameters in millions on the ticks, never as 19447808.0."""
    for column, axis, setter in ((x, ax.xaxis, ax.set_xlabel), (y, ax.yaxis, ax.set_ylabel)):
        if column is None:
            continue
        setter(axis_label(column))
        if column.partition("@")[0] in MILLIONS:
            axis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value / 1e6:g}"))


def _legend_outside(ax: plt.Axes, **kwargs: object) -> None:
    """A legend beside the axes, where it covers no data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize="small", **kwargs)


def _front_line(table: pd.DataFrame, x: str, y: str, objectives: Mapping[str, str]) -> pd.DataFrame:
    """The non-dominated rows of ``table`` sorted by ``x`` (for a step line)."""
    if table.empty:
        return table
    parsed = {o.label: o for o in parse_objectives(objectives)}
    F = np.column_stack([parsed[c].sign * table[c].to_numpy(dtype=np.float64) for c in (x, y)])  # noqa: N806
    return table[pareto_front_mask(F)].sort_values(x)


def _axes(ax: plt.Axes | None, size: tuple[float, float] = (5.5, 4.0)) -> tuple[Figure, plt.Axes]:
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=size)
    return fig, ax


def plot_front(
    table: pd.DataFrame,
    x: str,
    y: str,
    objectives: Mapping[str, str],
    *,
    ax: plt.Axes | None = None,
    label: str = "validated",
    title: str | None = None,
    hue: str | None = None,
) -> Figure:
    """Every row as a faint point, the Pareto front of ``(x, y)`` as a step line with markers.

    Args:
        table: Objective columns, e.g. a tactic's :meth:`~nastools.search.Tactic.results`.
        x: Column on the x axis (usually a cost: ``macs``, ``latency_ms@cpu-t1-b1``).
        y: Column on the y axis (usually ``top1``).
        objectives: Directions of ``x`` and ``y``, e.g. ``{"top1": "max", "macs": "min"}``.
        ax: Draw into these axes instead of a new figure.
        label: Legend label of the points.
        title: Axes title.
        hue: A column whose values colour the points and the front's markers (the paper's Fig. 7
            colours the Transformer front by decoder layer count); None: one colour.

    Example:
        >>> table = pd.DataFrame({"bleu": [20.0, 30.0, 25.0], "macs": [1.0, 3.0, 2.0], "layers": [1, 2, 1]})
        >>> fig = plot_front(table, "macs", "bleu", {"bleu": "max", "macs": "min"}, hue="layers")
        >>> fig.axes[0].get_legend().get_title().get_text()
        'layers'
    """
    fig, ax = _axes(ax)
    front = _front_line(table, x, y, objectives)
    if hue is None:
        ax.scatter(table[x], table[y], s=18, alpha=0.35, color="grey", label=label)
        ax.step(front[x], front[y], where="post", marker="o", color="C0", label=f"front ({len(front)})")
    else:
        ax.step(front[x], front[y], where="post", color="grey", label=f"front ({len(front)})")
        values = sorted(table[hue].unique())
        for value, color in zip(values, palette(len(values))):
            rows, on_front = table[table[hue] == value], front[front[hue] == value]
            ax.scatter(rows[x], rows[y], s=18, alpha=0.35, color=color)
            ax.scatter(on_front[x], on_front[y], s=40, color=color, edgecolor="black", label=str(value))
    ax.set(title=title)
    _format_axis(ax, x, y)
    ax.legend(loc="best", fontsize="small", title=hue)
    return fig


def plot_cross_hardware(points: pd.DataFrame, accuracy: str = "top1", direction: str = "max") -> Figure:
    """One panel per config the fronts were measured on; each front's points coloured by where it was found.

    On each panel, the step line of a front is what that set of sub-networks achieves there (its
    non-dominated part): the config's own front in a thick line, the others dashed. A logarithmic
    latency axis is used when latencies span more than a factor of 10.

    Args:
        points: From :func:`nastools.analysis.cross_hardware`: ``found_on``, ``measured_on``,
            ``accuracy`` and ``latency_ms``.
        accuracy: The task metric's column.
        direction: Whether it is maximised (``"max"``) or minimised.
    """
    configs = list(dict.fromkeys(points["measured_on"]))
    found = list(dict.fromkeys(points["found_on"]))
    colours = dict(zip(found, palette(len(found))))
    directions = {accuracy: direction, "latency_ms": "min"}
    fig, axes = plt.subplots(1, len(configs), figsize=(4.6 * len(configs), 3.8), squeeze=False)
    for ax, measured_on in zip(axes[0], configs):
        panel = points[points["measured_on"] == measured_on]
        for found_on in found:
            mine = panel[panel["found_on"] == found_on]
            own = found_on == measured_on
            colour = colours[found_on]
            ax.scatter(
                mine["latency_ms"],
                mine[accuracy],
                s=26 if own else 18,
                color=colour,
                marker="o" if own else "x",
            )
            front = _front_line(mine, "latency_ms", accuracy, directions)
            ax.step(
                front["latency_ms"],
                front[accuracy],
                where="post",
                lw=2.2 if own else 1.2,
                ls="-" if own else "--",
                color=colour,
                label=f"found on {found_on}",
            )
        latency = panel["latency_ms"]
        if len(latency) and latency.min() > 0 and latency.max() / latency.min() > 10:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())  # 2x10^1 3x10^1 ... overlap
        ax.set(title=f"measured on {measured_on}", xlabel=f"latency on {measured_on} (ms)")
        _format_axis(ax, None, accuracy)
        ax.legend(fontsize="small", loc="best")
    fig.tight_layout()
    return fig


def plot_hv_matrix(matrix: pd.DataFrame, value: str = "hv_lost_pct") -> Figure:
    """Heatmap of ``value`` with the config a front was found on in rows, measured on in columns."""
    grid = matrix.pivot(index="found_on", columns="measured_on", values=value)
    order = list(dict.fromkeys(matrix["found_on"]))
    grid = grid.loc[order, [c for c in order if c in grid.columns]]
    fig, ax = plt.subplots(figsize=(1.6 * len(order) + 2.2, 1.2 * len(order) + 1.2))
    label = "hypervolume lost (%)" if value == "hv_lost_pct" else value
    # diverging around 0: red where a transferred front loses, blue where it happens to gain
    reach = float(np.nanmax(np.abs(grid.to_numpy(dtype=float)))) or 1.0
    sns.heatmap(
        grid, annot=True, fmt=".1f", cmap="vlag", vmin=-reach, vmax=reach, cbar_kws={"label": label}, ax=ax
    )
    ax.set(xlabel="front measured on", ylabel="front found on")
    fig.tight_layout()
    return fig


def plot_hv_traces(
    traces: pd.DataFrame,
    *,
    hue: str = "tactic",
    ax: plt.Axes | None = None,
    title: str | None = None,
    reference: float | None = None,
) -> Figure:
    """Hypervolume vs validations, the mean over seeds with a band of one standard deviation.

    Args:
        traces: ``n_validated``, ``hypervolume``, ``hue`` and ``seed`` columns, best on a common
            grid (:func:`nastools.analysis.traces_on_grid`).
        hue: Column of the compared lines.
        ax: Draw into these axes instead of a new figure.
        title: Axes title.
        reference: Draw this hypervolume as a dotted horizontal line (e.g. the best front known).
    """
    fig, ax = _axes(ax, (6.4, 4.0))
    data = traces.dropna(subset=["hypervolume"])
    sns.lineplot(
        data=data,
        x="n_validated",
        y="hypervolume",
        hue=hue,
        palette=palette(data[hue].nunique()),
        errorbar="sd",
        marker="o",
        markersize=4,
        ax=ax,
    )
    if reference is not None:
        ax.axhline(reference, ls=":", color="black", lw=1, label="reference")
    ax.set(xlabel="validations", ylabel="hypervolume", title=title)
    _legend_outside(ax)
    return fig


def plot_snapshots(snapshots: pd.DataFrame, x: str, y: str, *, col: str = "search") -> Figure:
    """Recorded populations coloured by generation, one panel per search (paper Fig. 7).

    Args:
        snapshots: From :func:`nastools.experiments.population_snapshots` (several concatenated):
            ``generation``, ``x``, ``y`` and ``col`` columns.
        x: Column on the x axis.
        y: Column on the y axis.
        col: Column naming the panels.
    """
    panels = list(dict.fromkeys(snapshots[col]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.9), squeeze=False, sharey=True)
    norm = plt.Normalize(snapshots["generation"].min(), max(snapshots["generation"].max(), 1))
    for ax, name in zip(axes[0], panels):
        panel = snapshots[snapshots[col] == name].sort_values("generation")
        points = ax.scatter(
            panel[x], panel[y], c=panel["generation"], cmap="viridis", norm=norm, s=22, alpha=0.8
        )
        ax.set(title=str(name))
        _format_axis(ax, x, y)
    generations = sorted(snapshots["generation"].unique())
    ticks = generations if len(generations) <= 12 else None  # whole generations, not 0.25 steps
    fig.colorbar(points, ax=axes[0].tolist(), label="generation", ticks=ticks)
    return fig


def plot_clusters(embedding: np.ndarray, labels: Sequence[int], *, title: str | None = None) -> Figure:
    """A 2-D embedding coloured by HDBSCAN cluster; noise (label -1) as grey crosses (paper Fig. 4)."""
    embedding = np.asarray(embedding)
    labels = np.asarray(labels)
    fig, ax = _axes(None, (5.5, 4.2))
    noise = labels < 0
    clusters = sorted(set(labels[~noise].tolist()))
    colours = palette(max(len(clusters), 1))
    named = len(clusters) <= 10  # more clusters than a legend can hold: colours only, counted in the title
    for colour, label in zip(colours, clusters):
        mine = labels == label
        ax.scatter(
            embedding[mine, 0],
            embedding[mine, 1],
            s=24,
            color=colour,
            label=f"cluster {label}" if named else None,
        )
    ax.scatter(embedding[noise, 0], embedding[noise, 1], s=24, marker="x", color="grey", label="noise")
    counts = f"{len(clusters)} clusters, {int(noise.sum())} noise points"
    ax.set(xlabel="component 1", ylabel="component 2", title=f"{title}\n{counts}" if title else counts)
    _legend_outside(ax, ncol=1 if named else 1)
    return fig


def plot_learning_curves(summary: pd.DataFrame, metric: str = "mape") -> Figure:
    """``<metric>_mean`` ± ``<metric>_std`` vs train size, one panel per target, one line per kind.

    Args:
        summary: ``target``, ``kind``, ``train_size``, ``<metric>_mean``, ``<metric>_std`` (e.g.
            :func:`~nastools.analysis.learning_summary`).
        metric: ``"mape"`` or ``"kendall_tau"``.
    """
    targets = list(dict.fromkeys(summary["target"]))
    kinds = list(dict.fromkeys(summary["kind"]))
    colours = dict(zip(kinds, palette(len(kinds))))
    fig, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets), 3.6), squeeze=False)
    for ax, target in zip(axes[0], targets):
        panel = summary[summary["target"] == target]
        for kind, line in panel.groupby("kind", sort=False):
            line = line.sort_values("train_size")
            ax.errorbar(
                line["train_size"],
                line[f"{metric}_mean"],
                yerr=line[f"{metric}_std"].fillna(0.0),
                marker="o",
                capsize=3,
                color=colours[kind],
                label=kind,
            )
        ylabel = "MAPE (%)" if metric == "mape" else "Kendall tau" if metric == "kendall_tau" else metric
        ax.set(title=axis_label(target), xlabel="training examples", ylabel=ylabel)
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_predicted_vs_actual(
    table: pd.DataFrame, tau: float, *, ax: plt.Axes | None = None, title: str | None = None
) -> Figure:
    """Predicted vs measured values of held-out archs with the identity line and Kendall's tau."""
    fig, ax = _axes(ax, (4.2, 4.0))
    ax.scatter(table["actual"], table["predicted"], s=18, alpha=0.7)
    low = float(min(table["actual"].min(), table["predicted"].min()))
    high = float(max(table["actual"].max(), table["predicted"].max()))
    ax.plot([low, high], [low, high], color="black", lw=1, ls=":")
    name = axis_label(title) if title else ""
    ax.set(xlabel=f"measured {name}".strip(), ylabel="predicted", title=f"{name}  (tau = {tau:.2f})".strip())
    if title and title.partition("@")[0] in MILLIONS:
        _format_axis(ax, title, title)
        ax.set(xlabel=f"measured {name}", ylabel=f"predicted {name}")
    return fig


def plot_validated(
    results: pd.DataFrame, x: str, y: str, objectives: Mapping[str, str], *, hue: str = "tactic"
) -> Figure:
    """All validated archs of several tactics, coloured by ``hue``, with each one's front (paper Fig. 10)."""
    fig, ax = _axes(None, (6.0, 4.4))
    groups = list(results.groupby(hue, sort=False))
    for colour, (name, group) in zip(palette(len(groups)), groups):
        ax.scatter(group[x], group[y], s=16, alpha=0.35, color=colour)
        front = _front_line(group, x, y, objectives)
        ax.step(front[x], front[y], where="post", marker="o", color=colour, label=f"{name} front")
    _format_axis(ax, x, y)
    ax.legend(fontsize="small", loc="best")
    return fig
