"""Importance sorting: put an elastic layer's most important channels first (OFA's channel re-organising).

Smaller sub-networks run on the leading channels, so after the warm-up a family reorders the hidden
channels of every elastic block by importance (the L1 norm of the weights that read them) and
permutes every tensor indexed by those channels the same way: the largest network computes the same
function, and the smaller ones keep the channels that matter most.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["channel_importance", "importance_order", "permute_bn", "permute_channels"]


def channel_importance(weight: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """L1 norm of each slice of ``weight`` along ``dim`` (``dim=1``: a convolution's input channels).

    Example:
        >>> channel_importance(torch.tensor([[1.0, -3.0], [2.0, 0.5]]))
        tensor([3.0000, 3.5000])
    """
    return weight.abs().sum(dim=tuple(d for d in range(weight.dim()) if d != dim))


def importance_order(importance: torch.Tensor, edges: Sequence[int] | None = None) -> torch.Tensor:
    """Channel indices by importance, largest first; with ``edges``, within each ``[edges[k], edges[k+1])``.

    Groups keep the channels a smaller width already uses among its own (progressive shrinking).

    Example:
        >>> importance_order(torch.tensor([1.0, 3.0, 2.0, 5.0]))
        tensor([3, 1, 2, 0])
        >>> importance_order(torch.tensor([1.0, 3.0, 2.0, 5.0]), edges=[0, 2, 4])
        tensor([1, 0, 3, 2])
    """
    if edges is None:
        return torch.argsort(importance, descending=True)
    return torch.cat(
        [
            start + torch.argsort(importance[start:end], descending=True)
            for start, end in zip(edges, edges[1:])
        ]
    )


@torch.no_grad()
def permute_channels(tensor: torch.Tensor, order: torch.Tensor, dim: int = 0) -> None:
    """Reorder ``tensor`` in place along ``dim`` so that its ``i``-th slice becomes its ``order[i]``-th.

    Example:
        >>> weight = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> permute_channels(weight, torch.tensor([1, 0]), dim=1)
        >>> weight
        tensor([[2., 1.],
                [4., 3.]])
    """
    tensor.copy_(tensor.index_select(dim, order))


@torch.no_grad()
def permute_bn(bn: nn.BatchNorm2d, order: torch.Tensor) -> None:
    """Reorder a batch norm's channels (affine terms and running statistics) in place."""
    for tensor in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
        permute_channels(tensor, order)
