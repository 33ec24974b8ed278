"""Search tactics on closed-form toy objectives: the ask/tell contract, the registry, traces, PopDB."""

import json

import numpy as np
import pandas as pd
import pytest

from nastools.analysis import hypervolume_at, summarize_traces, validations_to_reach
from nastools.hypervolume import HypervolumeIndicator
from nastools.search import (
    TACTICS,
    ConcurrentNAS,
    EvolutionarySearch,
    FullSearch,
    HypervolumeTrace,
    PredictorGuidedSearch,
    RandomSearch,
    Tactic,
    WeakNAS,
    _tactic,
    best_population,
    make_tactic,
    popdb_space,
    register_tactic,
)
from nastools.space import Condition, SearchSpace
from nastools.store import ResultStore
from nastools.supernets.mobilenetv3 import mobilenetv3_space

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


def drive(tactic, evaluate=toy, trace=None):
    """Ask/tell until the tactic is done; the keys asked for, in order."""
    asked = []
    while archs := tactic.ask():
        asked += [tactic.space.key(a) for a in archs]
        tactic.tell(archs, evaluate(archs))
        if trace is not None:
            trace(tactic)
    return asked


BUILD = {
    "random": lambda seed, n: RandomSearch(SPACE, OBJECTIVES, n, seed=seed, batch_size=25),
    "nsga2": lambda seed, n: EvolutionarySearch(SPACE, OBJECTIVES, n, seed=seed, pop_size=25),
    # ridge keeps the fast tier fast; "auto" (cross-validated at every refit) has tests of its own
    "full": lambda seed, n: FullSearch(
        SPACE, OBJECTIVES, n, seed=seed, n_initial=50, n_gen=30, predictor="ridge"
    ),
    "concurrent": lambda seed, n: ConcurrentNAS(
        SPACE, OBJECTIVES, n, seed=seed, pop_size=25, n_gen=20, predictor="ridge"
    ),
    "weaknas": lambda seed, n: WeakNAS(
        SPACE, OBJECTIVES, n, seed=seed, pool_size=1000, batch_size=25, top_k=200, predictor="ridge"
    ),
}


def test_every_registered_tactic_is_exercised():
    own = {preset.cls for preset in TACTICS.values() if preset.cls.__module__.startswith("nastools.search._")}
    assert {cls.name for cls in own} == set(BUILD)
    assert all(TACTICS[cls.name].cls is cls and not TACTICS[cls.name].options for cls in own)


@pytest.mark.parametrize("name", BUILD)
def test_tactic_respects_budget_and_never_revalidates(name):
    tactic = BUILD[name](0, 150)
    trace = HypervolumeTrace(HV)
    asked = drive(tactic, trace=trace)
    assert len(asked) == len(set(asked)) == tactic.n_validated
    assert 0 < tactic.n_validated <= 150 and tactic.budget == 150
    assert tactic.ask() == [] and tactic.done
    frame = trace.frame()
    assert list(frame.columns) == ["n_validated", "hypervolume"]
    assert frame.n_validated.is_monotonic_increasing and frame.hypervolume.is_monotonic_increasing
    assert frame.n_validated.iloc[-1] == tactic.n_validated and len(frame) >= 2
    assert 0 < trace.last <= 1 and trace.last == frame.hypervolume.iloc[-1]
    results = tactic.results()
    assert list(results.columns) == ["n_validated", "arch", "acc", "cost", "front"]
    assert list(results.n_validated) == list(range(1, tactic.n_validated + 1))
    assert list(results.arch) == asked == tactic.validated
    assert results.front.any() and trace.last == pytest.approx(HV(results))
    # the values told are the values kept, in validation order
    expected = toy([SPACE.from_key(k) for k in asked])
    np.testing.assert_allclose(results.acc, expected["acc"])
    np.testing.assert_allclose(tactic.values["cost"], expected["cost"])


@pytest.mark.parametrize("name", BUILD)
def test_same_seed_same_result(name):
    a, b = BUILD[name](3, 100), BUILD[name](3, 100)
    trace_a, trace_b = HypervolumeTrace(HV), HypervolumeTrace(HV)
    assert drive(a, trace=trace_a) == drive(b, trace=trace_b)
    pd.testing.assert_frame_equal(trace_a.frame(), trace_b.frame())
    assert drive(BUILD[name](4, 100)) != drive(BUILD[name](3, 100))


@pytest.mark.slow
def test_predictor_tactics_beat_random_at_equal_budget():
    build = dict(
        BUILD,
        concurrent=lambda seed, n: ConcurrentNAS(SPACE, OBJECTIVES, n, seed=seed, pop_size=25, n_gen=20),
    )
    final = {name: [] for name in ("random", "concurrent", "nsga2")}
    for seed in range(3):
        for name in final:
            trace = HypervolumeTrace(HV)
            drive(build[name](seed, 200), trace=trace)
            final[name].append(trace.last)
    assert np.mean(final["concurrent"]) > np.mean(final["random"])
    assert np.mean(final["nsga2"]) > np.mean(final["random"])


def test_concurrent_beats_random_on_one_cheap_run():
    """The fast guard of the slow comparison above: ridge predictors, one seed, 100 validations."""
    final = {}
    for name, tactic in {
        "random": RandomSearch(SPACE, OBJECTIVES, 100, batch_size=20, seed=0),
        "concurrent": ConcurrentNAS(SPACE, OBJECTIVES, 100, pop_size=20, n_gen=20, predictor="ridge", seed=0),
    }.items():
        drive(tactic)
        final[name] = HV(tactic.values)
    assert final["concurrent"] > final["random"]


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
    assert tactic.config()["exact"] == ["cost"]  # functions are recorded by the objectives they replace
    assert tactic.config()["iteration_options"].endswith("options")


def test_exact_given_a_per_arch_function_says_it_takes_a_list():
    tactic = ConcurrentNAS(
        SPACE,
        OBJECTIVES,
        60,
        pop_size=10,
        n_gen=2,
        predictor="ridge",
        exact={"cost": lambda arch: arch["ks_0"]},
    )
    first = tactic.ask()
    tactic.tell(first, toy(first))
    with pytest.raises(ValueError, match=r"exact\['cost'\] must take a list of archs") as info:
        tactic.ask()
    assert "\n" not in str(info.value)
    summing = FullSearch(SPACE, OBJECTIVES, 40, n_initial=10, n_gen=2, exact={"cost": lambda archs: 1.0})
    first = summing.ask()
    summing.tell(first, toy(first))
    with pytest.raises(ValueError, match=r"exact\['cost'\] returned 1 values for \d+ archs"):
        summing.ask()
    with pytest.raises(ValueError, match="must be a function of a list of archs"):
        ConcurrentNAS(SPACE, OBJECTIVES, 10, exact={"cost": 3.0})
    with pytest.raises(ValueError, match="exact must be a dict"):
        ConcurrentNAS(SPACE, OBJECTIVES, 10, exact=[len])


def test_concurrent_min_new_keeps_validating_in_a_small_space(monkeypatch):
    monkeypatch.setattr(_tactic, "_MAX_IDLE_PROPOSALS", 10)  # stalls sooner; the behaviour is the same
    fixed = {**{f"d_{s}": [2] for s in range(5)}, **{f"ks_{i}": [7] for i in range(20)}}
    small = SPACE.restrict({**fixed, **{f"e_{i}": [3, 6] for i in range(20)}})  # 1,024 archs
    assert small.size == 1024

    def make(min_new):
        return ConcurrentNAS(
            small,
            OBJECTIVES,
            120,
            pop_size=10,
            n_gen=2,
            predictor="ridge",
            acquisition="population",
            seed=0,
            min_new=min_new,
        )

    stalled = make(0)
    drive(stalled)
    assert stalled.done and stalled.n_validated < 120  # the inner search keeps returning validated archs
    topped_up = make(10)
    batches = []
    while archs := topped_up.ask():
        batches.append(len(archs))
        topped_up.tell(archs, toy(archs))
    assert topped_up.n_validated == 120 and min(batches) == 10
    assert topped_up.config()["min_new"] == 10 and stalled.config()["min_new"] == 0


def test_warm_start_first_batch_is_the_given_population():
    initial = SPACE.sample(10, rng=7)
    for make in (
        lambda: EvolutionarySearch(SPACE, OBJECTIVES, 50, pop_size=10, initial_archs=initial),
        lambda: ConcurrentNAS(SPACE, OBJECTIVES, 50, pop_size=10, initial_archs=initial),
        lambda: RandomSearch(SPACE, OBJECTIVES, 50, initial_archs=initial),
        lambda: FullSearch(SPACE, OBJECTIVES, 50, n_initial=30, initial_archs=initial),
        lambda: WeakNAS(SPACE, OBJECTIVES, 50, pool_size=100, batch_size=10, top_k=20, initial_archs=initial),
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
    assert best["arch"] == results.loc[results.acc.idxmax(), "arch"]
    cheapest = WeakNAS(SPACE, OBJECTIVES, 50, target="cost", pool_size=300, batch_size=25, top_k=50)
    drive(cheapest)
    assert cheapest.best()["cost"] == cheapest.results().cost.min()
    with pytest.raises(ValueError, match="pool is empty"):
        WeakNAS(SPACE, OBJECTIVES, 10, pool_size=20, pool_filter=lambda archs: [False] * len(archs)).ask()
    with pytest.raises(ValueError, match="validated nothing"):
        WeakNAS(SPACE, OBJECTIVES, 10).best()


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
    assert result.size_after == result.space.size and result.size_before == SPACE.size
    assert len(result.labels) == 200
    kept_e1 = popdb_space(SPACE, archs, threshold=0.2, min_cluster_size=5, keep=["e_1"])
    assert "e_1" not in kept_e1.removed and kept_e1.space.choices["e_1"] == SPACE.choices["e_1"]
    assert kept_e1.removed["ks_0"] == result.removed["ks_0"]
    assert set(result.frequencies.columns) >= {"parameter", "value", "frequency", "kept"}
    tactic = ConcurrentNAS(result.space, OBJECTIVES, 40, pop_size=20, n_gen=5, predictor="ridge", seed=0)
    asked = drive(tactic)
    for key in asked:  # every arch lies in the new space
        arch = SPACE.from_key(key)
        result.space.validate(arch)
        assert arch["e_1"] == 6 and arch["ks_0"] in result.space.choices["ks_0"]


def test_analysis_helpers():
    traces = pd.DataFrame(
        {
            "tactic": ["a"] * 4 + ["b"] * 2,
            "seed": [0, 0, 1, 1, 0, 0],
            "n_validated": [100, 200, 100, 200, 100, 300],
            "hypervolume": [0.5, 0.9, 0.6, 0.95, 0.1, 0.4],
        }
    )
    summary = summarize_traces(traces, 1.0, fractions=(0.9,), checkpoints=(100, 250)).set_index("tactic")
    assert summary.loc["a", "val_to_90%"] == 200 and summary.loc["a", "reached_90%"] == 2
    assert np.isnan(summary.loc["b", "val_to_90%"]) and summary.loc["b", "hv@250"] == 0.1
    assert summary.loc["a", "hv@100"] == pytest.approx(0.55)
    assert validations_to_reach(traces[traces.tactic == "b"], 0.3) == 300
    assert hypervolume_at(traces[(traces.tactic == "a") & (traces.seed == 0)], 150) == 0.5


# --- the registry and config ---------------------------------------------------------------------


def test_make_tactic_builds_by_name_and_rejects_unknown_parameters():
    tactic = make_tactic("nsga2", SPACE, OBJECTIVES, 30, pop_size=6, seed=2)
    assert isinstance(tactic, EvolutionarySearch) and tactic.pop_size == 6 and tactic.seed == 2
    assert len(tactic.ask()) == 6
    with pytest.raises(ValueError, match=r"takes no parameter\(s\) \['pop_sise'\]") as info:
        make_tactic("nsga2", SPACE, OBJECTIVES, 30, pop_sise=6)
    assert "'pop_size'" in str(info.value)  # what it does take is listed
    with pytest.raises(ValueError, match=r"takes no parameter\(s\) \['n_gen'\]"):
        make_tactic("random", SPACE, OBJECTIVES, 30, n_gen=5)  # a parameter of another tactic
    with pytest.raises(ValueError, match="unknown tactic 'annealing'.*'weaknas'"):
        make_tactic("annealing", SPACE, OBJECTIVES, 30)
    with pytest.raises(
        ValueError, match=r"tactic 'concurrent-ridge' takes no parameter\(s\) \['batch_size'\]"
    ):
        make_tactic("concurrent-ridge", SPACE, OBJECTIVES, 30, batch_size=5)  # a preset takes its class's


def test_register_tactic_adds_a_name_and_guards_it():
    class Corners(Tactic):
        """Validates the two extremes of the space, then stops."""

        name = "corners-test"

        def _propose(self):
            if self.n_validated:
                return None
            return [
                {n: c[0] for n, c in self.space.choices.items()},
                {n: c[-1] for n, c in self.space.choices.items()},
            ]

    try:
        assert register_tactic(Corners) is Corners and TACTICS["corners-test"].cls is Corners
        tactic = make_tactic("corners-test", SPACE, OBJECTIVES, 10, seed=1)
        drive(tactic)
        assert tactic.n_validated == 2 and tactic.done
        assert tactic.config()["seed"] == 1 and set(tactic.config()) == set(Tactic.parameter_names())

        class Other(Corners):
            pass

        with pytest.raises(ValueError, match="'corners-test' is taken by Corners"):
            register_tactic(Other)
        assert register_tactic(Other, overwrite=True) is Other and TACTICS["corners-test"].cls is Other
        assert register_tactic(Other) is Other  # the same registration again changes nothing
    finally:
        TACTICS.pop("corners-test", None)
    with pytest.raises(ValueError, match="Tactic subclass"):
        register_tactic(dict)

    class Vague(Corners):
        name = "vague-test"

        def __init__(self, *args, width=3, **kwargs):
            super().__init__(*args, **kwargs)
            self.width = width

    with pytest.raises(ValueError, match=r"takes \*args: a tactic names every parameter"):
        register_tactic(Vague)
    assert "vague-test" not in TACTICS


def _rebuild(tactic):
    """A new tactic from ``tactic.config()`` alone (the space and archs decoded from their JSON form)."""
    config = json.loads(json.dumps(tactic.config()))
    space = SearchSpace.from_dict(config.pop("space"))
    if config.get("initial_archs") is not None:
        config["initial_archs"] = [space.from_key(key) for key in config["initial_archs"]]
    return type(tactic)(space, config.pop("objectives"), config.pop("budget"), **config)


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        ("random", {"batch_size": 7, "seed": 5}),
        ("nsga2", {"pop_size": 8, "algorithm_options": {"n_offsprings": 4}, "seed": 4}),
        ("full", {"n_initial": 12, "pop_size": 10, "n_gen": 3, "predictor": {"acc": "ridge"}, "seed": 1}),
        ("concurrent", {"pop_size": 9, "n_gen": 2, "predictor": "ridge", "min_new": 3, "algorithm": "nsga2"}),
        ("weaknas", {"target": "cost", "pool_size": 80, "batch_size": 6, "top_k": 20, "predictor": "ridge"}),
    ],
)
def test_config_round_trips_every_setting(name, settings):
    initial = SPACE.sample(4, rng=9)
    tactic = make_tactic(name, SPACE, OBJECTIVES, 30, initial_archs=initial, **settings)
    config = tactic.config()
    assert set(config) == set(type(tactic).parameter_names())
    assert config["budget"] == 30 and config["objectives"] == [list(item) for item in OBJECTIVES.items()]
    assert config["initial_archs"] == [SPACE.key(a) for a in initial]
    for key, value in settings.items():
        assert config[key] == value, key
    json.dumps(config)  # stored with the search as JSON
    rebuilt = _rebuild(tactic)
    assert rebuilt.config() == config
    assert drive(rebuilt) == drive(tactic)  # the same settings: the same search


def test_config_of_array_options_is_plain_json():
    ref_points = np.array([[-0.9, 5.0]])
    tactic = EvolutionarySearch(
        SPACE, OBJECTIVES, 20, algorithm="rnsga2", pop_size=6, algorithm_options={"ref_points": ref_points}
    )
    assert tactic.config()["algorithm_options"] == {"ref_points": [[-0.9, 5.0]]}
    assert json.loads(json.dumps(tactic.config()))["algorithm_options"]["ref_points"] == [[-0.9, 5.0]]


def test_full_and_concurrent_share_the_predictor_guided_base():
    assert issubclass(FullSearch, PredictorGuidedSearch) and issubclass(ConcurrentNAS, PredictorGuidedSearch)
    for cls in (FullSearch, ConcurrentNAS):
        tactic = cls(
            SPACE, OBJECTIVES, 20, predictor={"acc": "gbm"}, exact={"cost": lambda a: toy(a)["cost"]}
        )
        assert tactic.kinds == {"acc": "gbm"}
        assert {"pop_size", "n_gen", "predictor", "exact", "algorithm"} <= set(tactic.parameter_names())


# --- spaces of every choice type --------------------------------------------------------------------

MIXED = SearchSpace(
    {
        "layers": [1, 2, 3],
        "act": ["relu", "gelu", "silu"],
        "width_0": [0.25, 0.5, 1.0],
        "width_1": [0.25, 0.5, 1.0],
        "norm_1": ["batch", "layer"],  # active when layer 1 exists and is wide: a nested condition
        "width_2": [0.25, 0.5, 1.0],
        "dropout": [0.0, 0.1, 0.2],
        "se": [False, True],
        "se_ratio": [0.25, 0.5],
    },
    conditions=[
        Condition("width_1", "layers", (2, 3)),
        Condition("norm_1", "width_1", (0.5, 1.0)),
        Condition("width_2", "layers", (3,)),
        Condition("se_ratio", "se", (True,)),
    ],
)
MIXED_OBJECTIVES = {"quality": "max", "cost": "min"}


def mixed_toy(archs):
    """Quality and cost of the mixed space: every parameter counts only where it is active."""
    quality, cost = [], []
    for a in archs:
        widths = [a["width_0"]] + [a[f"width_{i}"] for i in (1, 2) if MIXED.is_active(a, f"width_{i}")]
        bonus = {"relu": 0.0, "gelu": 0.3, "silu": 0.2}[a["act"]] + (0.2 if a["se"] else 0.0)
        if MIXED.is_active(a, "norm_1"):
            bonus += 0.1 if a["norm_1"] == "layer" else 0.0
        quality.append(np.log1p(sum(widths)) + bonus - a["dropout"] + (a["se_ratio"] if a["se"] else 0.0))
        cost.append(sum(widths) * (1.2 if a["se"] else 1.0) + 0.05 * bonus)
    return {"quality": np.array(quality), "cost": np.array(cost)}


MIXED_SETTINGS = {
    "random": {"batch_size": 8},
    "nsga2": {"pop_size": 8},
    "full": {"n_initial": 16, "pop_size": 10, "n_gen": 5},
    "concurrent": {"pop_size": 8, "n_gen": 5, "min_new": 2, "predictor": "gbm"},
    "weaknas": {"pool_size": 200, "batch_size": 8, "top_k": 30},
}


@pytest.mark.parametrize("name", MIXED_SETTINGS)
def test_tactics_search_spaces_of_floats_strings_bools_and_nested_conditions(name):
    tactic = make_tactic(name, MIXED, MIXED_OBJECTIVES, 40, seed=1, **MIXED_SETTINGS[name])
    asked = []
    while archs := tactic.ask():
        for arch in archs:
            assert arch == MIXED.canonical(arch)  # inactive parameters at their first choice
            assert type(arch["width_0"]) is float and type(arch["act"]) is str and type(arch["se"]) is bool
            assert arch["act"] in MIXED.choices["act"] and arch["dropout"] in MIXED.choices["dropout"]
            if arch["layers"] == 1 or arch["width_1"] == 0.25:
                assert arch["norm_1"] == "batch"  # controller inactive or not wide: norm_1 inactive
        asked += [MIXED.key(a) for a in archs]
        tactic.tell(archs, mixed_toy(archs))
    assert len(asked) == len(set(asked)) == tactic.n_validated and 8 <= tactic.n_validated <= 40
    assert [MIXED.key(MIXED.from_key(k)) for k in asked] == asked
    front = tactic.results().query("front")
    assert len(front) >= 1 and front.quality.max() == tactic.results().quality.max()


# --- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: RandomSearch(SPACE, OBJECTIVES, 0), "budget"),
        (lambda: RandomSearch(SPACE, OBJECTIVES, 10, batch_size=-1), "batch_size"),
        (lambda: RandomSearch(SPACE, OBJECTIVES, 10, seed=-1), "seed"),
        (lambda: RandomSearch({"d": [1, 2]}, OBJECTIVES, 10), "space must be a SearchSpace"),
        (lambda: EvolutionarySearch(SPACE, OBJECTIVES, 10, algorithm="nsga9"), "unknown algorithm"),
        (lambda: ConcurrentNAS(SPACE, OBJECTIVES, 10, n_gen=0), "n_gen"),
        (lambda: ConcurrentNAS(SPACE, OBJECTIVES, 10, pop_size=1), "pop_size"),
        (lambda: ConcurrentNAS(SPACE, OBJECTIVES, 10, min_new=-1), "min_new"),
        (lambda: ConcurrentNAS(SPACE, OBJECTIVES, 10, predictor="forest"), "unknown predictor kind"),
        (lambda: ConcurrentNAS(SPACE, OBJECTIVES, 10, predictor={"top1": "ridge"}), "not objectives"),
        (lambda: ConcurrentNAS(SPACE, OBJECTIVES, 10, exact={"latency": len}), "not objectives"),
        (lambda: ConcurrentNAS(SPACE, OBJECTIVES, 10, iteration_options={"n_gen": 3}), "iteration_options"),
        (lambda: FullSearch(SPACE, OBJECTIVES, 10, n_initial=0), "n_initial"),
        (lambda: WeakNAS(SPACE, OBJECTIVES, 10, target="bleu"), "target"),
        (lambda: WeakNAS(SPACE, OBJECTIVES, 10, predictor="forest"), "unknown predictor kind"),
        (lambda: WeakNAS(SPACE, OBJECTIVES, 10, pool_filter=[True]), "pool_filter"),
        (lambda: RandomSearch(SPACE, {"acc": "up"}, 10), "direction"),
        (lambda: RandomSearch(SPACE, OBJECTIVES, 10, initial_archs=[]), "empty"),
        (lambda: RandomSearch(SPACE, OBJECTIVES, 10, initial_archs=SPACE.sample(1, rng=0)[0]), "wrap"),
        (lambda: RandomSearch(SPACE, OBJECTIVES, 10, initial_archs=[{"d_0": 9}]), "missing"),
        (lambda: popdb_space(SPACE, SPACE.sample(50, rng=0), threshold=1.5), r"\(0, 1\)"),
        (lambda: popdb_space(SPACE, SPACE.sample(50, rng=0), threshold=0.0), r"\(0, 1\)"),
        (lambda: popdb_space(SPACE, SPACE.sample(50, rng=0), threshold={"res": 0.2}), "unknown parameter"),
        (lambda: popdb_space(SPACE, SPACE.sample(3, rng=0)), "at least"),
        (lambda: popdb_space(SPACE, SPACE.sample(50, rng=0), keep=["res"]), "unknown parameter"),
    ],
)
def test_bad_input_is_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_tell_rejects_nan_missing_objectives_and_wrong_lengths():
    tactic = RandomSearch(SPACE, OBJECTIVES, 10, batch_size=2)
    archs = tactic.ask()
    with pytest.raises(ValueError, match="non-finite"):
        tactic.tell(archs, {"acc": [np.nan, 1.0], "cost": [1.0, 2.0]})
    with pytest.raises(ValueError, match="no values for objective 'cost'"):
        tactic.tell(archs, {"acc": [1.0, 1.0]})
    with pytest.raises(ValueError, match="got 1 values of 'cost' for 2 archs"):
        tactic.tell(archs, {"acc": [1.0, 1.0], "cost": [1.0]})
    assert tactic.n_validated == 0 and tactic.ask() == archs  # nothing was recorded; the batch is asked again
    tactic.tell(archs, pd.DataFrame(toy(archs)))  # a DataFrame with the objective columns works too
    assert tactic.n_validated == 2


def test_partial_tell_asks_for_the_rest_and_budget_caps_a_batch():
    tactic = RandomSearch(SPACE, OBJECTIVES, 5, batch_size=4)
    batch = tactic.ask()
    tactic.tell(batch[:1], toy(batch[:1]))
    assert tactic.ask() == batch[1:]  # the rest of the pending batch, not a new one
    tactic.tell(batch[1:], toy(batch[1:]))
    assert tactic.n_validated == 4
    assert len(tactic.ask()) == 1  # one validation of the budget left
    assert repr(tactic) == "RandomSearch(4/5 validated)"


def test_trace_rejects_other_objectives_and_is_nan_before_the_first_batch():
    trace = HypervolumeTrace(HypervolumeIndicator({"acc": "max"}, {"acc": (0.0, 1.0)}))
    assert np.isnan(trace.last) and trace.frame().empty
    tactic = RandomSearch(SPACE, OBJECTIVES, 4, batch_size=4)
    drive(tactic)
    with pytest.raises(ValueError, match="differ from the tactic's"):
        trace(tactic)


def test_warm_start_from_unknown_search_names_it(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    with pytest.raises(ValueError, match="unknown search_id 'nope'"):
        best_population(store, "nope", SPACE)
    store.start_search("empty", "x", "random", {})
    with pytest.raises(ValueError, match="recorded no population"):
        best_population(store, "empty", SPACE)


def test_predictor_features_reach_every_inner_predictor():
    calls = []

    def proxies(archs):
        calls.append(len(archs))
        return [[toy([a])["cost"][0]] for a in archs]

    tactic = ConcurrentNAS(
        SPACE, OBJECTIVES, 40, pop_size=10, n_gen=3, predictor="ridge", predictor_features=proxies, seed=0
    )
    drive(tactic)
    assert tactic.n_validated == 40 and sum(calls) > 40  # fitted on the validated archs, then predicting
    assert tactic.config()["predictor_features"].endswith("proxies")
    with pytest.raises(ValueError, match="predictor_features must be a function"):
        ConcurrentNAS(SPACE, OBJECTIVES, 40, predictor_features=[1, 2])
