import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from nastools.store import ResultStore, StoreError


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


def test_new_store_has_marker_and_wal(tmp_path):
    path = tmp_path / "deep" / "sub" / "r.sqlite"
    ResultStore(path).close()
    connection = sqlite3.connect(path)
    assert dict(connection.execute("SELECT key, value FROM meta")) == {
        "format": "nastools-store",
        "version": "1",
    }
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"meta", "measurements", "searches", "populations"} <= tables
    connection.close()


def test_add_and_lookup_latest_row_wins(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    assert store.add([row("a", value=1.0), row("b", value=2.0)]) == 2
    store.add([row("a", value=3.0, spread=0.1, repeats=5, flagged=True, search_id="x")])
    found = store.lookup("s", "h", "top1", "", ["a", "c"])
    assert set(found) == {"a"}  # b was not asked for, c was never stored
    assert found["a"]["value"] == 3.0
    assert found["a"]["spread"] == 0.1 and found["a"]["repeats"] == 5 and found["a"]["flagged"] == 1
    assert found["a"]["search_id"] == "x" and found["a"]["timestamp"]  # filled in
    assert store.lookup("s", "other-hash", "top1", "", ["a"]) == {}
    assert store.lookup("s", "h", "macs", "", ["a"]) == {}
    assert store.lookup("s", "h", "top1", "cpu-t1-b1", ["a"]) == {}
    assert len(store.measurements()) == 3  # nothing is overwritten
    assert list(store.measurements(search_id="x").value) == [3.0]


def test_lookup_many_archs(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    store.add([row(str(i), value=i) for i in range(1500)])
    found = store.lookup("s", "h", "top1", "", [str(i) for i in range(0, 3000, 2)])
    assert len(found) == 750 and found["1498"]["value"] == 1498
    assert all(int(key) % 2 == 0 and int(key) < 1500 for key in found)


def test_measurements_filters(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    store.add(
        [
            row("a", "top1", 0.7),
            row("a", "latency_ms", 5.0) | {"hardware": "cpu-t1-b1"},
            row("a", "latency_ms", 9.0) | {"hardware": "cpu-t4-b8"},
            row("b", "macs", 1e6, search_id="run1"),
        ]
    )
    assert len(store.measurements()) == 4
    latency = store.measurements(metric="latency_ms", hardware="cpu-t1-b1")
    assert list(latency.value) == [5.0] and list(latency.arch) == ["a"]
    assert list(store.measurements(search_id="run1").arch) == ["b"]
    assert len(store.measurements(search_id=None)) == 3
    assert len(store.measurements(supernet_id="nope")) == 0
    assert list(store.measurements().columns[:3]) == ["id", "supernet_id", "checkpoint_hash"]
    with pytest.raises(ValueError, match="unknown filter.*colour.*valid columns.*metric"):
        store.measurements(colour="red")


def test_persists_across_reopen(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultStore(path) as store:
        store.add([row("a", value=1.5)])
        store.start_search("run1", "s", "nsga2", {"pop": 2})
        store.record_population("run1", 0, ["a", "b"])
    with ResultStore(path) as store:
        assert store.lookup("s", "h", "top1", "", ["a"])["a"]["value"] == 1.5
        assert store.population("run1") == ["a", "b"]
        store.add([row("b")])
    assert len(ResultStore(path).measurements()) == 2


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"value": float("nan")}, "row 2 has non-finite 'value'"),
        ({"value": math.inf}, "row 2 has non-finite 'value'"),
        ({"value": "fast"}, "row 2 has non-finite 'value'"),
        ({"value": None}, r"row 2 lacks \['value'\]"),
        ({"metric": None}, r"row 2 lacks \['metric'\]"),
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


def test_rejects_non_sqlite_file_untouched(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_text("shopping list\n" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a nastools result store") as info:
        ResultStore(path)
    message = str(info.value)
    assert str(path) in message and "new file" in message and "\n" not in message
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
    with pytest.raises(StoreError, match=r"other\.db is not a nastools result store.*marker"):
        ResultStore(path)
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
    deadline = time.monotonic() + 2.0
    try:
        while len(reported) < 30 and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            reported.append(int(line))
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    assert reported, "the child process added nothing before it was killed"
    with ResultStore(path) as store:
        stored = store.measurements()
    counts = stored.groupby(stored.value.astype(int)).size()
    for i in reported:
        assert counts.get(i) == 3, f"batch {i} was reported added but is not all there"
    assert (counts == 3).all()  # no half batch, even the one in flight when killed


def test_search_populations(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    assert len(store.searches()) == 0
    store.start_search("run1", "s", "nsga2", {"pop_size": 4, "seed": 0})
    store.start_search("run1", "s", "nsga2", {"seed": 0, "pop_size": 4})  # resuming is fine
    with pytest.raises(ValueError, match="already exists"):
        store.start_search("run1", "s", "nsga2", {"pop_size": 8, "seed": 0})
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
