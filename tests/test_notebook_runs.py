"""The notebook tier: the six notebooks run headless on the smoke profile, for every kind of supernet.

Each sequence runs once per supernet (the embedded MobileNetV3, the embedded ResNet, and the user
supernet of ``examples/tinylm`` given as a ``"package.module:factory"`` string, whose package is on
the kernels' PYTHONPATH only); the tests read what the notebooks wrote. ``pytest -m notebook``.
"""

import json
import os
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from nastools.experiments import runner
from nastools.store import ResultStore
from nastools.supernet import default_supernet

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SUPERNETS = {
    "digits-mbv3": ("top1", "max"),
    "digits-resnet": ("top1", "max"),
    "tinylm.supernet:make_supernet": ("perplexity", "min"),
    "numbers-hat": ("bleu", "max"),
    "pydoc-gpt": ("perplexity", "min"),
}
#: Smoke parameters replaced for a supernet: on two busy cores a batch of 64 costs pydoc-gpt about 30 s
#: of latency measurement per sub-network (HAT's incremental decoding up to 1 s per call at batch 8),
#: and notebook 05 alone times 60 per config, so the transformers are timed on batches of 4.
SMOKE_OVERRIDES = {
    "numbers-hat": {"hardware": ["cpu-t1-b1", "cpu-t2-b4"]},
    "pydoc-gpt": {"hardware": ["cpu-t1-b1", "cpu-t2-b4"]},
}
NAMES = runner.notebook_names()


def _chosen() -> list[str]:
    """The supernets to run: ``NASTOOLS_NOTEBOOK_SUPERNETS`` (comma-separated; ``default``: the default one).

    ``make test`` (CI) runs the default supernet's sequence; ``make test-notebooks`` runs them all.
    """
    wanted = [w.strip() for w in os.environ.get("NASTOOLS_NOTEBOOK_SUPERNETS", "").split(",") if w.strip()]
    if not wanted:
        return list(SUPERNETS)
    wanted = [default_supernet() if w == "default" else w for w in wanted]
    unknown = [w for w in wanted if w not in SUPERNETS]
    if unknown:
        raise ValueError(
            f"NASTOOLS_NOTEBOOK_SUPERNETS names {unknown}; the notebook tier knows {list(SUPERNETS)}"
        )
    return wanted


@pytest.fixture(scope="module", params=_chosen(), ids=lambda s: s.split(".")[0])
def smoke(request, tmp_path_factory):
    """Run the whole sequence once on the smoke profile for one supernet."""
    supernet = request.param
    out = tmp_path_factory.mktemp(supernet.split(".")[0])
    threads = os.environ.get("NASTOOLS_NOTEBOOK_THREADS", "1")  # as `make`; "" for torch's default
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(EXAMPLES), path]))
    overrides = {"supernet": supernet, **SMOKE_OVERRIDES.get(supernet, {})}
    try:
        records = runner.run_notebooks(
            "smoke", out, threads=int(threads) if threads else None, overrides=overrides
        )
    finally:
        os.environ["PYTHONPATH"] = path
    metric, direction = SUPERNETS[supernet]
    profile = runner.load_profile("smoke")
    profile["common"].update(overrides)
    return out, records, profile, metric, direction


def _summary(out, name):
    return json.loads((out / name / "summary.json").read_text())


def _in_unit(values):
    values = pd.Series(values, dtype=float)
    return bool(((values >= 0) & (values <= 1)).all()) and bool((values > 0).any())


@pytest.mark.notebook
def test_sequence_ran_without_errors(smoke):
    out, records, _, metric, _ = smoke
    assert [r["notebook"] for r in records] == NAMES and {r["status"] for r in records} == {"ok"}
    assert (out / "results.sqlite").is_file()
    for name in NAMES:
        executed = nbformat.read(out / name / f"{name}.ipynb", as_version=4)
        errors = [
            o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
        ]
        assert not errors, name
        findings = [o.get("data", {}).get("text/markdown", "") for o in executed.cells[-1].outputs]
        assert any("## Findings" in text for text in findings), name
        assert _summary(out, name)["task_metric"] == metric


@pytest.mark.notebook
def test_quickstart(smoke):
    out, _, profile, metric, direction = smoke
    folder = out / "00_quickstart"
    table = pd.read_csv(folder / "measurements.csv")
    assert len(table) == 2 + profile["notebooks"]["00_quickstart"]["n_archs"]
    largest, smallest = table.iloc[0][metric], table.iloc[1][metric]
    assert (largest > smallest) if direction == "max" else (largest < smallest)
    assert table.iloc[0]["macs"] > table.iloc[1]["macs"] > 0
    results = pd.read_csv(folder / "search_results.csv")
    assert len(results) == profile["common"]["budget"] and results["front"].any()
    summary = _summary(out, "00_quickstart")
    assert _in_unit([summary["hypervolume"]]) and summary["front_size"] == results["front"].sum()
    assert (folder / "front.png").stat().st_size > 0


@pytest.mark.notebook
def test_hardware_transfer(smoke):
    out, _, profile, metric, _ = smoke
    folder = out / "01_hardware_transfer"
    hw = profile["common"]["hardware"]
    matrix = pd.read_csv(folder / "hv_matrix.csv")
    assert len(matrix) == len(hw) ** 2
    assert (matrix.query("found_on == measured_on")["hv_lost_pct"] == 0).all()
    assert _in_unit(matrix["hv_own"]) and matrix["hypervolume"].between(0, 1).all()
    points = pd.read_csv(folder / "cross_hardware_points.csv")
    assert set(points["measured_on"]) == set(hw) == set(points["found_on"]) and metric in points
    assert len(pd.read_csv(folder / "latency_rank_agreement.csv")) == len(hw) * (len(hw) - 1) // 2
    summary = _summary(out, "01_hardware_transfer")
    assert all(size > 0 for size in summary["front_sizes"].values())
    assert set(summary["search_ids"]) == set(hw)
    assert (folder / "fronts.png").is_file() and (folder / "hv_lost.png").is_file()


@pytest.mark.notebook
def test_warm_start_reads_notebook_01s_search(smoke):
    out, _, profile, _, _ = smoke
    folder = out / "02_warm_start"
    summary = _summary(out, "02_warm_start")
    assert summary["source_search"] in _summary(out, "01_hardware_transfer")["search_ids"].values()
    traces = pd.read_csv(folder / "traces.csv")
    assert set(traces["tactic"]) == {"random start", "warm start"} and _in_unit(traces["hypervolume"])
    snapshots = pd.read_csv(folder / "snapshots.csv")
    assert snapshots.groupby("search")["generation"].nunique().min() >= 2
    assert _in_unit(list(summary["hv_final"].values()))
    assert (folder / "snapshots.png").is_file() and (folder / "hypervolume.png").is_file()


@pytest.mark.notebook
def test_concurrent_vs_weaknas(smoke):
    out, _, profile, metric, _ = smoke
    folder = out / "03_concurrent_vs_weaknas"
    tactics = profile["notebooks"]["03_concurrent_vs_weaknas"]["tactics"]
    traces = pd.read_csv(folder / "traces.csv")
    assert set(traces["tactic"]) == set(tactics) and _in_unit(traces["hypervolume"])
    table2 = pd.read_csv(folder / "table2.csv")
    assert set(table2["tactic"]) == set(tactics)
    assert {"validations_mean", f"{metric}_mean", "macs_mean"} <= set(table2.columns)
    assert (table2["validations_mean"] <= profile["common"]["budget"]).all()
    ratio = pd.read_csv(folder / "validation_ratio.csv")
    assert list(ratio.columns) == ["seed", "target_hv", "baseline_validations", "tactic_validations", "ratio"]
    assert len(ratio) == len(profile["notebooks"]["03_concurrent_vs_weaknas"]["trials"])
    summary = _summary(out, "03_concurrent_vs_weaknas")
    assert summary["warm_start_search"] in _summary(out, "01_hardware_transfer")["search_ids"].values()
    assert (folder / "hypervolume.png").is_file() and (folder / "weaknas_vs_concurrent.png").is_file()


@pytest.mark.notebook
def test_popdb_reads_notebook_03s_search(smoke):
    out, _, _, _, _ = smoke
    folder = out / "04_popdb"
    sizes = json.loads((folder / "popdb_sizes.json").read_text())
    assert 0 < sizes["size_after"] <= sizes["size_before"]
    clusters = pd.read_csv(folder / "clusters.csv")
    assert len(clusters) > 0 and {"x", "y", "label"} <= set(clusters.columns)
    parameters = pd.read_csv(folder / "popdb_parameters.csv")
    assert (parameters["n_after"] <= parameters["n_before"]).all()
    traces = pd.read_csv(folder / "traces.csv")
    assert set(traces["tactic"]) == {"full space", "PopDB space"} and _in_unit(traces["hypervolume"])
    assert _summary(out, "04_popdb")["history_search"] == "03-concurrent-s0"
    assert (folder / "clusters.png").is_file() and (folder / "hypervolume.png").is_file()


@pytest.mark.notebook
def test_predictor_analysis(smoke):
    out, _, profile, metric, _ = smoke
    folder = out / "05_predictor_analysis"
    hw = profile["common"]["hardware"]
    taus = pd.read_csv(folder / "tau_table.csv")
    assert set(taus["target"]) == {metric} | {f"latency_ms@{h}" for h in hw}
    assert taus["kendall_tau_mean"].between(-1, 1).all() and (taus["mape_mean"] > 0).all()
    curves = pd.read_csv(folder / "learning_curves.csv")
    assert set(curves["kind"]) == set(profile["notebooks"]["05_predictor_analysis"]["kinds"])
    assert curves["mape"].notna().all()
    assert _summary(out, "05_predictor_analysis")["best_tau"][metric] > 0.3  # predictable from the arch
    for figure in ("mape.png", "kendall_tau.png", "predicted_vs_actual.png"):
        assert (folder / figure).is_file()


@pytest.mark.notebook
def test_a_dependent_notebook_stops_when_the_search_it_names_is_missing(tmp_path):
    overrides = {"supernet": "digits-mbv3", "source_search": "concurrent-cpu-t9-b1-s0"}
    with pytest.raises(runner.NotebookError, match="run notebook 01_hardware_transfer first"):
        runner.run_notebooks("smoke", tmp_path, ["02"], overrides=overrides, threads=1)


@pytest.mark.notebook
def test_the_deepest_dependent_notebook_runs_alone_on_its_defaults(tmp_path):
    """Notebook 04 builds on 03's search: alone, it runs that search first, under 03's id."""
    overrides = {"supernet": "digits-mbv3", "budget": 12, "pop_size": 4, "n_gen": 2}
    records = runner.run_notebooks("smoke", tmp_path, ["04"], overrides=overrides, threads=1)
    assert [r["status"] for r in records] == ["ok"]
    assert _summary(tmp_path, "04_popdb")["history_search"] == "03-concurrent-s0"
    with ResultStore(tmp_path / "results.sqlite", read_only=True) as store:
        assert store.search("03-concurrent-s0")["finished"]["n_validated"] > 0
