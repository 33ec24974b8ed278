"""The MobileNetV3 family's config and search space (torch-free).

:class:`MobileNetV3Config` is the elastic network's shape (OFA's ``ofa_mbv3_d234_e346_k357_w1.0`` by
default); :func:`mobilenetv3_space` its search space: per-stage depth ``d_s``, per-block kernel size
``ks_i`` and expand ratio ``e_i`` (active only when its stage is deep enough), and the input
resolution ``r`` when several are allowed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from nastools.space import Condition, SearchSpace

__all__ = ["CHECKPOINT_KIND", "OFA_STAGE_WIDTHS", "MobileNetV3Config", "mobilenetv3_space"]

#: The ``kind`` written in this family's checkpoints.
CHECKPOINT_KIND = "elastic-mobilenetv3"
#: OFA's base widths: stem, first block, 5 stages, final expand, feature mix.
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

    Example:
        >>> config = MobileNetV3Config(width_mult=0.5, in_channels=1, n_classes=10, resolutions=(24, 32))
        >>> MobileNetV3Config.from_dict(config.to_dict()) == config, config.space().n_var
        (True, 46)
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
