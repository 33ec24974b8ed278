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
import errno
import io
import json
import logging
import numbers
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nastools._outputs import check_output_dir
from nastools.space import Arch
from nastools.store import ResultStore
from nastools.supernet import Supernet

__all__ = ["FORMATS", "export_subnet"]

#: Format name to the file it writes.
FORMATS = {"pt": "model.pt2", "torchscript": "model.torchscript.pt", "onnx": "model.onnx"}
#: Every file an export may write besides ``model.json`` (ONNX puts large weights in ``model.onnx.data``).
_EXPORT_FILES = (*FORMATS.values(), "model.onnx.data")


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
    store: ResultStore | str | Path | None = None,
    batch_size: int = 2,
) -> list[Path]:
    """Write ``arch``'s sub-network of ``supernet`` as it was measured, in ``formats``, into ``out_dir``.

    Args:
        supernet: The supernet the arch belongs to.
        arch: The chosen sub-network.
        out_dir: Folder for the files (created). Each file is renamed into place once complete,
            ``model.json`` last: a folder with a ``model.json`` holds a complete export. The files
            of an earlier export there that this one does not write (``model.onnx`` when only
            ``"pt"`` is asked for) are removed, so that they are not taken for this arch's.
        formats: A list of any of ``"pt"`` (a ``torch.export`` program), ``"torchscript"``, ``"onnx"``.
        store: Where its measurements are (copied into ``model.json``): a :class:`ResultStore`, or
            the path of one (opened read-only).
        batch_size: Batch of the example inputs the export traces with (the batch dimension stays
            dynamic where the module allows it).

    Returns:
        The paths written, ``model.json`` last.

    Raises:
        ValueError: An arch outside the space, an unknown format, formats given as one string, a
            store that is neither a ResultStore nor a path, or a batch size that is not a positive
            integer.
        ImportError: ``"onnx"`` without the ``onnx`` and ``onnxscript`` packages
            (``pip install nastools[export]``).
        OSError: ``out_dir`` cannot be written (checked before the work), or its disk is full (checked
            before the work against a generous estimate, and met while writing): one line naming the
            folder; no file of the failed export is left in ``out_dir``.

    Example:
        >>> export_subnet(supernet, arch, "exported/")  # doctest: +SKIP
        [PosixPath('exported/model.pt2'), PosixPath('exported/model.torchscript.pt'), ...]
    """
    if isinstance(formats, str):
        raise ValueError(f"formats is a list of format names, e.g. formats=[{formats!r}]; got {formats!r}")
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"unknown export format(s) {unknown}; choose from {list(FORMATS)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(
            f"batch_size must be a positive integer (the batch the export traces with), got {batch_size!r}"
        )
    batch_size = int(batch_size)
    if store is not None and not isinstance(store, (ResultStore, str, Path)):
        raise ValueError(
            f"store must be a ResultStore, the path of one, or None, got {type(store).__name__} ({store!r})"
        )
    arch = supernet.space.canonical(arch)
    out = check_output_dir(out_dir, "out_dir")
    _check_free_space(out, supernet.params(arch), formats)
    key = supernet.space.key(arch)
    measurements = _measurements(store, supernet, key)  # a store that cannot be read fails before the work
    module = supernet.export_module(arch).eval()
    inputs = tuple(supernet.example_inputs(arch, batch_size))
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    # every file is written under a hidden folder in out_dir, then renamed into place (the same file
    # system, so a rename that cannot fail for space): a failed export leaves nothing that looks like one
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    try:
        written, dynamic = _write_formats(module, inputs, formats, staging, out)
        info = {
            "supernet_id": supernet.supernet_id,
            "checkpoint_hash": supernet.checkpoint_hash,
            "arch": arch,
            "arch_key": key,
            "inputs": [{"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", "")} for t in inputs],
            "dynamic_batch": dynamic,
            "as_measured": "the module the task metric was measured on (Supernet.export_module)",
            "files": written,
            "measurements": measurements,
        }
        with _writing(out, "model.json"):
            _write_bytes(staging / "model.json", (json.dumps(info, indent=2, default=str) + "\n").encode())
        _install(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:  # a failed export into a new folder leaves no folder behind
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return [*(out / name for name in written), out / "model.json"]


def _check_free_space(out: Path, n_params: int, formats: Sequence[str]) -> None:
    """Raise before the work when the disk holding ``out`` has clearly too little space for the files.

    The estimate is generous: each format holds the float32 weights once, plus its graph; counted
    twice, plus 1 MiB per format.
    """
    needed = len(formats) * (2 * 4 * int(n_params) + 2**20)
    existing = next(p for p in (out, *out.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if free < needed:
        raise OSError(
            errno.ENOSPC,
            f"export to {out}: the disk holding {existing} has {free / 1e6:.1f} MB free and the "
            f"{'/'.join(formats)} files need about {needed / 1e6:.0f} MB; free space there or choose another "
            "out_dir (nothing was written)",
        )


def _write_formats(
    module: nn.Module, inputs: tuple[torch.Tensor, ...], formats: Sequence[str], staging: Path, out: Path
) -> tuple[list[str], bool | None]:
    """Write each format's file under ``staging``; the names written and whether the batch is dynamic.

    torch's own writers abort the process (a C++ exception in a destructor) when the disk fills up,
    so the ``torch.export`` program and the TorchScript module are serialised in memory and written
    here, where a full disk is an ``OSError``.
    """
    written: list[str] = []
    dynamic = None
    with torch.no_grad():
        if "pt" in formats or "onnx" in formats:
            program, dynamic = _export_program(module, inputs)
        if "pt" in formats:
            with _writing(out, FORMATS["pt"]):
                buffer = io.BytesIO()
                torch.export.save(program, buffer)
                _write_bytes(staging / FORMATS["pt"], buffer.getvalue())
            written.append(FORMATS["pt"])
        if "torchscript" in formats:
            with warnings.catch_warnings():
                # the tracer's notes, and TorchScript's deprecation in torch 2.10+
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(module, inputs)
                with _writing(out, FORMATS["torchscript"]):
                    buffer = io.BytesIO()
                    torch.jit.save(traced, buffer)
                    _write_bytes(staging / FORMATS["torchscript"], buffer.getvalue())
            written.append(FORMATS["torchscript"])
        if "onnx" in formats:
            with _writing(out, FORMATS["onnx"]):  # its writer is Python's: a full disk is an OSError
                _write_onnx(program, inputs, staging / FORMATS["onnx"])
            written.append(FORMATS["onnx"])
    return written, dynamic


def _write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and flush it to the disk (so that a full disk shows here)."""
    with path.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


@contextlib.contextmanager
def _writing(out: Path, name: str) -> Iterator[None]:
    """Turn a failure to write ``name`` into one line naming ``out`` and its disk."""
    try:
        yield
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(
                error.errno,
                f"export to {out} failed writing {name}: no space left on the disk holding {out}; free space "
                "there or choose another out_dir (nothing was written)",
            ) from error
        raise OSError(
            error.errno,
            f"export to {out} failed writing {name}: {error.strerror or error}; nothing was written",
        ) from error


def _install(staging: Path, out: Path) -> None:
    """Move the finished files from ``staging`` into ``out``: ``model.json`` first out, last in.

    The files of an earlier export that this one does not replace are removed: beside the new
    ``model.json`` they would pass for the new arch.
    """
    (out / "model.json").unlink(missing_ok=True)  # a half-replaced export must not look complete
    for name in _EXPORT_FILES:
        if not (staging / name).exists():
            (out / name).unlink(missing_ok=True)
    for path in sorted(staging.iterdir()):
        if path.name != "model.json":
            os.replace(path, out / path.name)
    os.replace(staging / "model.json", out / "model.json")


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


def _measurements(
    store: ResultStore | str | Path | None, supernet: Supernet, key: str
) -> list[dict[str, Any]]:
    if store is None:
        return []
    if not isinstance(store, ResultStore):
        with ResultStore(store, read_only=True) as opened:
            return _measurements(opened, supernet, key)
    rows = store.measurements(
        supernet_id=supernet.supernet_id, checkpoint_hash=supernet.checkpoint_hash, arch=key
    )
    columns = ["metric", "hardware", "host", "kind", "value", "spread", "flagged", "timestamp"]
    return rows[columns].to_dict("records")
