"""The experiment notebooks: committed clean (fast tier) and executed on the smoke profile (notebook tier)."""

import ast
import json
import os

import nbformat
import pandas as pd
import pytest

from nastools import notebooks as runner

NAMES = runner.notebook_names()
HEADER_FIELDS = ("**Question.**", "**Paper.**", "**Inputs.**", "**Outputs**")


def _read(name):
    return nbformat.read(runner.NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)


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


@pytest.mark.parametrize("profile", ["smoke", "full", "full-digits"])
def test_profiles_set_only_declared_parameters_of_the_right_type(profile):
    config = runner.load_profile(profile)
    assert set(config["notebooks"]) == set(NAMES)
    declared_anywhere = set()
    for name in NAMES:
        declared = runner.notebook_parameters(runner.NOTEBOOKS_DIR / f"{name}.ipynb")
        declared_anywhere |= set(declared)
        params = runner._parameters_for(name, declared, config)
        for key, value in params.items():
            default = ast.literal_eval(declared[key]["default"])
            if value is not None and default is not None:
                assert isinstance(value, type(default)), f"{profile}/{name}: {key}={value!r} vs {default!r}"
    assert set(config["common"]) <= declared_anywhere


def test_profile_errors():
    with pytest.raises(FileNotFoundError, match="smoke"):
        runner.load_profile("nope")
    with pytest.raises(ValueError, match="declares only"):
        runner._parameters_for("x", {"seed": {}}, {"common": {}, "notebooks": {"x": {"sead": 1}}})
    with pytest.raises(ValueError, match="names 0 notebooks"):
        runner.run_notebooks("smoke", "unused", ["99"])


def test_runner_executes_in_order_with_parameters(tmp_path):
    folder = tmp_path / "nbs"
    (folder / "params").mkdir(parents=True)
    for name, body in [
        ("00_a", "print('a', seed)"),
        ("01_b", "open(out_dir + '/b.txt', 'w').write(str(seed))"),
    ]:
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        params = nbformat.v4.new_code_cell('seed: int = 0  # s\nout_dir: str = "x"  # o')
        params.metadata["tags"] = ["parameters"]
        nb.cells = [nbformat.v4.new_markdown_cell("# t"), params, nbformat.v4.new_code_cell(body)]
        nbformat.write(nb, folder / f"{name}.ipynb")
    (folder / "params" / "p.yaml").write_text(
        "common:\n  seed: 7\n  unused: 1\nnotebooks:\n  01_b: {seed: 9}\n"
    )
    records = runner.run_notebooks("p", tmp_path / "out", notebooks_dir=folder, cell_timeout=120)
    assert [r["notebook"] for r in records] == ["00_a", "01_b"] and {r["status"] for r in records} == {"ok"}
    assert (tmp_path / "out" / "b.txt").read_text() == "9"
    executed = nbformat.read(tmp_path / "out" / "00_a" / "00_a.ipynb", as_version=4)
    assert "a 7" in executed.cells[-1].outputs[0]["text"]
    summary = json.loads((tmp_path / "out" / "notebooks_run.json").read_text())
    assert [r["notebook"] for r in summary] == ["00_a", "01_b"]
    # --set overrides the profile's common parameters
    runner.run_notebooks("p", tmp_path / "out", ["00"], notebooks_dir=folder, overrides={"seed": 3})
    executed = nbformat.read(tmp_path / "out" / "00_a" / "00_a.ipynb", as_version=4)
    assert "a 3" in executed.cells[-1].outputs[0]["text"]


def test_parse_overrides():
    assert runner.parse_overrides(["data_dir=/d", "trials=[0, 1]", "hardware=null"]) == {
        "data_dir": "/d",
        "trials": [0, 1],
        "hardware": None,
    }
    with pytest.raises(ValueError, match="NAME=VALUE"):
        runner.parse_overrides(["data_dir"])


# ------------------------------------------------------------------------------ notebook tier


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Run the whole sequence once on the smoke profile; tests below read what it wrote."""
    out = tmp_path_factory.mktemp("smoke")
    threads = os.environ.get("NASTOOLS_NOTEBOOK_THREADS", "1")  # as `make`; "" for torch's default
    records = runner.run_notebooks("smoke", out, threads=int(threads) if threads else None)
    return out, records, runner.load_profile("smoke")


def _summary(out, name):
    return json.loads((out / name / "summary.json").read_text())


def _in_unit(values):
    values = pd.Series(values, dtype=float)
    return bool(((values > 0) & (values <= 1)).all())


@pytest.mark.notebook
def test_smoke_sequence_ran(smoke):
    out, records, _ = smoke
    assert [r["notebook"] for r in records] == NAMES and {r["status"] for r in records} == {"ok"}
    assert (out / "results.sqlite").is_file()
    for name in NAMES:
        executed = nbformat.read(out / name / f"{name}.ipynb", as_version=4)
        errors = [
            o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
        ]
        assert not errors, name
        assert any(o.get("data", {}).get("text/markdown") for o in executed.cells[-1].outputs), name


@pytest.mark.notebook
def test_smoke_quickstart(smoke):
    out, _, profile = smoke
    folder = out / "00_quickstart"
    table = pd.read_csv(folder / "measurements.csv")
    assert len(table) == 2 + profile["notebooks"]["00_quickstart"]["n_archs"]
    assert table["top1"].between(0, 100).all() and table.iloc[0]["top1"] > table.iloc[1]["top1"]
    results = pd.read_csv(folder / "search_results.csv")
    assert len(results) == profile["common"]["n_validations"] and results["front"].any()
    summary = _summary(out, "00_quickstart")
    assert _in_unit([summary["hypervolume"]]) and summary["front_size"] == results["front"].sum()
    assert (folder / "front.png").stat().st_size > 0


@pytest.mark.notebook
def test_smoke_hardware_transfer(smoke):
    out, _, profile = smoke
    folder = out / "01_hardware_transfer"
    hw = profile["common"]["hardware"]
    matrix = pd.read_csv(folder / "hv_matrix.csv")
    assert len(matrix) == len(hw) ** 2
    assert (matrix.query("found_on == measured_on")["hv_lost_pct"] == 0).all()
    assert _in_unit(matrix["hv_own"]) and matrix["hypervolume"].between(0, 1).all()
    points = pd.read_csv(folder / "cross_hardware_points.csv")
    assert set(points["measured_on"]) == set(hw) and set(points["found_on"]) == set(hw)
    assert len(pd.read_csv(folder / "latency_rank_agreement.csv")) == len(hw) * (len(hw) - 1) // 2
    assert all(size > 0 for size in _summary(out, "01_hardware_transfer")["front_sizes"].values())
    assert (folder / "fronts.png").is_file() and (folder / "hv_lost.png").is_file()


@pytest.mark.notebook
def test_smoke_warm_start(smoke):
    out, _, profile = smoke
    folder = out / "02_warm_start"
    traces = pd.read_csv(folder / "traces.csv")
    assert set(traces["tactic"]) == {"random start", "warm start"} and _in_unit(traces["hypervolume"])
    snapshots = pd.read_csv(folder / "snapshots.csv")
    assert snapshots.groupby("search")["generation"].nunique().min() >= 2
    summary = _summary(out, "02_warm_start")
    assert _in_unit(list(summary["hv_final"].values()))
    assert (folder / "snapshots.png").is_file() and (folder / "hypervolume.png").is_file()


@pytest.mark.notebook
def test_smoke_concurrent_vs_weaknas(smoke):
    out, _, profile = smoke
    folder = out / "03_concurrent_vs_weaknas"
    tactics = profile["notebooks"]["03_concurrent_vs_weaknas"]["tactics"]
    traces = pd.read_csv(folder / "traces.csv")
    assert set(traces["tactic"]) == set(tactics) and _in_unit(traces["hypervolume"])
    table2 = pd.read_csv(folder / "table2.csv")
    assert set(table2["tactic"]) == set(tactics)
    assert {"validations_mean", "top1_mean", "macs_mean"} <= set(table2.columns)
    assert (table2["validations_mean"] <= profile["common"]["n_validations"]).all()
    final = traces.groupby(["tactic", "seed"]).last()["hypervolume"].groupby("tactic").mean()
    assert final["concurrent"] >= final["random"]  # the smoke budget is enough for that
    assert (folder / "hypervolume.png").is_file() and (folder / "weaknas_vs_concurrent.png").is_file()


@pytest.mark.notebook
def test_smoke_popdb(smoke):
    out, _, _ = smoke
    folder = out / "04_popdb"
    sizes = json.loads((folder / "popdb_sizes.json").read_text())
    assert 0 < sizes["size_after"] <= sizes["size_before"]
    clusters = pd.read_csv(folder / "clusters.csv")
    assert len(clusters) > 0 and {"x", "y", "label"} <= set(clusters.columns)
    parameters = pd.read_csv(folder / "popdb_parameters.csv")
    assert (parameters["n_after"] <= parameters["n_before"]).all()
    traces = pd.read_csv(folder / "traces.csv")
    assert set(traces["tactic"]) == {"full space", "PopDB space"} and _in_unit(traces["hypervolume"])
    assert (folder / "clusters.png").is_file() and (folder / "hypervolume.png").is_file()


@pytest.mark.notebook
def test_smoke_predictor_analysis(smoke):
    out, _, profile = smoke
    folder = out / "05_predictor_analysis"
    hw = profile["common"]["hardware"]
    taus = pd.read_csv(folder / "tau_table.csv")
    assert set(taus["target"]) == {"top1"} | {f"latency_ms@{h}" for h in hw}
    assert taus["kendall_tau_mean"].between(-1, 1).all() and (taus["mape_mean"] > 0).all()
    curves = pd.read_csv(folder / "learning_curves.csv")
    assert set(curves["kind"]) == set(profile["notebooks"]["05_predictor_analysis"]["kinds"])
    assert curves["mape"].notna().all()
    summary = _summary(out, "05_predictor_analysis")
    assert summary["best_tau"]["top1"] > 0.3  # accuracy is predictable from the arch
    for figure in ("mape.png", "kendall_tau.png", "predicted_vs_actual.png"):
        assert (folder / figure).is_file()
