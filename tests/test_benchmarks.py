"""The sample-efficiency benchmark: a user supernet by name, and the same result as the notebooks' path."""

import importlib
import sys
from pathlib import Path

import pandas as pd
import pytest

from nastools.experiments import TacticSettings, build_tactic, open_experiment, run_recorded

ROOT = Path(__file__).resolve().parents[1]
TINYLM = "tinylm.supernet:make_supernet"
OBJECTIVES = {"perplexity": "min", "macs": "min"}
SOURCE = {"perplexity": "min", "params": "min"}
SETTINGS = TacticSettings(pop_size=6, n_gen=4, n_initial=6, weaknas_pool_size=100, weaknas_top_k=20)


@pytest.fixture
def bench_module(tmp_path, monkeypatch):
    """benchmarks/sample_efficiency.py with its cache and results in tmp_path and a tiny profile."""
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    module = importlib.import_module("sample_efficiency")
    monkeypatch.setattr(module, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results")
    monkeypatch.setitem(module.PROFILES, "quick", (24, 1, SETTINGS))
    yield module
    sys.modules.pop("sample_efficiency", None)


def test_benchmark_and_notebooks_give_the_same_search(bench_module, tmp_path, one_thread):
    problem = bench_module.Problem(TINYLM, OBJECTIVES, SOURCE)
    bench = bench_module.Benchmark("tinylm-macs", problem, "quick", None, None)
    search_id = bench.run("concurrent-auto", 0)
    benchmark_order = bench.exp.store.validations(search_id)

    exp = open_experiment("03_concurrent_vs_weaknas", tmp_path / "notebooks", TINYLM)
    objectives = exp.objectives(OBJECTIVES)
    exact = exp.evaluator.free(objectives)
    tactic = build_tactic("concurrent", exp.space, objectives, 24, SETTINGS, seed=0, exact=exact)
    trace = run_recorded(tactic, exp.evaluator, "03-concurrent-s0", exp.indicator(objectives))

    assert benchmark_order == tactic.validated and len(benchmark_order) == 24
    traces, validated, _ = bench.traces(["concurrent-auto"])
    last = traces[traces.tactic == "concurrent-auto"].sort_values("n_validated").iloc[-1]
    assert last["n_validated"] == 24 and last["hypervolume"] == pytest.approx(trace.last)
    pd.testing.assert_series_equal(
        validated["perplexity"].reset_index(drop=True), tactic.results()["perplexity"], check_names=False
    )


def test_benchmark_command_line_runs_a_user_supernet_and_writes_summaries(bench_module, tmp_path, one_thread):
    argv = [
        "--supernet", TINYLM, "--name", "tinylm-macs", "--objectives", "perplexity:min,macs:min",
        "--source", "perplexity:min,params:min", "--no-reference",
        "--tactics", "random", "concurrent", "warm", "popdb", "weaknas",
    ]  # fmt: skip
    assert bench_module.main(argv) == 0
    folder = tmp_path / "results" / "sample_efficiency" / "tinylm-macs"
    summary = pd.read_csv(folder / "summary-quick-b24.csv")
    assert set(summary.tactic) == {"random", "concurrent", "warm", "popdb", "weaknas"}
    assert summary["hv@24"].between(0, 1).all() and (summary["hv@24"] > 0).all()
    assert (folder / "summary-quick-b24.md").read_text().startswith("# Sample efficiency: tinylm-macs")
    assert (folder / "summary-quick-b24.png").stat().st_size > 0
    # a rerun measures nothing and finds every search finished
    store = bench_module.Benchmark(
        "tinylm-macs",
        bench_module.Problem(
            TINYLM, {"perplexity": "min", "macs": "min"}, {"perplexity": "min", "params": "min"}
        ),
        "quick",
        None,
        None,
    ).exp.store
    rows = len(store.measurements())
    assert bench_module.main(argv) == 0
    assert len(store.measurements()) == rows


def test_benchmark_refuses_a_problem_without_its_data(bench_module, capsys):
    with pytest.raises(SystemExit):
        bench_module.main(["--problem", "ofa-macs"])
    assert "needs --data-dir" in capsys.readouterr().err
