"""Closed-form MACs and parameters of a HAT sub-network (torch-free), equal to the counters on its module.

What one forward is (HAT's ``--profile-flops``, which DyNAS-T reuses): one teacher-forced pass of a
batch of one, a source of ``S`` and a target of ``T`` tokens (``S = T = 30`` for WMT), with no beam and
no incremental decoding. MACs count what :func:`nastools.supernet.count_macs` counts: every linear
layer (q/k/v and output projections, FFNs, the output projection onto the vocabulary) and both
attention products (scores ``q k^T`` and their weighted sum of ``v``, over all heads: ``len_q x len_k x
qkv_dim`` each); embedding look-ups, positions, normalisation, softmax and biases count nothing.
HAT profiles the same forward (torchprofile) and reports FLOPs = 2 x MACs.

Parameters are those of the standalone sub-network, all of them: the one shared embedding table
(``vocab_size x max(encoder_embed, decoder_embed)``, which is also the output projection) included.
HAT's own count (``get_sampled_params_numel``, "SubTransformer size (without embedding weights)")
leaves the embedding out: :func:`hat_params` gives it with ``embeddings=False``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nastools.supernets.hat._config import HATConfig, HATSizes

__all__ = ["count_macs_params", "hat_macs", "hat_params"]


def _attention_macs(query_length: int, key_length: int, query_embed: int, key_embed: int, qkv: int) -> int:
    projections = query_length * query_embed * qkv  # queries
    projections += 2 * key_length * key_embed * qkv  # keys and values
    projections += query_length * qkv * query_embed  # output projection
    return projections + 2 * query_length * key_length * qkv  # scores, then their weighted sum of values


def hat_macs(sizes: HATSizes, source_length: int = 30, target_length: int = 30) -> int:
    """MACs of one teacher-forced forward of a batch of one (HAT's profile; see the module docstring).

    Example:
        >>> from nastools.supernets.hat._config import HAT_WMT14_EN_DE_CONFIG as config
        >>> hat_macs(config.sizes(config.extreme_arch(largest=True)))
        3016089600
    """
    src, tgt, qkv = source_length, target_length, sizes.qkv_dim
    enc, dec = sizes.encoder_embed, sizes.decoder_embed
    total = 0
    for ffn in sizes.encoder_ffn:
        total += _attention_macs(src, src, enc, enc, qkv) + 2 * src * enc * ffn
    for ffn, attended in zip(sizes.decoder_ffn, sizes.cross_layers):
        total += _attention_macs(tgt, tgt, dec, dec, qkv)  # causal self-attention (the full products)
        total += _attention_macs(tgt, attended * src, dec, enc, qkv)  # the last `attended` encoder layers
        total += 2 * tgt * dec * ffn
    return total + tgt * dec * sizes.vocab_size  # output projection (the shared embedding)


def hat_params(sizes: HATSizes, embeddings: bool = True) -> int:
    """Parameters of the standalone sub-network; ``embeddings=False`` gives HAT's count (no embedding table).

    Example:
        >>> from nastools.supernets.hat._config import HAT_WMT14_EN_DE_CONFIG as config
        >>> largest = config.sizes(config.extreme_arch(largest=True))
        >>> hat_params(largest), hat_params(largest, embeddings=False)
        (91872512, 70900992)
    """
    qkv, enc, dec = sizes.qkv_dim, sizes.encoder_embed, sizes.decoder_embed

    def attention(query_embed: int, key_embed: int) -> int:  # q, k, v and output projections with biases
        return (query_embed + 1) * qkv + 2 * (key_embed + 1) * qkv + (qkv + 1) * query_embed

    def ffn(embed: int, hidden: int) -> int:
        return (embed + 1) * hidden + (hidden + 1) * embed

    total = sum(attention(enc, enc) + ffn(enc, f) + 2 * 2 * enc for f in sizes.encoder_ffn)
    total += sum(
        attention(dec, dec) + attention(dec, enc) + ffn(dec, f) + 3 * 2 * dec for f in sizes.decoder_ffn
    )
    return total + (sizes.vocab_size * sizes.embedding_width if embeddings else 0)


def count_macs_params(config: HATConfig, arch: Mapping[str, Any]) -> tuple[int, int]:
    """MACs (at ``config.sequence_length`` source and target tokens) and parameters of ``arch``'s sub-network.

    Example:
        >>> from nastools.supernets.hat._config import HAT_WMT14_EN_DE_CONFIG as config
        >>> count_macs_params(config, config.extreme_arch(largest=False))
        (982548480, 32548352)
    """
    sizes = config.sizes(arch)
    length = config.sequence_length
    return hat_macs(sizes, length, length), hat_params(sizes)
