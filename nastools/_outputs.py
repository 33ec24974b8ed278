"""Output paths checked before the work: one-line errors for a path that cannot be written.

A search, a training run or an export takes seconds to minutes; an output that cannot be written
must stop it before it starts, not after. The checks create nothing: a missing folder is left for
the writer to create, and whether a folder accepts files is probed with an unnamed temporary file
(``os.access`` is not enough: it says yes to root under ``/proc`` and on a read-only bind mount).

Example:
    >>> from nastools._outputs import check_output_dir
    >>> check_output_dir("/proc/results", "--out-dir")
    Traceback (most recent call last):
    ...
    FileNotFoundError: --out-dir /proc/results: cannot create files in /proc (...); choose another location
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

__all__ = ["check_output_dir", "check_output_file", "write_atomically"]


def check_output_dir(path: str | Path, what: str) -> Path:
    """Raise unless ``path`` is a folder files can be written into, or one that can be created.

    Args:
        path: The output folder (``~`` is expanded); missing folders are not created here.
        what: What the path is, for the message (``"--out"``, ``"out_dir"``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`, ``~`` expanded.

    Raises:
        NotADirectoryError: ``path``, or a folder above it, is a file.
        OSError: The folder (or the nearest existing one above it) does not accept new files
            (permissions, a read-only or virtual file system); the type is the probe's
            (``PermissionError``, ``FileNotFoundError``, ...).

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile() as file:
        ...     check_output_dir(file.name, "--out")
        Traceback (most recent call last):
        ...
        NotADirectoryError: --out ... is a file, not a folder; give a folder (a missing one is created)
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(
            f"{what} {path} is a file, not a folder; give a folder (a missing one is created)"
        )
    _check_writable_folder(path, what, path)
    return path


def check_output_file(path: str | Path, what: str) -> Path:
    """Raise unless ``path`` names a file that can be written (replaced if it exists).

    Args:
        path: The output file (``~`` is expanded); missing folders above it are not created here.
        what: What the path is, for the message (``"--csv"``, ``"--out"``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`, ``~`` expanded.

    Raises:
        IsADirectoryError: ``path`` is a folder.
        NotADirectoryError: A folder above ``path`` is a file.
        OSError: The file, or the folder it goes into, cannot be written (see :func:`check_output_dir`).

    Example:
        >>> check_output_file("/tmp", "--csv")
        Traceback (most recent call last):
        ...
        IsADirectoryError: --csv /tmp is a folder; give a file name, e.g. /tmp/front.csv
    """
    path = Path(path).expanduser()
    if path.is_dir():
        example = path / f"front{path.suffix or '.csv'}" if what == "--csv" else path / "out"
        raise IsADirectoryError(f"{what} {path} is a folder; give a file name, e.g. {example}")
    if path.is_file():
        try:
            with path.open("ab"):  # opens for writing without changing a byte
                pass
        except OSError as error:
            raise type(error)(
                f"{what} {path} cannot be overwritten ({error.strerror}); choose another location"
            ) from None
    elif not path.exists():
        _check_writable_folder(path.parent, what, path)
    return path


def _check_writable_folder(folder: Path, what: str, target: Path) -> None:
    """Raise unless ``folder`` (or, while it is missing, the nearest folder above it) accepts new files."""
    if folder.is_symlink() and not folder.exists():
        raise FileNotFoundError(f"{what} {target}: {folder} is a broken link; choose another location")
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None:  # a relative path whose working folder is gone
        raise FileNotFoundError(f"{what} {target}: no folder above it exists; choose another location")
    if not existing.is_dir():
        raise NotADirectoryError(
            f"{what} {target}: {existing} is a file, not a folder; choose another location"
        )
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise type(error)(
            f"{what} {target}: cannot create files in {existing} ({error.strerror}); choose another location"
        ) from None


def write_atomically(path: str | Path, data: bytes, what: str) -> Path:
    """Write ``data`` to ``path`` whole or not at all: a temporary file beside it, renamed when complete.

    torch's own writers abort the process on a full disk; writing their bytes from Python turns that
    into an ``OSError`` of one line, and the file under ``path`` is never a partial one. A path that
    is no regular file (``/dev/stdout``, a pipe) is written in place: renaming onto it would replace it.

    Raises:
        OSError: The disk is full or the file cannot be written (one line naming ``what`` and ``path``);
            ``path`` is left as it was.

    Example:
        >>> import tempfile
        >>> write_atomically(Path(tempfile.mkdtemp()) / "x.bin", b"123", "a test file").read_bytes()
        b'123'
    """
    path = Path(path)
    if path.exists() and not path.is_file() and not path.is_dir():
        try:
            with path.open("wb") as file:
                file.write(data)
        except OSError as error:
            raise OSError(error.errno, f"cannot write the {what} {path}: {_why(error, path)}") from None
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp's 0600 would make a shared checkpoint private
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise OSError(
            error.errno, f"cannot write the {what} {path}: {_why(error, path)}; nothing was written"
        ) from None
    return path


def _why(error: OSError, path: Path) -> str:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the disk holding {path.parent}"
    return error.strerror or str(error)


def _umask() -> int:
    """The process's umask (read by setting and restoring it: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
