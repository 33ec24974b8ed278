"""One sqlite file holding every measurement and every search, committed as it is written."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from nastools.metrics import KINDS

__all__ = ["ResultStore", "StoreError"]

_FORMAT = "nastools-store"
_VERSION = 2
_REQUIRED = ("supernet_id", "checkpoint_hash", "arch", "metric", "hardware", "value")
_COLUMNS = (
    "id",
    "supernet_id",
    "checkpoint_hash",
    "arch",
    "metric",
    "hardware",
    "host",
    "kind",
    "value",
    "spread",
    "repeats",
    "flagged",
    "timestamp",
    "search_id",
)
_INSERT = (
    "INSERT INTO measurements (supernet_id, checkpoint_hash, arch, metric, hardware, host, kind, value, "
    "spread, repeats, flagged, timestamp, search_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_CHUNK = 500  # arch keys per IN-clause, well below sqlite's limit on bound variables
_TABLES = """
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY,
    supernet_id TEXT NOT NULL,
    checkpoint_hash TEXT NOT NULL,
    arch TEXT NOT NULL,
    metric TEXT NOT NULL,
    hardware TEXT NOT NULL,
    host TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT 'validation',
    value REAL NOT NULL,
    spread REAL,
    repeats INTEGER,
    flagged INTEGER NOT NULL DEFAULT 0,
    timestamp TEXT NOT NULL,
    search_id TEXT
);
CREATE TABLE IF NOT EXISTS searches (
    search_id TEXT PRIMARY KEY,
    supernet_id TEXT NOT NULL,
    tactic TEXT NOT NULL,
    config TEXT NOT NULL,
    created TEXT NOT NULL,
    finished TEXT
);
CREATE TABLE IF NOT EXISTS populations (
    search_id TEXT NOT NULL REFERENCES searches (search_id),
    generation INTEGER NOT NULL,
    position INTEGER NOT NULL,
    arch TEXT NOT NULL,
    PRIMARY KEY (search_id, generation, position)
);
CREATE TABLE IF NOT EXISTS validations (
    search_id TEXT NOT NULL REFERENCES searches (search_id),
    position INTEGER NOT NULL,
    arch TEXT NOT NULL,
    PRIMARY KEY (search_id, position)
);
"""
_INDEX = """
DROP INDEX IF EXISTS measurements_lookup;
CREATE INDEX IF NOT EXISTS measurements_lookup_v2
    ON measurements (supernet_id, checkpoint_hash, metric, hardware, host, arch);
"""
# v1 stores had no host and no kind: their measured latencies came from an unknown machine.
_MIGRATE_V1 = """
ALTER TABLE measurements ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE measurements ADD COLUMN kind TEXT NOT NULL DEFAULT 'validation';
ALTER TABLE searches ADD COLUMN finished TEXT;
UPDATE measurements SET kind = 'proxy' WHERE metric IN ('macs', 'params');
UPDATE measurements SET host = 'unknown (nastools store v1)'
    WHERE hardware != '' AND hardware NOT LIKE 'lut-%';
"""


class StoreError(ValueError):
    """A file that cannot serve as a nastools result store (the message says why and what to do)."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _missing(value: object) -> bool:
    """None, or a float NaN (what pandas puts in an empty nullable cell)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _keys(archs: Iterable[str]) -> list[str]:
    if isinstance(archs, str):
        raise TypeError("archs must be a list of arch keys, not a single string")
    return [str(arch) for arch in archs]


class ResultStore:
    """Measurements (one row each, never overwritten) and searches in one sqlite file.

    Every public method commits before it returns, so a killed process loses nothing it stored, and
    a batch passed to :meth:`add` is written whole or not at all. A row is keyed by supernet,
    checkpoint, arch, metric, hardware and host: latency measured on one machine is not reused on
    another.

    Args:
        path: The sqlite file; created (with its folder) if absent. ``~`` is expanded.
        read_only: Open an existing store for reading only (a store on a read-only medium).

    Raises:
        StoreError: The file is not a nastools result store, was written by a newer nastools, or
            lies where it cannot be written (without ``read_only``); it is left untouched.

    Example:
        >>> import os, tempfile
        >>> with ResultStore(os.path.join(tempfile.mkdtemp(), "results.sqlite")) as store:
        ...     store.add([{"supernet_id": "s", "checkpoint_hash": "h", "arch": "d_0=2",
        ...                 "metric": "macs", "hardware": "", "value": 1e6}])
        ...     store.lookup("s", "h", "macs", "", ["d_0=2"])["d_0=2"]["value"]
        1
        1000000.0
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path).expanduser()
        self.read_only = read_only
        if self.path.is_dir():
            raise StoreError(
                f"{self.path} is a folder; pass the path of a store file, e.g. {self.path}/results.sqlite"
            )
        existed = self.path.exists() and self.path.stat().st_size > 0
        if read_only and not existed:
            what = "is an empty file" if self.path.exists() else "does not exist"
            raise StoreError(f"{self.path} {what}; a read-only store must be an existing store file")
        if not read_only:
            self._check_writable(existed)
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # one connection per thread: sqlite's objects may not cross threads, and a store is used from
        # several (ipykernel runs widget callbacks on another thread than the cell that opened it)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._connection  # noqa: B018 - open it now: a path that cannot be opened fails here
        try:
            self._prepare()
        except BaseException:
            self.close()
            raise

    def _check_writable(self, existed: bool) -> None:
        folder = self.path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        problem = None
        if existed and not os.access(self.path, os.W_OK):
            problem = "the file cannot be written"
        elif not os.access(folder, os.W_OK):
            problem = "its folder cannot be written (sqlite keeps its journal there)"
        if problem:
            raise StoreError(
                f"{self.path} is read-only ({problem}): copy the store to a writable folder, or open it with "
                "ResultStore(path, read_only=True) to read it"
            )

    def _marker(self) -> tuple[set[str], dict[str, str]]:
        """The file's tables and its ``meta`` entries (raises for a file sqlite cannot read)."""
        try:
            tables = {
                r[0] for r in self._connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            meta = dict(self._connection.execute("SELECT key, value FROM meta")) if "meta" in tables else {}
        except sqlite3.OperationalError as error:  # e.g. locked by a writer for longer than the timeout
            raise StoreError(f"cannot read the store {self.path}: {error}") from None
        except sqlite3.DatabaseError as error:
            raise StoreError(
                f"{self.path} is not a nastools result store ({str(error).replace(chr(10), ' ')}); "
                "pass the path of a new file to start a store"
            ) from None
        return tables, meta

    def _version(self) -> int | None:
        """The store's version; None for an empty file (new, or its creation was killed before a commit).

        Raises:
            StoreError: A foreign file, or a store of a newer version.
        """
        tables, meta = self._marker()
        if not tables:
            return None
        if meta.get("format") != _FORMAT:
            raise StoreError(
                f"{self.path} is not a nastools result store (it has no nastools-store marker); "
                "pass the path of a new file to start a store"
            )
        version = meta.get("version", "")
        if not version.isdigit() or int(version) > _VERSION:
            raise StoreError(
                f"{self.path} is a nastools store of version {version!r}, newer than this nastools reads "
                f"(up to {_VERSION}): upgrade nastools, or pass the path of a new file"
            )
        return int(version)

    def _script(self, script: str) -> None:
        """Run ``;``-separated statements inside the open transaction (``executescript`` would commit it)."""
        for statement in script.split(";"):
            if statement.strip():
                self._connection.execute(statement)

    def _prepare(self) -> None:
        """Check the marker and version; create a new store's tables; upgrade a v1 store."""
        version = self._version()
        if self.read_only:
            if version is None:
                raise StoreError(f"{self.path} is an empty file, not a nastools result store")
            if version < _VERSION:
                raise StoreError(
                    f"{self.path} is a version {version} store; open it writable once to upgrade it"
                )
            return
        if version != _VERSION:
            try:
                self._connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                raise StoreError(f"cannot write to the store {self.path}: {error}") from error
            try:
                version = self._version()  # another process may have set it up while this one waited
                if version is None:
                    self._script(
                        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); "
                        f"INSERT INTO meta VALUES ('format', '{_FORMAT}'), ('version', '{_VERSION}'); "
                        f"{_TABLES} {_INDEX}"
                    )
                elif version < _VERSION:
                    self._script(
                        f"{_MIGRATE_V1} {_TABLES} {_INDEX} "
                        f"UPDATE meta SET value = '{_VERSION}' WHERE key = 'version'"
                    )
                self._connection.execute("COMMIT")
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
        self._connection.execute("PRAGMA journal_mode=WAL")

    @property
    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            try:
                if self.read_only:
                    uri = f"{self.path.resolve().as_uri()}?mode=ro"
                    connection = sqlite3.connect(uri, uri=True, timeout=30.0, check_same_thread=False)
                else:
                    connection = sqlite3.connect(
                        self.path, isolation_level=None, timeout=30.0, check_same_thread=False
                    )
            except sqlite3.Error as error:
                raise StoreError(
                    f"cannot open {self.path} ({error}); pass a path in a writable folder"
                ) from error
            connection.row_factory = sqlite3.Row
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self.read_only:
            raise StoreError(f"{self.path} was opened read-only; open it without read_only=True to write")
        try:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")
        except sqlite3.OperationalError as error:
            raise StoreError(f"cannot write to the store {self.path}: {error}") from error

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"

    def close(self) -> None:
        """Close the connections (everything is committed already)."""
        with self._connections_lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    def add(self, rows: Iterable[Mapping]) -> int:
        """Append measurement rows in one transaction, after validating all of them.

        Args:
            rows: Dicts with ``supernet_id``, ``checkpoint_hash``, ``arch``, ``metric``,
                ``hardware`` (``""`` for hardware-independent metrics) and ``value``; optionally
                ``host`` (the machine a measured latency belongs to), ``kind`` (``validation``,
                ``prediction`` or ``proxy``), ``spread``, ``repeats``, ``flagged``, ``timestamp``
                (UTC now if absent) and ``search_id``. ``id`` and other keys are ignored.

        Returns:
            Number of rows added.

        Raises:
            ValueError: Naming the row and key that is missing or invalid; nothing is written then.
        """
        records = []
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise ValueError(f"measurement row {i} is not a dict; nothing was stored")
            missing = [  # a NaN value is reported as non-finite below, not as missing
                key for key in _REQUIRED if row.get(key) is None or (key != "value" and _missing(row[key]))
            ]
            if missing:
                raise ValueError(f"measurement row {i} lacks {missing}; nothing was stored: {row}")
            try:
                value = float(row["value"])
            except (TypeError, ValueError):
                value = math.nan
            if not math.isfinite(value):
                raise ValueError(
                    f"measurement row {i} has non-finite 'value' {row['value']!r}; nothing was stored: {row}"
                )
            kind = "validation" if _missing(row.get("kind")) or row.get("kind") == "" else row["kind"]
            if kind not in KINDS:
                raise ValueError(
                    f"measurement row {i} has kind {kind!r}; use one of {list(KINDS)}; nothing was stored"
                )
            spread, repeats = row.get("spread"), row.get("repeats")
            timestamp, search_id = row.get("timestamp"), row.get("search_id")
            records.append(
                (
                    str(row["supernet_id"]),
                    str(row["checkpoint_hash"]),
                    str(row["arch"]),
                    str(row["metric"]),
                    str(row["hardware"]),
                    "" if _missing(row.get("host")) else str(row["host"]),
                    kind,
                    value,
                    None if _missing(spread) else float(spread),
                    None if _missing(repeats) else int(repeats),
                    0 if _missing(row.get("flagged")) else int(bool(row["flagged"])),
                    _now() if _missing(timestamp) or timestamp == "" else str(timestamp),
                    None if _missing(search_id) else str(search_id),
                )
            )
        if records:
            with self._transaction():
                self._connection.executemany(_INSERT, records)
        return len(records)

    def lookup(
        self,
        supernet_id: str,
        checkpoint_hash: str,
        metric: str,
        hardware: str,
        archs: list[str],
        host: str = "",
    ) -> dict[str, dict]:
        """The latest stored row (highest id) for each arch key that has one.

        Args:
            supernet_id: Supernet the archs belong to.
            checkpoint_hash: Hash of the checkpoint the measurement was made with.
            metric: Metric name, e.g. ``"top1"`` or ``"latency_ms"``.
            hardware: Hardware key, ``""`` for hardware-independent metrics.
            archs: Canonical arch keys; any number (queried in chunks).
            host: The machine of a measured latency (``""`` for everything else).

        Returns:
            ``{arch: row dict}``; archs without a stored row are absent.
        """
        wanted = list(dict.fromkeys(_keys(archs)))
        found: dict[str, dict] = {}
        for start in range(0, len(wanted), _CHUNK):
            part = wanted[start : start + _CHUNK]
            cursor = self._connection.execute(
                "SELECT * FROM measurements WHERE supernet_id = ? AND checkpoint_hash = ? AND metric = ? "
                f"AND hardware = ? AND host = ? AND arch IN ({','.join('?' * len(part))}) ORDER BY id",
                [supernet_id, checkpoint_hash, metric, hardware, host, *part],
            )
            for row in cursor:
                found[row["arch"]] = dict(row)  # ascending ids: the latest overwrites
        return found

    def measurements(self, **filters: object) -> pd.DataFrame:
        """All measurement rows in insertion order, optionally filtered by column equality.

        Args:
            **filters: Column name to required value, e.g. ``metric="top1"``; None matches NULL.

        Raises:
            ValueError: For a filter name that is not a column (the valid ones are listed).
        """
        unknown = [name for name in filters if name not in _COLUMNS]
        if unknown:
            raise ValueError(f"unknown filter(s) {unknown}; valid columns are {list(_COLUMNS)}")
        clauses = [f"{name} IS NULL" if v is None else f"{name} = ?" for name, v in filters.items()]
        params = [v for v in filters.values() if v is not None]
        return pd.read_sql_query(
            f"SELECT * FROM measurements WHERE {' AND '.join(clauses) or '1'} ORDER BY id",
            self._connection,
            params=params,
        )

    # --- searches -------------------------------------------------------------------------------

    def start_search(
        self, search_id: str, supernet_id: str, tactic: str, config: Mapping[str, object]
    ) -> bool:
        """Register a search; starting the same id again with the same settings resumes it.

        Args:
            search_id: Unique name of the search.
            supernet_id: Supernet searched.
            tactic: Search tactic, e.g. ``"nsga2"``.
            config: JSON-serialisable settings of the search.

        Returns:
            True for a new search, False when an existing one resumes.

        Raises:
            ValueError: If ``search_id`` exists with a different supernet, tactic or config (the
                differing settings are named).
        """
        config_json = json.dumps(dict(config), sort_keys=True, default=str)
        with self._transaction():
            existing = self._connection.execute(
                "SELECT supernet_id, tactic, config FROM searches WHERE search_id = ?", (search_id,)
            ).fetchone()
            if existing is None:
                self._connection.execute(
                    "INSERT INTO searches VALUES (?, ?, ?, ?, ?, NULL)",
                    (search_id, supernet_id, tactic, config_json, _now()),
                )
                return True
            if tuple(existing) != (supernet_id, tactic, config_json):
                raise ValueError(
                    f"search {search_id!r} in {self.path} was run with other settings "
                    f"({_difference(existing, supernet_id, tactic, config_json)}); give this search another "
                    "id, or use another store"
                )
        return False

    def _require_search(self, search_id: str) -> None:
        known = self._connection.execute(
            "SELECT 1 FROM searches WHERE search_id = ?", (search_id,)
        ).fetchone()
        if known is None:
            ids = [
                r[0]
                for r in self._connection.execute(
                    "SELECT search_id FROM searches ORDER BY created DESC LIMIT 8"
                )
            ]
            raise ValueError(f"unknown search_id {search_id!r} in {self.path}; stored searches include {ids}")

    def finish_search(self, search_id: str, summary: Mapping[str, object]) -> None:
        """Mark a search finished, with a JSON-serialisable summary (validations spent, seconds ...).

        Raises:
            ValueError: If ``search_id`` was never started.
        """
        self._require_search(search_id)
        summary_json = json.dumps({"time": _now(), **dict(summary)}, sort_keys=True, default=str)
        with self._transaction():
            self._connection.execute(
                "UPDATE searches SET finished = ? WHERE search_id = ?", (summary_json, search_id)
            )

    def forget_search(self, search_id: str) -> None:
        """Delete a search's record (settings, populations, validation order); its measurements stay.

        For re-running a search under the same id after its tactic changed: the measurements are
        still valid and are reused by the new run.

        Raises:
            ValueError: If ``search_id`` is unknown.
        """
        self._require_search(search_id)
        with self._transaction():
            for table in ("populations", "validations", "searches"):
                self._connection.execute(f"DELETE FROM {table} WHERE search_id = ?", (search_id,))  # noqa: S608

    def has_search(self, search_id: str) -> bool:
        """Whether a search of that id is stored."""
        query = "SELECT 1 FROM searches WHERE search_id = ?"
        return self._connection.execute(query, (search_id,)).fetchone() is not None

    def search(self, search_id: str) -> dict[str, object]:
        """A stored search: its id, supernet, tactic, ``config`` (a dict), ``created`` and ``finished``.

        ``finished`` is the summary dict of :meth:`finish_search` (None while it runs or after a kill).

        Raises:
            ValueError: If ``search_id`` is unknown (a few stored ids are listed).
        """
        self._require_search(search_id)
        row = dict(
            self._connection.execute("SELECT * FROM searches WHERE search_id = ?", (search_id,)).fetchone()
        )
        row["config"] = json.loads(row["config"])
        row["finished"] = json.loads(row["finished"]) if row["finished"] else None
        return row

    def record_population(self, search_id: str, generation: int, archs: list[str]) -> None:
        """Store (or replace) the population of one generation of a search, in one transaction.

        Raises:
            ValueError: If ``search_id`` was never started.
        """
        self._require_search(search_id)
        generation = int(generation)
        rows = [(search_id, generation, i, arch) for i, arch in enumerate(_keys(archs))]
        with self._transaction():
            self._connection.execute(
                "DELETE FROM populations WHERE search_id = ? AND generation = ?", (search_id, generation)
            )
            self._connection.executemany("INSERT INTO populations VALUES (?, ?, ?, ?)", rows)

    def record_validations(self, search_id: str, archs: list[str]) -> None:
        """Append archs a search validated, in order (positions continue from what is stored).

        Archs recorded already for this search are skipped, so a resumed run records each once.

        Raises:
            ValueError: If ``search_id`` was never started.
        """
        self._require_search(search_id)
        with self._transaction():
            stored = {
                r[0]
                for r in self._connection.execute(
                    "SELECT arch FROM validations WHERE search_id = ?", (search_id,)
                )
            }
            start = self._connection.execute(
                "SELECT COUNT(*) FROM validations WHERE search_id = ?", (search_id,)
            ).fetchone()[0]
            new = [a for a in dict.fromkeys(_keys(archs)) if a not in stored]
            self._connection.executemany(
                "INSERT INTO validations VALUES (?, ?, ?)",
                [(search_id, start + i, a) for i, a in enumerate(new)],
            )

    def validations(self, search_id: str) -> list[str]:
        """Arch keys a search validated, in the order it validated them.

        Raises:
            ValueError: If ``search_id`` is unknown.
        """
        self._require_search(search_id)
        cursor = self._connection.execute(
            "SELECT arch FROM validations WHERE search_id = ? ORDER BY position", (search_id,)
        )
        return [row[0] for row in cursor]

    def population(self, search_id: str, generation: int | None = None) -> list[str]:
        """Arch keys of one generation in recorded order; the last generation by default.

        Returns an empty list when nothing was recorded for that generation.

        Raises:
            ValueError: If ``search_id`` is unknown (a few stored ids are listed).
        """
        self._require_search(search_id)
        if generation is None:
            generation = self._connection.execute(
                "SELECT MAX(generation) FROM populations WHERE search_id = ?", (search_id,)
            ).fetchone()[0]
        cursor = self._connection.execute(
            "SELECT arch FROM populations WHERE search_id = ? AND generation = ? ORDER BY position",
            (search_id, generation),
        )
        return [row[0] for row in cursor]

    def history(self, search_id: str) -> pd.DataFrame:
        """Every recorded population of a search: columns ``generation``, ``position``, ``arch``.

        Raises:
            ValueError: If ``search_id`` is unknown.
        """
        self._require_search(search_id)
        return pd.read_sql_query(
            "SELECT generation, position, arch FROM populations WHERE search_id = ? "
            "ORDER BY generation, position",
            self._connection,
            params=[search_id],
        )

    def searches(self) -> pd.DataFrame:
        """The registered searches (search_id, supernet_id, tactic, config JSON, created, finished JSON)."""
        return pd.read_sql_query("SELECT * FROM searches ORDER BY created", self._connection)


def _difference(existing: tuple, supernet_id: str, tactic: str, config_json: str) -> str:
    """Which stored settings differ from the new ones, in a few words."""
    stored_supernet, stored_tactic, stored_config = existing
    if stored_supernet != supernet_id:
        return f"supernet {stored_supernet!r}, now {supernet_id!r}"
    if stored_tactic != tactic:
        return f"tactic {stored_tactic!r}, now {tactic!r}"
    old, new = json.loads(stored_config), json.loads(config_json)
    changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    shown = [f"{k} {_short(old.get(k))} -> {_short(new.get(k))}" for k in changed[:3]]
    return "; ".join(shown) + ("; ..." if len(changed) > 3 else "")


def _short(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."
