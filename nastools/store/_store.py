"""The result store: one sqlite file of measurements and searches, complete whenever it may be copied."""

from __future__ import annotations

from pathlib import Path

from nastools.store._searches import Searches


class ResultStore(Searches):
    """Measurements (one row each, never overwritten) and searches in one sqlite file.

    Every public method commits before it returns, so a killed process loses nothing it stored, and
    a batch passed to :meth:`add` is written whole or not at all. A row is keyed by supernet,
    checkpoint, arch, metric, hardware and host: latency measured on one machine is not reused on
    another.

    The file is the store: each write is copied from sqlite's write-ahead log (``PATH-wal``) into it
    as soon as no reader holds it back, and :meth:`close` and :meth:`finish_search` empty the log, so
    copying the file alone, even while a notebook still has it open, copies every row. A ``-wal`` that
    another store left beside the file is refused (sqlite would mix its pages in). To copy a store
    that a process is writing, use :meth:`copy_to` or ``nastools store copy``: the copy gets its own
    store id.

    Args:
        path: The sqlite file; created (with its folder) if absent. ``~`` is expanded.
        read_only: Open an existing store for reading only, also in a read-only folder or medium.

    Raises:
        StoreError: The file is not a nastools result store, was written by a newer nastools, has
            another store's ``-wal`` beside it, or lies where it cannot be written (without
            ``read_only``); it is left untouched.

    Example:
        >>> import os, tempfile
        >>> with ResultStore(os.path.join(tempfile.mkdtemp(), "results.sqlite")) as store:
        ...     store.add([{"supernet_id": "s", "checkpoint_hash": "h", "arch": "d_0=2",
        ...                 "metric": "macs", "hardware": "", "value": 1e6}])
        ...     store.lookup("s", "h", "macs", "", ["d_0=2"])["d_0=2"]["value"]
        1
        1000000.0
    """

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"

    def __enter__(self) -> ResultStore:
        return self

    def copy_to(self, path: str | Path) -> Path:
        """Copy the store to a new file through sqlite's backup API; the copy gets a new store id.

        Safe while this or another process writes the store: the copy is a consistent snapshot,
        rows still in the log included, written whole before it appears at ``path``.

        Args:
            path: Where no store is yet.

        Returns:
            The path of the copy.

        Raises:
            StoreError: ``path`` exists, or the copy cannot be written (a full disk is named).

        Example:
            >>> import os, tempfile
            >>> folder = tempfile.mkdtemp()
            >>> with ResultStore(os.path.join(folder, "results.sqlite")) as store:
            ...     copy = store.copy_to(os.path.join(folder, "backup.sqlite"))
            >>> with ResultStore(copy, read_only=True) as backup:
            ...     backup.store_id != store.store_id
            True
        """
        from nastools.store._copy import copy_from

        return copy_from(self._connection, self.path, path)
