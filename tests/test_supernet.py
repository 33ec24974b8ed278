import numpy as np
import pytest
import torch
from helpers import TINY_CONFIG

from nastools.supernets import (
    ElasticMobileNetV3,
    MobileNetV3Config,
    MobileNetV3Supernet,
    count_macs,
    count_params,
    load_supernet,
    read_dynast_measurements,
)

TINY = TINY_CONFIG


def randomized(config=TINY, seed=0):
    """A supernet whose every parameter and BN statistic is random, so slicing errors show."""
    torch.manual_seed(seed)
    net = ElasticMobileNetV3(config)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            elif name.endswith("_matrix"):
                tensor.add_(0.1 * torch.randn_like(tensor))
            else:
                tensor.normal_(0, 0.3)
    return net.eval()


@pytest.mark.parametrize("seed", range(4))
def test_subnet_outputs_equal_supernet_outputs(seed):
    net = randomized(seed=seed)
    arch = net.space.sample(1, rng=seed)[0]
    r = net.resolution(arch)
    x = torch.randn(3, 1, r, r)
    net.set_active(arch)
    with torch.no_grad():
        expected = net(x)
        actual = net.get_active_subnet(arch).eval()(x)
    assert (expected - actual).abs().max().item() < 1e-5


def test_subnet_is_standalone_copy():
    net = randomized()
    arch = net.min_arch()
    subnet = net.get_active_subnet(arch)
    shared = {p.data_ptr() for p in net.parameters()}
    assert not any(p.data_ptr() in shared for p in subnet.parameters())
    assert count_params(subnet) < count_params(net)


def test_elastic_kernel_uses_transformation_matrices():
    net = randomized()
    layer = net.blocks[1].conv.depth_conv.conv
    full = layer.conv.weight
    k5 = layer.active_filter(full.shape[0], 5)
    crop = full[:, :, 1:6, 1:6].reshape(full.shape[0], -1)
    expected = crop @ getattr(layer, "7to5_matrix").T
    assert torch.allclose(k5.reshape(full.shape[0], -1), expected)
    assert layer.active_filter(full.shape[0], 3).shape[-1] == 3


def test_elastic_depth_keeps_first_blocks():
    net = randomized()
    arch = net.max_arch() | {"d_0": 2}
    subnet = net.get_active_subnet(net.space.canonical(arch))
    assert len(subnet.blocks) == 1 + 2 + 4 * 4
    w_net = net.blocks[2].conv.point_linear.conv.conv.weight
    e = arch["e_1"]
    mid = net.blocks[2].conv.mid_channels(e)
    assert torch.equal(subnet.blocks[2].conv.point_linear.conv.weight, w_net[:, :mid])


def test_sort_channels_preserves_largest_network_and_orders_importance():
    net = randomized()
    x = torch.randn(2, 1, 24, 24)
    net.set_active(net.max_arch())
    with torch.no_grad():
        before = net(x)
        net.sort_channels()
        after = net(x)
    assert (before - after).abs().max().item() < 1e-4
    importance = net.blocks[3].conv.point_linear.conv.conv.weight.abs().sum(dim=(0, 2, 3))
    assert torch.all(importance[:-1] >= importance[1:])


def test_ofa_parameter_layout():
    net = ElasticMobileNetV3(MobileNetV3Config())
    keys = set(net.state_dict())
    for key in [
        "first_conv.conv.weight",
        "first_conv.bn.running_mean",
        "blocks.0.conv.depth_conv.conv.weight",
        "blocks.0.conv.point_linear.bn.weight",
        "blocks.1.conv.inverted_bottleneck.conv.conv.weight",
        "blocks.1.conv.inverted_bottleneck.bn.bn.weight",
        "blocks.1.conv.depth_conv.conv.conv.weight",
        "blocks.1.conv.depth_conv.conv.7to5_matrix",
        "blocks.1.conv.depth_conv.conv.5to3_matrix",
        "blocks.5.conv.depth_conv.se.fc.reduce.weight",
        "blocks.5.conv.depth_conv.se.fc.expand.bias",
        "blocks.20.conv.point_linear.conv.conv.weight",
        "final_expand_layer.conv.weight",
        "feature_mix_layer.conv.weight",
        "classifier.linear.weight",
    ]:
        assert key in keys, key
    assert net.blocks[1].conv.depth_conv.conv.conv.weight.shape == (96, 1, 7, 7)
    assert net.classifier.linear.weight.shape == (1000, 1280)


def test_load_ofa_state_dict_accepts_old_key_names():
    source = randomized()
    old = {
        k.replace(".conv.", ".mobile_inverted_conv.", 1)
        if k.startswith("blocks.") and ".conv.inverted_bottleneck" in k
        else k: v
        for k, v in source.state_dict().items()
    }
    assert any("mobile_inverted_conv" in k for k in old)
    target = ElasticMobileNetV3(TINY)
    target.load_ofa_state_dict({"state_dict": old})
    for k, v in source.state_dict().items():
        assert torch.equal(target.state_dict()[k], v)


def _dynast_rows(shared_data):
    return read_dynast_measurements(shared_data / "DyNAS-T")


def _check_dynast(shared_data, rows):
    supernet = MobileNetV3Supernet.ofa(1.0)
    space = supernet.space
    torch.set_num_threads(2)
    mismatches = []
    for row in rows.itertuples(index=False):
        arch = space.canonical(row.arch)
        subnet = supernet.subnet(arch)
        macs, params = supernet.macs(arch, subnet), supernet.params(arch, subnet)
        if (macs, params) != (row.macs, row.params) or (supernet.macs(arch), supernet.params(arch)) != (
            macs,
            params,
        ):
            mismatches.append((row.arch, macs, row.macs, params, row.params))
    assert not mismatches, mismatches[:3]


def test_macs_and_params_equal_dynast_table_sample(shared_data):
    rows = _dynast_rows(shared_data)
    assert len(rows) == 2223
    assert set(rows.columns) >= {"arch", "top1", "macs", "params", "file", "row"}
    assert {a["r"] for a in rows.arch} == {224}
    _check_dynast(shared_data, rows.sample(40, random_state=0))


def test_analytic_counts_equal_dynast_table_all_rows(shared_data):
    rows = _dynast_rows(shared_data)
    supernet = MobileNetV3Supernet.ofa(1.0)
    archs = [supernet.space.canonical(a) for a in rows.arch]
    assert [supernet.macs(a) for a in archs] == rows.macs.tolist()
    assert [supernet.params(a) for a in archs] == rows.params.tolist()


@pytest.mark.slow
def test_macs_and_params_equal_dynast_table_all_rows(shared_data):
    _check_dynast(shared_data, _dynast_rows(shared_data))


@pytest.mark.parametrize("name", ["digits-mbv3", "ofa-mbv3-w1.0", "ofa-mbv3-w1.2", "tiny"])
def test_analytic_counts_equal_flop_counter(name, one_thread):
    if name == "tiny":
        net = ElasticMobileNetV3(TINY).eval()
        supernet = MobileNetV3Supernet(net, "tiny-mbv3", "untrained")
    else:
        supernet = load_supernet(name)
    net = supernet.net
    archs = supernet.space.sample(18, rng=5) + [net.min_arch(), net.max_arch()]
    for arch in archs:
        subnet = supernet.subnet(arch)
        shape = net.shape(arch)
        expected = (count_macs(subnet, supernet.input_shape(arch)), count_params(subnet))
        assert (supernet.macs(arch), supernet.params(arch)) == expected, arch
        assert (shape.macs, shape.params) == expected
        assert len(shape.blocks) == len(subnet.blocks)


def test_shape_follows_the_network():
    supernet = load_supernet("ofa-mbv3-w1.2")
    arch = supernet.net.max_arch() | {"r": 160, "d_0": 2}
    shape = supernet.net.shape(supernet.space.canonical(arch))
    assert shape.resolution == 160 and shape.stem_output_size == 80 and shape.final_size == 5
    assert len(shape.blocks) == 1 + 2 + 4 * 4
    first = shape.blocks[1]
    assert (first.in_channels, first.out_channels, first.mid_channels, first.stride) == (24, 32, 144, 2)
    assert not first.shortcut and shape.blocks[2].shortcut
    with pytest.raises(ValueError, match="r"):
        supernet.net.shape(arch | {"r": 161})


def test_ofa_space_has_the_accuracy_predictors_resolutions():
    for name in ("ofa-mbv3-w1.0", "ofa-mbv3-w1.2"):
        space = load_supernet(name).space
        assert space.choices["r"] == (160, 176, 192, 208, 224)
        assert space.n_var == 46
    assert "r" not in MobileNetV3Supernet.ofa(1.0, resolutions=(224,)).space.choices


def test_ofa_w12_builds_with_wider_channels():
    net = load_supernet("ofa-mbv3-w1.2").net
    assert net.first_conv.conv.out_channels == 24
    assert net.feature_mix_layer.conv.out_channels == 1536


def test_count_macs_of_a_single_conv():
    conv = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(8 * 10 * 10, 5)
    )
    assert count_macs(conv, (3, 10, 10)) == 10 * 10 * 8 * 3 * 9 + 800 * 5


def test_unknown_supernet_name_lists_choices():
    with pytest.raises(ValueError, match="digits-mbv3"):
        load_supernet("resnet-9000")


def test_missing_checkpoint_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="make train"):
        MobileNetV3Supernet.from_checkpoint(tmp_path / "nope.pt")


def test_corrupt_checkpoint_is_rejected(tmp_path):
    path = tmp_path / "bad.pt"
    path.write_bytes(b"not a checkpoint" * 10)
    with pytest.raises(ValueError, match="not a readable nastools supernet checkpoint"):
        MobileNetV3Supernet.from_checkpoint(path)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match="not a readable"):
        MobileNetV3Supernet.from_checkpoint(other)


def test_architecture_only_ofa_supernet_says_where_the_predictor_comes_from(monkeypatch):
    monkeypatch.delenv("NASTOOLS_OFA_DATA", raising=False)
    supernet = load_supernet("ofa-mbv3-w1.0")
    assert supernet.checkpoint_hash == "untrained" and supernet.metadata["top1_kind"] is None
    with pytest.raises(FileNotFoundError, match=r"acc_predictor\.pth.*hanlab\.mit\.edu"):
        supernet.evaluate(supernet.net.min_arch())
    assert np.isfinite(supernet.macs(supernet.net.min_arch()))


def test_supernet_without_task_refuses_top1():
    supernet = MobileNetV3Supernet(ElasticMobileNetV3(TINY), "tiny", "untrained")
    with pytest.raises(ValueError, match="no task data"):
        supernet.evaluate(supernet.net.min_arch())
