"""Small real supernets for tests: a tiny untrained elastic MobileNetV3 on a small digits task, and a toy."""

import functools
import re
from pathlib import Path

import torch
from torch import nn

from nastools.metrics import Metric
from nastools.space import SearchSpace
from nastools.supernet import Supernet
from nastools.supernets.mobilenetv3 import ElasticMobileNetV3, MobileNetV3Config, MobileNetV3Supernet
from nastools.supernets.resnet import ResNetConfig
from nastools.tasks.digits import DigitsConfig, load_digits_task

TINY_CONFIG = MobileNetV3Config(
    in_channels=1,
    n_classes=10,
    resolutions=(16, 24),
    base_stage_widths=(8, 8, 16, 16, 24, 24, 32, 64, 96),
    stem_stride=1,
    stage_strides=(1, 2, 2, 2, 1, 1),
)
TINY_DATA = DigitsConfig(resolution=24, test_distortions=1, calibration_size=64)
TOY_INPUTS = 8
# Few training images (7 % of the digits: one step of 64 per epoch), so that training takes seconds.
TRAIN_DATA = DigitsConfig(resolution=16, test_fraction=0.93, test_distortions=1, calibration_size=32)


def tiny_supernet(seed: int = 0) -> MobileNetV3Supernet:
    torch.manual_seed(seed)
    net = ElasticMobileNetV3(TINY_CONFIG)
    return MobileNetV3Supernet(net, "tiny-mbv3", f"seed{seed}", task=load_digits_task(TINY_DATA))


class ToySupernet(Supernet):
    """The smallest :class:`Supernet`: a two-layer perceptron, implementing only the required methods.

    Everything else (MACs, parameters, extremes, metric lookup) comes from the ABC's defaults. Its
    task metric ``score`` is a formula of the arch, so tests know every value in advance.
    """

    supernet_id = "toy"
    checkpoint_hash = "toy-0"
    metadata: dict = {}
    metrics = (Metric("score", "max", "points", "width plus a bonus for gelu"),)
    parameter_descriptions = {"width": "hidden units", "act": "activation", "bias": "hidden bias"}
    choice_order = {"act": ("relu", "gelu")}  # GELU scores the bonus: the "larger" network

    def __init__(self, widths=(4, 8, 16)) -> None:
        self.space = SearchSpace({"width": list(widths), "act": ["relu", "gelu"], "bias": [True, False]})
        self.n_subnets = 0

    def subnet(self, arch):
        self.space.validate(arch)
        self.n_subnets += 1
        torch.manual_seed(arch["width"])
        act = nn.ReLU() if arch["act"] == "relu" else nn.GELU()
        hidden = nn.Linear(TOY_INPUTS, arch["width"], bias=arch["bias"])
        return nn.Sequential(hidden, act, nn.Linear(arch["width"], 2)).eval()

    def example_inputs(self, arch, batch_size):
        generator = torch.Generator().manual_seed(batch_size)
        return (torch.randn(batch_size, TOY_INPUTS, generator=generator),)

    def evaluate(self, arch, metric, subnet=None):
        self.metric(metric)
        self.space.validate(arch)
        return float(arch["width"]) + (0.5 if arch["act"] == "gelu" else 0.0)


def toy_supernet(widths=(4, 8, 16)) -> ToySupernet:
    """A factory for ``load_supernet("helpers:toy_supernet", widths=...)``."""
    return ToySupernet(widths)


def tiny_recipe(**training):
    """The embedded recipe's shape on the tiny network and a small task, trained briefly on one thread."""
    from nastools.supernets.mobilenetv3 import CHECKPOINT_KIND
    from nastools.training import Recipe, TrainingConfig

    settings = {"epochs": 3, "warmup_epochs": 1, "batch_size": 64, "threads": 1} | training
    return Recipe(
        name="tiny-mbv3",
        kind=CHECKPOINT_KIND,
        build=ElasticMobileNetV3,
        model_config=TINY_CONFIG,
        task=functools.partial(load_digits_task, TRAIN_DATA),
        training=TrainingConfig(**settings),
        phases=(("r", "ks"), ("d",), ("e",)),
    )


def toy_from_checkpoint(path, payload, supernet_id=None) -> ToySupernet:
    """The reader of checkpoints of kind ``"toy"`` (a header and ``"widths"``), for registry tests."""
    return ToySupernet(tuple(payload["widths"]))


def nbstripout_extra_keys() -> str:
    """The metadata keys ``make lab`` has nbstripout strip besides outputs (from the Makefile)."""
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    return re.search(r"^NBSTRIPOUT_EXTRA_KEYS := (.*)$", makefile, re.MULTILINE).group(1).strip()


# OFA's ResNet layout (stride-2 stem, max pool) at small widths; odd resolutions exercise ceil-mode pooling.
SMALL_RESNET_CONFIG = ResNetConfig(
    n_classes=10,
    resolutions=(33, 48),
    base_stem_width=16,
    base_stage_widths=(32, 48, 64, 96),
    dropout_rate=0.1,
)
# Tiny images: no stem stride, no max pool, one grey channel, shallower stages.
TINY_RESNET_CONFIG = ResNetConfig(
    in_channels=1,
    n_classes=7,
    resolutions=(16,),
    base_stem_width=16,
    base_stage_widths=(24, 32, 48, 64),
    base_depths=(1, 1, 2, 1),
    stem_stride=1,
    max_pool=False,
    depths=(0, 1),
    expand_ratios=(0.25, 0.5),
    width_mults=(0.5, 1.0),
)


@torch.no_grad()
def randomize(net: nn.Module) -> nn.Module:
    """Make every parameter and batch-norm statistic of ``net`` random, in place, so slicing errors show."""
    for name, tensor in net.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        if name.endswith("running_var"):
            tensor.uniform_(0.5, 2.0)
        elif name.endswith(("bn.weight", "bn.bn.weight")):
            tensor.uniform_(0.5, 1.5)
        else:
            tensor.normal_(0, 0.3 if tensor.dim() == 1 else 1.0 / tensor[0].numel() ** 0.5)
    return net
