"""The ResNet family: OFA's elastic ResNet50 (``OFAResNets``), ``digits-resnet`` and ``ofa-resnet50``.

Elastic depth, expand ratio and width, laid out as every family: ``_config`` (:class:`ResNetConfig`,
:func:`resnet_space` and OFA's arch dicts, :func:`arch_from_ofa_config` / :func:`arch_to_ofa_config`;
torch-free), ``_shapes`` (:func:`count_macs_params`: a sub-network's MACs and parameters from the arch
alone), ``_network`` (:class:`ElasticResNet`, holding every sub-network's weights under OFA's parameter
names, and the static :class:`ResNet` it extracts), ``_supernet`` (:class:`ResNetSupernet` and the
factories of ``digits-resnet``, trained here on distorted digits, ``data/digits-resnet.pt``, and
``ofa-resnet50``, OFA's ImageNet architecture: MACs, parameters and latency, no top-1), ``_embedded``
(the training recipe of ``digits-resnet``). The shared dynamic and static layers come from
:mod:`nastools.supernets._elastic`. Names are imported on first use, so that the config and the space
import without torch.
"""

from nastools.supernets._lazy import lazy_exports
from nastools.supernets.resnet._config import CHECKPOINT_KIND

#: Supernets of this family by name: ``load_supernet(name)`` calls the factory.
SUPERNETS = {
    "digits-resnet": "nastools.supernets.resnet._supernet:embedded",
    "ofa-resnet50": "nastools.supernets.resnet._supernet:ofa_resnet50",
}
#: Checkpoint kinds this family reads: ``load_supernet(path)`` calls the reader.
CHECKPOINT_KINDS = {CHECKPOINT_KIND: "nastools.supernets.resnet._supernet:from_checkpoint"}
#: Training recipes of this family's embedded supernets (``python -m nastools.training --supernet``).
TRAINING = {"digits-resnet": "nastools.supernets.resnet._embedded:recipe"}

_EXPORTS = {
    "._config": [
        "ResNetConfig",
        "arch_from_ofa_config",
        "arch_to_ofa_config",
        "bottleneck_mid_channels",
        "resnet_space",
    ],
    "._network": ["BottleneckBlock", "DynamicBottleneckBlock", "ElasticResNet", "ResNet"],
    "._shapes": ["BottleneckShape", "ConvShape", "ResNetShape", "count_macs_params", "resnet_shape"],
    "._supernet": ["ResNetSupernet", "embedded", "ofa_resnet50"],
    # the shared layers this family is built of (exported here before they were shared)
    "nastools.supernets._elastic": [
        "ConvLayer",
        "DynamicBatchNorm2d",
        "DynamicConv2d",
        "DynamicConvLayer",
        "DynamicLinear",
        "DynamicLinearLayer",
        "LinearLayer",
        "ResidualBlock",
        "make_divisible",
    ],
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(["CHECKPOINT_KIND", *(name for names in _EXPORTS.values() for name in names)])
