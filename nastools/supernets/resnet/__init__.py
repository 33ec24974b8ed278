"""The ResNet family: OFA's elastic ResNet50 (``OFAResNets``), ``digits-resnet`` and ``ofa-resnet50``.

Elastic depth, expand ratio and width.

:class:`ElasticResNet` holds every sub-network's weights under OFA's parameter names; an arch is a
flat dict (``d_0``..``d_4``, ``e_0``..``e_17``, ``w_0``..``w_5``, optional ``r``) of
:func:`resnet_space`; :func:`count_macs_params` gives a sub-network's MACs and parameters from the
arch alone; :func:`arch_from_ofa_config` / :func:`arch_to_ofa_config` convert OFA's arch dicts.
:class:`ResNetSupernet` is the :class:`~nastools.supernet.Supernet` of the two supernets below:
``digits-resnet`` (trained here on distorted digits, ``data/digits-resnet.pt``) and ``ofa-resnet50``
(OFA's ImageNet architecture: MACs, parameters and latency, no top-1).
"""

from nastools.supernets.resnet._dynamic import (
    DynamicBatchNorm2d,
    DynamicBottleneckBlock,
    DynamicConv2d,
    DynamicConvLayer,
    DynamicLinear,
    DynamicLinearLayer,
)
from nastools.supernets.resnet._layers import (
    BottleneckBlock,
    ConvLayer,
    LinearLayer,
    ResidualBlock,
    ResNet,
    bottleneck_mid_channels,
    make_divisible,
)
from nastools.supernets.resnet._network import (
    ElasticResNet,
    ResNetConfig,
    arch_from_ofa_config,
    arch_to_ofa_config,
    resnet_space,
)
from nastools.supernets.resnet._shapes import (
    BottleneckShape,
    ConvShape,
    ResNetShape,
    count_macs_params,
    resnet_shape,
)
from nastools.supernets.resnet._supernet import CHECKPOINT_KIND, ResNetSupernet, embedded, ofa_resnet50

#: Supernets of this family by name: ``load_supernet(name)`` calls the factory.
SUPERNETS = {
    "digits-resnet": "nastools.supernets.resnet._supernet:embedded",
    "ofa-resnet50": "nastools.supernets.resnet._supernet:ofa_resnet50",
}
#: Checkpoint kinds this family reads: ``load_supernet(path)`` calls the reader.
CHECKPOINT_KINDS = {CHECKPOINT_KIND: "nastools.supernets.resnet._supernet:from_checkpoint"}
#: Training recipes of this family's embedded supernets (``python -m nastools.training --supernet``).
TRAINING = {"digits-resnet": "nastools.supernets.resnet._embedded:recipe"}

__all__ = [
    "CHECKPOINT_KIND",
    "BottleneckBlock",
    "BottleneckShape",
    "ConvLayer",
    "ConvShape",
    "DynamicBatchNorm2d",
    "DynamicBottleneckBlock",
    "DynamicConv2d",
    "DynamicConvLayer",
    "DynamicLinear",
    "DynamicLinearLayer",
    "ElasticResNet",
    "LinearLayer",
    "ResNet",
    "ResNetConfig",
    "ResNetShape",
    "ResNetSupernet",
    "ResidualBlock",
    "arch_from_ofa_config",
    "arch_to_ofa_config",
    "bottleneck_mid_channels",
    "count_macs_params",
    "embedded",
    "make_divisible",
    "ofa_resnet50",
    "resnet_shape",
    "resnet_space",
]
