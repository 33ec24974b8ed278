"""The elastic Transformer language model: every sub-network's weights are slices of the largest one's.

:class:`TinyLM` is a plain pre-norm, decoder-only Transformer of fixed sizes, built from standard torch
layers. :class:`ElasticLM` holds the largest :class:`TinyLM` and runs any smaller one with the *leading
slices* of its weights (OFA / HAT weight sharing): the first ``embed`` channels, the first ``heads``
attention heads, the first ``ffn`` hidden units, the first ``layers`` blocks. A sub-network runs as the
:class:`TinyLM` of its sizes called with those slices (:func:`torch.func.functional_call`), so training
one trains the shared weights, and :meth:`ElasticLM.extract` copies the same slices into a standalone model.

An arch is a dict ``{"layers": 3, "embed": 96, "heads_0": 4, "ffn_0": 256, ..., "heads_3": 2, "ffn_3": 64}``;
the ``heads_i`` and ``ffn_i`` of layers ``i >= layers`` are ignored.

:class:`ElasticLM` also has the methods of nastools' elastic-network protocol (``space``, ``set_active``,
``max_arch``, ``min_arch``, ``prepare_inputs``, ``sort_channels``, ``get_active_subnet``), so nastools'
weight-sharing trainer trains it too (``tinylm.train.train_with_nastools``).
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from nastools.space import Condition, SearchSpace

__all__ = ["ElasticLM", "LMConfig", "SpaceConfig", "TinyLM", "perplexity", "search_space", "skeleton"]

Arch = Mapping[str, int]


@dataclass(frozen=True)
class LMConfig:
    """Sizes of one (static) :class:`TinyLM`.

    Attributes:
        vocab_size: Number of token ids.
        context: Sequence length (positions have learned embeddings up to it).
        embed: Width of the residual stream, shared by all layers.
        heads: Attention heads of each layer (its length is the number of layers).
        ffn: Hidden width of each layer's feed-forward network.
        head_dim: Width of one attention head.
    """

    vocab_size: int
    context: int
    embed: int
    heads: tuple[int, ...]
    ffn: tuple[int, ...]
    head_dim: int


class Block(nn.Module):
    """One pre-norm Transformer layer: causal multi-head self-attention, then a GELU feed-forward network."""

    def __init__(self, embed: int, heads: int, head_dim: int, ffn: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.norm1 = nn.LayerNorm(embed)
        self.query = nn.Linear(embed, heads * head_dim)
        self.key = nn.Linear(embed, heads * head_dim)
        self.value = nn.Linear(embed, heads * head_dim)
        self.proj = nn.Linear(heads * head_dim, embed)
        self.norm2 = nn.LayerNorm(embed)
        self.fc1 = nn.Linear(embed, ffn)
        self.act = nn.GELU()  # a module, not F.gelu: activation hooks (e.g. the NASWOT proxy) can see it
        self.fc2 = nn.Linear(ffn, embed)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """Causal self-attention of ``x`` ``(batch, seq, embed)``."""
        batch, seq, _ = x.shape

        def split(y: torch.Tensor) -> torch.Tensor:  # (batch, seq, heads*dim) -> (batch, heads, seq, dim)
            return y.view(batch, seq, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        future = torch.ones(seq, seq, dtype=torch.bool, device=x.device).triu(1)
        weights = scores.masked_fill(future, float("-inf")).softmax(dim=-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(batch, seq, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer to the residual stream ``x`` ``(batch, seq, embed)``."""
        x = x + self.attention(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class TinyLM(nn.Module):
    """A character-level, decoder-only Transformer of fixed sizes.

    Args:
        config: Its sizes.
    """

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        self.tokens = nn.Embedding(config.vocab_size, config.embed)
        self.positions = nn.Embedding(config.context, config.embed)
        self.blocks = nn.ModuleList(
            Block(config.embed, h, config.head_dim, f) for h, f in zip(config.heads, config.ffn)
        )
        self.norm = nn.LayerNorm(config.embed)
        self.head = nn.Linear(config.embed, config.vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(batch, seq, vocab_size)`` of token ids ``(batch, seq <= context)``."""
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.tokens(tokens) + self.positions(positions)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


@dataclass(frozen=True)
class SpaceConfig:
    """The elastic choices: the largest network takes the largest of each.

    Attributes:
        layers: Choices of the number of layers.
        embed: Choices of the embedding (residual stream) width.
        heads: Choices of each layer's number of attention heads.
        ffn: Choices of each layer's feed-forward hidden width.
        head_dim: Width of one attention head (fixed).
        context: Sequence length used in training and evaluation (fixed).
    """

    layers: tuple[int, ...] = (1, 2, 3, 4)
    embed: tuple[int, ...] = (64, 96, 128)
    heads: tuple[int, ...] = (2, 4)
    ffn: tuple[int, ...] = (64, 128, 256)
    head_dim: int = 16
    context: int = 64

    @property
    def choices(self) -> dict[str, tuple[int, ...]]:
        """Each arch parameter's choices: ``layers``, ``embed``, then ``heads_i`` and ``ffn_i`` per layer."""
        choices = {"layers": self.layers, "embed": self.embed}
        for i in range(max(self.layers)):
            choices |= {f"heads_{i}": self.heads, f"ffn_{i}": self.ffn}
        return choices

    def extreme(self, pick: type[min] | type[max]) -> dict[str, int]:
        """The smallest (``pick=min``) or largest (``pick=max``) arch."""
        return {name: pick(values) for name, values in self.choices.items()}

    def random(self, rng: random.Random) -> dict[str, int]:
        """An arch drawn uniformly per parameter (training's sampler; it needs nothing from nastools)."""
        return {name: rng.choice(values) for name, values in self.choices.items()}


def search_space(config: SpaceConfig) -> SearchSpace:
    """The nastools space of ``config``: ``heads_i`` and ``ffn_i`` are active only when ``layers > i``."""
    conditions = [
        Condition(f"{kind}_{i}", "layers", tuple(n for n in config.layers if n > i))
        for i in range(min(config.layers), max(config.layers))
        for kind in ("heads", "ffn")
    ]
    return SearchSpace(config.choices, conditions)


@functools.lru_cache(maxsize=256)
def skeleton(config: LMConfig) -> TinyLM:
    """A weightless (``meta`` device) :class:`TinyLM` of ``config``: the code and weight shapes to run."""
    with torch.device("meta"):
        return TinyLM(config)


def _init_weights(module: nn.Module) -> None:
    """GPT-style initialisation: small normal weights, zero biases."""
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear):
        nn.init.zeros_(module.bias)


def perplexity(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """``exp`` of the mean cross-entropy of next-token ``logits`` for ``targets``.

    Args:
        logits: Next-token logits, ``(batch, seq, vocab_size)``.
        targets: The true next token ids, ``(batch, seq)``.
    """
    return math.exp(F.cross_entropy(logits.flatten(0, 1), targets.flatten()).item())


class ElasticLM(nn.Module):
    """The weight-sharing super-network: the largest :class:`TinyLM` and a way to run its sub-networks.

    Args:
        space: The elastic choices.
        vocab_size: Number of token ids.

    Attributes:
        space_config: The elastic choices (``space``).
        space: Their nastools :class:`~nastools.space.SearchSpace`.
    """

    def __init__(self, space: SpaceConfig, vocab_size: int) -> None:
        super().__init__()
        self.space_config, self.vocab_size = space, vocab_size
        self.space = search_space(space)
        self.largest = TinyLM(self.config(space.extreme(max)))
        self.largest.apply(_init_weights)
        self.active = self.max_arch()

    def config(self, arch: Arch) -> LMConfig:
        """The sizes of ``arch``'s sub-network."""
        layers = range(arch["layers"])
        return LMConfig(
            vocab_size=self.vocab_size,
            context=self.space_config.context,
            embed=arch["embed"],
            heads=tuple(arch[f"heads_{i}"] for i in layers),
            ffn=tuple(arch[f"ffn_{i}"] for i in layers),
            head_dim=self.space_config.head_dim,
        )

    def shared_weights(self, config: LMConfig) -> dict[str, torch.Tensor]:
        """The sub-network's weights by name: leading slices of the largest network's same-named weights."""
        full = self.largest.state_dict(keep_vars=True)  # the Parameters themselves: gradients flow back
        return {
            name: full[name][tuple(slice(0, size) for size in weight.shape)]
            for name, weight in skeleton(config).state_dict().items()
        }

    def forward(self, tokens: torch.Tensor, arch: Arch | None = None) -> torch.Tensor:
        """Logits of ``arch``'s sub-network (default: the active one), computed with the shared weights."""
        config = self.config(self.active if arch is None else arch)
        return functional_call(skeleton(config), self.shared_weights(config), (tokens,))

    def max_arch(self) -> dict[str, int]:
        """The largest arch."""
        return self.space_config.extreme(max)

    def min_arch(self) -> dict[str, int]:
        """The smallest arch."""
        return self.space_config.extreme(min)

    def set_active(self, arch: Arch) -> None:
        """Make ``forward(tokens)`` run ``arch``'s sub-network."""
        self.active = dict(arch)

    def prepare_inputs(self, inputs: tuple[torch.Tensor, ...], arch: Arch) -> tuple[torch.Tensor, ...]:
        """Every sub-network reads the same token ids."""
        return inputs

    def sort_channels(self) -> None:
        """Nothing: the weights are used in the order they were trained (no importance sorting here)."""

    def get_active_subnet(self, arch: Arch) -> TinyLM:
        """The standalone copy of ``arch``'s sub-network (:meth:`extract`)."""
        return self.extract(arch)

    def extract(self, arch: Arch) -> TinyLM:
        """A standalone copy of ``arch``'s sub-network (its own weights, in eval mode)."""
        config = self.config(arch)
        model = TinyLM(config)
        model.load_state_dict({n: w.detach().clone() for n, w in self.shared_weights(config).items()})
        return model.eval()
