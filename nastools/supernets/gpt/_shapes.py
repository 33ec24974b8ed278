"""MACs and parameters of a GPT sub-network in closed form, from its sizes alone.

The counts follow ``torch.utils.flop_counter``'s convention (FLOPs / 2 of one sequence, batch 1):
linear layers (the fused query/key/value projection, the attention output projection, the MLP's two
layers, the tied output embedding) and the two attention products (``q k^T`` and the weighted sum of
the values, each over the full ``seq_len x seq_len`` square, as the counter counts a matrix product
whatever the causal mask hides, and as HW-GPT-Bench's analytic FLOPs do); embeddings, layer norms,
RoPE, softmax, GELU, biases and additions are not counted. The parameters are the standalone
sub-network's: the tied embedding once, layer norms' weights and biases, and the linear layers'
biases when the arch has them. Both equal :func:`nastools.supernet.count_macs` and
:func:`~nastools.supernet.count_params` on the extracted sub-network exactly (``tests/test_gpt.py``).
"""

from __future__ import annotations

from nastools.supernets.gpt._config import GPTSizes

__all__ = ["count_macs_params", "layer_macs", "layer_params"]


def layer_macs(sizes: GPTSizes, layer: int, seq_len: int) -> int:
    """Multiply-accumulates of Transformer layer ``layer`` on one sequence of ``seq_len`` tokens."""
    embed, width = sizes.embed, sizes.heads[layer] * sizes.head_size
    projections = seq_len * embed * 3 * width + seq_len * width * embed  # q, k, v; attention output
    attention = 2 * seq_len * seq_len * width  # scores = q k^T, then scores @ v, for every head
    mlp = 2 * seq_len * embed * sizes.hidden[layer]
    return projections + attention + mlp


def layer_params(sizes: GPTSizes, layer: int) -> int:
    """Parameters of Transformer layer ``layer``: two layer norms, attention and MLP (with their biases)."""
    embed, width, hidden = sizes.embed, sizes.heads[layer] * sizes.head_size, sizes.hidden[layer]
    weights = embed * 3 * width + width * embed + embed * hidden + hidden * embed
    biases = (3 * width + embed + hidden + embed) if sizes.bias else 0
    return 2 * 2 * embed + weights + biases


def count_macs_params(sizes: GPTSizes, seq_len: int) -> tuple[int, int]:
    """MACs of one sequence of ``seq_len`` tokens (batch 1) and parameters of the sub-network of ``sizes``.

    Example:
        >>> sizes = GPTSizes(vocab_size=100, context=64, embed=32, heads=(2,), hidden=(64,), head_size=16)
        >>> count_macs_params(sizes, seq_len=8)
        (95232, 11808)
    """
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or not 1 <= seq_len <= sizes.context:
        raise ValueError(f"seq_len must be an integer in [1, {sizes.context}] (the context), got {seq_len!r}")
    head = seq_len * sizes.embed * sizes.vocab_size  # logits through the tied embedding
    macs = head + sum(layer_macs(sizes, i, seq_len) for i in range(sizes.n_layers))
    embedding_and_final_norm = sizes.vocab_size * sizes.embed + 2 * sizes.embed
    params = embedding_and_final_norm + sum(layer_params(sizes, i) for i in range(sizes.n_layers))
    return macs, params
