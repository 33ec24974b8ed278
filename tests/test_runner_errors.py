"""The notebook runner's errors: parameters checked before any kernel, a notebook's failure in one line.

The notebook-tier test at the end runs notebook 03 alone (``pytest -m notebook``).
"""

import json
import re

import nbformat
import pytest

from nastools.experiments import runner

NOTEBOOK_03 = runner.NOTEBOOKS_DIR / "03_concurrent_vs_weaknas.ipynb"


def _notebook_folder(tmp_path, body="print('ran', seed)"):
    """A folder of one tiny notebook (``00_a``, parameters ``seed`` and ``out_dir``) and a profile ``p``."""
    folder = tmp_path / "nbs"
    (folder / "params").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('seed: int = 0  # s\nout_dir: str = "x"  # o')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, folder / "00_a.ipynb")
    (folder / "params" / "p.yaml").write_text("common: {}\nnotebooks: {00_a: {}}\n")
    return folder


def _argument_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as info:
        runner.main(argv)
    assert info.value.code == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error
    return error.strip().splitlines()[-1]


# --- parameter types, before any kernel ------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"pop_size": [8]},
            "03_concurrent_vs_weaknas: parameter pop_size is annotated int, got [8] (type list)",
        ),
        ({"tactics": "random"}, "parameter tactics is annotated list, got 'random' (type str)"),
        ({"objectives": ["top1"]}, "parameter objectives is annotated dict | None, got ['top1']"),
        ({"warm_start_search": 3}, "parameter warm_start_search is annotated str | None, got 3"),
        ({"seed": True}, "parameter seed is annotated int, got True (type bool)"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_before_any_kernel(tmp_path, overrides, message):
    with pytest.raises(ValueError) as info:
        runner.run_notebooks("smoke", tmp_path, ["03"], overrides=overrides)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert "(set by --set)" in str(info.value)
    assert not (tmp_path / "notebooks_run.json").exists()  # nothing ran


def test_the_type_rules():
    declared = {
        "threshold": {"annotation": "float"},
        "include_task": {"annotation": "bool"},
        "min_samples": {"annotation": "int | None"},
        "path": {"annotation": "Path"},  # not a type checked here
        "untyped": {"annotation": None},
    }
    fine = {"threshold": 1, "include_task": False, "min_samples": None, "path": 3, "untyped": [1]}
    runner.check_parameter_types("04_popdb", declared, fine)  # an int is a float; the rest as declared
    runner.check_parameter_types("04_popdb", declared, {"threshold": 0.5, "min_samples": 2})
    with pytest.raises(ValueError, match=r"include_task is annotated bool, got 1 \(type int\)"):
        runner.check_parameter_types("05_x", declared, {"include_task": 1})  # an int is no bool
    with pytest.raises(ValueError, match=r"threshold is annotated float, got True"):
        runner.check_parameter_types("04_popdb", declared, {"threshold": True})
    with pytest.raises(
        ValueError, match=r"got '1e-3' \(type str\) \(set by profile p, 04_popdb\); write it as a"
    ):
        runner.check_parameter_types(
            "04_popdb", declared, {"threshold": "1e-3"}, {"threshold": "profile p, 04_popdb"}
        )


def test_a_profile_value_of_the_wrong_type_names_its_section(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text("common:\n  seed: 0\nnotebooks:\n  04_popdb:\n    threshold: 1e-3\n")
    where = re.escape(f"(set by profile {profile}, 04_popdb)")
    with pytest.raises(ValueError, match=rf"04_popdb: parameter threshold .* {where}"):
        runner.run_notebooks(profile, tmp_path / "out", ["04"])


def test_out_dir_set_as_a_parameter_is_an_error_not_ignored(tmp_path, capsys):
    folder = _notebook_folder(tmp_path)
    argv = ["--notebooks-dir", str(folder), "--profile", "p", "--out-dir", str(tmp_path / "out")]
    for value in ("", str(tmp_path / "elsewhere")):
        line = _argument_error(capsys, [*argv, "--set", f"out_dir={value}"])
        assert "out_dir cannot be set with --set" in line and "--out-dir" in line
    (folder / "params" / "p.yaml").write_text("common: {out_dir: /tmp/x}\nnotebooks: {00_a: {}}\n")
    with pytest.raises(ValueError, match="out_dir cannot be set in profile p"):
        runner.run_notebooks("p", tmp_path / "out", notebooks_dir=folder)
    assert not (tmp_path / "out").exists() and not (tmp_path / "elsewhere").exists()


def test_a_repeated_key_is_refused_naming_the_key_and_line(tmp_path):
    profile = tmp_path / "dup.yaml"
    profile.write_text("common:\n  seed: 0\n  budget: 8\n  seed: 1\nnotebooks: {}\n")
    with pytest.raises(ValueError) as info:
        runner.load_profile(profile)
    assert "duplicate key 'seed'" in str(info.value) and "at line 4" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="duplicate key 'top1'"):
        runner.parse_overrides(["objectives={top1: max, top1: min}"])


# --- a failure inside a notebook -------------------------------------------------------------------


def test_a_failing_notebook_is_its_own_one_line_error_and_a_log(tmp_path, capsys):
    body = "def check(n):\n    raise ValueError(f'pop_size must be positive, got {n}')\n\n\ncheck(-1)"
    folder = _notebook_folder(tmp_path, body)
    out = tmp_path / "out"
    argv = ["--notebooks-dir", str(folder), "--profile", "p", "--out-dir", str(out), "--cell-timeout", "600"]
    assert runner.main(argv) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]  # a progress bar may come before
    executed, log = out / "00_a" / "00_a.ipynb", out / "00_a" / "00_a.error.log"
    assert "00_a failed in cell" in error and "ValueError: pop_size must be positive, got -1" in error
    assert str(executed) in error and str(log) in error
    assert "Traceback" not in capsys.readouterr().err
    assert "check(-1)" in log.read_text() and "pop_size must be positive" in log.read_text()
    assert json.loads((out / "notebooks_run.json").read_text())[0]["status"] == "failed"
    with pytest.raises(runner.NotebookError, match="pop_size must be positive") as info:
        runner.run_notebooks("p", out, notebooks_dir=folder, cell_timeout=600)
    assert info.value.notebook == "00_a" and info.value.log == log and info.value.output == executed


# --- notebooks run alone on their defaults ---------------------------------------------------------


def test_notebook_03_reads_another_search_only_for_its_warm_start():
    nb = nbformat.read(NOTEBOOK_03, as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    guarded = source.split('if "warm-start" in tactics:', 1)
    assert len(guarded) == 2 and "source_search(" not in guarded[0]


@pytest.mark.notebook
def test_notebook_03_runs_alone_without_a_warm_start(tmp_path):
    overrides = {"tactics": ["random", "nsga2"], "budget": 8, "pop_size": 4, "n_gen": 2, "trials": [0]}
    records = runner.run_notebooks("smoke", tmp_path, ["03"], overrides=overrides, threads=1)
    assert [r["status"] for r in records] == ["ok"]
    folder = tmp_path / "03_concurrent_vs_weaknas"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["warm_start_search"] is None
    assert set(summary["final_hypervolume"]) == {"random", "nsga2"}
    assert (folder / "hypervolume.png").is_file() and (folder / "table2.csv").is_file()
