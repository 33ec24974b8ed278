"""``nastools store copy`` and ``merge``, and what ``nastools front`` says of a store missing its rows."""

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from nastools import cli
from nastools.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def _stored(path, archs, search_id=None):
    with ResultStore(path) as store:
        store.add(
            [
                {
                    "supernet_id": "s",
                    "checkpoint_hash": "h",
                    "arch": a,
                    "metric": "top1",
                    "hardware": "",
                    "value": 1.0,
                }
                for a in archs
            ]
        )
        if search_id:
            store.start_search(search_id, "s", "random", {"seed": 0})
            store.record_validations(search_id, archs)
            store.release_search(search_id)
    return path


@pytest.mark.parametrize(
    "args", [["store", "--help"], ["store", "copy", "--help"], ["store", "merge", "--help"]]
)
def test_help_answers_without_importing_torch_or_pandas(args):
    probe = "\n".join(
        [
            "import sys; from nastools.cli import main",
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass",
            "print('HEAVY' if {'torch', 'pandas'} & set(sys.modules) else 'LIGHT')",
        ]
    )
    result = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=ROOT)
    assert "usage: nastools store" in result.stdout and result.stdout.strip().endswith("LIGHT"), result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["store"], "the following arguments are required: ACTION"),
        (["store", "copy", "only-one.sqlite"], "the following arguments are required: DST"),
        (["store", "merge", "a.sqlite"], "the following arguments are required: --into"),
        (["store", "move", "a", "b"], "invalid choice: 'move'"),
    ],
)
def test_argument_errors_are_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(args)
    assert info.value.code == 2
    error = capsys.readouterr().err
    assert message in error and error.strip().splitlines()[-1].startswith("nastools store")


def test_copy_and_merge_print_one_line_of_what_they_did(tmp_path, capsys):
    source = _stored(tmp_path / "a.sqlite", ["x", "y"], search_id="run1")
    other = _stored(tmp_path / "b.sqlite", ["y", "z"])
    copy = tmp_path / "copy.sqlite"
    assert cli.main(["store", "copy", str(source), str(copy)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert out.startswith(
        f"copied {source} to {copy}: 2 measurements and 1 searches in one file, with its own"
    )
    with ResultStore(copy, read_only=True) as copied, ResultStore(source, read_only=True) as original:
        assert copied.store_id in out and copied.store_id != original.store_id
        assert copied.validations("run1") == ["x", "y"]
    into = tmp_path / "merged.sqlite"
    assert cli.main(["store", "merge", str(source), str(other), "--into", str(into)]) == 0
    assert capsys.readouterr().out == (
        f"merged 2 store(s) into {into}: 4 measurements added (0 there already); "
        "searches: 1 added, 0 merged\n"
    )
    with ResultStore(into, read_only=True) as merged:
        assert sorted(merged.measurements().arch) == ["x", "y", "y", "z"]  # y of b has another timestamp
    assert cli.main(["store", "merge", str(copy), "--into", str(into)]) == 0  # a copy holds the same rows
    assert "0 measurements added (2 there already); searches: 0 added, 1 merged" in capsys.readouterr().out


def test_failures_are_one_line(tmp_path, capsys):
    source = _stored(tmp_path / "a.sqlite", ["x"])
    for args, message in [
        (["copy", str(source), str(source)], "a.sqlite exists; pass the path of a new file"),
        (["copy", str(tmp_path / "none.sqlite"), str(tmp_path / "c.sqlite")], "none.sqlite does not exist"),
        (["merge", str(source), "--into", str(source)], "a.sqlite is the store merged into"),
    ]:
        assert cli.main(["store", *args]) == 1
        error = capsys.readouterr().err
        assert error.startswith(f"nastools store {args[0]}: error: ") and error.count("\n") == 1
        assert message in error


def test_front_of_a_search_whose_measurements_were_deleted_names_the_cause(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))
    store = tmp_path / "cli.sqlite"
    common = ["--store", str(store), "--search-id", "random-s0", "--supernet", "helpers:toy_supernet"]
    search = ["search", "--objectives", "score:max", "params:min", "--tactic", "random", "--budget", "4"]
    assert cli.main([*search, "--pop-size", "2", *common]) == 0
    assert cli.main(["front", *common]) == 0
    capsys.readouterr()
    connection = sqlite3.connect(store)
    connection.execute("DELETE FROM measurements WHERE metric = 'score'")  # the search's record stays
    connection.commit()
    connection.close()
    for verb in (["front"], ["export", "--rank", "0", "--out", str(tmp_path / "out")]):
        assert cli.main([*verb, *common]) == 1
        error = capsys.readouterr().err
        assert error.count("\n") == 1, error
        assert error.startswith(
            f"nastools {verb[0]}: error: 4 of the 4 archs search 'random-s0' validated have no stored "
            f"measurement of score in {store} (deleted, or stored in another file)"
        )
    assert not (tmp_path / "out").exists()
