"""The ``Supernet`` protocol and its elastic MobileNetV3 implementation."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from nastools.data import DigitsConfig, ImageTask, load_digits_task
from nastools.space import SearchSpace
from nastools.supernets._mobilenetv3 import ElasticMobileNetV3, MobileNetV3Config
from nastools.supernets._validation import (
    count_macs,
    count_params,
    recalibrate_batchnorm,
    resize,
    top1_accuracy,
)

__all__ = [
    "DEFAULT_SUPERNET",
    "MobileNetV3Supernet",
    "Supernet",
    "data_dir",
    "load_supernet",
    "supernet_names",
]

DEFAULT_SUPERNET = "digits-mbv3"
_OFA_NAMES = {"ofa-mbv3-w1.0": 1.0, "ofa-mbv3-w1.2": 1.2}


@runtime_checkable
class Supernet(Protocol):
    """What the toolkit needs from a weight-sharing super-network (wrap any third-party one with it).

    Attributes:
        supernet_id: Stable name, stored with every measurement.
        checkpoint_hash: Identifies the weights; measurements of other weights are not reused.
        space: The search space of its sub-networks.
    """

    supernet_id: str
    checkpoint_hash: str
    space: SearchSpace

    def subnet(self, arch: Mapping[str, int]) -> nn.Module:
        """A standalone module equal to the supernet with ``arch`` active (eval mode)."""
        ...

    def input_shape(self, arch: Mapping[str, int]) -> tuple[int, ...]:
        """Per-sample input shape of ``arch``'s network, e.g. ``(1, 24, 24)``."""
        ...

    def evaluate(self, arch: Mapping[str, int], subnet: nn.Module | None = None) -> float:
        """Task metric (top-1 %) of ``arch`` on the held-out split."""
        ...


def data_dir() -> Path:
    """Folder holding the trained checkpoints: ``$NASTOOLS_DATA_DIR`` or the repository's ``data/``."""
    return Path(os.environ.get("NASTOOLS_DATA_DIR", Path(__file__).resolve().parents[2] / "data"))


def supernet_names() -> list[str]:
    """Names :func:`load_supernet` accepts (besides a checkpoint path)."""
    return [DEFAULT_SUPERNET, *_OFA_NAMES]


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


class MobileNetV3Supernet:
    """An :class:`ElasticMobileNetV3` with its task: the toolkit's built-in :class:`Supernet`.

    Args:
        net: The elastic network (weights trained or not).
        supernet_id: Stable name.
        checkpoint_hash: Hash of the weights' file (``"untrained"`` for architecture-only use).
        task: Data for :meth:`evaluate`; None for architecture-only supernets (MACs, params, latency).
        metadata: Anything stored with the checkpoint (configs, training log, report).

    Example:
        >>> supernet = load_supernet("digits-mbv3")  # doctest: +SKIP
        >>> arch = supernet.space.sample(1, rng=0)[0]  # doctest: +SKIP
        >>> supernet.evaluate(arch), supernet.macs(arch)  # doctest: +SKIP
        (93.4, 4523904)
    """

    def __init__(
        self,
        net: ElasticMobileNetV3,
        supernet_id: str,
        checkpoint_hash: str,
        task: ImageTask | None = None,
        metadata: Mapping | None = None,
    ) -> None:
        self.net = net.eval()
        self.supernet_id = supernet_id
        self.checkpoint_hash = checkpoint_hash
        self.task = task
        self.metadata = dict(metadata or {})
        self.space = net.space
        self._resized: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __repr__(self) -> str:
        return f"MobileNetV3Supernet({self.supernet_id!r}, {self.space})"

    @classmethod
    def from_checkpoint(cls, path: str | Path, supernet_id: str | None = None) -> MobileNetV3Supernet:
        """Load a checkpoint written by :func:`nastools.training.save_checkpoint`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"supernet checkpoint {path} does not exist; train it with "
                "`make train` (python -m nastools.training) or pass the path of an existing one"
            )
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(payload, dict) or payload.get("format") != "nastools-supernet":
                raise ValueError("no nastools-supernet header")
            config = MobileNetV3Config.from_dict(payload["model_config"])
            net = ElasticMobileNetV3(config)
            net.load_state_dict(payload["state_dict"])
            data_config = DigitsConfig(
                **{k: tuple(v) if isinstance(v, list) else v for k, v in payload["data_config"].items()}
            )
        except Exception as error:  # noqa: BLE001 - any failure here means an unusable file
            raise ValueError(
                f"{path} is not a readable nastools supernet checkpoint ({type(error).__name__}: "
                f"{str(error).splitlines()[0][:120] if str(error) else 'no detail'}); "
                "retrain it with `make train`"
            ) from error
        metadata = {
            k: payload[k] for k in ("model_config", "data_config", "training_config", "log", "report")
        }
        return cls(
            net,
            supernet_id or path.stem,
            _file_hash(path),
            task=load_digits_task(data_config),
            metadata=metadata,
        )

    @classmethod
    def ofa(cls, width_mult: float = 1.0, checkpoint: str | Path | None = None) -> MobileNetV3Supernet:
        """OFA's ImageNet MobileNetV3 (``ofa_mbv3_d234_e346_k357_w{width_mult}``).

        Without ``checkpoint`` the weights are untrained: MACs, parameters and latency are exact,
        accuracy is not available. With OFA's published checkpoint file, its weights are loaded.
        """
        net = ElasticMobileNetV3(MobileNetV3Config(width_mult=width_mult))
        checkpoint_hash = "untrained"
        if checkpoint is not None:
            path = Path(checkpoint)
            if not path.is_file():
                raise FileNotFoundError(f"OFA checkpoint {path} does not exist")
            net.load_ofa_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            checkpoint_hash = _file_hash(path)
        return cls(net, f"ofa-mbv3-w{width_mult}", checkpoint_hash)

    def subnet(self, arch: Mapping[str, int]) -> nn.Module:
        """Standalone eval-mode copy of ``arch``'s network (weights copied, statistics as trained)."""
        return self.net.get_active_subnet(arch).eval()

    def input_shape(self, arch: Mapping[str, int]) -> tuple[int, ...]:
        """Per-sample input shape ``(C, r, r)`` of ``arch``."""
        resolution = self.net.resolution(arch)
        return (self.net.config.in_channels, resolution, resolution)

    def _data(self, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.task is None:
            raise ValueError(
                f"supernet {self.supernet_id!r} has no task data, so top1 cannot be measured; "
                "use metrics macs/params/latency_ms, or load a trained checkpoint"
            )
        if resolution not in self._resized:
            self._resized[resolution] = (
                resize(self.task.calibration_x, resolution),
                resize(self.task.test_x, resolution),
            )
        return self._resized[resolution]

    def evaluate(self, arch: Mapping[str, int], subnet: nn.Module | None = None) -> float:
        """Held-out top-1 (%) after recalibrating batch norm on the calibration images (OFA's way).

        Args:
            arch: The sub-network.
            subnet: Its standalone module, if already extracted (it is recalibrated in place).
        """
        resolution = self.net.resolution(arch)
        calibration_x, test_x = self._data(resolution)
        subnet = self.subnet(arch) if subnet is None else subnet
        recalibrate_batchnorm(subnet, calibration_x)
        return top1_accuracy(subnet, test_x, self.task.test_y)

    def macs(self, arch: Mapping[str, int], subnet: nn.Module | None = None) -> int:
        """Multiply-accumulates of one sample's forward pass (see :func:`count_macs`)."""
        return count_macs(self.subnet(arch) if subnet is None else subnet, self.input_shape(arch))

    def params(self, arch: Mapping[str, int], subnet: nn.Module | None = None) -> int:
        """Parameter count of ``arch``'s standalone network."""
        return count_params(self.subnet(arch) if subnet is None else subnet)


def load_supernet(name: str | Path = DEFAULT_SUPERNET) -> MobileNetV3Supernet:
    """Load a supernet by name (see :func:`supernet_names`) or from a checkpoint path.

    Example:
        >>> supernet = load_supernet("ofa-mbv3-w1.0")
        >>> supernet.space.n_var
        45
    """
    name_str = str(name)
    if name_str == DEFAULT_SUPERNET:
        return MobileNetV3Supernet.from_checkpoint(data_dir() / f"{DEFAULT_SUPERNET}.pt")
    if name_str in _OFA_NAMES:
        return MobileNetV3Supernet.ofa(_OFA_NAMES[name_str])
    if name_str.endswith(".pt") or Path(name_str).exists():
        return MobileNetV3Supernet.from_checkpoint(name_str)
    raise ValueError(f"unknown supernet {name_str!r}; use one of {supernet_names()} or a checkpoint path")
