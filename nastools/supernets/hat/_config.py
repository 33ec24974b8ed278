"""The HAT family's configs and search space (torch-free): HAT's elastic encoder-decoder SuperTransformer.

:class:`HATConfig` is the SuperTransformer's shape and its elastic choices (Wang et al. 2020, "HAT:
Hardware-Aware Transformers"; the defaults are HAT's WMT'14 En-De ``space0``). Its
:meth:`~HATConfig.space` is the search space, parameter for parameter HAT's (and DyNAS-T's):

* ``encembed`` and ``decembed``: the encoder's and the decoder's embedding width (drawn independently);
* ``encffn_i`` and ``encheads_i``: FFN hidden width and self-attention heads of encoder layer ``i``
  (the encoder depth is fixed, as in HAT's space);
* ``declayers``: the number of decoder layers (the first ones are kept);
* ``decffn_i``, ``decheads_i``, ``crossheads_i`` and ``arbattn_i``: FFN width, self-attention heads,
  encoder-decoder attention heads and arbitrary encoder-decoder attention of decoder layer ``i``, active
  only when ``declayers > i`` (so :attr:`~nastools.space.SearchSpace.size` counts distinct networks).

Arbitrary encoder-decoder attention (HAT's values): ``-1`` attends to the last encoder layer's output,
``1`` to the last two, ``2`` to the last three, concatenated along the sequence (HAT's
``transformer_super.py``: ``torch.cat([encoder_out, encoder_out_all[-2], ...], dim=0)`` on time-major
tensors), with the layer's one encoder-attention projection applied to all of them.

Heads follow HAT: the q/k/v width is fixed (``qkv_dim``, 512 in HAT) and the heads only split it (8
heads of 64 channels or 4 of 128), so heads change neither the parameters nor the MACs, only the
computation's grouping (they still make distinct networks: different functions, different latency).

:meth:`HATConfig.sizes` turns an arch into :class:`HATSizes`, the static sizes of its sub-network (what
the static module, the closed-form counts and the weight slicing read).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from nastools.space import Arch, Condition, SearchSpace

__all__ = [
    "ARBITRARY_ATTENTION",
    "CHECKPOINT_KIND",
    "HATConfig",
    "HATSizes",
    "HAT_WMT14_EN_DE_CONFIG",
    "PARAMETER_DESCRIPTIONS",
    "attended_layers",
]

#: The ``kind`` written in this family's checkpoints.
CHECKPOINT_KIND = "elastic-hat"
#: HAT's values of arbitrary encoder-decoder attention and how many last encoder layers each attends to.
ARBITRARY_ATTENTION = {-1: 1, 1: 2, 2: 3}

#: Meaning of each parameter kind, for tables.
PARAMETER_DESCRIPTIONS = {
    "encembed": "encoder embedding width (token embeddings and every encoder layer's residual stream)",
    "encffn": "hidden width of the encoder layer's feed-forward network",
    "encheads": "self-attention heads of the encoder layer (they split the fixed q/k/v width)",
    "decembed": "decoder embedding width (also the width of the shared output projection)",
    "declayers": "number of decoder layers (the first ones are kept; the encoder depth is fixed)",
    "decffn": "hidden width of the decoder layer's feed-forward network",
    "decheads": "self-attention heads of the decoder layer (they split the fixed q/k/v width)",
    "crossheads": "encoder-decoder attention heads of the decoder layer (they split the fixed q/k/v width)",
    "arbattn": "arbitrary encoder-decoder attention of the decoder layer (HAT's values): -1 attends to the "
    "last encoder layer, 1 to the last two, 2 to the last three (concatenated along the sequence)",
}


def attended_layers(arbitrary_attention: int) -> int:
    """How many last encoder layers a decoder layer attends to, for HAT's value ``-1``, ``1`` or ``2``.

    Example:
        >>> [attended_layers(v) for v in (-1, 1, 2)]
        [1, 2, 3]
    """
    try:
        return ARBITRARY_ATTENTION[arbitrary_attention]
    except (KeyError, TypeError):
        raise ValueError(
            f"arbitrary encoder-decoder attention {arbitrary_attention!r} is not one of HAT's values "
            f"{list(ARBITRARY_ATTENTION)} (-1: the last encoder layer, 1: the last two, 2: the last three)"
        ) from None


@dataclass(frozen=True)
class HATSizes:
    """Sizes of one static encoder-decoder Transformer (a sub-network).

    Attributes:
        vocab_size: Rows of the one embedding table shared by the encoder input, the decoder input and
            the output projection (a joint vocabulary).
        encoder_embed: Width of the encoder's token embeddings and residual stream.
        decoder_embed: Width of the decoder's token embeddings, residual stream and output projection.
        encoder_ffn: FFN hidden width of each encoder layer (its length is the encoder depth).
        encoder_heads: Self-attention heads of each encoder layer.
        decoder_ffn: FFN hidden width of each decoder layer (its length is the decoder depth).
        decoder_heads: Self-attention heads of each decoder layer.
        cross_heads: Encoder-decoder attention heads of each decoder layer.
        cross_layers: How many last encoder layers each decoder layer attends to (1, 2 or 3).
        qkv_dim: Width of every attention's queries, keys and values (split by its heads).
        position_width: Width of the sinusoidal position table whose leading columns a part uses (the
            SuperTransformer's widest embedding, as HAT slices it).
        pad_index: The padding token id (masked out of attention).
        eos_index: The end-of-sentence token id (it also starts the decoder's input, as in fairseq).

    Example:
        >>> sizes = HAT_WMT14_EN_DE_CONFIG.sizes(HAT_WMT14_EN_DE_CONFIG.extreme_arch(largest=False))
        >>> sizes.encoder_embed, sizes.decoder_layers, sizes.cross_layers
        (512, 1, (1,))
    """

    vocab_size: int
    encoder_embed: int
    decoder_embed: int
    encoder_ffn: tuple[int, ...]
    encoder_heads: tuple[int, ...]
    decoder_ffn: tuple[int, ...]
    decoder_heads: tuple[int, ...]
    cross_heads: tuple[int, ...]
    cross_layers: tuple[int, ...]
    qkv_dim: int
    position_width: int
    pad_index: int = 1
    eos_index: int = 2

    @property
    def encoder_layers(self) -> int:
        """Number of encoder layers."""
        return len(self.encoder_ffn)

    @property
    def decoder_layers(self) -> int:
        """Number of decoder layers."""
        return len(self.decoder_ffn)

    @property
    def embedding_width(self) -> int:
        """Columns of the shared embedding table: the wider of the two parts' embeddings."""
        return max(self.encoder_embed, self.decoder_embed)


def _check_choices(name: str, values: Any) -> None:
    if (
        not isinstance(values, tuple)
        or not values
        or any(isinstance(v, bool) or not isinstance(v, int) for v in values)
        or list(values) != sorted(set(values))
    ):
        raise ValueError(
            f"HATConfig.{name} must be a non-empty, ascending tuple of distinct integers, got {values!r}"
        )


@dataclass(frozen=True)
class HATConfig:
    """Shape of HAT's elastic SuperTransformer; the defaults are HAT's WMT'14 En-De ``space0``.

    The largest network takes the largest choice of every parameter. Choices are ascending (the first
    is also what an inactive parameter is set to by :meth:`~nastools.space.SearchSpace.canonical`).

    Attributes:
        vocab_size: Joint vocabulary size (one embedding table for both languages and the output).
        encoder_layers: Encoder depth (fixed, as in HAT's space).
        decoder_layers: Choices of the decoder depth.
        encoder_embed: Choices of the encoder embedding width.
        decoder_embed: Choices of the decoder embedding width.
        encoder_ffn: Choices of each encoder layer's FFN hidden width.
        decoder_ffn: Choices of each decoder layer's FFN hidden width.
        encoder_heads: Choices of each encoder layer's self-attention heads.
        decoder_heads: Choices of each decoder layer's self-attention heads.
        cross_heads: Choices of each decoder layer's encoder-decoder attention heads.
        arbitrary_attention: Choices of each decoder layer's arbitrary encoder-decoder attention
            (HAT's values, a subset of ``(-1, 1, 2)``).
        qkv_dim: Width of queries, keys and values of every attention, fixed (512 in HAT).
        sequence_length: Source and target length of one sample for MACs and latency (HAT's 30: "for
            wmt, the average length is 30"); example inputs are padded to it.
        pad_index: Padding token id (fairseq's dictionary layout: ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2,
            ``<unk>`` 3).
        eos_index: End-of-sentence token id; it also starts the decoder input (fairseq's convention).

    Example:
        >>> HAT_WMT14_EN_DE_CONFIG.space().size
        417846678672384
    """

    vocab_size: int = 32768
    encoder_layers: int = 6
    decoder_layers: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    encoder_embed: tuple[int, ...] = (512, 640)
    decoder_embed: tuple[int, ...] = (512, 640)
    encoder_ffn: tuple[int, ...] = (1024, 2048, 3072)
    decoder_ffn: tuple[int, ...] = (1024, 2048, 3072)
    encoder_heads: tuple[int, ...] = (4, 8)
    decoder_heads: tuple[int, ...] = (4, 8)
    cross_heads: tuple[int, ...] = (4, 8)
    arbitrary_attention: tuple[int, ...] = (-1, 1, 2)
    qkv_dim: int = 512
    sequence_length: int = 30
    pad_index: int = 1
    eos_index: int = 2

    def __post_init__(self) -> None:
        """Check every field (one line each, naming the field and what is allowed)."""
        for name in ("vocab_size", "encoder_layers", "qkv_dim", "sequence_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"HATConfig.{name} must be a positive integer, got {value!r}")
        for name in (
            "decoder_layers",
            "encoder_embed",
            "decoder_embed",
            "encoder_ffn",
            "decoder_ffn",
            "encoder_heads",
            "decoder_heads",
            "cross_heads",
            "arbitrary_attention",
        ):
            _check_choices(name, getattr(self, name))
            if name != "arbitrary_attention" and min(getattr(self, name)) < 1:
                raise ValueError(f"HATConfig.{name} choices must be positive, got {getattr(self, name)!r}")
        for value in self.arbitrary_attention:
            if attended_layers(value) > self.encoder_layers:
                raise ValueError(
                    f"HATConfig.arbitrary_attention {value} attends to the last {attended_layers(value)} "
                    f"encoder layers, but the encoder has {self.encoder_layers}"
                )
        for name in ("encoder_heads", "decoder_heads", "cross_heads"):
            uneven = [h for h in getattr(self, name) if self.qkv_dim % h]
            if uneven:
                raise ValueError(
                    f"HATConfig.{name} {uneven} do not divide qkv_dim {self.qkv_dim}: heads split the q/k/v "
                    "width"
                )
        for name in ("pad_index", "eos_index"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < self.vocab_size:
                raise ValueError(f"HATConfig.{name} must be a token id below vocab_size, got {value!r}")
        if self.pad_index == self.eos_index:
            raise ValueError("HATConfig.pad_index and eos_index must differ")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-friendly) of the config."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> HATConfig:
        """Inverse of :meth:`to_dict`; lists become tuples.

        Raises:
            ValueError: A key that is not a field (named), or a value the config rejects.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"HATConfig has no field(s) {unknown}; its fields are {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    @property
    def max_decoder_layers(self) -> int:
        """Decoder layer slots of the largest network."""
        return max(self.decoder_layers)

    def space(self) -> SearchSpace:
        """The search space (see the module docstring); built once per config (cached).

        Decoder layer ``i``'s parameters are active only when ``declayers > i``.
        """
        return _space(self)

    def _build_space(self) -> SearchSpace:
        choices: dict[str, tuple] = {"encembed": self.encoder_embed}
        choices |= {f"encffn_{i}": self.encoder_ffn for i in range(self.encoder_layers)}
        choices |= {f"encheads_{i}": self.encoder_heads for i in range(self.encoder_layers)}
        choices |= {"decembed": self.decoder_embed, "declayers": self.decoder_layers}
        conditions = []
        for kind, values in (
            ("decffn", self.decoder_ffn),
            ("decheads", self.decoder_heads),
            ("crossheads", self.cross_heads),
            ("arbattn", self.arbitrary_attention),
        ):
            for i in range(self.max_decoder_layers):
                choices[f"{kind}_{i}"] = values
                if i >= min(self.decoder_layers):
                    deeper = tuple(n for n in self.decoder_layers if n > i)
                    conditions.append(Condition(f"{kind}_{i}", "declayers", deeper))
        return SearchSpace(choices, conditions)

    def extreme_arch(self, largest: bool) -> Arch:
        """The largest (``largest=True``) or smallest sub-network: every choice at its maximum or minimum.

        More decoder layers, wider embeddings and FFNs, more heads and more attended encoder layers
        (``-1 < 1 < 2``) each make a network larger or costlier, so these are the space's extremes.
        """
        space = self.space()
        pick = max if largest else min
        return space.canonical({name: pick(values) for name, values in space.choices.items()})

    def sizes(self, arch: Mapping[str, Any]) -> HATSizes:
        """The static sizes of ``arch``'s sub-network (``arch`` is validated against :meth:`space`)."""
        arch = self.space().canonical(arch)
        encoder, decoder = range(self.encoder_layers), range(int(arch["declayers"]))
        return HATSizes(
            vocab_size=self.vocab_size,
            encoder_embed=int(arch["encembed"]),
            decoder_embed=int(arch["decembed"]),
            encoder_ffn=tuple(int(arch[f"encffn_{i}"]) for i in encoder),
            encoder_heads=tuple(int(arch[f"encheads_{i}"]) for i in encoder),
            decoder_ffn=tuple(int(arch[f"decffn_{i}"]) for i in decoder),
            decoder_heads=tuple(int(arch[f"decheads_{i}"]) for i in decoder),
            cross_heads=tuple(int(arch[f"crossheads_{i}"]) for i in decoder),
            cross_layers=tuple(attended_layers(int(arch[f"arbattn_{i}"])) for i in decoder),
            qkv_dim=self.qkv_dim,
            position_width=max(max(self.encoder_embed), max(self.decoder_embed)),
            pad_index=self.pad_index,
            eos_index=self.eos_index,
        )


@functools.lru_cache(maxsize=32)
def _space(config: HATConfig) -> SearchSpace:
    return config._build_space()


#: HAT's WMT'14 En-De SuperTransformer (``configs/wmt14.en-de/supertransformer/space0.yml``) with a
#: 32,768-token joint vocabulary: the cap HAT's preprocessing sets (``--nwordssrc 32768
#: --joined-dictionary``; fairseq counts its 4 special symbols in it and pads to a multiple of 8). The
#: repository does not state the dictionary's final length, so this is its upper bound; only the shared
#: embedding (32,768 x 640 = 21.0 M parameters) and the output projection's MACs depend on it.
HAT_WMT14_EN_DE_CONFIG = HATConfig()
