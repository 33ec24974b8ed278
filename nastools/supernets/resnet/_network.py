"""OFA's elastic ResNet (``OFAResNets``): its design and parameter layout, and its static sub-networks.

Elastic depth: stage ``s`` runs its first ``base_depths[s] + d_s`` blocks (OFA drops a stage's last
blocks); ``d_0`` below its largest value skips the input stem's residual convolution. Elastic expand:
a block's inner width is ``make_divisible(round(out * e))`` of its active output width ``out``, the
leading channels of the largest inner weights (kept sorted by importance, :meth:`sort_channels`).
Elastic width: one multiplier for the stem's first (and residual) convolution, one for its last, one
per stage; every layer runs on the leading channels of its largest weight (the arch:
:mod:`._config`).

:meth:`ElasticResNet.get_active_subnet` returns a plain :class:`ResNet`, laid out as OFA's static
``ResNets``: an input stem of 3x3 convolutions, a 3x3 max pool, bottleneck blocks and a linear
classifier, with OFA's state-dict keys (``input_stem.1.conv.conv.weight``,
``blocks.3.conv2.bn.running_var``, ``blocks.0.downsample.conv.weight``, ``classifier.linear.bias``).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from nastools.supernets._elastic import (
    DynamicBatchNorm2d,
    DynamicConv2d,
    DynamicConvLayer,
    DynamicLinearLayer,
    ElasticImageNetwork,
    LinearLayer,
    ResidualBlock,
    channel_importance,
    conv_bn,
    copy_bn,
    copy_leading,
    dynamic_conv_bn,
    importance_order,
    permute_bn,
    permute_channels,
)
from nastools.supernets.resnet._config import ResNetConfig, bottleneck_mid_channels
from nastools.supernets.resnet._shapes import ResNetShape, count_macs_params, resnet_shape

__all__ = ["BottleneckBlock", "DynamicBottleneckBlock", "ElasticResNet", "ResNet", "downsample_shortcut"]


# --- the static sub-network ------------------------------------------------------------------------


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
        self.conv1 = conv_bn(in_channels, mid_channels, act="relu")
        self.conv2 = conv_bn(mid_channels, mid_channels, kernel_size, stride, act="relu")
        self.conv3 = conv_bn(mid_channels, out_channels)
        self.downsample = (
            downsample_shortcut(in_channels, out_channels, stride) if downsample else nn.Identity()
        )
        self.final_act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.downsample(x)
        return self.final_act(self.conv3(self.conv2(self.conv1(x))) + residual)


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


# --- the elastic network ---------------------------------------------------------------------------


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
        self.conv1 = dynamic_conv_bn(max_in, max_mid, act="relu")
        self.conv2 = dynamic_conv_bn(max_mid, max_mid, kernel_size, stride, act="relu")
        self.conv3 = dynamic_conv_bn(max_mid, max_out)
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
        pairs = [(block.conv1, self.conv1), (block.conv2, self.conv2), (block.conv3, self.conv3)]
        if self.has_downsample:
            pairs.append((block.downsample, self.downsample))
        for target, source in pairs:
            copy_leading(target.conv, source.conv.conv)
            copy_bn(target.bn, source.bn.bn)
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
        order = importance_order(channel_importance(conv3.weight), edges)
        permute_channels(conv3.weight, order, dim=1)
        permute_bn(self.conv2.bn.bn, order)
        permute_channels(conv2.weight, order)
        order = importance_order(channel_importance(conv2.weight), edges)
        permute_channels(conv2.weight, order, dim=1)
        permute_bn(self.conv1.bn.bn, order)
        permute_channels(conv1.weight, order)


class ElasticResNet(ElasticImageNetwork):
    """OFA's ``OFAResNets``: one module holding every sub-network's weights.

    Set an arch with :meth:`set_active`, then call the module; or extract a standalone copy with
    :meth:`get_active_subnet`. Parameter names follow OFA (``input_stem.1.conv.conv.conv.weight``,
    ``blocks.4.conv2.bn.bn.running_mean``, ``classifier.linear.linear.weight`` and so on), so an OFA
    checkpoint's state dict loads with :meth:`load_ofa_state_dict`.

    One difference in design: the first block of every stage has the ``avgpool_conv`` shortcut. OFA
    gives it an identity when its stride is 1 and its width list equals the previous stage's, a
    configuration its own stage grouping cannot handle; OFA's published supernets never have it.

    Attributes:
        config: The supernet's shape.
        space: Its search space (:func:`resnet_space`).
        block_group_info: Block indices of each stage.
        runtime_depth: Blocks each stage runs for the active arch.
        input_stem_skipping: Whether the active arch skips the stem's residual convolution.

    Example:
        >>> config = ResNetConfig(in_channels=1, n_classes=10, resolutions=(32,), base_stem_width=16,
        ...                       base_stage_widths=(32, 48, 64, 96), stem_stride=1, max_pool=False)
        >>> net = ElasticResNet(config)
        >>> arch = net.space.sample(1, rng=0)[0]
        >>> net.set_active(arch)
        >>> net(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 10])
    """

    #: Meaning of each parameter-name prefix (for tables).
    PARAMETER_DESCRIPTIONS = {
        "d": "depth: extra blocks of a stage (d_0: whether the stem keeps its residual convolution)",
        "e": "bottleneck expand ratio of a block (inner width over output width)",
        "w": "width multiplier (w_0, w_1: the stem's convolutions; w_2...: a stage)",
        "r": "input resolution",
    }

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        self.config = config
        self.space = config.space()
        widest = max(config.width_mults)
        stem_mid, channels = config.stem_mid_width(widest), config.stem_width(widest)
        self.input_stem = nn.ModuleList(
            [
                DynamicConvLayer(config.in_channels, stem_mid, 3, config.stem_stride),
                ResidualBlock(DynamicConvLayer(stem_mid, stem_mid, 3, 1)),
                DynamicConvLayer(stem_mid, channels, 3, 1),
            ]
        )
        self.max_pooling = nn.MaxPool2d(3, 2, 1) if config.max_pool else nn.Identity()
        blocks: list[DynamicBottleneckBlock] = []
        self.block_group_info: list[list[int]] = []
        for stage, (base, stride) in enumerate(zip(config.base_depths, config.stage_strides)):
            width = config.stage_width(stage, widest)
            n_blocks = base + max(config.depths)
            self.block_group_info.append(list(range(len(blocks), len(blocks) + n_blocks)))
            for position in range(n_blocks):
                first = position == 0
                blocks.append(
                    DynamicBottleneckBlock(
                        channels, width, config.expand_ratios, stride if first else 1, downsample=first
                    )
                )
                channels = width
        self.blocks = nn.ModuleList(blocks)
        self.classifier = DynamicLinearLayer(channels, config.n_classes, config.dropout_rate)
        self.runtime_depth = [len(ids) for ids in self.block_group_info]
        self.input_stem_skipping = False
        self.active_resolution = max(config.resolutions)

    def macs_params(self, arch: Mapping[str, object]) -> tuple[int, int]:
        """Closed-form ``(macs, params)`` of ``arch``'s sub-network (validates ``arch``; ~10 µs).

        Example:
            >>> net = ElasticResNet(ResNetConfig())
            >>> net.macs_params(net.max_arch())
            (7491643904, 48105992)
        """
        self.space.validate(arch)
        return count_macs_params(self.config, arch)

    def shape(self, arch: Mapping[str, object]) -> ResNetShape:
        """Every layer's shape of ``arch``'s sub-network, without building it (validates ``arch``)."""
        self.space.validate(arch)
        return resnet_shape(self.config, arch)

    def _widths(self, arch: Mapping[str, object]) -> tuple[int, int, list[int]]:
        config = self.config
        stages = [config.stage_width(s, arch[f"w_{s + 2}"]) for s in range(config.n_stages)]
        return config.stem_mid_width(arch["w_0"]), config.stem_width(arch["w_1"]), stages

    def set_active(self, arch: Mapping[str, object]) -> None:
        """Make ``arch`` the sub-network that :meth:`forward` runs."""
        self.space.validate(arch)
        stem_mid, stem_out, stage_widths = self._widths(arch)
        self.input_stem[0].active_out_channels = stem_mid
        self.input_stem[1].conv.active_out_channels = stem_mid
        self.input_stem[2].active_out_channels = stem_out
        self.input_stem_skipping = arch["d_0"] != max(self.config.depths)
        for stage, block_ids in enumerate(self.block_group_info):
            self.runtime_depth[stage] = self.config.base_depths[stage] + arch[f"d_{stage + 1}"]
            for block_id in block_ids:
                block = self.blocks[block_id]
                block.active_out_channels = stage_widths[stage]
                block.active_expand_ratio = arch[f"e_{block_id}"]
        self.active_resolution = self.resolution(arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, layer in enumerate(self.input_stem):
            if index != 1 or not self.input_stem_skipping:
                x = layer(x)
        x = self.max_pooling(x)
        for stage, block_ids in enumerate(self.block_group_info):
            for block_id in block_ids[: self.runtime_depth[stage]]:
                x = self.blocks[block_id](x)
        return self.classifier(x.mean((2, 3)))

    def get_active_subnet(self, arch: Mapping[str, object]) -> ResNet:
        """A standalone :class:`ResNet` computing what this supernet computes with ``arch`` active."""
        self.space.validate(arch)
        config = self.config
        stem_mid, channels, stage_widths = self._widths(arch)
        stem = [self.input_stem[0].get_active_subnet(config.in_channels, stem_mid)]
        if arch["d_0"] == max(config.depths):
            stem.append(ResidualBlock(self.input_stem[1].conv.get_active_subnet(stem_mid, stem_mid)))
        stem.append(self.input_stem[2].get_active_subnet(stem_mid, channels))
        blocks = []
        for stage, block_ids in enumerate(self.block_group_info):
            depth = config.base_depths[stage] + arch[f"d_{stage + 1}"]
            for block_id in block_ids[:depth]:
                block = self.blocks[block_id]
                blocks.append(block.get_active_subnet(channels, stage_widths[stage], arch[f"e_{block_id}"]))
                channels = stage_widths[stage]
        classifier = self.classifier.get_active_subnet(channels)
        subnet = ResNet(stem, blocks, classifier, config.max_pool)
        return subnet.train(self.training)

    @torch.no_grad()
    def sort_channels(self, expand_ratio_stage: int = 0) -> None:
        """Sort every block's inner channels by importance (OFA's ``re_organize_middle_weights``).

        Args:
            expand_ratio_stage: See :meth:`DynamicBottleneckBlock.sort_channels`.
        """
        for block in self.blocks:
            block.sort_channels(expand_ratio_stage)

    def load_ofa_state_dict(self, state_dict: Mapping[str, torch.Tensor] | str | os.PathLike) -> None:
        """Load an OFA ``OFAResNets`` checkpoint, e.g. the published ``ofa_resnet50``'s.

        Accepts the checkpoint file's path or its contents: a dict with a ``state_dict`` entry (as
        OFA saves it) or the state dict itself, with ``module.`` prefixes (DataParallel) and the
        static layers' key names (``...conv1.bn.weight`` for ``...conv1.bn.bn.weight``), as OFA's
        own ``load_state_dict`` does. Entries the checkpoint lacks (such as batch-norm
        ``num_batches_tracked``) keep their current values.

        Raises:
            KeyError: A checkpoint key matches no parameter or buffer of this supernet.
            RuntimeError: A tensor's shape differs from this supernet's (another config).
        """
        if isinstance(state_dict, (str, os.PathLike)):
            state_dict = torch.load(state_dict, map_location="cpu", weights_only=True)
        if "state_dict" in state_dict:
            state_dict = state_dict["state_dict"]
        merged = self.state_dict()
        for key, value in state_dict.items():
            key = key.removeprefix("module.")
            target = key if key in merged else _dynamic_key(key)
            if target not in merged:
                raise KeyError(f"checkpoint key {key!r} matches nothing in this supernet")
            merged[target] = value
        self.load_state_dict(merged)


def _dynamic_key(key: str) -> str:
    """A static layer's key as its dynamic counterpart's: ``a.bn.weight`` -> ``a.bn.bn.weight``."""
    module, _, name = key.rpartition(".")
    last = module.rpartition(".")[2]
    return f"{module}.{last}.{name}" if last in ("conv", "bn", "linear") else key
