import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading

import pytest

from nastools.store import ResultStore, SearchInProgressError, StoreError


def row(arch="a", metric="top1", value=1.0, **extra):
    return {
        "supernet_id": "s",
        "checkpoint_hash": "h",
        "arch": arch,
        "metric": metric,
        "hardware": "",
        "value": value,
        **extra,
    }


def one_line(info):
    message = str(info.value)
    assert message and "\n" not in message
    return message


# The schema nastools 0.1 wrote (store version 1), copied from that release.
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('format', 'nastools-store'), ('version', '1');
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


def v1_store(path):
    connection = sqlite3.connect(path)
    connection.executescript(V1_SCHEMA)
    connection.executemany(
        "INSERT INTO measurements (supernet_id, checkpoint_hash, arch, metric, hardware, value, spread, "
        "repeats, flagged, timestamp, search_id) VALUES ('s', 'h', ?, ?, ?, ?, NULL, 1, 0, 't', ?)",
        [
            ("a", "top1", "", 71.5, "run1"),
            ("a", "macs", "", 3e6, "run1"),
            ("a", "params", "", 2e5, None),
            ("a", "latency_ms", "cpu-t1-b1", 4.2, "run1"),
            ("a", "latency_ms", "lut-note10", 30.0, None),
        ],
    )
    connection.execute("INSERT INTO searches VALUES ('run1', 's', 'nsga2', '{\"pop\": 2}', 't')")
    connection.execute("INSERT INTO populations VALUES ('run1', 0, 0, 'a')")
    connection.commit()
    connection.close()
    return path


def test_new_store_has_marker_and_wal(tmp_path):
    path = tmp_path / "deep" / "sub" / "r.sqlite"
    ResultStore(path).close()
    connection = sqlite3.connect(path)
    meta = dict(connection.execute("SELECT key, value FROM meta"))
    assert meta.pop("format") == "nastools-store" and meta.pop("version") == "3"
    store_id = meta.pop("store_id")
    assert len(store_id) == 32 and meta.pop("last_commit").startswith(f"{store_id}:") and not meta
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"meta", "measurements", "searches", "populations", "validations"} <= tables
    columns = [r[1] for r in connection.execute("PRAGMA table_info(measurements)")]
    assert {"host", "kind"} <= set(columns)
    connection.close()


def test_add_and_lookup_latest_row_wins(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    assert store.add([row("a", value=1.0), row("b", value=2.0)]) == 2
    store.add([row("a", value=3.0, spread=0.1, repeats=5, flagged=True, search_id="x", kind="proxy")])
    found = store.lookup("s", "h", "top1", "", ["a", "c"])
    assert set(found) == {"a"}  # b was not asked for, c was never stored
    assert found["a"]["value"] == 3.0 and found["a"]["kind"] == "proxy" and found["a"]["host"] == ""
    assert found["a"]["spread"] == 0.1 and found["a"]["repeats"] == 5 and found["a"]["flagged"] == 1
    assert found["a"]["search_id"] == "x" and found["a"]["timestamp"]  # filled in
    assert store.lookup("s", "other-hash", "top1", "", ["a"]) == {}
    assert store.lookup("s", "h", "macs", "", ["a"]) == {}
    assert store.lookup("s", "h", "top1", "cpu-t1-b1", ["a"]) == {}
    assert len(store.measurements()) == 3  # nothing is overwritten
    assert list(store.measurements(search_id="x").value) == [3.0]
    assert list(store.measurements(arch="b").kind) == ["validation"]  # the default kind


def test_a_store_opened_in_one_thread_reads_and_writes_from_others(tmp_path):
    # what ipykernel does: a widget callback runs on another thread than the cell that opened it
    store = ResultStore(tmp_path / "r.sqlite")
    store.add([row("a", value=1.0)])
    seen = {}

    def elsewhere(name):
        store.add([row(name, value=2.0)])
        seen[name] = sorted(store.measurements().arch)

    workers = [threading.Thread(target=elsewhere, args=(name,)) for name in ("b", "c")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert seen["b"][:1] == ["a"] and "b" in seen["b"] and "c" in seen["c"]
    assert sorted(store.measurements().arch) == ["a", "b", "c"]  # the opening thread sees their rows
    store.close()  # closes every thread's connection, from this one
    with ResultStore(tmp_path / "r.sqlite", read_only=True) as again:
        assert len(again.measurements()) == 3


def test_host_is_kept_per_row_and_another_hosts_latency_is_not_found(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    latency = {"metric": "latency_ms", "hardware": "cpu-t1-b1"}
    store.add(
        [row("a", value=4.0, host="machine A") | latency, row("b", value=5.0, host="machine A") | latency]
    )
    store.add([row("a", value=9.0, host="machine B") | latency])
    on_a = store.lookup("s", "h", "latency_ms", "cpu-t1-b1", ["a", "b"], host="machine A")
    assert {k: r["value"] for k, r in on_a.items()} == {"a": 4.0, "b": 5.0}  # B's later row is not A's
    on_b = store.lookup("s", "h", "latency_ms", "cpu-t1-b1", ["a", "b"], host="machine B")
    assert {k: r["value"] for k, r in on_b.items()} == {"a": 9.0}
    assert store.lookup("s", "h", "latency_ms", "cpu-t1-b1", ["a"], host="machine C") == {}
    assert store.lookup("s", "h", "latency_ms", "cpu-t1-b1", ["a"]) == {}  # host "" is another host
    assert list(store.measurements(host="machine A").value) == [4.0, 5.0]


def test_lookup_many_archs(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    store.add([row(str(i), value=i) for i in range(1500)])
    found = store.lookup("s", "h", "top1", "", [str(i) for i in range(0, 3000, 2)])
    assert len(found) == 750 and found["1498"]["value"] == 1498
    assert all(int(key) % 2 == 0 and int(key) < 1500 for key in found)
    with pytest.raises(TypeError, match="single string"):
        store.lookup("s", "h", "top1", "", "a")


def test_measurements_filters(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    store.add(
        [
            row("a", "top1", 0.7),
            row("a", "latency_ms", 5.0) | {"hardware": "cpu-t1-b1"},
            row("a", "latency_ms", 9.0) | {"hardware": "cpu-t4-b8"},
            row("b", "macs", 1e6, search_id="run1", kind="proxy"),
        ]
    )
    assert len(store.measurements()) == 4
    latency = store.measurements(metric="latency_ms", hardware="cpu-t1-b1")
    assert list(latency.value) == [5.0] and list(latency.arch) == ["a"]
    assert list(store.measurements(search_id="run1").arch) == ["b"]
    assert list(store.measurements(kind="proxy").metric) == ["macs"]
    assert len(store.measurements(search_id=None)) == 3
    assert len(store.measurements(supernet_id="nope")) == 0
    assert list(store.measurements().columns[:3]) == ["id", "supernet_id", "checkpoint_hash"]
    assert {"host", "kind"} <= set(store.measurements().columns)
    with pytest.raises(ValueError, match="unknown filter.*colour.*valid columns.*metric"):
        store.measurements(colour="red")


def test_persists_across_reopen(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultStore(path) as store:
        store.add([row("a", value=1.5)])
        store.start_search("run1", "s", "nsga2", {"pop": 2})
        store.record_population("run1", 0, ["a", "b"])
        store.record_validations("run1", ["a"])
    with ResultStore(path) as store:
        assert store.lookup("s", "h", "top1", "", ["a"])["a"]["value"] == 1.5
        assert store.population("run1") == ["a", "b"]
        assert store.validations("run1") == ["a"]
        store.add([row("b")])
    assert len(ResultStore(path).measurements()) == 2


def test_tilde_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with ResultStore("~/stores/r.sqlite") as store:
        store.add([row()])
        assert store.path == tmp_path / "stores" / "r.sqlite"
    assert (tmp_path / "stores" / "r.sqlite").is_file()
    assert not os.path.exists("~")


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"value": float("nan")}, "row 2 has non-finite 'value'"),
        ({"value": math.inf}, "row 2 has non-finite 'value'"),
        ({"value": "fast"}, "row 2 has non-finite 'value'"),
        ({"value": None}, r"row 2 lacks \['value'\]"),
        ({"metric": None}, r"row 2 lacks \['metric'\]"),
        ({"arch": float("nan")}, r"row 2 lacks \['arch'\]"),
        ({"kind": "guess"}, r"row 2 has kind 'guess'; use one of \['validation', 'prediction', 'proxy'\]"),
    ],
)
def test_bad_rows_write_nothing(tmp_path, bad, match):
    store = ResultStore(tmp_path / "r.sqlite")
    store.add([row("before")])
    with pytest.raises(ValueError, match=match):
        store.add([row("ok1"), row("ok2"), row("bad") | bad, row("ok3")])
    assert list(store.measurements().arch) == ["before"]


def test_missing_key_is_named(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    incomplete = row("x")
    del incomplete["hardware"]
    with pytest.raises(ValueError, match=r"row 1 lacks \['hardware'\]"):
        store.add([row("ok"), incomplete])
    assert len(store.measurements()) == 0
    assert store.add([]) == 0


def test_rows_read_back_can_be_added_again(tmp_path):
    """A measurements() frame (NaN for empty cells) goes into another store as it is."""
    first = ResultStore(tmp_path / "a.sqlite")
    first.add([row("a"), row("b", spread=0.5, host="m", kind="proxy")])
    second = ResultStore(tmp_path / "b.sqlite")
    assert second.add(first.measurements().to_dict("records")) == 2
    copied = second.measurements()
    assert list(copied.kind) == ["validation", "proxy"] and list(copied.host) == ["", "m"]
    assert copied.spread.isna().tolist() == [True, False] and copied.search_id.isna().all()


def test_rejects_non_sqlite_file_untouched(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_text("shopping list\n" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a nastools result store") as info:
        ResultStore(path)
    message = one_line(info)
    assert str(path) in message and "new file" in message
    assert isinstance(info.value, ValueError)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.sqlite"]


def _foreign_sqlite(path, *statements):
    connection = sqlite3.connect(path)
    for statement in statements:
        connection.execute(statement)
    connection.commit()
    connection.close()
    return path


def test_rejects_foreign_sqlite_untouched(tmp_path):
    path = _foreign_sqlite(tmp_path / "other.db", "CREATE TABLE things (x)", "INSERT INTO things VALUES (1)")
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"other\.db is not a nastools result store.*marker") as info:
        ResultStore(path)
    one_line(info)
    assert path.read_bytes() == before
    connection = sqlite3.connect(path)
    tables = [r[0] for r in connection.execute("SELECT name FROM sqlite_master")]
    connection.close()
    assert tables == ["things"]


def test_rejects_sqlite_with_foreign_meta(tmp_path):
    path = _foreign_sqlite(
        tmp_path / "meta.db",
        "CREATE TABLE meta (key TEXT, value TEXT)",
        "INSERT INTO meta VALUES ('format', 'something-else')",
    )
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a nastools result store"):
        ResultStore(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("version", ["4", "12", "2.1", ""])
def test_newer_version_is_refused_untouched(tmp_path, version):
    path = tmp_path / "future.sqlite"
    ResultStore(path).close()
    _foreign_sqlite(path, f"UPDATE meta SET value = '{version}' WHERE key = 'version'")
    before = path.read_bytes()
    for read_only in (False, True):
        with pytest.raises(StoreError, match=f"version '{version}', newer than this nastools reads") as info:
            ResultStore(path, read_only=read_only)
        assert "upgrade nastools" in one_line(info)
    assert path.read_bytes() == before


def test_empty_file_becomes_a_new_store(tmp_path):
    """A store whose creation was killed before its first commit is an empty file: it is started again."""
    path = tmp_path / "r.sqlite"
    path.touch()
    with pytest.raises(StoreError, match="is an empty file") as info:
        ResultStore(path, read_only=True)
    one_line(info)
    with ResultStore(path) as store:
        store.add([row()])
    assert len(ResultStore(path).measurements()) == 1


def test_store_created_meanwhile_by_another_process_is_used(tmp_path, monkeypatch):
    """Two processes opening a new path at once: the one that loses the race uses the other's store."""
    path = tmp_path / "r.sqlite"
    original = ResultStore._version
    calls = []

    def racing(self):
        found = original(self)
        if not calls:  # first look: the file is empty; the other process creates the store now
            calls.append(found)
            monkeypatch.setattr(ResultStore, "_version", original)
            with ResultStore(path) as other:
                other.add([row("theirs")])
        return found

    monkeypatch.setattr(ResultStore, "_version", racing)
    with ResultStore(path) as store:
        store.add([row("mine")])
        assert list(store.measurements().arch) == ["theirs", "mine"]
    assert calls == [None]


def test_v1_store_is_upgraded_in_place(tmp_path):
    path = v1_store(tmp_path / "old.sqlite")
    with pytest.raises(StoreError, match="version 1 store; open it writable once") as info:
        ResultStore(path, read_only=True)
    one_line(info)
    with ResultStore(path) as store:
        rows = store.measurements()
        assert len(rows) == 5 and list(rows.id) == [1, 2, 3, 4, 5]
        kinds = dict(zip(rows.metric + "@" + rows.hardware, rows.kind))
        assert kinds == {
            "top1@": "validation",
            "macs@": "proxy",
            "params@": "proxy",
            "latency_ms@cpu-t1-b1": "validation",
            "latency_ms@lut-note10": "validation",
        }
        hosts = dict(zip(rows.metric + "@" + rows.hardware, rows.host))
        # a measured latency came from a machine nobody recorded: it is never reused
        assert hosts["latency_ms@cpu-t1-b1"] == "unknown (nastools store v1)"
        assert hosts["latency_ms@lut-note10"] == "" and hosts["top1@"] == "" and hosts["macs@"] == ""
        assert store.lookup("s", "h", "top1", "", ["a"])["a"]["value"] == 71.5
        assert store.lookup("s", "h", "latency_ms", "lut-note10", ["a"])["a"]["value"] == 30.0
        assert store.lookup("s", "h", "latency_ms", "cpu-t1-b1", ["a"], host="") == {}
        assert store.search("run1")["config"] == {"pop": 2} and store.population("run1") == ["a"]
        assert store.validations("run1") == []  # the new table exists, empty
        store.add([row("b", kind="proxy", host="")])
    connection = sqlite3.connect(path)
    assert dict(connection.execute("SELECT key, value FROM meta"))["version"] == "3"
    indexes = {r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "measurements_lookup" not in indexes and "measurements_lookup_v2" in indexes
    connection.close()
    with ResultStore(path, read_only=True) as store:  # upgraded once; reopening changes nothing
        assert len(store.measurements()) == 6


def test_read_only_store_reads_and_refuses_writes(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultStore(path) as store:
        store.add([row("a", value=2.0)])
        store.start_search("run1", "s", "nsga2", {})
    before = path.read_bytes()
    with ResultStore(path, read_only=True) as store:
        assert store.lookup("s", "h", "top1", "", ["a"])["a"]["value"] == 2.0
        assert store.has_search("run1") and store.population("run1") == []
        for write in (
            lambda: store.add([row("b")]),
            lambda: store.start_search("run2", "s", "nsga2", {}),
            lambda: store.record_population("run1", 0, ["a"]),
            lambda: store.record_validations("run1", ["a"]),
        ):
            with pytest.raises(StoreError, match="opened read-only") as info:
                write()
            one_line(info)
    assert path.read_bytes() == before
    with pytest.raises(StoreError, match="does not exist") as info:
        ResultStore(tmp_path / "absent.sqlite", read_only=True)
    one_line(info)
    assert not (tmp_path / "absent.sqlite").exists()


def test_unwritable_location_says_to_open_read_only(tmp_path, monkeypatch):
    path = tmp_path / "r.sqlite"
    ResultStore(path).close()
    # root may write anywhere: let the check see the file and its folder as a read-only medium's
    monkeypatch.setattr("nastools.store._connection.os.access", lambda p, mode: False)
    with pytest.raises(
        StoreError, match=r"is read-only \(the file cannot be written\).*read_only=True"
    ) as info:
        ResultStore(path)
    one_line(info)
    with pytest.raises(StoreError, match="its folder cannot be written") as info:
        ResultStore(tmp_path / "new.sqlite")
    one_line(info)
    assert not (tmp_path / "new.sqlite").exists()
    assert len(ResultStore(path, read_only=True).measurements()) == 0


def test_folder_is_refused(tmp_path):
    with pytest.raises(StoreError, match="is a folder; pass the path of a store file") as info:
        ResultStore(tmp_path)
    one_line(info)


CHILD = textwrap.dedent(
    """
    import sys
    from nastools.store import ResultStore

    store = ResultStore(sys.argv[1])
    i = 0
    while True:
        batch = [
            {"supernet_id": "s", "checkpoint_hash": "h", "arch": f"{i}-{j}", "metric": "top1",
             "hardware": "", "value": float(i)}
            for j in range(3)
        ]
        store.add(batch)
        print(i, flush=True)
        i += 1
    """
)


def test_survives_sigkill(tmp_path):
    path = tmp_path / "r.sqlite"
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    reported = []
    try:
        while len(reported) < 30:  # wait for 30 committed batches, however long the machine takes
            line = process.stdout.readline()
            if not line:  # the child died by itself
                break
            reported.append(int(line))
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    assert len(reported) == 30, "the child process stopped before it was killed"
    with ResultStore(path) as store:
        stored = store.measurements()
    counts = stored.groupby(stored.value.astype(int)).size()
    for i in reported:
        assert counts.get(i) == 3, f"batch {i} was reported added but is not all there"
    assert (counts == 3).all()  # no half batch, even the one in flight when killed


def test_search_populations(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    assert len(store.searches()) == 0
    assert store.start_search("run1", "s", "nsga2", {"pop_size": 4, "seed": 0})
    assert not store.start_search("run1", "s", "nsga2", {"seed": 0, "pop_size": 4})  # resuming is fine
    with pytest.raises(ValueError, match="run with other settings.*pop_size 4 -> 8") as info:
        store.start_search("run1", "s", "nsga2", {"pop_size": 8, "seed": 0})
    one_line(info)
    with pytest.raises(ValueError, match="tactic 'nsga2', now 'random'"):
        store.start_search("run1", "s", "random", {"pop_size": 4, "seed": 0})
    assert store.population("run1") == []
    store.record_population("run1", 0, ["a", "b"])
    store.record_population("run1", 1, ["c", "d", "x"])
    store.record_population("run1", 1, ["e", "f"])  # replaced, not appended
    assert store.population("run1") == ["e", "f"]
    assert store.population("run1", 0) == ["a", "b"]
    history = store.history("run1")
    assert list(history.columns) == ["generation", "position", "arch"]
    assert history.values.tolist() == [[0, 0, "a"], [0, 1, "b"], [1, 0, "e"], [1, 1, "f"]]
    searches = store.searches()
    assert list(searches.search_id) == ["run1"]
    assert searches.tactic[0] == "nsga2" and '"pop_size": 4' in searches.config[0]
    with pytest.raises(ValueError, match="unknown search_id 'nope'.*run1"):
        store.population("nope")
    with pytest.raises(ValueError, match="unknown search_id"):
        store.record_population("nope", 0, ["a"])
    with pytest.raises(ValueError, match="unknown search_id"):
        store.history("nope")


def test_search_record_and_validations(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    assert not store.has_search("run1")
    store.start_search("run1", "s", "concurrent", {"budget": 3})
    assert store.has_search("run1") and not store.has_search("run2")
    record = store.search("run1")
    assert (record["search_id"], record["supernet_id"], record["tactic"]) == ("run1", "s", "concurrent")
    assert record["config"] == {"budget": 3} and record["created"]
    assert store.validations("run1") == []
    store.record_validations("run1", ["c", "a", "c"])
    store.record_validations("run1", ["a", "b"])  # a resumed run records each arch once, in order
    assert store.validations("run1") == ["c", "a", "b"]
    store.start_search("run2", "s", "concurrent", {"budget": 3})
    store.record_validations("run2", ["a"])
    assert store.validations("run2") == ["a"] and store.validations("run1") == ["c", "a", "b"]
    for call in (store.search, store.validations, lambda i: store.record_validations(i, ["a"])):
        with pytest.raises(ValueError, match="unknown search_id 'nope'"):
            call("nope")


def test_a_store_whose_creation_was_killed_mid_transaction_recovers(tmp_path):
    # A creation killed between BEGIN and COMMIT leaves the file and a hot rollback journal: copying
    # both mid-transaction reproduces what the next process finds.
    import shutil

    making = tmp_path / "making.sqlite"
    connection = sqlite3.connect(making, isolation_level=None)
    connection.execute("CREATE TABLE placeholder (x)")  # the file has a first page to roll back to
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    connection.execute("INSERT INTO meta VALUES ('format', 'nastools-store')")
    connection.execute("DROP TABLE placeholder")
    killed = tmp_path / "killed.sqlite"
    shutil.copy(making, killed)
    shutil.copy(making.with_name("making.sqlite-journal"), killed.with_name("killed.sqlite-journal"))
    connection.execute("ROLLBACK")
    connection.close()
    with pytest.raises(StoreError, match="no nastools-store marker"):  # rolled back to the placeholder
        ResultStore(killed)
    empty = tmp_path / "empty.sqlite"
    connection = sqlite3.connect(empty, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    shutil.copy(empty, tmp_path / "empty-killed.sqlite")
    journal = empty.with_name("empty.sqlite-journal")
    if journal.exists():
        shutil.copy(journal, tmp_path / "empty-killed.sqlite-journal")
    connection.execute("ROLLBACK")
    connection.close()
    with ResultStore(tmp_path / "empty-killed.sqlite") as store:  # nothing was committed: a new store
        store.add([row("a")])
        assert len(store.measurements()) == 1


# The schema nastools 0.2 wrote (store version 2): no store id, no record of who runs a search.
def v2_store(path):
    connection = sqlite3.connect(path, isolation_level=None)
    connection.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('format', 'nastools-store'), ('version', '2');
        CREATE TABLE measurements (
            id INTEGER PRIMARY KEY, supernet_id TEXT NOT NULL, checkpoint_hash TEXT NOT NULL,
            arch TEXT NOT NULL, metric TEXT NOT NULL, hardware TEXT NOT NULL,
            host TEXT NOT NULL DEFAULT '', kind TEXT NOT NULL DEFAULT 'validation', value REAL NOT NULL,
            spread REAL, repeats INTEGER, flagged INTEGER NOT NULL DEFAULT 0, timestamp TEXT NOT NULL,
            search_id TEXT
        );
        CREATE TABLE searches (
            search_id TEXT PRIMARY KEY, supernet_id TEXT NOT NULL, tactic TEXT NOT NULL,
            config TEXT NOT NULL, created TEXT NOT NULL, finished TEXT
        );
        CREATE TABLE populations (
            search_id TEXT NOT NULL REFERENCES searches (search_id), generation INTEGER NOT NULL,
            position INTEGER NOT NULL, arch TEXT NOT NULL, PRIMARY KEY (search_id, generation, position)
        );
        CREATE TABLE validations (
            search_id TEXT NOT NULL REFERENCES searches (search_id), position INTEGER NOT NULL,
            arch TEXT NOT NULL, PRIMARY KEY (search_id, position)
        );
        CREATE INDEX measurements_lookup_v2
            ON measurements (supernet_id, checkpoint_hash, metric, hardware, host, arch);
        INSERT INTO measurements (supernet_id, checkpoint_hash, arch, metric, hardware, value, timestamp)
            VALUES ('s', 'h', 'a', 'top1', '', 71.5, 't');
        INSERT INTO searches VALUES ('run1', 's', 'nsga2', '{"pop": 2}', 't', NULL);
        INSERT INTO validations VALUES ('run1', 0, 'a');
        PRAGMA journal_mode=WAL;
        """
    )
    connection.close()
    return path


def test_v2_store_is_read_as_it_is_and_upgraded_in_place(tmp_path):
    path = v2_store(tmp_path / "v2.sqlite")
    before = path.read_bytes()
    with ResultStore(path, read_only=True) as store:  # front and export read an old store untouched
        assert store.store_id is None and store.validations("run1") == ["a"]
        assert store.lookup("s", "h", "top1", "", ["a"])["a"]["value"] == 71.5
    assert path.read_bytes() == before
    with ResultStore(path) as store:
        assert len(store.store_id) == 32 and store.search("run1")["driver_pid"] is None
        assert not store.start_search("run1", "s", "nsga2", {"pop": 2})
        assert store.search("run1")["driver_pid"] == os.getpid()
        store_id = store.store_id
    with ResultStore(path, read_only=True) as store:
        assert store.store_id == store_id and len(store.measurements()) == 1
    connection = sqlite3.connect(path)
    assert dict(connection.execute("SELECT key, value FROM meta"))["version"] == "3"
    connection.close()


STARTER = textwrap.dedent(
    """
    import sys
    from nastools.store import ResultStore, SearchInProgressError

    store = ResultStore(sys.argv[1])
    try:
        new = store.start_search("run1", "s", "nsga2", {"pop_size": 4})
    except SearchInProgressError as error:
        print("refused:", error, flush=True)
        sys.exit(3)
    print("new" if new else "resumed", flush=True)
    if sys.argv[2] == "hold":
        sys.stdin.readline()  # runs the search until the parent kills this process
    """
)


def _starter(path, hold):
    return subprocess.Popen(
        [sys.executable, "-c", STARTER, str(path), "hold" if hold else "return"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )


def _start_elsewhere(path):
    """What another process gets when it starts the search (and returns)."""
    process = _starter(path, hold=False)
    out, _ = process.communicate()
    return out.strip()


def test_a_search_run_by_a_live_process_is_refused_and_taken_over_once_it_is_killed(tmp_path):
    import socket

    path = tmp_path / "r.sqlite"
    first = _starter(path, hold=True)
    try:
        assert first.stdout.readline() == "new\n"  # the first driver runs the search now
        store = ResultStore(path)
        with pytest.raises(SearchInProgressError) as info:
            store.start_search("run1", "s", "nsga2", {"pop_size": 4})
        message = one_line(info)
        assert (
            f"search 'run1' in {path} is being run by pid {first.pid} on {socket.gethostname()} since "
            in message
        )
        assert "wait for it to end or stop it, or give this search another id" in message
        assert isinstance(info.value, StoreError)
        assert store.start_search("run2", "s", "nsga2", {"pop_size": 4})  # another search is free
        with pytest.raises(SearchInProgressError, match="cannot forget search 'run1'.*run by pid"):
            store.forget_search("run1")
    finally:
        first.kill()
        first.wait()
        first.stdin.close()
        first.stdout.close()
    assert not store.start_search("run1", "s", "nsga2", {"pop_size": 4})  # the dead driver's: taken over
    record = store.search("run1")
    assert record["driver_pid"] == os.getpid() and record["driver_host"] == socket.gethostname()
    assert _start_elsewhere(path).startswith(
        f"refused: search 'run1' in {path} is being run by pid {os.getpid()}"
    )
    store.release_search("run1")
    assert store.search("run1")["driver_pid"] is None
    assert _start_elsewhere(path) == "resumed"
    assert store.search("run1")["driver_pid"] not in (None, os.getpid())  # it ended without releasing it
    assert not store.start_search("run1", "s", "nsga2", {"pop_size": 4})  # its pid is gone: taken over


def test_a_search_on_another_machine_runs_while_its_heartbeat_is_recent(tmp_path):
    from datetime import datetime, timedelta, timezone

    store = ResultStore(tmp_path / "r.sqlite")
    store.start_search("run1", "s", "nsga2", {})

    def driven_from_elsewhere(seconds_ago):
        beat = (datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)).isoformat()
        connection = sqlite3.connect(store.path)
        connection.execute(
            "UPDATE searches SET driver_host = 'another-machine', driver_pid = 1, heartbeat = ?", (beat,)
        )
        connection.commit()
        connection.close()

    driven_from_elsewhere(seconds_ago=30)
    with pytest.raises(
        SearchInProgressError, match="run by pid 1 on another-machine.*heartbeat is 300 s old"
    ):
        store.start_search("run1", "s", "nsga2", {})
    for record in (
        lambda: store.record_validations("run1", ["a"]),
        lambda: store.record_population("run1", 0, []),
    ):
        with pytest.raises(
            SearchInProgressError, match="cannot record .*search 'run1'.*another-machine"
        ) as info:
            record()  # this process lost the search: it must not record into it
        one_line(info)
    assert store.validations("run1") == []
    with pytest.raises(SearchInProgressError):
        store.start_search("run1", "s", "nsga2", {}, stale_after=3600)
    assert not store.start_search("run1", "s", "nsga2", {}, stale_after=10)  # 30 s old: gone
    assert store.search("run1")["driver_host"] != "another-machine"
    driven_from_elsewhere(seconds_ago=3600)
    assert not store.start_search("run1", "s", "nsga2", {})
    with pytest.raises(ValueError, match="stale_after must be a positive number of seconds, got 0"):
        store.start_search("run1", "s", "nsga2", {}, stale_after=0)


def test_the_heartbeat_moves_with_what_the_search_stores(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    store.start_search("run1", "s", "nsga2", {})
    store.start_search("other", "s", "nsga2", {})
    long_ago = "2000-01-01T00:00:00+00:00"
    for write in (
        lambda: store.add([row("a", search_id="run1")]),
        lambda: store.record_validations("run1", ["a"]),
        lambda: store.record_population("run1", 0, ["a"]),
    ):
        connection = sqlite3.connect(store.path)
        connection.execute("UPDATE searches SET heartbeat = ?", (long_ago,))
        connection.commit()
        connection.close()
        write()
        assert store.search("run1")["heartbeat"] > long_ago
        assert store.search("other")["heartbeat"] == long_ago  # only the search written to beats
    since = store.search("run1")["driver_since"]
    assert not store.start_search("run1", "s", "nsga2", {})  # this process again: the same run
    assert store.search("run1")["driver_since"] == since


def test_a_finished_search_started_again_resumes_in_another_process(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    store.start_search("run1", "s", "nsga2", {"pop_size": 4})
    store.record_validations("run1", ["a"])
    store.finish_search("run1", {"n_validated": 1})
    assert store.search("run1")["driver_pid"] is None and store.search("run1")["finished"]["n_validated"] == 1
    wal = tmp_path / "r.sqlite-wal"
    assert not wal.exists() or wal.stat().st_size == 0  # finishing empties the log into the file
    assert _start_elsewhere(store.path) == "resumed"


def test_run_tactic_releases_its_search_on_ctrl_c(tmp_path):
    from helpers import ToySupernet

    from nastools.evaluation import Evaluator
    from nastools.search import RandomSearch, run_tactic

    supernet = ToySupernet()
    store = ResultStore(tmp_path / "r.sqlite")
    tactic = RandomSearch(supernet.space, {"score": "max", "params": "min"}, 8, batch_size=2, seed=0)
    config = tactic.config()

    def interrupt(tactic):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_tactic(
            tactic,
            Evaluator(supernet, store, progress=False),
            search_id="run1",
            callbacks=[interrupt],
            progress=False,
        )
    record = store.search("run1")
    assert record["driver_pid"] is None and record["finished"] is None and len(store.validations("run1")) == 2
    script = (
        "import sys, json; from nastools.store import ResultStore; "
        "print(ResultStore(sys.argv[1]).start_search('run1', 'toy', 'random', json.loads(sys.argv[2])))"
    )
    other = subprocess.run(
        [sys.executable, "-c", script, str(store.path), json.dumps(config)],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert other.stdout == "False\n", other.stderr[-1000:]  # resumed there, not refused
    resumed = run_tactic(
        RandomSearch(supernet.space, {"score": "max", "params": "min"}, 8, batch_size=2, seed=0),
        Evaluator(supernet, store, progress=False),
        search_id="run1",
        progress=False,
    )
    assert resumed.n_validated == 8 and store.search("run1")["driver_pid"] is None
