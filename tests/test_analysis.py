"""nastools.analysis: traces, hypervolume boxes, hardware transfer, result tables, predictor quality."""

import json

import numpy as np
import pandas as pd
import pytest
from helpers import ToySupernet

from nastools import analysis
from nastools.evaluation import Evaluator
from nastools.hypervolume import HypervolumeIndicator
from nastools.metrics import Metric
from nastools.objectives import Objective
from nastools.search import HypervolumeTrace, RandomSearch, popdb_space, run_tactic
from nastools.space import SearchSpace
from nastools.supernets.mobilenetv3 import mobilenetv3_space

OBJECTIVES = {"score": "max", "macs": "min"}


@pytest.fixture(scope="module")
def space():
    return mobilenetv3_space()


def test_traces_on_grid_aligns_runs():
    traces = pd.DataFrame(
        {
            "tactic": ["a", "a", "b", "b", "b"],
            "seed": [0, 0, 0, 0, 0],
            "n_validated": [10, 20, 5, 15, 25],
            "hypervolume": [0.1, 0.3, 0.05, 0.2, 0.4],
        }
    )
    grid = analysis.traces_on_grid(traces, [10, 20, 30])
    assert list(grid.columns) == ["tactic", "seed", "n_validated", "hypervolume"]
    assert grid.query("tactic == 'a'")["hypervolume"].tolist() == [0.1, 0.3, 0.3]
    assert grid.query("tactic == 'b'")["hypervolume"].tolist() == [0.05, 0.2, 0.4]
    assert sorted(analysis.traces_on_grid(traces)["n_validated"].unique()) == [5, 10, 15, 20, 25]
    assert np.isnan(analysis.traces_on_grid(traces, [4]).query("tactic == 'a'")["hypervolume"]).all()


def test_validations_to_reach_and_hypervolume_at_read_unsorted_traces():
    trace = pd.DataFrame({"n_validated": [30, 10, 20], "hypervolume": [0.6, 0.2, 0.5]})
    assert analysis.validations_to_reach(trace, 0.5) == 20 and analysis.validations_to_reach(trace, 0.2) == 10
    assert analysis.hypervolume_at(trace, 25) == 0.5 and analysis.hypervolume_at(trace, 1000) == 0.6
    with pytest.raises(ValueError, match="missing.*hypervolume"):
        analysis.hypervolume_at(trace.rename(columns={"hypervolume": "hv"}), 10)


def test_validation_ratio_per_seed():
    traces = pd.DataFrame(
        {
            "tactic": ["weak"] * 3 + ["conc"] * 3 + ["weak"] * 2 + ["conc"] * 2,
            "seed": [0] * 6 + [1] * 4,
            "n_validated": [100, 400, 800, 50, 100, 200, 100, 200, 100, 200],
            "hypervolume": [0.5, 0.7, 0.7, 0.6, 0.72, 0.8, 0.4, 0.9, 0.3, 0.5],
        }
    )
    ratio = analysis.validation_ratio(traces, "weak", "conc")
    assert list(ratio.columns) == ["seed", "target_hv", "baseline_validations", "tactic_validations", "ratio"]
    first = ratio.set_index("seed").loc[0]
    # the baseline first reaches its best (0.7) at 400; conc gets there at 100
    assert (first.target_hv, first.baseline_validations, first.tactic_validations) == (0.7, 400, 100)
    assert first.ratio == 4.0
    second = ratio.set_index("seed").loc[1]
    assert (
        second.baseline_validations == 200 and np.isnan(second.tactic_validations) and np.isnan(second.ratio)
    )
    only_one = traces[traces.tactic == "weak"]
    assert analysis.validation_ratio(only_one, "weak", "conc").empty  # no seed has both


def test_hypervolume_curve_rebuilds_the_trace_of_a_search():
    space = SearchSpace({"w": [1, 2, 3, 4, 5], "k": [3, 5, 7], "act": ["relu", "gelu"]})

    def values(archs):
        return {
            "acc": np.array([a["w"] * a["k"] + (1 if a["act"] == "gelu" else 0) for a in archs], float),
            "cost": np.array([a["w"] ** 2 + a["k"] for a in archs], float),
        }

    objectives = {"acc": "max", "cost": "min"}
    indicator = HypervolumeIndicator(objectives, {"acc": (0.0, 40.0), "cost": (0.0, 40.0)})
    tactic, trace = RandomSearch(space, objectives, 20, batch_size=6, seed=1), HypervolumeTrace(indicator)
    while archs := tactic.ask():
        tactic.tell(archs, values(archs))
        trace(tactic)
    recorded = trace.frame()
    rebuilt = analysis.hypervolume_curve(tactic.values, indicator, recorded["n_validated"])
    pd.testing.assert_frame_equal(rebuilt, recorded)
    clipped = analysis.hypervolume_curve(tactic.values, indicator, [0, 6, 1000])
    assert clipped["n_validated"].tolist() == [6, tactic.n_validated]
    assert clipped["hypervolume"].iloc[-1] == pytest.approx(trace.last)
    nothing = analysis.hypervolume_curve({"acc": [], "cost": []}, indicator, [5, 10])
    assert nothing.empty and list(nothing.columns) == ["n_validated", "hypervolume"]


# --- hypervolume boxes ------------------------------------------------------------------------------


class BoundedToy(ToySupernet):
    """The toy supernet with a declared range for its task metric."""

    metrics = (Metric("score", "max", "points", bounds=(0.0, 20.0)),)


def test_reference_bounds_span_the_extremes_with_a_margin(tmp_path):
    supernet = ToySupernet(widths=(4, 8, 16))
    evaluator = Evaluator(supernet, tmp_path / "r.sqlite", progress=False)
    bounds = analysis.reference_bounds(evaluator, OBJECTIVES)
    smallest, largest = supernet.extremes()
    assert (smallest["width"], largest["width"]) == (4, 16)
    # score: 4 (width 4, relu) .. 16.5 (width 16, gelu); macs: 10 per hidden unit (8 in, 2 out)
    assert bounds["score"] == pytest.approx((4.0 - 0.625, 16.5 + 0.625))
    assert bounds["macs"] == pytest.approx((40.0 - 6.0, 160.0 + 6.0))
    assert analysis.reference_bounds(evaluator, OBJECTIVES, margin=0.0)["macs"] == pytest.approx(
        (40.0, 160.0)
    )
    indicator = analysis.hypervolume_indicator(evaluator, OBJECTIVES)
    assert indicator.bounds == bounds
    # every sub-network lies inside the box: none is clipped
    archs = [
        supernet.space.from_key(k) for k in {supernet.space.key(a) for a in supernet.space.sample(40, rng=0)}
    ]
    indicator(evaluator.values(archs, OBJECTIVES))
    assert indicator.n_clipped == 0


def test_reference_bounds_of_a_restricted_space_use_its_own_extremes(tmp_path):
    supernet = ToySupernet(widths=(4, 8, 16))
    evaluator = Evaluator(supernet, None, progress=False)
    narrow = supernet.space.restrict({"width": [8, 16], "act": ["relu"]})
    bounds = analysis.reference_bounds(evaluator, OBJECTIVES, space=narrow, margin=0.0)
    assert bounds == {"score": (8.0, 16.0), "macs": (80.0, 160.0)}
    other = SearchSpace({"width": [4, 8], "act": ["relu"]})
    with pytest.raises(ValueError, match="restriction of it"):
        analysis.reference_bounds(evaluator, OBJECTIVES, space=other)
    with pytest.raises(ValueError, match="margin"):
        analysis.reference_bounds(evaluator, OBJECTIVES, margin=-0.1)


def test_declared_metric_bounds_win_and_need_no_measurement():
    evaluator = Evaluator(BoundedToy(), None, progress=False)
    bounds = analysis.reference_bounds(evaluator, {"score": "max"})
    assert bounds == {"score": (0.0, 20.0)} and evaluator.n_measured == 0
    mixed = analysis.reference_bounds(
        evaluator, OBJECTIVES, space=evaluator.supernet.space.restrict({"width": [8]})
    )
    assert mixed["score"] == (0.0, 20.0)  # declared, whatever the space
    assert mixed["macs"] == pytest.approx((80.0 - 4.0, 80.0 + 4.0))  # one value: padded by 5 % of it


# --- hardware transfer ------------------------------------------------------------------------------


class _FakeEvaluator:
    """Answers ``values`` from tables: task metric per arch, latency per arch and hardware."""

    def __init__(self, space, top1, latency):
        self.supernet = type("S", (), {"space": space})()
        self.top1, self.latency, self.calls = top1, latency, []

    def values(self, archs, objectives):
        keys = [self.supernet.space.key(a) for a in archs]
        self.calls.append([o.label for o in objectives])
        out = {}
        for objective in objectives:
            if objective.hardware is None:
                out[objective.label] = np.array([self.top1[k] for k in keys])
            else:
                out[objective.label] = np.array([self.latency[objective.hardware][k] for k in keys])
        return out


def test_cross_hardware_measures_every_front_everywhere(space):
    archs = space.sample(4, rng=0)
    keys = [space.key(a) for a in archs]
    top1 = dict(zip(keys, [70.0, 80.0, 85.0, 90.0]))
    # on "a" latency grows with accuracy; on "b" the two middle archs swap their cost
    latency = {"a": dict(zip(keys, [1.0, 2.0, 3.0, 4.0])), "b": dict(zip(keys, [1.0, 3.5, 2.0, 4.0]))}
    evaluator = _FakeEvaluator(space, top1, latency)
    task = Objective("top1", "max")
    indicators = {
        h: HypervolumeIndicator(
            analysis.latency_objectives(task, h), {"top1": (60.0, 100.0), f"latency_ms@{h}": (0.0, 5.0)}
        )
        for h in ("a", "b")
    }
    fronts = {"a": keys, "b": [keys[0], keys[2], keys[3]]}
    points, matrix = analysis.cross_hardware(fronts, evaluator, indicators, task)
    assert len(points) == 2 * (4 + 3)
    assert list(points.columns) == ["found_on", "measured_on", "arch", "top1", "latency_ms"]
    on_b = points.query("found_on == 'a' and measured_on == 'b'").set_index("arch")["latency_ms"]
    assert on_b.to_dict() == latency["b"]  # a's front re-measured on b
    assert ["top1", "latency_ms@b"] in evaluator.calls
    assert matrix[["found_on", "measured_on"]].values.tolist() == [
        ["a", "a"],
        ["a", "b"],
        ["b", "a"],
        ["b", "b"],
    ]
    diagonal = matrix[matrix["found_on"] == matrix["measured_on"]]
    assert (diagonal["hv_lost_pct"] == 0).all() and (diagonal["hypervolume"] == diagonal["hv_own"]).all()
    lost = matrix.set_index(["found_on", "measured_on"])["hv_lost_pct"]
    assert lost[("b", "a")] > 0  # b's front lacks the arch that is cheap only on a
    assert lost[("a", "b")] == pytest.approx(0.0)  # a's front contains b's
    agreement = analysis.rank_agreement(points)
    assert agreement.iloc[0][["config_a", "config_b", "n_archs"]].tolist() == ["a", "b", 4]
    assert agreement.iloc[0]["kendall_tau"] == pytest.approx(4 / 6)  # one discordant pair of six


def test_latency_objectives_pair_the_task_with_latency_there():
    task = Objective("perplexity", "min")
    pair = analysis.latency_objectives(task, "cpu-t2-b1")
    assert pair == (task, Objective("latency_ms", "min", "cpu-t2-b1"))
    assert [o.label for o in pair] == ["perplexity", "latency_ms@cpu-t2-b1"]


# --- tables -------------------------------------------------------------------------------------------


def test_front_mask_respects_directions():
    table = pd.DataFrame({"top1": [90.0, 80.0, 85.0, 95.0], "latency": [10.0, 5.0, 12.0, 30.0]})
    assert analysis.front_mask(table, {"top1": "max", "latency": "min"}).tolist() == [True, True, False, True]
    assert analysis.front_mask(table, {"top1": "min", "latency": "min"}).tolist() == [
        False,
        True,
        False,
        False,
    ]
    assert analysis.front_mask(table.iloc[:0], {"top1": "max", "latency": "min"}).tolist() == []


def test_best_by_run_and_summary_table():
    results = pd.DataFrame(
        {
            "tactic": ["x"] * 4 + ["y"] * 2,
            "seed": [0, 0, 1, 1, 0, 0],
            "n_validated": [1, 2, 1, 2, 1, 2],
            "arch": list("abcdef"),
            "top1": [80.0, 85.0, 90.0, 70.0, 60.0, 65.0],
            "macs": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "front": True,
        }
    )
    best = analysis.best_by_run(results, "top1")
    assert best[["tactic", "seed", "validations", "arch", "top1", "macs"]].values.tolist() == [
        ["x", 0, 2, "b", 85.0, 2.0],
        ["x", 1, 2, "c", 90.0, 3.0],
        ["y", 0, 2, "f", 65.0, 6.0],
    ]
    assert "front" not in best.columns and "n_validated" not in best.columns
    final = pd.DataFrame({"tactic": ["x", "x", "y"], "seed": [0, 1, 0], "hypervolume": [0.2, 0.4, 0.1]})
    table = analysis.summary_table(best, ["validations", "top1", "macs"], final_hv=final).set_index("tactic")
    assert table.loc["x", "n_seeds"] == 2 and table.loc["x", "top1_mean"] == pytest.approx(87.5)
    assert table.loc["x", "top1_std"] == pytest.approx(2.5) and table.loc["y", "top1_std"] == 0
    assert table.loc["x", "hypervolume_mean"] == pytest.approx(0.3)
    assert list(table.index) == ["x", "y"]
    assert analysis.best_by_run(results, "macs", "min").iloc[0]["arch"] == "a"
    perplexity = results.rename(columns={"top1": "perplexity"})
    assert analysis.best_by_run(perplexity, "perplexity", "min")["arch"].tolist() == ["a", "d", "e"]


def test_popdb_tables_report_what_was_removed(space):
    archs = [dict(a, ks_0=7, e_0=6) for a in space.sample(60, rng=0)]
    result = popdb_space(space, archs, 0.2, min_cluster_size=5)
    table, sizes = analysis.popdb_tables(result, space)
    assert len(table) == len(space.names)
    row = table.set_index("parameter").loc["ks_0"]
    assert (row["n_before"], row["n_after"], row["kept"], row["removed"]) == (3, 1, "7", "3 5")
    assert sizes["size_after"] < sizes["size_before"] and 0 < sizes["size_ratio"] < 1
    assert sizes["size_after"] == result.space.size
    assert sizes["n_values_removed"] == int((table["n_before"] - table["n_after"]).sum()) >= 4
    assert sizes["n_parameters_reduced"] == int((table["n_after"] < table["n_before"]).sum()) >= 2
    labels = np.asarray(result.labels)
    assert sizes["noise_share"] == pytest.approx(np.mean(labels < 0))
    assert sizes["n_clusters"] == len(set(labels[labels >= 0].tolist()))
    json.dumps(sizes)


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embed_2d(method, space):
    points = analysis.embed_2d(space.features(space.sample(20, rng=0)), method, seed=0)
    assert points.shape == (20, 2) and np.isfinite(points).all()
    again = analysis.embed_2d(space.features(space.sample(20, rng=0)), method, seed=0)
    np.testing.assert_allclose(points, again)


def test_embed_2d_rejects_unknown_method():
    with pytest.raises(ValueError, match="umap"):
        analysis.embed_2d(np.eye(4), "umap")


def test_space_summary(space):
    summary = analysis.space_summary(space, {"ks": "kernel size"})
    assert summary["parameters"].sum() == len(space.names)
    by_kind = summary.set_index("kind")
    assert by_kind.loc["ks", "choices"] == "3 5 7" and by_kind.loc["ks", "meaning"] == "kernel size"
    assert by_kind.loc["d", "parameters"] == 5 and by_kind.loc["e", "meaning"] == ""
    mixed = SearchSpace({"se": [False, True], "se_ratio": [0.25, 0.5], "act": ["relu", "gelu"]})
    assert analysis.space_summary(mixed).set_index("kind").loc["se", "choices"] == "False 0.25 0.5 True"


# --- predictor quality ----------------------------------------------------------------------------------


def _linear_target(archs):
    return np.array([50.0 + 3 * sum(a[f"d_{s}"] for s in range(5)) + a["ks_0"] for a in archs])


def test_predicted_vs_actual_and_learning_curves(space):
    archs = space.sample(90, rng=0)
    y = _linear_target(archs)
    table, tau = analysis.predicted_vs_actual(space, archs, y, "ridge", n_train=60, seed=0)
    assert list(table.columns) == ["actual", "predicted"] and len(table) == 30 and tau > 0.7
    assert set(table["actual"]) <= set(y)
    with pytest.raises(ValueError, match="n_train"):
        analysis.predicted_vs_actual(space, archs, y, n_train=89)
    curves = analysis.learning_curves(
        space, {"a": archs, "b": archs[:45]}, {"a": y, "b": y[:45]}, ["ridge"], [10, 40, 70], 20, 2, seed=0
    )
    assert set(curves["target"]) == {"a", "b"}
    assert curves.groupby("target")["n_archs"].first().to_dict() == {"a": 90, "b": 45}
    assert sorted(curves.query("target == 'a'")["train_size"].unique()) == [10, 40, 70]
    assert sorted(curves.query("target == 'b'")["train_size"].unique()) == [10]  # 45 - 15 test = 30 left
    summary = analysis.learning_summary(curves)
    assert list(summary.columns)[:3] == ["target", "kind", "train_size"]
    assert {"mape_mean", "kendall_tau_std", "n_trials"} <= set(summary.columns)
    taus = analysis.tau_table(curves).set_index("target")
    assert taus.loc["a", "train_size"] == 70 and taus.loc["b", "train_size"] == 10
    assert taus.loc["a", "kendall_tau_mean"] > 0.7


def test_run_tactic_values_feed_the_analysis(tmp_path):
    """End to end on the toy supernet: a recorded search, rebuilt from the store, gives its trace."""
    supernet = ToySupernet(widths=(2, 4, 8, 16, 32))
    evaluator = Evaluator(supernet, tmp_path / "r.sqlite", progress=False)
    indicator = analysis.hypervolume_indicator(evaluator, OBJECTIVES)
    trace = HypervolumeTrace(indicator)
    tactic = run_tactic(
        RandomSearch(supernet.space, OBJECTIVES, 12, batch_size=4, seed=0),
        evaluator,
        search_id="r0",
        callbacks=[trace],
        progress=False,
    )
    order = evaluator.store.validations("r0")
    assert order == tactic.validated
    values = evaluator.values([supernet.space.from_key(k) for k in order], OBJECTIVES)
    rebuilt = analysis.hypervolume_curve(values, indicator, trace.frame()["n_validated"])
    pd.testing.assert_frame_equal(rebuilt, trace.frame())
