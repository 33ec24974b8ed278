"""The GPT family's configs and search space (torch-free): HW-GPT-Bench's elastic GPT.

:class:`GPTConfig` is the elastic network's shape: the vocabulary, the longest sequence, the fixed
head size, and the choices of each elastic parameter. Its :meth:`~GPTConfig.space` is the search
space: ``layers`` (global), ``embed`` (global), ``bias`` (global), and per layer slot ``i`` the
attention heads ``heads_i`` and the MLP ratio ``mlp_i`` (hidden width = ratio x embed), active only
when ``layers > i``. :meth:`GPTConfig.sizes` turns an arch into :class:`GPTSizes`, the static sizes of
its sub-network (what the static module, the closed-form counts and the weight slicing read).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from nastools.space import Arch, Condition, SearchSpace

__all__ = ["CHECKPOINT_KIND", "GPT_S_CONFIG", "PARAMETER_DESCRIPTIONS", "GPTConfig", "GPTSizes"]

#: The ``kind`` written in this family's checkpoints.
CHECKPOINT_KIND = "elastic-gpt"

#: Meaning of each parameter kind, for tables.
PARAMETER_DESCRIPTIONS = {
    "layers": "number of Transformer layers (the first ones are kept)",
    "embed": "embedding (residual stream) width, shared by all layers and the tied input/output embedding",
    "bias": "whether the linear layers have biases (global; the tied output embedding never has one)",
    "heads": "attention heads of the layer (fixed head size: the width of q, k and v is heads x head size)",
    "mlp": "MLP ratio of the layer: its hidden width is ratio x embed",
}


@dataclass(frozen=True)
class GPTSizes:
    """Sizes of one static GPT (a sub-network): what its module, MACs and parameters follow from.

    Attributes:
        vocab_size: Number of token ids (rows of the tied embedding).
        context: Longest sequence the network accepts.
        embed: Width of the residual stream.
        heads: Attention heads of each layer (its length is the number of layers).
        hidden: MLP hidden width of each layer.
        head_size: Width of one head's query, key and value.
        bias: Whether the linear layers have biases.
        rotary_dims: Leading channels of each query and key head rotated by RoPE (even).
        rope_base: RoPE's base of the rotation frequencies.

    Example:
        >>> GPTSizes(vocab_size=50, context=32, embed=64, heads=(2, 4), hidden=(128, 256)).n_layers
        2
    """

    vocab_size: int
    context: int
    embed: int
    heads: tuple[int, ...]
    hidden: tuple[int, ...]
    head_size: int = 64
    bias: bool = True
    rotary_dims: int = 16
    rope_base: int = 10000

    @property
    def n_layers(self) -> int:
        """Number of Transformer layers."""
        return len(self.heads)


def _check_choices(name: str, values: Any, kind: type) -> None:
    if (
        not isinstance(values, tuple)
        or not values
        or any(isinstance(v, bool) != (kind is bool) or not isinstance(v, kind) for v in values)
        or len(set(values)) != len(values)
    ):
        raise ValueError(
            f"GPTConfig.{name} must be a non-empty tuple of distinct {kind.__name__} choices, got {values!r}"
        )
    if kind is not bool and min(values) <= 0:
        raise ValueError(f"GPTConfig.{name} choices must be positive, got {values!r}")


@dataclass(frozen=True)
class GPTConfig:
    """Shape of an elastic GPT (HW-GPT-Bench's design); the largest network takes the largest choices.

    Attributes:
        vocab_size: Number of token ids.
        context: Longest sequence (HW-GPT-Bench's ``block_size``); RoPE needs no position table.
        embed: Choices of the embedding width (global).
        layers: Choices of the number of layers (global; the first layers are kept).
        heads: Choices of each layer's number of attention heads.
        mlp: Choices of each layer's MLP ratio (hidden width = ``int(ratio * embed)``).
        bias: Choices of the global bias switch of the linear layers.
        head_size: Width of one attention head, fixed (64 in HW-GPT-Bench).
        rotary_fraction: Share of each head's channels rotated by RoPE (HW-GPT-Bench's
            ``rotary_percentage``: 0.25 in its latency and memory profilers, 0.5 in training).
        rope_base: RoPE's base of the rotation frequencies.

    Example:
        >>> GPT_S_CONFIG.space().size
        1903784282946
    """

    vocab_size: int
    context: int
    embed: tuple[int, ...]
    layers: tuple[int, ...]
    heads: tuple[int, ...]
    mlp: tuple[int | float, ...]
    bias: tuple[bool, ...] = (False, True)
    head_size: int = 64
    rotary_fraction: float = 0.25
    rope_base: int = 10000

    def __post_init__(self) -> None:
        """Check every field (one line each, naming the field and what is allowed)."""
        for name in ("vocab_size", "context", "head_size", "rope_base"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        for name, kind in (("embed", int), ("layers", int), ("heads", int), ("bias", bool)):
            _check_choices(name, getattr(self, name), kind)
        if not isinstance(self.mlp, tuple) or not all(
            isinstance(r, int | float) and not isinstance(r, bool) for r in self.mlp
        ):
            raise ValueError(f"GPTConfig.mlp must be a tuple of numeric MLP ratios, got {self.mlp!r}")
        _check_choices("mlp", tuple(float(r) for r in self.mlp), float)
        if min(int(r * e) for r in self.mlp for e in self.embed) < 1:
            raise ValueError(f"GPTConfig.mlp ratios {self.mlp} give an empty MLP at embed {min(self.embed)}")
        if not 0 <= self.rotary_fraction <= 1 or int(self.rotary_fraction * self.head_size) % 2:
            raise ValueError(
                f"GPTConfig.rotary_fraction must be in [0, 1] and rotate an even number of the "
                f"{self.head_size} channels of a head, got {self.rotary_fraction}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-friendly) of the config."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> GPTConfig:
        """Inverse of :meth:`to_dict`; lists become tuples.

        Raises:
            ValueError: A key that is not a field (named), or a value the config rejects.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"GPTConfig has no field(s) {unknown}; its fields are {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    @property
    def max_layers(self) -> int:
        """Layer slots of the largest network."""
        return max(self.layers)

    @property
    def rotary_dims(self) -> int:
        """Channels of each query and key head that RoPE rotates."""
        return int(self.rotary_fraction * self.head_size)

    def space(self) -> SearchSpace:
        """The search space: ``layers``, ``embed``, ``bias``, then ``heads_i`` and ``mlp_i`` per layer slot.

        ``heads_i`` and ``mlp_i`` are active only when ``layers > i``, so :attr:`SearchSpace.size`
        counts distinct networks. Built once per config (cached).
        """
        return _space(self)

    def _build_space(self) -> SearchSpace:
        choices: dict[str, tuple] = {"layers": self.layers, "embed": self.embed, "bias": self.bias}
        conditions = []
        for i in range(self.max_layers):
            choices[f"heads_{i}"], choices[f"mlp_{i}"] = self.heads, self.mlp
            if i >= min(self.layers):
                deeper = tuple(n for n in self.layers if n > i)
                conditions += [
                    Condition(f"heads_{i}", "layers", deeper),
                    Condition(f"mlp_{i}", "layers", deeper),
                ]
        return SearchSpace(choices, conditions)

    def extreme_arch(self, largest: bool) -> Arch:
        """The largest (``largest=True``) or smallest sub-network: every choice at its maximum or minimum."""
        space = self.space()
        pick = max if largest else min
        return space.canonical({name: pick(values) for name, values in space.choices.items()})

    def sizes(self, arch: Mapping[str, Any]) -> GPTSizes:
        """The static sizes of ``arch``'s sub-network (``arch`` is validated against :meth:`space`)."""
        arch = self.space().canonical(arch)
        layers = range(int(arch["layers"]))
        embed = int(arch["embed"])
        return GPTSizes(
            vocab_size=self.vocab_size,
            context=self.context,
            embed=embed,
            heads=tuple(int(arch[f"heads_{i}"]) for i in layers),
            hidden=tuple(int(arch[f"mlp_{i}"] * embed) for i in layers),
            head_size=self.head_size,
            bias=bool(arch["bias"]),
            rotary_dims=self.rotary_dims,
            rope_base=self.rope_base,
        )


@functools.lru_cache(maxsize=32)
def _space(config: GPTConfig) -> SearchSpace:
    return config._build_space()


#: HW-GPT-Bench's GPT-S space (``search_spaces["s"]``, ``configs/config_train/owt_s.yaml``): vocabulary
#: 50,254 as its config states (``padded_vocab_size`` 50,254, not GPT-2's 50,257), context 1024, head
#: size 64, RoPE on a quarter of each head (its latency and memory profilers' setting).
GPT_S_CONFIG = GPTConfig(
    vocab_size=50254,
    context=1024,
    embed=(192, 384, 768),
    layers=(10, 11, 12),
    heads=(4, 8, 12),
    mlp=(2, 3, 4),
    bias=(False, True),
    head_size=64,
    rotary_fraction=0.25,
)
