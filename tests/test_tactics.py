"""Search tactics on a closed-form toy objective (fast) and through the Evaluator on a tiny real supernet."""

import numpy as np
import pandas as pd
import pytest

from nastools.search import (
    ConcurrentNAS,
    EvolutionarySearch,
    FullSearch,
    HypervolumeIndicator,
    RandomSearch,
    WeakNAS,
    best_population,
    hypervolume_at,
    objective_metrics,
    popdb_space,
    summarize_traces,
    validations_to_reach,
)
from nastools.space import mobilenetv3_space
from nastools.store import ResultStore

SPACE = mobilenetv3_space()
OBJECTIVES = {"acc": "max", "cost": "min"}
_W = np.random.default_rng(0).uniform(0.2, 1.0, size=(2, len(SPACE.feature_names())))


def toy(archs):
    """A toy fixture: cost grows with every active choice, accuracy saturates in a different weighting."""
    x = SPACE.features(archs)
    cost = x @ _W[0]
    acc = 1.0 - np.exp(-(x @ _W[1]) / 15.0)
    return {"acc": acc, "cost": cost}


def _bounds():
    extremes = [{n: c[0] for n, c in SPACE.choices.items()}, {n: c[-1] for n, c in SPACE.choices.items()}]
    v = toy(extremes)
    return {"acc": (v["acc"][0], v["acc"][1]), "cost": (v["cost"][0], v["cost"][1])}


HV = HypervolumeIndicator(OBJECTIVES, _bounds())


def drive(tactic):
    asked = []
    while archs := tactic.ask():
        asked += [SPACE.key(a) for a in archs]
        tactic.tell(archs, toy(archs))
    return asked


TACTICS = {
    "random": lambda seed, n: RandomSearch(SPACE, OBJECTIVES, n, hypervolume=HV, seed=seed, batch_size=25),
    "nsga2": lambda seed, n: EvolutionarySearch(SPACE, OBJECTIVES, n, hypervolume=HV, seed=seed, pop_size=25),
    "full": lambda seed, n: FullSearch(
        SPACE, OBJECTIVES, n, hypervolume=HV, seed=seed, n_initial=50, n_gen=30
    ),
    "concurrent": lambda seed, n: ConcurrentNAS(
        SPACE, OBJECTIVES, n, hypervolume=HV, seed=seed, pop_size=25, n_gen=20
    ),
    "weaknas": lambda seed, n: WeakNAS(
        SPACE, OBJECTIVES, n, hypervolume=HV, seed=seed, pool_size=1000, batch_size=25, top_k=200
    ),
}


@pytest.mark.parametrize("name", TACTICS)
def test_tactic_respects_budget_and_never_revalidates(name):
    tactic = TACTICS[name](0, 150)
    asked = drive(tactic)
    assert len(asked) == len(set(asked)) == tactic.n_validations
    assert 0 < tactic.n_validations <= 150
    assert tactic.ask() == [] and tactic.done
    trace = tactic.trace_frame()
    assert trace.n_validations.is_monotonic_increasing and trace.hypervolume.is_monotonic_increasing
    assert 0 < trace.hypervolume.iloc[-1] <= 1
    results = tactic.results()
    assert list(results.n_validations) == list(range(1, tactic.n_validations + 1))
    assert results.front.any() and trace.hypervolume.iloc[-1] == pytest.approx(HV(results))


@pytest.mark.parametrize("name", TACTICS)
def test_same_seed_same_result(name):
    a, b = TACTICS[name](3, 100), TACTICS[name](3, 100)
    assert drive(a) == drive(b)
    pd.testing.assert_frame_equal(a.trace_frame(), b.trace_frame())
    assert drive(TACTICS[name](4, 100)) != drive(TACTICS[name](3, 100))


def test_predictor_tactics_beat_random_at_equal_budget():
    final = {name: [] for name in ("random", "concurrent", "nsga2")}
    for seed in range(3):
        for name in final:
            tactic = TACTICS[name](seed, 200)
            drive(tactic)
            final[name].append(tactic.trace_frame().hypervolume.iloc[-1])
    assert np.mean(final["concurrent"]) > np.mean(final["random"])
    assert np.mean(final["nsga2"]) > np.mean(final["random"])


def test_concurrent_exact_objective_and_iteration_options():
    seen = []

    def options(iteration):
        seen.append(iteration)
        return {"n_gen": 5 + iteration}

    exact_calls = []

    def exact_cost(archs):
        exact_calls.append(len(archs))
        return toy(archs)["cost"]

    tactic = ConcurrentNAS(
        SPACE, OBJECTIVES, 80, pop_size=20, exact={"cost": exact_cost}, iteration_options=options, seed=0
    )
    drive(tactic)
    assert seen[:3] == [1, 2, 3] and exact_calls and tactic.kinds == {"acc": "auto"}


def test_concurrent_min_new_keeps_validating_in_a_small_space():
    fixed = {**{f"d_{s}": [2] for s in range(5)}, **{f"ks_{i}": [7] for i in range(20)}}
    small = SPACE.restrict({**fixed, **{f"e_{i}": [3, 6] for i in range(20)}})  # 1,024 archs

    def make(min_new):
        return ConcurrentNAS(
            small, OBJECTIVES, 120, pop_size=10, n_gen=2, predictor="ridge", seed=0, min_new=min_new
        )

    stalled = make(0)
    drive(stalled)
    assert stalled.done and stalled.n_validations < 120  # the inner search keeps returning validated archs
    topped_up = make(10)
    batches = []
    while archs := topped_up.ask():
        batches.append(len(archs))
        topped_up.tell(archs, toy(archs))
    assert topped_up.n_validations == 120 and min(batches) == 10
    assert topped_up.config()["min_new"] == 10 and "min_new" not in stalled.config()


def test_warm_start_first_batch_is_the_given_population():
    initial = SPACE.sample(10, rng=7)
    for make in (
        lambda: EvolutionarySearch(SPACE, OBJECTIVES, 50, pop_size=10, initial_archs=initial),
        lambda: ConcurrentNAS(SPACE, OBJECTIVES, 50, pop_size=10, initial_archs=initial),
        lambda: RandomSearch(SPACE, OBJECTIVES, 50, initial_archs=initial),
    ):
        first = make().ask()
        assert sorted(SPACE.key(a) for a in first) == sorted(SPACE.key(a) for a in initial)


def test_weaknas_pool_filter_and_best():
    def small(archs):
        return toy(archs)["cost"] < np.median(toy(SPACE.sample(500, rng=0))["cost"])

    tactic = WeakNAS(SPACE, OBJECTIVES, 100, pool_size=1000, batch_size=25, top_k=100, pool_filter=small)
    drive(tactic)
    results = tactic.results()
    assert small([SPACE.from_key(k) for k in results.arch]).all()
    best = tactic.best()
    assert best["acc"] == results.acc.max() and tactic.target == "acc"


def test_popdb_removes_rare_values_and_shrinks_space():
    rng = np.random.default_rng(0)
    archs = SPACE.sample(200, rng=rng)
    for arch in archs:
        arch["ks_0"] = 7 if rng.random() < 0.95 else 3
        arch["e_1"] = 6
    result = popdb_space(SPACE, archs, threshold=0.2, min_cluster_size=5)
    assert result.removed["e_1"] == [3, 4]
    assert 3 in result.removed.get("ks_0", []) and result.space.choices["ks_0"][-1] == 7
    assert result.size_after < result.size_before and 0 < result.size_ratio < 1
    assert len(result.labels) == 200
    kept_e1 = popdb_space(SPACE, archs, threshold=0.2, min_cluster_size=5, keep=["e_1"])
    assert "e_1" not in kept_e1.removed and kept_e1.space.choices["e_1"] == SPACE.choices["e_1"]
    assert kept_e1.removed["ks_0"] == result.removed["ks_0"]
    assert set(result.frequencies.columns) >= {"parameter", "value", "frequency", "kept"}
    tactic = ConcurrentNAS(result.space, OBJECTIVES, 40, pop_size=20, seed=0)
    drive(tactic)
    assert all(result.space.key(a) for a in tactic._measured_archs())  # every arch lies in the new space


def test_analysis_helpers():
    traces = pd.DataFrame(
        {
            "tactic": ["a"] * 4 + ["b"] * 2,
            "seed": [0, 0, 1, 1, 0, 0],
            "n_validations": [100, 200, 100, 200, 100, 300],
            "hypervolume": [0.5, 0.9, 0.6, 0.95, 0.1, 0.4],
        }
    )
    summary = summarize_traces(traces, 1.0, fractions=(0.9,), checkpoints=(100, 250)).set_index("tactic")
    assert summary.loc["a", "val_to_90%"] == 200 and summary.loc["a", "reached_90%"] == 2
    assert np.isnan(summary.loc["b", "val_to_90%"]) and summary.loc["b", "hv@250"] == 0.1
    assert summary.loc["a", "hv@100"] == pytest.approx(0.55)
    assert validations_to_reach(traces[traces.tactic == "b"], 0.3) == 300
    assert hypervolume_at(traces[(traces.tactic == "a") & (traces.seed == 0)], 150) == 0.5


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: RandomSearch(SPACE, OBJECTIVES, 0), "n_validations"),
        (lambda: RandomSearch(SPACE, OBJECTIVES, 10, batch_size=-1), "batch_size"),
        (lambda: EvolutionarySearch(SPACE, OBJECTIVES, 10, algorithm="nsga9"), "unknown algorithm"),
        (lambda: ConcurrentNAS(SPACE, OBJECTIVES, 10, n_gen=0), "n_gen"),
        (lambda: ConcurrentNAS(SPACE, OBJECTIVES, 10, min_new=-1), "min_new"),
        (lambda: ConcurrentNAS(SPACE, OBJECTIVES, 10, predictor="forest"), "unknown predictor kind"),
        (lambda: ConcurrentNAS(SPACE, OBJECTIVES, 10, exact={"latency": len}), "not objectives"),
        (lambda: WeakNAS(SPACE, OBJECTIVES, 10, target="bleu"), "target"),
        (lambda: RandomSearch(SPACE, {"acc": "up"}, 10), "direction"),
        (lambda: RandomSearch(SPACE, OBJECTIVES, 10, initial_archs=[]), "empty"),
        (lambda: RandomSearch(SPACE, OBJECTIVES, 10, initial_archs=[{"d_0": 9}]), "missing"),
        (lambda: popdb_space(SPACE, SPACE.sample(50, rng=0), threshold=1.5), r"\(0, 1\)"),
        (lambda: popdb_space(SPACE, SPACE.sample(50, rng=0), threshold=0.0), r"\(0, 1\)"),
        (lambda: popdb_space(SPACE, SPACE.sample(3, rng=0)), "at least"),
        (lambda: popdb_space(SPACE, SPACE.sample(50, rng=0), keep=["res"]), "unknown parameter"),
        (lambda: objective_metrics(["accuracy"]), "not a measured metric"),
        (lambda: objective_metrics(["latency_ms"]), "needs a hardware key"),
    ],
)
def test_bad_input_is_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_tell_rejects_nan_and_missing_objectives():
    tactic = RandomSearch(SPACE, OBJECTIVES, 10, batch_size=2)
    archs = tactic.ask()
    with pytest.raises(ValueError, match="non-finite"):
        tactic.tell(archs, {"acc": [np.nan, 1.0], "cost": [1.0, 2.0]})
    with pytest.raises(ValueError, match="no values for objective 'cost'"):
        tactic.tell(archs, {"acc": [1.0, 1.0]})


def test_warm_start_from_unknown_search_names_it(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    with pytest.raises(ValueError, match="unknown search_id 'nope'"):
        best_population(store, "nope", SPACE)
    store.start_search("empty", "x", "random", {})
    with pytest.raises(ValueError, match="recorded no population"):
        best_population(store, "empty", SPACE)
