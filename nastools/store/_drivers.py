"""Which process drives a search: its host, pid and start, its heartbeat, and whether it still runs."""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from nastools.store._connection import now

#: Seconds without a heartbeat after which a search driven from another host counts as abandoned.
STALE_AFTER = 300.0


@dataclass(frozen=True)
class Driver:
    """A process driving a search, as recorded in the ``searches`` table.

    Attributes:
        host: ``socket.gethostname()`` of its machine.
        pid: Its process id.
        start: Boot id and start time of the process where ``/proc`` tells (``""`` elsewhere), so
            that a later process given the same pid is not taken for it.
    """

    host: str
    pid: int
    start: str = ""

    def same_process(self, other: Driver) -> bool:
        """Whether both name one process."""
        same_start = not self.start or not other.start or self.start == other.start
        return (self.host, self.pid) == (other.host, other.pid) and same_start


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (None: no such file)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def _process_start(pid: int) -> str:
    fields = _stat(pid)
    if fields is None:
        return ""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return f"{boot}:{fields[19]}"  # field 22 of stat: start time in clock ticks after boot


def this_process() -> Driver:
    """The process calling (looked up on every call: a forked child is another driver)."""
    return Driver(socket.gethostname(), os.getpid(), _process_start(os.getpid()))


def _alive_here(driver: Driver) -> bool | None:
    """Whether ``driver``, a process of this machine, still runs; None where that cannot be told."""
    if os.name == "nt":  # os.kill(pid, 0) would send it Ctrl+C there
        return None
    try:
        os.kill(driver.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    fields = _stat(driver.pid)
    if fields is not None:
        if fields[0] in ("Z", "X"):  # killed, not yet reaped by its parent
            return False
        if driver.start and _process_start(driver.pid) != driver.start:
            return False  # the pid was given to another process since
    return True


def seconds_since(timestamp: str | None) -> float:
    """Seconds from a stored UTC timestamp to now (infinite for none)."""
    if not timestamp:
        return float("inf")
    return (datetime.now(timezone.utc) - datetime.fromisoformat(timestamp)).total_seconds()


def still_running(driver: Driver, heartbeat: str | None, stale_after: float) -> bool:
    """Whether a recorded driver still runs its search.

    On this machine the process is asked; a driver on another machine runs while its heartbeat is
    younger than ``stale_after`` seconds.
    """
    if driver.host == socket.gethostname():
        alive = _alive_here(driver)
        if alive is not None:
            return alive
    return seconds_since(heartbeat) < stale_after


def shown(timestamp: str | None) -> str:
    """A stored timestamp for a message, to the second."""
    if not timestamp:
        return "never"
    return datetime.fromisoformat(timestamp).strftime("%Y-%m-%d %H:%M:%S UTC")


def beat(connection: sqlite3.Connection, search_ids: Iterable[str]) -> None:
    """Refresh the heartbeat of those searches this process drives (inside the open transaction)."""
    me, stamp = this_process(), now()
    connection.executemany(
        "UPDATE searches SET heartbeat = ? WHERE search_id = ? AND driver_host = ? AND driver_pid = ?",
        [(stamp, search_id, me.host, me.pid) for search_id in search_ids],
    )
