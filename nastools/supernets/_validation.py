"""Validation of a standalone sub-network: batch-norm recalibration, top-1, MACs and parameters."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_macs", "count_params", "fold_batchnorm", "recalibrate_batchnorm", "resize", "top1_accuracy"]


def resize(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Bilinear resize of a batch of square images to ``resolution`` (no-op when it already is)."""
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)


@torch.no_grad()
def recalibrate_batchnorm(module: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> None:
    """Reset every batch norm's running statistics to their average over ``x`` (OFA's recipe).

    Sub-networks share weights but not activation statistics, so each one's batch-norm statistics
    are recomputed on a calibration set before it is evaluated.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.training) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
        m.train()
    try:
        for start in range(0, len(x), batch_size):
            module(x[start : start + batch_size])
    finally:
        for m, (momentum, training) in zip(norms, saved):
            m.momentum = momentum
            m.train(training)


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """An eval-mode copy of ``module`` with each batch norm folded into the convolution before it.

    Folds every ``conv``/``bn`` pair of sibling attributes (the layout of the sub-networks'
    layers); ``module`` itself is left as it was. The copy computes the same function up to float
    rounding (logits within ~1e-5; no top-1 prediction changed over 30 sub-networks x 2,700
    held-out images) and its forward pass is 15-20% faster on CPU, which is what validation pays
    for after recalibration.

    Example:
        >>> layer = nn.Sequential()
        >>> layer.conv, layer.bn = nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8)
        >>> folded = fold_batchnorm(layer.eval())
        >>> type(folded.bn).__name__, folded.conv.bias is not None
        ('Identity', True)
    """
    folded = copy.deepcopy(module).eval()
    for parent in folded.modules():
        conv, bn = getattr(parent, "conv", None), getattr(parent, "bn", None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            parent.conv = fuse_conv_bn_eval(conv, bn)
            parent.bn = nn.Identity()
    return folded


@torch.no_grad()
def top1_accuracy(module: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 128) -> float:
    """Top-1 accuracy in percent of ``module`` (in eval mode) on ``(x, y)``.

    The result does not depend on ``batch_size``; batches of about 128 keep activations in cache
    and ran 1.5-3x faster than 1024 on CPU (``benchmarks/validation_cost.py``).
    """
    was_training = module.training
    module.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        logits = module(x[start : start + batch_size])
        correct += int((logits.argmax(1) == y[start : start + batch_size]).sum())
    module.train(was_training)
    return 100.0 * correct / len(y)


@torch.no_grad()
def count_macs(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass of one sample.

    Counted with ``torch.utils.flop_counter`` (FLOPs / 2) on a batch of one: convolutions and linear
    layers (squeeze-and-excitation included); batch norm, activations, pooling and additions are not
    counted, the convention of OFA's MAC tables.
    """
    was_training = module.training
    module.eval()
    parameter = next(module.parameters())
    with FlopCounterMode(display=False) as counter:
        module(torch.zeros((1, *input_shape), dtype=parameter.dtype, device=parameter.device))
    module.train(was_training)
    return counter.get_total_flops() // 2


def count_params(module: nn.Module) -> int:
    """Number of parameters (weights, biases and batch-norm affine terms; no running statistics)."""
    return sum(p.numel() for p in module.parameters())
