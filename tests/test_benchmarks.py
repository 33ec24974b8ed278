"""The sample-efficiency benchmark: rows from the registry, a user supernet by name, the notebooks' search."""

import importlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nastools._tactic_names import BUILTIN_TACTICS
from nastools.experiments import TacticSettings, build_tactic, open_experiment, run_recorded
from nastools.search import TACTICS, Tactic, register_tactic, tactic_names

ROOT = Path(__file__).resolve().parents[1]
TINYLM = "tinylm.supernet:make_supernet"
OBJECTIVES = {"perplexity": "min", "macs": "min"}
SOURCE = {"perplexity": "min", "params": "min"}
USER_PROBLEM = ["--supernet", TINYLM, "--name", "tinylm-macs", "--objectives", "perplexity:min,macs:min",
                "--source", "perplexity:min,params:min"]  # fmt: skip
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
    monkeypatch.setattr(module, "POPDB_SAMPLES", 2000)  # the paper's 100,000 take a minute per seed
    yield module
    sys.modules.pop("sample_efficiency", None)


def test_benchmark_and_notebooks_give_the_same_search(bench_module, tmp_path, one_thread):
    problem = bench_module.Problem(TINYLM, OBJECTIVES, SOURCE)
    bench = bench_module.Benchmark("tinylm-macs", problem, "quick", None, None)
    search_id = bench.run("concurrent", 0)
    benchmark_order = bench.exp.store.validations(search_id)

    exp = open_experiment("03_concurrent_vs_weaknas", tmp_path / "notebooks", TINYLM)
    objectives = exp.objectives(OBJECTIVES)
    exact = exp.evaluator.free(objectives)
    tactic = build_tactic("concurrent", exp.space, objectives, 24, SETTINGS, seed=0, exact=exact)
    trace = run_recorded(tactic, exp.evaluator, "03-concurrent-s0", exp.indicator(objectives))

    assert benchmark_order == tactic.validated and len(benchmark_order) == 24
    traces, validated, _ = bench.traces(["concurrent"])
    last = traces[traces.tactic == "concurrent"].sort_values("n_validated").iloc[-1]
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


def test_benchmark_skips_a_problem_whose_files_are_not_in_the_cache_with_the_fetch_line(
    bench_module, tmp_path, capsys
):
    assert bench_module.main(["--problem", "ofa-macs"]) == 0  # the test's data cache is empty
    assert "nastools data fetch ofa-predictor lut-note10" in capsys.readouterr().out
    assert not (tmp_path / "cache").exists()


def test_ofa_problems_search_one_resolution_with_files_from_a_folder(bench_module, shared_data):
    bench = bench_module.Benchmark(
        "ofa-macs", bench_module.PROBLEMS["ofa-macs"], "quick", None, str(shared_data)
    )
    assert "r" not in bench.exp.space.names and len(bench.exp.space.names) == 45
    assert bench.exp.task_label.startswith("surrogate")


class Corners(Tactic):
    """Validates the two extremes of the space, then stops."""

    name = "corners-bench"

    def _propose(self):
        if self.n_validated:
            return None
        return [
            {n: c[0] for n, c in self.space.choices.items()},
            {n: c[-1] for n, c in self.space.choices.items()},
        ]


class Unavailable(Tactic):
    """An alternative whose library is not installed: it fails when built, as the adapters do."""

    name = "unavailable-bench"

    def __init__(self, space, objectives, budget, *, seed=0, initial_archs=None):
        raise ImportError(
            "unavailable-bench needs fancylib (No module named 'fancylib'): pip install fancylib"
        )

    def _propose(self):  # pragma: no cover - never built
        return None


@pytest.fixture
def registered():
    register_tactic(Corners)
    register_tactic(Unavailable)
    yield
    TACTICS.pop(Corners.name, None)
    TACTICS.pop(Unavailable.name, None)


def test_rows_are_registry_names(bench_module, capsys):
    names = {bench_module.parse_row(row)[1] for row in bench_module.DEFAULT_ROWS}
    assert names <= set(tactic_names())
    assert {name for name, entry in BUILTIN_TACTICS.items() if entry.extra} <= names  # the alternatives
    assert bench_module.parse_row("warm") == ("warm", "concurrent")
    assert bench_module.parse_row("popdb:concurrent-ridge") == ("popdb", "concurrent-ridge")
    with pytest.raises(SystemExit):
        bench_module.main(["--tactics", "random", "annealing"])
    assert "unknown tactic 'annealing'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench_module.main(["--tactics", "cold:random"])
    assert "the start is one of ['warm', 'popdb']" in capsys.readouterr().err


def test_a_registered_tactic_is_a_row_and_a_missing_library_skips_its_row(
    bench_module, tmp_path, capsys, registered, one_thread
):
    argv = [*USER_PROBLEM, "--no-reference", "--tactics", Corners.name, Unavailable.name]
    assert bench_module.main(argv) == 0
    out = capsys.readouterr().out
    assert (
        "unavailable-bench: skipped, unavailable-bench needs fancylib" in out
        and "pip install fancylib" in out
    )
    folder = tmp_path / "results" / "sample_efficiency" / "tinylm-macs"
    assert set(pd.read_csv(folder / "summary-quick-b24.csv").tactic) == {Corners.name}
    assert "Not run here:\n- unavailable-bench: skipped" in (folder / "summary-quick-b24.md").read_text()


def test_a_capped_row_stops_at_its_cap_and_the_report_shows_the_overhead(
    bench_module, tmp_path, monkeypatch, one_thread
):
    monkeypatch.setitem(bench_module.BUDGET_CAPS, "random", 12)
    argv = [*USER_PROBLEM, "--no-reference", "--tactics", "random", "nsga2"]
    assert bench_module.main(argv) == 0
    folder = tmp_path / "results" / "sample_efficiency" / "tinylm-macs"
    summary = pd.read_csv(folder / "summary-quick-b24.csv").set_index("tactic")
    assert np.isnan(summary.loc["random", "hv@24"]) and summary.loc["nsga2", "hv@24"] > 0
    assert (summary["search_cpu_s_per_val"] > 0).all() and (summary["search_s_per_val"] > 0).all()
    text = (folder / "summary-quick-b24.md").read_text()
    assert "`random` 12" in text and " ± " in text
    bench = bench_module.Benchmark(
        "tinylm-macs", bench_module.Problem(TINYLM, OBJECTIVES, SOURCE), "quick", None, None
    )
    assert len(bench.exp.store.validations(bench.search_id("random", 0))) == 12


def test_an_alternative_whose_library_is_missing_skips_its_row_with_the_install_line(
    bench_module, tmp_path, capsys, monkeypatch, one_thread
):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    assert bench_module.main([*USER_PROBLEM, "--no-reference", "--tactics", "random", "optuna-tpe"]) == 0
    out = capsys.readouterr().out
    assert "optuna-tpe: skipped, OptunaSearch needs optuna" in out
    assert "pip install 'nastools[alternatives]'" in out
    folder = tmp_path / "results" / "sample_efficiency" / "tinylm-macs"
    assert set(pd.read_csv(folder / "summary-quick-b24.csv").tactic) == {"random"}


def test_botorch_rows_take_the_problems_reference_point(bench_module, monkeypatch):
    pytest.importorskip("botorch")
    bench = bench_module.Benchmark(
        "tinylm-macs", bench_module.Problem(TINYLM, OBJECTIVES, SOURCE), "quick", None, None
    )
    built = []
    monkeypatch.setattr(bench, "_run", lambda search_id, tactic: built.append(tactic))
    bench.run("botorch-qnehvi", 0)
    assert built[0].reference_point == bench.indicator.bounds
    bench.run("random", 0)  # a tactic that takes no reference point is built all the same
    assert built[1].batch_size == bench.settings.pop_size
    assert built[0].initial_archs is None  # the library's own initial design, not the common population
