"""Measurement rows: validated on the way in, one row each, never overwritten."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from nastools.metrics import KINDS
from nastools.store._connection import StoreFile, now
from nastools.store._drivers import beat

if TYPE_CHECKING:
    import pandas as pd

REQUIRED = ("supernet_id", "checkpoint_hash", "arch", "metric", "hardware", "value")
COLUMNS = (
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
INSERTED = COLUMNS[1:]
_INSERT = f"INSERT INTO measurements ({', '.join(INSERTED)}) VALUES ({', '.join('?' * len(INSERTED))})"
_CHUNK = 500  # arch keys per IN-clause, well below sqlite's limit on bound variables


def missing(value: object) -> bool:
    """None, or a float NaN (what pandas puts in an empty nullable cell)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def arch_keys(archs: Iterable[str]) -> list[str]:
    """Arch keys as strings (a single string is refused: it is one key, not a list of them)."""
    if isinstance(archs, str):
        raise TypeError("archs must be a list of arch keys, not a single string")
    return [str(arch) for arch in archs]


def _record(i: int, row: object) -> tuple:
    """One row as the tuple inserted, after checking it."""
    if not isinstance(row, Mapping):
        raise ValueError(f"measurement row {i} is not a dict; nothing was stored")
    absent = [  # a NaN value is reported as non-finite below, not as missing
        key for key in REQUIRED if row.get(key) is None or (key != "value" and missing(row[key]))
    ]
    if absent:
        raise ValueError(f"measurement row {i} lacks {absent}; nothing was stored: {row}")
    try:
        value = float(row["value"])
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(
            f"measurement row {i} has non-finite 'value' {row['value']!r}; nothing was stored: {row}"
        )
    kind = "validation" if missing(row.get("kind")) or row.get("kind") == "" else row["kind"]
    if kind not in KINDS:
        raise ValueError(
            f"measurement row {i} has kind {kind!r}; use one of {list(KINDS)}; nothing was stored"
        )
    spread, repeats = row.get("spread"), row.get("repeats")
    timestamp, search_id = row.get("timestamp"), row.get("search_id")
    return (
        str(row["supernet_id"]),
        str(row["checkpoint_hash"]),
        str(row["arch"]),
        str(row["metric"]),
        str(row["hardware"]),
        "" if missing(row.get("host")) else str(row["host"]),
        kind,
        value,
        None if missing(spread) else float(spread),
        None if missing(repeats) else int(repeats),
        0 if missing(row.get("flagged")) else int(bool(row["flagged"])),
        now() if missing(timestamp) or timestamp == "" else str(timestamp),
        None if missing(search_id) else str(search_id),
    )


class Measurements(StoreFile):
    """The measurement methods of :class:`~nastools.store.ResultStore`."""

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
        records = [_record(i, row) for i, row in enumerate(rows)]
        if records:
            with self._transaction() as connection:
                connection.executemany(_INSERT, records)
                beat(connection, {r[-1] for r in records if r[-1] is not None})
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
        wanted = list(dict.fromkeys(arch_keys(archs)))
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

    def measured_archs(self, supernet_id: str, metric: str, hardware: str, archs: list[str]) -> set[str]:
        """The arch keys among ``archs`` with any stored row of ``metric`` (any checkpoint, any host)."""
        wanted = list(dict.fromkeys(arch_keys(archs)))
        found: set[str] = set()
        for start in range(0, len(wanted), _CHUNK):
            part = wanted[start : start + _CHUNK]
            cursor = self._connection.execute(
                "SELECT DISTINCT arch FROM measurements WHERE supernet_id = ? AND metric = ? "
                f"AND hardware = ? AND arch IN ({','.join('?' * len(part))})",
                [supernet_id, metric, hardware, *part],
            )
            found.update(row[0] for row in cursor)
        return found

    def measurements(self, **filters: object) -> pd.DataFrame:
        """All measurement rows in insertion order, optionally filtered by column equality.

        Args:
            **filters: Column name to required value, e.g. ``metric="top1"``; None matches NULL.

        Raises:
            ValueError: For a filter name that is not a column (the valid ones are listed).
        """
        import pandas as pd  # here: opening a store (the command line's store verbs) needs no pandas

        unknown = [name for name in filters if name not in COLUMNS]
        if unknown:
            raise ValueError(f"unknown filter(s) {unknown}; valid columns are {list(COLUMNS)}")
        clauses = [f"{name} IS NULL" if v is None else f"{name} = ?" for name, v in filters.items()]
        params = [v for v in filters.values() if v is not None]
        return pd.read_sql_query(
            f"SELECT * FROM measurements WHERE {' AND '.join(clauses) or '1'} ORDER BY id",
            self._connection,
            params=params,
        )
