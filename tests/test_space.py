import math

import numpy as np
import pytest

from nastools.space import Condition, SearchSpace, mobilenetv3_space


@pytest.fixture
def toy():
    return SearchSpace({"d": [1, 2], "k_0": [3, 5], "k_1": [3, 5, 7]}, conditions=[Condition("k_1", "d", 2)])


def test_size_counts_distinct_networks(toy):
    assert toy.size == 2 + 2 * 3
    # brute force: distinct canonical archs over all encodings
    grid = np.array(np.meshgrid(*[range(n) for n in toy.n_choices])).reshape(toy.n_var, -1).T
    assert len({toy.key(a) for a in toy.decode(grid)}) == toy.size


def test_ofa_space_size_matches_closed_form():
    space = mobilenetv3_space()
    per_stage = sum(9**d for d in (2, 3, 4))
    assert space.size == per_stage**5
    assert mobilenetv3_space(resolutions=(160, 192, 224)).size == 3 * per_stage**5


def test_canonical_makes_same_networks_equal(toy):
    a = {"d": 1, "k_0": 5, "k_1": 7}
    b = {"d": 1, "k_0": 5, "k_1": 3}
    assert toy.canonical(a) == toy.canonical(b)
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


def test_sample_is_seeded_and_canonical():
    space = mobilenetv3_space()
    assert space.sample(5, rng=1) == space.sample(5, rng=1)
    assert space.sample(5, rng=1) != space.sample(5, rng=2)
    assert all(space.canonical(a) == a for a in space.sample(20, rng=np.random.default_rng(0)))


def test_features_one_hot_with_inactive_zero():
    space = mobilenetv3_space()
    arch = space.canonical(space.sample(1, rng=0)[0] | {"d_0": 2})
    f = space.features([arch])[0]
    names = space.feature_names()
    assert len(f) == len(names) == 5 * 3 + 20 * 3 * 2
    assert not any(f[names.index(f"ks_3={k}")] for k in (3, 5, 7))  # block 3 inactive at depth 2
    # every active parameter has exactly one hot slot
    active = [n for n in space.names if space.is_active(arch, n)]
    assert f.sum() == len(active)
    assert f[names.index(f"ks_0={arch['ks_0']}")] == 1


@pytest.mark.parametrize(
    "arch_update, match",
    [
        ({"ks_0": 4}, r"ks_0.*4.*\[3, 5, 7\]"),
        ({"d_2": 5}, r"d_2.*5.*\[2, 3, 4\]"),
        ({"bogus": 1}, r"unknown parameter.*bogus"),
        ({"ks_0": True}, r"ks_0"),
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


def test_restrict_keeps_only_allowed_values():
    space = mobilenetv3_space()
    small = space.restrict({"ks_0": [3, 5], "d_0": [4]})
    assert small.choices["ks_0"] == (3, 5) and small.choices["d_0"] == (4,)
    assert small.size == space.size // math.prod([7371]) * 6561 * 2 // 3
    with pytest.raises(ValueError, match="no choices"):
        space.restrict({"ks_0": [9]})


def test_key_round_trip():
    space = mobilenetv3_space()
    arch = space.sample(1, rng=5)[0]
    assert space.from_key(space.key(arch)) == arch
