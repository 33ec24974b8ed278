import doctest
import json

import numpy as np
import pandas as pd
import pytest
from helpers import tiny_supernet

from nastools import experiments as ex
from nastools.evaluation import Evaluator
from nastools.search import HypervolumeIndicator, best_population, popdb_space
from nastools.space import mobilenetv3_space

OBJECTIVES = {"top1": "max", "macs": "min"}


@pytest.fixture(scope="module")
def supernet():
    return tiny_supernet()


@pytest.fixture(scope="module")
def space():
    return mobilenetv3_space()


@pytest.fixture
def evaluator(supernet, tmp_path):
    return Evaluator(supernet, tmp_path / "results.sqlite", progress=False)


def test_doctests():
    failures, tried = doctest.testmod(ex, optionflags=doctest.ELLIPSIS)
    assert tried > 5 and failures == 0


@pytest.mark.parametrize("kind", ["random", "nsga2", "concurrent", "weaknas"])
def test_tactics_start_from_the_common_random_population(kind, space):
    tactic = ex.make_tactic(kind, space, OBJECTIVES, 40, pop_size=6, weaknas_pool_size=200, seed=3)
    assert tactic.ask() == space.sample(6, rng=3)


def test_full_search_initial_sample_extends_the_common_population(space):
    tactic = ex.make_tactic("full", space, OBJECTIVES, 40, pop_size=6, n_initial=10, seed=3)
    first = tactic.ask()
    assert len(first) == 10 and first[:6] == space.sample(6, rng=3)


def test_warm_start_needs_and_uses_initial_archs(space):
    with pytest.raises(ValueError, match="initial_archs"):
        ex.make_tactic("warm-start", space, OBJECTIVES, 20, pop_size=4)
    warm = space.sample(4, rng=11)
    tactic = ex.make_tactic("warm-start", space, OBJECTIVES, 20, pop_size=4, initial_archs=warm)
    assert tactic.ask() == warm
    with pytest.raises(ValueError, match="unknown tactic kind"):
        ex.make_tactic("annealing", space, OBJECTIVES, 20)


def test_search_id_covers_settings_and_space(space):
    def sid(**kwargs):
        options = {"pop_size": 4, "seed": 0} | kwargs
        return ex.search_id(
            "c", ex.make_tactic("concurrent", options.pop("space", space), OBJECTIVES, 20, **options)
        )

    assert sid() == sid()
    assert sid() != sid(seed=1)
    assert sid() != sid(pop_size=5)
    assert sid() != sid(space=space.restrict({"ks_0": [7]}))
    assert sid().startswith("c-") and len(sid()) == len("c-") + 8


def test_run_trials_collects_traces_and_reruns_for_free(supernet, evaluator, one_thread):
    hv = ex.hypervolume_indicator(evaluator, OBJECTIVES)
    exact = ex.exact_objectives(supernet, OBJECTIVES)

    def build(kind, seed):
        return ex.make_tactic(
            kind, supernet.space, OBJECTIVES, 6, pop_size=3, n_gen=3, exact=exact, hypervolume=hv, seed=seed
        )

    runs = ex.run_trials(["random", "concurrent"], [0], build, evaluator, label="t-", names={"random": "rnd"})
    assert list(runs.traces.columns) == ["tactic", "seed", "n_validations", "hypervolume"]
    assert set(runs.traces["tactic"]) == {"rnd", "concurrent"}
    assert runs.traces.groupby(["tactic", "seed"])["n_validations"].max().eq(6).all()
    assert runs.traces["hypervolume"].between(0, 1).all()
    assert {"tactic", "seed", "arch", "top1", "macs", "front"} <= set(runs.results.columns)
    # the first population is shared by both tactics of a seed: measured once
    first = runs.results.query("seed == 0 and n_validations <= 3")
    assert set(first.query("tactic == 'rnd'")["arch"]) == set(first.query("tactic == 'concurrent'")["arch"])
    measured = evaluator.n_measured
    again = ex.run_trials(
        ["random", "concurrent"], [0], build, evaluator, label="t-", names={"random": "rnd"}
    )
    assert evaluator.n_measured == measured
    pd.testing.assert_frame_equal(again.results, runs.results)
    assert again.search_ids == runs.search_ids

    sid = runs.search_ids[("concurrent", 0)]
    assert len(best_population(evaluator.store, sid, supernet.space)) == 3  # pop_size
    history = ex.history_archs(evaluator, sid)
    assert len(history) >= 6 and len(history) % 3 == 0  # one population of 3 per recorded generation
    snapshots = ex.population_snapshots(evaluator, sid, OBJECTIVES, "conc")
    assert snapshots["generation"].min() == 0 and snapshots["generation"].nunique() >= 2
    assert snapshots[["top1", "macs"]].notna().all().all() and set(snapshots["search"]) == {"conc"}


def test_traces_on_grid_aligns_runs():
    traces = pd.DataFrame(
        {
            "tactic": ["a", "a", "b", "b", "b"],
            "seed": [0, 0, 0, 0, 0],
            "n_validations": [10, 20, 5, 15, 25],
            "hypervolume": [0.1, 0.3, 0.05, 0.2, 0.4],
        }
    )
    grid = ex.traces_on_grid(traces, [10, 20, 30])
    assert grid.query("tactic == 'a'")["hypervolume"].tolist() == [0.1, 0.3, 0.3]
    assert grid.query("tactic == 'b'")["hypervolume"].tolist() == [0.05, 0.2, 0.4]
    assert sorted(ex.traces_on_grid(traces)["n_validations"].unique()) == [5, 10, 15, 20, 25]


def test_front_mask_respects_directions():
    table = pd.DataFrame({"top1": [90.0, 80.0, 85.0, 95.0], "latency": [10.0, 5.0, 12.0, 30.0]})
    assert ex.front_mask(table, {"top1": "max", "latency": "min"}).tolist() == [True, True, False, True]
    assert ex.front_mask(table.iloc[:0], {"top1": "max", "latency": "min"}).tolist() == []


def test_cross_hardware_measures_every_front_everywhere(monkeypatch, space):
    archs = space.sample(4, rng=0)
    keys = [space.key(a) for a in archs]
    top1 = dict(zip(keys, [70.0, 80.0, 85.0, 90.0]))
    # on "a" latency grows with accuracy; on "b" the two middle archs swap their cost
    latency = {"a": dict(zip(keys, [1.0, 2.0, 3.0, 4.0])), "b": dict(zip(keys, [1.0, 3.5, 2.0, 4.0]))}

    def fake_measure(evaluator, archs, names):
        ks = [space.key(a) for a in archs]
        out = {"top1": np.array([top1[k] for k in ks])}
        for name in names[1:]:
            out[name] = np.array([latency[name.split("@")[1]][k] for k in ks])
        return out

    monkeypatch.setattr(ex, "measure_objectives", fake_measure)
    evaluator = type("E", (), {"supernet": type("S", (), {"space": space})()})()
    indicators = {
        h: HypervolumeIndicator(
            ex.latency_objectives(h), {"top1": (60.0, 100.0), f"latency_ms@{h}": (0.0, 5.0)}
        )
        for h in ("a", "b")
    }
    fronts = {"a": keys, "b": [keys[0], keys[2], keys[3]]}
    points, matrix = ex.cross_hardware(fronts, evaluator, indicators)
    assert len(points) == 2 * (4 + 3)
    assert set(points.columns) == {"found_on", "measured_on", "arch", "top1", "latency_ms"}
    diagonal = matrix[matrix["found_on"] == matrix["measured_on"]]
    assert (diagonal["hv_lost_pct"] == 0).all()
    lost = matrix.set_index(["found_on", "measured_on"])["hv_lost_pct"]
    assert lost[("b", "a")] > 0  # b's front lacks the arch that is cheap only on a
    assert lost[("a", "b")] == pytest.approx(0.0)  # a's front contains b's
    agreement = ex.rank_agreement(points)
    assert agreement.iloc[0][["config_a", "config_b", "n_archs"]].tolist() == ["a", "b", 4]
    assert agreement.iloc[0]["kendall_tau"] < 1


def test_best_by_run_and_summary_table():
    results = pd.DataFrame(
        {
            "tactic": ["x"] * 4 + ["y"] * 2,
            "seed": [0, 0, 1, 1, 0, 0],
            "n_validations": [1, 2, 1, 2, 1, 2],
            "arch": list("abcdef"),
            "top1": [80.0, 85.0, 90.0, 70.0, 60.0, 65.0],
            "macs": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "front": True,
        }
    )
    best = ex.best_by_run(results)
    assert best[["tactic", "seed", "validations", "arch", "top1", "macs"]].values.tolist() == [
        ["x", 0, 2, "b", 85.0, 2.0],
        ["x", 1, 2, "c", 90.0, 3.0],
        ["y", 0, 2, "f", 65.0, 6.0],
    ]
    final = pd.DataFrame({"tactic": ["x", "x", "y"], "seed": [0, 1, 0], "hypervolume": [0.2, 0.4, 0.1]})
    table = ex.summary_table(best, ["validations", "top1", "macs"], final_hv=final).set_index("tactic")
    assert table.loc["x", "n_seeds"] == 2 and table.loc["x", "top1_mean"] == pytest.approx(87.5)
    assert table.loc["x", "top1_std"] == pytest.approx(2.5) and table.loc["y", "top1_std"] == 0
    assert table.loc["x", "hypervolume_mean"] == pytest.approx(0.3)
    assert ex.best_by_run(results, "macs", "min").iloc[0]["arch"] == "a"


def test_popdb_tables_report_what_was_removed(space):
    archs = [dict(a, ks_0=7, e_0=6) for a in space.sample(60, rng=0)]
    result = popdb_space(space, archs, 0.2, min_cluster_size=5)
    table, sizes = ex.popdb_tables(result, space)
    assert len(table) == len(space.names)
    row = table.set_index("parameter").loc["ks_0"]
    assert (row["n_before"], row["n_after"], row["kept"], row["removed"]) == (3, 1, "7", "3 5")
    assert sizes["size_after"] < sizes["size_before"] and 0 < sizes["size_ratio"] < 1
    assert sizes["n_values_removed"] == int((table["n_before"] - table["n_after"]).sum()) >= 4
    assert 0 <= sizes["noise_share"] <= 1 and sizes["n_clusters"] >= 0
    json.dumps(sizes)


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embed_2d(method, space):
    points = ex.embed_2d(space.features(space.sample(20, rng=0)), method, seed=0)
    assert points.shape == (20, 2) and np.isfinite(points).all()


def test_embed_2d_rejects_unknown_method():
    with pytest.raises(ValueError, match="umap"):
        ex.embed_2d(np.eye(4), "umap")


def test_collect_archs_reuses_the_store_then_tops_up(supernet, evaluator):
    space = supernet.space
    stored = space.sample(3, rng=5)
    evaluator.measure(stored, ["macs"])
    reused = ex.collect_archs(evaluator, 5, seed=0, metric="macs")
    assert reused[:3] == stored and len({space.key(a) for a in reused}) == 5
    assert ex.collect_archs(evaluator, 2, seed=0, metric="macs") == stored[:2]
    fresh = ex.collect_archs(evaluator, 4, seed=0, reuse_store=False, metric="macs")
    assert fresh == space.sample(4, rng=np.random.default_rng(0))
    assert ex.measured_archs(evaluator, "macs")["arch"].tolist() == [space.key(a) for a in stored]
    assert ex.measured_archs(evaluator, "latency_ms", "cpu-t1-b1").empty


def _linear_target(space, archs):
    return np.array([50.0 + 3 * sum(a[f"d_{s}"] for s in range(5)) + a["ks_0"] for a in archs])


def test_predicted_vs_actual_and_learning_curves(space):
    archs = space.sample(90, rng=0)
    y = _linear_target(space, archs)
    table, tau = ex.predicted_vs_actual(space, archs, y, "ridge", n_train=60, seed=0)
    assert len(table) == 30 and tau > 0.7
    with pytest.raises(ValueError, match="n_train"):
        ex.predicted_vs_actual(space, archs, y, n_train=89)
    curves = ex.learning_curves(
        space, {"a": archs, "b": archs[:45]}, {"a": y, "b": y[:45]}, ["ridge"], [10, 40, 70], 20, 2, seed=0
    )
    assert set(curves["target"]) == {"a", "b"}
    assert sorted(curves.query("target == 'a'")["train_size"].unique()) == [10, 40, 70]
    assert sorted(curves.query("target == 'b'")["train_size"].unique()) == [10]  # 45 - 15 test = 30 left
    summary = ex.learning_summary(curves)
    assert {"target", "kind", "train_size", "mape_mean", "kendall_tau_std"} <= set(summary.columns)
    taus = ex.tau_table(curves).set_index("target")
    assert taus.loc["a", "train_size"] == 70 and taus.loc["b", "train_size"] == 10
    assert taus.loc["a", "kendall_tau_mean"] > 0.7


def test_small_helpers(supernet, space):
    assert ex.default_hardware_keys(["cpu-t1-b64"]) == ["cpu-t1-b64"]
    assert ex.default_hardware_keys()[0] == "cpu-t1-b1"
    assert ex.latency_objectives("cpu-t2-b1", "bleu") == {"bleu": "max", "latency_ms@cpu-t2-b1": "min"}
    exact = ex.exact_objectives(supernet, {"top1": "max", "macs": "min", "params": "min"})
    arch = supernet.space.sample(1, rng=0)[0]
    assert exact["macs"]([arch]) == [supernet.macs(arch)] and exact["params"]([arch]) == [
        supernet.params(arch)
    ]
    summary = ex.space_summary(space)
    assert summary["parameters"].sum() == len(space.names)
    assert summary.set_index("kind").loc["ks", "choices"] == "3 5 7"


def test_experiment_writes_files(supernet, evaluator, tmp_path):
    import matplotlib.pyplot as plt

    exp = ex.Experiment("nb", tmp_path, supernet, evaluator)
    assert exp.space is supernet.space and exp.store is evaluator.store
    exp.save_table(pd.DataFrame({"a": [1]}), "table")
    exp.save_json({"x": np.float64(0.5), "n": np.int64(3), "v": np.arange(2)}, "summary")
    fig, _ = plt.subplots()
    exp.save_figure(fig, "figure")
    plt.close(fig)
    assert [p.name for p in exp.written] == ["table.csv", "summary.json", "figure.png"]
    assert json.loads((tmp_path / "nb" / "summary.json").read_text()) == {
        "top1_kind": "measured",
        "x": 0.5,
        "n": 3,
        "v": [0, 1],
    }
    assert (tmp_path / "nb" / "figure.png").stat().st_size > 0


def test_open_experiment_on_the_ofa_problem_labels_surrogate_top1(shared_data, tmp_path):
    exp = ex.open_experiment("nb", tmp_path, "ofa-mbv3-w1.2", data_dir=shared_data)
    assert exp.top1_kind == "surrogate"
    assert sorted(exp.evaluator.latency_tables) == ["lut-i7-8700k", "lut-note10"]
    arch = exp.space.sample(1, rng=0)[0]
    row = exp.evaluator.measure(arch, ["top1", "latency_ms"], ["lut-note10", "lut-i7-8700k"])
    assert row["value"].between(0, 100).all() and len(row) == 3
    exp.save_json({"n": 1}, "summary")
    assert json.loads((tmp_path / "nb" / "summary.json").read_text())["top1_kind"] == "surrogate"


def test_open_experiment_on_the_ofa_problem_without_data_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="acc_predictor.pth.*Download it from"):
        ex.open_experiment("nb", tmp_path, "ofa-mbv3-w1.2", data_dir=tmp_path / "nowhere")
    exp = ex.open_experiment("nb", tmp_path, "digits-mbv3", data_dir=tmp_path / "nowhere")
    assert exp.evaluator.latency_tables == {}
    with pytest.raises(ValueError, match="lut-note10.*It comes from"):
        exp.evaluator.measure(exp.space.sample(1, rng=0), ["latency_ms"], ["lut-note10"])
