"""The one checkpoint format of trained supernets (``"nastools-supernet"``), for every family and task.

A checkpoint is a ``torch.save`` dict, self-describing: ``format``, ``version``, ``kind`` (the family
that reads it back: its ``CHECKPOINT_KINDS``), ``model_config`` (the network's ``config.to_dict()``),
``data_config`` (the task's ``config.to_dict()``: version 1's name for the task's config, kept so every
checkpoint written so far reads as it is), ``training_config``, ``log``, ``report`` (the checks) and
``state_dict``. :func:`nastools.supernet.load_checkpoint` checks the file (zip checksums, header,
a version this nastools reads) and hands the payload to the family's reader, which calls
:func:`read_checkpoint` for the rest.

One module for image and sequence families alike: the format does not depend on the task.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nastools._outputs import write_atomically
from nastools.supernet import CHECKPOINT_VERSION, check_finite_weights

__all__ = ["CHECKPOINT_FORMAT", "read_checkpoint", "resave_checkpoint", "save_checkpoint"]

#: The ``format`` entry of every nastools supernet checkpoint.
CHECKPOINT_FORMAT = "nastools-supernet"
#: The metadata a reader returns, as stored.
METADATA_KEYS = ("model_config", "data_config", "training_config", "log", "report")


def save_checkpoint(
    path: str | Path,
    kind: str,
    network: nn.Module,
    task_config: Any,
    training_config: Any,
    log: Mapping,
    report: Mapping | None = None,
    *,
    weights_dtype: torch.dtype | None = None,
) -> Path:
    """Write a self-describing checkpoint atomically: weights, kind, model/task/training configs, log, report.

    The bytes go through :func:`nastools._outputs.write_atomically` (torch's own file writer aborts
    the process on a full disk): a failed write leaves what was there before.

    Args:
        path: The file to write (its folder is made).
        kind: The family that reads it back (its ``CHECKPOINT_KINDS``).
        network: The trained network: ``config.to_dict()`` and ``state_dict()``.
        task_config: The task's config (``to_dict()``), so the reader rebuilds the same task.
        training_config: The training settings (a dataclass, or the dict a checkpoint stored).
        log: The training log.
        report: The checks (:func:`nastools.supernets._checks.supernet_report`).
        weights_dtype: Store floating-point weights in this dtype (``torch.float16`` halves the
            file); the reader loads them into the network's own dtype. Default: as they are.

    Returns:
        ``path``.

    Raises:
        OSError: The file cannot be written (one line: the disk is full, the folder is read-only ...).

    Example:
        >>> import tempfile
        >>> from nastools.supernets._training import TrainingConfig
        >>> from nastools.tasks.text import TextConfig
        >>> class Net(torch.nn.Linear):
        ...     config = TextConfig()  # any dataclass with to_dict()
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = Path(folder, "n.pt")
        ...     _ = save_checkpoint(path, "demo", Net(2, 2), TextConfig(), TrainingConfig(), {})
        ...     sorted(torch.load(path, weights_only=True))[:4]
        ['data_config', 'format', 'kind', 'log']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = network.state_dict()
    if weights_dtype is not None:
        state = {k: v.to(weights_dtype) if v.is_floating_point() else v for k, v in state.items()}
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "kind": kind,
        "model_config": network.config.to_dict(),
        "data_config": task_config.to_dict(),
        "training_config": (
            dict(training_config) if isinstance(training_config, Mapping) else asdict(training_config)
        ),
        "log": dict(log),
        "report": dict(report or {}),
        "state_dict": state,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)  # torch's file writer aborts the process on a full disk; Python's raises
    return write_atomically(path, buffer.getvalue(), "checkpoint")


def read_checkpoint(
    path: Path,
    payload: Mapping[str, Any],
    build: Callable[[Mapping[str, Any]], nn.Module],
    load_task: Callable[[Mapping[str, Any]], Any],
    supernet_id: str | None = None,
) -> tuple[nn.Module, Any, dict[str, Any], str]:
    """The network, task, metadata and id of a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: The file (its stem is the default id).
        payload: Its loaded contents (:func:`nastools.supernet.load_checkpoint` checked the file).
        build: ``model_config dict -> network``.
        load_task: ``task config dict -> task``.
        supernet_id: Overrides the id.

    Returns:
        The network with the stored weights (in its own dtype), the task, the stored
        :data:`METADATA_KEYS`, and the id.

    Raises:
        ValueError: Entries are missing, the configs do not build, the weights do not fit the network
            (the first differing keys are named), or a weight is not finite (the tensor is named).
    """
    lacking = [k for k in ("model_config", "data_config", "state_dict") if k not in payload]
    if lacking:
        raise ValueError(f"{path}: an incomplete checkpoint, without {lacking}")
    try:
        network = build(payload["model_config"])
        task = load_task(payload["data_config"])
    except Exception as error:  # noqa: BLE001 - any failure here means an unusable file
        raise ValueError(f"{path}: unreadable configs ({type(error).__name__}: {error})") from error
    state = payload["state_dict"]
    expected = network.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{path}: the weights do not fit the network its config builds: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]} ({len(missing)} and {len(unexpected)} keys)"
        )
    check_finite_weights(path, state)  # a NaN weight would load and score like any other
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(
            f"{path}: the weights' shapes do not fit its config ({str(error).splitlines()[1:2]})"
        ) from error
    metadata = {k: payload.get(k, {}) for k in METADATA_KEYS}
    return network, task, metadata, supernet_id or Path(path).stem


def resave_checkpoint(supernet: Any, path: str | Path, kind: str | None) -> Path:
    """Write a supernet read from a checkpoint back as one: its weights, configs, log and report.

    What every family's ``Supernet.save_checkpoint`` does (the conformance suite's round trip).

    Raises:
        ValueError: It was not read from a checkpoint (no ``kind`` or task: no training record to write).
    """
    if kind is None or supernet.task is None:
        raise ValueError(
            f"supernet {supernet.supernet_id!r} was not read from a checkpoint, so it has no training record "
            "to write; python -m nastools.training writes one"
        )
    stored = supernet.metadata
    return save_checkpoint(
        path,
        kind,
        supernet.net,
        supernet.task.config,
        stored["training_config"],
        stored["log"],
        stored["report"],
    )
