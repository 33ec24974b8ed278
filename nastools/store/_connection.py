"""Opening a store file: the checks before it, schema and migrations, per-thread connections, checkpoints.

The file a user copies must be complete: sqlite's write-ahead log (``PATH-wal``) holds committed
rows until a checkpoint copies them into the file, so every write transaction is followed by a
passive checkpoint (it never waits for readers) and closing a store or finishing a search truncates
the log. Every write transaction also writes a fresh ``last_commit`` into ``meta``, so any non-empty
log of a store holds its ``meta`` page and with it the store's id: a log that another store left
beside this file (sqlite would apply it) is recognised before anything opens the file for writing.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

FORMAT = "nastools-store"
VERSION = 3
READABLE = 2  # the oldest version a read-only open reads as it is (version 1 lacks host and kind)
TIMEOUT = 30.0  # seconds a connection waits for another process's write lock

TABLES = """
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
    finished TEXT,
    driver_host TEXT,
    driver_pid INTEGER,
    driver_start TEXT,
    driver_since TEXT,
    heartbeat TEXT
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
INDEX = """
DROP INDEX IF EXISTS measurements_lookup;
CREATE INDEX IF NOT EXISTS measurements_lookup_v2
    ON measurements (supernet_id, checkpoint_hash, metric, hardware, host, arch);
"""
# v1 stores had no host and no kind: their measured latencies came from an unknown machine.
MIGRATE_V1 = """
ALTER TABLE measurements ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE measurements ADD COLUMN kind TEXT NOT NULL DEFAULT 'validation';
ALTER TABLE searches ADD COLUMN finished TEXT;
UPDATE measurements SET kind = 'proxy' WHERE metric IN ('macs', 'params');
UPDATE measurements SET host = 'unknown (nastools store v1)'
    WHERE hardware != '' AND hardware NOT LIKE 'lut-%';
"""
# v2 stores had no store id and did not record which process runs a search.
MIGRATE_V2 = """
ALTER TABLE searches ADD COLUMN driver_host TEXT;
ALTER TABLE searches ADD COLUMN driver_pid INTEGER;
ALTER TABLE searches ADD COLUMN driver_start TEXT;
ALTER TABLE searches ADD COLUMN driver_since TEXT;
ALTER TABLE searches ADD COLUMN heartbeat TEXT;
"""


class StoreError(ValueError):
    """A file that cannot serve as a nastools result store (the message says why and what to do)."""


def now() -> str:
    """UTC now, as stored."""
    return datetime.now(timezone.utc).isoformat()


def wal_of(path: Path) -> Path:
    """The write-ahead log sqlite keeps beside ``path``."""
    return path.with_name(path.name + "-wal")


def _wal_has_frames(path: Path) -> bool:
    wal = wal_of(path)
    return wal.is_file() and wal.stat().st_size > 0


def _uri(path: Path, option: str) -> str:
    return f"{path.resolve().as_uri()}?{option}"


def connect(target: str | Path, *, uri: bool = False) -> sqlite3.Connection:
    """The one way this package opens sqlite: autocommit (transactions are explicit), any thread."""
    return sqlite3.connect(target, uri=uri, isolation_level=None, timeout=TIMEOUT, check_same_thread=False)


def _read_meta(uri: str) -> dict[str, str]:
    """The ``meta`` entries of the file seen through ``uri`` (empty for a file without that table)."""
    connection = connect(uri, uri=True)
    try:
        tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return dict(connection.execute("SELECT key, value FROM meta")) if "meta" in tables else {}
    finally:
        connection.close()


def _cannot_write_beside(error: sqlite3.Error) -> bool:
    """Whether sqlite failed because it could not create or write a file beside the store."""
    name = getattr(error, "sqlite_errorname", "")  # Python 3.11+
    text = str(error)
    return (
        name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN"))
        or "readonly" in text
        or "unable to open" in text
    )


def reading_uri(path: Path) -> str:
    """How to open ``path`` for reading: ``mode=ro``, or ``immutable=1`` in a folder sqlite cannot write.

    A store in write-ahead-log mode is read through a ``-shm`` file beside it, which a read-only
    folder or medium cannot hold; there, a store whose log is empty is read as an immutable file.

    Raises:
        StoreError: The folder cannot be written and the store's ``-wal`` still holds rows (which
            sqlite cannot read there).
    """
    read_only = _uri(path, "mode=ro")
    try:
        probe = connect(read_only, uri=True)
        try:
            probe.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        finally:
            probe.close()
    except sqlite3.OperationalError as error:
        if not _cannot_write_beside(error):
            raise StoreError(f"cannot read the store {path}: {error}") from None
        if _wal_has_frames(path):
            wal = wal_of(path)
            raise StoreError(
                f"{path} cannot be read here: rows are still in {wal.name} beside it, which sqlite reads "
                f"only in a folder it can write ({error}); copy both files ({path.name} and {wal.name}) to "
                "a writable folder and open the copy"
            ) from None
        return _uri(path, "immutable=1")
    except sqlite3.DatabaseError:
        pass  # not a database at all: the marker check that follows says so
    return read_only


def check_wal_belongs(path: Path) -> None:
    """Refuse a ``-wal`` beside ``path`` that another store wrote (sqlite would mix its pages in).

    Compares the store id of the file alone (opened ``immutable=1``, which ignores the log) with the
    id seen through the log (a read-only open, which never checkpoints the log into the file).

    Raises:
        StoreError: The log holds another store's id, or makes the file unreadable.
    """
    wal = wal_of(path)
    try:
        alone = _read_meta(_uri(path, "immutable=1"))
    except sqlite3.DatabaseError:
        return  # the file alone is no store: opening it says what it is
    try:
        seen = _read_meta(_uri(path, "mode=ro"))
    except sqlite3.OperationalError:
        return  # locked or not readable here: the open that follows reports it
    except sqlite3.DatabaseError as error:
        holds = f"sqlite cannot read the file with it: {str(error).replace(chr(10), ' ')}"
    else:
        if seen.get("store_id") == alone.get("store_id"):
            return
        version = alone.get("version", "")
        if "store_id" not in alone and alone.get("format") == FORMAT and version.isdigit():
            if int(version) < VERSION:
                return  # a store being upgraded: its log may hold the new id
        holds = f"it holds store {seen['store_id']!r}" if "store_id" in seen else "it holds no store id"
    raise StoreError(
        f"{wal} belongs to another store ({holds}; {path.name} is store {alone.get('store_id')!r}): "
        f"move {wal.name} away before opening {path.name}; to copy a store, use "
        "`nastools store copy SRC DST`, which gives the copy its own id"
    )


def rollback(connection: sqlite3.Connection) -> None:
    """Roll back what is open, never masking the error that got here.

    On some errors (a full disk) sqlite has rolled the transaction back already, and ``ROLLBACK``
    would fail with "no transaction is active", hiding the cause.
    """
    if connection.in_transaction:
        try:
            connection.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the error being raised is the one to report; sqlite rolls back on close


def write_problem(error: sqlite3.Error) -> str:
    """An sqlite write error in a few words, naming a full disk as such."""
    text = str(error).replace("\n", " ")
    if "full" in text:
        return f"the disk is full ({text}); free space or pass another path"
    return text


def version_of(
    connection: sqlite3.Connection, path: Path, *, source: bool = False
) -> tuple[int | None, dict[str, str]]:
    """The version of the store ``connection`` reads (None for a file without tables) and its ``meta``.

    ``source``: the file is one to read from (a copy's or merge's source), not one a store may be
    started at; the advice in the errors says so.

    Raises:
        StoreError: The file is not a nastools store, or one of a newer version, or cannot be read.
    """
    advice = "pass the path of a nastools store" if source else "pass the path of a new file to start a store"
    try:
        tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        meta = dict(connection.execute("SELECT key, value FROM meta")) if "meta" in tables else {}
    except sqlite3.OperationalError as error:  # e.g. locked by a writer for longer than the timeout
        raise StoreError(f"cannot read the store {path}: {error}") from None
    except sqlite3.DatabaseError as error:
        raise StoreError(
            f"{path} is not a nastools result store ({str(error).replace(chr(10), ' ')}); {advice}"
        ) from None
    if not tables:
        return None, meta
    if meta.get("format") != FORMAT:
        raise StoreError(f"{path} is not a nastools result store (it has no nastools-store marker); {advice}")
    version = meta.get("version", "")
    if not version.isdigit() or int(version) > VERSION:
        raise StoreError(
            f"{path} is a nastools store of version {version!r}, newer than this nastools reads "
            f"(up to {VERSION}): upgrade nastools{'' if source else ', or pass the path of a new file'}"
        )
    return int(version), meta


class StoreFile:
    """One store file: the checks on opening it, per-thread connections, transactions, checkpoints.

    Args:
        path: The sqlite file; created (with its folder) if absent. ``~`` is expanded.
        read_only: Open an existing store for reading only.
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path).expanduser()
        self.read_only = read_only
        self._warned_behind = False  # a checkpoint held back by a reader is warned of once
        #: A random id given to the store at creation (None for a version 2 store opened read-only).
        self.store_id: str | None = None
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
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # one connection per thread: sqlite's objects may not cross threads, and a store is used from
        # several (ipykernel runs widget callbacks on another thread than the cell that opened it)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._uri = reading_uri(self.path) if read_only else None
        logged = existed and _wal_has_frames(self.path)
        if logged:  # before any writable connection: closing one checkpoints whatever log is there
            check_wal_belongs(self.path)
        self._connection  # noqa: B018 - open it now: a path that cannot be opened fails here
        try:
            self._prepare()
            if logged and not read_only:
                self._checkpoint("PASSIVE")  # after a crash: the file alone is complete again
        except BaseException:
            self._close_connections()
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

    def _version(self) -> int | None:
        """The store's version; None for an empty file (new, or its creation was killed before a commit).

        Raises:
            StoreError: A foreign file, or a store of a newer version.
        """
        version, meta = version_of(self._connection, self.path)
        self.store_id = meta.get("store_id")
        return version

    def _script(self, script: str) -> None:
        """Run ``;``-separated statements inside the open transaction (``executescript`` would commit it)."""
        for statement in script.split(";"):
            if statement.strip():
                self._connection.execute(statement)

    def _prepare(self) -> None:
        """Check the marker and version; create a new store's tables; upgrade an older store."""
        version = self._version()
        if self.read_only:
            if version is None:
                raise StoreError(f"{self.path} is an empty file, not a nastools result store")
            if version < READABLE:
                raise StoreError(
                    f"{self.path} is a version {version} store; open it writable once to upgrade it"
                )
            return
        if version != VERSION:
            doing = (
                f"create the store at {self.path}" if version is None else f"upgrade the store {self.path}"
            )
            try:
                self._connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                raise StoreError(f"cannot {doing}: {write_problem(error)}") from error
            try:
                version = self._version()  # another process may have set it up while this one waited
                if version != VERSION:
                    self._upgrade(version)
                self._connection.execute("COMMIT")
            except BaseException as error:
                rollback(self._connection)
                if isinstance(error, sqlite3.OperationalError):
                    raise StoreError(f"cannot {doing}: {write_problem(error)}") from error
                raise
        try:
            self._connection.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as error:
            raise StoreError(f"cannot open the store {self.path}: {write_problem(error)}") from error

    def _upgrade(self, version: int | None) -> None:
        """Create the tables of a new store, or upgrade an older one, inside the open transaction."""
        if version is None:
            self._script(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); "
                f"INSERT INTO meta VALUES ('format', '{FORMAT}'); {TABLES}"
            )
        else:
            if version < 2:
                self._script(f"{MIGRATE_V1} {TABLES}")
            self._script(MIGRATE_V2)
        self._script(INDEX)
        self.store_id = uuid.uuid4().hex
        self._connection.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [("version", str(VERSION)), ("store_id", self.store_id), ("last_commit", self._commit_mark())],
        )

    def _commit_mark(self) -> str:
        return f"{self.store_id}:{uuid.uuid4().hex}"

    @property
    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            try:
                if self._uri is not None:
                    connection = connect(self._uri, uri=True)
                else:
                    connection = connect(self.path)
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
        """One write transaction, marked in ``meta`` and checkpointed into the file once committed."""
        if self.read_only:
            raise StoreError(f"{self.path} was opened read-only; open it without read_only=True to write")
        connection = self._connection
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise StoreError(f"cannot write to the store {self.path}: {write_problem(error)}") from error
        try:
            yield connection
            # a fresh value: every log this store leaves holds its meta page, hence its id
            connection.execute("UPDATE meta SET value = ? WHERE key = 'last_commit'", (self._commit_mark(),))
            connection.execute("COMMIT")
        except BaseException as error:
            rollback(connection)
            if isinstance(error, sqlite3.OperationalError):
                raise StoreError(f"cannot write to the store {self.path}: {write_problem(error)}") from error
            raise
        self._checkpoint("PASSIVE")

    def _checkpoint(self, mode: str) -> None:
        """Copy committed rows from the log into the file, never waiting for other connections.

        ``PASSIVE`` copies what no reader holds back; ``TRUNCATE`` also empties the log, and where
        another connection reads or writes right then it does what ``PASSIVE`` does, at once (with
        sqlite's busy timeout it would wait for that reader for up to 30 s). A ``TRUNCATE`` that
        leaves rows in the log (a reader's snapshot holds them back) is warned of, once per store:
        the file alone is then not the whole store.
        """
        connection = self._connection
        try:
            if mode == "PASSIVE":
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            else:
                connection.execute("PRAGMA busy_timeout = 0")
                try:
                    _, logged, copied = connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
                finally:
                    connection.execute(f"PRAGMA busy_timeout = {int(TIMEOUT * 1000)}")
                if logged > copied and not self._warned_behind:
                    self._warned_behind = True
                    warnings.warn(
                        f"{self.path} does not hold every row yet: another connection reads the store (a "
                        f"database browser, another kernel), so {logged - copied} log frame(s) stay in "
                        f"{wal_of(self.path)}; copy it with `nastools store copy` (safe), or after that "
                        "reader closes",
                        UserWarning,
                        stacklevel=3,
                    )
        except sqlite3.OperationalError as error:
            raise StoreError(
                f"the rows are stored, in {wal_of(self.path)}, but {self.path} could not be brought up to "
                f"date: {write_problem(error)}"
            ) from error

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Truncate the log into the file and close the connections (everything is committed already).

        After ``close()`` the file alone holds every row, unless another process has the store open
        (the last one to close it completes the file).
        """
        try:
            if not self.read_only and self._connections:
                self._checkpoint("TRUNCATE")
        finally:
            self._close_connections()

    def _close_connections(self) -> None:
        with self._connections_lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()
