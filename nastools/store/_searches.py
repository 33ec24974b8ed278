"""Searches: their settings, the process running each, validation order, populations, summaries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from nastools.store._connection import StoreError, now
from nastools.store._drivers import STALE_AFTER, Driver, beat, shown, still_running, this_process
from nastools.store._measurements import Measurements, arch_keys

if TYPE_CHECKING:
    import pandas as pd


class SearchInProgressError(StoreError):
    """A search that another live process is running (the message names it: host, pid, since when)."""


def _difference(existing: tuple, supernet_id: str, tactic: str, config_json: str) -> str:
    """Which stored settings differ from the new ones, in a few words."""
    stored_supernet, stored_tactic, stored_config = existing
    if stored_supernet != supernet_id:
        return f"supernet {stored_supernet!r}, now {supernet_id!r}"
    if stored_tactic != tactic:
        return f"tactic {stored_tactic!r}, now {tactic!r}"
    old, new = json.loads(stored_config), json.loads(config_json)
    changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    shown_changes = [f"{k} {_short(old.get(k))} -> {_short(new.get(k))}" for k in changed[:3]]
    return "; ".join(shown_changes) + ("; ..." if len(changed) > 3 else "")


def _ordered_again(existing: tuple, supernet_id: str, tactic: str, config_json: str) -> bool:
    """Whether the new settings are the stored ones with the objectives' order given.

    Stores written before the order was kept hold the objectives as a JSON object with sorted keys;
    a search started again with the same objectives as an ordered ``[[label, direction], ...]`` list
    (and every other setting equal) is the same search.
    """
    stored_supernet, stored_tactic, stored_config = existing
    if (stored_supernet, stored_tactic) != (supernet_id, tactic):
        return False
    old, new = json.loads(stored_config), json.loads(config_json)
    old_objectives, new_objectives = old.get("objectives"), new.get("objectives")
    if not isinstance(old_objectives, dict) or not isinstance(new_objectives, list):
        return False
    try:
        as_dict = {label: direction for label, direction in new_objectives}
    except (TypeError, ValueError):
        return False
    return as_dict == old_objectives and {**old, "objectives": None} == {**new, "objectives": None}


def _short(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


DRIVER = "driver_host, driver_pid, driver_start, driver_since, heartbeat"
_RELEASE = (
    "UPDATE searches SET driver_host = NULL, driver_pid = NULL, driver_start = NULL, driver_since = NULL "
    "WHERE search_id = ? AND driver_host = ? AND driver_pid = ?"
)


class Searches(Measurements):
    """The search methods of :class:`~nastools.store.ResultStore`."""

    def _running_elsewhere(self, search_id: str, stale_after: float = STALE_AFTER) -> str | None:
        """Who runs ``search_id`` if another live process does, in words (None when nobody else does)."""
        row = self._connection.execute(
            f"SELECT {DRIVER} FROM searches WHERE search_id = ?", (search_id,)
        ).fetchone()
        if row is None or row["driver_host"] is None:
            return None
        driver = Driver(row["driver_host"], int(row["driver_pid"]), row["driver_start"] or "")
        if driver.same_process(this_process()) or not still_running(driver, row["heartbeat"], stale_after):
            return None
        return (
            f"pid {driver.pid} on {driver.host} since {shown(row['driver_since'])} "
            f"(last heartbeat {shown(row['heartbeat'])})"
        )

    def start_search(
        self,
        search_id: str,
        supernet_id: str,
        tactic: str,
        config: Mapping[str, object],
        *,
        stale_after: float = STALE_AFTER,
    ) -> bool:
        """Register a search and take it for this process; the same id with the same settings resumes it.

        A search stays this process's until :meth:`release_search` or :meth:`finish_search` (which
        :func:`~nastools.search.run_tactic` call when it ends, also on an error or Ctrl+C). Another
        process starting it meanwhile is refused, unless this one is gone: on the same machine a
        process that no longer runs, on another machine one whose heartbeat (refreshed whenever it
        stores a measurement, validation or population of the search) is older than ``stale_after``
        seconds; it then takes the search over and resumes it. A finished search started again
        resumes too (every measurement is in the store).

        Args:
            search_id: Unique name of the search.
            supernet_id: Supernet searched.
            tactic: Search tactic, e.g. ``"nsga2"``.
            config: JSON-serialisable settings of the search.
            stale_after: Seconds without a heartbeat after which a driver on another machine is
                taken for gone.

        Returns:
            True for a new search, False when an existing one resumes.

        Raises:
            ValueError: If ``search_id`` is empty or blank, or exists with a different supernet,
                tactic or config (the differing settings are named).
            SearchInProgressError: Another live process runs the search (its host, pid and start
                are named).

        Example:
            >>> import os, tempfile
            >>> from nastools.store import ResultStore
            >>> store = ResultStore(os.path.join(tempfile.mkdtemp(), "results.sqlite"))
            >>> store.start_search("nsga2-s0", "digits-mbv3", "nsga2", {"pop_size": 20})
            True
            >>> store.release_search("nsga2-s0")  # what run_tactic does when the search ends
            >>> store.start_search("nsga2-s0", "digits-mbv3", "nsga2", {"pop_size": 20})  # resumes
            False
        """
        if not isinstance(search_id, str) or not search_id.strip():
            raise ValueError(f"search_id must be a non-empty name, e.g. 'nsga2-s0'; got {search_id!r}")
        if not stale_after > 0:
            raise ValueError(f"stale_after must be a positive number of seconds, got {stale_after!r}")
        config_json = json.dumps(dict(config), sort_keys=True, default=str)
        me, stamp = this_process(), now()
        with self._transaction() as connection:
            existing = connection.execute(
                "SELECT supernet_id, tactic, config FROM searches WHERE search_id = ?", (search_id,)
            ).fetchone()
            if existing is None:
                connection.execute(
                    "INSERT INTO searches (search_id, supernet_id, tactic, config, created, "
                    f"{DRIVER}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        search_id,
                        supernet_id,
                        tactic,
                        config_json,
                        stamp,
                        me.host,
                        me.pid,
                        me.start,
                        stamp,
                        stamp,
                    ),
                )
                return True
            if tuple(existing) != (supernet_id, tactic, config_json) and _ordered_again(
                existing, supernet_id, tactic, config_json
            ):
                # a search stored before objectives kept their order: same settings, order now known
                connection.execute(
                    "UPDATE searches SET config = ? WHERE search_id = ?", (config_json, search_id)
                )
                existing = (supernet_id, tactic, config_json)
            if tuple(existing) != (supernet_id, tactic, config_json):
                raise ValueError(
                    f"search {search_id!r} in {self.path} was run with other settings "
                    f"({_difference(existing, supernet_id, tactic, config_json)}); give this search another "
                    "id, or use another store"
                )
            running = self._running_elsewhere(search_id, stale_after)
            if running is not None:
                raise SearchInProgressError(
                    f"search {search_id!r} in {self.path} is being run by {running}: wait for it to end or "
                    f"stop it, or give this search another id (a driver on another machine is taken for gone "
                    f"once its heartbeat is {stale_after:g} s old)"
                )
            connection.execute(
                "UPDATE searches SET driver_since = CASE WHEN driver_host = ? AND driver_pid = ? "
                "THEN driver_since ELSE ? END WHERE search_id = ?",
                (me.host, me.pid, stamp, search_id),
            )
            connection.execute(
                "UPDATE searches SET driver_host = ?, driver_pid = ?, driver_start = ?, heartbeat = ? "
                "WHERE search_id = ?",
                (me.host, me.pid, me.start, stamp, search_id),
            )
        return False

    def release_search(self, search_id: str) -> None:
        """Let other processes run a search this process started (does nothing for any other search).

        :func:`~nastools.search.run_tactic` calls it when a search ends, also on an error or Ctrl+C,
        so that the search can be resumed from another process.
        """
        me = this_process()
        with self._transaction() as connection:
            connection.execute(_RELEASE, (search_id, me.host, me.pid))

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

    def _require_not_running_elsewhere(self, search_id: str, doing: str) -> None:
        running = self._running_elsewhere(search_id)
        if running is not None:
            raise SearchInProgressError(
                f"cannot {doing} search {search_id!r} in {self.path}: it is run by {running} now"
            )

    def finish_search(self, search_id: str, summary: Mapping[str, object]) -> None:
        """Mark a search finished, with a JSON-serialisable summary (validations spent, seconds ...).

        Releases the search (see :meth:`release_search`) and truncates the store's log into its
        file, so that the file alone holds the whole search.

        Raises:
            ValueError: If ``search_id`` was never started.
        """
        self._require_search(search_id)
        summary_json = json.dumps({"time": now(), **dict(summary)}, sort_keys=True, default=str)
        me = this_process()
        with self._transaction() as connection:
            connection.execute(
                "UPDATE searches SET finished = ? WHERE search_id = ?", (summary_json, search_id)
            )
            connection.execute(_RELEASE, (search_id, me.host, me.pid))
        self._checkpoint("TRUNCATE")

    def forget_search(self, search_id: str) -> None:
        """Delete a search's record (settings, populations, validation order); its measurements stay.

        For re-running a search under the same id after its tactic changed: the measurements are
        still valid and are reused by the new run.

        Raises:
            ValueError: If ``search_id`` is unknown.
            SearchInProgressError: Another live process runs it.
        """
        self._require_search(search_id)
        with self._transaction() as connection:
            self._require_not_running_elsewhere(search_id, "forget")
            for table in ("populations", "validations", "searches"):
                connection.execute(f"DELETE FROM {table} WHERE search_id = ?", (search_id,))

    def has_search(self, search_id: str) -> bool:
        """Whether a search of that id is stored."""
        query = "SELECT 1 FROM searches WHERE search_id = ?"
        return self._connection.execute(query, (search_id,)).fetchone() is not None

    def search(self, search_id: str) -> dict[str, object]:
        """A stored search: its id, supernet, tactic, ``config`` (a dict), ``created`` and ``finished``.

        ``finished`` is the summary dict of :meth:`finish_search` (None while it runs or after a kill);
        ``driver_host``, ``driver_pid``, ``driver_since`` and ``heartbeat`` name the process running it
        (None when none does).

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

    def missing_measurements(self, search_id: str) -> dict[str, list[str]]:
        """Per objective of a search, the archs it validated that have no stored row of that objective.

        Any row counts (any checkpoint, any host): what is missing was never stored in this file, or
        was deleted from it.

        Raises:
            ValueError: If ``search_id`` is unknown.
        """
        from nastools.objectives import parse_objectives

        record = self.search(search_id)
        stored = record["config"].get("objectives") if isinstance(record["config"], dict) else None
        keys = self.validations(search_id)
        missing: dict[str, list[str]] = {}
        for objective in parse_objectives(stored) if stored else ():
            found = self.measured_archs(
                record["supernet_id"], objective.metric, objective.hardware or "", keys
            )
            missing[objective.label] = [key for key in keys if key not in found]
        return missing

    def require_measurements(self, search_id: str) -> None:
        """Raise unless every arch the search validated has a stored row of each of its objectives.

        What reads a stored search without measuring (``nastools front``, ``nastools export``) calls it
        first, so that a store whose rows were deleted is named as the cause.

        Raises:
            StoreError: Naming the first objective with missing rows and how many are missing.
            ValueError: If ``search_id`` is unknown.
        """
        n_validated = len(self.validations(search_id))
        for label, archs in self.missing_measurements(search_id).items():
            if archs:
                raise StoreError(
                    f"{len(archs)} of the {n_validated} archs search {search_id!r} validated have no stored "
                    f"measurement of {label} in {self.path} (deleted, or stored in another file): open the "
                    "store the search ran in, or run the search again on a writable store to measure them"
                )

    def record_population(self, search_id: str, generation: int, archs: list[str]) -> None:
        """Store (or replace) the population of one generation of a search, in one transaction.

        Raises:
            ValueError: If ``search_id`` was never started.
            SearchInProgressError: Another live process has taken the search over.
        """
        self._require_search(search_id)
        generation = int(generation)
        rows = [(search_id, generation, i, arch) for i, arch in enumerate(arch_keys(archs))]
        with self._transaction() as connection:
            self._require_not_running_elsewhere(search_id, "record a population of")
            connection.execute(
                "DELETE FROM populations WHERE search_id = ? AND generation = ?", (search_id, generation)
            )
            connection.executemany("INSERT INTO populations VALUES (?, ?, ?, ?)", rows)
            beat(connection, [search_id])

    def record_validations(self, search_id: str, archs: list[str]) -> None:
        """Append archs a search validated, in order (positions continue from what is stored).

        Archs recorded already for this search are skipped, so a resumed run records each once.

        Raises:
            ValueError: If ``search_id`` was never started.
            SearchInProgressError: Another live process has taken the search over.
        """
        self._require_search(search_id)
        with self._transaction() as connection:
            self._require_not_running_elsewhere(search_id, "record validations of")
            append_validations(connection, search_id, arch_keys(archs))
            beat(connection, [search_id])

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
        import pandas as pd

        self._require_search(search_id)
        return pd.read_sql_query(
            "SELECT generation, position, arch FROM populations WHERE search_id = ? "
            "ORDER BY generation, position",
            self._connection,
            params=[search_id],
        )

    def searches(self) -> pd.DataFrame:
        """The registered searches: search_id, supernet_id, tactic, config JSON, created, finished JSON ..."""
        import pandas as pd

        return pd.read_sql_query("SELECT * FROM searches ORDER BY created", self._connection)


def append_validations(connection, search_id: str, archs: list[str]) -> int:
    """Append the archs not recorded yet for the search, positions continuing; how many were new."""
    stored = {
        r[0] for r in connection.execute("SELECT arch FROM validations WHERE search_id = ?", (search_id,))
    }
    start = connection.execute(
        "SELECT COUNT(*) FROM validations WHERE search_id = ?", (search_id,)
    ).fetchone()[0]
    new = [a for a in dict.fromkeys(archs) if a not in stored]
    connection.executemany(
        "INSERT INTO validations VALUES (?, ?, ?)", [(search_id, start + i, a) for i, a in enumerate(new)]
    )
    return len(new)
