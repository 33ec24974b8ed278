"""The ResNet family's config and search space (torch-free), and OFA's arch dicts.

:class:`ResNetConfig` is the elastic network's shape (OFA's ``ofa_resnet50`` by default);
:func:`resnet_space` its search space. The arch is a flat dict: ``d_0`` (stem residual: smallest or
largest depth choice), ``d_1``..``d_S`` (extra blocks per stage), ``e_0``..``e_{B-1}`` (expand ratio of
each block slot, active only when its stage is deep enough), ``w_0``..``w_{S+1}`` (width multipliers,
the values themselves) and ``r`` (input resolution) when the config allows several.
:func:`arch_from_ofa_config` / :func:`arch_to_ofa_config` convert OFA's ``{'d', 'e', 'w'}`` dicts.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from nastools.space import Condition, SearchSpace
from nastools.supernets._elastic._widths import make_divisible

__all__ = [
    "CHECKPOINT_KIND",
    "ResNetConfig",
    "arch_from_ofa_config",
    "arch_to_ofa_config",
    "bottleneck_mid_channels",
    "resnet_space",
]

#: The ``kind`` written in this family's checkpoints.
CHECKPOINT_KIND = "elastic-resnet"


def bottleneck_mid_channels(out_channels: int, expand_ratio: float) -> int:
    """Inner width of a bottleneck block: OFA's ``make_divisible(round(out_channels * expand_ratio))``.

    Example:
        >>> bottleneck_mid_channels(256, 0.35), bottleneck_mid_channels(2048, 0.2)
        (88, 408)
    """
    return make_divisible(round(out_channels * expand_ratio))


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
