"""The elastic GPT (HW-GPT-Bench's design) and the static GPT of a sub-network's sizes.

:class:`GPT` is a plain decoder-only Transformer of fixed sizes, as HW-GPT-Bench's GPT-S (its
``gpt_base`` model, a LitGPT GPT-NeoX-style block): pre-norm LayerNorm, GELU (exact) MLP, a fixed head
size, RoPE on the leading channels of each query and key head (no position table), **parallel
residual** (``x + attn(norm_1(x)) + mlp(norm_2(x))``), a final LayerNorm, and the output logits
through the tied input embedding (one tensor; the output projection never has a bias). The fused
query/key/value projection is grouped per head (head 0's q, k, v rows, then head 1's ...), so its
leading rows are the first heads.

:class:`ElasticGPT` holds the largest :class:`GPT` and runs any sub-network as the :class:`GPT` of its
sizes called with the *leading slices* of the largest one's weights
(:mod:`nastools.supernets._elastic`): the first ``embed`` channels everywhere, the first ``heads``
heads and the first ``int(mlp * embed)`` MLP hidden units of each layer, the first ``layers``
layers, and the biases only when ``bias`` is on. HW-GPT-Bench's supernet slices the same way
(``super_modules/linear_super.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from nastools.space import Arch
from nastools.supernets._elastic import extract, run_sliced, skeleton
from nastools.supernets.gpt._config import PARAMETER_DESCRIPTIONS, GPTConfig, GPTSizes
from nastools.supernets.gpt._shapes import count_macs_params

__all__ = ["GPT", "Block", "CausalSelfAttention", "ElasticGPT", "rope_tables"]


def rope_tables(
    seq_len: int, dims: int, base: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """RoPE's cosines and sines ``(seq_len, dims)`` for positions ``0 .. seq_len - 1`` (LitGPT's layout).

    Example:
        >>> cos, sin = rope_tables(4, 2, 10000, torch.device("cpu"))
        >>> cos.shape, float(cos[0, 0]), float(sin[0, 0])
        (torch.Size([4, 2]), 1.0, 0.0)
    """
    frequencies = 1.0 / base ** (torch.arange(0, dims, 2, device=device, dtype=torch.float32) / dims)
    angles = torch.outer(torch.arange(seq_len, device=device, dtype=torch.float32), frequencies)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the leading ``cos.shape[-1]`` channels of heads ``x`` ``(batch, heads, seq, head_size)``."""
    dims = cos.shape[-1]
    if dims == 0:
        return x
    rotated, kept = x[..., :dims], x[..., dims:]
    first, second = rotated[..., : dims // 2], rotated[..., dims // 2 :]
    roped = rotated * cos + torch.cat([-second, first], dim=-1) * sin
    return torch.cat([roped, kept], dim=-1)


class CausalSelfAttention(nn.Module):
    """Causal multi-head self-attention with RoPE and a fixed head size.

    Args:
        embed: Input and output width.
        heads: Number of heads.
        head_size: Width of one head's query, key and value.
        bias: Whether the two projections have biases.
    """

    def __init__(self, embed: int, heads: int, head_size: int, bias: bool) -> None:
        super().__init__()
        self.heads, self.head_size = heads, head_size
        self.attn = nn.Linear(embed, 3 * heads * head_size, bias=bias)  # per head: its q, k, v rows
        self.proj = nn.Linear(heads * head_size, embed, bias=bias)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Attend over ``x`` ``(batch, seq, embed)``: each position sees itself and the ones before it."""
        batch, seq, _ = x.shape
        qkv = self.attn(x).view(batch, seq, self.heads, 3, self.head_size).permute(3, 0, 2, 1, 4)
        query, key, value = apply_rope(qkv[0], cos, sin), apply_rope(qkv[1], cos, sin), qkv[2]
        # explicit products, not scaled_dot_product_attention: torch's flop counter does not see the
        # fused CPU kernel, and the closed-form MACs must equal the counter's
        scores = query @ key.transpose(-2, -1) / math.sqrt(self.head_size)
        future = torch.ones(seq, seq, dtype=torch.bool, device=x.device).triu(1)
        weights = scores.masked_fill(future, float("-inf")).softmax(dim=-1)
        return self.proj((weights @ value).transpose(1, 2).reshape(batch, seq, self.heads * self.head_size))


class MLP(nn.Module):
    """GPT-NeoX's MLP: linear, GELU (exact), linear.

    Args:
        embed: Input and output width.
        hidden: Hidden width.
        bias: Whether the two layers have biases.
    """

    def __init__(self, embed: int, hidden: int, bias: bool) -> None:
        super().__init__()
        self.fc = nn.Linear(embed, hidden, bias=bias)
        self.act = nn.GELU()  # a module, not F.gelu: activation hooks (the NASWOT proxy) see it
        self.proj = nn.Linear(hidden, embed, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the MLP position by position."""
        return self.proj(self.act(self.fc(x)))


class Block(nn.Module):
    """One pre-norm layer with parallel residual: ``x + attn(norm_1(x)) + mlp(norm_2(x))``.

    Args:
        embed: Width of the residual stream.
        heads: Attention heads.
        hidden: MLP hidden width.
        head_size: Width of one head.
        bias: Whether the linear layers have biases.
    """

    def __init__(self, embed: int, heads: int, hidden: int, head_size: int, bias: bool) -> None:
        super().__init__()
        self.norm_1 = nn.LayerNorm(embed)
        self.attn = CausalSelfAttention(embed, heads, head_size, bias)
        self.norm_2 = nn.LayerNorm(embed)
        self.mlp = MLP(embed, hidden, bias)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Apply the layer to the residual stream ``x`` ``(batch, seq, embed)``."""
        return x + self.attn(self.norm_1(x), cos, sin) + self.mlp(self.norm_2(x))


class GPT(nn.Module):
    """A decoder-only GPT of fixed sizes (a sub-network, standalone): token ids in, next-token logits out.

    Args:
        sizes: Its sizes.

    Example:
        >>> sizes = GPTSizes(vocab_size=50, context=16, embed=32, heads=(2,), hidden=(64,), head_size=16)
        >>> GPT(sizes)(torch.zeros(3, 8, dtype=torch.long)).shape
        torch.Size([3, 8, 50])
    """

    def __init__(self, sizes: GPTSizes) -> None:
        super().__init__()
        self.sizes = sizes
        self.wte = nn.Embedding(sizes.vocab_size, sizes.embed)  # also the output projection (tied)
        self.blocks = nn.ModuleList(
            Block(sizes.embed, heads, hidden, sizes.head_size, sizes.bias)
            for heads, hidden in zip(sizes.heads, sizes.hidden)
        )
        self.ln_f = nn.LayerNorm(sizes.embed)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(batch, seq, vocab_size)`` of token ids ``(batch, seq <= context)``."""
        seq = tokens.shape[-1]
        if seq > self.sizes.context:
            raise ValueError(
                f"a sequence of {seq} tokens exceeds the network's context of {self.sizes.context}"
            )
        cos, sin = rope_tables(seq, self.sizes.rotary_dims, self.sizes.rope_base, tokens.device)
        x = self.wte(tokens)
        for block in self.blocks:
            x = block(x, cos, sin)
        return F.linear(self.ln_f(x), self.wte.weight)  # tied output embedding, no bias


def init_weights(network: GPT, generator: torch.Generator | None = None) -> None:
    """GPT-2's initialisation: normal(0, 0.02) weights, zero biases, layer norms at identity.

    The residual projections' weights (attention and MLP outputs) are scaled by ``1 / sqrt(2 * layers)``.

    Args:
        network: The network, initialised in place.
        generator: Draws the weights (None: torch's global generator).
    """
    residual_std = 0.02 / math.sqrt(2 * max(1, network.sizes.n_layers))
    for name, module in network.named_modules():
        if isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear | nn.Embedding):
            std = residual_std if name.endswith(".proj") else 0.02
            nn.init.normal_(module.weight, std=std, generator=generator)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)


class ElasticGPT(nn.Module):
    """The weight-sharing GPT: the largest :class:`GPT` and the sub-networks that slice its weights.

    The elastic-network protocol of the family layer: :meth:`set_active` then :meth:`forward` runs a
    sub-network with the shared weights (training trains them); :meth:`get_active_subnet` copies it out.

    Args:
        config: The shape and the choices of every elastic parameter.
        seed: Seed of the random initial weights; None draws them from torch's global generator (which
            the trainer seeds with its own seed).

    Example:
        >>> config = GPTConfig(vocab_size=40, context=16, embed=(32, 48), layers=(1, 2), heads=(1, 2),
        ...                    mlp=(2, 4), head_size=16)
        >>> net = ElasticGPT(config)
        >>> net.set_active(net.min_arch())
        >>> net(torch.zeros(2, 8, dtype=torch.long)).shape
        torch.Size([2, 8, 40])
    """

    PARAMETER_DESCRIPTIONS = PARAMETER_DESCRIPTIONS

    def __init__(self, config: GPTConfig, seed: int | None = None) -> None:
        super().__init__()
        self.config = config
        self.space = config.space()
        self.largest = GPT(config.sizes(self.max_arch()))
        init_weights(self.largest, None if seed is None else torch.Generator().manual_seed(seed))
        self.set_active(self.max_arch())

    def max_arch(self) -> Arch:
        """The largest sub-network (its ``bias`` is True where the space allows it)."""
        return self.config.extreme_arch(largest=True)

    def min_arch(self) -> Arch:
        """The smallest sub-network."""
        return self.config.extreme_arch(largest=False)

    def set_active(self, arch: Mapping[str, Any]) -> None:
        """Make ``arch`` the sub-network that :meth:`forward` runs (validated; unused slots ignored)."""
        self._active = self.config.sizes(arch)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(batch, seq, vocab_size)`` of the active sub-network (the shared weights)."""
        return run_sliced(self.largest, skeleton(GPT, self._active), tokens)

    def prepare_inputs(
        self, inputs: tuple[torch.Tensor, ...], arch: Mapping[str, Any]
    ) -> tuple[torch.Tensor, ...]:
        """Inputs are token ids for every sub-network: returned as they are."""
        return inputs

    def get_active_subnet(self, arch: Mapping[str, Any]) -> GPT:
        """A standalone :class:`GPT` of ``arch``'s sizes holding copies of its weights (eval mode)."""
        return extract(self.largest, GPT, self.config.sizes(arch))

    def macs_params(self, arch: Mapping[str, Any], seq_len: int) -> tuple[int, int]:
        """Closed-form MACs of one sequence of ``seq_len`` tokens and parameters of ``arch``'s sub-network."""
        return count_macs_params(self.config.sizes(arch), seq_len)

    @torch.no_grad()
    def sort_channels(self) -> None:
        """Sort each layer's MLP hidden units and attention heads by importance, most important first.

        OFA's rule on the largest network: a hidden unit's importance is the L1 norm of its column of
        the MLP's output projection, a head's the L1 norm of its columns of the attention output
        projection. The largest network computes the same function afterwards; smaller sub-networks
        then keep the most important units and heads (their leading slices).
        """
        for block in self.largest.blocks:
            mlp = block.mlp
            order = mlp.proj.weight.abs().sum(dim=0).argsort(descending=True)
            mlp.fc.weight.copy_(mlp.fc.weight[order])
            if mlp.fc.bias is not None:
                mlp.fc.bias.copy_(mlp.fc.bias[order])
            mlp.proj.weight.copy_(mlp.proj.weight[:, order])
            attention = block.attn
            size = attention.head_size
            importance = attention.proj.weight.abs().view(-1, attention.heads, size).sum(dim=(0, 2))
            heads = importance.argsort(descending=True)
            rows = (heads[:, None] * 3 * size + torch.arange(3 * size)).flatten()  # q, k, v rows of each
            columns = (heads[:, None] * size + torch.arange(size)).flatten()
            attention.attn.weight.copy_(attention.attn.weight[rows])
            if attention.attn.bias is not None:
                attention.attn.bias.copy_(attention.attn.bias[rows])
            attention.proj.weight.copy_(attention.proj.weight[:, columns])
