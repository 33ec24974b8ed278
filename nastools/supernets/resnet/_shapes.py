"""Layer shapes, MACs and parameters of an elastic-ResNet sub-network from the config and the arch alone.

The counts follow ``torch.utils.flop_counter``'s convention (FLOPs / 2 on a batch of one:
convolutions and linear layers; batch norm, activations, pooling and additions not counted) and the
parameters are the standalone sub-network's (batch-norm affine terms included, running statistics
not). They equal :func:`nastools.supernet.count_macs` and ``count_params`` on the
extracted sub-network exactly (``tests/test_resnet_network.py`` checks that), and OFA's own
``count_net_flops`` too, which counts the same layers.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nastools.supernets.resnet._config import ResNetConfig

__all__ = ["BottleneckShape", "ConvShape", "ResNetShape", "count_macs_params", "resnet_shape"]


def conv_output_size(size: int, stride: int) -> int:
    """Spatial side after an odd-kernel 'same'-padded convolution, OFA's max pool or ceil-mode pooling."""
    return (size - 1) // stride + 1


@dataclass(frozen=True)
class ConvShape:
    """One convolution + batch norm + ReLU of the input stem.

    Attributes:
        input_size: Spatial side of the input.
        in_channels: Input channels.
        out_channels: Output channels.
        stride: Convolution stride.
        kernel_size: Kernel side.
        residual: Whether the layer adds its input to its output (the stem's middle layer).
    """

    input_size: int
    in_channels: int
    out_channels: int
    stride: int = 1
    kernel_size: int = 3
    residual: bool = False

    @property
    def output_size(self) -> int:
        """Spatial side of the output."""
        return conv_output_size(self.input_size, self.stride)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one sample."""
        return self.output_size**2 * self.in_channels * self.out_channels * self.kernel_size**2

    @property
    def params(self) -> int:
        """Convolution weights and batch-norm affine terms."""
        return self.in_channels * self.out_channels * self.kernel_size**2 + 2 * self.out_channels


@dataclass(frozen=True)
class BottleneckShape:
    """One bottleneck block (OFA's ``ResNetBottleneckBlock``).

    Attributes:
        input_size: Spatial side of the input.
        in_channels: Input channels.
        mid_channels: Channels of the inner 1x1 and 3x3 convolutions.
        out_channels: Output channels.
        stride: Stride of the 3x3 convolution and of the shortcut's pooling.
        expand_ratio: The arch's expand ratio (``mid_channels`` derives from it).
        downsample: Whether the shortcut is average pool + 1x1 convolution (else identity).
        kernel_size: Kernel side of the middle convolution.
    """

    input_size: int
    in_channels: int
    mid_channels: int
    out_channels: int
    stride: int
    expand_ratio: float
    downsample: bool
    kernel_size: int = 3

    @property
    def output_size(self) -> int:
        """Spatial side of the output."""
        return conv_output_size(self.input_size, self.stride)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one sample (the shortcut's 1x1 convolution runs after pooling)."""
        cin, mid, cout = self.in_channels, self.mid_channels, self.out_channels
        out_area = self.output_size**2
        macs = self.input_size**2 * cin * mid + out_area * mid * (mid * self.kernel_size**2 + cout)
        if self.downsample:
            macs += out_area * cin * cout
        return macs

    @property
    def params(self) -> int:
        """Convolution weights and batch-norm affine terms."""
        cin, mid, cout = self.in_channels, self.mid_channels, self.out_channels
        params = cin * mid + mid * mid * self.kernel_size**2 + mid * cout + 4 * mid + 2 * cout
        if self.downsample:
            params += cin * cout + 2 * cout
        return params


@dataclass(frozen=True)
class ResNetShape:
    """Every layer's shape of one sub-network: stem, (max pool), blocks, classifier.

    Attributes:
        resolution: Input side (square images).
        stem: The active stem convolutions in order (2 or 3).
        max_pool: Whether a 3x3 stride-2 max pool follows the stem.
        blocks: The active bottleneck blocks in order.
        n_classes: Classifier outputs.

    Example:
        >>> from nastools.supernets.resnet import ResNetConfig
        >>> config = ResNetConfig()
        >>> arch = {"d_0": 2, **{f"d_{s}": 2 for s in range(1, 5)}}
        >>> arch |= {f"e_{i}": 0.35 for i in range(18)} | {f"w_{j}": 1.0 for j in range(6)}
        >>> shape = resnet_shape(config, arch)
        >>> shape.blocks[0].input_size, shape.final_size, len(shape.blocks), shape.macs
        (56, 7, 18, 7491643904)
    """

    resolution: int
    stem: tuple[ConvShape, ...]
    max_pool: bool
    blocks: tuple[BottleneckShape, ...]
    n_classes: int

    @property
    def stem_output_size(self) -> int:
        """Spatial side after the stem (before the max pool)."""
        return self.stem[-1].output_size

    @property
    def final_size(self) -> int:
        """Spatial side of the last block's output (before global pooling)."""
        if self.blocks:
            return self.blocks[-1].output_size
        return conv_output_size(self.stem_output_size, 2) if self.max_pool else self.stem_output_size

    @property
    def final_channels(self) -> int:
        """Features entering the classifier."""
        return self.blocks[-1].out_channels if self.blocks else self.stem[-1].out_channels

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one sample's forward pass (``torch.utils.flop_counter`` / 2)."""
        layers = sum(layer.macs for layer in self.stem) + sum(block.macs for block in self.blocks)
        return layers + self.final_channels * self.n_classes

    @property
    def params(self) -> int:
        """Parameters of the standalone sub-network (no batch-norm running statistics)."""
        layers = sum(layer.params for layer in self.stem) + sum(block.params for block in self.blocks)
        return layers + (self.final_channels + 1) * self.n_classes


@dataclass(frozen=True)
class _BlockSlot:
    """What a block position fixes regardless of the arch."""

    index: int  # position in the e_i list
    depth_key: str  # d_s of its stage
    position: int  # within the stage
    base_depth: int
    in_width_key: str  # w_j giving the input width
    out_width_key: str
    stage: int
    in_stage: int  # stage giving the input width (-1: the stem)
    stride: int
    downsample: bool


@functools.lru_cache(maxsize=32)
def _slots(config: ResNetConfig) -> tuple[_BlockSlot, ...]:
    slots = []
    index = 0
    for stage, (base, stride) in enumerate(zip(config.base_depths, config.stage_strides)):
        for position in range(base + max(config.depths)):
            first = position == 0
            slots.append(
                _BlockSlot(
                    index=index,
                    depth_key=f"d_{stage + 1}",
                    position=position,
                    base_depth=base,
                    in_width_key=f"w_{stage + 1}" if first else f"w_{stage + 2}",
                    out_width_key=f"w_{stage + 2}",
                    stage=stage,
                    in_stage=stage - 1 if first else stage,
                    stride=stride if first else 1,
                    downsample=first,
                )
            )
            index += 1
    return tuple(slots)


def _width(config: ResNetConfig, stage: int, width_mult: float) -> int:
    """Output width of stage ``stage`` (-1: the stem's last convolution)."""
    return config.stem_width(width_mult) if stage < 0 else config.stage_width(stage, width_mult)


def resnet_shape(config: ResNetConfig, arch: Mapping[str, object]) -> ResNetShape:
    """Layer shapes of ``arch``'s sub-network of an elastic ResNet with ``config``.

    The arch is not validated here (:meth:`ElasticResNet.shape` does that).

    Args:
        config: The supernet's shape.
        arch: The sub-network; ``r`` defaults to the config's first resolution.

    Returns:
        The sub-network's :class:`ResNetShape`.
    """
    resolution = int(arch.get("r", config.resolutions[0]))
    mid = config.stem_mid_width(arch["w_0"])
    first = ConvShape(resolution, config.in_channels, mid, config.stem_stride)
    size = first.output_size
    stem = [first]
    if arch["d_0"] == max(config.depths):
        stem.append(ConvShape(size, mid, mid, residual=True))
    stem.append(ConvShape(size, mid, config.stem_width(arch["w_1"])))
    if config.max_pool:
        size = conv_output_size(size, 2)
    blocks = []
    for slot in _slots(config):
        if slot.position >= slot.base_depth + arch[slot.depth_key]:
            continue
        expand = arch[f"e_{slot.index}"]
        out = config.stage_width(slot.stage, arch[slot.out_width_key])
        block = BottleneckShape(
            input_size=size,
            in_channels=_width(config, slot.in_stage, arch[slot.in_width_key]),
            mid_channels=config.mid_channels(out, expand),
            out_channels=out,
            stride=slot.stride,
            expand_ratio=expand,
            downsample=slot.downsample,
        )
        blocks.append(block)
        size = block.output_size
    return ResNetShape(resolution, tuple(stem), config.max_pool, tuple(blocks), config.n_classes)


@functools.lru_cache(maxsize=256)
def _count_tables(config: ResNetConfig, resolution: int) -> tuple:
    """Per layer and choice, its ``(macs, params)`` at ``resolution``: stem, blocks, classifier."""
    widths = config.width_mults
    size = conv_output_size(resolution, config.stem_stride)
    conv1, residual, conv3 = {}, {}, {}
    for w0 in widths:
        mid = config.stem_mid_width(w0)
        layer = ConvShape(resolution, config.in_channels, mid, config.stem_stride)
        conv1[w0] = (layer.macs, layer.params)
        layer = ConvShape(size, mid, mid, residual=True)
        residual[w0] = (layer.macs, layer.params)
        for w1 in widths:
            layer = ConvShape(size, mid, config.stem_width(w1))
            conv3[(w0, w1)] = (layer.macs, layer.params)
    if config.max_pool:
        size = conv_output_size(size, 2)
    per_block = []
    for slot in _slots(config):
        counts = {}
        for w_out in widths:
            out = config.stage_width(slot.stage, w_out)
            for w_in in widths if slot.downsample else (w_out,):
                for expand in config.expand_ratios:
                    block = BottleneckShape(
                        size,
                        _width(config, slot.in_stage, w_in),
                        config.mid_channels(out, expand),
                        out,
                        slot.stride,
                        expand,
                        slot.downsample,
                    )
                    counts[(w_in, w_out, expand)] = (block.macs, block.params)
        size = conv_output_size(size, slot.stride)
        limit = slot.position - slot.base_depth  # active when d_s > limit
        per_block.append(
            (slot.depth_key, limit, slot.in_width_key, slot.out_width_key, f"e_{slot.index}", counts)
        )
    last = f"w_{config.n_stages + 1}"
    classifier = {}
    for w in widths:
        width = config.stage_width(config.n_stages - 1, w)
        classifier[w] = (width * config.n_classes, (width + 1) * config.n_classes)
    return conv1, residual, conv3, max(config.depths), tuple(per_block), last, classifier


def count_macs_params(config: ResNetConfig, arch: Mapping[str, object]) -> tuple[int, int]:
    """``(macs, params)`` of ``arch``'s sub-network, equal to :class:`ResNetShape`'s, in microseconds.

    Sums per-layer constants tabulated once per config and resolution. The arch is not validated.

    Example:
        >>> from nastools.supernets.resnet import ResNetConfig
        >>> config = ResNetConfig()
        >>> arch = {"d_0": 0, **{f"d_{s}": 0 for s in range(1, 5)}}
        >>> arch |= {f"e_{i}": 0.2 for i in range(18)} | {f"w_{j}": 0.65 for j in range(6)}
        >>> count_macs_params(config, arch)
        (962192128, 6539280)
    """
    conv1, residual, conv3, max_depth, per_block, last, classifier = _count_tables(
        config, int(arch.get("r", config.resolutions[0]))
    )
    w0 = arch["w_0"]
    macs, params = conv1[w0]
    block_macs, block_params = conv3[(w0, arch["w_1"])]
    macs, params = macs + block_macs, params + block_params
    if arch["d_0"] == max_depth:
        block_macs, block_params = residual[w0]
        macs, params = macs + block_macs, params + block_params
    for depth_key, limit, in_key, out_key, expand_key, counts in per_block:
        if arch[depth_key] > limit:
            block_macs, block_params = counts[(arch[in_key], arch[out_key], arch[expand_key])]
            macs += block_macs
            params += block_params
    block_macs, block_params = classifier[arch[last]]
    return macs + block_macs, params + block_params
