"""OFA's elastic ResNet50 (nastools.supernets.resnet): sub-networks, closed-form counts, OFA parity."""

import contextlib
import json
import sys
import types

import pytest
import torch
from helpers import SMALL_RESNET_CONFIG, TINY_RESNET_CONFIG, randomize

from nastools.supernet import count_macs, count_params
from nastools.supernets.resnet import (
    ElasticResNet,
    ResNetConfig,
    arch_from_ofa_config,
    arch_to_ofa_config,
    count_macs_params,
    resnet_shape,
)

# Small forward passes on shared cores: one thread is fastest and steadiest (conftest's fixture).
pytestmark = pytest.mark.usefixtures("one_thread")

FULL = ResNetConfig()
SMALL, TINY = SMALL_RESNET_CONFIG, TINY_RESNET_CONFIG
OFA_KWARGS = {
    "n_classes": 1000,
    "depth_list": [0, 1, 2],
    "expand_ratio_list": [0.2, 0.25, 0.35],
    "width_mult_list": [0.65, 0.8, 1.0],
}


def randomized(config, seed=0):
    """A supernet whose every parameter and BN statistic is random, so slicing errors show."""
    torch.manual_seed(seed)
    return randomize(ElasticResNet(config)).eval()


# Sub-networks equal the supernet, own their weights and are counted right in closed form, on these
# configs too: tests/test_conformance.py.


def test_subnet_holds_the_leading_slices():
    net = randomized(SMALL)
    arch = net.max_arch() | {"w_2": 0.65, "w_3": 0.8, "e_0": 0.2}
    subnet = net.get_active_subnet(arch)
    out = SMALL.stage_width(0, 0.65)
    mid = SMALL.mid_channels(out, 0.2)
    weight = net.blocks[0].conv1.conv.conv.weight
    assert torch.equal(subnet.blocks[0].conv1.conv.weight, weight[:mid, : SMALL.stem_width(1.0)])
    assert subnet.blocks[0].conv3.conv.weight.shape == (out, mid, 1, 1)
    assert subnet.blocks[4].downsample.conv.weight.shape[:2] == (SMALL.stage_width(1, 0.8), out)
    assert subnet.training == net.training


def test_elastic_depth_keeps_first_blocks_and_skips_stem_residual():
    net = randomized(FULL)
    arch = net.space.canonical(net.max_arch() | {"d_0": 0, "d_1": 0, "d_2": 1, "d_3": 2, "d_4": 0})
    subnet = net.get_active_subnet(arch)
    assert len(subnet.input_stem) == 2
    assert len(subnet.blocks) == 2 + 3 + 6 + 2
    # stage 2's blocks are supernet blocks 4, 5, 6 (its first three of four)
    assert torch.equal(subnet.blocks[2 + 2].conv2.conv.weight, net.blocks[6].conv2.conv.conv.weight)
    net.set_active(arch)
    assert net.input_stem_skipping and net.runtime_depth == [2, 3, 6, 2]
    assert len(net.get_active_subnet(net.max_arch()).input_stem) == 3


def test_space_follows_ofa():
    space = FULL.space()
    assert space.names[:5] == ("d_0", "d_1", "d_2", "d_3", "d_4")
    assert space.n_var == 5 + 18 + 6 and "r" not in space.choices
    assert space.choices["d_0"] == (0, 2) and space.choices["d_4"] == (0, 1, 2)
    assert space.choices["e_17"] == (0.2, 0.25, 0.35) and space.choices["w_5"] == (0.65, 0.8, 1.0)
    # stage blocks: 4, 4, 6, 4; a stage's last two slots depend on its depth
    conditional = {name: (c.controller, c.values) for name, c in space.conditions.items()}
    assert conditional == {
        "e_2": ("d_1", (1, 2)),
        "e_3": ("d_1", (2,)),
        "e_6": ("d_2", (1, 2)),
        "e_7": ("d_2", (2,)),
        "e_12": ("d_3", (1, 2)),
        "e_13": ("d_3", (2,)),
        "e_16": ("d_4", (1, 2)),
        "e_17": ("d_4", (2,)),
    }
    assert space.size == 2 * 3**6 * (3**2 + 3**3 + 3**4) ** 3 * (3**4 + 3**5 + 3**6)
    assert "r" in SMALL.space().choices and SMALL.space().choices["r"] == (33, 48)
    net = ElasticResNet(TINY)
    assert net.min_arch()["w_0"] == 0.5 and net.max_arch()["e_5"] == 0.5


def test_invalid_arch_is_rejected():
    net = ElasticResNet(TINY)
    with pytest.raises(ValueError, match="w_3"):
        net.set_active(net.max_arch() | {"w_3": 0.75})
    with pytest.raises(ValueError, match="missing"):
        net.get_active_subnet({"d_0": 1})
    with pytest.raises(ValueError, match="w_0"):
        net.macs_params({**net.max_arch(), "w_0": 0.75})


def test_config_json_round_trip():
    for config in (FULL, SMALL, TINY):
        assert ResNetConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="one entry per stage"):
        ResNetConfig(base_depths=(2, 2, 4))
    with pytest.raises(ValueError, match="ascending"):
        ResNetConfig(width_mults=(1.0, 0.65))


def test_closed_form_counts_full_config_at_224():
    net = ElasticResNet(FULL).eval()
    counts = {}
    for label, arch in (("min", net.min_arch()), ("max", net.max_arch())):
        subnet = net.get_active_subnet(arch)
        counts[label] = (count_macs(subnet, torch.zeros(1, 3, 224, 224)), count_params(subnet))
        assert count_macs_params(FULL, arch) == counts[label]
    assert counts == {"min": (962_192_128, 6_539_280), "max": (7_491_643_904, 48_105_992)}
    shape = resnet_shape(FULL, net.max_arch())
    assert shape.blocks[0].input_size == 56 and shape.final_size == 7 and shape.final_channels == 2048


def test_sort_channels_preserves_largest_network_and_orders_importance():
    net = randomized(SMALL)
    x = torch.randn(2, 3, 33, 33)
    net.set_active(net.max_arch())
    with torch.no_grad():
        before = net(x)
        net.sort_channels()
        after = net(x)
    assert torch.allclose(before, after, rtol=1e-4, atol=1e-5)
    for block in net.blocks:
        importance = block.conv3.conv.conv.weight.abs().sum(dim=(0, 2, 3))
        assert torch.all(importance[:-1] >= importance[1:])


def test_sort_channels_in_a_later_stage_keeps_nested_groups():
    net = randomized(SMALL)
    block = net.blocks[15]  # stage 4: 96 outputs, inner widths 24 (e=0.25) and 32 (e=0.35)
    small = block.mid_channels(block.max_out, 0.25)
    kept = set(block.conv1.conv.conv.weight[:small].flatten().tolist())
    block.sort_channels(expand_ratio_stage=1)
    assert set(block.conv1.conv.conv.weight[:small].flatten().tolist()) == kept
    importance = block.conv3.conv.conv.weight.abs().sum(dim=(0, 2, 3))
    assert torch.all(importance[: small - 1] >= importance[1:small])
    assert torch.all(importance[small:-1] >= importance[small + 1 :])


def test_train_mode_forward_updates_only_active_bn_statistics():
    net = randomized(TINY).train()
    arch = net.min_arch()
    net.set_active(arch)
    bn = net.blocks[0].conv1.bn.bn
    before = bn.running_mean.clone()
    net(torch.randn(4, 1, 16, 16)).sum().backward()
    active = TINY.mid_channels(TINY.stage_width(0, 0.5), 0.25)
    assert not torch.equal(bn.running_mean[:active], before[:active])
    assert torch.equal(bn.running_mean[active:], before[active:])


def test_load_ofa_state_dict_accepts_files_static_names_and_prefixes(tmp_path):
    source = randomized(TINY, seed=3)
    static = {}
    for key, value in source.state_dict().items():
        parts = key.split(".")
        if parts[-2] == parts[-3] and parts[-2] in ("conv", "bn", "linear"):
            del parts[-2]  # the static layers' names: a.bn.bn.weight -> a.bn.weight
        static["module." + ".".join(parts)] = value
    assert "module.blocks.0.conv1.bn.weight" in static and "module.classifier.linear.bias" in static
    assert "module.input_stem.1.conv.conv.weight" in static
    target = ElasticResNet(TINY)
    target.load_ofa_state_dict({"state_dict": static})
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    torch.save({"state_dict": static, "epoch": 3}, tmp_path / "checkpoint.pth.tar")
    from_file = ElasticResNet(TINY)
    from_file.load_ofa_state_dict(tmp_path / "checkpoint.pth.tar")
    assert torch.equal(from_file.blocks[3].conv2.conv.conv.weight, source.blocks[3].conv2.conv.conv.weight)
    with pytest.raises(KeyError, match="nothing"):
        target.load_ofa_state_dict({"blocks.0.conv9.weight": torch.zeros(1)})


def test_arch_ofa_config_round_trip():
    space = FULL.space()
    extremes = [space.canonical({n: pick(c) for n, c in space.choices.items()}) for pick in (min, max)]
    for arch in space.sample(20, rng=2) + extremes:
        ofa = arch_to_ofa_config(arch)
        assert set(ofa) == {"d", "e", "w", "r"} and len(ofa["e"]) == 18
        assert all(isinstance(i, int) for i in ofa["w"])
        assert arch_from_ofa_config(ofa) == arch
        assert arch_from_ofa_config(str(ofa)) == arch
        assert arch_to_ofa_config(arch_from_ofa_config(ofa)) == ofa
    # OFA skips the stem residual for any d[0] below the largest depth
    ofa = {"d": [1, 2, 2, 2, 2], "e": [0.35] * 18, "w": [2] * 6}
    assert arch_from_ofa_config(ofa)["d_0"] == 0
    tiny_ofa = arch_to_ofa_config(ElasticResNet(TINY).max_arch(), TINY)
    assert tiny_ofa["w"] == [1] * 6 and arch_from_ofa_config(tiny_ofa, TINY) == ElasticResNet(TINY).max_arch()
    with pytest.raises(ValueError, match="needs"):
        arch_from_ofa_config({"d": [2] * 5, "e": [0.35] * 17, "w": [2] * 6})
    with pytest.raises(ValueError, match="needs 'r'"):
        arch_from_ofa_config(
            arch_to_ofa_config(SMALL.space().sample(1, rng=0)[0], SMALL) | {"r": None}, SMALL
        )


def test_tabulated_counts_equal_the_layer_by_layer_shapes():
    # count_macs_params sums per-block constants tabulated once per config and resolution (how it is
    # fast); the shapes build every layer of the arch
    for arch in FULL.space().sample(200, rng=0):
        shape = resnet_shape(FULL, arch)
        assert count_macs_params(FULL, arch) == (shape.macs, shape.params)


# --- against OFA's own implementation -------------------------------------------------------------


@contextlib.contextmanager
def _torchvision_stub():
    """OFA's package imports torchvision's transforms for its data loaders; the networks do not need it."""
    try:
        import torchvision  # noqa: F401

        yield
        return
    except ImportError:
        pass
    transforms = types.ModuleType("torchvision.transforms")
    transforms.RandomResizedCrop = type("RandomResizedCrop", (), {})
    transforms.functional = types.ModuleType("torchvision.transforms.functional")
    torchvision = types.ModuleType("torchvision")
    torchvision.transforms = transforms
    stubs = {
        "torchvision": torchvision,
        "torchvision.transforms": transforms,
        "torchvision.transforms.functional": transforms.functional,
    }
    sys.modules.update(stubs)
    try:
        yield
    finally:
        for name in stubs:
            sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def ofa():
    """OFA's ``ofa_resnet50`` supernet (random init) and ours with its weights loaded."""
    pytest.importorskip("ofa")
    with _torchvision_stub():
        from ofa.imagenet_classification.elastic_nn.networks.ofa_resnets import OFAResNets
        from ofa.utils import count_net_flops
    torch.manual_seed(0)
    theirs = OFAResNets(**OFA_KWARGS)
    randomize(theirs)
    ours = ElasticResNet(FULL)
    ours.load_ofa_state_dict(theirs.state_dict())
    return types.SimpleNamespace(theirs=theirs.eval(), ours=ours.eval(), count_net_flops=count_net_flops)


def _ofa_subnet(ofa, arch):
    ofa.theirs.set_active_subnet(**arch_to_ofa_config(arch))
    return ofa.theirs.get_active_subnet(preserve_weight=True).eval()


def test_parameter_layout_equals_ofa(ofa):
    theirs = {k: v.shape for k, v in ofa.theirs.state_dict().items()}
    ours = {k: v.shape for k, v in ofa.ours.state_dict().items()}
    assert ours == theirs


def test_logits_counts_and_subnet_layout_equal_ofa(ofa):
    archs = FULL.space().sample(3, rng=7) + [ofa.ours.min_arch()]
    x = torch.randn(2, 3, 64, 64)
    for arch in archs:
        subnet = _ofa_subnet(ofa, arch)
        ours = ofa.ours.get_active_subnet(arch)
        assert {k: v.shape for k, v in ours.state_dict().items()} == {
            k: v.shape for k, v in subnet.state_dict().items()
        }
        ofa.ours.set_active(arch)
        with torch.no_grad():
            expected = ofa.theirs(x)
            assert torch.allclose(ofa.ours(x), expected, rtol=1e-4, atol=1e-4), arch
            assert torch.allclose(ours.eval()(x), expected, rtol=1e-4, atol=1e-4), arch
        assert count_params(subnet) == count_params(ours) == count_macs_params(FULL, arch)[1]
        assert count_macs(subnet, torch.zeros(1, 3, 224, 224)) == count_macs_params(FULL, arch)[0]


def test_smallest_and_largest_counts_equal_ofas(ofa):
    """962 M and 7,492 M MACs at 224 px; OFA's own counter rounds the largest in float32.

    ``ofa.utils.count_net_flops`` counts the same layers with the same formula, but keeps each
    layer's count in a float32 tensor and sums those, so near 7.5e9 (float32 step: 512) it comes
    out 1,536 low; summing the exact per-layer counts in float32 reproduces its number.
    """
    measured, theirs = {}, {}
    for label, arch in (("min", ofa.ours.min_arch()), ("max", ofa.ours.max_arch())):
        subnet = _ofa_subnet(ofa, arch)
        measured[label] = (count_macs(subnet, torch.zeros(1, 3, 224, 224)), count_params(subnet))
        theirs[label] = int(ofa.count_net_flops(subnet, (1, 3, 224, 224)))
        assert count_macs_params(FULL, arch) == measured[label]
        layers = _layer_macs(subnet)
        assert sum(layers) == measured[label][0]
        assert int(sum(torch.tensor(float(m)) for m in layers)) == theirs[label]
    assert measured == {"min": (962_192_128, 6_539_280), "max": (7_491_643_904, 48_105_992)}
    assert theirs == {"min": 962_192_128, "max": 7_491_642_368}


def _layer_macs(subnet):
    """Each convolution's and linear layer's MACs at 224 px, in forward order (exact integers)."""
    counts = []

    def hook(module, _, output):
        if isinstance(module, torch.nn.Conv2d):
            kernel = module.weight.shape[2] * module.weight.shape[3]
            counts.append(module.in_channels * output.nelement() * kernel // module.groups)
        else:
            counts.append(module.in_features * module.out_features)

    layers = [m for m in subnet.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    handles = [m.register_forward_hook(hook) for m in layers]
    with torch.no_grad():
        subnet(torch.zeros(1, 3, 224, 224))
    for handle in handles:
        handle.remove()
    return counts


@pytest.mark.slow
def test_many_archs_equal_ofa_at_224(ofa):
    x = torch.randn(1, 3, 224, 224)
    for arch in FULL.space().sample(6, rng=11) + [ofa.ours.max_arch()]:
        subnet = _ofa_subnet(ofa, arch)
        ofa.ours.set_active(arch)
        with torch.no_grad():
            assert torch.allclose(ofa.ours(x), ofa.theirs(x), rtol=1e-4, atol=1e-4)
        assert count_macs(subnet, torch.zeros(1, 3, 224, 224)) == count_macs_params(FULL, arch)[0]
        assert count_params(subnet) == count_macs_params(FULL, arch)[1]
        assert arch_from_ofa_config(arch_to_ofa_config(arch)) == arch
