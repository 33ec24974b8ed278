"""Elastic ResNet layers: prefixes of the largest weights, laid out as OFA's dynamic layers.

Every elastic layer keeps one weight of the largest shape and runs on its leading channels: the
input channels follow the incoming tensor, the output channels are set from the arch. Module names
follow OFA (``conv.conv``, ``bn.bn``, ``linear.linear``) so that OFA's ``OFAResNets`` state dict loads.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from nastools.supernets.resnet._layers import BottleneckBlock, ConvLayer, LinearLayer, bottleneck_mid_channels

__all__ = [
    "DynamicBatchNorm2d",
    "DynamicBottleneckBlock",
    "DynamicConv2d",
    "DynamicConvLayer",
    "DynamicLinear",
    "DynamicLinearLayer",
]


def _bn_forward(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """Batch norm on the first ``x.size(1)`` channels, updating the sliced running stats in place."""
    channels = x.size(1)
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


def _copy_bn(target: nn.BatchNorm2d, source: nn.BatchNorm2d) -> None:
    """Copy the first ``target.num_features`` channels of ``source`` (affine terms and statistics)."""
    n = target.num_features
    target.weight.copy_(source.weight[:n])
    target.bias.copy_(source.bias[:n])
    target.running_mean.copy_(source.running_mean[:n])
    target.running_var.copy_(source.running_var[:n])
    target.num_batches_tracked.copy_(source.num_batches_tracked)
    target.momentum, target.eps = source.momentum, source.eps


def _permute_bn(bn: nn.BatchNorm2d, order: torch.Tensor) -> None:
    for tensor in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
        tensor.copy_(tensor[order])


class DynamicBatchNorm2d(nn.Module):
    """Batch norm over a prefix of its channels (attribute ``bn`` as in OFA)."""

    def __init__(self, max_channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(max_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _bn_forward(self.bn, x)


class DynamicConv2d(nn.Module):
    """Convolution over prefixes of its input and output channels ('same' padding, no bias).

    Args:
        max_in: Largest input channel count.
        max_out: Largest output channel count.
        kernel_size: Odd kernel side.
        stride: Convolution stride.
    """

    def __init__(self, max_in: int, max_out: int, kernel_size: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(max_in, max_out, kernel_size, stride, bias=False)
        self.stride = stride
        self.padding = kernel_size // 2

    def active_weight(self, out_channels: int, in_channels: int) -> torch.Tensor:
        """The leading ``(out_channels, in_channels)`` block of the weight."""
        return self.conv.weight[:out_channels, :in_channels]

    def forward(self, x: torch.Tensor, out_channels: int) -> torch.Tensor:
        weight = self.active_weight(out_channels, x.size(1)).contiguous()
        return F.conv2d(x, weight, None, self.stride, self.padding)


class DynamicLinear(nn.Module):
    """Linear layer over a prefix of its input features (all outputs; attribute ``linear``)."""

    def __init__(self, max_in: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(max_in, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.linear.weight[:, : x.size(1)].contiguous(), self.linear.bias)


class DynamicConvLayer(nn.Module):
    """OFA's ``DynamicConvLayer``: elastic-width convolution, batch norm and ReLU.

    Attributes:
        active_out_channels: Output channels that :meth:`forward` computes.
    """

    def __init__(self, max_in: int, max_out: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = DynamicConv2d(max_in, max_out, kernel_size, stride)
        self.bn = DynamicBatchNorm2d(max_out)
        self.act = nn.ReLU(inplace=True)
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
        layer.conv.weight.copy_(self.conv.active_weight(out_channels, in_channels))
        _copy_bn(layer.bn, self.bn.bn)
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
        layer.linear.weight.copy_(source.weight[:, :in_features])
        layer.linear.bias.copy_(source.bias)
        return layer


def _conv_bn(max_in: int, max_out: int, kernel_size: int, stride: int, act: bool) -> nn.Sequential:
    layers = OrderedDict(
        conv=DynamicConv2d(max_in, max_out, kernel_size, stride),
        bn=DynamicBatchNorm2d(max_out),
    )
    if act:
        layers["act"] = nn.ReLU(inplace=True)
    return nn.Sequential(layers)


def _grouped_order(importance: torch.Tensor, edges: Sequence[int]) -> torch.Tensor:
    """Channel order: within each ``[edges[k], edges[k+1])`` group, by importance, largest first."""
    return torch.cat(
        [
            start + torch.argsort(importance[start:end], descending=True)
            for start, end in zip(edges, edges[1:])
        ]
    )


class DynamicBottleneckBlock(nn.Module):
    """OFA's ``DynamicResNetBottleneckBlock``: elastic expand ratio and output width.

    The inner width is ``make_divisible(round(active_out_channels * active_expand_ratio))``, taken
    from the leading channels of the largest inner weights (:meth:`sort_channels` puts the most
    important ones first). The input width follows the incoming tensor.

    Args:
        max_in: Largest input channel count.
        max_out: Largest output channel count.
        expand_ratios: The allowed expand ratios (inner width over output width).
        stride: Stride of the 3x3 convolution and of the shortcut's pooling.
        downsample: Whether the shortcut is OFA's ``avgpool_conv`` (else identity).
        kernel_size: Kernel side of the middle convolution.
    """

    def __init__(
        self,
        max_in: int,
        max_out: int,
        expand_ratios: Sequence[float],
        stride: int = 1,
        downsample: bool = True,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        if not downsample and (stride != 1 or max_in != max_out):
            raise ValueError("an identity shortcut needs stride 1 and equal widths")
        self.expand_ratios = tuple(sorted(expand_ratios))
        self.max_in = max_in
        self.max_out = max_out
        self.stride = stride
        self.kernel_size = kernel_size
        self.has_downsample = downsample
        max_mid = self.mid_channels(max_out, self.expand_ratios[-1])
        self.conv1 = _conv_bn(max_in, max_mid, 1, 1, act=True)
        self.conv2 = _conv_bn(max_mid, max_mid, kernel_size, stride, act=True)
        self.conv3 = _conv_bn(max_mid, max_out, 1, 1, act=False)
        if downsample:
            self.downsample = nn.Sequential(
                OrderedDict(
                    avg_pool=nn.AvgPool2d(stride, stride, padding=0, ceil_mode=True),
                    conv=DynamicConv2d(max_in, max_out),
                    bn=DynamicBatchNorm2d(max_out),
                )
            )
        else:
            self.downsample = nn.Identity()
        self.final_act = nn.ReLU(inplace=True)
        self.active_out_channels = max_out
        self.active_expand_ratio = self.expand_ratios[-1]

    @staticmethod
    def mid_channels(out_channels: int, expand_ratio: float) -> int:
        """Inner width for an output width and expand ratio (:func:`bottleneck_mid_channels`)."""
        return bottleneck_mid_channels(out_channels, expand_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.active_out_channels
        mid = self.mid_channels(out, self.active_expand_ratio)
        if self.has_downsample:
            ds = self.downsample
            residual = ds.bn(ds.conv(ds.avg_pool(x), out))
        else:
            residual = x
        x = self.conv1.act(self.conv1.bn(self.conv1.conv(x, mid)))
        x = self.conv2.act(self.conv2.bn(self.conv2.conv(x, mid)))
        x = self.conv3.bn(self.conv3.conv(x, out))
        return self.final_act(x + residual)

    @torch.no_grad()
    def get_active_subnet(self, in_channels: int, out_channels: int, expand_ratio: float) -> BottleneckBlock:
        """A static :class:`BottleneckBlock` for these widths, with the leading weights copied."""
        mid = self.mid_channels(out_channels, expand_ratio)
        block = BottleneckBlock(
            in_channels, out_channels, mid, self.stride, self.has_downsample, self.kernel_size
        )
        weight = self.conv1.conv.conv.weight
        block.to(weight.device, weight.dtype)
        for target, source, (n_out, n_in) in (
            (block.conv1, self.conv1, (mid, in_channels)),
            (block.conv2, self.conv2, (mid, mid)),
            (block.conv3, self.conv3, (out_channels, mid)),
        ):
            target.conv.weight.copy_(source.conv.active_weight(n_out, n_in))
            _copy_bn(target.bn, source.bn.bn)
        if self.has_downsample:
            block.downsample.conv.weight.copy_(self.downsample.conv.active_weight(out_channels, in_channels))
            _copy_bn(block.downsample.bn, self.downsample.bn.bn)
        return block

    @torch.no_grad()
    def sort_channels(self, expand_ratio_stage: int = 0) -> None:
        """Reorder the inner channels by importance, as OFA's ``re_organize_middle_weights``.

        conv2's outputs are ranked by the L1 norm of conv3's weights on them, then conv1's outputs by
        the L1 norm of (the reordered) conv2's weights. The largest network computes the same
        function afterwards; smaller expand ratios keep the most important channels.

        Args:
            expand_ratio_stage: Progressive-shrinking stage: with ``k > 0`` the channels are sorted
                only within the nested groups the ``k + 1`` largest expand ratios delimit (computed at
                the largest output width), so channels a smaller ratio already uses stay within it.
        """
        if not 0 <= expand_ratio_stage < len(self.expand_ratios):
            raise ValueError(
                f"expand_ratio_stage must be in 0..{len(self.expand_ratios) - 1}, got {expand_ratio_stage}"
            )
        largest_first = self.expand_ratios[::-1][: expand_ratio_stage + 1]
        widths = sorted({self.mid_channels(self.max_out, e) for e in largest_first})
        edges = [0, *widths]
        conv1, conv2, conv3 = self.conv1.conv.conv, self.conv2.conv.conv, self.conv3.conv.conv
        order = _grouped_order(conv3.weight.abs().sum(dim=(0, 2, 3)), edges)
        conv3.weight.copy_(conv3.weight[:, order])
        _permute_bn(self.conv2.bn.bn, order)
        conv2.weight.copy_(conv2.weight[order])
        order = _grouped_order(conv2.weight.abs().sum(dim=(0, 2, 3)), edges)
        conv2.weight.copy_(conv2.weight[:, order])
        _permute_bn(self.conv1.bn.bn, order)
        conv1.weight.copy_(conv1.weight[order])
