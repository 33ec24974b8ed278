"""The notebook application layer: sessions, tactics built from shared settings, recorded trials."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import ToySupernet, tiny_supernet

from nastools import experiments as ex
from nastools.analysis import hypervolume_indicator
from nastools.evaluation import Evaluator
from nastools.objectives import Objective
from nastools.search import (
    ConcurrentNAS,
    EvolutionarySearch,
    FullSearch,
    RandomSearch,
    WeakNAS,
    best_population,
)
from nastools.supernets.mobilenetv3 import mobilenetv3_space

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


@pytest.mark.parametrize("kind", ["random", "nsga2", "concurrent", "weaknas"])
def test_tactics_start_from_the_common_random_population(kind, space):
    settings = ex.TacticSettings(pop_size=6, weaknas_pool_size=200)
    tactic = ex.build_tactic(kind, space, OBJECTIVES, 40, settings, seed=3)
    assert tactic.ask() == space.sample(6, rng=3)


def test_full_search_initial_sample_extends_the_common_population(space):
    settings = ex.TacticSettings(pop_size=6, n_initial=10)
    first = ex.build_tactic("full", space, OBJECTIVES, 40, settings, seed=3).ask()
    assert len(first) == 10 and first[:6] == space.sample(6, rng=3)
    default = ex.build_tactic("full", space, OBJECTIVES, 40, ex.TacticSettings(pop_size=6), seed=3)
    assert default.n_initial == 12  # two populations by default


def test_warm_start_needs_and_uses_initial_archs(space):
    settings = ex.TacticSettings(pop_size=4)
    with pytest.raises(ValueError, match="initial_archs"):
        ex.build_tactic("warm-start", space, OBJECTIVES, 20, settings)
    warm = space.sample(4, rng=11)
    tactic = ex.build_tactic("warm-start", space, OBJECTIVES, 20, settings, initial_archs=warm)
    assert isinstance(tactic, ConcurrentNAS) and tactic.ask() == warm
    assert ex.build_tactic("nsga2", space, OBJECTIVES, 20, settings, initial_archs=warm).ask() == warm
    with pytest.raises(ValueError, match="unknown tactic kind 'annealing'"):
        ex.build_tactic("annealing", space, OBJECTIVES, 20, settings)
    assert {"random", "nsga2", "full", "concurrent", "warm-start", "weaknas"} <= set(ex.TACTIC_KINDS)


def test_build_tactic_passes_every_setting_to_its_tactic(space):
    settings = ex.TacticSettings(
        pop_size=6,
        n_gen=7,
        n_initial=9,
        predictor="ridge",
        concurrent_pop_size=4,
        min_new=2,
        full_n_gen=11,
        weaknas_pool_size=50,
        weaknas_top_k=8,
        weaknas_predictor="svr",
    )
    exact = {"macs": lambda archs: [1.0] * len(archs)}

    def build(kind):
        return ex.build_tactic(kind, space, OBJECTIVES, 30, settings, seed=5, exact=exact)

    random, nsga2, full, concurrent, weaknas = (
        build(k) for k in ("random", "nsga2", "full", "concurrent", "weaknas")
    )
    assert isinstance(random, RandomSearch) and random.batch_size == 6 and random.seed == 5
    assert isinstance(nsga2, EvolutionarySearch) and nsga2.pop_size == 6
    assert isinstance(full, FullSearch)
    assert (full.n_initial, full.pop_size, full.n_gen, full.predictor) == (9, 6, 11, "ridge")
    assert full.kinds == {"top1": "ridge"} and list(full.exact) == ["macs"]
    assert isinstance(concurrent, ConcurrentNAS)
    assert (concurrent.pop_size, concurrent.n_gen, concurrent.min_new) == (4, 7, 2)
    assert concurrent.kinds == {"top1": "ridge"}
    assert isinstance(weaknas, WeakNAS)
    assert (weaknas.pool_size, weaknas.batch_size, weaknas.top_k, weaknas.predictor) == (50, 6, 8, "svr")
    assert settings.to_dict()["weaknas_top_k"] == 8 and json.dumps(settings.to_dict())
    without_full_n_gen = ex.build_tactic("full", space, OBJECTIVES, 30, ex.TacticSettings(n_gen=7))
    assert without_full_n_gen.n_gen == 7


# --- recorded trials on a tiny real supernet ------------------------------------------------------------


def test_run_trials_collects_traces_and_reruns_for_free(supernet, evaluator, one_thread):
    hv = hypervolume_indicator(evaluator, OBJECTIVES)
    exact = evaluator.free(OBJECTIVES)
    settings = ex.TacticSettings(pop_size=3, n_gen=3, predictor="ridge")

    def build(kind, seed):
        return ex.build_tactic(kind, supernet.space, OBJECTIVES, 6, settings, seed=seed, exact=exact)

    runs = ex.run_trials(
        ["random", "concurrent"], [0], build, evaluator, hv, label="t-", names={"random": "rnd"}
    )
    assert list(runs.traces.columns) == ["tactic", "seed", "n_validated", "hypervolume"]
    assert set(runs.traces["tactic"]) == {"rnd", "concurrent"}
    assert runs.traces.groupby(["tactic", "seed"])["n_validated"].max().eq(6).all()
    assert runs.traces["hypervolume"].between(0, 1).all()
    assert list(runs.results.columns[:2]) == ["tactic", "seed"]
    assert {"n_validated", "arch", "top1", "macs", "front"} <= set(runs.results.columns)
    assert runs.search_ids == {("random", 0): "t-random-s0", ("concurrent", 0): "t-concurrent-s0"}
    assert runs.tactics[("concurrent", 0)].n_validated == 6
    # the final hypervolume of each trace is that of its results, in the indicator's box
    names = {"random": "rnd", "concurrent": "concurrent"}
    for (kind, seed), tactic in runs.tactics.items():
        trace = runs.traces[(runs.traces["tactic"] == names[kind]) & (runs.traces["seed"] == seed)]
        assert trace["hypervolume"].iloc[-1] == pytest.approx(hv(tactic.values))
    # the first population is shared by both tactics of a seed: measured once
    first = runs.results.query("seed == 0 and n_validated <= 3")
    assert set(first.query("tactic == 'rnd'")["arch"]) == set(first.query("tactic == 'concurrent'")["arch"])
    stored = evaluator.store.measurements(metric="top1")
    assert not stored.duplicated("arch").any()
    measured = evaluator.n_measured
    again = ex.run_trials(
        ["random", "concurrent"], [0], build, evaluator, hv, label="t-", names={"random": "rnd"}
    )
    assert evaluator.n_measured == measured
    pd.testing.assert_frame_equal(again.results, runs.results)
    pd.testing.assert_frame_equal(again.traces, runs.traces)

    sid = runs.search_ids[("concurrent", 0)]
    assert evaluator.store.search(sid)["tactic"] == "concurrent"
    assert len(best_population(evaluator.store, sid, supernet.space)) == 3  # pop_size
    history = ex.history_archs(evaluator, sid)
    assert len(history) >= 6 and len(history) % 3 == 0  # one population of 3 per recorded generation
    snapshots = ex.population_snapshots(evaluator, sid, OBJECTIVES, "conc")
    assert snapshots["generation"].min() == 0 and snapshots["generation"].nunique() >= 2
    assert snapshots[["top1", "macs"]].notna().all().all() and set(snapshots["search"]) == {"conc"}
    assert len(snapshots) == len(history)

    # another search under a stored id is an error that names what differs, never a silent re-run
    other = ex.build_tactic("random", supernet.space, OBJECTIVES, 6, ex.TacticSettings(pop_size=2), seed=0)
    with pytest.raises(ValueError, match="other settings.*batch_size 3 -> 2"):
        ex.run_recorded(other, evaluator, "t-random-s0")


def test_run_trials_with_one_box_per_kind(tmp_path):
    supernet = ToySupernet(widths=(2, 4, 8, 16))
    evaluator = Evaluator(supernet, tmp_path / "r.sqlite", progress=False)
    objectives = {"score": "max", "macs": "min"}
    wide = hypervolume_indicator(evaluator, objectives)
    narrow = ex.Experiment("nb", tmp_path, supernet, evaluator).indicator(
        objectives, supernet.space.restrict({"width": [8, 16]})
    )
    settings = ex.TacticSettings(pop_size=4)

    def build(kind, seed):
        return ex.build_tactic("random", supernet.space, objectives, 8, settings, seed=seed)

    runs = ex.run_trials(["a", "b"], [0, 1], build, evaluator, {"a": wide, "b": narrow})
    final = runs.traces.groupby(["tactic", "seed"])["hypervolume"].last()
    for seed in (0, 1):
        values = runs.tactics[("a", seed)].values
        assert final[("a", seed)] == pytest.approx(wide(values))
        assert final[("b", seed)] == pytest.approx(narrow(values))
    assert set(runs.search_ids.values()) == {"a-s0", "b-s0", "a-s1", "b-s1"}


def test_run_trials_needs_a_box_for_every_kind(tmp_path):
    supernet = ToySupernet()
    evaluator = Evaluator(supernet, None, progress=False)
    box = hypervolume_indicator(evaluator, {"score": "max", "macs": "min"})
    with pytest.raises(ValueError, match=r"no hypervolume indicator for kind\(s\) \['b'\]"):
        ex.run_trials(["a", "b"], [0], lambda kind, seed: None, evaluator, {"a": box})
    assert evaluator.n_measured == 4  # only the two objectives of the two extremes (the box): nothing ran


def test_collect_archs_refuses_more_archs_than_the_space_has():
    supernet = ToySupernet()  # 3 widths x 2 activations x 2 biases
    evaluator = Evaluator(supernet, None, progress=False)
    assert len(ex.collect_archs(evaluator, Objective("score", "max"), 12, reuse_store=False)) == 12
    with pytest.raises(ValueError, match="the space has 12 networks"):
        ex.collect_archs(evaluator, Objective("score", "max"), 13, reuse_store=False)


def test_collect_archs_reuses_the_store_then_tops_up(supernet, evaluator):
    space = supernet.space
    macs = Objective("macs", "min")
    stored = space.sample(3, rng=5)
    evaluator.measure(stored, ["macs"])
    reused = ex.collect_archs(evaluator, macs, 5, seed=0)
    assert reused[:3] == stored and len({space.key(a) for a in reused}) == 5
    assert ex.collect_archs(evaluator, macs, 2, seed=0) == stored[:2]
    fresh = ex.collect_archs(evaluator, macs, 4, seed=0, reuse_store=False)
    assert fresh == space.sample(4, rng=np.random.default_rng(0))
    assert ex.measured_archs(evaluator, macs)["arch"].tolist() == [space.key(a) for a in stored]
    assert ex.measured_archs(evaluator, Objective("latency_ms", "min", "cpu-t1-b1")).empty
    assert ex.measured_archs(evaluator, Objective("top1", "max")).empty
    targets = ex.measure_targets(evaluator, {macs: reused, Objective("params", "min"): stored})
    assert list(targets) == ["macs", "params"] and len(targets["params"]) == 3
    np.testing.assert_array_equal(targets["macs"], [supernet.macs(a) for a in reused])


# --- the session ----------------------------------------------------------------------------------------


def test_experiment_names_its_task_and_checks_objectives(supernet, evaluator, tmp_path):
    exp = ex.Experiment("nb", tmp_path, supernet, evaluator)
    assert exp.space is supernet.space and exp.store is evaluator.store
    assert exp.task == Objective("top1", "max") and exp.task_kind == "measured"
    assert exp.task_label == supernet.task_metric.label
    assert exp.hardware(["cpu-t1-b64", "cpu-t1-b64"]) == ["cpu-t1-b64"]
    assert exp.hardware()[0] == "cpu-t1-b1"  # the machine's defaults start with one thread, batch 1
    assert exp.task_and("macs") == (Objective("top1", "max"), Objective("macs", "min"))
    latency = exp.task_and("latency_ms", "cpu-t1-b1")[1]
    assert latency.label == "latency_ms@cpu-t1-b1"
    with pytest.raises(ValueError, match="needs a hardware key"):
        exp.objectives({"top1": "max", "latency_ms": "min"})
    with pytest.raises(ValueError, match="does not depend on hardware"):
        exp.objectives({"top1@cpu-t1-b1": "max"})
    with pytest.raises(ValueError, match="no metric 'bleu'"):
        exp.objectives({"bleu": "max"})
    with pytest.raises(ValueError, match="is not in .*run notebook 01_hardware_transfer first"):
        exp.stored_search("missing-s0", made_by="01_hardware_transfer")
    evaluator.store.start_search("there", supernet.supernet_id, "random", {})
    assert exp.stored_search("there", made_by="01_hardware_transfer") == "there"


def test_a_notebook_runs_its_default_source_search_when_alone_but_never_replaces_a_named_one(
    supernet, evaluator, tmp_path
):
    exp = ex.Experiment("nb", tmp_path, supernet, evaluator)
    ran = []

    def run(search_id):  # stands for the other notebook's search (any tactic, recorded under its id)
        ran.append(search_id)
        tactic = RandomSearch(supernet.space, {"macs": "min", "params": "min"}, 4, batch_size=2)
        ex.run_recorded(tactic, evaluator, search_id)

    with pytest.raises(ValueError, match="'mine' is not in .*run notebook 01_hardware_transfer first"):
        exp.source_search("mine", "concurrent-cpu-t1-b1-s0", "01_hardware_transfer", run)
    assert ran == [] and not evaluator.store.has_search("concurrent-cpu-t1-b1-s0")
    assert (
        exp.source_search(None, "concurrent-cpu-t1-b1-s0", "01_hardware_transfer", run)
        == "concurrent-cpu-t1-b1-s0"
    )
    assert ran == ["concurrent-cpu-t1-b1-s0"] and len(evaluator.store.validations(ran[0])) == 4
    assert exp.source_search(None, "concurrent-cpu-t1-b1-s0", "01_hardware_transfer", run) == ran[0]
    assert ran == ["concurrent-cpu-t1-b1-s0"]  # stored now: read, not run again
    with pytest.raises(ValueError, match="run notebook 03_x first"):
        exp.source_search(None, "other-s0", "03_x")  # no way to run it here: the loud failure
    searched = exp.latency_search("cpu-t1-b64", 4, ex.TacticSettings(pop_size=2, n_gen=1), seed=3)
    assert isinstance(searched, ConcurrentNAS) and searched.seed == 3 and searched.budget == 4
    assert [o.label for o in searched.objectives] == ["top1", "latency_ms@cpu-t1-b64"]


def test_experiment_writes_files(supernet, evaluator, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exp = ex.Experiment("nb", tmp_path, supernet, evaluator)
    exp.save_table(pd.DataFrame({"a": [1]}), "table")
    exp.save_json(
        {
            "x": np.float64(0.5),
            "n": np.int64(3),
            "v": np.arange(2),
            "never": {"a": float("nan"), "b": [np.inf]},
        },
        "summary",
    )
    fig, _ = plt.subplots()
    exp.save_figure(fig, "figure")
    plt.close(fig)
    assert [p.name for p in exp.written] == ["table.csv", "summary.json", "figure.png"]
    assert pd.read_csv(tmp_path / "nb" / "table.csv").to_dict("list") == {"a": [1]}
    assert json.loads((tmp_path / "nb" / "summary.json").read_text()) == {
        "supernet": "tiny-mbv3",
        "task_metric": "top1",
        "task_kind": "measured",
        "x": 0.5,
        "n": 3,
        "v": [0, 1],
        "never": {"a": None, "b": [None]},  # NaN is no JSON: null
        "latency_measured": 0,  # every summary says how much of its latency was measured, and flagged
        "latency_flagged": 0,
    }
    assert "NaN" not in (tmp_path / "nb" / "summary.json").read_text()
    assert (tmp_path / "nb" / "figure.png").stat().st_size > 0
    with pytest.raises(TypeError, match="cannot write object"):
        exp.save_json({"bad": object()}, "bad")


def test_open_experiment_shares_one_store(tmp_path):
    first = ex.open_experiment("00_a", tmp_path, "helpers:toy_supernet")
    assert first.evaluator.store.path == tmp_path / ex.STORE_NAME
    arch = first.space.sample(1, rng=0)[0]
    first.evaluator.measure(arch, ["score"])
    second = ex.open_experiment("01_b", tmp_path, "helpers:toy_supernet", data_dir=tmp_path / "unused")
    assert second.evaluator.store.measurements(metric="score")["arch"].tolist() == [first.space.key(arch)]
    assert second.folder == tmp_path / "01_b" and second.folder.is_dir()
    assert second.task == Objective("score", "max")


def test_the_latency_note_counts_timed_measurements_and_says_what_flags_mean(tmp_path):
    exp = ex.open_experiment("00_a", tmp_path, "helpers:toy_supernet")
    assert exp.latency_note() == ""  # nothing timed: nothing to say
    keys = [exp.space.key(a) for a in exp.space.sample(3, rng=0)]
    base = {"supernet_id": exp.supernet.supernet_id, "checkpoint_hash": exp.supernet.checkpoint_hash,
            "metric": "latency_ms"}  # fmt: skip
    exp.store.add([
        {**base, "arch": keys[0], "hardware": "cpu-t1-b1", "host": "h", "value": 2.0, "flagged": False},
        {**base, "arch": keys[1], "hardware": "lut-note10", "host": "", "value": 9.0, "flagged": False},
    ])  # fmt: skip
    assert exp.latency_flags() == {"latency_measured": 1, "latency_flagged": 0}  # a table is never timed
    assert "**0 of 1**" in exp.latency_note() and "none was noisy" in exp.latency_note()
    noisy = {**base, "arch": keys[2], "hardware": "cpu-t1-b1", "host": "h", "value": 3.0, "flagged": True}
    exp.store.add([noisy])
    note = exp.latency_note()
    assert "**1 of 2**" in note and "BusyMachineWarning" in note and "teaching profile" in note


def test_open_experiment_from_a_checkpoint_path_gives_its_reader_no_data_dir(tmp_path):
    checkpoint = Path(__file__).resolve().parents[1] / "data" / "digits-mbv3.pt"
    exp = ex.open_experiment("nb", tmp_path, str(checkpoint), data_dir=tmp_path / "ofa-files")
    assert exp.supernet.supernet_id == "digits-mbv3" and exp.task == Objective("top1", "max")


def test_open_experiment_on_the_ofa_problem_labels_surrogate_top1(shared_data, tmp_path):
    exp = ex.open_experiment("nb", tmp_path, "ofa-mbv3-w1.2", data_dir=shared_data)
    assert exp.task_kind == "surrogate" and exp.task_label.startswith("surrogate top1")
    assert sorted(exp.supernet.lookup_tables()) == ["lut-i7-8700k", "lut-note10"]
    arch = exp.space.sample(1, rng=0)[0]
    row = exp.evaluator.measure(arch, ["top1", "latency_ms"], ["lut-note10", "lut-i7-8700k"])
    assert row["value"].between(0, 100).all() and len(row) == 3
    exp.save_json({"n": 1}, "summary")
    assert json.loads((tmp_path / "nb" / "summary.json").read_text())["task_kind"] == "surrogate"


def test_open_experiment_on_the_ofa_problem_without_data_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="acc_predictor.pth.*Download it from"):
        ex.open_experiment("nb", tmp_path, "ofa-mbv3-w1.2", data_dir=tmp_path / "nowhere")
    exp = ex.open_experiment("nb", tmp_path, "digits-mbv3", data_dir=tmp_path / "nowhere")
    assert exp.supernet.lookup_tables() == {}
    with pytest.raises(
        ValueError, match="'lut-note10' is a look-up table that supernet 'digits-mbv3' does not"
    ):
        exp.evaluator.measure(exp.space.sample(1, rng=0), ["latency_ms"], ["lut-note10"])
