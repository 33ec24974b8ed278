"""HAT's encoder-decoder Transformer as a static module, and the elastic network that shares its weights.

:class:`HATTransformer` is a plain encoder-decoder Transformer of fixed sizes (:class:`HATSizes`), as
HAT's ``transformer_super.py`` computes it: post-norm layers (normalisation after each residual
addition, no final norm), ReLU feed-forward networks, sinusoidal positions (the leading columns of the
widest part's table, as HAT slices them), token embeddings scaled by ``sqrt(embed)``, one embedding
table shared by the source, the target and the output projection (the encoder uses its first
``encoder_embed`` columns, the decoder and the output projection the first ``decoder_embed``), and
arbitrary encoder-decoder attention (decoder layer ``i`` attends to the last 1, 2 or 3 encoder layers'
outputs, concatenated along the sequence). Every attention projects to the fixed ``qkv_dim`` channels,
which its heads split.

It decodes teacher-forced (:meth:`HATTransformer.forward`, all target positions at once under a causal
mask) or incrementally (:meth:`HATTransformer.start_decoding`, then :meth:`HATTransformer.decode_step`
once per token), with each layer's self-attention keys and values cached as they grow and its
encoder-decoder keys and values projected once and cached (fairseq's ``incremental_state`` and
``static_kv``): what greedy translation (:func:`nastools.tasks.translation.greedy_translate`) and
the latency workload (:func:`decoding_workload`) run.

:class:`ElasticHAT` holds the largest :class:`HATTransformer` and runs any sub-network as the
:class:`HATTransformer` of its sizes called with the leading slices of the largest one's weights
(:mod:`nastools.supernets._elastic`; HAT's ``sample_weight`` slices the same way): the first channels of
every width, the first hidden units of every FFN, the first decoder layers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from nastools.space import SearchSpace
from nastools.supernets._elastic import ElasticNetwork, extract, run_sliced, skeleton
from nastools.supernets.hat._config import HATConfig, HATSizes
from nastools.supernets.hat._shapes import count_macs_params

__all__ = [
    "DecoderState",
    "ElasticHAT",
    "EncoderOutput",
    "HATTransformer",
    "decoding_workload",
    "sinusoids",
]


@functools.lru_cache(maxsize=32)
def _sinusoid_table(width: int, length: int) -> np.ndarray:
    """The table in float64, read-only: a cached array, not a tensor (see :func:`sinusoids`)."""
    half = width // 2
    rates = np.exp(np.arange(half, dtype=np.float64) * -(math.log(10000.0) / max(half - 1, 1)))
    angles = np.arange(length, dtype=np.float64)[:, None] * rates[None, :]
    table = np.concatenate([np.sin(angles), np.cos(angles), np.zeros((length, width % 2))], axis=1)
    table.flags.writeable = False
    return table


def sinusoids(width: int, start: int, length: int, like: torch.Tensor) -> torch.Tensor:
    """Rows ``start .. start + length - 1`` of fairseq's sinusoidal position table of ``width`` columns.

    Sines in the first half of the columns, cosines in the second (fairseq's
    ``SinusoidalPositionalEmbedding``), in ``like``'s dtype and device. The table is computed once
    per width and cached as an array, not as a tensor: a tensor made while ``torch.export`` or
    ``torch.jit.trace`` runs the module is a tracing one, and a cached one would break every later call.

    Example:
        >>> sinusoids(8, 0, 3, torch.zeros(1)).shape
        torch.Size([3, 8])
    """
    # int(): under torch.jit.trace a shape is a tensor (the trace keeps the traced length, as
    # torch.export's program does: exports are of the example inputs' fixed sequence length)
    start, end = int(start), int(start + length)
    rows = max(256, 1 << (end - 1).bit_length())  # a few cached tables cover every length
    return torch.tensor(_sinusoid_table(width, rows)[start:end], dtype=like.dtype, device=like.device)


class Attention(nn.Module):
    """Multi-head attention with HAT's fixed q/k/v width: ``heads`` heads of ``qkv_dim // heads`` channels.

    Args:
        query_embed: Width of the queries' input (and of the output).
        key_embed: Width of the keys' and values' input.
        qkv_dim: Width of the projected queries, keys and values.
        heads: Number of heads splitting them.
    """

    def __init__(self, query_embed: int, key_embed: int, qkv_dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, qkv_dim // heads
        self.q_proj = nn.Linear(query_embed, qkv_dim)
        self.k_proj = nn.Linear(key_embed, qkv_dim)
        self.v_proj = nn.Linear(key_embed, qkv_dim)
        self.out_proj = nn.Linear(qkv_dim, query_embed)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, length, qkv_dim)`` to ``(batch, heads, length, head_dim)``."""
        return x.view(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def keys_values(self, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The projected keys and values of ``keys`` ``(batch, length, key_embed)``, split into heads."""
        return self._split(self.k_proj(keys)), self._split(self.v_proj(keys))

    def attend(
        self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """Attention of ``query`` ``(batch, length, query_embed)`` over projected ``keys`` and ``values``.

        Args:
            query: The queries' input.
            keys: Projected keys, ``(batch, heads, key_length, head_dim)``.
            values: Projected values, the same shape.
            mask: True where a query may not look, broadcastable to ``(batch, heads, length, key_length)``.
        """
        batch, length, _ = query.shape
        scores = (self._split(self.q_proj(query)) * self.head_dim**-0.5) @ keys.transpose(-2, -1)
        if mask is not None:
            scores = scores.masked_fill(mask, float("-inf"))
        mixed = scores.softmax(dim=-1) @ values
        return self.out_proj(mixed.transpose(1, 2).reshape(batch, length, -1))

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Attention of ``query`` over ``keys`` (which give the values too)."""
        return self.attend(query, *self.keys_values(keys), mask)


class EncoderLayer(nn.Module):
    """A post-norm Transformer encoder layer: self-attention, then a ReLU FFN, each added and normalised."""

    def __init__(self, embed: int, ffn: int, heads: int, qkv_dim: int) -> None:
        super().__init__()
        self.self_attn = Attention(embed, embed, qkv_dim, heads)
        self.self_attn_layer_norm = nn.LayerNorm(embed)
        self.fc1 = nn.Linear(embed, ffn)
        self.act = nn.ReLU()  # a module, not F.relu: activation hooks (e.g. the NASWOT proxy) see it
        self.fc2 = nn.Linear(ffn, embed)
        self.final_layer_norm = nn.LayerNorm(embed)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        """The layer on ``x`` ``(batch, length, embed)``; ``padding_mask`` ``(batch, 1, 1, length)``."""
        x = self.self_attn_layer_norm(x + self.self_attn(x, x, padding_mask))
        return self.final_layer_norm(x + self.fc2(self.act(self.fc1(x))))


@dataclass
class EncoderOutput:
    """What the decoder reads of an encoded batch.

    Attributes:
        states: Each encoder layer's output, ``(batch, source_length, encoder_embed)``, first to last.
        padding_mask: True at padded source positions, ``(batch, source_length)``.
    """

    states: list[torch.Tensor]
    padding_mask: torch.Tensor

    def memory(self, attended: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The last ``attended`` layers' outputs concatenated along the sequence (last first), and their mask.

        HAT's order: ``[encoder_out, encoder_out_all[-2], encoder_out_all[-3]][:attended]``.
        """
        states = [self.states[-1 - k] for k in range(attended)]
        mask = torch.cat([self.padding_mask] * attended, dim=1)
        return torch.cat(states, dim=1), mask[:, None, None, :]

    def repeat_interleave(self, repeats: int) -> EncoderOutput:
        """Each sentence's encoding repeated ``repeats`` times in a row (the rows of a beam)."""
        return EncoderOutput(
            [s.repeat_interleave(repeats, dim=0) for s in self.states],
            self.padding_mask.repeat_interleave(repeats, dim=0),
        )


@dataclass
class DecoderState:
    """The cached state of incremental decoding (fairseq's ``incremental_state``).

    Attributes:
        step: Target positions decoded so far.
        cross: Each decoder layer's encoder-decoder keys and values (projected once) and their mask.
        keys: Each decoder layer's self-attention keys of the positions decoded so far (grown per step).
        values: The same for the values.
    """

    step: int
    cross: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    keys: list[torch.Tensor | None] = field(default_factory=list)
    values: list[torch.Tensor | None] = field(default_factory=list)


class DecoderLayer(nn.Module):
    """A post-norm Transformer decoder layer: causal self-attention, encoder-decoder attention, ReLU FFN."""

    def __init__(
        self, embed: int, encoder_embed: int, ffn: int, heads: int, cross_heads: int, qkv: int
    ) -> None:
        super().__init__()
        self.self_attn = Attention(embed, embed, qkv, heads)
        self.self_attn_layer_norm = nn.LayerNorm(embed)
        self.encoder_attn = Attention(embed, encoder_embed, qkv, cross_heads)
        self.encoder_attn_layer_norm = nn.LayerNorm(embed)
        self.fc1 = nn.Linear(embed, ffn)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(ffn, embed)
        self.final_layer_norm = nn.LayerNorm(embed)

    def _rest(self, x: torch.Tensor, cross: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x = self.encoder_attn_layer_norm(x + self.encoder_attn.attend(x, *cross))
        return self.final_layer_norm(x + self.fc2(self.act(self.fc1(x))))

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor, causal_mask: torch.Tensor
    ) -> torch.Tensor:
        """All target positions at once (teacher forcing) over the encoder ``memory`` it attends to."""
        x = self.self_attn_layer_norm(x + self.self_attn(x, x, causal_mask))
        return self._rest(x, (*self.encoder_attn.keys_values(memory), memory_mask))

    def step(self, x: torch.Tensor, state: DecoderState, index: int) -> torch.Tensor:
        """The newest position ``x`` ``(batch, 1, embed)``; appends its keys and values to ``state``."""
        keys, values = self.self_attn.keys_values(x)
        if state.keys[index] is not None:
            keys = torch.cat([state.keys[index], keys], dim=2)
            values = torch.cat([state.values[index], values], dim=2)
        state.keys[index], state.values[index] = keys, values
        x = self.self_attn_layer_norm(x + self.self_attn.attend(x, keys, values, None))
        return self._rest(x, state.cross[index])


class HATTransformer(nn.Module):
    """An encoder-decoder Transformer of fixed sizes (a HAT sub-network; see the module docstring).

    Args:
        sizes: Its sizes.

    Example:
        >>> from nastools.supernets.hat._config import HATConfig
        >>> config = HATConfig(vocab_size=20, encoder_layers=3, decoder_layers=(1, 2), encoder_embed=(16,),
        ...                    decoder_embed=(16,), encoder_ffn=(32,), decoder_ffn=(32,), encoder_heads=(2,),
        ...                    decoder_heads=(2,), cross_heads=(2,), qkv_dim=16)
        >>> model = HATTransformer(config.sizes(config.extreme_arch(largest=True)))
        >>> model(torch.tensor([[5, 6, 2]]), torch.tensor([[2, 7]])).shape
        torch.Size([1, 2, 20])
    """

    def __init__(self, sizes: HATSizes) -> None:
        super().__init__()
        self.sizes = sizes
        self.embed_tokens = nn.Embedding(sizes.vocab_size, sizes.embedding_width, padding_idx=sizes.pad_index)
        self.encoder = nn.ModuleDict(
            {
                "layers": nn.ModuleList(
                    EncoderLayer(sizes.encoder_embed, ffn, heads, sizes.qkv_dim)
                    for ffn, heads in zip(sizes.encoder_ffn, sizes.encoder_heads)
                )
            }
        )
        self.decoder = nn.ModuleDict(
            {
                "layers": nn.ModuleList(
                    DecoderLayer(sizes.decoder_embed, sizes.encoder_embed, ffn, heads, cross, sizes.qkv_dim)
                    for ffn, heads, cross in zip(sizes.decoder_ffn, sizes.decoder_heads, sizes.cross_heads)
                )
            }
        )

    def _embed(self, tokens: torch.Tensor, width: int, start: int = 0) -> torch.Tensor:
        """Scaled token embeddings (the table's first ``width`` columns) plus sinusoidal positions."""
        weight = self.embed_tokens.weight[:, :width]
        x = F.embedding(tokens, weight, padding_idx=self.sizes.pad_index) * math.sqrt(width)
        return x + sinusoids(self.sizes.position_width, start, tokens.shape[1], x)[:, :width]

    def encode(self, src_tokens: torch.Tensor) -> EncoderOutput:
        """Encode source token ids ``(batch, source_length)`` (right-padded with ``pad_index``)."""
        padding_mask = src_tokens.eq(self.sizes.pad_index)
        x = self._embed(src_tokens, self.sizes.encoder_embed)
        states = []
        for layer in self.encoder["layers"]:
            x = layer(x, padding_mask[:, None, None, :])
            states.append(x)
        return EncoderOutput(states, padding_mask)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.embed_tokens.weight[:, : self.sizes.decoder_embed])

    def decode(self, prev_tokens: torch.Tensor, encoded: EncoderOutput) -> torch.Tensor:
        """Teacher-forced decoding: next-token logits ``(batch, target_length, vocab)`` of every position.

        Args:
            prev_tokens: The decoder's input, ``eos_index`` then the target shifted right.
            encoded: The source's encoding.
        """
        x = self._embed(prev_tokens, self.sizes.decoder_embed)
        length = prev_tokens.shape[1]
        causal_mask = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
        memories = {n: encoded.memory(n) for n in set(self.sizes.cross_layers)}
        for layer, attended in zip(self.decoder["layers"], self.sizes.cross_layers):
            x = layer(x, *memories[attended], causal_mask)
        return self._logits(x)

    def forward(self, src_tokens: torch.Tensor, prev_tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``(batch, target_length, vocab)`` of a source and the decoder's input."""
        return self.decode(prev_tokens, self.encode(src_tokens))

    def start_decoding(self, encoded: EncoderOutput) -> DecoderState:
        """The state incremental decoding starts from: every layer's encoder-decoder keys and values."""
        cross = []
        for layer, attended in zip(self.decoder["layers"], self.sizes.cross_layers):
            memory, mask = encoded.memory(attended)
            cross.append((*layer.encoder_attn.keys_values(memory), mask))
        n = self.sizes.decoder_layers
        return DecoderState(step=0, cross=cross, keys=[None] * n, values=[None] * n)

    def decode_step(self, tokens: torch.Tensor, state: DecoderState) -> torch.Tensor:
        """Next-token logits ``(batch, vocab)`` after feeding ``tokens`` ``(batch,)`` at ``state.step``.

        Only the newest token is computed; earlier positions' keys and values come from ``state``,
        which this call extends.
        """
        x = self._embed(tokens[:, None], self.sizes.decoder_embed, start=state.step)
        for index, layer in enumerate(self.decoder["layers"]):
            x = layer.step(x, state, index)
        state.step += 1
        return self._logits(x[:, 0])


@torch.no_grad()
def decoding_workload(model: HATTransformer, src_tokens: torch.Tensor, steps: int, beam: int) -> torch.Tensor:
    """HAT's latency workload: encode once, then ``steps`` incremental decoding steps on ``beam`` rows each.

    As HAT's ``measure_latency`` (and DyNAS-T's): the encoder output is replicated to ``beam`` rows per
    sentence, and the decoder runs ``steps`` incremental steps with cached self-attention and
    encoder-decoder keys and values, every step projecting onto the whole vocabulary; each row is fed
    its previous argmax. Beam-search bookkeeping (top-k over the beam, reordering the cache) is left
    out, as HAT's timing leaves it out; no early stop, so the work does not depend on the weights.

    Returns:
        The last step's logits ``(batch * beam, vocab)``.
    """
    state = model.start_decoding(model.encode(src_tokens).repeat_interleave(beam))
    rows = src_tokens.shape[0] * beam
    tokens = torch.full((rows,), model.sizes.eos_index, dtype=torch.long, device=src_tokens.device)
    logits = None
    for _ in range(steps):
        logits = model.decode_step(tokens, state)
        tokens = logits.argmax(dim=-1)
    return logits


def _init_weights(module: nn.Module) -> None:
    """Fairseq's Transformer initialisation: Xavier-uniform linear weights, zero biases, normal embeddings."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=module.embedding_dim**-0.5)
        with torch.no_grad():
            module.weight[module.padding_idx].zero_()


class ElasticHAT(ElasticNetwork):
    """HAT's SuperTransformer: the largest :class:`HATTransformer` and a way to run its sub-networks.

    The elastic network protocol of :mod:`nastools.supernets._training`: :meth:`set_active`, then
    ``forward(src_tokens, prev_tokens)`` runs that sub-network with the shared weights (the leading
    slices of the largest network's); :meth:`get_active_subnet` copies them into a standalone module.
    Weights are initialised from torch's global random generator (seed it first).

    Args:
        config: The SuperTransformer's shape and elastic choices.

    Example:
        >>> from nastools.supernets.hat._config import HATConfig
        >>> config = HATConfig(vocab_size=20, encoder_layers=3, decoder_layers=(1, 2), encoder_embed=(8, 16),
        ...                    decoder_embed=(8, 16), encoder_ffn=(16, 32), decoder_ffn=(16, 32),
        ...                    encoder_heads=(1, 2), decoder_heads=(1, 2), cross_heads=(1, 2), qkv_dim=16)
        >>> net = ElasticHAT(config)
        >>> net.set_active(net.min_arch())
        >>> net(torch.tensor([[5, 6, 2]]), torch.tensor([[2, 7]])).shape
        torch.Size([1, 2, 20])
    """

    def __init__(self, config: HATConfig) -> None:
        super().__init__()
        self.config = config
        self.space: SearchSpace = config.space()
        self.largest = HATTransformer(config.sizes(self.max_arch()))
        self.largest.apply(_init_weights)
        self.active_sizes = self.largest.sizes

    def set_active(self, arch: Mapping[str, Any]) -> None:
        """Make :meth:`forward` run ``arch``'s sub-network (validated against :attr:`space`)."""
        self.active_sizes = self.config.sizes(arch)

    def forward(self, src_tokens: torch.Tensor, prev_tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``(batch, target_length, vocab)`` of the active sub-network (shared)."""
        return run_sliced(self.largest, skeleton(HATTransformer, self.active_sizes), src_tokens, prev_tokens)

    @torch.no_grad()
    def sort_channels(self) -> None:
        """Sort every layer's FFN hidden units by importance, so that narrower FFNs keep the important ones.

        OFA's rule: a hidden unit's importance is the L1 norm of its outgoing weights (its column of
        ``fc2``); ``fc1``'s rows and biases and ``fc2``'s columns are permuted alike, which leaves the
        largest network's function unchanged. Embedding widths are not sorted (HAT sorts nothing; the
        one embedding table is shared by both parts at different widths).
        """
        for layer in [*self.largest.encoder["layers"], *self.largest.decoder["layers"]]:
            order = layer.fc2.weight.abs().sum(dim=0).argsort(descending=True)
            layer.fc1.weight.copy_(layer.fc1.weight[order])
            layer.fc1.bias.copy_(layer.fc1.bias[order])
            layer.fc2.weight.copy_(layer.fc2.weight[:, order])

    def get_active_subnet(self, arch: Mapping[str, Any]) -> HATTransformer:
        """A standalone :class:`HATTransformer` of ``arch`` holding copies of its weights (eval mode)."""
        return extract(self.largest, HATTransformer, self.config.sizes(arch))

    def macs_params(self, arch: Mapping[str, Any]) -> tuple[int, int]:
        """Closed-form MACs (one teacher-forced forward, ``config.sequence_length`` tokens) and parameters."""
        return count_macs_params(self.config, arch)
