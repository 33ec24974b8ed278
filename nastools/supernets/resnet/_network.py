"""Elastic ResNet super-network following OFA's ``OFAResNets`` design and parameter layout.

Elastic depth: stage ``s`` runs its first ``base_depths[s] + d_s`` blocks (OFA drops a stage's last
blocks); ``d_0`` below its largest value skips the input stem's residual convolution. Elastic expand:
a block's inner width is ``make_divisible(round(out * e))`` of its active output width ``out``, the
leading channels of the largest inner weights (kept sorted by importance, :meth:`sort_channels`).
Elastic width: one multiplier for the stem's first (and residual) convolution, one for its last, one
per stage; every layer runs on the leading channels of its largest weight.

The arch is a flat dict: ``d_0`` (stem residual: smallest or largest depth choice), ``d_1``..``d_S``
(extra blocks per stage), ``e_0``..``e_{B-1}`` (expand ratio of each block slot, active only when its
stage is deep enough), ``w_0``..``w_{S+1}`` (width multipliers, the values themselves) and ``r``
(input resolution) when the config allows several.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from nastools.space import Condition, SearchSpace
from nastools.supernets.resnet._dynamic import DynamicBottleneckBlock, DynamicConvLayer, DynamicLinearLayer
from nastools.supernets.resnet._layers import ResidualBlock, ResNet, bottleneck_mid_channels, make_divisible
from nastools.supernets.resnet._shapes import ResNetShape, count_macs_params, resnet_shape

__all__ = ["ElasticResNet", "ResNetConfig", "arch_from_ofa_config", "arch_to_ofa_config", "resnet_space"]


@dataclass(frozen=True)
class ResNetConfig:
    """Shape of an elastic ResNet; the defaults are OFA's ``ofa_resnet50``.

    (In OFA's model zoo: ``ofa_resnet50_d0-1-2_e0.2-0.25-0.35_w0.65-0.8-1.0``.)

    Attributes:
        in_channels: Input image channels.
        n_classes: Classifier outputs.
        resolutions: Allowed input resolutions; more than one makes ``r`` a search parameter.
        base_stem_width: Output width of the input stem at multiplier 1 (its first two convolutions
            have half of it, rounded).
        base_stage_widths: Output width of each stage at multiplier 1.
        base_depths: Blocks of each stage at depth choice 0.
        stage_strides: Stride of each stage's first block.
        stem_stride: Stride of the first convolution (1 for tiny images).
        max_pool: Whether the stem is followed by a 3x3 stride-2 max pool (off for tiny images).
        depths: Extra blocks per stage (OFA's ``depth_list``).
        expand_ratios: Inner width over output width of a block (OFA's ``expand_ratio_list``).
        width_mults: Width multipliers (OFA's ``width_mult_list``).
        dropout_rate: Dropout before the classifier.
    """

    in_channels: int = 3
    n_classes: int = 1000
    resolutions: tuple[int, ...] = (224,)
    base_stem_width: int = 64
    base_stage_widths: tuple[int, ...] = (256, 512, 1024, 2048)
    base_depths: tuple[int, ...] = (2, 2, 4, 2)
    stage_strides: tuple[int, ...] = (1, 2, 2, 2)
    stem_stride: int = 2
    max_pool: bool = True
    depths: tuple[int, ...] = (0, 1, 2)
    expand_ratios: tuple[float, ...] = (0.2, 0.25, 0.35)
    width_mults: tuple[float, ...] = (0.65, 0.8, 1.0)
    dropout_rate: float = 0.0

    def __post_init__(self) -> None:
        n = len(self.base_depths)
        if n == 0 or len(self.base_stage_widths) != n or len(self.stage_strides) != n:
            raise ValueError(
                f"base_stage_widths, base_depths and stage_strides need one entry per stage, got "
                f"{len(self.base_stage_widths)}, {n} and {len(self.stage_strides)}"
            )
        for name in ("depths", "expand_ratios", "width_mults", "resolutions"):
            values = getattr(self, name)
            if not values or list(values) != sorted(set(values)):
                raise ValueError(f"{name} must be non-empty, ascending and without repeats, got {values}")
        if min(self.depths) < 0 or min(self.base_depths) + min(self.depths) < 1:
            raise ValueError("every stage needs at least one block: base_depths + min(depths) >= 1")

    def to_dict(self) -> dict:
        """Plain dict (JSON-friendly) of the config."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping) -> ResNetConfig:
        """Inverse of :meth:`to_dict`; lists become tuples."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    @property
    def n_stages(self) -> int:
        """Number of stages."""
        return len(self.base_depths)

    @property
    def n_blocks(self) -> int:
        """Number of block slots (one ``e_i`` each): base plus largest extra depth, over the stages."""
        return sum(self.base_depths) + self.n_stages * max(self.depths)

    def stem_width(self, width_mult: float) -> int:
        """Output width of the stem's last convolution."""
        return make_divisible(self.base_stem_width * width_mult)

    def stem_mid_width(self, width_mult: float) -> int:
        """Output width of the stem's first convolution (and of its residual convolution)."""
        return make_divisible(self.stem_width(width_mult) // 2)

    def stage_width(self, stage: int, width_mult: float) -> int:
        """Output width of every block of ``stage``."""
        return make_divisible(self.base_stage_widths[stage] * width_mult)

    @staticmethod
    def mid_channels(out_channels: int, expand_ratio: float) -> int:
        """Inner width of a block with ``out_channels`` outputs and ``expand_ratio``."""
        return bottleneck_mid_channels(out_channels, expand_ratio)

    def stem_depths(self) -> tuple[int, ...]:
        """Choices of ``d_0``: smallest (skips the stem's residual convolution) and largest depth."""
        return tuple(sorted({min(self.depths), max(self.depths)}))

    def space(self) -> SearchSpace:
        """The search space of this supernet (see :func:`resnet_space`)."""
        return resnet_space(self)


def resnet_space(config: ResNetConfig) -> SearchSpace:
    """The elastic-ResNet space: ``d_0``..``d_S``, ``e_0``..``e_{B-1}``, ``w_0``..``w_{S+1}``, optional ``r``.

    Block slots are numbered as OFA's ``e`` list: stage by stage, ``base_depths[s] + max(depths)``
    each. Slot ``p`` of stage ``s`` runs when ``base_depths[s] + d_{s+1} > p``; its ``e_i`` is conditional
    on ``d_{s+1}`` when some depth choice drops it.

    Example:
        >>> space = resnet_space(ResNetConfig())
        >>> space.n_var, space.choices["d_0"], space.choices["w_5"]
        (29, (0, 2), (0.65, 0.8, 1.0))
        >>> space.conditions["e_3"]
        Condition(parameter='e_3', controller='d_1', values=(2,))
    """
    choices: dict[str, Sequence] = {"d_0": config.stem_depths()}
    choices |= {f"d_{s + 1}": config.depths for s in range(config.n_stages)}
    choices |= {f"e_{i}": config.expand_ratios for i in range(config.n_blocks)}
    choices |= {f"w_{j}": config.width_mults for j in range(config.n_stages + 2)}
    if len(config.resolutions) > 1:
        choices["r"] = config.resolutions
    conditions = []
    index = 0
    for stage, base in enumerate(config.base_depths):
        for position in range(base + max(config.depths)):
            if position >= base + min(config.depths):
                values = tuple(d for d in config.depths if base + d > position)
                conditions.append(Condition(f"e_{index}", f"d_{stage + 1}", values))
            index += 1
    return SearchSpace(choices, conditions)


def _choice(value: object, choices: Sequence, what: str) -> object:
    """The config's own value equal to ``value`` (so floats come out exactly as the config has them)."""
    for choice in choices:
        if not isinstance(value, bool) and value == choice:
            return choice
    raise ValueError(f"{what} is {value!r}, allowed values are {list(choices)}")


def arch_from_ofa_config(ofa_config: Mapping | str, config: ResNetConfig | None = None) -> dict[str, object]:
    """Convert OFA's ``OFAResNets`` arch dict (``{'d': [...], 'e': [...], 'w': [...]}``) to a nastools arch.

    OFA's ``w`` holds indices into ``width_mult_list``; the arch holds the multipliers. OFA skips the
    stem's residual convolution whenever ``d[0]`` is not the largest depth, so ``d_0`` becomes the
    smallest or the largest depth. Expand ratios of blocks beyond their stage's depth are kept
    (``space.canonical`` resets them).

    Args:
        ofa_config: The dict, or its Python-literal string; an ``r`` entry is used when the config
            has several resolutions.
        config: The supernet's config (default: OFA's ``ofa_resnet50``).

    Example:
        >>> arch = arch_from_ofa_config({"d": [0, 1, 2, 0, 2], "e": [0.25] * 18, "w": [0, 1, 2, 2, 1, 0]})
        >>> arch["d_0"], arch["d_2"], arch["e_17"], arch["w_0"], arch["w_5"]
        (0, 2, 0.25, 0.65, 0.65)
    """
    config = ResNetConfig() if config is None else config
    if isinstance(ofa_config, str):
        ofa_config = ast.literal_eval(ofa_config)
    d, e, w = list(ofa_config["d"]), list(ofa_config["e"]), list(ofa_config["w"])
    expected = (config.n_stages + 1, config.n_blocks, config.n_stages + 2)
    if (len(d), len(e), len(w)) != expected:
        raise ValueError(
            f"OFA config has {len(d)} d, {len(e)} e and {len(w)} w entries; this supernet needs {expected}"
        )
    top = max(config.depths)
    arch: dict[str, object] = {
        "d_0": top if _choice(d[0], config.depths, "d[0]") == top else min(config.depths)
    }
    arch |= {f"d_{s}": _choice(v, config.depths, f"d[{s}]") for s, v in enumerate(d[1:], 1)}
    arch |= {f"e_{i}": _choice(v, config.expand_ratios, f"e[{i}]") for i, v in enumerate(e)}
    for j, index in enumerate(w):
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(config.width_mults):
            raise ValueError(f"w[{j}] is {index!r}, OFA's width indices are 0..{len(config.width_mults) - 1}")
        arch[f"w_{j}"] = config.width_mults[index]
    if len(config.resolutions) > 1:
        r = ofa_config.get("r")
        if r is None:
            raise ValueError(
                f"this supernet has resolutions {list(config.resolutions)}; the OFA config needs 'r'"
            )
        arch["r"] = _choice(r[0] if isinstance(r, (list, tuple)) else r, config.resolutions, "r")
    return arch


def arch_to_ofa_config(arch: Mapping[str, object], config: ResNetConfig | None = None) -> dict[str, list]:
    """Inverse of :func:`arch_from_ofa_config`: OFA's ``{'d', 'e', 'w', 'r'}`` dict.

    ``OFAResNets.set_active_subnet(**result)`` activates the same sub-network (it ignores ``r``).

    Args:
        arch: A nastools arch of the supernet with ``config``.
        config: The supernet's config (default: OFA's ``ofa_resnet50``).

    Example:
        >>> arch = arch_from_ofa_config({"d": [2, 1, 2, 0, 2], "e": [0.35] * 18, "w": [2, 1, 0, 0, 1, 2]})
        >>> arch_to_ofa_config(arch)["w"], arch_to_ofa_config(arch)["r"]
        ([2, 1, 0, 0, 1, 2], [224])
    """
    config = ResNetConfig() if config is None else config
    widths = list(config.width_mults)
    return {
        "d": [int(arch[f"d_{s}"]) for s in range(config.n_stages + 1)],
        "e": [float(arch[f"e_{i}"]) for i in range(config.n_blocks)],
        "w": [widths.index(_choice(arch[f"w_{j}"], widths, f"w_{j}")) for j in range(config.n_stages + 2)],
        "r": [int(arch.get("r", config.resolutions[0]))],
    }


class ElasticResNet(nn.Module):
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

    def max_arch(self) -> dict[str, object]:
        """The largest sub-network."""
        return self.space.canonical({n: max(c) for n, c in self.space.choices.items()})

    def min_arch(self) -> dict[str, object]:
        """The smallest sub-network."""
        return self.space.canonical({n: min(c) for n, c in self.space.choices.items()})

    def resolution(self, arch: Mapping[str, object]) -> int:
        """Input resolution of ``arch`` (its ``r``, or the single fixed resolution)."""
        return int(arch.get("r", self.config.resolutions[0]))

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
