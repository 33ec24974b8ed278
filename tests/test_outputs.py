"""Output paths checked before the work, and exports that never leave a partial file that looks complete."""

import errno
import io
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from nastools import cli, training
from nastools._outputs import check_output_dir, check_output_file
from nastools.experiments import quickstart, runner
from nastools.export import export_subnet
from nastools.store import ResultStore
from nastools.supernet import load_supernet
from nastools.tasks.digits import DigitsConfig

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def a_file(tmp_path):
    """A regular file: nothing can be created under it, whoever runs the tests (root included)."""
    path = tmp_path / "a-file"
    path.write_text("not a folder\n")
    return path


def _one_line(error) -> str:
    text = str(error)
    assert "\n" not in text.strip(), text
    return text


# --- the checks themselves -------------------------------------------------------------------------


def test_a_path_under_a_regular_file_cannot_be_created_and_nothing_is_made(a_file, tmp_path):
    with pytest.raises(NotADirectoryError) as info:
        check_output_dir(a_file / "sub" / "deeper", "--out")
    assert f"{a_file} is a file" in _one_line(info.value) and "--out" in str(info.value)
    with pytest.raises(NotADirectoryError, match=f"{a_file} is a file"):
        check_output_file(a_file / "sub" / "x.csv", "--csv")
    missing = tmp_path / "new" / "deeper"
    assert check_output_dir(missing, "--out") == missing and check_output_file(missing / "x.csv", "--csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # the checks created nothing


def test_the_wrong_kind_of_path(a_file, tmp_path):
    with pytest.raises(IsADirectoryError) as info:
        check_output_file(tmp_path, "--csv")
    assert "is a folder; give a file name" in _one_line(info.value)
    with pytest.raises(NotADirectoryError) as info:
        check_output_dir(a_file, "--out-dir")
    assert "is a file, not a folder" in _one_line(info.value)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_folder_that_accepts_no_files():
    # os.access says yes here (to root), the file system says no: the check asks the file system
    with pytest.raises(OSError) as info:
        check_output_dir("/proc/nastools-results", "--out-dir")
    assert "cannot create files in /proc" in _one_line(info.value)


def test_an_unwritable_folder(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: chmod does not stop writes (the /proc and file cases cover it)")
        with pytest.raises(PermissionError) as info:
            check_output_file(folder / "front.csv", "--csv")
        assert f"cannot create files in {folder}" in _one_line(info.value)
    finally:
        folder.chmod(0o700)


# --- the command lines check before the work -------------------------------------------------------


def _argument_error(capsys, call) -> str:
    with pytest.raises(SystemExit) as info:
        call()
    assert info.value.code == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error
    return error.strip().splitlines()[-1]


@pytest.mark.parametrize("where", ["under-a-file", "a-folder"])
def test_front_checks_its_csv_before_opening_the_store(where, a_file, tmp_path, capsys):
    csv = a_file / "sub" / "front.csv" if where == "under-a-file" else tmp_path
    store = tmp_path / "no-such-store.sqlite"  # the check comes first: the store is never opened
    argv = ["front", "--store", str(store), "--search-id", "s", "--csv", str(csv)]
    line = _argument_error(capsys, lambda: cli.main(argv))
    assert line.startswith("nastools: error: --csv") and "no-such-store" not in line
    assert not store.exists()


def test_export_checks_its_folder_before_opening_the_store(a_file, tmp_path, capsys):
    store = tmp_path / "no-such-store.sqlite"
    argv = ["export", "--store", str(store), "--search-id", "s", "--rank", "0", "--out", str(a_file / "x")]
    line = _argument_error(capsys, lambda: cli.main(argv))
    assert f"--out {a_file / 'x'}: {a_file} is a file" in line and not store.exists()


def test_an_unexpected_os_error_is_one_line_naming_the_path(monkeypatch, capsys):
    def unreadable(args):
        raise PermissionError(errno.EACCES, "Permission denied", "/data/results.sqlite")

    monkeypatch.setattr(cli, "_measure", unreadable)
    assert cli.main(["measure"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    assert error.startswith("nastools measure: error:") and "/data/results.sqlite" in error


def test_quickstart_checks_its_folder_before_loading_anything(a_file, monkeypatch, capsys):
    def no_loading(*args, **kwargs):
        raise AssertionError("the supernet was loaded before the output folder was checked")

    monkeypatch.setattr("nastools.supernet.load_supernet", no_loading)
    line = _argument_error(capsys, lambda: quickstart.main(["--out-dir", str(a_file / "sub")]))
    assert f"--out-dir {a_file / 'sub'}: {a_file} is a file" in line


def test_the_notebook_runner_checks_its_folder_before_any_kernel(a_file, capsys):
    line = _argument_error(capsys, lambda: runner.main(["00", "--out-dir", str(a_file / "sub")]))
    assert f"out_dir {a_file / 'sub'}: {a_file} is a file" in line
    line = _argument_error(capsys, lambda: runner.main(["00", "--out-dir", str(a_file)]))
    assert "is a file, not a folder" in line


@pytest.mark.parametrize("where", ["under-a-file", "proc"])
def test_train_checks_its_checkpoint_path_before_training(where, a_file, monkeypatch, capsys):
    if where == "proc" and not Path("/proc/self").is_dir():
        pytest.skip("needs Linux's /proc")
    out = a_file / "sub" / "x.pt" if where == "under-a-file" else Path("/proc/nastools.pt")

    def no_training(*args, **kwargs):
        raise AssertionError("training started before --out was checked")

    monkeypatch.setattr(training, "train_supernet", no_training)
    line = _argument_error(capsys, lambda: training.main(["--supernet", "digits-mbv3", "--out", str(out)]))
    assert f"--out {out}" in line


# --- exports: complete, or nothing ----------------------------------------------------------------


@pytest.fixture(scope="module")
def supernet():
    return load_supernet("digits-mbv3")


def _failing_half_way(save):
    """A torch writer that writes half of what it would, then finds the disk full."""

    def failing(obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        save(obj, buffer, *args, **kwargs)
        half = buffer.getvalue()[: len(buffer.getvalue()) // 2]
        if isinstance(f, (str, os.PathLike)):
            Path(f).write_bytes(half)
        else:
            f.write(half)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return failing


def _exported(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_a_writer_failing_half_way_leaves_no_partial_export(supernet, tmp_path, monkeypatch):
    arch = supernet.space.sample(1, rng=0)[0]
    monkeypatch.setattr(torch.export, "save", _failing_half_way(torch.export.save))
    out = tmp_path / "out"
    with pytest.raises(OSError) as info:
        export_subnet(supernet, arch, out, formats=["pt"])
    assert "no space left on the disk holding" in _one_line(info.value) and str(out) in str(info.value)
    assert info.value.errno == errno.ENOSPC
    assert _exported(out) == []  # no model.* under its final name, no hidden leftovers


def test_a_failed_export_keeps_the_complete_one_before_it(supernet, tmp_path, monkeypatch):
    first, second = supernet.space.sample(2, rng=1)
    out = tmp_path / "out"
    export_subnet(supernet, first, out, formats=["pt"])
    before = {name: (out / name).read_bytes() for name in _exported(out)}
    assert sorted(before) == ["model.json", "model.pt2"]
    monkeypatch.setattr(torch.export, "save", _failing_half_way(torch.export.save))
    with pytest.raises(OSError, match="no space left"):
        export_subnet(supernet, second, out, formats=["pt"])
    assert {name: (out / name).read_bytes() for name in _exported(out)} == before
    assert json.loads(before["model.json"])["arch_key"] == supernet.space.key(first)


def test_too_little_free_space_is_refused_before_the_work(supernet, tmp_path, monkeypatch):
    def no_work(arch):
        raise AssertionError("the module was built before the free space was checked")

    monkeypatch.setattr(supernet, "export_module", no_work)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: _Usage(free=10**5))
    with pytest.raises(OSError) as info:
        export_subnet(supernet, supernet.space.sample(1, rng=0)[0], tmp_path / "out", formats=["pt"])
    assert "the disk holding" in _one_line(info.value) and "0.1 MB free" in str(info.value)
    assert _exported(tmp_path / "out") == []


class _Usage:
    """What ``shutil.disk_usage`` answers for a nearly full disk."""

    def __init__(self, free):
        self.total, self.used, self.free = 10**9, 10**9 - free, free


def test_the_export_command_reports_a_full_disk_in_one_line(supernet, tmp_path, monkeypatch, capsys):
    store_path = tmp_path / "s.sqlite"
    with ResultStore(store_path) as store:
        store.start_search(
            "s", supernet.supernet_id, "random", {"objectives": {"top1": "max", "macs": "min"}}
        )
        store.release_search("s")
    monkeypatch.setattr(torch.export, "save", _failing_half_way(torch.export.save))
    key = supernet.space.key(supernet.space.sample(1, rng=0)[0])
    out = tmp_path / "out"
    argv = ["export", "--store", str(store_path), "--search-id", "s", "--arch", key, "--out", str(out)]
    assert cli.main([*argv, "--formats", "pt"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    assert error.startswith("nastools export: error:") and "no space left on the disk holding" in error
    assert _exported(out) == []


def test_a_checkpoint_that_does_not_fit_on_the_disk_is_one_line_and_leaves_no_partial_file(
    tmp_path, monkeypatch
):
    from nastools.supernets._image import save_checkpoint
    from nastools.supernets.mobilenetv3._embedded import recipe

    good = recipe()
    net = good.build(good.model_config)
    target = tmp_path / "net.pt"
    target.write_bytes(b"the previous checkpoint")
    real_fsync = os.fsync

    def full_disk(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("nastools._outputs.os.fsync", full_disk)
    with pytest.raises(
        OSError, match=r"cannot write the checkpoint .*net.pt: no space left on the disk"
    ) as info:
        save_checkpoint(target, good.kind, net, DigitsConfig(), good.training, {}, {})
    assert "\n" not in str(info.value)
    assert target.read_bytes() == b"the previous checkpoint"  # untouched, and no temporary file left
    assert [p.name for p in tmp_path.iterdir()] == ["net.pt"]
    monkeypatch.setattr("nastools._outputs.os.fsync", real_fsync)
    save_checkpoint(target, good.kind, net, DigitsConfig(), good.training, {}, {})
    assert target.stat().st_size > 1000


def test_an_atomically_written_file_gets_the_usual_permissions_not_mkstemps_private_ones(tmp_path):
    from nastools._outputs import write_atomically

    mask = os.umask(0o022)
    try:
        path = write_atomically(tmp_path / "shared.pt", b"weights", "checkpoint")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644
