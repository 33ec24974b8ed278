"""One sqlite file holding every measurement and every search population, committed as written."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

__all__ = ["ResultStore", "StoreError"]

_FORMAT = "nastools-store"
_VERSION = 1
_REQUIRED = ("supernet_id", "checkpoint_hash", "arch", "metric", "hardware", "value")
_COLUMNS = (
    "id",
    "supernet_id",
    "checkpoint_hash",
    "arch",
    "metric",
    "hardware",
    "value",
    "spread",
    "repeats",
    "flagged",
    "timestamp",
    "search_id",
)
_INSERT = (
    "INSERT INTO measurements (supernet_id, checkpoint_hash, arch, metric, hardware, value, "
    "spread, repeats, flagged, timestamp, search_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_CHUNK = 500  # arch keys per IN-clause, well below sqlite's limit on bound variables
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('format', '{_FORMAT}'), ('version', '{_VERSION}');
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY,
    supernet_id TEXT NOT NULL,
    checkpoint_hash TEXT NOT NULL,
    arch TEXT NOT NULL,
    metric TEXT NOT NULL,
    hardware TEXT NOT NULL,
    value REAL NOT NULL,
    spread REAL,
    repeats INTEGER,
    flagged INTEGER NOT NULL DEFAULT 0,
    timestamp TEXT NOT NULL,
    search_id TEXT
);
CREATE INDEX IF NOT EXISTS measurements_lookup
    ON measurements (supernet_id, checkpoint_hash, metric, hardware, arch);
CREATE TABLE IF NOT EXISTS searches (
    search_id TEXT PRIMARY KEY,
    supernet_id TEXT NOT NULL,
    tactic TEXT NOT NULL,
    config TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS populations (
    search_id TEXT NOT NULL REFERENCES searches (search_id),
    generation INTEGER NOT NULL,
    position INTEGER NOT NULL,
    arch TEXT NOT NULL,
    PRIMARY KEY (search_id, generation, position)
);
"""


class StoreError(ValueError):
    """A file that is not a nastools result store."""


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
    """Measurements (one row each, never overwritten) and search populations in one sqlite file.

    Every public method commits before it returns, so a killed process loses nothing it stored, and
    a batch passed to :meth:`add` is written whole or not at all.

    Args:
        path: The sqlite file; created (with its folder) if absent.

    Raises:
        StoreError: If ``path`` exists but is not a nastools result store (it is left untouched).

    Example:
        >>> import os, tempfile
        >>> with ResultStore(os.path.join(tempfile.mkdtemp(), "results.sqlite")) as store:
        ...     store.add([{"supernet_id": "s", "checkpoint_hash": "h", "arch": "d_0=2",
        ...                 "metric": "macs", "hardware": "", "value": 1e6}])
        ...     store.lookup("s", "h", "macs", "", ["d_0=2"])["d_0=2"]["value"]
        1
        1000000.0
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        existed = self.path.exists() and self.path.stat().st_size > 0
        if existed:
            self._check_existing()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        self._connection.row_factory = sqlite3.Row
        try:
            if not existed:
                self._connection.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")
            self._connection.execute("PRAGMA journal_mode=WAL")
        except BaseException:
            self._connection.close()
            raise

    def _check_existing(self) -> None:
        """Raise :class:`StoreError` unless the file carries the marker; opened read-only."""
        problem = None
        try:
            connection = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                has_meta = connection.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
                ).fetchone()
                marker = (
                    has_meta and connection.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
                )
                if not marker or marker[0] != _FORMAT:
                    problem = "it has no nastools-store marker"
            finally:
                connection.close()
        except sqlite3.DatabaseError as error:
            problem = str(error).replace("\n", " ")
        if problem:
            raise StoreError(
                f"{self.path} is not a nastools result store ({problem}); "
                "pass the path of a new file to start a store"
            )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield self._connection
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"

    def close(self) -> None:
        """Close the connection (everything is committed already)."""
        self._connection.close()

    def add(self, rows: Iterable[Mapping]) -> int:
        """Append measurement rows in one transaction, after validating all of them.

        Args:
            rows: Dicts with ``supernet_id``, ``checkpoint_hash``, ``arch``, ``metric``,
                ``hardware`` (``""`` for hardware-independent metrics) and ``value``; optionally
                ``spread``, ``repeats``, ``flagged``, ``timestamp`` (UTC now if absent) and
                ``search_id``. ``id`` and other keys are ignored.

        Returns:
            Number of rows added.

        Raises:
            ValueError: Naming the row and key that is missing or not a finite number; nothing
                is written then.
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
            spread, repeats = row.get("spread"), row.get("repeats")
            timestamp, search_id = row.get("timestamp"), row.get("search_id")
            records.append(
                (
                    str(row["supernet_id"]),
                    str(row["checkpoint_hash"]),
                    str(row["arch"]),
                    str(row["metric"]),
                    str(row["hardware"]),
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
        self, supernet_id: str, checkpoint_hash: str, metric: str, hardware: str, archs: list[str]
    ) -> dict[str, dict]:
        """The latest stored row (highest id) for each arch key that has one.

        Args:
            supernet_id: Supernet the archs belong to.
            checkpoint_hash: Hash of the checkpoint the measurement was made with.
            metric: Metric name, e.g. ``"top1"`` or ``"latency_ms"``.
            hardware: Hardware key, ``""`` for hardware-independent metrics.
            archs: Canonical arch keys; any number (queried in chunks).

        Returns:
            ``{arch: row dict}``; archs without a stored row are absent.
        """
        wanted = list(dict.fromkeys(_keys(archs)))
        found: dict[str, dict] = {}
        for start in range(0, len(wanted), _CHUNK):
            part = wanted[start : start + _CHUNK]
            cursor = self._connection.execute(
                "SELECT * FROM measurements WHERE supernet_id = ? AND checkpoint_hash = ? "
                f"AND metric = ? AND hardware = ? AND arch IN ({','.join('?' * len(part))}) "
                "ORDER BY id",
                [supernet_id, checkpoint_hash, metric, hardware, *part],
            )
            for row in cursor:
                found[row["arch"]] = dict(row)  # ascending ids: the latest overwrites
        return found

    def measurements(self, **filters: object) -> pd.DataFrame:
        """All measurement rows in insertion order, optionally filtered by column equality.

        Args:
            **filters: Column name to required value, e.g. ``metric="top1"``; None matches NULL.

        Returns:
            A DataFrame with one column per measurement column.

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

    def start_search(
        self, search_id: str, supernet_id: str, tactic: str, config: Mapping[str, object]
    ) -> None:
        """Register a search; starting the same id again with the same settings resumes it.

        Args:
            search_id: Unique name of the search.
            supernet_id: Supernet searched.
            tactic: Search tactic, e.g. ``"nsga2"``.
            config: JSON-serialisable settings of the search.

        Raises:
            ValueError: If ``search_id`` exists with a different supernet, tactic or config.
        """
        config_json = json.dumps(dict(config), sort_keys=True, default=str)
        with self._transaction():
            existing = self._connection.execute(
                "SELECT supernet_id, tactic, config FROM searches WHERE search_id = ?", (search_id,)
            ).fetchone()
            if existing is None:
                self._connection.execute(
                    "INSERT INTO searches VALUES (?, ?, ?, ?, ?)",
                    (search_id, supernet_id, tactic, config_json, _now()),
                )
            elif tuple(existing) != (supernet_id, tactic, config_json):
                raise ValueError(
                    f"search {search_id!r} already exists with another supernet, tactic or config "
                    f"(stored: {tuple(existing)}); choose a new search_id"
                )

    def _require_search(self, search_id: str) -> None:
        known = self._connection.execute(
            "SELECT 1 FROM searches WHERE search_id = ?", (search_id,)
        ).fetchone()
        if known is None:
            ids = [
                r[0]
                for r in self._connection.execute(
                    "SELECT search_id FROM searches ORDER BY created DESC LIMIT 5"
                )
            ]
            raise ValueError(f"unknown search_id {search_id!r}; stored searches include {ids}")

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
                "DELETE FROM populations WHERE search_id = ? AND generation = ?",
                (search_id, generation),
            )
            self._connection.executemany("INSERT INTO populations VALUES (?, ?, ?, ?)", rows)

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
        """The registered searches (search_id, supernet_id, tactic, config JSON, created)."""
        return pd.read_sql_query("SELECT * FROM searches ORDER BY created", self._connection)
