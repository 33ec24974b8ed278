"""Layer shapes of a MobileNetV3 sub-network, computed from the config and the arch alone.

Everything that depends only on the architecture, not on the weights, comes from here: the closed-form
MAC and parameter counts (:attr:`NetworkShape.macs`, :attr:`NetworkShape.params`) and the per-layer
keys of latency look-up tables (:class:`~nastools.supernets.mobilenetv3.LatencyTable`). The counts
follow ``torch.utils.flop_counter``'s convention (convolutions and linear layers, squeeze-and-excitation
included, biases, batch norm, activations, pooling and additions not counted) and equal
:func:`count_macs` / :func:`count_params` on the extracted sub-network exactly;
``tests/test_supernet.py`` checks that.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nastools.supernets._elastic._widths import make_divisible

if TYPE_CHECKING:
    from nastools.supernets.mobilenetv3._config import MobileNetV3Config

__all__ = ["BlockShape", "NetworkShape", "count_macs_params", "network_shape"]


def conv_output_size(size: int, stride: int) -> int:
    """Spatial side after an odd-kernel convolution with 'same' padding (``k // 2``) and ``stride``."""
    return (size - 1) // stride + 1


@dataclass(frozen=True)
class BlockShape:
    """One inverted-residual block of a sub-network (OFA's ``MBConvLayer`` inside a ``ResidualBlock``).

    Attributes:
        input_size: Spatial side of the block's input feature map.
        output_size: Spatial side of its output.
        in_channels: Input channels.
        out_channels: Output channels.
        mid_channels: Hidden (expanded) channels; the 1x1 expansion is skipped when equal to ``in_channels``.
        kernel_size: Depthwise kernel size.
        stride: Depthwise stride.
        expand_ratio: The arch's expand ratio (1 for the fixed first block).
        shortcut: Whether the block has an identity shortcut.
        use_se: Whether the block has squeeze-and-excitation.
        act: ``"relu"`` or ``"h_swish"``.
    """

    input_size: int
    output_size: int
    in_channels: int
    out_channels: int
    mid_channels: int
    kernel_size: int
    stride: int
    expand_ratio: float
    shortcut: bool
    use_se: bool
    act: str

    @property
    def se_channels(self) -> int:
        """Hidden width of the squeeze-and-excitation (OFA: ``make_divisible(mid // 4)``)."""
        return make_divisible(self.mid_channels // 4)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one sample through this block."""
        cin, mid, cout = self.in_channels, self.mid_channels, self.out_channels
        macs = 0
        if mid != cin:
            macs += self.input_size**2 * cin * mid
        macs += self.output_size**2 * mid * self.kernel_size**2
        if self.use_se:
            macs += 2 * mid * self.se_channels
        return macs + self.output_size**2 * mid * cout

    @property
    def params(self) -> int:
        """Parameters (weights, SE biases and batch-norm affine terms)."""
        cin, mid, cout = self.in_channels, self.mid_channels, self.out_channels
        params = 0
        if mid != cin:
            params += cin * mid + 2 * mid
        params += mid * self.kernel_size**2 + 2 * mid
        if self.use_se:
            se = self.se_channels
            params += 2 * mid * se + se + mid
        return params + mid * cout + 2 * cout


@dataclass(frozen=True)
class NetworkShape:
    """Every layer's shape of one sub-network: stem, blocks, final expand, feature mix, classifier.

    Attributes:
        resolution: Input side (square images).
        in_channels: Image channels.
        stem_channels: Output channels of the first 3x3 convolution.
        stem_stride: Its stride.
        blocks: The active blocks in order (the fixed first block, then each stage's first ``d`` blocks).
        final_expand_channels: Output channels of the final 1x1 expansion.
        feature_mix_channels: Output channels of the 1x1 feature-mix layer (after global pooling).
        n_classes: Classifier outputs.

    Example:
        >>> from nastools.supernets.mobilenetv3 import MobileNetV3Config
        >>> config = MobileNetV3Config()
        >>> arch = config.space().sample(1, rng=0)[0]
        >>> shape = network_shape(config, arch)
        >>> shape.blocks[0].input_size, shape.final_size
        (112, 7)
    """

    resolution: int
    in_channels: int
    stem_channels: int
    stem_stride: int
    blocks: tuple[BlockShape, ...]
    final_expand_channels: int
    feature_mix_channels: int
    n_classes: int

    @property
    def stem_output_size(self) -> int:
        """Spatial side after the first convolution."""
        return conv_output_size(self.resolution, self.stem_stride)

    @property
    def final_size(self) -> int:
        """Spatial side of the last block's output (input of the final expansion)."""
        return self.blocks[-1].output_size if self.blocks else self.stem_output_size

    @property
    def last_channels(self) -> int:
        """Channels entering the final expansion."""
        return self.blocks[-1].out_channels if self.blocks else self.stem_channels

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one sample's forward pass (``torch.utils.flop_counter`` / 2)."""
        stem = self.stem_output_size**2 * self.stem_channels * self.in_channels * 9
        head = self.final_size**2 * self.last_channels * self.final_expand_channels
        head += self.final_expand_channels * self.feature_mix_channels
        head += self.feature_mix_channels * self.n_classes
        return stem + sum(block.macs for block in self.blocks) + head

    @property
    def params(self) -> int:
        """Parameters of the standalone sub-network (no batch-norm running statistics)."""
        stem = self.stem_channels * self.in_channels * 9 + 2 * self.stem_channels
        head = self.last_channels * self.final_expand_channels + 2 * self.final_expand_channels
        head += self.final_expand_channels * self.feature_mix_channels
        head += self.feature_mix_channels * self.n_classes + self.n_classes
        return stem + sum(block.params for block in self.blocks) + head


@dataclass(frozen=True)
class _BlockSlot:
    """What a block position fixes regardless of the arch."""

    stage: int
    index: int  # OFA's block number within ks/e (-1 for the fixed first block)
    in_channels: int
    out_channels: int
    stride: int
    shortcut: bool
    use_se: bool
    act: str


@functools.lru_cache(maxsize=32)
def _slots(config: MobileNetV3Config) -> tuple[tuple[int, ...], _BlockSlot, tuple[_BlockSlot, ...]]:
    widths = tuple(make_divisible(w * config.width_mult) for w in config.base_stage_widths)
    stem, first = widths[0], widths[1]
    first_block = _BlockSlot(
        stage=-1,
        index=-1,
        in_channels=stem,
        out_channels=first,
        stride=config.stage_strides[0],
        shortcut=config.stage_strides[0] == 1 and stem == first,
        use_se=config.stage_se[0],
        act=config.stage_acts[0],
    )
    max_depth = max(config.depths)
    slots = []
    channels = first
    for stage in range(config.n_stages):
        width = widths[stage + 2]
        for position in range(max_depth):
            stride = config.stage_strides[stage + 1] if position == 0 else 1
            slots.append(
                _BlockSlot(
                    stage=stage,
                    index=stage * max_depth + position,
                    in_channels=channels,
                    out_channels=width,
                    stride=stride,
                    shortcut=stride == 1 and channels == width,
                    use_se=config.stage_se[stage + 1],
                    act=config.stage_acts[stage + 1],
                )
            )
            channels = width
    return widths, first_block, tuple(slots)


def network_shape(config: MobileNetV3Config, arch: Mapping[str, int]) -> NetworkShape:
    """Layer shapes of ``arch``'s sub-network of an elastic MobileNetV3 with ``config``.

    The arch is not validated here (:meth:`ElasticMobileNetV3.shape` does that).

    Args:
        config: The supernet's shape.
        arch: The sub-network; ``r`` defaults to the config's first resolution.

    Returns:
        The sub-network's :class:`NetworkShape`.
    """
    widths, first, slots = _slots(config)
    resolution = int(arch.get("r", config.resolutions[0]))
    size = conv_output_size(resolution, config.stem_stride)
    out = conv_output_size(size, first.stride)
    first_block = BlockShape(
        size,
        out,
        first.in_channels,
        first.out_channels,
        first.in_channels,
        3,
        first.stride,
        1,
        first.shortcut,
        first.use_se,
        first.act,
    )
    blocks = [first_block]
    size = out
    max_depth = max(config.depths)
    for slot in slots:
        if slot.index % max_depth >= arch[f"d_{slot.stage}"]:
            continue
        expand = arch[f"e_{slot.index}"]
        out = conv_output_size(size, slot.stride)
        blocks.append(
            BlockShape(
                size,
                out,
                slot.in_channels,
                slot.out_channels,
                make_divisible(round(slot.in_channels * expand)),
                arch[f"ks_{slot.index}"],
                slot.stride,
                expand,
                slot.shortcut,
                slot.use_se,
                slot.act,
            )
        )
        size = out
    return NetworkShape(
        resolution=resolution,
        in_channels=config.in_channels,
        stem_channels=widths[0],
        stem_stride=config.stem_stride,
        blocks=tuple(blocks),
        final_expand_channels=widths[-2],
        feature_mix_channels=widths[-1],
        n_classes=config.n_classes,
    )


@functools.lru_cache(maxsize=256)
def _count_tables(config: MobileNetV3Config, resolution: int) -> tuple:
    """Per block position and (kernel, expand) choice, that block's MACs and params at ``resolution``.

    Everything outside the elastic blocks (stem, fixed first block, head) is a constant per resolution.
    """
    max_depth = max(config.depths)
    n_blocks = config.n_stages * max_depth
    reference = {f"d_{s}": max_depth for s in range(config.n_stages)}
    reference |= {f"ks_{i}": config.kernel_sizes[0] for i in range(n_blocks)}
    reference |= {f"e_{i}": config.expand_ratios[0] for i in range(n_blocks)}
    reference["r"] = resolution
    shape = network_shape(config, reference)
    elastic = shape.blocks[1:]
    base_macs = shape.macs - sum(block.macs for block in elastic)
    base_params = shape.params - sum(block.params for block in elastic)
    per_block = []
    for index, block in enumerate(elastic):
        counts = {}
        for kernel in config.kernel_sizes:
            for expand in config.expand_ratios:
                variant = dataclasses.replace(
                    block,
                    kernel_size=kernel,
                    expand_ratio=expand,
                    mid_channels=make_divisible(round(block.in_channels * expand)),
                )
                counts[(kernel, expand)] = (variant.macs, variant.params)
        stage, position = divmod(index, max_depth)
        per_block.append((f"d_{stage}", position, f"ks_{index}", f"e_{index}", counts))
    return base_macs, base_params, tuple(per_block)


def count_macs_params(config: MobileNetV3Config, arch: Mapping[str, int]) -> tuple[int, int]:
    """``(macs, params)`` of ``arch``'s sub-network, equal to :class:`NetworkShape`'s, in microseconds.

    Sums per-block constants tabulated once per config and resolution. The arch is not validated.
    """
    macs, params, per_block = _count_tables(config, int(arch.get("r", config.resolutions[0])))
    for depth_key, position, kernel_key, expand_key, counts in per_block:
        if position < arch[depth_key]:
            block_macs, block_params = counts[(arch[kernel_key], arch[expand_key])]
            macs += block_macs
            params += block_params
    return macs, params
