"""The elastic-network protocol as base classes: what the trainer, the checks and the supernets call.

An embedded family's elastic network (an ``nn.Module`` holding every sub-network's weights) has a
``space``, a ``config`` (a dataclass with ``to_dict()``), ``set_active(arch)`` then ``forward(*inputs)``,
``get_active_subnet(arch)`` (a standalone copy), ``max_arch()``/``min_arch()``, ``prepare_inputs``
(the per-arch input transform) and ``sort_channels()``. :class:`ElasticNetwork` gives the defaults;
:class:`ElasticImageNetwork` adds the elastic input resolution of the image families.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from nastools.space import Arch, SearchSpace

__all__ = ["ElasticImageNetwork", "ElasticNetwork", "resize"]


def resize(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Bilinear resize of a batch of square images to ``resolution`` (no-op when it already is).

    Example:
        >>> resize(torch.zeros(2, 1, 32, 32), 16).shape
        torch.Size([2, 1, 16, 16])
    """
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)


class ElasticNetwork(nn.Module):
    """One module holding every sub-network's weights; subclasses set ``space`` and ``config``.

    Subclasses implement :meth:`set_active`, :meth:`forward` and :meth:`get_active_subnet`.

    Attributes:
        space: The search space of its archs.
        config: Its shape (a dataclass with ``to_dict()``), what a checkpoint stores to rebuild it.
    """

    space: SearchSpace
    config: Any

    def max_arch(self) -> Arch:
        """The largest sub-network: every parameter at its largest choice (inactive ones canonical)."""
        return self.space.canonical({n: max(c) for n, c in self.space.choices.items()})

    def min_arch(self) -> Arch:
        """The smallest sub-network: every parameter at its smallest choice."""
        return self.space.canonical({n: min(c) for n, c in self.space.choices.items()})

    def set_active(self, arch: Mapping[str, Any]) -> None:
        """Make ``arch`` the sub-network that :meth:`forward` runs (validates ``arch``)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement set_active")

    def get_active_subnet(self, arch: Mapping[str, Any]) -> nn.Module:
        """A standalone module (weights copied) computing what this network computes with ``arch`` active."""
        raise NotImplementedError(f"{type(self).__name__} does not implement get_active_subnet")

    def prepare_inputs(self, inputs: tuple[torch.Tensor, ...], arch: Mapping[str, Any]) -> tuple:
        """The inputs of ``arch``'s sub-network made from a batch's (identity here)."""
        return tuple(inputs)

    def sort_channels(self) -> None:
        """Order shared channels by importance after the warm-up (nothing to do here)."""


class ElasticImageNetwork(ElasticNetwork):
    """An elastic image network: its ``config.resolutions`` are the input sides an arch's ``r`` picks from.

    Example:
        >>> from types import SimpleNamespace
        >>> class Net(ElasticImageNetwork):
        ...     config = SimpleNamespace(resolutions=(16, 32))
        >>> Net().resolution({}), Net().prepare_inputs((torch.zeros(1, 1, 32, 32),), {"r": 16})[0].shape
        (16, torch.Size([1, 1, 16, 16]))
    """

    def resolution(self, arch: Mapping[str, Any]) -> int:
        """Input resolution of ``arch`` (its ``r``, or the single fixed resolution)."""
        return int(arch.get("r", self.config.resolutions[0]))

    def prepare_inputs(self, inputs: tuple[torch.Tensor, ...], arch: Mapping[str, Any]) -> tuple:
        """The batch's images resized to ``arch``'s resolution (any other inputs as they are)."""
        images, *rest = inputs
        return (resize(images, self.resolution(arch)), *rest)
