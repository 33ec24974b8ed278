"""The ResNet supernets: the embedded ``digits-resnet`` and OFA's ImageNet ``ofa-resnet50`` (no top-1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nastools.supernet import file_hash
from nastools.supernets._image import ImageSupernet, read_checkpoint, shipped_checkpoint
from nastools.supernets.resnet._config import CHECKPOINT_KIND, ResNetConfig
from nastools.supernets.resnet._network import ElasticResNet

__all__ = [
    "CHECKPOINT_KIND",
    "OFA_RESNET50_MISSING_TOP1",
    "ResNetSupernet",
    "embedded",
    "from_checkpoint",
    "ofa_resnet50",
]

#: Why ``ofa-resnet50`` has no top-1 (raised by its ``check_metric("top1")``).
OFA_RESNET50_MISSING_TOP1 = (
    "supernet 'ofa-resnet50' is architecture-only: its top1 is ImageNet accuracy, and nastools has neither "
    "ImageNet nor an accuracy surrogate for OFA's ResNet50; use metrics macs, params, naswot or latency_ms"
)


class ResNetSupernet(ImageSupernet):
    """An :class:`ElasticResNet` with its task (measured top-1) or none (architecture only).

    Everything comes from :class:`~nastools.supernets._image.ImageSupernet`: top-1 after batch-norm
    recalibration, closed-form MACs and parameters (:meth:`ElasticResNet.macs_params`), example
    inputs, measured latency.

    Example:
        >>> supernet = load_supernet("digits-resnet")  # doctest: +SKIP
        >>> arch = supernet.space.sample(1, rng=0)[0]  # doctest: +SKIP
        >>> supernet.evaluate(arch, "top1"), supernet.macs(arch)  # doctest: +SKIP
    """


def from_checkpoint(path: Path, payload: Mapping[str, Any], supernet_id: str | None = None) -> ResNetSupernet:
    """Read a checkpoint of this family (``kind == "elastic-resnet"``).

    Raises:
        ValueError: The checkpoint is of another kind, or its weights or configs do not fit.
    """
    kind = payload.get("kind")
    if kind != CHECKPOINT_KIND:
        raise ValueError(f"{path} holds a {kind!r} supernet, not an {CHECKPOINT_KIND!r} one")
    net, task, metadata, name = read_checkpoint(
        path, payload, lambda config: ElasticResNet(ResNetConfig.from_dict(config)), supernet_id
    )
    return ResNetSupernet(net, name, file_hash(path), task=task, metadata=metadata)


def embedded(checkpoint: str | Path | None = None) -> ResNetSupernet:
    """The embedded ``digits-resnet``: trained here on distorted digits, shipped as ``data/digits-resnet.pt``.

    Args:
        checkpoint: Another checkpoint of the same recipe (``python -m nastools.training
            --supernet digits-resnet``).

    Raises:
        FileNotFoundError: The checkpoint file is missing.
        ValueError: The file is not an elastic-ResNet checkpoint (one line, naming its kind).
    """
    from nastools.supernet import load_checkpoint

    path = Path(checkpoint) if checkpoint is not None else shipped_checkpoint("digits-resnet")
    supernet = load_checkpoint(path, supernet_id="digits-resnet")
    if not isinstance(supernet, ResNetSupernet):
        raise ValueError(
            f"{path} holds a {type(supernet).__name__} checkpoint, not an {CHECKPOINT_KIND!r} one; "
            "digits-resnet needs one of its recipe (python -m nastools.training --supernet digits-resnet)"
        )
    return supernet


def ofa_resnet50(checkpoint: str | Path | None = None, resolutions: Sequence[int] = (224,)) -> ResNetSupernet:
    """OFA's ImageNet ResNet50 supernet, architecture only.

    OFA's ``ofa_resnet50_d0-1-2_e0.2-0.25-0.35_w0.65-0.8-1.0``, at 224 px by default.

    MACs and parameters are exact (closed form) and latency is measured on the extracted
    sub-networks, whatever the weights: random initialisation, or OFA's published weights read from
    a local ``checkpoint`` file. There is no top-1: no ImageNet here and no accuracy surrogate for
    this supernet, so ``check_metric("top1")`` raises a one-line error saying so.

    Args:
        checkpoint: OFA's ``ofa_resnet50`` checkpoint file, to load its weights (nothing here needs them).
        resolutions: The space's ``r`` choices (a single value, the default 224, leaves ``r`` out).

    Raises:
        FileNotFoundError: ``checkpoint`` names a missing file.

    Example:
        >>> supernet = ofa_resnet50()
        >>> small, large = supernet.extremes()
        >>> supernet.macs(small), supernet.macs(large)
        (962192128, 7491643904)
    """
    config = ResNetConfig(resolutions=tuple(int(r) for r in resolutions))
    net = ElasticResNet(config)
    checkpoint_hash = "untrained"
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"OFA checkpoint {path} does not exist")
        net.load_ofa_state_dict(path)
        checkpoint_hash = file_hash(path)
    return ResNetSupernet(
        net,
        "ofa-resnet50",
        checkpoint_hash,
        metadata={"model_config": config.to_dict()},
        missing_top1=OFA_RESNET50_MISSING_TOP1,
    )
