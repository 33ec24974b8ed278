# pymoo's names: X is the decision matrix (choice indices).
# ruff: noqa: N806

import itertools
import json

import numpy as np
import pytest

from nastools.space import Condition, SearchSpace
from nastools.supernets.mobilenetv3 import mobilenetv3_space


@pytest.fixture
def toy():
    return SearchSpace(
        {"d": [1, 2], "k_0": [3, 5], "k_1": [3, 5, 7]}, conditions=[Condition("k_1", "d", (2,))]
    )


@pytest.fixture
def mixed():
    """Every choice type, with a condition nested two deep (k_2 needs k_1=5, which needs d >= 2)."""
    return SearchSpace(
        {
            "d": [1, 2, 3],
            "se": [True, False],
            "k_1": [3, 5],
            "scale": [0.25, 1.5, 2.75],
            "act": ["relu", "h_swish", "gelu"],
        },
        [Condition("k_1", "d", (2, 3)), Condition("scale", "k_1", (5,)), Condition("act", "se", (True,))],
    )


def networks(space):
    """Brute force over every raw arch: the distinct sets of active (parameter, value) pairs."""
    found = set()
    for values in itertools.product(*space.choices.values()):
        arch = dict(zip(space.names, values))
        found.add(frozenset((n, arch[n]) for n in space.names if space.is_active(arch, n)))
    return found


def one_line(info):
    message = str(info.value)
    assert message and "\n" not in message
    return message


def test_size_counts_distinct_networks(toy):
    assert toy.size == 2 + 2 * 3
    # brute force: distinct canonical archs over all encodings
    grid = np.array(np.meshgrid(*[range(n) for n in toy.n_choices])).reshape(toy.n_var, -1).T
    assert len({toy.key(a) for a in toy.decode(grid)}) == toy.size
    assert len(networks(toy)) == toy.size


@pytest.mark.parametrize(
    "choices, conditions",
    [
        # a chain three deep
        (
            {"a": [0, 1, 2], "b": [0, 1], "c": [0, 1, 2], "e": [0, 1]},
            [Condition("b", "a", (1, 2)), Condition("c", "b", (1,)), Condition("e", "c", (0, 2))],
        ),
        # one controller with several dependents, one of which controls another
        (
            {"d": [2, 3, 4], "k_0": [3, 5], "k_1": [3, 5, 7], "k_2": [3, 5], "x": [1, 2, 3]},
            [
                Condition("k_1", "d", (3, 4)),
                Condition("k_2", "d", (4,)),
                Condition("x", "k_1", (5, 7)),
            ],
        ),
        # a condition that never holds (what a restriction leaves: SearchSpace.restrict), and a free parameter
        ({"d": [1, 2], "k": [3, 5], "free": ["a", "b"]}, [Condition("k", "d", ())]),
    ],
)
def test_size_of_nested_conditions_equals_brute_force(choices, conditions):
    space = SearchSpace._derive(choices, conditions)  # derived: conditions may list no value
    assert space.size == len(networks(space))
    grid = np.array(list(itertools.product(*[range(n) for n in space.n_choices])))
    assert len({space.key(a) for a in space.decode(grid)}) == space.size


def test_mixed_types_nested_size_and_active_mask(mixed):
    assert mixed.size == len(networks(mixed))
    # d=1: k_1 and scale inactive; d in {2,3}: k_1=3 (scale inactive) or k_1=5 x 3 scales. act needs se.
    assert mixed.size == (1 + 2 * (1 + 3)) * (3 + 1)
    X = np.array(list(itertools.product(*[range(n) for n in mixed.n_choices])))
    mask = mixed.active_mask(X)
    for x, row in zip(X, mask):
        arch = {n: mixed.choices[n][i] for n, i in zip(mixed.names, x)}
        assert row.tolist() == [mixed.is_active(arch, n) for n in mixed.names]
    canonical = mixed.canonical_x(X)
    assert (canonical[~mask] == 0).all() and (canonical[mask] == X[mask]).all()


def test_float_str_bool_choices_round_trip(mixed):
    archs = mixed.sample(40, rng=0)
    assert {type(a[n]) for a in archs for n in ("se", "scale", "act")} == {bool, float, str}
    X = mixed.encode(archs)
    assert mixed.decode(X) == archs
    for arch in archs:
        key = mixed.key(arch)
        assert mixed.from_key(key) == arch
        assert {type(v) for v in mixed.from_key(key).values()} == {type(v) for v in arch.values()}
    assert mixed.key({"d": 3, "se": True, "k_1": 5, "scale": 2.75, "act": "gelu"}) == (
        "d=3,se=True,k_1=5,scale=2.75,act=gelu"
    )
    assert mixed.from_key("d=3,se=False,k_1=5,scale=0.25,act=relu")["scale"] == 0.25


def test_features_of_mixed_types(mixed):
    names = mixed.feature_names()
    onehot = [f"{n}={v}" for n in mixed.names for v in mixed.choices[n]]
    assert names == onehot + ["d", "k_1", "scale"]  # one scaled column per numeric parameter
    arch = {"d": 3, "se": False, "k_1": 5, "scale": 1.5, "act": "gelu"}
    f = dict(zip(names, mixed.features(arch)[0]))
    assert f["d=3"] == f["se=False"] == f["k_1=5"] == f["scale=1.5"] == 1
    assert not any(f[f"act={a}"] for a in mixed.choices["act"])  # act is inactive without se
    assert f["d"] == 1.0 and f["k_1"] == 1.0 and f["scale"] == pytest.approx((1.5 - 0.25) / 2.5)
    short = {"d": 1, "se": True, "k_1": 5, "scale": 2.75, "act": "h_swish"}
    g = dict(zip(names, mixed.features(short)[0]))
    assert g["d"] == 0.0 and g["k_1"] == 0.0 and g["scale"] == 0.0  # smallest d; others inactive
    assert sum(g.values()) == 3  # d=1, se=True, act=h_swish
    X = mixed.encode(mixed.sample(25, rng=1))
    assert np.array_equal(mixed.features_x(X), mixed.features(mixed.decode(X)))
    assert mixed.features([]).shape == (0, len(names))


def test_ofa_space_size_matches_closed_form():
    space = mobilenetv3_space()
    per_stage = sum(9**d for d in (2, 3, 4))
    assert space.size == per_stage**5
    assert f"{space.size:.2e}" == "2.18e+19"
    assert mobilenetv3_space(resolutions=(160, 192, 224)).size == 3 * per_stage**5


def test_canonical_makes_same_networks_equal(toy):
    a = {"d": 1, "k_0": 5, "k_1": 7}
    b = {"d": 1, "k_0": 5, "k_1": 3}
    assert toy.canonical(a) == toy.canonical(b)
    assert toy.key(a) == toy.key(b)
    assert toy.canonical({"d": 2, "k_0": 5, "k_1": 7})["k_1"] == 7


def test_mobilenet_canonical_resets_blocks_beyond_depth():
    space = mobilenetv3_space()
    arch = space.sample(1, rng=3)[0] | {"d_1": 2, "ks_6": 7, "e_7": 6}
    canonical = space.canonical(arch)
    assert canonical["ks_6"] == 3 and canonical["e_7"] == 3
    assert canonical["ks_4"] == arch["ks_4"]  # first block of stage 1 is always active


def test_encode_decode_round_trip():
    space = mobilenetv3_space(resolutions=(16, 24))
    archs = space.sample(50, rng=0)
    x = space.encode(archs)
    assert x.shape == (50, space.n_var) and x.dtype == np.int64
    assert space.decode(x) == archs
    assert space.decode(x[0]) == archs[0]
    assert np.array_equal(space.encode(archs[0]), x[0])


def test_sample_is_seeded_and_canonical():
    space = mobilenetv3_space()
    assert space.sample(5, rng=1) == space.sample(5, rng=1)
    assert space.sample(5, rng=1) != space.sample(5, rng=2)
    assert all(space.canonical(a) == a for a in space.sample(20, rng=np.random.default_rng(0)))
    assert space.sample(0, rng=0) == []
    with pytest.raises(ValueError, match="non-negative integer"):
        space.sample(-1, rng=0)


def test_features_one_hot_with_inactive_zero():
    space = mobilenetv3_space()
    arch = space.canonical(space.sample(1, rng=0)[0] | {"d_0": 2})
    f = space.features([arch])[0]
    names = space.feature_names()
    n_onehot = 5 * 3 + 20 * 3 * 2
    assert len(f) == len(names) == n_onehot + space.n_var  # every parameter is numeric here
    assert not any(f[names.index(f"ks_3={k}")] for k in (3, 5, 7))  # block 3 inactive at depth 2
    assert f[names.index("ks_3")] == 0 and f[names.index("d_0")] == 0.0  # d_0=2 is its smallest
    # every active parameter has exactly one hot slot
    active = [n for n in space.names if space.is_active(arch, n)]
    assert f[:n_onehot].sum() == len(active)
    assert f[names.index(f"ks_0={arch['ks_0']}")] == 1
    assert f[names.index("ks_0")] == {3: 0.0, 5: 0.5, 7: 1.0}[arch["ks_0"]]
    assert f[names.index("e_0")] == {3: 0.0, 4: 1 / 3, 6: 1.0}[arch["e_0"]]


@pytest.mark.parametrize(
    "arch_update, match",
    [
        ({"ks_0": 4}, r"ks_0.*4.*\[3, 5, 7\]"),
        ({"d_2": 5}, r"d_2.*5.*\[2, 3, 4\]"),
        ({"bogus": 1}, r"unknown parameter.*bogus"),
        ({"ks_0": True}, r"ks_0"),
        ({"ks_0": "3"}, r"ks_0"),
    ],
)
def test_invalid_archs_name_the_problem(arch_update, match):
    space = mobilenetv3_space()
    arch = space.sample(1, rng=0)[0] | arch_update
    with pytest.raises(ValueError, match=match):
        space.canonical(arch)


def test_missing_parameter_is_named():
    space = mobilenetv3_space()
    arch = space.sample(1, rng=0)[0]
    del arch["e_5"]
    with pytest.raises(ValueError, match="missing.*e_5"):
        space.encode(arch)


def test_decode_rejects_out_of_range_index(toy):
    with pytest.raises(ValueError, match="k_1"):
        toy.decode(np.array([0, 0, 3]))
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        toy.decode(np.zeros((2, 4), dtype=int))


def test_restrict_keeps_only_allowed_values():
    space = mobilenetv3_space()
    small = space.restrict({"ks_0": [3, 5], "d_0": [4]})
    assert small.choices["ks_0"] == (3, 5) and small.choices["d_0"] == (4,)
    assert small.size == space.size // 7371 * 6561 * 2 // 3
    assert small.choices["ks_1"] == space.choices["ks_1"]
    with pytest.raises(ValueError, match="outside the space"):
        space.restrict({"ks_0": [9]})


def test_restrict_keeps_conditions_and_types(mixed):
    small = mixed.restrict({"k_1": [5], "act": ["gelu", "relu"]})
    assert small.choices["act"] == ("relu", "gelu")  # the space's order, not the request's
    assert small.size == len(networks(small))
    none_active = mixed.restrict({"d": [1]})
    assert none_active.size == 4 and len(networks(none_active)) == 4


@pytest.mark.parametrize(
    "allowed, match",
    [
        ({"d": [4]}, r"restrict gives 'd' value\(s\) \[4\] outside the space; its choices are \[1, 2, 3\]"),
        ({"d": [True]}, r"value\(s\) \[True\] outside"),
        ({"act": ["relu", "tanh"]}, r"\['tanh'\] outside"),
        ({"d": 2}, r"single value; pass a list, e\.g\. \{'d': \[2\]\}"),
        ({"act": "relu"}, r"single value.*\['relu'\]"),
        ({"depth": [1]}, r"unknown parameter 'depth'"),
        ({"d": []}, r"leaves parameter 'd' with no choices"),
    ],
)
def test_restrict_errors_are_one_line(mixed, allowed, match):
    with pytest.raises(ValueError, match=match) as info:
        mixed.restrict(allowed)
    one_line(info)


@pytest.mark.parametrize(
    "choices, conditions, match",
    [
        ({"p": [1, 1, 2]}, [], r"parameter 'p' repeats choice\(s\) \['1'\]"),
        ({"p": ["a", "b", "a"]}, [], r"repeats choice\(s\) \['a'\]"),
        ({"p": [1, 2.5]}, [], r"parameter 'p' mixes choice types \['float', 'int'\]"),
        ({"p": [True, 1]}, [], r"mixes choice types \['bool', 'int'\]"),
        ({"p": [1, "1"]}, [], r"mixes choice types \['int', 'str'\]"),
        ({"p": []}, [], "parameter 'p' has no choices"),
        ({"p": 3}, [], "choices must be a list"),
        ({"p": "abc"}, [], "choices must be a list"),
        ({"p": [None]}, [], "bool, int, float or str"),
        ({"p": [1.0, float("nan")]}, [], "NaN choice"),
        ({"p": ["a,b"]}, [], "may not contain ','"),
        ({"p=q": [1]}, [], "parameter name 'p=q'"),
        ({"": [1]}, [], "parameter name ''"),
        ({}, [], "non-empty dict"),
        (
            {"a": [1, 2], "b": [1, 2]},
            [Condition("a", "b", (1,)), Condition("b", "a", (2,))],
            r"condition cycle (a -> b -> a|b -> a -> b)",
        ),
        ({"a": [1, 2]}, [Condition("a", "a", (1,))], "condition cycle a -> a"),
        ({"a": [1, 2]}, [Condition("a", "z", (1,))], "unknown parameter 'z'"),
        ({"a": [1, 2], "b": [3]}, [Condition("a", "b", (4,))], r"value\(s\) \[4\].*choices are \[3\]"),
        ({"a": [1, 2], "b": [0, 1]}, [Condition("a", "b", (True,))], r"value\(s\) \[True\]"),
        (
            {"a": [1, 2], "b": [3], "c": [4]},
            [Condition("a", "b", (3,)), Condition("a", "c", (4,))],
            "two conditions",
        ),
        ({"a": [1]}, ["a depends on nothing"], "Condition objects"),
    ],
)
def test_bad_spaces_are_one_line_errors(choices, conditions, match):
    with pytest.raises(ValueError, match=match) as info:
        SearchSpace(choices, conditions)
    one_line(info)


def test_three_way_cycle_is_named():
    with pytest.raises(ValueError, match="condition cycle") as info:
        SearchSpace(
            {"a": [1, 2], "b": [1, 2], "c": [1, 2], "free": [0]},
            [Condition("a", "b", (1,)), Condition("b", "c", (1,)), Condition("c", "a", (1,))],
        )
    assert {"a", "b", "c"} <= set(one_line(info).replace(":", " ").split())


def test_condition_values_must_be_a_list():
    with pytest.raises(ValueError, match="values must be a list"):
        Condition("k_1", "d", 2)
    assert Condition("k_1", "d", [2, 3]).values == (2, 3)
    assert Condition("ks_5", "d_1", (3, 4)).holds({"d_1": 4})
    assert not Condition("ks_5", "d_1", (3, 4)).holds({"d_1": 2})


def test_key_round_trip():
    space = mobilenetv3_space()
    arch = space.sample(1, rng=5)[0]
    assert space.from_key(space.key(arch)) == arch


@pytest.mark.parametrize(
    "key, match",
    [
        ("d=1,k_0=3", "k_1"),  # a parameter missing
        ("d=1,k_0=3,k_1=3,x=1", "not an arch key"),
        ("d=9,k_0=3,k_1=3", r"d=9, allowed choices are \[1, 2\]"),
        ("garbage", "not an arch key"),
    ],
)
def test_from_key_names_the_problem(toy, key, match):
    with pytest.raises(ValueError, match=match):
        toy.from_key(key)


def test_to_dict_round_trips_through_json(mixed):
    data = json.loads(json.dumps(mixed.to_dict()))
    again = SearchSpace.from_dict(data)
    assert again == mixed and hash(again) == hash(mixed)
    assert again.types == {"d": "int", "se": "bool", "k_1": "int", "scale": "float", "act": "str"}
    arch = mixed.sample(1, rng=4)[0]
    assert again.key(arch) == mixed.key(arch)


def test_equality_sees_order_and_types():
    assert SearchSpace({"p": [0, 1]}) != SearchSpace({"p": [False, True]})
    assert SearchSpace({"p": [1, 2]}) != SearchSpace({"p": [1.0, 2.0]})
    assert SearchSpace({"x": [1, 2], "y": [3]}) != SearchSpace({"y": [3], "x": [1, 2]})
    assert SearchSpace({"x": [1, 2], "y": [3]}) == SearchSpace({"x": (1, 2), "y": [3]})
    with_condition = SearchSpace({"d": [1, 2], "k": [3, 5]}, [Condition("k", "d", (2,))])
    assert with_condition != SearchSpace({"d": [1, 2], "k": [3, 5]})


def test_numpy_scalars_are_plain_choices():
    space = SearchSpace(
        {"k": np.array([3, 5]), "f": [np.float32(0.5), np.float64(1.5)], "a": np.array(["relu", "gelu"])}
    )
    assert space.choices == {"k": (3, 5), "f": (0.5, 1.5), "a": ("relu", "gelu")}
    assert space.types == {"k": "int", "f": "float", "a": "str"}
    assert space.key({"k": np.int64(5), "f": np.float64(0.5), "a": np.str_("gelu")}) == "k=5,f=0.5,a=gelu"
    arch = space.decode(np.array([1, 1, 0]))
    assert type(arch["k"]) is int and type(arch["f"]) is float and type(arch["a"]) is str
