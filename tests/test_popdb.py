"""PopDB as the paper runs it: a long NSGA-II on predictors as the history, HDBSCAN, a 1% threshold."""

import inspect

import numpy as np
import pytest

from nastools.search import popdb_space, predictor_history
from nastools.space import SearchSpace

N_LAYERS = 8
SPACE = SearchSpace(
    {**{f"ks_{i}": [3, 5, 7] for i in range(N_LAYERS)}, **{f"e_{i}": [3, 4, 6] for i in range(N_LAYERS)}}
)
OBJECTIVES = {"top1": "max", "macs": "min"}


def _kernels(arch):
    return sum(arch[f"ks_{i}"] for i in range(N_LAYERS))


def _widths(arch):
    return sum(arch[f"e_{i}"] for i in range(N_LAYERS))


def _macs(archs):
    return [float(_widths(a)) for a in archs]


@pytest.fixture(scope="module")
def source():
    """A source search's validations: top-1 grows with kernels and widths, MACs with widths only.

    Every kernel value but 7 is dominated, so the predictors clearly prefer kernel 7; the widths
    trade top-1 against MACs, so every width stays on the front.
    """
    archs = SPACE.sample(40, rng=0)
    return archs, {"top1": [float(_kernels(a) + _widths(a)) for a in archs]}


def _history(source, **options):
    archs, values = source
    return predictor_history(SPACE, OBJECTIVES, archs, values, exact={"macs": _macs}, **options)


def test_predictor_history_has_n_samples_archs_of_the_space_and_repeats_for_a_seed(source):
    history = _history(source, n_samples=1010, pop_size=20, seed=3)
    assert len(history) == 1010  # not a multiple of pop_size: the last generation is cut
    for arch in history:
        SPACE.validate(arch)
    assert [SPACE.key(a) for a in _history(source, n_samples=1010, pop_size=20, seed=3)] == [
        SPACE.key(a) for a in history
    ]
    other = _history(source, n_samples=1010, pop_size=20, seed=4)
    assert [SPACE.key(a) for a in other] != [SPACE.key(a) for a in history]
    # the search follows the predictors: kernel 7 dominates the later generations
    late = history[len(history) // 2 :]
    assert np.mean([a["ks_0"] == 7 for a in late]) > 0.8


def test_predictor_history_continues_when_the_space_is_smaller_than_the_population():
    space = SearchSpace({"a": [0, 1, 2], "b": [0, 1]})  # 6 networks: duplicate elimination starves
    archs = space.sample(6, rng=0)
    values = {"score": [float(a["a"] + a["b"]) for a in archs], "cost": [float(a["a"]) for a in archs]}
    history = predictor_history(
        space, {"score": "max", "cost": "min"}, archs, values, n_samples=100, pop_size=4
    )
    assert len(history) == 100
    with pytest.raises(ValueError, match=r"only 6 networks, too few for pop_size=6"):
        predictor_history(space, {"score": "max", "cost": "min"}, archs, values, n_samples=100, pop_size=6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"values": {}}, r"values has no 'top1'"),
        ({"values": {"top1": [1.0, 2.0]}}, r"values\['top1'\] has 2 values for 40 archs"),
        ({"n_samples": 0}, r"n_samples must be a positive integer"),
        ({"pop_size": 1}, r"pop_size must be an integer >= 2"),
        ({"predictor": "forest"}, r"unknown predictor kind 'forest'"),
        ({"exact": {"latency": _macs}}, r"exact objective\(s\) \['latency'\] are not objectives"),
    ],
)
def test_predictor_history_rejects_bad_input_in_one_line(source, change, message):
    archs, values = source
    arguments = {"values": values, "exact": {"macs": _macs}, "n_samples": 100, **change}
    with pytest.raises(ValueError, match=message) as error:
        predictor_history(SPACE, OBJECTIVES, archs, arguments.pop("values"), **arguments)
    assert "\n" not in str(error.value)


def test_popdb_defaults_remove_what_the_predictors_rejected_at_one_percent(source):
    result = popdb_space(SPACE, _history(source, n_samples=3000, pop_size=20, seed=0))
    frequency = result.frequencies.set_index(["parameter", "value"])["frequency"]
    lost = {name for name in SPACE.names if name in result.removed}
    kernels = {f"ks_{i}" for i in range(N_LAYERS)}
    # dominated kernels are dropped everywhere, the widths on the front mostly stay (cf. Fig. 12)
    assert all(3 in result.removed[name] and 7 in result.space.choices[name] for name in kernels)
    assert len(lost - kernels) < N_LAYERS // 2
    # removed exactly when the share does not exceed 1%: a value seen in 1-10% is kept
    for (name, value), share in frequency.items():
        most_frequent = share == frequency.loc[name].max()
        assert (value in result.space.choices[name]) == (share > 0.01 or most_frequent), (name, value)
    assert ((frequency > 0.01) & (frequency <= 0.1)).any()
    assert result.size_after < result.size_before


def test_popdb_defaults_are_the_papers(source):
    parameters = inspect.signature(popdb_space).parameters
    assert parameters["threshold"].default == 0.01
    assert (parameters["min_cluster_size"].default, parameters["min_samples"].default) == (50, 10)
    history = inspect.signature(predictor_history).parameters
    assert (history["n_samples"].default, history["pop_size"].default) == (100_000, 50)
    with pytest.raises(ValueError, match=r"PopDB needs at least 50 archs to cluster .* got 49"):
        popdb_space(SPACE, SPACE.sample(49, rng=0))


def test_popdb_clusters_a_seeded_subsample_of_a_long_history(source):
    history = _history(source, n_samples=600, pop_size=20, seed=0)
    result = popdb_space(SPACE, history, max_points=300, seed=1)
    assert len(result.sample) == len(result.labels) == 300
    assert len(set(result.sample.tolist())) == 300 and result.sample.max() < 600
    again = popdb_space(SPACE, history, max_points=300, seed=1)
    assert np.array_equal(again.sample, result.sample) and again.removed == result.removed
    whole = popdb_space(SPACE, history, max_points=None)
    assert np.array_equal(whole.sample, np.arange(600)) and len(whole.labels) == 600
    with pytest.raises(ValueError, match=r"max_points=20 is below the 50 archs HDBSCAN needs"):
        popdb_space(SPACE, history, max_points=20)
