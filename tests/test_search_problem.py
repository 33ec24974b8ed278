"""Unit tests for nastools.search and nastools.hypervolume: objectives, problem, operators, algorithms."""

# pymoo's names: X is the decision matrix, F the objective matrix.
# ruff: noqa: N803, N806

import importlib
import importlib.util

import numpy as np
import pandas as pd
import pytest
from pymoo.core.duplicate import DefaultDuplicateElimination
from pymoo.core.population import Population

from nastools.hardware import HardwareConfig
from nastools.hypervolume import HypervolumeIndicator, pareto_front_mask
from nastools.objectives import Objective, parse_objectives
from nastools.search import (
    ALGORITHMS,
    ArchProblem,
    CanonicalRepair,
    ChoiceResetMutation,
    make_algorithm,
    run_search,
)
from nastools.space import Condition, SearchSpace
from nastools.supernets.mobilenetv3 import mobilenetv3_space

OBJECTIVES = {"size": "min", "quality": "max"}
HAS_NUMBA = importlib.util.find_spec("numba") is not None


@pytest.fixture(scope="module")
def space():
    return mobilenetv3_space()


def toy_evaluate(archs):
    """Closed-form conflicting objectives on the MobileNetV3 space (a unit-test fixture only).

    size = sum over active blocks of ks * e (minimise); quality = sum over active blocks of
    e * (1 + 0.2 * stage) + 0.5 * ks (maximise). Both grow with depth, kernel and expansion.
    """
    size, quality = [], []
    for arch in archs:
        s = q = 0.0
        for block in range(20):
            stage, position = divmod(block, 4)
            if arch[f"d_{stage}"] > position:
                ks, e = arch[f"ks_{block}"], arch[f"e_{block}"]
                s += ks * e
                q += e * (1 + 0.2 * stage) + 0.5 * ks
        size.append(s)
        quality.append(q)
    return {"size": np.array(size), "quality": np.array(quality)}


@pytest.fixture(scope="module")
def problem(space):
    return ArchProblem(space, OBJECTIVES, toy_evaluate)


def random_x(space, n, seed=0):
    return np.random.default_rng(seed).integers(0, space.n_choices, size=(n, space.n_var))


def test_parse_objectives_forms_and_errors():
    objs = parse_objectives({"top1": "max", "latency_ms@cpu-t1-b1": "min"})
    assert objs == (Objective("top1", "max"), Objective("latency_ms", "min", "cpu-t1-b1"))
    assert [o.label for o in objs] == ["top1", "latency_ms@cpu-t1-b1"]
    assert [o.hardware for o in objs] == [None, "cpu-t1-b1"]
    assert parse_objectives([Objective("bleu", "max")]) == (Objective("bleu", "max"),)
    assert parse_objectives([("macs", "min"), ("latency_ms", "min", "lut-note10")]) == (
        Objective("macs", "min"),
        Objective("latency_ms", "min", "lut-note10"),
    )
    assert [o.sign for o in objs] == [-1.0, 1.0]
    # a HardwareConfig is replaced by its key
    assert Objective("latency_ms", "min", HardwareConfig(threads=2, batch_size=8)).hardware == "cpu-t2-b8"
    with pytest.raises(ValueError, match="at least one objective"):
        parse_objectives({})
    with pytest.raises(ValueError, match="direction 'up'"):
        parse_objectives({"top1": "up"})
    with pytest.raises(ValueError, match=r"\['macs'\] given more than once"):
        parse_objectives([Objective("macs", "min"), Objective("macs", "max")])
    with pytest.raises(ValueError, match="the string"):
        parse_objectives("top1")
    with pytest.raises(ValueError, match="cannot read an objective"):
        parse_objectives([("top1",)])
    with pytest.raises(ValueError, match="metric name"):
        Objective("", "min")
    with pytest.raises(ValueError, match="metric name"):
        Objective("latency_ms@cpu-t1-b1", "min")  # the label is not a metric: give hardware apart
    with pytest.raises(ValueError, match="no hardware after '@'"):
        Objective.from_label("latency_ms@", "min")
    with pytest.raises(ValueError, match="bad hardware key"):
        Objective("latency_ms", "min", " cpu-t1-b1")


# --- problem ----------------------------------------------------------------------------------


def test_problem_shape_bounds_and_signs(space, problem):
    assert problem.n_var == 45 and problem.n_obj == 2
    assert np.all(problem.xl == 0) and np.array_equal(problem.xu, space.n_choices - 1)
    X = random_x(space, 7)
    F = problem.evaluate(X)
    expected = toy_evaluate(space.decode(X))
    assert F.shape == (7, 2)
    np.testing.assert_allclose(F[:, 0], expected["size"])
    np.testing.assert_allclose(F[:, 1], -expected["quality"])  # maximised -> negated
    values = problem.values(F)
    np.testing.assert_allclose(values["quality"], expected["quality"])
    np.testing.assert_allclose(values["size"], expected["size"])
    # floats from pymoo are rounded, and the evaluate callable is called once per population
    calls = []
    counting = ArchProblem(space, OBJECTIVES, lambda archs: calls.append(len(archs)) or toy_evaluate(archs))
    np.testing.assert_allclose(counting.evaluate(X + 0.2), F)
    assert calls == [7]


def test_problem_single_objective_pass_x_and_missing_objective(space):
    one = ArchProblem(space, {"depth": "max"}, lambda X: {"depth": X[:, :5].sum(axis=1)}, pass_x=True)
    X = random_x(space, 4)
    np.testing.assert_allclose(one.evaluate(X)[:, 0], -X[:, :5].sum(axis=1))
    missing = ArchProblem(space, {"top1": "max", "macs": "min"}, lambda archs: {"top1": np.zeros(len(archs))})
    with pytest.raises(ValueError, match="objective 'macs'"):
        missing.evaluate(X)


def test_vectorised_encoding_equals_per_arch_reference(space):
    """The vectorised encodings the search uses agree with a per-arch reference built from is_active."""
    small = SearchSpace(
        {"d": [1, 2, 3], "k_0": [3, 5], "k_1": [3, 5, 7], "k_2": [5, 7], "r": [160, 224]},
        conditions=[Condition("k_1", "d", (2, 3)), Condition("k_2", "d", (3,))],
    )
    for sp in (space, small, mobilenetv3_space(resolutions=(192, 224))):
        X = random_x(sp, 64, seed=1)
        raw = [dict(zip(sp.names, (sp.choices[n][i] for n, i in zip(sp.names, row)))) for row in X]
        canonical = [{n: (a[n] if sp.is_active(a, n) else sp.choices[n][0]) for n in sp.names} for a in raw]
        assert sp.decode(X) == canonical
        expected_x = np.array([[sp.choices[n].index(a[n]) for n in sp.names] for a in canonical])
        np.testing.assert_array_equal(sp.canonical_x(X), expected_x)
        np.testing.assert_array_equal(sp.encode(canonical), expected_x)
        np.testing.assert_array_equal(sp.features_x(X), sp.features(raw))
        onehot = sp.features_x(X)[:, : int(sp.n_choices.sum())]
        active = np.array([[sp.is_active(a, n) for n in sp.names] for a in raw])
        assert (onehot.sum(axis=1) == active.sum(axis=1)).all()  # one slot per active parameter
    with pytest.raises(ValueError, match="'d_0'"):
        space.canonical_x(np.full((1, space.n_var), 3))


# --- operators --------------------------------------------------------------------------------


def test_canonical_repair_zeroes_exactly_the_inactive_genes(space, problem):
    X = random_x(space, 200, seed=2)
    repaired = CanonicalRepair(space).do(problem, Population.new(X=X)).get("X")
    active = np.array([[space.is_active(space.decode(row), n) for n in space.names] for row in X])
    np.testing.assert_array_equal(active, space.active_mask(X))
    assert np.any(~active)
    np.testing.assert_array_equal(repaired[active], X[active])
    assert np.all(repaired[~active] == 0)


def test_duplicate_networks_are_eliminated(space, problem):
    base = np.zeros(space.n_var, dtype=int)  # depth 2 everywhere: blocks 2, 3 of each stage unused
    twin = base.copy()
    twin[space.names.index("ks_2")] = 2  # differs only in an inactive gene
    twin[space.names.index("e_3")] = 1
    other = base.copy()
    other[space.names.index("ks_0")] = 1  # an active gene: a different network
    pop = CanonicalRepair(space).do(problem, Population.new(X=np.stack([base, twin, other])))
    kept = DefaultDuplicateElimination().do(pop).get("X")
    assert len(kept) == 2
    # the same happens inside an algorithm's initialisation (warm start with initial_X)
    seen = {}
    algorithm = make_algorithm("nsga2", space, pop_size=4, initial_X=np.stack([base, twin, other]))
    run_search(problem, algorithm, n_gen=1, seed=0, callback=lambda gen, X, F: seen.setdefault(gen, X))
    assert len(seen[1]) == 2


def test_choice_reset_mutation_rate_range_and_change(space, problem):
    X = random_x(space, 2000, seed=3)
    rng = np.random.default_rng(4)
    out = ChoiceResetMutation(prob_var=0.1).do(problem, Population.new(X=X.copy()), random_state=rng).get("X")
    assert abs(np.mean(out != X) - 0.1) < 0.01
    assert np.all((out >= 0) & (out < space.n_choices))
    default = ChoiceResetMutation().do(problem, Population.new(X=X.copy()), random_state=rng).get("X")
    assert abs(np.mean(default != X) - 1 / space.n_var) < 0.005
    # every reset gene moves to another choice, each other choice equally likely
    zeros = np.zeros((3000, space.n_var), dtype=int)
    always = ChoiceResetMutation(prob_var=1.0).do(problem, Population.new(X=zeros), random_state=rng).get("X")
    assert np.all(always != 0) and np.all(always < space.n_choices)
    assert abs(np.mean(always == 1) - 0.5) < 0.01


# --- algorithms and run_search ----------------------------------------------------------------


@pytest.mark.parametrize("name", ALGORITHMS)
def test_each_algorithm_runs_and_returns_non_dominated_in_bounds(space, name):
    if name == "agemoea" and not HAS_NUMBA:
        with pytest.raises(ImportError, match="numba"):
            make_algorithm(name, space)
        pytest.skip("AGE-MOEA needs numba")
    if name == "ga":
        problem = ArchProblem(space, {"quality": "max"}, toy_evaluate)
    else:
        problem = ArchProblem(space, OBJECTIVES, toy_evaluate)
    extra = {"ref_points": np.array([[300.0, -120.0]])} if name == "rnsga2" else {}
    algorithm = make_algorithm(name, space, pop_size=12, n_objectives=problem.n_obj, **extra)
    res = run_search(problem, algorithm, n_gen=4, seed=1)
    X = np.atleast_2d(res.X).astype(int)
    F = np.atleast_2d(res.F)
    assert np.all((X >= 0) & (X < space.n_choices))
    np.testing.assert_array_equal(X, space.canonical_x(X))
    np.testing.assert_allclose(F, problem.evaluate(X))
    assert pareto_front_mask(F).all()
    if name == "ga":
        assert len(F) == 1 and F[0, 0] <= res.pop.get("F").min()


def test_algorithm_errors(space):
    with pytest.raises(ValueError, match="unknown algorithm 'sms'.*'nsga2'"):
        make_algorithm("sms", space)
    with pytest.raises(ValueError, match="single-objective"):
        make_algorithm("ga", space, n_objectives=2)
    with pytest.raises(ValueError, match="use 'ga'"):
        make_algorithm("nsga2", space, n_objectives=1)
    with pytest.raises(ValueError, match="ref_points"):
        make_algorithm("rnsga2", space)
    with pytest.raises(ValueError, match="columns"):
        make_algorithm("nsga2", space, initial_X=np.zeros((2, 3), dtype=int))
    assert make_algorithm("unsga3", space, pop_size=20, n_objectives=3).ref_dirs.shape == (15, 3)


def test_same_seed_same_result(space, problem):
    def run(seed):
        return run_search(problem, make_algorithm("nsga2", space, pop_size=10), n_gen=5, seed=seed)

    a, b, c = run(7), run(7), run(8)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.F, b.F)
    assert not np.array_equal(a.pop.get("X"), c.pop.get("X"))


def test_nsga2_improves_hypervolume_on_toy(space, problem):
    hv = HypervolumeIndicator(OBJECTIVES, {"size": (0.0, 1000.0), "quality": (0.0, 300.0)})
    trace = {}

    def record(generation, X, F):
        trace[generation] = hv(problem.values(F[pareto_front_mask(F)]))

    run_search(problem, make_algorithm("nsga2", space, pop_size=20), n_gen=15, seed=0, callback=record)
    assert sorted(trace) == list(range(1, 16))
    assert trace[15] > trace[1] + 0.01
    assert all(later >= earlier - 1e-12 for earlier, later in zip(trace.values(), list(trace.values())[1:]))


# --- hypervolume ------------------------------------------------------------------------------


def test_hypervolume_known_front_and_monotonicity():
    hv = HypervolumeIndicator({"a": "min", "b": "min"}, {"a": (0.0, 1.0), "b": (0.0, 1.0)})
    front = {"a": [0.25, 0.5], "b": [0.5, 0.25]}
    # union of [0.25,1]x[0.5,1] and [0.5,1]x[0.25,1]: 0.375 + 0.375 - 0.25
    assert hv(front) == pytest.approx(0.5)
    assert hv({"a": [0.25, 0.5, 0.2], "b": [0.5, 0.25, 0.2]}) > 0.5  # a dominating point
    assert hv({"a": [0.25, 0.5, 0.6], "b": [0.5, 0.25, 0.6]}) == pytest.approx(0.5)  # dominated
    assert hv({"a": [0.25, 0.5, 1.5], "b": [0.5, 0.25, 0.0]}) == pytest.approx(0.5)  # outside the box
    assert hv({"a": [], "b": []}) == 0.0
    assert hv(pd.DataFrame(front)) == pytest.approx(0.5)


def test_hypervolume_scales_and_flips_maximised_objectives():
    hv = HypervolumeIndicator({"top1": "max", "macs": "min"}, {"top1": (0.5, 0.9), "macs": (100.0, 500.0)})
    # top1 0.8 -> 0.25, macs 300 -> 0.5 in the unit box
    assert hv({"top1": [0.8], "macs": [300.0]}) == pytest.approx(0.75 * 0.5)
    with pytest.raises(ValueError, match="'macs'"):
        HypervolumeIndicator({"top1": "max", "macs": "min"}, {"top1": (0.0, 1.0)})
    with pytest.raises(ValueError, match="'macs'"):
        hv({"top1": [0.8]})


def test_hypervolume_counts_values_clipped_at_the_best_bound():
    hv = HypervolumeIndicator({"top1": "max", "macs": "min"}, {"top1": (0.5, 0.9), "macs": (100.0, 500.0)})
    inside = {"top1": [0.8], "macs": [300.0]}
    assert hv(inside) == pytest.approx(0.375) and hv.n_clipped == 0
    # better than both bounds: counts as the best corner, and both values are reported clipped
    assert hv({"top1": [0.95], "macs": [50.0]}) == pytest.approx(1.0) and hv.n_clipped == 2
    # a point outside the box (worse than a bound) is dropped, not clipped
    assert hv({"top1": [0.95, 0.4], "macs": [300.0, 50.0]}) == pytest.approx(0.5) and hv.n_clipped == 1
    assert hv({"top1": [0.4], "macs": [50.0]}) == 0.0 and hv.n_clipped == 0  # reset on every call
    assert hv.bounds == {"top1": (0.5, 0.9), "macs": (100.0, 500.0)}
    with pytest.raises(ValueError, match="low < high"):
        HypervolumeIndicator({"macs": "min"}, {"macs": (5.0, 5.0)})


def test_hypervolume_is_keyed_by_label():
    objectives = [Objective("top1", "max"), Objective("latency_ms", "min", "cpu-t1-b1")]
    hv = HypervolumeIndicator(objectives, {"top1": (0.0, 1.0), "latency_ms@cpu-t1-b1": (0.0, 10.0)})
    assert hv({"top1": [0.5], "latency_ms@cpu-t1-b1": [5.0]}) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="'latency_ms@cpu-t1-b1'"):
        HypervolumeIndicator(objectives, {"top1": (0.0, 1.0), "latency_ms": (0.0, 10.0)})


def test_pareto_front_mask():
    F = np.array([[1.0, 2.0], [2.0, 1.0], [2.0, 2.0], [0.5, 3.0]])
    assert pareto_front_mask(F).tolist() == [True, True, False, True]
    assert pareto_front_mask(np.empty((0, 2))).tolist() == []
    assert pareto_front_mask(np.array([[1.0, 1.0], [1.0, 1.0]])).tolist() == [True, True]  # ties both kept
