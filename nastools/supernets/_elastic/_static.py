"""Plain layers of the standalone sub-networks, named as OFA's (``conv``, ``bn``, ``act``, ``linear``).

What the convolutional families' extracted sub-networks are built from, so that their state dicts
carry OFA's keys (``first_conv.conv.weight``, ``blocks.3.conv2.bn.running_var``,
``classifier.linear.bias``).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

__all__ = ["ConvLayer", "LinearLayer", "ResidualBlock", "activation", "conv_bn", "same_padding"]


def activation(name: str | None) -> nn.Module:
    """``relu``, ``h_swish`` (OFA's Hswish equals ``nn.Hardswish``) or identity.

    Example:
        >>> activation("h_swish"), activation(None)
        (Hardswish(), Identity())
    """
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "h_swish":
        return nn.Hardswish(inplace=True)
    if name is None:
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}; use 'relu', 'h_swish' or None")


def same_padding(kernel_size: int) -> int:
    """Padding that keeps the spatial size of an odd kernel at stride 1."""
    return kernel_size // 2


def conv_bn(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 1,
    stride: int = 1,
    act: str | None = None,
    groups: int = 1,
) -> nn.Sequential:
    """Convolution ('same' padding, no bias), batch norm and, unless ``act`` is None, an activation.

    The entries are ``conv``, ``bn`` and ``act`` (absent without one), as in OFA's blocks.

    Example:
        >>> list(conv_bn(8, 16, 3, act="relu").state_dict())[:2]
        ['conv.weight', 'bn.weight']
    """
    layers = OrderedDict(
        conv=nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            same_padding(kernel_size),
            groups=groups,
            bias=False,
        ),
        bn=nn.BatchNorm2d(out_channels),
    )
    if act is not None:
        layers["act"] = activation(act)
    return nn.Sequential(layers)


class ConvLayer(nn.Module):
    """Convolution ('same' padding), optional batch norm, activation: attributes ``conv``, ``bn``, ``act``.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Odd kernel side.
        stride: Convolution stride.
        bias: Whether the convolution has a bias.
        use_bn: Whether batch norm follows (``bn`` is None without).
        act: See :func:`activation`.

    Example:
        >>> ConvLayer(1, 8)(torch.zeros(2, 1, 6, 6)).shape
        torch.Size([2, 8, 6, 6])
    """

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


class ResidualBlock(nn.Module):
    """``conv(x) + x``, or ``conv(x)`` without ``shortcut`` (OFA's ``ResidualBlock``, attribute ``conv``)."""

    def __init__(self, conv: nn.Module, shortcut: bool = True) -> None:
        super().__init__()
        self.conv = conv
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + x if self.shortcut else self.conv(x)


class LinearLayer(nn.Module):
    """Optional dropout then linear (attributes ``dropout``, ``linear`` as in OFA)."""

    def __init__(self, in_features: int, out_features: int, dropout_rate: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(x))
