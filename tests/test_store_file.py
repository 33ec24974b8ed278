"""The store as one file a user can copy: its log, another store's log, copies, merges, read-only folders."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nastools.store import MergeResult, ResultStore, StoreError, copy_store, merge_stores

ROOT = Path(__file__).resolve().parents[1]


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


def archs_in_file_alone(path, tmp_path):
    """The archs a copy of ``path`` alone (no -wal beside it) holds, opened in a folder of its own."""
    folder = tmp_path / f"alone-{len(list(tmp_path.glob('alone-*')))}"
    folder.mkdir()
    shutil.copyfile(path, folder / "copy.sqlite")
    assert not (folder / "copy.sqlite-wal").exists()
    with ResultStore(folder / "copy.sqlite", read_only=True) as copy:
        return sorted(copy.measurements().arch)


def test_the_file_alone_holds_every_committed_row_while_the_store_is_open(tmp_path):
    import threading

    store = ResultStore(tmp_path / "results.sqlite")
    store.add([row("a"), row("b")])
    store.add([row("c")])
    store.start_search("run1", "s", "nsga2", {"pop_size": 2})
    store.record_validations("run1", ["a", "b"])
    store.record_population("run1", 0, ["a", "b"])
    writer = threading.Thread(target=store.add, args=([row("d")],))  # another thread's connection
    writer.start()
    writer.join()
    # copied as a user would, while the notebook kernel still has the store open
    assert archs_in_file_alone(store.path, tmp_path) == ["a", "b", "c", "d"]
    shutil.copyfile(store.path, tmp_path / "copy.sqlite")
    with ResultStore(tmp_path / "copy.sqlite", read_only=True) as copy:
        assert copy.validations("run1") == ["a", "b"] and copy.population("run1", 0) == ["a", "b"]
    store.close()
    assert (
        not (tmp_path / "results.sqlite-wal").exists()
        or (tmp_path / "results.sqlite-wal").stat().st_size == 0
    )


WRITER = textwrap.dedent(
    """
    import sys
    from nastools.store import ResultStore

    store = ResultStore(sys.argv[1])
    n_batches, block = int(sys.argv[2]), sys.argv[3] == "block"
    i = 0
    while True:
        store.add([{"supernet_id": "s", "checkpoint_hash": "h", "arch": f"{i}-{j}", "metric": "top1",
                    "hardware": "", "value": float(i)} for j in range(3)])
        print(i, flush=True)
        i += 1
        if i == n_batches and block:
            sys.stdin.readline()  # wait, never to return, for the parent to kill this process
    """
)


def _writer(path, n_batches, block):
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(n_batches), "block" if block else "go-on"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _kill_after(process, n_batches):
    """The batches a writer reported committed, once it has reported ``n_batches``; then kill -9 it."""
    reported = []
    try:
        while len(reported) < n_batches:  # waits for the child's word, however long it takes
            line = process.stdout.readline()
            if not line:
                break
            reported.append(int(line))
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdin.close()
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL and len(reported) == n_batches, "the writer died by itself"
    return reported


def test_after_kill_9_the_file_alone_holds_every_committed_row(tmp_path):
    path = tmp_path / "results.sqlite"
    reported = _kill_after(_writer(path, 5, block=True), 5)
    expected = sorted(f"{i}-{j}" for i in reported for j in range(3))
    assert archs_in_file_alone(path, tmp_path) == expected  # nobody opened the store since the kill


def test_a_store_killed_mid_write_is_complete_in_its_file_once_opened_again(tmp_path):
    path = tmp_path / "results.sqlite"
    reported = _kill_after(_writer(path, 20, block=False), 20)  # killed anywhere, a checkpoint included
    store = ResultStore(path)  # opening it completes the file; no close
    stored = store.measurements()
    counts = stored.groupby(stored.value.astype(int)).size()
    assert (counts == 3).all() and set(reported) <= set(counts.index)
    assert archs_in_file_alone(path, tmp_path) == sorted(stored.arch)
    store.close()


def _hot_store(path, archs):
    """A store whose -wal holds rows its file lacks (a reader held them back): what a crash leaves."""
    store = ResultStore(path)
    store.add([row(archs[0])])
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM measurements").fetchone()  # a snapshot: no checkpoint past it
    for arch in archs[1:]:
        store.add([row(arch)])
    return store, reader


def test_a_wal_of_another_store_is_refused_and_the_file_left_untouched(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    other, reader = _hot_store(tmp_path / "a" / "results.sqlite", ["a1", "a2", "a3", "a4", "a5"])
    with ResultStore(tmp_path / "b" / "results.sqlite") as mine:
        mine.add([row("b1"), row("b2"), row("b3")])
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copyfile(tmp_path / "b" / "results.sqlite", mixed / "results.sqlite")
    shutil.copyfile(tmp_path / "a" / "results.sqlite-wal", mixed / "results.sqlite-wal")  # another store's
    reader.close()
    other.close()
    before = (mixed / "results.sqlite").read_bytes()
    for read_only in (False, True):
        with pytest.raises(StoreError, match=r"results\.sqlite-wal belongs to another store") as info:
            ResultStore(mixed / "results.sqlite", read_only=read_only)
        message = one_line(info)
        assert "move results.sqlite-wal away" in message and "nastools store copy" in message
        with pytest.raises(StoreError, match="belongs to another store"):
            copy_store(mixed / "results.sqlite", tmp_path / "copy.sqlite")
    assert (mixed / "results.sqlite").read_bytes() == before  # never checkpointed into the file
    assert (mixed / "results.sqlite-wal").stat().st_size > 0
    (mixed / "results.sqlite-wal").rename(tmp_path / "moved-away-wal")
    with ResultStore(mixed / "results.sqlite") as store:
        assert sorted(store.measurements().arch) == ["b1", "b2", "b3"]


def test_a_stores_own_wal_copied_with_it_is_read(tmp_path):
    """Both files copied after a crash (the -wal holding rows the file lacks) open as one store."""
    store, reader = _hot_store(tmp_path / "results.sqlite", ["a", "b", "c"])
    (tmp_path / "copy").mkdir()
    for name in ("results.sqlite", "results.sqlite-wal"):
        shutil.copyfile(tmp_path / name, tmp_path / "copy" / name)
    reader.close()
    store.close()
    assert archs_in_file_alone(tmp_path / "copy" / "results.sqlite", tmp_path) == ["a"]  # the rest in -wal
    with ResultStore(tmp_path / "copy" / "results.sqlite", read_only=True) as copy:
        assert sorted(copy.measurements().arch) == ["a", "b", "c"]
    with ResultStore(tmp_path / "copy" / "results.sqlite") as copy:
        assert copy.store_id == store.store_id  # a byte copy is the same store
    assert archs_in_file_alone(tmp_path / "copy" / "results.sqlite", tmp_path) == ["a", "b", "c"]


HOLDER = textwrap.dedent(
    """
    import sys
    from nastools.store import ResultStore

    store = ResultStore(sys.argv[1])
    store.add([{"supernet_id": "s", "checkpoint_hash": "h", "arch": a, "metric": "top1", "hardware": "",
                "value": 1.0} for a in ("a", "b")])
    store.start_search("run1", "s", "nsga2", {"pop_size": 2})
    store.record_validations("run1", ["a", "b"])
    print(store.store_id, flush=True)
    sys.stdin.readline()  # holds the store open until the parent says so
    store.add([{"supernet_id": "s", "checkpoint_hash": "h", "arch": "c", "metric": "top1", "hardware": "",
                "value": 1.0}])
    print("done", flush=True)
    """
)


def test_copy_while_another_process_writes_gives_a_complete_file_with_a_new_id(tmp_path):
    path = tmp_path / "results.sqlite"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        source_id = holder.stdout.readline().strip()
        assert source_id, "the holder died before it stored its rows"
        copied = copy_store(path, tmp_path / "backup" / "copy.sqlite")
        holder.stdin.write("go on\n")
        holder.stdin.flush()
        assert holder.stdout.readline() == "done\n"  # the source is still writable after the copy
    finally:
        holder.kill()
        holder.wait()
        holder.stdin.close()
        holder.stdout.close()
    assert copied == tmp_path / "backup" / "copy.sqlite"
    assert sorted(p.name for p in copied.parent.iterdir()) == ["copy.sqlite"]  # one file, nothing partial
    assert archs_in_file_alone(copied, tmp_path) == ["a", "b"]
    with ResultStore(copied) as copy:
        assert copy.store_id != source_id and len(copy.store_id) == 32
        assert copy.validations("run1") == ["a", "b"] and copy.search("run1")["driver_pid"] is None
    with ResultStore(path) as source:
        assert source.store_id == source_id and sorted(source.measurements().arch) == ["a", "b", "c"]
        again = source.copy_to(tmp_path / "again.sqlite")
    with ResultStore(again, read_only=True) as copy:
        assert copy.store_id not in (source_id, None) and len(copy.measurements()) == 3
    with pytest.raises(StoreError, match="copy.sqlite exists; pass the path of a new file") as info:
        copy_store(path, copied)
    one_line(info)
    with pytest.raises(StoreError, match="absent.sqlite does not exist") as info:
        copy_store(tmp_path / "absent.sqlite", tmp_path / "new.sqlite")
    one_line(info)
    assert not (tmp_path / "new.sqlite").exists()


def test_copy_upgrades_an_older_store(tmp_path):
    from test_store import v1_store

    copied = copy_store(v1_store(tmp_path / "old.sqlite"), tmp_path / "new.sqlite")
    with ResultStore(copied, read_only=True) as copy:
        assert len(copy.measurements()) == 5 and copy.search("run1")["config"] == {"pop": 2}
    assert dict(sqlite3.connect(copied).execute("SELECT key, value FROM meta"))["version"] == "3"


def _searched(path, search_id, validated, config=None, finished=False, archs=()):
    with ResultStore(path) as store:
        store.add([row(a, value=float(i), timestamp=f"t{a}") for i, a in enumerate(archs)])
        store.start_search(search_id, "s", "nsga2", config or {"pop_size": 2})
        store.record_validations(search_id, validated)
        store.record_population(search_id, 0, validated[:2])
        if finished:
            store.finish_search(search_id, {"n_validated": len(validated)})
        store.release_search(search_id)


def test_merge_adds_what_is_missing_once_and_completes_shared_searches(tmp_path):
    a, b, into = tmp_path / "a.sqlite", tmp_path / "b.sqlite", tmp_path / "all" / "merged.sqlite"
    _searched(a, "shared", ["x", "y"], archs=["x", "y"])
    _searched(a, "only-a", ["x"])
    _searched(b, "shared", ["x", "y", "z"], finished=True, archs=["x", "y", "z"])  # same rows for x, y
    result = merge_stores([a, b], into)
    assert result == MergeResult(into, 2, measurements_added=3, measurements_present=2, searches_added=2,
                                 searches_merged=1)  # fmt: skip
    assert str(result) == (
        f"merged 2 store(s) into {into}: 3 measurements added (2 there already); searches: 2 added, 1 merged"
    )
    with ResultStore(into) as merged:
        assert sorted(merged.measurements().arch) == ["x", "y", "z"]
        assert merged.validations("shared") == ["x", "y", "z"] and merged.validations("only-a") == ["x"]
        assert merged.population("shared", 0) == ["x", "y"]
        assert merged.search("shared")["finished"]["n_validated"] == 3
        assert merged.search("shared")["driver_pid"] is None
    again = merge_stores([a, b], into)  # merging twice adds nothing
    assert (again.measurements_added, again.measurements_present) == (0, 5)
    assert archs_in_file_alone(into, tmp_path) == ["x", "y", "z"]
    with ResultStore(into, read_only=True) as merged:
        assert merged.validations("shared") == ["x", "y", "z"]


def test_merge_refuses_a_search_stored_with_other_settings_and_writes_nothing(tmp_path):
    a, b, into = tmp_path / "a.sqlite", tmp_path / "b.sqlite", tmp_path / "into.sqlite"
    _searched(a, "run1", ["x"], archs=["x"])
    _searched(b, "run1", ["y"], config={"pop_size": 4}, archs=["y"])
    with pytest.raises(
        StoreError, match=r"search 'run1' is stored in .*b\.sqlite and in .*a\.sqlite"
    ) as info:
        merge_stores([a, b], into)
    assert "different settings; nothing was merged" in one_line(info)
    with ResultStore(into, read_only=True) as merged:
        assert merged.measurements().empty and merged.searches().empty
    with pytest.raises(StoreError, match="is the store merged into") as info:
        merge_stores([a], a)
    one_line(info)
    with pytest.raises(StoreError, match="does not exist"):
        merge_stores([tmp_path / "absent.sqlite"], tmp_path / "never.sqlite")
    assert not (tmp_path / "never.sqlite").exists()


READ_ONLY_CHILD = textwrap.dedent(
    """
    import json, os, sys
    from nastools.store import ResultStore, StoreError

    folder = sys.argv[1]
    if os.access(folder, os.W_OK):
        print(json.dumps({"writable": True}))
        sys.exit(0)
    seen = {"writable": False}
    for name in ("clean", "hot"):
        try:
            with ResultStore(os.path.join(folder, name + ".sqlite"), read_only=True) as store:
                seen[name] = sorted(store.measurements().arch)
        except StoreError as error:
            seen[name] = "StoreError: " + str(error)
    seen["files"] = sorted(os.listdir(folder))
    print(json.dumps(seen))
    """
)


def test_a_store_in_a_read_only_folder_opens_read_only(tmp_path):
    folder = tmp_path / "medium"
    folder.mkdir()
    with ResultStore(folder / "clean.sqlite") as store:
        store.add([row("a"), row("b")])
    store, reader = _hot_store(tmp_path / "hot.sqlite", ["a", "b"])
    for name in ("hot.sqlite", "hot.sqlite-wal"):
        shutil.copyfile(tmp_path / name, folder / name)
    reader.close()
    store.close()
    files = sorted(os.listdir(folder))
    command = [sys.executable, "-c", READ_ONLY_CHILD, str(folder)]
    if os.geteuid() == 0:  # root writes anywhere: drop the capabilities that let it
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: a read-only folder cannot be made")
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", *command]
    folder.chmod(0o555)
    try:
        result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    finally:
        folder.chmod(0o755)
    if result.returncode != 0 and result.stderr.startswith("setpriv"):
        pytest.skip(f"cannot drop root's capabilities here: {result.stderr.strip()[:200]}")
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout)
    if seen["writable"]:
        pytest.skip("chmod 0o555 left the folder writable to this user")
    assert seen["clean"] == ["a", "b"]
    assert seen["hot"].startswith("StoreError: ") and "\n" not in seen["hot"]
    assert "rows are still in hot.sqlite-wal" in seen["hot"] and "copy both files" in seen["hot"]
    assert seen["files"] == files  # nothing was created beside the stores


DISK_FULL_CHILD = textwrap.dedent(
    """
    import sys
    from nastools.store import ResultStore, StoreError

    try:
        ResultStore(sys.argv[1])
    except StoreError as error:
        print("StoreError: " + str(error))
    """
)


def test_a_disk_that_fills_while_the_store_is_created_is_named(tmp_path):
    """On a real 12 KiB file system (a private mount namespace, where the tests may make one)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    store = disk / "results.sqlite"
    script = (
        f"mount -t tmpfs -o size=12k tmpfs {disk} || exit 77; "
        f'{sys.executable} -c "$0" {store}; status=$?; umount {disk}; exit $status'
    )
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("mounting a small file system needs root and unshare")
    result = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, DISK_FULL_CHILD], capture_output=True, text=True, cwd=ROOT
    )
    if result.returncode == 77 or "unshare failed" in result.stderr:
        pytest.skip(f"cannot mount a small file system here: {result.stderr.strip()[:200]}")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    message = result.stdout.strip()
    assert message.startswith(f"StoreError: cannot create the store at {store}: the disk is full (")
    assert message.endswith("free space or pass another path") and "\n" not in message


class _FullDisk(sqlite3.Connection):
    """A connection whose disk fills at the commit of the store's creation; sqlite then rolls back."""

    def execute(self, sql, *args):
        if sql == "COMMIT":
            super().execute("ROLLBACK")  # what sqlite does itself on SQLITE_FULL
            raise sqlite3.OperationalError("database or disk is full")
        return super().execute(sql, *args)


def test_a_full_disk_at_creation_is_named_not_the_failed_rollback(tmp_path, monkeypatch):
    from nastools.store import _connection

    opened = []

    def full_disk(target, *, uri=False):
        connection = sqlite3.connect(
            target, uri=uri, isolation_level=None, check_same_thread=False, factory=_FullDisk
        )
        opened.append(connection)
        return connection

    monkeypatch.setattr(_connection, "connect", full_disk)
    path = tmp_path / "results.sqlite"
    with pytest.raises(StoreError) as info:
        ResultStore(path)
    assert one_line(info) == (
        f"cannot create the store at {path}: the disk is full (database or disk is full); "
        "free space or pass another path"
    )
    assert isinstance(info.value.__cause__, sqlite3.OperationalError) and opened
    monkeypatch.undo()
    with ResultStore(path) as store:  # nothing was committed: with space, the same path becomes a store
        store.add([row()])
        assert len(store.measurements()) == 1
