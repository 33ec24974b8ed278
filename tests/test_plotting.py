import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from nastools.experiments import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_front_draws_the_front_as_a_step():
    table = pd.DataFrame({"top1": [80.0, 90.0, 85.0, 70.0], "macs": [1.0, 3.0, 4.0, 2.0]})
    fig = plotting.plot_front(table, "macs", "top1", {"top1": "max", "macs": "min"}, title="t")
    ax = fig.axes[0]
    (line,) = ax.lines
    assert line.get_xdata().tolist() == [1.0, 3.0]  # the two non-dominated points, sorted by macs
    assert ax.get_xlabel() == "MACs (millions)" and ax.get_title() == "t"


def test_plot_cross_hardware_and_matrix():
    points = pd.DataFrame(
        {
            "found_on": ["a", "a", "b", "b"] * 2,
            "measured_on": ["a"] * 4 + ["b"] * 4,
            "arch": list("xyxz") * 2,
            "top1": [80.0, 90.0, 80.0, 85.0] * 2,
            "latency_ms": [1.0, 2.0, 1.0, 1.5, 2.0, 1.0, 2.0, 0.5],
        }
    )
    fig = plotting.plot_cross_hardware(points)
    assert len(fig.axes) == 2 and all(len(ax.lines) == 2 for ax in fig.axes)
    matrix = pd.DataFrame(
        {
            "found_on": ["a", "a", "b", "b"],
            "measured_on": ["a", "b", "a", "b"],
            "hv_lost_pct": [0.0, 5.0, 3.0, 0.0],
        }
    )
    fig = plotting.plot_hv_matrix(matrix)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["0.0", "5.0", "3.0", "0.0"]


def test_plot_hv_traces_has_one_line_per_tactic():
    traces = pd.DataFrame(
        {
            "tactic": ["a"] * 4 + ["b"] * 4,
            "seed": [0, 0, 1, 1] * 2,
            "n_validated": [10, 20] * 4,
            "hypervolume": [0.1, 0.2, 0.15, 0.25, 0.2, 0.3, 0.2, np.nan],
        }
    )
    fig = plotting.plot_hv_traces(traces, reference=0.4, title="x")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["a", "b"] and ax.get_ylabel() == "hypervolume"


def test_plot_snapshots_one_panel_per_search():
    snapshots = pd.DataFrame(
        {
            "search": ["r"] * 3 + ["w"] * 3,
            "generation": [0, 1, 2] * 2,
            "top1": [80.0, 85.0, 90.0, 88.0, 89.0, 91.0],
            "latency": [1.0, 1.5, 2.0, 1.2, 1.3, 1.4],
        }
    )
    fig = plotting.plot_snapshots(snapshots, "latency", "top1")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["r", "w"] and fig.axes[-1].get_ylabel() == "generation"  # the colour bar


def test_plot_clusters_marks_noise():
    embedding = np.arange(12, dtype=float).reshape(6, 2)
    fig = plotting.plot_clusters(embedding, [0, 0, 1, 1, -1, -1])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["cluster 0", "cluster 1", "noise"]


def test_plot_learning_curves_and_scatter():
    summary = pd.DataFrame(
        {
            "target": ["top1"] * 4 + ["lat"] * 2,
            "kind": ["ridge", "ridge", "svr", "svr", "ridge", "ridge"],
            "train_size": [10, 20, 10, 20, 10, 20],
            "mape_mean": [5.0, 4.0, 6.0, 3.0, 9.0, 8.0],
            "mape_std": [1.0, 0.5, 1.0, np.nan, 1.0, 1.0],
        }
    )
    fig = plotting.plot_learning_curves(summary, "mape")
    assert [ax.get_title() for ax in fig.axes] == ["top-1 (%)", "lat"]
    assert fig.axes[0].get_ylabel() == "MAPE (%)"
    table = pd.DataFrame({"actual": [1.0, 2.0, 3.0], "predicted": [1.1, 1.9, 3.2]})
    fig = plotting.plot_predicted_vs_actual(table, 1.0, title="top1")
    assert "tau = 1.00" in fig.axes[0].get_title()


def test_plot_validated_one_front_per_tactic():
    results = pd.DataFrame(
        {
            "tactic": ["w", "w", "c", "c"],
            "top1": [90.0, 91.0, 80.0, 85.0],
            "macs": [5.0, 6.0, 1.0, 2.0],
        }
    )
    fig = plotting.plot_validated(results, "macs", "top1", {"top1": "max", "macs": "min"})
    assert len(fig.axes[0].lines) == 2


def test_fronts_follow_the_directions_of_a_minimised_task_metric():
    table = pd.DataFrame({"perplexity": [3.0, 2.0, 2.5, 4.0], "macs": [1.0, 3.0, 4.0, 0.5]})
    fig = plotting.plot_front(table, "macs", "perplexity", {"perplexity": "min", "macs": "min"})
    (line,) = fig.axes[0].lines
    assert line.get_xdata().tolist() == [0.5, 1.0, 3.0]  # (4.0, 2.5) is dominated by (3.0, 2.0)
    points = pd.DataFrame(
        {
            "found_on": ["a", "a", "a"],
            "measured_on": ["a", "a", "a"],
            "arch": list("xyz"),
            "perplexity": [3.0, 2.0, 2.5],
            "latency_ms": [1.0, 2.0, 3.0],
        }
    )
    fig = plotting.plot_cross_hardware(points, "perplexity", "min")
    (front,) = fig.axes[0].lines
    assert front.get_xdata().tolist() == [1.0, 2.0] and fig.axes[0].get_ylabel() == "perplexity"


def test_axes_carry_units_and_millions_not_raw_counts():
    table = pd.DataFrame({"top1": [80.0, 90.0], "macs": [2.0e6, 19_447_808.0]})
    fig = plotting.plot_front(table, "macs", "top1", {"top1": "max", "macs": "min"})
    ax = fig.axes[0]
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert ax.get_ylabel() == "top-1 (%)" and ax.get_xlabel() == "MACs (millions)"
    assert ticks and all("e+" not in t and len(t.replace("−", "-")) <= 5 for t in ticks), ticks
    assert plotting.axis_label("latency_ms@cpu-t2-b64") == "latency on cpu-t2-b64 (ms)"


def test_palettes_do_not_repeat_and_many_clusters_fit():
    colours = plotting.palette(38)
    assert len({tuple(round(c, 4) for c in colour) for colour in colours}) == 38
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(-1, 37), 5)
    fig = plotting.plot_clusters(rng.normal(size=(len(labels), 2)), labels)
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["noise"]  # 37 clusters: colours, no 38-entry legend
    assert "37 clusters" in fig.axes[0].get_title()


def test_hv_loss_heatmap_is_centred_at_zero():
    matrix = pd.DataFrame(
        {
            "found_on": ["a", "a", "b", "b"],
            "measured_on": ["a", "b", "a", "b"],
            "hv_lost_pct": [0.0, 6.0, -2.0, 0.0],
        }
    )
    fig = plotting.plot_hv_matrix(matrix)
    mesh = fig.axes[0].collections[0]
    low, high = mesh.norm.vmin, mesh.norm.vmax
    assert low < 0 < high and low == pytest.approx(-high)  # 0 sits at the centre of the colour map


def test_hv_trace_legend_is_outside_the_curves():
    traces = pd.DataFrame(
        {
            "tactic": ["a"] * 3 + ["b"] * 3,
            "seed": 0,
            "n_validated": [10, 20, 30] * 2,
            "hypervolume": [0.1, 0.5, 0.6] * 2,
        }
    )
    fig = plotting.plot_hv_traces(traces)
    fig.canvas.draw()
    legend = fig.axes[0].get_legend().get_window_extent()
    axes = fig.axes[0].get_window_extent()
    assert legend.x0 >= axes.x1  # beside the axes, covering nothing
