"""Property-based checks of the public API (hypothesis): invariants on generated spaces and inputs,
and that bad input of any shape gets a one-line ``ValueError`` rather than a deep traceback.
"""

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nastools.hardware import HardwareConfig, resolve_hardware
from nastools.hypervolume import HypervolumeIndicator, pareto_front_mask
from nastools.metrics import Metric
from nastools.objectives import Objective, parse_objectives
from nastools.space import Condition, SearchSpace
from nastools.store import ResultStore

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_names = st.from_regex(r"[a-z][a-z0-9]{0,5}(_[0-9])?", fullmatch=True)
_choice_lists = st.one_of(
    st.lists(st.integers(-50, 50), min_size=1, max_size=4, unique=True),
    st.lists(
        st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=32),
        min_size=1,
        max_size=4,
        unique=True,
    ),
    st.lists(st.from_regex(r"[a-z]{1,5}", fullmatch=True), min_size=1, max_size=4, unique=True),
    st.just([False, True]),
)


@st.composite
def spaces(draw, max_parameters=5):
    """A space of 1-5 parameters with mixed choice types and a random forest of conditions."""
    names = draw(st.lists(_names, min_size=1, max_size=max_parameters, unique=True))
    choices = {name: draw(_choice_lists) for name in names}
    conditions = []
    for i, name in enumerate(names[1:], start=1):
        if draw(st.booleans()):
            controller = names[draw(st.integers(0, i - 1))]  # an earlier parameter: never a cycle
            values = draw(st.lists(st.sampled_from(choices[controller]), min_size=1, unique=True))
            conditions.append(Condition(name, controller, tuple(values)))
    return SearchSpace(choices, conditions)


def _one_line_value_error(function, *args, **kwargs):
    with pytest.raises(ValueError) as info:
        function(*args, **kwargs)
    message = str(info.value)
    assert message and "\n" not in message, message
    return message


@FAST
@given(spaces(), st.integers(0, 2**31 - 1))
def test_encodings_round_trip_and_canonical_is_idempotent(space, seed):
    archs = space.sample(20, rng=seed)
    for arch in archs:
        assert space.canonical(arch) == arch
        assert space.from_key(space.key(arch)) == arch
        assert all(type(arch[n]) is type(space.choices[n][0]) for n in space.names)  # kept exactly
    encoded = space.encode(archs)
    assert space.decode(encoded) == archs
    assert (space.canonical_x(encoded) == encoded).all()
    features = space.features(archs)
    assert features.shape == (len(archs), len(space.feature_names()))
    assert np.isfinite(features).all() and ((features >= 0) & (features <= 1)).all()
    distinct = {space.key(a) for a in archs}
    assert len({tuple(row) for row in features}) == len(distinct)  # features tell networks apart


@FAST
@given(spaces(max_parameters=4))
def test_size_counts_distinct_networks(space):
    assume(math.prod(len(c) for c in space.choices.values()) <= 300)
    networks = {
        space.key(dict(zip(space.names, combo))) for combo in itertools.product(*space.choices.values())
    }
    assert space.size == len(networks)


@FAST
@given(spaces(), st.data())
def test_restrict_keeps_a_subset_and_refuses_values_outside(space, data):
    name = data.draw(st.sampled_from(space.names))
    kept = data.draw(st.lists(st.sampled_from(space.choices[name]), min_size=1, unique=True))
    restricted = space.restrict({name: kept})
    assert set(restricted.choices[name]) == set(kept) and restricted.size <= space.size
    for arch in restricted.sample(10, rng=0):
        # the same network has the same key in both spaces (the store and PopDB rely on it)
        assert space.canonical(arch) == restricted.canonical(arch)
        key = space.key(arch)
        assert restricted.key(space.canonical(arch)) == key == restricted.key(restricted.from_key(key))
    assert SearchSpace.from_dict(restricted.to_dict()) == restricted
    _one_line_value_error(space.restrict, {name: [object()]})
    _one_line_value_error(space.restrict, {name: kept[0]})


@FAST
@given(spaces(), st.data())
def test_any_wrong_arch_is_a_one_line_value_error(space, data):
    arch = space.sample(1, rng=0)[0]
    name = data.draw(st.sampled_from(space.names))
    junk = data.draw(
        st.one_of(st.none(), st.text(max_size=3), st.floats(allow_nan=True), st.lists(st.integers()))
    )
    assume(junk not in space.choices[name] or isinstance(junk, (str, list)) != (space.types[name] == "str"))
    broken = {**arch, name: junk}
    if space.is_active(arch, name) or not space._allowed(name, junk):
        message = _one_line_value_error(space.key, broken)
        assert name in message
    missing = {k: v for k, v in arch.items() if k != name}
    _one_line_value_error(space.encode, missing)
    _one_line_value_error(space.validate, [arch])


@FAST
@given(st.dictionaries(_names, st.lists(st.integers(0, 3), max_size=4), min_size=1, max_size=4))
def test_spaces_with_repeated_or_no_choices_are_refused_in_one_line(choices):
    assume(any(len(v) == 0 or len(set(v)) < len(v) for v in choices.values()))
    _one_line_value_error(SearchSpace, choices)


@FAST
@given(
    st.sampled_from(["cpu", "cuda", "cuda:1"]),
    st.integers(1, 2),
    st.integers(1, 512),
)
def test_hardware_keys_round_trip(device, threads, batch):
    config = HardwareConfig(device, threads if device == "cpu" else 1, batch)
    assert HardwareConfig.from_key(config.key) == config
    assert resolve_hardware(config.key) == config


@FAST
@given(st.one_of(st.text(max_size=12), st.integers(), st.none(), st.booleans(), st.floats()))
def test_any_bad_hardware_key_is_a_one_line_value_error(key):
    assume(not (isinstance(key, str) and key.startswith(("cpu-t1-b", "cpu-t2-b", "cuda-b"))))
    _one_line_value_error(resolve_hardware, key)


@FAST
@given(
    st.one_of(st.booleans(), st.integers(-3, 0), st.floats(0.1, 3), st.text(max_size=2)),
    st.sampled_from(["threads", "batch_size"]),
)
def test_bad_hardware_fields_are_one_line_value_errors(value, field):
    _one_line_value_error(HardwareConfig, **{field: value})


@FAST
@given(st.text(max_size=8), st.text(max_size=4), st.one_of(st.none(), st.text(max_size=6)))
def test_objectives_either_build_or_say_why_in_one_line(metric, direction, hardware):
    try:
        objective = Objective(metric, direction, hardware)
    except ValueError as error:
        assert "\n" not in str(error)
        return
    assert objective.direction in ("min", "max") and objective.metric.isidentifier()
    assert Objective.from_label(objective.label, direction) == objective
    assert parse_objectives({objective.label: direction}) == (objective,)


@FAST
@given(
    st.text(max_size=8), st.text(max_size=4), st.sampled_from(["validation", "prediction", "proxy", "oops"])
)
def test_metrics_either_build_or_say_why_in_one_line(name, direction, kind):
    try:
        metric = Metric(name, direction, kind=kind)
    except ValueError as error:
        assert "\n" not in str(error)
        return
    assert metric.direction in ("min", "max") and metric.kind != "oops"


@FAST
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=30))
def test_hypervolume_is_in_the_unit_interval_and_monotone(points):
    indicator = HypervolumeIndicator({"acc": "max", "cost": "min"}, {"acc": (0, 1), "cost": (0, 1)})
    acc, cost = np.array(points).T
    hv = indicator({"acc": acc, "cost": cost})
    assert 0.0 <= hv <= 1.0
    front = pareto_front_mask(np.column_stack([-acc, cost]))
    assert indicator({"acc": acc[front], "cost": cost[front]}) == pytest.approx(hv)  # only the front counts
    assert indicator({"acc": np.append(acc, 1.0), "cost": np.append(cost, 0.0)}) == pytest.approx(1.0)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "arch": st.sampled_from(["a", "b", "c"]),
                "metric": st.sampled_from(["top1", "macs"]),
                "value": st.one_of(st.floats(-1e6, 1e6), st.just(float("nan")), st.just(float("inf"))),
            }
        ),
        min_size=1,
        max_size=8,
    )
)
def test_the_store_keeps_whole_valid_batches_and_refuses_others(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("store") / "s.sqlite"
    full = [{"supernet_id": "s", "checkpoint_hash": "h", "hardware": "", **row} for row in rows]
    with ResultStore(path) as store:
        if all(math.isfinite(row["value"]) for row in rows):
            assert store.add(full) == len(full)
            for arch in {r["arch"] for r in rows}:
                for metric in {r["metric"] for r in rows}:
                    mine = [r["value"] for r in rows if r["arch"] == arch and r["metric"] == metric]
                    found = store.lookup("s", "h", metric, "", [arch])
                    assert (found[arch]["value"] == mine[-1]) if mine else arch not in found
        else:
            _one_line_value_error(store.add, full)
            assert len(store.measurements()) == 0
