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
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE measurements (
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
CREATE INDEX measurements_lookup
    ON measurements (supernet_id, checkpoint_hash, metric, hardware, arch);
CREATE TABLE searches (
    search_id TEXT PRIMARY KEY,
    supernet_id TEXT NOT NULL,
    tactic TEXT NOT NULL,
    config TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE populations (
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


class ResultStore:
    """Measurements (one row each, never overwritten) and search populations in one sqlite file.

    Every public method commits before it returns, so a killed process loses nothing it stored, and
    a batch passed to :meth:`add` is written whole or not at all.

    Args:
        path: The sqlite file; created (with its folder) if absent.

    Raises:
        StoreError: If ``path`` exists but is not a nastools result store (it is left untouched).

    Example:
        >>> import tempfile, os
        >>> store = ResultStore(os.path.join(tempfile.mkdtemp(), "results.sqlite"))
        >>> store.add([{"supernet_id": "s", "checkpoint_hash": "h", "arch": "d_0=2",
        ...             "metric": "macs", "hardware": "", "value": 1e6}])
        1
        >>> store.lookup("s", "h", "macs", "", ["d_0=2"])["d_0=2"]["value"]
        1000000.0
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        existed = self.path.exists() and self.path.stat().st_size > 0
        if existed:
            self._check_existing()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(self.path, isolation_level=None)
        self._connection.row_factory = sqlite3.Row
        if not existed:
            self._connection.executescript(
                f"BEGIN; {_SCHEMA} INSERT INTO meta VALUES ('format', '{_FORMAT}'), "
                f"('version', '{_VERSION}'); COMMIT;"
            )
        self._connection.execute("PRAGMA journal_mode=WAL")

    def _check_existing(self) -> None:
        problem = None
        try:
            uri = f"file:{self.path.resolve()}?mode=ro"
            connection = sqlite3.connect(uri, uri=True)
            try:
                has_meta = connection.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
                ).fetchone()
                row = (
                    has_meta and connection.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
                )
                if not row or row[0] != _FORMAT:
                    problem = "it has no nastools-store marker"
            finally:
                connection.close()
        except sqlite3.DatabaseError as error:
            problem = str(error)
        if problem:
            raise StoreError(
                f"{self.path} is not a nastools result store ({problem}); "
                "pass the path of a new file to start a store"
            )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._connection.execute("BEGIN")
        try:
            yield self._connection
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"

    def close(self) -> None:
        """Close the connection (everything is committed already)."""
        self._connection.close()

    def add(self, rows: Iterable[Mapping]) -> int:
        """Append measurement rows in one transaction; validate all of them first.

        Args:
            rows: Dicts with ``supernet_id``, ``checkpoint_hash``, ``arch``, ``metric``, ``hardware``
                and ``value``; optionally ``spread``, ``repeats``, ``flagged``, ``timestamp`` and
                ``search_id``.

        Returns:
            Number of rows added.

        Raises:
            ValueError: Naming the first row and key that is missing or not finite; nothing is written.
        """
        records = []
        for i, row in enumerate(rows):
            missing = [key for key in _REQUIRED if row.get(key) is None]
            if missing:
                raise ValueError(f"measurement row {i} lacks {missing}; nothing was stored")
            value = row["value"]
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"measurement row {i} has non-finite value {value!r}; nothing was stored")
            records.append(
                (
                    str(row["supernet_id"]),
                    str(row["checkpoint_hash"]),
                    str(row["arch"]),
                    str(row["metric"]),
                    str(row["hardware"]),
                    float(value),
                    None if row.get("spread") is None else float(row["spread"]),
                    None if row.get("repeats") is None else int(row["repeats"]),
                    int(bool(row.get("flagged", 0))),
                    row.get("timestamp") or _now(),
                    row.get("search_id"),
                )
            )
        with self._transaction():
            self._connection.executemany(
                "INSERT INTO measurements (supernet_id, checkpoint_hash, arch, metric, hardware, value, "
                "spread, repeats, flagged, timestamp, search_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                records,
            )
        return len(records)

    def lookup(
        self, supernet_id: str, checkpoint_hash: str, metric: str, hardware: str, archs: Iterable[str]
    ) -> dict[str, dict]:
        """The latest stored row for each of ``archs`` that has one (others are absent)."""
        wanted = list(dict.fromkeys(archs))
        found: dict[str, dict] = {}
        chunk = 500  # below sqlite's limit on bound variables
        for start in range(0, len(wanted), chunk):
            part = wanted[start : start + chunk]
            cursor = self._connection.execute(
                f"SELECT * FROM measurements WHERE supernet_id = ? AND checkpoint_hash = ? AND metric = ? "
                f"AND hardware = ? AND arch IN ({','.join('?' * len(part))}) ORDER BY id",
                [supernet_id, checkpoint_hash, metric, hardware, *part],
            )
            for row in cursor:
                found[row["arch"]] = dict(row)
        return found

    def measurements(self, **filters: object) -> pd.DataFrame:
        """All measurement rows, optionally filtered by equality on columns (``metric="top1"``)."""
        unknown = [name for name in filters if name not in _COLUMNS]
        if unknown:
            raise ValueError(f"unknown filter(s) {unknown}; valid columns are {list(_COLUMNS)}")
        where = " AND ".join(f"{name} = ?" for name in filters) or "1"
        return pd.read_sql_query(
            f"SELECT * FROM measurements WHERE {where} ORDER BY id",
            self._connection,
            params=list(filters.values()),
        )

    def start_search(self, search_id: str, supernet_id: str, tactic: str, config: Mapping) -> None:
        """Register a search; starting the same id again with the same config resumes it.

        Raises:
            ValueError: If ``search_id`` exists with a different supernet, tactic or config.
        """
        config_json = json.dumps(config, sort_keys=True, default=str)
        existing = self._connection.execute(
            "SELECT supernet_id, tactic, config FROM searches WHERE search_id = ?", (search_id,)
        ).fetchone()
        if existing is not None:
            if tuple(existing) != (supernet_id, tactic, config_json):
                raise ValueError(
                    f"search {search_id!r} already exists with another supernet, tactic or config; "
                    "choose a new search_id"
                )
            return
        with self._transaction():
            self._connection.execute(
                "INSERT INTO searches VALUES (?, ?, ?, ?, ?)",
                (search_id, supernet_id, tactic, config_json, _now()),
            )

    def _require_search(self, search_id: str) -> None:
        known = self._connection.execute(
            "SELECT 1 FROM searches WHERE search_id = ?", (search_id,)
        ).fetchone()
        if known is None:
            ids = [r[0] for r in self._connection.execute("SELECT search_id FROM searches LIMIT 5")]
            raise ValueError(f"unknown search_id {search_id!r}; stored searches include {ids}")

    def record_population(self, search_id: str, generation: int, archs: Iterable[str]) -> None:
        """Store (or replace) the population of one generation of a search, in one transaction."""
        self._require_search(search_id)
        rows = [(search_id, int(generation), i, str(arch)) for i, arch in enumerate(archs)]
        with self._transaction():
            self._connection.execute(
                "DELETE FROM populations WHERE search_id = ? AND generation = ?",
                (search_id, int(generation)),
            )
            self._connection.executemany("INSERT INTO populations VALUES (?, ?, ?, ?)", rows)

    def population(self, search_id: str, generation: int | None = None) -> list[str]:
        """Arch keys of one generation (the last one by default)."""
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
        """Every recorded population of a search: columns ``generation``, ``position``, ``arch``."""
        self._require_search(search_id)
        return pd.read_sql_query(
            "SELECT generation, position, arch FROM populations WHERE search_id = ? "
            "ORDER BY generation, position",
            self._connection,
            params=[search_id],
        )

    def searches(self) -> pd.DataFrame:
        """The registered searches."""
        return pd.read_sql_query("SELECT * FROM searches ORDER BY created", self._connection)
