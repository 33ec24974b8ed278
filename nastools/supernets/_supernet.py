"""The ``Supernet`` protocol and its elastic MobileNetV3 implementation."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from nastools.data import DigitsConfig, ImageTask, load_digits_task
from nastools.space import SearchSpace
from nastools.supernets._mobilenetv3 import ElasticMobileNetV3, MobileNetV3Config
from nastools.supernets._ofa_predictor import (
    PREDICTOR_RESOLUTIONS,
    OFAAccuracyPredictor,
    missing_predictor_message,
    predictor_location,
)
from nastools.supernets._shapes import count_macs_params
from nastools.supernets._validation import (
    count_macs,
    count_params,
    fold_batchnorm,
    recalibrate_batchnorm,
    resize,
    top1_accuracy,
)

__all__ = [
    "DEFAULT_SUPERNET",
    "OFA_RESOLUTIONS",
    "MobileNetV3Supernet",
    "Supernet",
    "data_dir",
    "load_supernet",
    "supernet_names",
]

DEFAULT_SUPERNET = "digits-mbv3"
_OFA_NAMES = {"ofa-mbv3-w1.0": 1.0, "ofa-mbv3-w1.2": 1.2}
#: ``r`` choices of the OFA supernets' space: OFA's tutorial search, one per resolution slot of its
#: accuracy predictor in 160-224 (it cannot tell 160 from 172, so finer steps would be free MACs).
OFA_RESOLUTIONS = PREDICTOR_RESOLUTIONS


@runtime_checkable
class Supernet(Protocol):
    """What the toolkit needs from a weight-sharing super-network (wrap any third-party one with it).

    The :class:`~nastools.evaluation.Evaluator` also calls ``macs(arch, subnet)`` and
    ``params(arch, subnet)``, and uses two optional hooks when present: ``needs_subnet(metric) -> bool``
    (False lets it skip extracting the sub-network for that metric, which is then called with
    ``subnet=None``) and ``check_top1()`` (raises when top1 cannot be given, before anything is measured).

    Attributes:
        supernet_id: Stable name, stored with every measurement.
        checkpoint_hash: Identifies the weights (or the surrogate); measurements of others are not reused.
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

    ``top1`` comes from one of two sources, named by ``metadata["top1_kind"]``: ``"measured"``
    (held-out accuracy of the extracted sub-network on ``task``) or ``"surrogate"`` (predicted from the
    arch alone, e.g. by OFA's accuracy predictor for the ImageNet supernets; reports should label it
    "surrogate top-1"); it is None when neither is available.

    Args:
        net: The elastic network (weights trained or not).
        supernet_id: Stable name.
        checkpoint_hash: Hash of the weights' file (``"untrained"`` for architecture-only use).
        task: Data for :meth:`evaluate`; None for architecture-only supernets (MACs, params, latency).
        metadata: Anything stored with the checkpoint (configs, training log, report).
        accuracy_predictor: Surrogate top-1 used instead of ``task`` (an :class:`OFAAccuracyPredictor`
            or anything with ``predict(archs) -> array of top-1 %``).

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
        accuracy_predictor: OFAAccuracyPredictor | None = None,
    ) -> None:
        self.net = net.eval()
        self.supernet_id = supernet_id
        self.checkpoint_hash = checkpoint_hash
        self.task = task
        self.accuracy_predictor = accuracy_predictor
        self.metadata = dict(metadata or {})
        kind = "surrogate" if accuracy_predictor is not None else "measured" if task is not None else None
        self.metadata.setdefault("top1_kind", kind)
        self.space = net.space
        self._resized: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._missing_top1: str | None = None  # why top1 is unavailable when a file is missing

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
    def ofa(
        cls,
        width_mult: float = 1.0,
        checkpoint: str | Path | None = None,
        *,
        ofa_data: str | Path | None = None,
        resolutions: Sequence[int] = OFA_RESOLUTIONS,
    ) -> MobileNetV3Supernet:
        """OFA's ImageNet MobileNetV3 (``ofa_mbv3_d234_e346_k357_w{width_mult}``) with surrogate top-1.

        MACs, parameters and latency are exact whatever the weights. ImageNet top-1 is not measured
        here (no ImageNet): it is the estimate of OFA's public accuracy predictor
        (:class:`OFAAccuracyPredictor`, ``metadata["top1_kind"] == "surrogate"``) read from
        ``acc_predictor.pth`` in ``ofa_data`` or else in ``$NASTOOLS_OFA_DATA``. The checkpoint hash then
        names the predictor file (``surrogate-<sha16>``), so surrogate values never mix with anything
        else in a store. Without the file the supernet is architecture-only and :meth:`evaluate` says
        where to get it.

        The predictor was trained on w1.2 sub-networks: for w1.0 it is a proxy (on DyNAS-T's 2,223
        measured w1.0 sub-networks it ranks with Kendall tau 0.88 and reads about 6 points high).

        Args:
            width_mult: 1.0 or 1.2 for OFA's published supernets.
            checkpoint: OFA's checkpoint file, to load its weights (nothing here needs them).
            ofa_data: ``acc_predictor.pth`` or a folder holding it; an error if it is not there.
            resolutions: The space's ``r`` choices (a single value drops ``r`` from the space).

        Raises:
            FileNotFoundError: ``checkpoint`` or ``ofa_data`` names a missing file.

        Example:
            >>> supernet = MobileNetV3Supernet.ofa(1.2, ofa_data="CompOFA")  # doctest: +SKIP
            >>> supernet.metadata["top1_kind"], supernet.evaluate(supernet.net.max_arch())  # doctest: +SKIP
            ('surrogate', 83.6)
        """
        config = MobileNetV3Config(width_mult=width_mult, resolutions=tuple(int(r) for r in resolutions))
        net = ElasticMobileNetV3(config)
        checkpoint_hash = "untrained"
        if checkpoint is not None:
            path = Path(checkpoint)
            if not path.is_file():
                raise FileNotFoundError(f"OFA checkpoint {path} does not exist")
            net.load_ofa_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            checkpoint_hash = _file_hash(path)
        file, looked_at = predictor_location(ofa_data)
        if ofa_data is not None and file is None:
            raise FileNotFoundError(missing_predictor_message(ofa_data))
        predictor = OFAAccuracyPredictor.from_file(file) if file is not None else None
        metadata: dict = {"model_config": config.to_dict()}
        if predictor is not None:
            predictor.predict([{**net.min_arch(), "r": r} for r in config.resolutions])  # checks each r
            surrogate = f"surrogate-{predictor.file_hash}"
            checkpoint_hash = surrogate if checkpoint is None else f"{checkpoint_hash}-{surrogate}"
            metadata["top1_source"] = (
                "OFA's public ImageNet accuracy predictor (trained on w1.2 sub-networks; top-1 on OFA's "
                "10k-image hold-out split of the ImageNet training set)"
            )
            metadata["accuracy_predictor"] = str(file)
        supernet = cls(
            net, f"ofa-mbv3-w{width_mult}", checkpoint_hash, metadata=metadata, accuracy_predictor=predictor
        )
        if predictor is None:
            supernet._missing_top1 = missing_predictor_message(looked_at)
        return supernet

    def subnet(self, arch: Mapping[str, int]) -> nn.Module:
        """Standalone eval-mode copy of ``arch``'s network (weights copied, statistics as trained)."""
        return self.net.get_active_subnet(arch).eval()

    def input_shape(self, arch: Mapping[str, int]) -> tuple[int, ...]:
        """Per-sample input shape ``(C, r, r)`` of ``arch``."""
        resolution = self.net.resolution(arch)
        return (self.net.config.in_channels, resolution, resolution)

    def check_top1(self) -> None:
        """Raise if :meth:`evaluate` cannot give top1 (the :class:`Evaluator` asks before measuring).

        Raises:
            FileNotFoundError: The surrogate's file is missing (the message says where it comes from).
            ValueError: There is neither task data nor a surrogate.
        """
        if self.accuracy_predictor is not None:
            return
        if self._missing_top1 is not None:
            raise FileNotFoundError(self._missing_top1)
        if self.task is None:
            raise ValueError(
                f"supernet {self.supernet_id!r} has no task data, so top1 cannot be measured; "
                "use metrics macs/params/latency_ms, or load a trained checkpoint"
            )

    def needs_subnet(self, metric: str) -> bool:
        """Whether measuring ``metric`` needs the extracted sub-network.

        MACs and parameters are counted from the arch and a surrogate top1 is predicted from it, so
        the :class:`Evaluator` extracts a sub-network only for measured top1 and measured latency.
        """
        if metric in ("macs", "params"):
            return False
        if metric == "top1":
            return self.accuracy_predictor is None
        return True

    def _data(self, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_top1()
        if resolution not in self._resized:
            self._resized[resolution] = tuple(
                resize(x, resolution).contiguous(memory_format=torch.channels_last)
                for x in (self.task.calibration_x, self.task.test_x)
            )
        return self._resized[resolution]

    def evaluate(self, arch: Mapping[str, int], subnet: nn.Module | None = None) -> float:
        """Top-1 (%) of ``arch``: measured on the held-out split, or the surrogate's prediction.

        Measured (``metadata["top1_kind"] == "measured"``): batch norm is recalibrated on the
        calibration images first (OFA's way). Surrogate: predicted from the arch; ``subnet`` is unused.

        Args:
            arch: The sub-network.
            subnet: Its standalone module, if already extracted (it is recalibrated in place).

        Raises:
            FileNotFoundError: An OFA supernet whose accuracy-predictor file is missing.
            ValueError: No task data and no surrogate.
        """
        if self.accuracy_predictor is not None:
            return float(self.predict_top1([arch])[0])
        resolution = self.net.resolution(arch)
        calibration_x, test_x = self._data(resolution)
        subnet = self.subnet(arch) if subnet is None else subnet
        # channels-last runs the depthwise convolutions about 3x faster on CPU; the module goes back
        # to the default layout so that its latency is measured as users would run it
        subnet.to(memory_format=torch.channels_last)
        try:
            recalibrate_batchnorm(subnet, calibration_x)
            return top1_accuracy(fold_batchnorm(subnet), test_x, self.task.test_y)
        finally:
            subnet.to(memory_format=torch.contiguous_format)

    def predict_top1(self, archs: Sequence[Mapping[str, int]]) -> np.ndarray:
        """Surrogate top-1 (%) of many archs in one batched call (what :meth:`evaluate` returns).

        Raises:
            FileNotFoundError: The surrogate's file is missing.
            ValueError: An arch outside the space, or a supernet whose top1 is measured, not predicted.

        Example:
            >>> supernet = load_supernet("ofa-mbv3-w1.0", ofa_data="CompOFA")  # doctest: +SKIP
            >>> supernet.predict_top1(supernet.space.sample(10_000, rng=0)).shape  # doctest: +SKIP
            (10000,)
        """
        self.check_top1()
        if self.accuracy_predictor is None:
            raise ValueError(
                f"supernet {self.supernet_id!r} measures top1 (no surrogate); use evaluate(arch) per arch"
            )
        for arch in archs:
            self.space.validate(arch)
        return self.accuracy_predictor.predict([{**arch, "r": self.net.resolution(arch)} for arch in archs])

    def macs(self, arch: Mapping[str, int], subnet: nn.Module | None = None) -> int:
        """Multiply-accumulates of one sample's forward pass, counted from the arch in closed form.

        Args:
            arch: The sub-network.
            subnet: Count this module's forward pass with ``torch.utils.flop_counter`` instead
                (:func:`count_macs`; a check, the two agree exactly).
        """
        if subnet is not None:
            return count_macs(subnet, self.input_shape(arch))
        self.space.validate(arch)
        return count_macs_params(self.net.config, arch)[0]

    def params(self, arch: Mapping[str, int], subnet: nn.Module | None = None) -> int:
        """Parameter count of ``arch``'s standalone network, from the arch in closed form.

        Args:
            arch: The sub-network.
            subnet: Count this module's parameters instead (:func:`count_params`, a check).
        """
        if subnet is not None:
            return count_params(subnet)
        self.space.validate(arch)
        return count_macs_params(self.net.config, arch)[1]


def load_supernet(
    name: str | Path = DEFAULT_SUPERNET, *, ofa_data: str | Path | None = None
) -> MobileNetV3Supernet:
    """Load a supernet by name (see :func:`supernet_names`) or from a checkpoint path.

    Args:
        name: ``"digits-mbv3"`` (the embedded, trained default), ``"ofa-mbv3-w1.0"`` or
            ``"ofa-mbv3-w1.2"`` (OFA's ImageNet supernets with surrogate top-1, see
            :meth:`MobileNetV3Supernet.ofa`), or the path of a nastools checkpoint.
        ofa_data: For the OFA supernets: ``acc_predictor.pth`` or a folder holding it (default
            ``$NASTOOLS_OFA_DATA``; without either, top1 is unavailable, MACs/params/latency work).

    Example:
        >>> supernet = load_supernet("ofa-mbv3-w1.0")
        >>> supernet.space.n_var, supernet.space.choices["r"]
        (46, (160, 176, 192, 208, 224))
    """
    name_str = str(name)
    if ofa_data is not None and name_str not in _OFA_NAMES:
        raise ValueError(f"ofa_data applies to the OFA supernets {list(_OFA_NAMES)}, not {name_str!r}")
    if name_str == DEFAULT_SUPERNET:
        return MobileNetV3Supernet.from_checkpoint(data_dir() / f"{DEFAULT_SUPERNET}.pt")
    if name_str in _OFA_NAMES:
        return MobileNetV3Supernet.ofa(_OFA_NAMES[name_str], ofa_data=ofa_data)
    if name_str.endswith(".pt") or Path(name_str).exists():
        return MobileNetV3Supernet.from_checkpoint(name_str)
    raise ValueError(f"unknown supernet {name_str!r}; use one of {supernet_names()} or a checkpoint path")
