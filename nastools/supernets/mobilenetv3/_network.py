"""Elastic MobileNetV3 super-network following OFA's design and parameter layout.

Elastic kernel: one depthwise weight of the largest kernel per block; smaller kernels are the centre
crop passed through OFA's kernel-transformation matrices (``7to5_matrix``, ``5to3_matrix``).
Elastic depth: stage ``s`` runs its first ``d_s`` blocks. Elastic expand: the first
``make_divisible(in * e)`` hidden channels, kept sorted by importance (:meth:`sort_channels`).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from nastools.space import Condition, SearchSpace
from nastools.supernets.mobilenetv3._layers import (
    ConvLayer,
    LinearLayer,
    MBConvLayer,
    MobileNetV3,
    ResidualBlock,
    SEModule,
    activation,
    make_divisible,
    same_padding,
)
from nastools.supernets.mobilenetv3._shapes import NetworkShape, count_macs_params, network_shape

__all__ = ["ElasticMobileNetV3", "MobileNetV3Config", "mobilenetv3_space"]

OFA_STAGE_WIDTHS = (16, 16, 24, 40, 80, 112, 160, 960, 1280)


def mobilenetv3_space(
    n_stages: int = 5,
    depths: Sequence[int] = (2, 3, 4),
    kernel_sizes: Sequence[int] = (3, 5, 7),
    expand_ratios: Sequence[int] = (3, 4, 6),
    resolutions: Sequence[int] | None = None,
) -> SearchSpace:
    """The OFA MobileNetV3 space: per-stage depth ``d_s``, per-block ``ks_i`` and ``e_i``, optional ``r``.

    Blocks are numbered 0..n_stages*max(depths)-1 as in OFA's ``ks``/``e`` lists; block ``i`` sits at
    position ``i % max_depth`` of stage ``i // max_depth`` and is active when ``d_stage > position``.

    Example:
        >>> space = mobilenetv3_space()
        >>> space.n_var, f"{space.size:.2e}"
        (45, '2.18e+19')
    """
    max_depth = max(depths)
    n_blocks = n_stages * max_depth
    choices: dict[str, Sequence[int]] = {f"d_{s}": depths for s in range(n_stages)}
    choices |= {f"ks_{i}": kernel_sizes for i in range(n_blocks)}
    choices |= {f"e_{i}": expand_ratios for i in range(n_blocks)}
    if resolutions is not None:
        choices["r"] = resolutions
    conditions = []
    for i in range(n_blocks):
        stage, position = divmod(i, max_depth)
        deep_enough = tuple(d for d in depths if d > position)
        if len(deep_enough) < len(depths):
            for kind in ("ks", "e"):
                conditions.append(Condition(f"{kind}_{i}", f"d_{stage}", deep_enough))
    return SearchSpace(choices, conditions)


@dataclass(frozen=True)
class MobileNetV3Config:
    """Shape of an elastic MobileNetV3; the defaults are OFA's ``ofa_mbv3_d234_e346_k357_w1.0``.

    Attributes:
        width_mult: Multiplies every base width (then rounded to a multiple of 8).
        in_channels: Input image channels.
        n_classes: Classifier outputs.
        resolutions: Allowed input resolutions; more than one makes ``r`` a search parameter.
        base_stage_widths: Stem, first block, 5 stages, final expand and feature-mix widths.
        stem_stride: Stride of the first convolution.
        stage_strides: Strides of the first block and of the first block of each stage.
        kernel_sizes, expand_ratios, depths: The elastic choices.
        dropout_rate: Dropout before the classifier.
    """

    width_mult: float = 1.0
    in_channels: int = 3
    n_classes: int = 1000
    resolutions: tuple[int, ...] = (224,)
    base_stage_widths: tuple[int, ...] = OFA_STAGE_WIDTHS
    stem_stride: int = 2
    stage_strides: tuple[int, ...] = (1, 2, 2, 2, 1, 2)
    kernel_sizes: tuple[int, ...] = (3, 5, 7)
    expand_ratios: tuple[int, ...] = (3, 4, 6)
    depths: tuple[int, ...] = (2, 3, 4)
    dropout_rate: float = 0.1
    stage_acts: tuple[str, ...] = field(default=("relu", "relu", "relu", "h_swish", "h_swish", "h_swish"))
    stage_se: tuple[bool, ...] = field(default=(False, False, True, False, True, True))

    def to_dict(self) -> dict:
        """Plain dict (JSON-friendly) of the config."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping) -> MobileNetV3Config:
        """Inverse of :meth:`to_dict`; lists become tuples."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    @property
    def n_stages(self) -> int:
        return len(self.stage_strides) - 1

    def space(self) -> SearchSpace:
        """The search space of this supernet (``r`` only when several resolutions are allowed)."""
        return mobilenetv3_space(
            n_stages=self.n_stages,
            depths=self.depths,
            kernel_sizes=self.kernel_sizes,
            expand_ratios=self.expand_ratios,
            resolutions=self.resolutions if len(self.resolutions) > 1 else None,
        )


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


class DynamicBatchNorm2d(nn.Module):
    """Batch norm over a prefix of its channels (attribute ``bn`` as in OFA)."""

    def __init__(self, max_channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(max_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _bn_forward(self.bn, x)


class DynamicConv2d(nn.Module):
    """1x1 convolution over prefixes of its input and output channels."""

    def __init__(self, max_in: int, max_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(max_in, max_out, 1, bias=False)

    def forward(self, x: torch.Tensor, out_channels: int) -> torch.Tensor:
        return F.conv2d(x, self.conv.weight[:out_channels, : x.size(1)])


class DynamicSeparableConv2d(nn.Module):
    """Depthwise convolution with elastic kernel size through kernel-transformation matrices."""

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
        self.inverted_bottleneck = nn.Sequential(
            OrderedDict(
                conv=DynamicConv2d(in_channels, max_mid),
                bn=DynamicBatchNorm2d(max_mid),
                act=activation(act),
            )
        )
        depth_conv = OrderedDict(
            conv=DynamicSeparableConv2d(max_mid, kernel_sizes, stride),
            bn=DynamicBatchNorm2d(max_mid),
            act=activation(act),
        )
        if use_se:
            depth_conv["se"] = DynamicSE(max_mid)
        self.depth_conv = nn.Sequential(depth_conv)
        self.point_linear = nn.Sequential(
            OrderedDict(conv=DynamicConv2d(max_mid, out_channels), bn=DynamicBatchNorm2d(out_channels))
        )
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
        with torch.no_grad():
            layer.inverted_bottleneck.conv.weight.copy_(ib.conv.conv.weight[:mid])
            _copy_bn(layer.inverted_bottleneck.bn, ib.bn.bn)
            layer.depth_conv.conv.weight.copy_(dc.conv.active_filter(mid, kernel_size))
            _copy_bn(layer.depth_conv.bn, dc.bn.bn)
            if self.use_se:
                se_mid = make_divisible(mid // 4)
                reduce, expand = dc.se.fc.reduce, dc.se.fc.expand
                layer.depth_conv.se.fc.reduce.weight.copy_(reduce.weight[:se_mid, :mid])
                layer.depth_conv.se.fc.reduce.bias.copy_(reduce.bias[:se_mid])
                layer.depth_conv.se.fc.expand.weight.copy_(expand.weight[:mid, :se_mid])
                layer.depth_conv.se.fc.expand.bias.copy_(expand.bias[:mid])
            layer.point_linear.conv.weight.copy_(pl.conv.conv.weight[:, :mid])
            _copy_bn(layer.point_linear.bn, pl.bn.bn)
        return layer

    @torch.no_grad()
    def sort_channels(self) -> None:
        """Reorder hidden channels by importance (L1 norm of the projection weights), as OFA does."""
        importance = self.point_linear.conv.conv.weight.abs().sum(dim=(0, 2, 3))
        order = torch.argsort(importance, descending=True)
        pl_conv = self.point_linear.conv.conv
        pl_conv.weight.copy_(pl_conv.weight[:, order])
        dw = self.depth_conv.conv.conv
        dw.weight.copy_(dw.weight[order])
        for bn in (self.depth_conv.bn.bn, self.inverted_bottleneck.bn.bn):
            _permute_bn(bn, order)
        ib_conv = self.inverted_bottleneck.conv.conv
        ib_conv.weight.copy_(ib_conv.weight[order])
        if self.use_se:
            reduce, expand = self.depth_conv.se.fc.reduce, self.depth_conv.se.fc.expand
            reduce.weight.copy_(reduce.weight[:, order])
            expand.weight.copy_(expand.weight[order])
            expand.bias.copy_(expand.bias[order])
            se_order = torch.argsort(expand.weight.abs().sum(dim=(0, 2, 3)), descending=True)
            expand.weight.copy_(expand.weight[:, se_order])
            reduce.weight.copy_(reduce.weight[se_order])
            reduce.bias.copy_(reduce.bias[se_order])


def _copy_bn(target: nn.BatchNorm2d, source: nn.BatchNorm2d) -> None:
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


class ElasticMobileNetV3(nn.Module):
    """OFA's ``OFAMobileNetV3``: one module holding every sub-network's weights.

    Set an arch with :meth:`set_active`, then call the module; or extract a standalone copy with
    :meth:`get_active_subnet`. Parameter names follow OFA (``blocks.5.conv.depth_conv.conv.7to5_matrix``
    and so on), so an OFA checkpoint's state dict loads with :meth:`load_ofa_state_dict`.

    Example:
        >>> config = MobileNetV3Config(width_mult=0.5, in_channels=1, n_classes=10, resolutions=(32,))
        >>> net = ElasticMobileNetV3(config)
        >>> arch = config.space().sample(1, rng=0)[0]
        >>> net.set_active(arch)
        >>> net(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 10])
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

    def max_arch(self) -> dict[str, int]:
        """The largest sub-network."""
        return self.space.canonical({n: max(c) for n, c in self.space.choices.items()})

    def min_arch(self) -> dict[str, int]:
        """The smallest sub-network."""
        return self.space.canonical({n: min(c) for n, c in self.space.choices.items()})

    def resolution(self, arch: Mapping[str, int]) -> int:
        """Input resolution of ``arch`` (its ``r``, or the single fixed resolution)."""
        return int(arch.get("r", self.config.resolutions[0]))

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
