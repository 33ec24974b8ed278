"""Export a chosen sub-network as it was measured: a PyTorch program, TorchScript and ONNX.

:func:`export_subnet` writes the module :meth:`Supernet.export_module
<nastools.supernet.Supernet.export_module>` gives (for image supernets: batch norm recalibrated on
the calibration images and folded into the convolutions, exactly what top-1 was measured on) in the
formats asked for, with a ``model.json`` naming the supernet, the arch, its input and every stored
measurement of it. None of the files needs nastools to load:

* ``model.pt2``: ``torch.export.load(path).module()``;
* ``model.torchscript.pt``: ``torch.jit.load(path)``;
* ``model.onnx``: ``onnxruntime.InferenceSession(path)`` (needs ``onnx`` and ``onnxscript`` to write).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nastools.space import Arch
from nastools.store import ResultStore
from nastools.supernet import Supernet

__all__ = ["FORMATS", "export_subnet"]

#: Format name to the file it writes.
FORMATS = {"pt": "model.pt2", "torchscript": "model.torchscript.pt", "onnx": "model.onnx"}


def _dynamic_batch(inputs: tuple[torch.Tensor, ...]) -> tuple[dict[int, Any], ...]:
    batch = torch.export.Dim("batch", min=1, max=4096)
    return tuple({0: batch} for _ in inputs)


def _export_program(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[Any, bool]:
    """``torch.export`` with a dynamic batch size when the module allows it, else a fixed one."""
    try:
        return torch.export.export(module, inputs, dynamic_shapes=_dynamic_batch(inputs)), True
    except Exception:  # noqa: BLE001 - any failure to generalise the batch: export it fixed
        return torch.export.export(module, inputs), False


def export_subnet(
    supernet: Supernet,
    arch: Arch,
    out_dir: str | Path,
    *,
    formats: Sequence[str] = ("pt", "torchscript", "onnx"),
    store: ResultStore | None = None,
    batch_size: int = 2,
) -> list[Path]:
    """Write ``arch``'s sub-network of ``supernet`` as it was measured, in ``formats``, into ``out_dir``.

    Args:
        supernet: The supernet the arch belongs to.
        arch: The chosen sub-network.
        out_dir: Folder for the files (created).
        formats: Any of ``"pt"`` (a ``torch.export`` program), ``"torchscript"``, ``"onnx"``.
        store: Where its measurements are (copied into ``model.json``).
        batch_size: Batch of the example inputs the export traces with (the batch dimension stays
            dynamic where the module allows it).

    Returns:
        The paths written, ``model.json`` last.

    Raises:
        ValueError: An arch outside the space, or an unknown format.
        ImportError: ``"onnx"`` without the ``onnx`` and ``onnxscript`` packages
            (``pip install nastools[export]``).

    Example:
        >>> export_subnet(supernet, arch, "exported/")  # doctest: +SKIP
        [PosixPath('exported/model.pt2'), PosixPath('exported/model.torchscript.pt'), ...]
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"unknown export format(s) {unknown}; choose from {list(FORMATS)}")
    arch = supernet.space.canonical(arch)
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    module = supernet.export_module(arch).eval()
    inputs = tuple(supernet.example_inputs(arch, batch_size))
    written: list[Path] = []
    dynamic = None
    with torch.no_grad():
        if "pt" in formats or "onnx" in formats:
            program, dynamic = _export_program(module, inputs)
        if "pt" in formats:
            torch.export.save(program, out / FORMATS["pt"])
            written.append(out / FORMATS["pt"])
        if "torchscript" in formats:
            with warnings.catch_warnings():
                # the tracer's notes, and TorchScript's deprecation in torch 2.10+
                warnings.simplefilter("ignore")
                torch.jit.trace(module, inputs).save(str(out / FORMATS["torchscript"]))
            written.append(out / FORMATS["torchscript"])
        if "onnx" in formats:
            written.append(_write_onnx(program, inputs, out / FORMATS["onnx"]))
    key = supernet.space.key(arch)
    info = {
        "supernet_id": supernet.supernet_id,
        "checkpoint_hash": supernet.checkpoint_hash,
        "arch": arch,
        "arch_key": key,
        "inputs": [{"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", "")} for t in inputs],
        "dynamic_batch": dynamic,
        "as_measured": "the module the task metric was measured on (Supernet.export_module)",
        "files": [p.name for p in written],
        "measurements": _measurements(store, supernet, key),
    }
    (out / "model.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    return [*written, out / "model.json"]


def _write_onnx(program: Any, inputs: tuple[torch.Tensor, ...], path: Path) -> Path:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise ImportError(
            f"ONNX export needs the onnx and onnxscript packages ({error}): pip install 'nastools[export]'"
        ) from error
    # its registry notes that torchvision's detection ops are skipped: none of them is in a sub-network
    registry = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry.level
    registry.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(program, inputs, str(path), dynamo=True, verbose=False)
    finally:
        registry.setLevel(level)
    return path


def _measurements(store: ResultStore | None, supernet: Supernet, key: str) -> list[dict[str, Any]]:
    if store is None:
        return []
    rows = store.measurements(
        supernet_id=supernet.supernet_id, checkpoint_hash=supernet.checkpoint_hash, arch=key
    )
    columns = ["metric", "hardware", "host", "kind", "value", "spread", "flagged", "timestamp"]
    return rows[columns].to_dict("records")
