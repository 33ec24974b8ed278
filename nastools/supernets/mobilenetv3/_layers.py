"""Plain (static) MobileNetV3 layers, named as in OFA so that state dicts line up.

These build the standalone sub-networks that :meth:`ElasticMobileNetV3.get_active_subnet` returns.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

__all__ = [
    "ConvLayer",
    "LinearLayer",
    "MBConvLayer",
    "MobileNetV3",
    "ResidualBlock",
    "SEModule",
    "activation",
    "make_divisible",
]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to a multiple of ``divisor`` without going down by more than 10% (OFA's rule)."""
    min_value = divisor if min_value is None else min_value
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


def activation(name: str | None) -> nn.Module:
    """``relu``, ``h_swish`` (OFA's Hswish equals ``nn.Hardswish``) or identity."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "h_swish":
        return nn.Hardswish(inplace=True)
    if name is None:
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}; use 'relu', 'h_swish' or None")


def same_padding(kernel_size: int) -> int:
    return kernel_size // 2


class ConvLayer(nn.Module):
    """Conv, optional batch norm, activation (attributes ``conv``, ``bn``, ``act`` as in OFA)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        bias: bool = False,
        use_bn: bool = True,
        act: str | None = "relu",
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, same_padding(kernel_size), bias=bias
        )
        self.bn = nn.BatchNorm2d(out_channels) if use_bn else None
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)


class SEModule(nn.Module):
    """Squeeze-and-excitation with OFA's reduction 4 and hard sigmoid."""

    def __init__(self, channels: int, mid_channels: int | None = None) -> None:
        super().__init__()
        mid_channels = make_divisible(channels // 4) if mid_channels is None else mid_channels
        self.fc = nn.Sequential(
            OrderedDict(
                reduce=nn.Conv2d(channels, mid_channels, 1, bias=True),
                relu=nn.ReLU(inplace=True),
                expand=nn.Conv2d(mid_channels, channels, 1, bias=True),
                h_sigmoid=nn.Hardsigmoid(inplace=True),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean((2, 3), keepdim=True))


class MBConvLayer(nn.Module):
    """Inverted residual: 1x1 expand (skipped when mid == in), depthwise kxk (+SE), 1x1 project."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        mid_channels: int,
        act: str,
        use_se: bool,
    ) -> None:
        super().__init__()
        self.inverted_bottleneck = (
            None
            if mid_channels == in_channels
            else nn.Sequential(
                OrderedDict(
                    conv=nn.Conv2d(in_channels, mid_channels, 1, bias=False),
                    bn=nn.BatchNorm2d(mid_channels),
                    act=activation(act),
                )
            )
        )
        depth_conv = OrderedDict(
            conv=nn.Conv2d(
                mid_channels,
                mid_channels,
                kernel_size,
                stride,
                same_padding(kernel_size),
                groups=mid_channels,
                bias=False,
            ),
            bn=nn.BatchNorm2d(mid_channels),
            act=activation(act),
        )
        if use_se:
            depth_conv["se"] = SEModule(mid_channels)
        self.depth_conv = nn.Sequential(depth_conv)
        self.point_linear = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(mid_channels, out_channels, 1, bias=False),
                bn=nn.BatchNorm2d(out_channels),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inverted_bottleneck is not None:
            x = self.inverted_bottleneck(x)
        return self.point_linear(self.depth_conv(x))


class ResidualBlock(nn.Module):
    """A block with an optional identity shortcut (OFA's ``ResidualBlock``, attribute ``conv``)."""

    def __init__(self, conv: nn.Module, shortcut: bool) -> None:
        super().__init__()
        self.conv = conv
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + x if self.shortcut else self.conv(x)


class LinearLayer(nn.Module):
    """Dropout then linear (attribute ``linear`` as in OFA)."""

    def __init__(self, in_features: int, out_features: int, dropout_rate: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(x))


class MobileNetV3(nn.Module):
    """A standalone MobileNetV3 sub-network, laid out as OFA's static ``MobileNetV3``."""

    def __init__(
        self,
        first_conv: ConvLayer,
        blocks: list[ResidualBlock],
        final_expand_layer: ConvLayer,
        feature_mix_layer: ConvLayer,
        classifier: LinearLayer,
    ) -> None:
        super().__init__()
        self.first_conv = first_conv
        self.blocks = nn.ModuleList(blocks)
        self.final_expand_layer = final_expand_layer
        self.feature_mix_layer = feature_mix_layer
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_conv(x)
        for block in self.blocks:
            x = block(x)
        x = self.final_expand_layer(x)
        x = x.mean((2, 3), keepdim=True)
        x = self.feature_mix_layer(x)
        return self.classifier(torch.flatten(x, 1))
