"""The findings of issue 20's second QA battery, one test per case: each failed before its fix.

Cases that need a full disk, another user or a terminal's Ctrl+C are made here without them: a
writer that finds the disk full, ``/dev/full``, ``/proc`` (a folder that takes no files, even for
root), and signals sent to a child process once it has signalled (by a file) that it is running.
"""

import errno
import hashlib
import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from helpers import ToySupernet, toy_supernet

from nastools import cli, datasets, training
from nastools.analysis import reference_bounds, space_summary
from nastools.evaluation import Evaluator
from nastools.experiments import runner
from nastools.experiments.explorer import explore
from nastools.export import export_subnet
from nastools.hypervolume import HypervolumeIndicator
from nastools.metrics import Metric
from nastools.search import RandomSearch, make_tactic, run_tactic
from nastools.space import SearchSpace
from nastools.store import ResultStore, StoreError, _copy, merge_stores

ROOT = Path(__file__).resolve().parents[1]
OBJECTIVES = {"score": "max", "macs": "min"}


def _one_line(text: str) -> str:
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def _row(i: int) -> dict:
    return {"supernet_id": "s", "checkpoint_hash": "h", "arch": f"d_0={i}", "metric": "macs", "hardware": ""}


@pytest.fixture
def toy_store(tmp_path) -> Path:
    """A store holding a finished random search ``r`` of the toy supernet (checkpoint ``toy-0``)."""
    path = tmp_path / "toy.sqlite"
    evaluator = Evaluator(ToySupernet(), path, progress=False)
    run_tactic(
        RandomSearch(evaluator.supernet.space, OBJECTIVES, 3, seed=0),
        evaluator,
        search_id="r",
        progress=False,
    )
    evaluator.store.close()
    return path


def retrained_toy() -> ToySupernet:
    """The toy supernet under its own id, with other weights (another checkpoint hash)."""
    supernet = toy_supernet()
    supernet.checkpoint_hash = "toy-retrained"
    return supernet


@pytest.fixture
def notebooks_dir(tmp_path) -> Path:
    """A notebooks folder with one notebook, ``00_wait``: it writes ``out_dir/started``, then waits."""
    folder = tmp_path / "notebooks"
    (folder / "params").mkdir(parents=True)
    (folder / "params" / "smoke.yaml").write_text("common: {}\n")
    parameters = nbformat.v4.new_code_cell('out_dir = "."')
    parameters.metadata["tags"] = ["parameters"]
    waiting = (
        "import pathlib, time\npathlib.Path(out_dir, 'started').write_text('')\n"
        "while True:\n    time.sleep(0.05)"
    )
    notebook = nbformat.v4.new_notebook(cells=[parameters, nbformat.v4.new_code_cell(waiting)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, str(folder / "00_wait.ipynb"))
    return folder


# --- silently wrong ------------------------------------------------------------------------------------


def test_a_set_of_choices_is_refused():  # S1
    for unordered in ({"relu", "gelu"}, frozenset({"relu", "gelu"}), {"relu": 1, "gelu": 2}.keys()):
        with pytest.raises(ValueError, match="no fixed order; give a list: the order is the encoding"):
            SearchSpace({"d": [1, 2], "act": unordered})


def test_an_export_into_the_folder_of_another_archs_export_leaves_none_of_its_files(tmp_path):  # S2
    supernet = ToySupernet()
    smallest, largest = supernet.extremes()
    export_subnet(supernet, largest, tmp_path, formats=["torchscript"])
    export_subnet(supernet, smallest, tmp_path, formats=["pt"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.pt2"]
    assert json.loads((tmp_path / "model.json").read_text())["arch"] == smallest


def test_a_choice_order_of_a_numeric_parameter_sets_its_extremes():  # S3
    class Pruned(ToySupernet):
        choice_order = {"act": ("relu", "gelu"), "width": (16, 8, 4)}  # a pruning ratio: larger is smaller

    smallest, largest = Pruned().extremes()
    assert (smallest["width"], largest["width"]) == (16, 4)


def test_hypervolume_clips_infinities_better_than_a_bound_and_refuses_nan():  # S4
    hv = HypervolumeIndicator({"a": "max", "b": "min"}, {"a": (0, 1), "b": (0, 1)})
    assert hv({"a": [np.inf], "b": [0.5]}) == pytest.approx(0.5)
    assert hv({"a": [0.5], "b": [-np.inf]}) == pytest.approx(0.5)
    assert hv({"a": [-np.inf], "b": [0.5]}) == 0.0  # worse than the bound: outside the box
    with pytest.raises(ValueError, match=r"values of 'a' are NaN in row\(s\) \[0\]"):
        hv({"a": [np.nan, 0.5], "b": [0.1, 0.5]})


def test_explore_refuses_an_objective_that_names_no_measured_column(tmp_path):  # S5
    evaluator = Evaluator(ToySupernet(), tmp_path / "s.sqlite", progress=False)
    evaluator.measure(ToySupernet().space.sample(3, rng=0), ["score", "macs"])
    with pytest.raises(ValueError, match=r"objective\(s\) \['mac'\] name no column of the results") as info:
        explore(evaluator, {"score": "max", "mac": "min"})
    _one_line(info.value)


def test_a_set_name_none_of_the_notebooks_run_declares_is_refused(monkeypatch, tmp_path):  # S7
    monkeypatch.setattr(runner, "_execute", lambda *args: [])  # nothing runs, whatever the outcome
    with pytest.raises(ValueError, match=r"--set names parameter\(s\) \['n_archs'\] that none of") as info:
        runner.run_notebooks(
            "smoke", tmp_path, ["02"], notebooks_dir=ROOT / "notebooks", overrides={"n_archs": 10}
        )
    assert "02_warm_start" in _one_line(info.value)
    assert (
        runner.run_notebooks(
            "smoke", tmp_path, ["00"], notebooks_dir=ROOT / "notebooks", overrides={"n_archs": 2}
        )
        == []
    )


# --- misleading ----------------------------------------------------------------------------------------


def test_front_on_another_checkpoint_names_both_checkpoints(toy_store, capsys):  # M1
    args = [
        "front",
        "--store",
        str(toy_store),
        "--search-id",
        "r",
        "--supernet",
        "test_battery:retrained_toy",
    ]
    assert cli.main(args) == 1
    line = _one_line(capsys.readouterr().err)
    assert "was measured on checkpoint ['toy-0']" in line and "'toy-retrained'" in line
    assert "read-only" not in line


def test_a_corrupt_cached_file_offline_says_it_fails_its_sha256(tmp_path):  # M2 (the cache's part)
    file = datasets.DataFile("t/x.bin", "https://example.org/x.bin", hashlib.sha256(b"good").hexdigest())
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "x.bin").write_bytes(b"damaged")
    with pytest.raises(datasets.FetchError) as info:
        datasets.fetch_file(file, home=tmp_path)
    line = _one_line(info.value)
    assert f"the cached file {tmp_path / 't' / 'x.bin'} fails its sha256 check" in line
    assert "nastools data fetch" in line and "https://example.org/x.bin" in line


def test_a_corrupt_cached_ofa_file_offline_is_named_by_the_supernet():  # M2 (the rest)
    from nastools.supernet import load_supernet
    from nastools.supernets.mobilenetv3._data import NOTE10_DATA, OFA_PREDICTOR_DATA

    predictor = datasets.data_home() / OFA_PREDICTOR_DATA.files[0].path
    table = datasets.data_home() / NOTE10_DATA.files[0].path
    for damaged in (predictor, table):
        damaged.parent.mkdir(parents=True, exist_ok=True)
        damaged.write_bytes(b"damaged")
    supernet = load_supernet("ofa-mbv3-w1.2")
    with pytest.raises(FileNotFoundError) as info:
        supernet.check_metric("top1")
    for line, path, dataset in (
        (_one_line(info.value), predictor, OFA_PREDICTOR_DATA),
        (_one_line(supernet.missing_table_message("lut-note10")), table, NOTE10_DATA),
    ):
        assert f"the cached file {path} fails its sha256 check" in line
        assert f"`nastools data fetch {dataset.name}`" in line and dataset.files[0].url in line
        assert "no location was given" not in line and "no data_dir was given" not in line


def test_explore_names_an_objective_missing_from_a_table():  # M3
    table = pd.DataFrame({"arch": ["a", "b", "c"], "lat": [1, 2, 3], "acc": [1, 3, 2]})
    with pytest.raises(ValueError, match=r"objective\(s\) \['lat2'\] name no column"):
        explore(table, {"acc": "max", "lat2": "min"})


def test_a_source_that_is_no_store_is_not_told_to_start_one(tmp_path, capsys):  # M4
    source = tmp_path / "notastore.py"
    source.write_text("x = 1\n")
    for args in (
        ["copy", str(source), str(tmp_path / "c.sqlite")],
        ["merge", "--into", str(tmp_path / "m.sqlite"), str(source)],
    ):
        assert cli.main(["store", *args]) == 1
        line = _one_line(capsys.readouterr().err)
        assert "is not a nastools result store" in line and "pass the path of a nastools store" in line
        assert "new file" not in line


def test_formats_given_as_one_string_is_said_to_be_a_list(tmp_path):  # M5
    supernet = ToySupernet()
    with pytest.raises(ValueError, match=r"formats is a list of format names, e.g. formats=\['pt'\]"):
        export_subnet(supernet, supernet.extremes()[0], tmp_path, formats="pt")


def test_space_summary_takes_full_parameter_names():  # M6
    space = SearchSpace({"w_0": [1, 2], "use_se": [True, False]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = space_summary(space, {"use_se": "squeeze and excite"})
    assert summary.set_index("kind").loc["use_se", "meaning"] == "squeeze and excite"


def test_hypervolume_of_an_array_asks_for_a_mapping():  # M7
    hv = HypervolumeIndicator({"a": "max", "b": "min"}, {"a": (0, 1), "b": (0, 1)})
    with pytest.raises(ValueError, match="a dict of objective label to values, or a DataFrame"):
        hv(np.array([[0.5, 0.5]]))


def test_the_readme_describes_every_step_of_make_test():  # M8
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    described = next(line for line in (ROOT / "README.md").read_text().split("```") if "make test" in line)
    assert "ruff" in recipe and "ruff" in described
    assert "-m notebook" in recipe and "notebook tier on the default" in described.replace("\n", " ").replace(
        "#", ""
    )


def test_the_declared_floors_are_the_versions_that_run():  # M9
    sys.path.insert(0, str(ROOT / "tests"))
    import min_requirements

    min_requirements.check_floors()
    with pytest.raises(ValueError, match="requires-python is '>=3.11', but the tests run on Python 3.10"):
        min_requirements.check_floors((3, 10))


# --- lost ----------------------------------------------------------------------------------------------


def test_a_checkpoint_held_back_by_a_reader_is_warned_of_once(tmp_path):  # L1
    path = tmp_path / "results.sqlite"
    store = ResultStore(path)
    store.add([_row(0) | {"value": 1.0}])
    reader = sqlite3.connect(path)  # a database browser holding a read open
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM measurements").fetchone()
    store.add([_row(i) | {"value": 1.0} for i in range(1, 51)])
    with pytest.warns(UserWarning) as caught:
        store.close()
    assert len(caught) == 1
    line = _one_line(caught[0].message)
    assert f"{path} does not hold every row yet: another connection reads the store" in line
    assert "nastools store copy" in line
    reader.close()
    with ResultStore(path) as again, warnings.catch_warnings():
        warnings.simplefilter("error")  # no reader: no warning
        again.add([_row(51) | {"value": 1.0}])


# --- tracebacks or vague -------------------------------------------------------------------------------


def test_ctrl_c_on_a_command_is_one_line_and_status_130(toy_store, monkeypatch, capsys):  # T1
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_search", interrupted)
    args = [
        "search",
        "--objectives",
        "score:max",
        "--budget",
        "2",
        "--store",
        str(toy_store),
        "--search-id",
        "s",
    ]
    assert cli.main(args) == 130
    assert _one_line(capsys.readouterr().err) == (
        f"nastools search: interrupted; everything measured is in {toy_store}: run the same command to resume"
    )
    import nastools.training

    monkeypatch.setattr(nastools.training, "main", interrupted)
    assert cli.main(["train", "--help-not-reached"]) == 130
    assert _one_line(capsys.readouterr().err) == "nastools train: interrupted"


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stopped_notebook_runner_says_so_in_one_line_and_keeps_its_summary(
    stop, notebooks_dir, tmp_path
):  # T2
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "nastools.cli",
        "notebooks",
        "--notebooks-dir",
        str(notebooks_dir),
        "--out-dir",
        str(out),
    ]
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        while not (out / "started").exists():  # the notebook writes it from inside its kernel
            assert child.poll() is None, child.communicate()
        child.send_signal(stop)
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    last = err.strip().splitlines()[-1]
    assert last.split(": ", 1)[1].startswith("interrupted; 00_wait stopped; its executed copy so far is ")
    assert json.loads((out / "notebooks_run.json").read_text())[0]["status"] == "interrupted"


@pytest.mark.parametrize(
    ("profile", "section"),
    [("common: [1, 2]\n", "'common'"), ("notebooks:\n  00_wait: [1]\n", "'notebooks: 00_wait'")],
)
def test_a_profile_section_that_is_a_list_is_one_line(profile, section, tmp_path):  # T3
    path = tmp_path / "p.yaml"
    path.write_text(profile)
    with pytest.raises(ValueError, match=f"section {section} must be a mapping of NAME: VALUE, got a list"):
        runner.load_profile(path)


def test_a_merge_onto_a_full_disk_is_one_line_naming_the_store(
    toy_store, tmp_path, monkeypatch, capsys
):  # T4
    def full(source, path):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(_copy, "_backup", full)
    into = tmp_path / "c.sqlite"
    assert cli.main(["store", "merge", "--into", str(into), str(toy_store)]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"nastools store merge: error: cannot merge into {into}: the disk is full")


def test_train_without_room_for_the_checkpoint_says_so_before_training(tmp_path, monkeypatch, capsys):  # L2
    def no_training(*args, **kwargs):
        raise AssertionError("training started on a disk without room for the checkpoint")

    usage = shutil.disk_usage(tmp_path)

    def almost_full(path):
        return usage._replace(free=100_000)

    monkeypatch.setattr(training, "train_supernet", no_training)
    monkeypatch.setattr(training.shutil, "disk_usage", almost_full)
    with pytest.raises(SystemExit) as info:
        training.main(["--supernet", "digits-mbv3", "--out", str(tmp_path / "new" / "d.pt")])
    assert info.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"error: --out folder {tmp_path} has 0.1 MB free, the checkpoint of digits-mbv3" in line
    assert "needs about" in line and "parameters + 1 MiB): free some space or choose another --out" in line
    assert not (tmp_path / "new").exists()


def test_a_store_error_of_quickstart_is_one_line(monkeypatch, capsys):  # T5
    import nastools.experiments.quickstart

    def full(argv):
        raise StoreError("cannot create the store at /full/q/results.sqlite: the disk is full")

    monkeypatch.setattr(nastools.experiments.quickstart, "main", full)
    assert cli.main(["quickstart", "--out-dir", "/full/q"]) == 1
    assert _one_line(capsys.readouterr().err) == (
        "nastools quickstart: error: cannot create the store at /full/q/results.sqlite: the disk is full"
    )


def test_cached_files_get_the_usual_permissions_and_an_unreadable_one_is_one_line(
    tmp_path, monkeypatch
):  # T6
    source = tmp_path / "x.bin"
    source.write_bytes(b"public data")
    file = datasets.DataFile("t/x.bin", source.as_uri(), hashlib.sha256(b"public data").hexdigest())
    monkeypatch.delenv(datasets.OFFLINE_ENV)
    mask = os.umask(0o022)
    try:
        cached = datasets.fetch_file(file, home=tmp_path / "cache")
    finally:
        os.umask(mask)
    assert cached.stat().st_mode & 0o777 == 0o644

    def private(path):  # what another user's 0600 file gives (root reads anything)
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(datasets, "_sha256", private)
    with pytest.raises(
        datasets.FetchError, match=f"cannot read the cached file {cached} .Permission denied."
    ) as info:
        datasets.file_status(file, home=tmp_path / "cache")
    _one_line(info.value)


def test_front_csv_that_cannot_be_written_names_it_and_leaves_no_file(
    toy_store, tmp_path, monkeypatch, capsys
):  # T7
    args = ["front", "--store", str(toy_store), "--search-id", "r", "--supernet", "helpers:toy_supernet"]
    assert cli.main([*args, "--csv", "/dev/full"]) == 1
    assert "cannot write the front CSV /dev/full: no space left" in _one_line(capsys.readouterr().err)

    def full(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    csv = tmp_path / "f.csv"
    assert cli.main([*args, "--csv", str(csv)]) == 1
    assert (
        f"cannot write the front CSV {csv}: no space left" in capsys.readouterr().err.strip().splitlines()[-1]
    )
    assert not [p.name for p in tmp_path.iterdir() if "f.csv" in p.name]  # no f.csv, empty or partial


def test_a_notebook_on_a_full_disk_names_the_folder_and_keeps_its_own_error(
    notebooks_dir, tmp_path, monkeypatch
):  # T8
    import papermill

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(papermill, "execute_notebook", full)
    monkeypatch.setattr(runner, "_write_summary", full)  # the summary cannot be written either
    with pytest.raises(runner.NotebookError) as info:
        runner.run_notebooks("smoke", tmp_path / "out", notebooks_dir=notebooks_dir)
    line = _one_line(info.value)
    assert (
        f"00_wait failed: OSError: no space left on the disk holding {tmp_path / 'out' / '00_wait'}" in line
    )


def test_a_copy_into_a_folder_that_takes_no_files_says_so(toy_store, capsys):  # T9
    assert cli.main(["store", "copy", str(toy_store), "/proc/c.sqlite"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "cannot create files in /proc" in line and "unable to open database file" not in line


def test_a_merge_into_a_folder_that_takes_no_files_names_the_store(toy_store):  # T10
    with pytest.raises(StoreError) as info:
        merge_stores([toy_store], "/proc/c.sqlite")
    line = _one_line(info.value)
    assert line.startswith("cannot merge into /proc/c.sqlite: ") and ".nastools-merge-" not in line


def test_export_takes_a_store_path_and_the_evaluator_refuses_a_number(toy_store, tmp_path):  # T12
    supernet = ToySupernet()
    arch = supernet.extremes()[0]
    with pytest.raises(ValueError, match="store must be a ResultStore, the path of one, or None"):
        export_subnet(supernet, arch, tmp_path / "bad", formats=["pt"], store=5)
    assert not (tmp_path / "bad").exists()
    export_subnet(supernet, arch, tmp_path / "ok", formats=["pt"], store=str(toy_store))
    assert json.loads((tmp_path / "ok" / "model.json").read_text())["arch"] == arch
    with pytest.raises(ValueError, match=r"store must be a ResultStore, the path of one, or None, got int"):
        Evaluator(supernet, 5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: HypervolumeIndicator({"a": "max"}, {"a": (0, 1, 2)}),
        lambda: HypervolumeIndicator({"a": "max"}, {"a": 1}),
        lambda: Metric("acc", "max", "%", bounds=(1,)),
        lambda: HypervolumeIndicator({"a": "max", "b": "min"}, {"a": (0, 1), "b": (0, 1)})(
            {"a": [0.5, 0.6], "b": [0.5]}
        ),
    ],
    ids=["three-bounds", "one-number", "metric-one-bound", "columns-of-two-lengths"],
)
def test_malformed_bounds_and_columns_are_one_line_errors(make):  # T13
    with pytest.raises(
        ValueError, match="must be a pair .low, high. of numbers|columns of different lengths"
    ) as info:
        make()
    _one_line(info.value)


def test_a_profile_with_a_yaml_merge_key_is_read(tmp_path):  # T14
    path = tmp_path / "p.yaml"
    path.write_text(
        "common: &shared {budget: 8, seed: 1}\nnotebooks:\n  01_x:\n    <<: *shared\n    budget: 9\n"
    )
    assert runner.load_profile(path)["notebooks"]["01_x"] == {"budget": 9, "seed": 1}
    path.write_text("common:\n  budget: 8\n  budget: 9\n")
    with pytest.raises(ValueError, match="duplicate key 'budget'"):
        runner.load_profile(path)


def test_a_tactic_parameter_given_as_an_algorithm_option_is_one_line():  # T11
    space = SearchSpace({f"k_{i}": [3, 5, 7] for i in range(4)})
    with pytest.raises(ValueError) as info:
        make_tactic("nsga2", space, OBJECTIVES, 10, pop_size=4, algorithm_options={"pop_size": 3})
    assert _one_line(info.value) == (
        "algorithm_options ['pop_size'] are the tactic's own parameters, not algorithm options "
        "(pop_size: pass pop_size=... to the tactic)"
    )
    with pytest.raises(ValueError, match=r"\['seed', 'initial_X'\] are the tactic's own parameters"):
        make_tactic("nsga2", space, OBJECTIVES, 10, algorithm_options={"seed": 1, "initial_X": None})
    concurrent = make_tactic(
        "concurrent", space, OBJECTIVES, 12, pop_size=4, n_gen=2, iteration_options=lambda i: {"seed": i}
    )
    archs = concurrent.ask()
    concurrent.tell(archs, {"score": np.arange(len(archs), dtype=float), "macs": np.ones(len(archs))})
    with pytest.raises(ValueError, match=r"iteration_options\(1\) keys \['seed'\] are the tactic's own"):
        concurrent.ask()


def test_an_infinite_margin_is_refused():  # T15
    with pytest.raises(ValueError, match="margin must be a finite number >= 0"):
        reference_bounds(Evaluator(ToySupernet(), None, progress=False), OBJECTIVES, margin=math.inf)


# --- minor ---------------------------------------------------------------------------------------------


def test_an_empty_search_id_is_refused(tmp_path):
    with ResultStore(tmp_path / "s.sqlite") as store:
        for empty in ("", "  "):
            with pytest.raises(ValueError, match="search_id must be a non-empty name"):
                store.start_search(empty, "toy", "random", {})
        assert store.searches().empty


def test_a_relative_data_cache_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(datasets.DATA_ENV, "cache")
    assert datasets.data_home() == tmp_path / "cache"
    with runner._thread_environment(None):  # what the notebooks' kernels inherit
        assert os.environ[datasets.DATA_ENV] == str(tmp_path / "cache")
    assert os.environ[datasets.DATA_ENV] == "cache"
