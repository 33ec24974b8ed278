import sqlite3

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


def test_add_and_lookup_latest_row_wins(tmp_path):
    store = ResultStore(tmp_path / "sub" / "r.sqlite")
    assert store.add([row("a", value=1.0), row("b", value=2.0)]) == 2
    store.add([row("a", value=3.0, spread=0.1, repeats=5, flagged=True, search_id="x")])
    found = store.lookup("s", "h", "top1", "", ["a", "c"])
    assert set(found) == {"a"}
    assert found["a"]["value"] == 3.0 and found["a"]["repeats"] == 5 and found["a"]["flagged"] == 1
    assert store.lookup("s", "other-hash", "top1", "", ["a"]) == {}
    assert len(store.measurements()) == 3  # nothing is overwritten
    assert list(store.measurements(search_id="x").value) == [3.0]


def test_lookup_many_archs(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    store.add([row(str(i), value=i) for i in range(1500)])
    found = store.lookup("s", "h", "top1", "", [str(i) for i in range(0, 3000, 2)])
    assert len(found) == 750 and found["1498"]["value"] == 1498


def test_persists_across_reopen(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultStore(path) as store:
        store.add([row()])
    assert len(ResultStore(path).measurements()) == 1


@pytest.mark.parametrize(
    "bad, match",
    [({"value": float("nan")}, "non-finite"), ({"value": None}, "lacks"), ({"metric": None}, "lacks")],
)
def test_bad_rows_write_nothing(tmp_path, bad, match):
    store = ResultStore(tmp_path / "r.sqlite")
    with pytest.raises(ValueError, match=match):
        store.add([row("ok"), row("bad") | bad])
    assert len(store.measurements()) == 0


def test_unknown_filter(tmp_path):
    with pytest.raises(ValueError, match="unknown filter.*colour"):
        ResultStore(tmp_path / "r.sqlite").measurements(colour="red")


def test_rejects_non_sqlite_file_untouched(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_text("shopping list\n" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a nastools result store"):
        ResultStore(path)
    assert path.read_bytes() == before


def test_rejects_foreign_sqlite_untouched(tmp_path):
    path = tmp_path / "other.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE things (x)")
    connection.commit()
    connection.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="no nastools-store marker"):
        ResultStore(path)
    assert path.read_bytes() == before


def test_search_populations(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    store.start_search("run1", "s", "nsga2", {"pop_size": 4})
    store.start_search("run1", "s", "nsga2", {"pop_size": 4})  # resuming is fine
    with pytest.raises(ValueError, match="already exists"):
        store.start_search("run1", "s", "nsga2", {"pop_size": 8})
    store.record_population("run1", 0, ["a", "b"])
    store.record_population("run1", 1, ["c", "d"])
    store.record_population("run1", 1, ["e", "f"])  # replaced, not appended
    assert store.population("run1") == ["e", "f"]
    assert store.population("run1", 0) == ["a", "b"]
    assert len(store.history("run1")) == 4
    assert list(store.searches().search_id) == ["run1"]
    with pytest.raises(ValueError, match="unknown search_id 'nope'.*run1"):
        store.population("nope")
    with pytest.raises(ValueError, match="unknown search_id"):
        store.record_population("nope", 0, ["a"])
