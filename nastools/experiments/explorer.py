"""The front explorer: every validated sub-network and the front, interactive in JupyterLab.

:func:`explore` draws one point per validated sub-network of a store (or a results table) with
plotly: the x axis is any cost column (MACs, parameters, the latency of any hardware config), the
y axis the task metric, and the Pareto front of that pair is highlighted. Hovering a point shows
its arch and all its metrics; a box or lasso selection fills a table of the chosen sub-networks,
ready to export (:func:`nastools.export.export_subnet`, one button). Run headless (papermill,
nbconvert, a static viewer), the same output shows a static PNG of the front instead.

Example:
    >>> explorer = explore(exp.evaluator)  # doctest: +SKIP
    >>> explorer  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nastools.analysis import front_mask
from nastools.evaluation import Evaluator, wide
from nastools.experiments.plotting import MILLIONS, axis_label, plot_front
from nastools.objectives import Objective, parse_objectives

__all__ = ["FrontExplorer", "explore", "explorer_table", "selection_html"]


def explorer_table(evaluator: Evaluator, archs: Iterable[str] | None = None) -> pd.DataFrame:
    """Every arch the store holds a task measurement of, one column per metric and hardware config.

    Args:
        evaluator: Its supernet and store.
        archs: Only these arch keys (default: all with the task metric).

    Returns:
        ``arch`` and one column per stored metric (``top1``, ``macs``, ``latency_ms@cpu-t1-b1`` ...),
        the latest value of each; latency timed on another machine is left out. MACs and parameters
        that can be counted without a forward pass are counted (and stored) where missing.
    """
    supernet = evaluator.supernet
    rows = evaluator.store.measurements(
        supernet_id=supernet.supernet_id, checkpoint_hash=supernet.checkpoint_hash
    )
    validated = rows.loc[rows["metric"] == supernet.task_metric.name, "arch"].unique()
    counted = list(evaluator.free({"macs": "min", "params": "min"}))  # exact counts, no validation
    if len(validated) and counted:  # a search on latency stored none: count them (and store them) now
        evaluator.measure([supernet.space.from_key(key) for key in validated], counted)
        rows = evaluator.store.measurements(
            supernet_id=supernet.supernet_id, checkpoint_hash=supernet.checkpoint_hash
        )
    hosts = {target.key: target.host() for target in _targets(evaluator, rows)}
    rows = rows[(rows["host"] == "") | (rows["host"] == rows["hardware"].map(lambda key: hosts.get(key, "")))]
    table = wide(rows.drop_duplicates(["arch", "metric", "hardware"], keep="last"))
    table = table[table[supernet.task_metric.name].notna()] if supernet.task_metric.name in table else table
    if archs is not None:
        wanted = list(dict.fromkeys(archs))
        table = table.set_index("arch").loc[[a for a in wanted if a in set(table["arch"])]].reset_index()
    return table.reset_index(drop=True)


def _targets(evaluator: Evaluator, rows: pd.DataFrame) -> list:
    keys = [k for k in rows["hardware"].unique() if k]
    targets = []
    for key in keys:
        try:
            targets.append(evaluator.hardware([key])[0])
        except ValueError:  # a key this machine cannot measure (a GPU config) keeps its rows out
            continue
    return targets


class FrontExplorer:
    """An interactive front of validated sub-networks (see :func:`explore`).

    Attributes:
        table: One row per sub-network: ``arch``, the metric columns.
        selected: The arch keys selected last (box or lasso).
        widget: The ipywidgets box (figure, controls, table) shown in JupyterLab.
    """

    def __init__(
        self,
        table: pd.DataFrame,
        directions: Mapping[str, str],
        *,
        y: str,
        x: str,
        supernet: Any = None,
        store: Any = None,
        out_dir: str | Path = "exported",
        title: str | None = None,
    ) -> None:
        self.table = table.reset_index(drop=True)
        self.directions = dict(directions)
        self.y, self.x = y, x
        self.supernet, self.store = supernet, store
        self.out_dir = Path(out_dir)
        self.title = title
        self.selected: list[str] = []
        self._widget = None

    @property
    def costs(self) -> list[str]:
        """The columns the x axis can show (everything minimised but the task metric)."""
        return [
            c for c in self.table.columns if c not in ("arch", self.y) and self.directions.get(c) == "min"
        ]

    def front(self, x: str | None = None) -> pd.DataFrame:
        """The Pareto front of ``(x, y)``, sorted by ``x``."""
        x = x or self.x
        mask = front_mask(self.table.dropna(subset=[x, self.y]), {self.y: self.directions[self.y], x: "min"})
        return self.table.dropna(subset=[x, self.y])[mask].sort_values(x)

    def _hover(self) -> list[str]:
        metrics = [c for c in self.table.columns if c != "arch"]
        texts = []
        for _, row in self.table.iterrows():
            values = "<br>".join(f"{axis_label(m)}: {_shown(m, row[m])}" for m in metrics if pd.notna(row[m]))
            arch = row["arch"].replace(",", ", ")
            texts.append(f"{values}<br><br><i>{'<br>'.join(_wrap(arch, 70))}</i>")
        return texts

    @property
    def widget(self) -> Any:
        """The live widget: plotly figure, axis and config chooser, selection table, export button."""
        if self._widget is None:
            self._widget = self._build()
        return self._widget

    def _build(self) -> Any:
        import ipywidgets as widgets
        import plotly.graph_objects as go

        figure = go.FigureWidget(
            layout={
                "height": 460,
                "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
                "dragmode": "select",
                "hovermode": "closest",
                "title": self.title,
                "legend": {"orientation": "h", "y": -0.18},
            }
        )
        figure.add_scatter(
            x=self.table[self.x],
            y=self.table[self.y],
            mode="markers",
            name="validated",
            marker={"size": 8, "color": "rgba(120,120,120,0.55)"},
            text=self._hover(),
            hovertemplate="%{text}<extra></extra>",
            customdata=self.table["arch"],
        )
        front = self.front()
        figure.add_scatter(
            x=front[self.x], y=front[self.y], mode="lines+markers", name="front", line={"shape": "hv"},
            marker={"size": 9}, hoverinfo="skip",
        )  # fmt: skip
        choose = widgets.Dropdown(options=self.costs, value=self.x, description="x axis")
        table_view = widgets.HTML(
            value="<i>select sub-networks (box or lasso) to list them here</i>",
            layout={"max_height": "260px", "overflow": "auto"},  # a large selection scrolls
        )
        export = widgets.Button(
            description="export selected", disabled=True, icon="download", layout={"width": "auto"}
        )
        status = widgets.HTML()

        def redraw(x: str) -> None:
            front = self.front(x)
            with figure.batch_update():
                figure.data[0].x = self.table[x]
                figure.data[1].x, figure.data[1].y = front[x], front[self.y]
                figure.layout.xaxis.title = axis_label(x)
            self.x = x

        def on_select(trace: Any, points: Any, selector: Any) -> None:
            self.selected = [self.table["arch"].iloc[i] for i in points.point_inds]
            chosen = self.table.iloc[list(points.point_inds)]
            table_view.value = selection_html(chosen)
            export.disabled = not self.selected or self.supernet is None

        def on_export(_: Any) -> None:
            # a widget callback's exception only reaches the kernel's log: show it where the user looks
            export.disabled = True
            keys, written = list(self.selected), []
            try:
                for i, key in enumerate(keys):
                    status.value = f"exporting {i + 1}/{len(keys)} ..."
                    written += self.export([key], start=i)
            except Exception as error:  # noqa: BLE001 - reported in the widget, nothing else to do here
                status.value = f"<b style='color:#b00'>export failed: {html.escape(str(error))}</b>"
            else:
                status.value = f"wrote {len(written)} sub-network(s) to {self.out_dir}"
            finally:
                export.disabled = not self.selected

        choose.observe(lambda change: redraw(change["new"]), names="value")
        figure.data[0].on_selection(on_select)
        export.on_click(on_export)
        figure.layout.xaxis.title = axis_label(self.x)
        figure.layout.yaxis.title = axis_label(self.y)
        return widgets.VBox([choose, figure, table_view, widgets.HBox([export, status])])

    def export(self, archs: Sequence[str] | None = None, *, start: int = 0) -> list[Path]:
        """Export the selected (or given) sub-networks into ``out_dir/<n>/`` (see :func:`export_subnet`).

        Args:
            archs: Arch keys (default: the selection).
            start: Number of the first folder (``out_dir/<start>/``, then up).

        Returns:
            Each sub-network's folder, in order.
        """
        from nastools.export import export_subnet

        if self.supernet is None:
            raise ValueError("this explorer has no supernet to export from: build it with explore(evaluator)")
        keys = list(archs if archs is not None else self.selected)
        return [
            export_subnet(
                self.supernet, self.supernet.space.from_key(key), self.out_dir / str(i), store=self.store
            )[0].parent
            for i, key in enumerate(keys, start=start)
        ]

    def png(self) -> bytes:
        """The static front (matplotlib) as PNG bytes: what headless runs show."""
        import matplotlib.pyplot as plt

        figure = plot_front(
            self.table, self.x, self.y, {self.y: self.directions[self.y], self.x: "min"}, title=self.title
        )
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        plt.close(figure)
        return buffer.getvalue()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = {"image/png": base64.b64encode(self.png()).decode()}
        with contextlib.suppress(ImportError):  # no plotly / ipywidgets: the static front only
            bundle.update(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["text/plain"] = f"FrontExplorer({len(self.table)} sub-networks, front of {self.y} vs {self.x})"
        return bundle


def explore(
    source: Evaluator | pd.DataFrame,
    objectives: Mapping[str, str] | Iterable[Objective] | None = None,
    *,
    x: str | None = None,
    archs: Iterable[str] | None = None,
    out_dir: str | Path = "exported",
    title: str | None = None,
) -> FrontExplorer:
    """An interactive front of every validated sub-network (hover: arch and metrics; select: a table).

    Args:
        source: An :class:`~nastools.evaluation.Evaluator` (its store's sub-networks, and export
            available) or a table with ``arch`` and metric columns (e.g. ``tactic.results()``).
        objectives: Directions by column, in any form :func:`~nastools.objectives.parse_objectives`
            reads (a dict, ``tactic.objectives``, a stored search's ``[[label, direction], ...]``);
            default: the supernet's task metric and every cost minimised; needed for a table. For
            a table the y axis is the first maximised objective, else the first one, in the order
            given (a search's first objective is what it ranks by).
        x: The cost on the x axis first (default: the first latency column, else ``macs``).
        archs: Only these arch keys.
        out_dir: Where the export button writes.
        title: Figure title.

    Raises:
        ValueError: Nothing validated yet, a table without ``objectives``, or an objective that
            names no column of the results (a typo such as ``"mac"``).
    """
    supernet = store = None
    given = _directions(objectives) if objectives is not None else {}
    if isinstance(source, Evaluator):
        supernet, store = source.supernet, source.store
        table = explorer_table(source, archs)
        task = supernet.task_metric
        directions = {c: "min" for c in table.columns if c != "arch"} | {task.name: task.direction}
        directions.update(given)
        y = task.name
    else:
        if objectives is None:
            raise ValueError("explore(table) needs objectives, e.g. {'top1': 'max', 'macs': 'min'}")
        directions = given
        table = source.loc[:, [c for c in source.columns if c == "arch" or c in directions]]
        y = next((c for c, d in directions.items() if d == "max"), next(iter(directions)))
    unknown = [label for label in given if label not in table.columns]
    if unknown and not table.empty:
        columns = [c for c in table.columns if c != "arch"]
        raise ValueError(
            f"objective(s) {unknown} name no column of the results, which has {columns}: fix the name, "
            "or measure it first"
        )
    table = table.dropna(axis=1, how="all")
    if table.empty or y not in table:
        raise ValueError("no validated sub-networks to explore yet: run a search (or measure some) first")
    costs = [c for c in table.columns if c not in ("arch", y) and directions.get(c) == "min"]
    if not costs:
        raise ValueError(f"nothing to plot {y} against: measure a cost (macs, params, latency_ms) too")
    if x is None:
        x = next((c for c in costs if c.startswith("latency_ms@")), "macs" if "macs" in costs else costs[0])
    if x not in costs:
        raise ValueError(f"x={x!r} is not a cost column here; choose one of {costs}")
    return FrontExplorer(
        table, directions, y=y, x=x, supernet=supernet, store=store, out_dir=out_dir, title=title
    )


def _directions(objectives: Mapping[str, str] | Iterable[Objective]) -> dict[str, str]:
    """``{label: direction}`` in the order given."""
    return {o.label: o.direction for o in parse_objectives(objectives)}


def selection_html(chosen: pd.DataFrame) -> str:
    """The selected sub-networks as an HTML table: units in the headers, millions as millions.

    Example:
        >>> html = selection_html(pd.DataFrame({"arch": ["a"], "macs": [4620288.0], "top1": [float("nan")]}))
        >>> "MACs (millions)" in html and "4.62" in html and "not measured" in html
        True
    """
    table = chosen.drop(columns="arch")
    shown = pd.DataFrame({axis_label(c): [_shown(c, v) for v in table[c]] for c in table.columns})
    return shown.to_html(index=False, classes="nastools-selected", escape=True)


def _shown(column: str, value: Any) -> str:
    """A value as its axis label's unit says: MACs and parameters in millions, 4 digits otherwise."""
    if pd.isna(value):
        return "not measured"
    if column.partition("@")[0] in MILLIONS:
        return f"{value / 1e6:.3g}"
    return f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for part in text.split(" "):
        if len(line) + len(part) > width:
            lines.append(line.rstrip())
            line = ""
        line += part + " "
    return [*lines, line.rstrip()]
