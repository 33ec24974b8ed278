"""The Supernet contract's defaults, and the elastic MobileNetV3: sub-networks, layout, closed-form counts."""

import numpy as np
import pytest
import torch
from helpers import TINY_CONFIG, TINY_DATA, ToySupernet, tiny_supernet

from nastools.metrics import GENERIC_METRICS
from nastools.supernet import Supernet, count_macs, count_params, load_supernet
from nastools.supernets._image import resize
from nastools.supernets.mobilenetv3 import (
    ElasticMobileNetV3,
    MobileNetV3Config,
    MobileNetV3Supernet,
    count_macs_params,
    network_shape,
    ofa,
    read_dynast_measurements,
)
from nastools.tasks.digits import load_digits_task

TINY = TINY_CONFIG
# Small forward passes on shared cores: one thread is fastest and steadiest (conftest's fixture).
pytestmark = pytest.mark.usefixtures("one_thread")


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


# --- the contract's defaults, on a supernet that implements only the three required methods ---------


def test_supernet_needs_its_three_methods():
    class Incomplete(Supernet):
        def subnet(self, arch):
            return torch.nn.Identity()

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()


def test_defaults_count_on_the_extracted_module():
    toy = ToySupernet()
    arch = {"width": 8, "act": "gelu", "bias": False}
    assert toy.macs(arch) == 8 * 8 + 8 * 2
    assert toy.params(arch) == 8 * 8 + 8 * 2 + 2
    assert toy.needs_subnet("macs") and toy.needs_subnet("params") and toy.needs_subnet("score")
    subnet = toy.subnet(arch)
    assert toy.macs(arch, subnet=subnet) == 80 and toy.params(arch, subnet=subnet) == 82
    assert toy.lookup_tables() == {} and toy.missing_table_message("lut-x") == ""
    assert repr(toy) == "ToySupernet('toy', SearchSpace(3 parameters, 12 networks))"


def test_default_extremes_order_numbers_and_booleans_and_keep_strings_in_order():
    toy = ToySupernet(widths=(16, 4, 8))
    low, high = toy.extremes()
    assert low == {"width": 4, "act": "relu", "bias": False}
    assert high == {"width": 16, "act": "gelu", "bias": True}
    small_low, small_high = toy.extremes(toy.space.restrict({"width": [8, 16]}))
    assert small_low["width"] == 8 and small_high["width"] == 16


def test_metric_lookup_names_what_the_supernet_has():
    toy = ToySupernet()
    assert toy.task_metric is toy.metrics[0] and toy.task_metric.name == "score"
    assert toy.metric("score").direction == "max"
    assert [toy.metric(m.name) for m in GENERIC_METRICS] == list(GENERIC_METRICS)
    assert toy.metric("latency_ms").per_hardware and toy.metric("macs").kind == "proxy"
    with pytest.raises(ValueError) as info:
        toy.metric("top1")
    message = str(info.value)
    assert message == (
        "supernet 'toy' has no metric 'top1': it declares ['score']; every supernet also has "
        "['macs', 'params', 'naswot', 'latency_ms', 'peak_memory_mb', 'energy_mj']"
    )


def test_count_macs_of_a_single_conv():
    conv = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(8 * 10 * 10, 5)
    )
    conv.train()
    assert count_macs(conv, torch.zeros(1, 3, 10, 10)) == 10 * 10 * 8 * 3 * 9 + 800 * 5
    assert count_macs(conv, (torch.zeros(1, 3, 10, 10),)) == 10 * 10 * 8 * 3 * 9 + 800 * 5
    assert conv.training  # counted in eval mode, flags restored
    assert count_params(conv) == 8 * 3 * 9 + 8 + 800 * 5 + 5


def test_count_macs_with_several_inputs():
    class Bilinear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(4, 6, bias=False), torch.nn.Linear(3, 6, bias=False)

        def forward(self, x, y):
            return self.a(x) + self.b(y)

    assert count_macs(Bilinear(), (torch.zeros(1, 4), torch.zeros(1, 3))) == 4 * 6 + 3 * 6


# --- the elastic MobileNetV3 ------------------------------------------------------------------------


# Sub-networks equal the supernet and own their weights: tests/test_conformance.py (every family).


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


def test_config_round_trips_through_its_dict():
    assert MobileNetV3Config.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ValueError, match="base_stage_widths needs 9 entries"):
        ElasticMobileNetV3(MobileNetV3Config(base_stage_widths=(8, 8, 16)))


def _dynast_rows(shared_data):
    return read_dynast_measurements(shared_data / "DyNAS-T")


def _check_dynast(rows):
    supernet = ofa(1.0)
    space = supernet.space
    mismatches = []
    for row in rows.itertuples(index=False):
        arch = space.canonical(row.arch)
        subnet = supernet.subnet(arch)
        macs, params = supernet.macs(arch, subnet), supernet.params(arch, subnet)
        if (macs, params) != (row.macs, row.params) or supernet.net.macs_params(arch) != (macs, params):
            mismatches.append((row.arch, macs, row.macs, params, row.params))
    assert not mismatches, mismatches[:3]


def test_macs_and_params_equal_dynast_table_sample(shared_data):
    rows = _dynast_rows(shared_data)
    assert len(rows) == 2223
    assert set(rows.columns) >= {"arch", "top1", "macs", "params", "file", "row"}
    assert {a["r"] for a in rows.arch} == {224}
    assert read_dynast_measurements(shared_data / "DyNAS-T", unique=False).shape[0] >= len(rows)
    _check_dynast(rows.sample(40, random_state=0))


def test_analytic_counts_equal_dynast_table_all_rows(shared_data):
    rows = _dynast_rows(shared_data)
    supernet = ofa(1.0)
    archs = [supernet.space.canonical(a) for a in rows.arch]
    assert [supernet.macs(a) for a in archs] == rows.macs.tolist()
    assert [supernet.params(a) for a in archs] == rows.params.tolist()


@pytest.mark.slow
def test_macs_and_params_equal_dynast_table_all_rows(shared_data):
    _check_dynast(_dynast_rows(shared_data))


def test_missing_dynast_files_say_where_they_come_from(tmp_path):
    with pytest.raises(FileNotFoundError, match="mbnv3w10_.*IntelLabs/DyNAS-T"):
        read_dynast_measurements(tmp_path)


@pytest.mark.parametrize("config", [TINY, MobileNetV3Config(), MobileNetV3Config(width_mult=1.2)])
def test_tabulated_counts_equal_the_layer_by_layer_shapes(config):
    # count_macs_params sums per-block constants tabulated per config and resolution (how it is fast);
    # that both equal the flop counter on the extracted sub-networks: tests/test_conformance.py
    space = config.space()
    extremes = [space.canonical({n: pick(c) for n, c in space.choices.items()}) for pick in (min, max)]
    archs = space.sample(18, rng=5) + extremes
    for arch in archs:
        shape = network_shape(config, arch)
        assert count_macs_params(config, arch) == (shape.macs, shape.params), arch
        assert len(shape.blocks) == 1 + sum(arch[f"d_{s}"] for s in range(config.n_stages))


def test_macs_params_validates_the_arch():
    net = ElasticMobileNetV3(TINY)
    with pytest.raises(ValueError, match=r"ks_0.*\[3, 5, 7\]"):
        net.macs_params(net.max_arch() | {"ks_0": 4})
    with pytest.raises(ValueError, match="missing"):
        net.macs_params({"d_0": 2})


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
    assert "r" not in ofa(1.0, resolutions=(224,)).space.choices


def test_ofa_w12_builds_with_wider_channels():
    net = load_supernet("ofa-mbv3-w1.2").net
    assert net.first_conv.conv.out_channels == 24
    assert net.feature_mix_layer.conv.out_channels == 1536


def test_ofa_extremes_are_the_smallest_and_largest_networks():
    supernet = ofa(1.2)
    low, high = supernet.extremes()
    assert low == supernet.net.min_arch() and high == supernet.net.max_arch()
    assert low["r"] == 160 and high["r"] == 224
    macs = [supernet.macs(a) for a in supernet.space.sample(50, rng=0)]
    assert supernet.macs(low) <= min(macs) and max(macs) <= supernet.macs(high)


def test_architecture_only_ofa_supernet_says_where_the_predictor_comes_from(monkeypatch):
    monkeypatch.delenv("NASTOOLS_OFA_DATA", raising=False)
    supernet = load_supernet("ofa-mbv3-w1.0")
    assert supernet.checkpoint_hash == "untrained" and supernet.task_metric.kind == "prediction"
    with pytest.raises(FileNotFoundError, match=r"acc_predictor\.pth.*hanlab\.mit\.edu"):
        supernet.evaluate(supernet.net.min_arch(), "top1")
    with pytest.raises(FileNotFoundError, match=r"acc_predictor\.pth"):
        supernet.check_metric("top1")
    assert np.isfinite(supernet.macs(supernet.net.min_arch()))


def test_supernet_without_task_refuses_top1():
    supernet = MobileNetV3Supernet(ElasticMobileNetV3(TINY), "tiny", "untrained")
    assert supernet.task_metric.kind == "validation"
    with pytest.raises(ValueError, match="no task data"):
        supernet.evaluate(supernet.net.min_arch(), "top1")
    with pytest.raises(ValueError, match="has no metric 'top5'"):
        supernet.evaluate(supernet.net.min_arch(), "top5")


def test_example_inputs_are_task_images_or_seeded_noise():
    with_task = tiny_supernet()
    arch = with_task.net.min_arch() | {"r": 16}
    (images,) = with_task.example_inputs(arch, 3)
    task = load_digits_task(TINY_DATA)
    assert images.shape == (3, 1, 16, 16)
    assert torch.equal(images, resize(task.test_x[:3], 16))
    (wrapped,) = with_task.example_inputs(arch, len(task.test_x) + 2)  # more than the held-out split
    assert torch.equal(wrapped[-2:], wrapped[:2])
    without = MobileNetV3Supernet(ElasticMobileNetV3(TINY), "tiny", "untrained")
    (noise,) = without.example_inputs(arch | {"r": 24}, 2)
    assert noise.shape == (2, 1, 24, 24) and torch.equal(
        noise, without.example_inputs(arch | {"r": 24}, 2)[0]
    )


def test_image_supernet_needs_the_subnet_only_for_measured_metrics(monkeypatch):
    monkeypatch.delenv("NASTOOLS_OFA_DATA", raising=False)
    tiny = tiny_supernet()
    assert tiny.needs_subnet("top1") and tiny.needs_subnet("naswot")
    assert not tiny.needs_subnet("macs") and not tiny.needs_subnet("params")
    assert tiny.parameter_descriptions["ks"] == "kernel size of a block"
    assert {n.split("_")[0] for n in tiny.space.names} <= set(tiny.parameter_descriptions)
