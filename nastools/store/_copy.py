"""Copying a store and merging stores through sqlite's backup API, safe while another process writes."""

from __future__ import annotations

import os
import sqlite3
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nastools._outputs import check_output_dir, check_output_file
from nastools.store._connection import (
    StoreError,
    check_wal_belongs,
    connect,
    reading_uri,
    version_of,
    wal_of,
    write_problem,
)
from nastools.store._measurements import INSERTED
from nastools.store._searches import DRIVER, append_validations

# The same measurement: what a byte copy and its original share, and what merging never adds twice.
_SAME_ROW = ("supernet_id", "checkpoint_hash", "arch", "metric", "hardware", "host", "value", "timestamp")
_SEARCH = ("search_id", "supernet_id", "tactic", "config", "created", "finished")


def _new_path(path: str | Path) -> Path:
    """``path`` for a new store: absent (or empty), with no log of another store beside it."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise StoreError(
            f"{path} is a folder; pass the path of the new store file, e.g. {path}/results.sqlite"
        )
    if path.exists() and path.stat().st_size > 0:
        raise StoreError(
            f"{path} exists; pass the path of a new file (to add a store's rows to an existing one, use "
            "merge_stores / `nastools store merge`)"
        )
    wal = wal_of(path)
    if wal.exists() and wal.stat().st_size > 0:
        raise StoreError(f"{wal} exists beside the new store's path; move it away or pass another path")
    return path


def _backup(source: sqlite3.Connection, path: Path) -> None:
    """Write a consistent snapshot of ``source`` to the new file ``path`` (all pages in one step)."""
    target = sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        target.close()


def _open_source(path: str | Path) -> tuple[Path, sqlite3.Connection]:
    """A read-only connection to a store file another process may be writing (its log checked first)."""
    path = Path(path).expanduser()
    if not path.is_file() or path.stat().st_size == 0:
        what = "is a folder" if path.is_dir() else "is an empty file" if path.exists() else "does not exist"
        raise StoreError(f"{path} {what}; pass the path of an existing store")
    uri = reading_uri(path)
    check_wal_belongs(path)
    connection = connect(uri, uri=True)
    try:
        version, _ = version_of(connection, path, source=True)  # a nastools store, not a newer one
    except BaseException:
        connection.close()
        raise
    if version is None:
        connection.close()
        raise StoreError(f"{path} is an empty sqlite file, not a nastools result store")
    return path, connection


def _snapshot(source: str | Path, folder: Path):
    """A private copy of a store, upgraded to this version, opened writable."""
    from nastools.store._store import ResultStore

    path, connection = _open_source(source)
    copy = folder / f"{uuid.uuid4().hex}.sqlite"
    try:
        _backup(connection, copy)
    finally:
        connection.close()
    return path, ResultStore(copy)


def _remove(path: Path) -> None:
    for leftover in (path, wal_of(path), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)


def copy_store(source: str | Path, destination: str | Path) -> Path:
    """Copy a store to a new file, safely while another process writes it; the copy gets a new id.

    The copy is made with sqlite's backup API (a consistent snapshot, the rows in the source's
    ``-wal`` included), upgraded to this nastools' store version, given a new store id (a byte copy
    shares its original's id, so a ``-wal`` of one would be taken for the other's) and written as one
    complete file, which appears at ``destination`` only once whole.

    Args:
        source: An existing store file.
        destination: A path where no store is yet.

    Returns:
        The path of the copy.

    Raises:
        StoreError: ``source`` is no store (or its log belongs to another store), ``destination``
            exists, or the copy cannot be written (a full disk is named).

    Example:
        >>> import os, tempfile
        >>> from nastools.store import ResultStore, copy_store
        >>> folder = tempfile.mkdtemp()
        >>> with ResultStore(os.path.join(folder, "results.sqlite")) as store:
        ...     _ = store.add([{"supernet_id": "s", "checkpoint_hash": "h", "arch": "d_0=2",
        ...                     "metric": "macs", "hardware": "", "value": 1e6}])
        >>> copy = copy_store(os.path.join(folder, "results.sqlite"), os.path.join(folder, "copy.sqlite"))
        >>> with ResultStore(copy, read_only=True) as copied:
        ...     len(copied.measurements())
        1
    """
    path, connection = _open_source(source)
    try:
        return copy_from(connection, path, destination)
    finally:
        connection.close()


def copy_from(connection: sqlite3.Connection, source: Path, destination: str | Path) -> Path:
    """Copy what ``connection`` reads (the store at ``source``) to ``destination``; see :func:`copy_store`."""
    from nastools.store._store import ResultStore

    destination = _new_path(destination)
    if destination.resolve() == source.resolve():
        raise StoreError(f"{source} would be copied onto itself; pass another destination")
    try:
        check_output_file(destination, "the copy")
    except OSError as error:  # sqlite would say only "unable to open database file"
        raise StoreError(f"cannot copy {source}: {error}") from None
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        _backup(connection, partial)
        with ResultStore(partial) as copy:  # upgrades an older store; closing empties the log
            with copy._transaction() as writing:  # its last_commit is stamped with the new id
                copy.store_id = uuid.uuid4().hex
                writing.execute("UPDATE meta SET value = ? WHERE key = 'store_id'", (copy.store_id,))
                # a search that runs in the source is nobody's here
                writing.execute(f"UPDATE searches SET {' = NULL, '.join(DRIVER.split(', '))} = NULL")
        os.replace(partial, destination)
    except sqlite3.OperationalError as error:
        raise StoreError(f"cannot copy {source} to {destination}: {write_problem(error)}") from error
    except StoreError as error:
        raise StoreError(f"cannot copy {source} to {destination}: {error}") from error
    finally:
        _remove(partial)
    return destination


@dataclass(frozen=True)
class MergeResult:
    """What :func:`merge_stores` did.

    Attributes:
        into: The store merged into.
        n_sources: Stores merged.
        measurements_added: Measurement rows appended.
        measurements_present: Rows of the sources the store held already.
        searches_added: Searches copied whole.
        searches_merged: Searches present in both, completed with what the source had.
    """

    into: Path
    n_sources: int
    measurements_added: int = 0
    measurements_present: int = 0
    searches_added: int = 0
    searches_merged: int = 0

    def __str__(self) -> str:
        return (
            f"merged {self.n_sources} store(s) into {self.into}: {self.measurements_added} measurements "
            f"added ({self.measurements_present} there already); searches: {self.searches_added} added, "
            f"{self.searches_merged} merged"
        )


def merge_stores(sources: Iterable[str | Path], into: str | Path) -> MergeResult:
    """Add the measurements and searches of stores to another (created if absent).

    Each source is read through a consistent snapshot (sqlite's backup API), so another process may
    be writing it meanwhile. A measurement row is added unless the store holds the same row (same
    supernet, checkpoint, arch, metric, hardware, host, value and timestamp): merging a store twice,
    or into a copy of itself, adds nothing. A search the store lacks is copied with its validations
    and populations; one it holds with the same settings is completed (validations it lacks are
    appended in order, generations it lacks added, its summary taken if it has none). All sources
    are checked before anything is written.

    Args:
        sources: Store files to merge.
        into: The store to merge them into.

    Returns:
        The counts, as :class:`MergeResult` (its ``str`` is a one-line summary).

    Raises:
        StoreError: A source is no store, is ``into`` itself, or a search id is stored in two of the
            stores with different settings (named; nothing is written then).

    Example:
        >>> import os, tempfile
        >>> from nastools.store import ResultStore, merge_stores
        >>> folder = tempfile.mkdtemp()
        >>> for name, arch in (("a.sqlite", "d_0=2"), ("b.sqlite", "d_0=3")):
        ...     with ResultStore(os.path.join(folder, name)) as store:
        ...         _ = store.add([{"supernet_id": "s", "checkpoint_hash": "h", "arch": arch,
        ...                         "metric": "macs", "hardware": "", "value": 1e6}])
        >>> result = merge_stores([os.path.join(folder, "b.sqlite")], os.path.join(folder, "a.sqlite"))
        >>> result.measurements_added, result.measurements_present
        (1, 0)
    """
    from nastools.store._store import ResultStore

    into = Path(into).expanduser()
    paths = [Path(source).expanduser() for source in sources]
    if not paths:
        raise ValueError("merge_stores needs at least one source store")
    for path in paths:
        if path.exists() and into.exists() and path.resolve() == into.resolve():
            raise StoreError(f"{path} is the store merged into; pass other sources")
    try:  # the snapshots are written beside the store, which is written too
        check_output_file(into, "the store merged into")
        check_output_dir(into.parent, "its folder")
        into.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # not the snapshots' temporary folder: the store is what was asked for
        raise StoreError(f"cannot merge into {into}: {error}") from None
    counts = [0, 0, 0, 0]
    with tempfile.TemporaryDirectory(prefix=".nastools-merge-", dir=into.parent) as folder:
        snapshots = []
        try:
            for path in paths:  # every source is read before the target is opened (or created)
                snapshots.append(_snapshot(path, Path(folder)))
            with ResultStore(into) as target:
                _check_searches(target, snapshots)
                for _, snapshot in snapshots:
                    for i, n in enumerate(_merge(target, snapshot)):
                        counts[i] += n
        except sqlite3.OperationalError as error:  # a full disk, while a snapshot or the merge is written
            raise StoreError(f"cannot merge into {into}: {write_problem(error)}") from None
        finally:
            for _, snapshot in snapshots:
                snapshot.close()
    return MergeResult(into, len(paths), *counts)


def _settings(store) -> dict[str, tuple]:
    query = "SELECT search_id, supernet_id, tactic, config FROM searches"
    return {row[0]: tuple(row[1:]) for row in store._connection.execute(query)}


def _check_searches(target, snapshots: list) -> None:
    """Refuse a search id stored in two of the stores with different settings."""
    seen = {search_id: (target.path, settings) for search_id, settings in _settings(target).items()}
    for path, snapshot in snapshots:
        for search_id, settings in _settings(snapshot).items():
            where, known = seen.setdefault(search_id, (path, settings))
            if known != settings:
                raise StoreError(
                    f"search {search_id!r} is stored in {path} and in {where} with different settings; "
                    "nothing was merged: forget it in one of them (ResultStore.forget_search) or keep the "
                    "stores apart"
                )


def _merge(target, snapshot) -> tuple[int, int, int, int]:
    """Merge one snapshot into the target: rows added, rows present, searches added, searches merged."""
    connection = target._connection
    columns = ", ".join(INSERTED)
    same = " AND ".join(f"m.{c} = s.{c}" for c in _SAME_ROW)
    connection.execute("ATTACH DATABASE ? AS source", (str(snapshot.path),))
    try:
        with target._transaction():
            total = connection.execute("SELECT COUNT(*) FROM source.measurements").fetchone()[0]
            added = connection.execute(
                f"INSERT INTO main.measurements ({columns}) SELECT {columns} FROM source.measurements AS s "
                f"WHERE NOT EXISTS (SELECT 1 FROM main.measurements AS m WHERE {same}) ORDER BY s.id"
            ).rowcount
            known = {r[0] for r in connection.execute("SELECT search_id FROM main.searches")}
            source_ids = [
                r[0] for r in connection.execute("SELECT search_id FROM source.searches ORDER BY created")
            ]
            for search_id in source_ids:
                _merge_search(connection, search_id, new=search_id not in known)
    finally:
        connection.execute("DETACH DATABASE source")
    n_new = sum(search_id not in known for search_id in source_ids)
    return added, total - added, n_new, len(source_ids) - n_new


def _merge_search(connection: sqlite3.Connection, search_id: str, new: bool) -> None:
    columns = ", ".join(_SEARCH)
    if new:  # the copy is nobody's to run yet: no driver
        connection.execute(
            f"INSERT INTO main.searches ({columns}) "
            f"SELECT {columns} FROM source.searches WHERE search_id = ?",
            (search_id,),
        )
    else:
        connection.execute(
            "UPDATE main.searches SET finished = (SELECT finished FROM source.searches WHERE search_id = ?) "
            "WHERE search_id = ? AND finished IS NULL",
            (search_id, search_id),
        )
    archs = [
        r[0]
        for r in connection.execute(
            "SELECT arch FROM source.validations WHERE search_id = ? ORDER BY position", (search_id,)
        )
    ]
    append_validations(connection, search_id, archs)
    connection.execute(
        "INSERT INTO main.populations SELECT * FROM source.populations AS s WHERE s.search_id = ? "
        "AND NOT EXISTS (SELECT 1 FROM main.populations AS m "
        "WHERE m.search_id = s.search_id AND m.generation = s.generation)",
        (search_id,),
    )
