"""Elastic convolutional layers: one weight of the largest shape, run on its leading channels.

OFA's dynamic layers, with OFA's attribute names (``conv.conv``, ``bn.bn``, ``linear.linear``) so that
OFA's checkpoints and the shipped ones load: the input channels follow the incoming tensor, the
output channels and the kernel size are set from the arch. :class:`DynamicConvLayer` and
:class:`DynamicLinearLayer` extract the static layers of :mod:`._static`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from nastools.supernets._elastic._extraction import copy_bn, copy_leading
from nastools.supernets._elastic._static import ConvLayer, LinearLayer, activation, same_padding

__all__ = [
    "DynamicBatchNorm2d",
    "DynamicConv2d",
    "DynamicConvLayer",
    "DynamicLinear",
    "DynamicLinearLayer",
    "DynamicSeparableConv2d",
    "dynamic_conv_bn",
]


class DynamicBatchNorm2d(nn.Module):
    """Batch norm over the leading channels of its input (attribute ``bn`` as in OFA).

    In training mode only the active channels' running statistics move.

    Example:
        >>> DynamicBatchNorm2d(16)(torch.ones(2, 4, 3, 3)).shape
        torch.Size([2, 4, 3, 3])
    """

    def __init__(self, max_channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(max_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn, channels = self.bn, x.size(1)
        if channels == bn.num_features:
            return bn(x)
        momentum = 0.0
        if bn.training and bn.track_running_stats:
            bn.num_batches_tracked += 1
            momentum = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
        return F.batch_norm(
            x,
            bn.running_mean[:channels],
            bn.running_var[:channels],
            bn.weight[:channels],
            bn.bias[:channels],
            bn.training or not bn.track_running_stats,
            momentum,
            bn.eps,
        )


class DynamicConv2d(nn.Module):
    """Convolution over the leading input and output channels ('same' padding, no bias; attribute ``conv``).

    Args:
        max_in: Largest input channel count.
        max_out: Largest output channel count.
        kernel_size: Odd kernel side.
        stride: Convolution stride.

    Example:
        >>> DynamicConv2d(8, 16)(torch.ones(1, 4, 5, 5), out_channels=6).shape
        torch.Size([1, 6, 5, 5])
    """

    def __init__(self, max_in: int, max_out: int, kernel_size: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(max_in, max_out, kernel_size, stride, bias=False)
        self.stride = stride
        self.padding = same_padding(kernel_size)

    def active_weight(self, out_channels: int, in_channels: int) -> torch.Tensor:
        """The leading ``(out_channels, in_channels)`` block of the weight."""
        return self.conv.weight[:out_channels, :in_channels]

    def forward(self, x: torch.Tensor, out_channels: int) -> torch.Tensor:
        weight = self.active_weight(out_channels, x.size(1)).contiguous()
        return F.conv2d(x, weight, None, self.stride, self.padding)


class DynamicSeparableConv2d(nn.Module):
    """Depthwise convolution with an elastic kernel size (OFA's kernel-transformation matrices).

    One weight of the largest kernel; a smaller kernel is the centre of the next larger one passed
    through a learned ``{large}to{small}_matrix`` (``7to5_matrix``, ``5to3_matrix``).

    Args:
        max_channels: Largest channel count.
        kernel_sizes: The kernel-size choices.
        stride: Convolution stride.

    Example:
        >>> conv = DynamicSeparableConv2d(8, (3, 5, 7), stride=1)
        >>> conv.active_filter(4, 5).shape, conv(torch.ones(1, 4, 6, 6), kernel_size=3).shape
        (torch.Size([4, 1, 5, 5]), torch.Size([1, 4, 6, 6]))
    """

    def __init__(self, max_channels: int, kernel_sizes: Sequence[int], stride: int) -> None:
        super().__init__()
        self.kernel_sizes = tuple(sorted(set(kernel_sizes)))
        self.max_kernel = self.kernel_sizes[-1]
        self.stride = stride
        self.conv = nn.Conv2d(
            max_channels, max_channels, self.max_kernel, stride, groups=max_channels, bias=False
        )
        for small, large in zip(self.kernel_sizes[:-1], self.kernel_sizes[1:]):
            self.register_parameter(f"{large}to{small}_matrix", nn.Parameter(torch.eye(small**2)))

    def active_filter(self, channels: int, kernel_size: int) -> torch.Tensor:
        """Depthwise weight of shape ``(channels, 1, k, k)`` for the active kernel size."""
        weight = self.conv.weight[:channels]
        for large, small in zip(self.kernel_sizes[::-1], self.kernel_sizes[-2::-1]):
            if large <= kernel_size:
                break
            start = (large - small) // 2
            crop = weight[:, :, start : start + small, start : start + small]
            matrix = getattr(self, f"{large}to{small}_matrix")
            weight = F.linear(crop.reshape(-1, small * small), matrix).view(channels, 1, small, small)
        return weight

    def forward(self, x: torch.Tensor, kernel_size: int) -> torch.Tensor:
        channels = x.size(1)
        return F.conv2d(
            x,
            self.active_filter(channels, kernel_size),
            None,
            self.stride,
            same_padding(kernel_size),
            1,
            channels,
        )


class DynamicLinear(nn.Module):
    """Linear layer over the leading input features, every output (attribute ``linear``).

    Example:
        >>> DynamicLinear(16, 10)(torch.ones(2, 12)).shape
        torch.Size([2, 10])
    """

    def __init__(self, max_in: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(max_in, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.linear.weight[:, : x.size(1)].contiguous(), self.linear.bias)


def dynamic_conv_bn(
    max_in: int, max_out: int, kernel_size: int = 1, stride: int = 1, act: str | None = None
) -> nn.Sequential:
    """The elastic :func:`~nastools.supernets._elastic._static.conv_bn`: ``conv``, ``bn``, optional ``act``.

    Call its entries one by one (``seq.conv(x, out_channels)`` takes the active width).
    """
    layers = OrderedDict(
        conv=DynamicConv2d(max_in, max_out, kernel_size, stride),
        bn=DynamicBatchNorm2d(max_out),
    )
    if act is not None:
        layers["act"] = activation(act)
    return nn.Sequential(layers)


class DynamicConvLayer(nn.Module):
    """OFA's ``DynamicConvLayer``: elastic-width convolution, batch norm and ReLU.

    Attributes:
        active_out_channels: Output channels that :meth:`forward` computes.

    Example:
        >>> layer = DynamicConvLayer(1, 16)
        >>> layer.active_out_channels = 8
        >>> layer.get_active_subnet(1, 8).conv.weight.shape
        torch.Size([8, 1, 3, 3])
    """

    def __init__(self, max_in: int, max_out: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = DynamicConv2d(max_in, max_out, kernel_size, stride)
        self.bn = DynamicBatchNorm2d(max_out)
        self.act = activation("relu")
        self.kernel_size = kernel_size
        self.stride = stride
        self.active_out_channels = max_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x, self.active_out_channels)))

    @torch.no_grad()
    def get_active_subnet(self, in_channels: int, out_channels: int) -> ConvLayer:
        """A static :class:`ConvLayer` holding copies of the leading weights."""
        layer = ConvLayer(in_channels, out_channels, self.kernel_size, self.stride)
        layer.to(self.conv.conv.weight.device, self.conv.conv.weight.dtype)
        copy_leading(layer.conv, self.conv.conv)
        copy_bn(layer.bn, self.bn.bn)
        return layer


class DynamicLinearLayer(nn.Module):
    """OFA's ``DynamicLinearLayer``: optional dropout, then a linear layer with elastic input width."""

    def __init__(self, max_in: int, out_features: int, dropout_rate: float = 0.0) -> None:
        super().__init__()
        self.dropout_rate = dropout_rate
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()
        self.linear = DynamicLinear(max_in, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(x))

    @torch.no_grad()
    def get_active_subnet(self, in_features: int) -> LinearLayer:
        """A static :class:`LinearLayer` on the first ``in_features`` inputs."""
        source = self.linear.linear
        layer = LinearLayer(in_features, source.out_features, self.dropout_rate)
        layer.to(source.weight.device, source.weight.dtype)
        copy_leading(layer.linear, source)
        return layer
