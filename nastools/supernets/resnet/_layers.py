"""Plain (static) ResNet layers, named as in OFA's ``ResNets`` so that state dicts line up.

These build the standalone sub-networks that :meth:`ElasticResNet.get_active_subnet` returns: an input
stem of 3x3 convolutions, a 3x3 max pool, bottleneck blocks and a linear classifier. A sub-network's
state-dict keys are OFA's (``input_stem.1.conv.conv.weight``, ``blocks.3.conv2.bn.running_var``,
``blocks.0.downsample.conv.weight``, ``classifier.linear.bias``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "BottleneckBlock",
    "ConvLayer",
    "LinearLayer",
    "ResNet",
    "ResidualBlock",
    "bottleneck_mid_channels",
    "make_divisible",
]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to a multiple of ``divisor`` without going down by more than 10% (OFA's rule).

    Example:
        >>> make_divisible(64 * 0.65), make_divisible(256 * 0.8), make_divisible(round(256 * 0.35))
        (40, 208, 88)
    """
    min_value = divisor if min_value is None else min_value
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


def bottleneck_mid_channels(out_channels: int, expand_ratio: float) -> int:
    """Inner width of a bottleneck block: OFA's ``make_divisible(round(out_channels * expand_ratio))``.

    Example:
        >>> bottleneck_mid_channels(256, 0.35), bottleneck_mid_channels(2048, 0.2)
        (88, 408)
    """
    return make_divisible(round(out_channels * expand_ratio))


class ConvLayer(nn.Module):
    """Convolution ('same' padding, no bias), batch norm, ReLU: attributes ``conv``, ``bn``, ``act``.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Odd kernel side; the padding is ``kernel_size // 2``.
        stride: Convolution stride.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class ResidualBlock(nn.Module):
    """``conv(x) + x`` with no activation after the sum (the stem's middle layer; attribute ``conv``)."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + x


def downsample_shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """OFA's ``avgpool_conv`` shortcut: ``AvgPool2d(stride, stride, ceil_mode=True)``, 1x1 conv, BN."""
    return nn.Sequential(
        OrderedDict(
            avg_pool=nn.AvgPool2d(stride, stride, padding=0, ceil_mode=True),
            conv=nn.Conv2d(in_channels, out_channels, 1, bias=False),
            bn=nn.BatchNorm2d(out_channels),
        )
    )


class BottleneckBlock(nn.Module):
    """ResNet bottleneck: 1x1 reduce, 3x3 (strided), 1x1 expand, plus a shortcut, then ReLU.

    The layers are ``conv1``, ``conv2``, ``conv3`` (each a ``conv``/``bn``[/``act``] sequence),
    ``downsample`` (identity or :func:`downsample_shortcut`) and ``final_act``, as in OFA's
    ``ResNetBottleneckBlock``.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        mid_channels: Channels of the two inner convolutions.
        stride: Stride of the 3x3 convolution (and of the shortcut's pooling).
        downsample: Whether the shortcut has a 1x1 convolution; by default (``None``) when
            ``stride != 1`` or the channel count changes, OFA's rule.
        kernel_size: Kernel side of the middle convolution.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        mid_channels: int,
        stride: int = 1,
        downsample: bool | None = None,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        if downsample is None:
            downsample = stride != 1 or in_channels != out_channels
        elif not downsample and (stride != 1 or in_channels != out_channels):
            raise ValueError(
                f"an identity shortcut needs stride 1 and equal widths, got stride {stride}, "
                f"{in_channels} -> {out_channels} channels"
            )
        self.conv1 = _conv_bn(in_channels, mid_channels, 1, 1, act=True)
        self.conv2 = _conv_bn(mid_channels, mid_channels, kernel_size, stride, act=True)
        self.conv3 = _conv_bn(mid_channels, out_channels, 1, 1, act=False)
        self.downsample = (
            downsample_shortcut(in_channels, out_channels, stride) if downsample else nn.Identity()
        )
        self.final_act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.downsample(x)
        return self.final_act(self.conv3(self.conv2(self.conv1(x))) + residual)


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int, act: bool) -> nn.Sequential:
    layers = OrderedDict(
        conv=nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
        bn=nn.BatchNorm2d(out_channels),
    )
    if act:
        layers["act"] = nn.ReLU(inplace=True)
    return nn.Sequential(layers)


class LinearLayer(nn.Module):
    """Optional dropout then linear (attributes ``dropout``, ``linear`` as in OFA)."""

    def __init__(self, in_features: int, out_features: int, dropout_rate: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(x))


class ResNet(nn.Module):
    """A standalone ResNet sub-network, laid out as OFA's static ``ResNets``.

    Input stem, 3x3 stride-2 max pool (``max_pooling``; identity when ``max_pool`` is off), blocks,
    global average pool, classifier.

    Args:
        input_stem: The stem layers in order (convolutions and an optional residual convolution).
        blocks: The bottleneck blocks in order.
        classifier: The linear head applied to the pooled features.
        max_pool: Whether to max-pool after the stem.
    """

    def __init__(
        self,
        input_stem: Sequence[nn.Module],
        blocks: Sequence[BottleneckBlock],
        classifier: LinearLayer,
        max_pool: bool = True,
    ) -> None:
        super().__init__()
        self.input_stem = nn.ModuleList(input_stem)
        self.max_pooling = nn.MaxPool2d(3, 2, 1) if max_pool else nn.Identity()
        self.blocks = nn.ModuleList(blocks)
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.input_stem:
            x = layer(x)
        x = self.max_pooling(x)
        for block in self.blocks:
            x = block(x)
        return self.classifier(x.mean((2, 3)))
