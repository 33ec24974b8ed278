"""Elastic MobileNetV3 following OFA's design and parameter layout, and its static sub-networks.

Elastic kernel: one depthwise weight of the largest kernel per block; smaller kernels are the centre
crop passed through OFA's kernel-transformation matrices (``7to5_matrix``, ``5to3_matrix``).
Elastic depth: stage ``s`` runs its first ``d_s`` blocks. Elastic expand: the first
``make_divisible(in * e)`` hidden channels, kept sorted by importance (:meth:`sort_channels`).
:meth:`ElasticMobileNetV3.get_active_subnet` returns a plain :class:`MobileNetV3`, laid out as OFA's
static one so that state dicts line up.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from nastools.supernets._elastic import (
    ConvLayer,
    DynamicBatchNorm2d,
    DynamicSeparableConv2d,
    ElasticImageNetwork,
    LinearLayer,
    ResidualBlock,
    activation,
    channel_importance,
    conv_bn,
    copy_bn,
    copy_leading,
    dynamic_conv_bn,
    importance_order,
    make_divisible,
    permute_bn,
    permute_channels,
)
from nastools.supernets.mobilenetv3._config import MobileNetV3Config
from nastools.supernets.mobilenetv3._shapes import NetworkShape, count_macs_params, network_shape

__all__ = ["DynamicMBConvLayer", "ElasticMobileNetV3", "MBConvLayer", "MobileNetV3", "SEModule"]


# --- the static sub-network ------------------------------------------------------------------------


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
            None if mid_channels == in_channels else conv_bn(in_channels, mid_channels, act=act)
        )
        self.depth_conv = conv_bn(mid_channels, mid_channels, kernel_size, stride, act, groups=mid_channels)
        if use_se:
            self.depth_conv.add_module("se", SEModule(mid_channels))
        self.point_linear = conv_bn(mid_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inverted_bottleneck is not None:
            x = self.inverted_bottleneck(x)
        return self.point_linear(self.depth_conv(x))


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


# --- the elastic network ---------------------------------------------------------------------------


class DynamicSE(SEModule):
    """Squeeze-and-excitation whose hidden width follows the active channel count."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.size(1)
        mid = make_divisible(channels // 4)
        reduce, expand = self.fc.reduce, self.fc.expand
        y = x.mean((2, 3), keepdim=True)
        y = F.relu(F.conv2d(y, reduce.weight[:mid, :channels], reduce.bias[:mid]))
        y = F.hardsigmoid(F.conv2d(y, expand.weight[:channels, :mid], expand.bias[:channels]))
        return x * y


class DynamicMBConvLayer(nn.Module):
    """OFA's ``DynamicMBConvLayer``: elastic kernel and expand ratio, fixed in/out widths."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_sizes: Sequence[int],
        expand_ratios: Sequence[int],
        stride: int,
        act: str,
        use_se: bool,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        max_mid = make_divisible(round(in_channels * max(expand_ratios)))
        self.inverted_bottleneck = dynamic_conv_bn(in_channels, max_mid, act=act)
        self.depth_conv = nn.Sequential(
            OrderedDict(
                conv=DynamicSeparableConv2d(max_mid, kernel_sizes, stride),
                bn=DynamicBatchNorm2d(max_mid),
                act=activation(act),
            )
        )
        if use_se:
            self.depth_conv.add_module("se", DynamicSE(max_mid))
        self.point_linear = dynamic_conv_bn(max_mid, out_channels)
        self.stride = stride
        self.act = act
        self.use_se = use_se
        self.active_kernel_size = max(kernel_sizes)
        self.active_expand_ratio = max(expand_ratios)

    def mid_channels(self, expand_ratio: int | None = None) -> int:
        ratio = self.active_expand_ratio if expand_ratio is None else expand_ratio
        return make_divisible(round(self.in_channels * ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ib, dc, pl = self.inverted_bottleneck, self.depth_conv, self.point_linear
        x = ib.act(ib.bn(ib.conv(x, self.mid_channels())))
        x = dc.act(dc.bn(dc.conv(x, self.active_kernel_size)))
        if self.use_se:
            x = dc.se(x)
        return pl.bn(pl.conv(x, self.out_channels))

    @torch.no_grad()
    def get_active_subnet(self, kernel_size: int, expand_ratio: int) -> MBConvLayer:
        """A static ``MBConvLayer`` for the given choices, with weights copied."""
        mid = self.mid_channels(expand_ratio)
        layer = MBConvLayer(
            self.in_channels,
            self.out_channels,
            kernel_size,
            self.stride,
            mid,
            self.act,
            self.use_se,
        )
        ib, dc, pl = self.inverted_bottleneck, self.depth_conv, self.point_linear
        copy_leading(layer.inverted_bottleneck.conv, ib.conv.conv)
        copy_bn(layer.inverted_bottleneck.bn, ib.bn.bn)
        layer.depth_conv.conv.weight.copy_(dc.conv.active_filter(mid, kernel_size))
        copy_bn(layer.depth_conv.bn, dc.bn.bn)
        if self.use_se:
            copy_leading(layer.depth_conv.se, dc.se)
        copy_leading(layer.point_linear.conv, pl.conv.conv)
        copy_bn(layer.point_linear.bn, pl.bn.bn)
        return layer

    @torch.no_grad()
    def sort_channels(self) -> None:
        """Reorder hidden channels by importance (L1 norm of the projection weights), as OFA does."""
        order = importance_order(channel_importance(self.point_linear.conv.conv.weight))
        permute_channels(self.point_linear.conv.conv.weight, order, dim=1)
        permute_channels(self.depth_conv.conv.conv.weight, order)
        for bn in (self.depth_conv.bn.bn, self.inverted_bottleneck.bn.bn):
            permute_bn(bn, order)
        permute_channels(self.inverted_bottleneck.conv.conv.weight, order)
        if self.use_se:
            reduce, expand = self.depth_conv.se.fc.reduce, self.depth_conv.se.fc.expand
            permute_channels(reduce.weight, order, dim=1)
            permute_channels(expand.weight, order)
            permute_channels(expand.bias, order)
            se_order = importance_order(channel_importance(expand.weight))
            permute_channels(expand.weight, se_order, dim=1)
            permute_channels(reduce.weight, se_order)
            permute_channels(reduce.bias, se_order)


class ElasticMobileNetV3(ElasticImageNetwork):
    """OFA's ``OFAMobileNetV3``: one module holding every sub-network's weights.

    Set an arch with :meth:`set_active`, then call the module; or extract a standalone copy with
    :meth:`get_active_subnet`. Parameter names follow OFA (``blocks.5.conv.depth_conv.conv.7to5_matrix``
    and so on), so an OFA checkpoint's state dict loads with :meth:`load_ofa_state_dict`.

    Example:
        >>> config = MobileNetV3Config(width_mult=0.5, in_channels=1, n_classes=10, resolutions=(32,))
        >>> net, x = ElasticMobileNetV3(config).eval(), torch.rand(2, 1, 32, 32)
        >>> net.set_active(net.min_arch())
        >>> net(x).shape, torch.allclose(net(x), net.get_active_subnet(net.min_arch())(x), atol=1e-6)
        (torch.Size([2, 10]), True)
    """

    #: What the parameter-name prefixes of the space mean.
    PARAMETER_DESCRIPTIONS = {
        "d": "depth: blocks kept in a stage",
        "ks": "kernel size of a block",
        "e": "expand ratio of a block",
        "r": "input resolution",
    }

    def __init__(self, config: MobileNetV3Config) -> None:
        super().__init__()
        if len(config.base_stage_widths) != config.n_stages + 4:
            raise ValueError(
                f"base_stage_widths needs {config.n_stages + 4} entries (stem, first block, "
                f"{config.n_stages} stages, final expand, feature mix), got {len(config.base_stage_widths)}"
            )
        self.config = config
        self.space = config.space()
        widths = [make_divisible(w * config.width_mult) for w in config.base_stage_widths]
        stem_width, first_block_width, *stage_widths = widths[: config.n_stages + 2]
        final_expand_width, last_width = widths[-2:]
        max_depth = max(config.depths)
        self.first_conv = ConvLayer(config.in_channels, stem_width, 3, config.stem_stride, act="h_swish")
        first_block = ResidualBlock(
            MBConvLayer(
                stem_width,
                first_block_width,
                3,
                config.stage_strides[0],
                stem_width,
                config.stage_acts[0],
                config.stage_se[0],
            ),
            shortcut=config.stage_strides[0] == 1 and stem_width == first_block_width,
        )
        blocks = [first_block]
        self.block_group_info: list[list[int]] = []
        channels = first_block_width
        for stage, width in enumerate(stage_widths):
            self.block_group_info.append(list(range(len(blocks), len(blocks) + max_depth)))
            for position in range(max_depth):
                stride = config.stage_strides[stage + 1] if position == 0 else 1
                layer = DynamicMBConvLayer(
                    channels,
                    width,
                    config.kernel_sizes,
                    config.expand_ratios,
                    stride,
                    config.stage_acts[stage + 1],
                    config.stage_se[stage + 1],
                )
                blocks.append(ResidualBlock(layer, shortcut=stride == 1 and channels == width))
                channels = width
        self.blocks = nn.ModuleList(blocks)
        self.final_expand_layer = ConvLayer(channels, final_expand_width, 1, act="h_swish")
        self.feature_mix_layer = ConvLayer(
            final_expand_width, last_width, 1, bias=False, use_bn=False, act="h_swish"
        )
        self.classifier = LinearLayer(last_width, config.n_classes, config.dropout_rate)
        self.runtime_depth = [max_depth] * config.n_stages
        self.active_resolution = max(config.resolutions)

    def macs_params(self, arch: Mapping[str, int]) -> tuple[int, int]:
        """Closed-form ``(macs, params)`` of ``arch``'s sub-network (validates ``arch``; ~10 µs)."""
        self.space.validate(arch)
        return count_macs_params(self.config, arch)

    def shape(self, arch: Mapping[str, int]) -> NetworkShape:
        """Every layer's shape of ``arch``'s sub-network, without building it (validates ``arch``).

        Example:
            >>> net = ElasticMobileNetV3(MobileNetV3Config())
            >>> net.shape(net.min_arch()).macs
            121278672
        """
        self.space.validate(arch)
        return network_shape(self.config, arch)

    def set_active(self, arch: Mapping[str, int]) -> None:
        """Make ``arch`` the sub-network that :meth:`forward` runs."""
        self.space.validate(arch)
        for stage, block_ids in enumerate(self.block_group_info):
            self.runtime_depth[stage] = arch[f"d_{stage}"]
            for position, block_id in enumerate(block_ids):
                index = stage * len(block_ids) + position
                layer = self.blocks[block_id].conv
                layer.active_kernel_size = arch[f"ks_{index}"]
                layer.active_expand_ratio = arch[f"e_{index}"]
        self.active_resolution = self.resolution(arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_conv(x)
        x = self.blocks[0](x)
        for stage, block_ids in enumerate(self.block_group_info):
            for block_id in block_ids[: self.runtime_depth[stage]]:
                x = self.blocks[block_id](x)
        x = self.final_expand_layer(x)
        x = x.mean((2, 3), keepdim=True)
        x = self.feature_mix_layer(x)
        return self.classifier(torch.flatten(x, 1))

    def get_active_subnet(self, arch: Mapping[str, int]) -> MobileNetV3:
        """A standalone :class:`MobileNetV3` computing what this supernet computes with ``arch`` active."""
        self.space.validate(arch)
        blocks = [copy.deepcopy(self.blocks[0])]
        for stage, block_ids in enumerate(self.block_group_info):
            for position, block_id in enumerate(block_ids[: arch[f"d_{stage}"]]):
                index = stage * len(block_ids) + position
                dynamic = self.blocks[block_id]
                layer = dynamic.conv.get_active_subnet(arch[f"ks_{index}"], arch[f"e_{index}"])
                blocks.append(ResidualBlock(layer, dynamic.shortcut))
        subnet = MobileNetV3(
            copy.deepcopy(self.first_conv),
            blocks,
            copy.deepcopy(self.final_expand_layer),
            copy.deepcopy(self.feature_mix_layer),
            copy.deepcopy(self.classifier),
        )
        return subnet.train(self.training)

    @torch.no_grad()
    def sort_channels(self) -> None:
        """Sort every elastic block's hidden channels by importance (before elastic-expand training)."""
        for block in self.blocks[1:]:
            block.conv.sort_channels()

    def load_ofa_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Load an OFA ``OFAMobileNetV3`` checkpoint (old ``mobile_inverted_conv`` keys included)."""
        if "state_dict" in state_dict:
            state_dict = state_dict["state_dict"]
        renamed = {k.replace(".mobile_inverted_conv.", ".conv."): v for k, v in state_dict.items()}
        self.load_state_dict(renamed)
