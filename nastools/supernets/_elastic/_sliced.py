"""Weight sharing by leading slices of a skeleton's weights: one static module of a sub-network's sizes.

A family whose sub-networks are plain modules of smaller sizes (Transformers: fewer layers, narrower
embeddings, fewer heads or hidden units) needs no hand-written dynamic layers. It writes the static
module once, builds the largest one with real weights, and runs any sub-network as the static module
of its sizes (built weightless, on the ``meta`` device) called with the *leading slices* of the
largest one's same-named weights (:func:`torch.func.functional_call`): training it trains the shared
weights, and :func:`extract` copies the same slices into a standalone module.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

import torch
from torch import nn
from torch.func import functional_call

__all__ = ["extract", "leading_slices", "run_sliced", "skeleton"]

ModuleT = TypeVar("ModuleT", bound=nn.Module)


@functools.lru_cache(maxsize=512)
def skeleton(build: Callable[[Hashable], ModuleT], config: Hashable) -> ModuleT:
    """A weightless (``meta`` device) module ``build(config)``: the code and the weight shapes to run.

    Cached per ``(build, config)``: ``config`` must be hashable (a frozen dataclass).

    Example:
        >>> skeleton(lambda n: nn.Linear(n, 2), 3).weight.device.type
        'meta'
    """
    with torch.device("meta"):
        return build(config).eval()


def leading_slices(full: nn.Module, shapes: nn.Module) -> dict[str, torch.Tensor]:
    """``shapes``' parameters and buffers by name, each the leading slice of ``full``'s same-named tensor.

    The slices are views of ``full``'s Parameters (``keep_vars``): gradients flow back into them.

    Raises:
        ValueError: ``shapes`` has a tensor ``full`` lacks, or one larger than ``full``'s in some dimension.

    Example:
        >>> big, small = nn.Linear(4, 3), nn.Linear(2, 1)
        >>> leading_slices(big, small)["weight"].shape
        torch.Size([1, 2])
    """
    tensors = full.state_dict(keep_vars=True)
    sliced = {}
    for name, tensor in shapes.state_dict(keep_vars=True).items():
        source = tensors.get(name)
        if (
            source is None
            or source.dim() != tensor.dim()
            or any(s > f for s, f in zip(tensor.shape, source.shape))
        ):
            found = None if source is None else tuple(source.shape)
            raise ValueError(
                f"weight {name!r} of shape {tuple(tensor.shape)} is not a leading slice of the largest "
                f"network's ({found}): the sub-network's sizes must not exceed the largest one's"
            )
        sliced[name] = source[tuple(slice(0, size) for size in tensor.shape)]
    return sliced


def run_sliced(full: nn.Module, shapes: nn.Module, *inputs: Any, **kwargs: Any) -> Any:
    """Call the static module ``shapes`` on ``inputs`` with the leading slices of ``full``'s weights.

    Example:
        >>> big = nn.Linear(4, 3)
        >>> out = run_sliced(big, skeleton(lambda n: nn.Linear(n, 2), 4), torch.ones(1, 4))
        >>> torch.allclose(out, big(torch.ones(1, 4))[:, :2])
        True
    """
    return functional_call(shapes, leading_slices(full, shapes), inputs, kwargs)


def extract(full: nn.Module, build: Callable[[Hashable], ModuleT], config: Hashable) -> ModuleT:
    """A standalone ``build(config)`` holding copies of the leading slices of ``full``'s weights (eval mode).

    Example:
        >>> big = nn.Linear(4, 3)
        >>> small = extract(big, lambda n: nn.Linear(n, 2), 4)
        >>> torch.equal(small.weight, big.weight[:2]), small.weight.data_ptr() != big.weight.data_ptr()
        (True, True)
    """
    module = build(config)
    state: Mapping[str, torch.Tensor] = leading_slices(full, skeleton(build, config))
    module.load_state_dict({name: tensor.detach().clone() for name, tensor in state.items()})
    return module.eval()
