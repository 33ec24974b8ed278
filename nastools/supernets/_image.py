"""What image-classification supernets share: top-1 validation with batch-norm recalibration, checkpoints.

Not a family: the MobileNetV3 and ResNet folders (and any other convolutional family) build on
:class:`ImageSupernet`, which implements the :class:`~nastools.supernet.Supernet` contract for an
elastic network with ``get_active_subnet(arch)``, ``resolution(arch)``, ``macs_params(arch)`` and a
``config`` with ``in_channels``, evaluated on an :class:`~nastools.tasks.digits.ImageTask` or by a
surrogate.
"""

from __future__ import annotations

import copy
import importlib.resources
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from nastools.hardware import Hardware
from nastools.metrics import Metric
from nastools.space import Arch, SearchSpace
from nastools.supernet import Supernet, count_macs, count_params
from nastools.supernets import _checkpoints
from nastools.supernets._checkpoints import save_checkpoint
from nastools.supernets._elastic import resize
from nastools.tasks.digits import (
    TOP1,
    DigitsConfig,
    ImageTask,
    load_digits_task,
    recalibrate_batchnorm,
    top1_accuracy,
)

__all__ = [
    "TOP1",
    "TOP1_SURROGATE",
    "ElasticImageNet",
    "ImageSupernet",
    "fold_batchnorm",
    "read_checkpoint",
    "recalibrate_batchnorm",
    "resize",
    "save_checkpoint",
    "shipped_checkpoint",
    "top1_accuracy",
]

#: Top-1 predicted by a surrogate model from the arch (e.g. OFA's ImageNet accuracy predictor).
TOP1_SURROGATE = Metric("top1", "max", "%", "surrogate top-1: predicted from the arch", kind="prediction")


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


class ElasticImageNet(Protocol):
    """What :class:`ImageSupernet` needs from an elastic image network (an ``nn.Module``)."""

    space: SearchSpace
    config: Any  # a frozen dataclass with ``in_channels`` and ``to_dict()``

    def get_active_subnet(self, arch: Arch) -> nn.Module:
        """A standalone module equal to the network with ``arch`` active."""

    def set_active(self, arch: Arch) -> None:
        """Make ``arch`` the sub-network that a call runs (:meth:`ImageSupernet.run_active`)."""

    def prepare_inputs(self, inputs: tuple[torch.Tensor, ...], arch: Arch) -> tuple[torch.Tensor, ...]:
        """The batch resized to ``arch``'s resolution."""

    def resolution(self, arch: Arch) -> int:
        """Input side of ``arch``'s images."""

    def macs_params(self, arch: Arch) -> tuple[int, int]:
        """Closed-form MACs and parameters of ``arch``'s sub-network (validates the arch)."""

    def load_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> Any:
        """Load weights."""


class ImageSupernet(Supernet):
    """An elastic image-classification network with its task: top-1 measured, or from a surrogate.

    ``top1`` is measured (held-out accuracy of the extracted sub-network after recalibrating its
    batch norm on the task's calibration images, OFA's procedure, then folding batch norm into the
    convolutions for a faster pass) or, with ``surrogate``, predicted from the arch (metric kind
    ``prediction``; reports label it "surrogate top-1"). MACs and parameters are closed-form.

    Args:
        net: The elastic network (weights trained or not).
        supernet_id: Stable name.
        checkpoint_hash: Hash of the weights' file (``"untrained"`` for architecture-only use).
        task: Data for measured top-1; None for architecture-only supernets (MACs, params, latency).
        metadata: Anything stored with the checkpoint (configs, training log, report).
        surrogate: ``archs -> top-1 %`` used instead of ``task``.
        missing_top1: Why top-1 is unavailable (e.g. a surrogate's file is missing); raised by
            :meth:`check_metric`.
        top1: The declared top-1 metric (default :data:`TOP1`, or :data:`TOP1_SURROGATE` with a
            surrogate).
    """

    #: The checkpoint file and kind it was read from (set by ``load_checkpoint``; None when built otherwise).
    checkpoint_path: Path | None = None
    checkpoint_kind: str | None = None

    def __init__(
        self,
        net: ElasticImageNet,
        supernet_id: str,
        checkpoint_hash: str,
        *,
        task: ImageTask | None = None,
        metadata: Mapping[str, Any] | None = None,
        surrogate: Callable[[Sequence[Arch]], np.ndarray] | None = None,
        missing_top1: str | None = None,
        top1: Metric | None = None,
    ) -> None:
        self.net = net.eval()
        self.supernet_id = supernet_id
        self.checkpoint_hash = checkpoint_hash
        self.space = net.space
        self.task = task
        self.surrogate = surrogate
        self.metadata = dict(metadata or {})
        self.metrics = (top1 or (TOP1_SURROGATE if surrogate is not None else TOP1),)
        # describe what this space has ("r" is a parameter only where several resolutions are allowed)
        prefixes = {name.split("_")[0] for name in self.space.names}
        described = getattr(net, "PARAMETER_DESCRIPTIONS", {})
        self.parameter_descriptions = {kind: text for kind, text in described.items() if kind in prefixes}
        self._missing_top1 = missing_top1
        self._resized: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def subnet(self, arch: Arch) -> nn.Module:
        """Standalone eval-mode copy of ``arch``'s network (weights copied, statistics as trained)."""
        return self.net.get_active_subnet(arch).eval()

    @torch.no_grad()
    def run_active(self, arch: Arch, *inputs: torch.Tensor) -> torch.Tensor:
        """The elastic network's logits with ``arch`` active, in eval mode (trained batch-norm statistics).

        What :meth:`subnet` copies, run in place: the sub-network's batch norms hold the same slices of
        the trained running statistics, so both compute the same function.
        """
        training = self.net.training
        self.net.eval()
        try:
            self.net.set_active(arch)
            return self.net(*self.net.prepare_inputs(inputs, arch))
        finally:
            self.net.train(training)

    def save_checkpoint(self, path: str | Path) -> Path:
        """Write this supernet as its family's checkpoint: its weights; the configs, log, report it came with.

        ``load_supernet(path)`` reads it back (the conformance suite's round trip). Only a supernet
        read from a checkpoint (``load_checkpoint``) has a ``checkpoint_kind`` and a training record.

        Raises:
            ValueError: It was not read from a checkpoint.
        """
        return _checkpoints.resave_checkpoint(self, path, self.checkpoint_kind)

    def example_inputs(self, arch: Arch, batch_size: int) -> tuple[torch.Tensor, ...]:
        """A batch of images at ``arch``'s resolution: held-out images of the task, else seeded noise."""
        resolution = self.net.resolution(arch)
        if self.task is not None:
            images = self.task.test_x
            index = torch.arange(batch_size) % len(images)
            return (resize(images[index], resolution).contiguous(),)
        generator = torch.Generator().manual_seed(0)
        return (
            torch.randn(
                (batch_size, self.net.config.in_channels, resolution, resolution), generator=generator
            ),
        )

    def check_metric(self, metric: str) -> None:
        """Raise if top-1 cannot be given (the :class:`~nastools.evaluation.Evaluator` asks first).

        Raises:
            FileNotFoundError: The surrogate's file is missing (the message says where it comes from).
            ValueError: There is neither task data nor a surrogate.
        """
        if metric != "top1" or self.surrogate is not None:
            return
        if self._missing_top1 is not None:
            raise FileNotFoundError(self._missing_top1)
        if self.task is None:
            raise ValueError(
                f"supernet {self.supernet_id!r} has no task data, so top1 cannot be measured; use metrics "
                "macs, params, naswot or latency_ms, or load a trained checkpoint"
            )

    def needs_subnet(self, metric: str) -> bool:
        """MACs, parameters and a surrogate top-1 come from the arch; the rest needs the module."""
        if metric in ("macs", "params"):
            return False
        if metric == "top1":
            return self.surrogate is None
        return True

    def _data(self, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
        if resolution not in self._resized:
            self._resized[resolution] = tuple(
                resize(x, resolution).contiguous(memory_format=torch.channels_last)
                for x in (self.task.calibration_x, self.task.test_x)
            )
        return self._resized[resolution]

    def evaluate(self, arch: Arch, metric: str = "top1", subnet: nn.Module | None = None) -> float:
        """Top-1 (%) of ``arch``: measured on the held-out split, or the surrogate's prediction.

        Args:
            arch: The sub-network.
            metric: ``"top1"``, the one metric these supernets declare.
            subnet: Its standalone module, if already extracted (it is recalibrated in place).
        """
        if metric != "top1":
            self.metric(metric)  # raises naming the metrics
            raise ValueError(f"supernet {self.supernet_id!r} evaluates top1, not {metric!r}")
        self.check_metric(metric)
        if self.surrogate is not None:
            self.space.validate(arch)
            return float(self.surrogate([arch])[0])
        _, test_x = self._data(self.net.resolution(arch))
        measured = self._measured(arch, self.subnet(arch) if subnet is None else subnet)
        return top1_accuracy(measured, test_x, self.task.test_y)

    def _measured(self, arch: Arch, subnet: nn.Module) -> nn.Module:
        """Recalibrate ``subnet``'s batch norm in place; return a folded copy: what top-1 measures."""
        calibration_x, _ = self._data(self.net.resolution(arch))
        # channels-last runs the depthwise convolutions about 3x faster on CPU; the module goes back
        # to the default layout so that its latency is measured as users would run it
        subnet.to(memory_format=torch.channels_last)
        try:
            recalibrate_batchnorm(subnet, calibration_x)
            return fold_batchnorm(subnet)
        finally:
            subnet.to(memory_format=torch.contiguous_format)

    def export_module(self, arch: Arch) -> nn.Module:
        """The module whose top-1 is measured: batch norm recalibrated on the calibration images, then folded.

        Without task data (a surrogate, an architecture-only supernet) there is nothing to
        recalibrate on: the sub-network as extracted.
        """
        if self.task is None or self.surrogate is not None:
            return self.subnet(arch)
        self.space.validate(arch)
        return self._measured(arch, self.subnet(arch)).to(memory_format=torch.contiguous_format).eval()

    def macs(self, arch: Arch, subnet: nn.Module | None = None) -> int:
        """MACs of one sample's forward pass in closed form (with ``subnet``: its flop count, a check)."""
        if subnet is not None:
            return count_macs(subnet, self.example_inputs(arch, 1))
        return self.net.macs_params(arch)[0]

    def params(self, arch: Arch, subnet: nn.Module | None = None) -> int:
        """Parameters of ``arch``'s standalone network in closed form (with ``subnet``: counted on it)."""
        if subnet is not None:
            return count_params(subnet)
        return self.net.macs_params(arch)[1]

    def lookup_tables(self) -> dict[str, Hardware]:
        """None by default; families with published per-layer tables override this."""
        return {}


def shipped_checkpoint(name: str) -> Path:
    """The path of a checkpoint shipped with nastools (``data/``, installed as ``nastools.checkpoints``)."""
    return Path(str(importlib.resources.files("nastools.checkpoints") / f"{name}.pt"))


def read_checkpoint(
    path: Path,
    payload: Mapping[str, Any],
    build: Callable[[Mapping[str, Any]], nn.Module],
    supernet_id: str | None,
) -> tuple[nn.Module, ImageTask, dict[str, Any], str]:
    """The network, digits task, metadata and id of a checkpoint (:func:`._checkpoints.read_checkpoint`).

    Args:
        path: The file (its stem is the default id).
        payload: Its loaded contents.
        build: ``model_config dict -> elastic network``.
        supernet_id: Overrides the id.

    Raises:
        ValueError: Entries are missing, the weights or configs do not fit (the first differing
            keys are named), or a weight is not finite (the tensor is named).
    """
    return _checkpoints.read_checkpoint(path, payload, build, _digits_task, supernet_id)


def _digits_task(stored: Mapping[str, Any]) -> ImageTask:
    """The digits task of a stored config (JSON lists back to tuples)."""
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()}
    return load_digits_task(DigitsConfig(**config))
