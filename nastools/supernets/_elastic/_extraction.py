"""Extraction: copies of the leading slices of an elastic layer's weights, into a static layer.

A convolutional family's ``get_active_subnet`` builds the static layers of a sub-network and fills
each from its elastic counterpart with :func:`copy_leading`; a copy shares no storage with the
supernet.
"""

from __future__ import annotations

import torch
from torch import nn

from nastools.supernets._elastic._sliced import leading_slices

__all__ = ["copy_bn", "copy_leading"]


@torch.no_grad()
def copy_leading(target: nn.Module, source: nn.Module) -> None:
    """Copy into each of ``target``'s parameters and buffers the leading slice of ``source``'s same-named one.

    Raises:
        ValueError: ``target`` has a tensor ``source`` lacks, or one larger than ``source``'s.

    Example:
        >>> big, small = nn.Linear(4, 3), nn.Linear(2, 1)
        >>> copy_leading(small, big)
        >>> torch.equal(small.weight, big.weight[:1, :2]), torch.equal(small.bias, big.bias[:1])
        (True, True)
    """
    tensors = target.state_dict(keep_vars=True)
    for name, tensor in leading_slices(source, target).items():
        tensors[name].copy_(tensor)


@torch.no_grad()
def copy_bn(target: nn.BatchNorm2d, source: nn.BatchNorm2d) -> None:
    """Copy the first ``target.num_features`` channels of ``source`` (affine terms, statistics, settings).

    Example:
        >>> source, target = nn.BatchNorm2d(8), nn.BatchNorm2d(4)
        >>> source.momentum = None
        >>> _ = source.running_mean.normal_()
        >>> copy_bn(target, source)
        >>> torch.equal(target.running_mean, source.running_mean[:4]), target.momentum
        (True, None)
    """
    copy_leading(target, source)
    target.momentum, target.eps = source.momentum, source.eps
