"""The experiment notebooks as committed: clean, one parameters cell, profiles that fit (fast tier).

The notebook tier, which runs them, is tests/test_notebook_runs.py.
"""

import ast
import json
import os
import subprocess
import sys

import nbformat
import pytest
from helpers import nbstripout_extra_keys

from nastools.experiments import runner

NAMES = runner.notebook_names()
HEADER_FIELDS = ("**Question.**", "**Paper.**", "**Inputs.**", "**Outputs**")


def _stored(name):
    """The notebook's text as git stores it: through the nbstripout filter where `make lab` set it up.

    A notebook run and saved in the lab keeps its outputs in the working file; what is committed
    is what the filter writes, so that is what these tests check (in a clone without the filter,
    the file itself).
    """
    path = runner.NOTEBOOKS_DIR / f"{name}.ipynb"
    text = path.read_text()
    root = runner.NOTEBOOKS_DIR.parent
    attributes = subprocess.run(
        ["git", "check-attr", "filter", "--", str(path)], cwd=root, capture_output=True, text=True
    )
    configured = subprocess.run(
        ["git", "config", "--get", "filter.nbstripout.clean"], cwd=root, capture_output=True, text=True
    )
    if "nbstripout" in attributes.stdout and configured.returncode == 0:
        # what git runs as the clean filter (it reads the extra keys from git config itself)
        text = subprocess.run(
            [sys.executable, "-m", "nbstripout"], cwd=root, input=text, capture_output=True, text=True,
            check=True,
        ).stdout  # fmt: skip
    return text


def _read(name):
    return nbformat.reads(_stored(name), as_version=4)


def test_the_sequence_is_there():
    assert NAMES == [
        "00_quickstart",
        "01_hardware_transfer",
        "02_warm_start",
        "03_concurrent_vs_weaknas",
        "04_popdb",
        "05_predictor_analysis",
    ]


@pytest.mark.parametrize("name", NAMES)
def test_what_the_lab_saves_strips_back_to_the_committed_notebook(name):
    # what JupyterLab writes after "Run All" and save: outputs, counts, widget state, the kernel's info
    committed = _stored(name)
    saved = json.loads(committed)
    saved["metadata"]["language_info"] = {"name": "python", "version": "3.11.7", "mimetype": "text/x-python"}
    saved["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    for number, cell in enumerate(c for c in saved["cells"] if c["cell_type"] == "code"):
        cell["execution_count"] = number + 1
        cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["measured\n"]}]
        cell["metadata"]["scrolled"] = True
    stripped = subprocess.run(  # what git stores through the filter `make lab` installs
        [sys.executable, "-m", "nbstripout", "--extra-keys", nbstripout_extra_keys()],
        input=json.dumps(saved, indent=1, ensure_ascii=False) + "\n", capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    assert stripped.stdout == committed  # byte for byte: git compares what the filter writes


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_is_clean(name):
    nb = _read(name)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: outputs not stripped"
            assert cell.execution_count is None, f"{name}: execution count not stripped"
        assert "papermill" not in cell.get("metadata", {}), f"{name}: papermill metadata committed"
    header = nb.cells[0]
    assert header.cell_type == "markdown" and header.source.startswith("# ")
    assert all(field in header.source for field in HEADER_FIELDS), f"{name}: header lacks a field"
    findings = nb.cells[-1]
    assert (
        findings.cell_type == "code" and "Markdown(f" in findings.source and "## Findings" in findings.source
    )


@pytest.mark.parametrize("name", NAMES)
def test_one_parameters_cell_of_typed_commented_literals(name):
    nb = _read(name)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert tagged == [1], f"{name}: the second cell, and only it, must be tagged 'parameters'"
    source = nb.cells[1].source
    tree = ast.parse(source)
    names = []
    for node in tree.body:
        assert isinstance(node, ast.AnnAssign), f"{name}: parameters must be annotated assignments"
        ast.literal_eval(node.value)  # literals only
        names.append(node.target.id)
    lines = [line for line in source.splitlines() if line.strip()]
    assert len(lines) == len(names) and all("  # " in line for line in lines), (
        f"{name}: one commented line each"
    )
    assert {"seed", "out_dir", "supernet"} <= set(names)
    assert runner.notebook_parameters(runner.NOTEBOOKS_DIR / f"{name}.ipynb").keys() == set(names)


_TYPES = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "list": list,
    "dict": dict,
    "None": type(None),
}


def _allowed_types(annotation):
    """``"str | None"`` -> ``(str, NoneType)``: the types a value of a parameter may have."""
    return tuple(_TYPES[part.strip()] for part in annotation.split("|"))


def _has_type(value, types):
    if isinstance(value, bool):
        return bool in types  # a bool is no int here
    if float in types and isinstance(value, int):
        return True
    return isinstance(value, types)


@pytest.mark.parametrize("profile", ["smoke", "full", "full-digits", "teaching"])
def test_profiles_set_only_declared_parameters_of_the_right_type(profile):
    config = runner.load_profile(profile)
    assert set(config["notebooks"]) == set(NAMES)
    declared_anywhere = set()
    for name in NAMES:
        declared = runner.notebook_parameters(runner.NOTEBOOKS_DIR / f"{name}.ipynb")
        declared_anywhere |= set(declared)
        params = runner._parameters_for(name, declared, config)
        for key, value in params.items():
            types = _allowed_types(declared[key]["annotation"])
            assert _has_type(value, types), (
                f"{profile}/{name}: {key}={value!r} is not {declared[key]['annotation']}"
            )
            default = ast.literal_eval(declared[key]["default"])
            assert _has_type(default, types), f"{name}: default of {key} is not {declared[key]['annotation']}"
    assert set(config["common"]) <= declared_anywhere


@pytest.mark.parametrize("profile", ["smoke", "full", "full-digits", "teaching"])
def test_profiles_give_every_search_the_same_budget(profile):
    """Later notebooks re-run earlier searches by id: budget, pop_size and n_gen must be common."""
    config = runner.load_profile(profile)
    assert {"budget", "pop_size", "n_gen", "seed"} <= set(config["common"])
    for name, own in config["notebooks"].items():
        assert not {"budget", "pop_size", "n_gen", "seed"} & set(own or {}), name


def test_searches_have_a_budget_and_dependent_notebooks_name_their_source():
    declared = {name: runner.notebook_parameters(runner.NOTEBOOKS_DIR / f"{name}.ipynb") for name in NAMES}
    assert not any("n_validations" in parameters for parameters in declared.values())
    for name in NAMES[:5]:  # every notebook that searches
        assert declared[name]["budget"]["annotation"] == "int", name
    builds_on = {
        "02_warm_start": "source_search",
        "03_concurrent_vs_weaknas": "warm_start_search",
        "04_popdb": "history_search",
    }
    for name, parameter in builds_on.items():
        assert (
            declared[name][parameter]["annotation"] == "str | None"
            and declared[name][parameter]["default"] == "None"
        )
        assert declared[name][parameter]["help"], f"{name}: {parameter} needs a comment"
        source = "\n".join(c.source for c in _read(name).cells if c.cell_type == "code")
        assert f"source_search({parameter}" in source, f"{name} must read its source search by {parameter}"


@pytest.mark.parametrize("name", NAMES)
def test_every_declared_parameter_is_used(name):
    nb = _read(name)
    used = set()
    for cell in nb.cells[2:]:
        if cell.cell_type == "code":
            lines = [line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))]
            used |= {node.id for node in ast.walk(ast.parse("\n".join(lines))) if isinstance(node, ast.Name)}
    declared = runner.notebook_parameters(runner.NOTEBOOKS_DIR / f"{name}.ipynb")
    assert not set(declared) - used, f"{name} declares parameters it never uses"


def test_profile_errors():
    with pytest.raises(FileNotFoundError, match="smoke"):
        runner.load_profile("nope")
    with pytest.raises(ValueError, match="declares only"):
        runner._parameters_for("x", {"seed": {}}, {"common": {}, "notebooks": {"x": {"sead": 1}}})
    with pytest.raises(ValueError, match="names 0 notebooks"):
        runner.run_notebooks("smoke", "unused", ["99"])
    with pytest.raises(
        ValueError, match=r"--set names parameter\(s\) \['n_validations'\] that no notebook declares"
    ):
        runner.run_notebooks("smoke", "unused", overrides={"n_validations": 24})
    with pytest.raises(FileNotFoundError, match="notebooks folder"):
        runner.run_notebooks("smoke", "unused", notebooks_dir="/nonexistent")


def test_runner_executes_in_order_with_parameters(tmp_path):
    folder = tmp_path / "nbs"
    (folder / "params").mkdir(parents=True)
    for name, body, extra in [
        ("00_a", "print('a', seed)", ""),
        ("01_b", "open(out_dir + '/b.txt', 'w').write(f'{seed} {only_b}')", "\nonly_b: int = 0  # b"),
    ]:
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        params = nbformat.v4.new_code_cell('seed: int = 0  # s\nout_dir: str = "x"  # o' + extra)
        params.metadata["tags"] = ["parameters"]
        nb.cells = [nbformat.v4.new_markdown_cell("# t"), params, nbformat.v4.new_code_cell(body)]
        nbformat.write(nb, folder / f"{name}.ipynb")
    (folder / "params" / "p.yaml").write_text(
        "common:\n  seed: 7\n  only_b: 5\nnotebooks:\n  01_b: {seed: 9}\n"
    )
    records = runner.run_notebooks("p", tmp_path / "out", notebooks_dir=folder, cell_timeout=900)
    assert [r["notebook"] for r in records] == ["00_a", "01_b"] and {r["status"] for r in records} == {"ok"}
    assert (tmp_path / "out" / "b.txt").read_text() == "9 5"
    # a common parameter goes only to the notebooks that declare it
    assert records[0]["parameters"] == {"seed": 7, "out_dir": str((tmp_path / "out").resolve())}
    assert records[1]["parameters"]["only_b"] == 5
    executed = nbformat.read(tmp_path / "out" / "00_a" / "00_a.ipynb", as_version=4)
    assert "a 7" in executed.cells[-1].outputs[0]["text"]
    summary = json.loads((tmp_path / "out" / "notebooks_run.json").read_text())
    assert [r["notebook"] for r in summary] == ["00_a", "01_b"]
    # --set overrides the profile's common parameters
    runner.run_notebooks("p", tmp_path / "out", ["00"], notebooks_dir=folder, overrides={"seed": 3})
    executed = nbformat.read(tmp_path / "out" / "00_a" / "00_a.ipynb", as_version=4)
    assert "a 3" in executed.cells[-1].outputs[0]["text"]
    # a section for a notebook that is not there is a typo too
    (folder / "params" / "section.yaml").write_text("common: {}\nnotebooks:\n  01_c: {seed: 1}\n")
    with pytest.raises(ValueError, match=r"sections for \['01_c'\], which are not notebooks"):
        runner.run_notebooks("section", tmp_path / "out", notebooks_dir=folder)
    # a common parameter that no notebook declares is a typo, never silently dropped
    (folder / "params" / "typo.yaml").write_text("common:\n  sead: 7\nnotebooks: {}\n")
    with pytest.raises(ValueError, match=r"the profile names parameter\(s\) \['sead'\]"):
        runner.run_notebooks("typo", tmp_path / "out", notebooks_dir=folder)


def test_parse_overrides():
    assert runner.parse_overrides(["data_dir=/d", "trials=[0, 1]", "hardware=null"]) == {
        "data_dir": "/d",
        "trials": [0, 1],
        "hardware": None,
    }
    with pytest.raises(ValueError, match="NAME=VALUE"):
        runner.parse_overrides(["data_dir"])


def test_set_overrides_win_over_a_notebooks_own_section():
    profile = {"common": {"seed": 1}, "notebooks": {"x": {"seed": 2}}}
    declared = {"seed": {}, "out_dir": {}}
    assert runner._parameters_for("x", declared, profile) == {"seed": 2}
    assert runner._parameters_for("x", declared, profile, {"seed": 3, "budget": 5}) == {"seed": 3}


def test_yaml_errors_name_the_file_or_the_item(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("common:\n  seed: [1, 2\n")
    with pytest.raises(ValueError, match=r"bad\.yaml is not valid YAML: .* at line 3"):
        runner.load_profile(bad)
    with pytest.raises(ValueError, match=r"--set 'trials=\[0, 1': the value is not valid YAML"):
        runner.parse_overrides(["trials=[0, 1"])
    bad.write_text("- a list\n")
    with pytest.raises(ValueError, match="must be a mapping"):
        runner.load_profile(bad)


def test_a_typo_in_set_is_an_error_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match=r"--set names parameter\(s\) \['n_validation'\] that no notebook"):
        runner.run_notebooks("smoke", tmp_path, overrides={"n_validation": 5})
    assert not (tmp_path / "notebooks_run.json").exists()


def test_the_runner_leaves_the_environment_as_it_found_it(tmp_path, monkeypatch):
    folder = tmp_path / "nbs"
    (folder / "params").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('out_dir: str = "x"  # o')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("import os\nprint(os.environ['OMP_NUM_THREADS'])")]
    nbformat.write(nb, folder / "00_a.ipynb")
    (folder / "params" / "p.yaml").write_text("common: {}\nnotebooks: {00_a: {}}\n")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    runner.run_notebooks("p", tmp_path / "out", notebooks_dir=folder, threads=1, cell_timeout=900)
    executed = nbformat.read(tmp_path / "out" / "00_a" / "00_a.ipynb", as_version=4)
    assert executed.cells[-1].outputs[0]["text"].strip() == "1"  # the kernel saw it
    assert "OMP_NUM_THREADS" not in os.environ  # this process does not any more


def test_the_teaching_profile_times_nothing():
    from nastools.hardware import HardwareConfig

    config = runner.load_profile("teaching")
    hardware = config["common"]["hardware"]
    assert hardware and all(key.startswith("lut-") for key in hardware)
    for key in hardware:  # none of them is a measured (wall-clock) target
        with pytest.raises(ValueError, match="look-up-table target"):
            HardwareConfig.from_key(key)
