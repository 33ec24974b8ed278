"""Tactics driven through the Evaluator and the store on a tiny real supernet: resume, warm start, PopDB."""

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import tiny_supernet

from nastools.evaluation import Evaluator
from nastools.search import (
    ConcurrentNAS,
    EvolutionarySearch,
    HypervolumeIndicator,
    best_population,
    popdb_space,
    reference_bounds,
    run_tactic,
)
from nastools.store import ResultStore

OBJECTIVES = {"top1": "max", "macs": "min"}


@pytest.fixture(scope="module")
def supernet():
    return tiny_supernet()


def _concurrent(supernet, bounds, seed=0):
    hv = HypervolumeIndicator(OBJECTIVES, bounds)
    return ConcurrentNAS(supernet.space, OBJECTIVES, 24, pop_size=8, n_gen=5, hypervolume=hv, seed=seed)


def test_run_tactic_measures_through_store_and_records_generations(supernet, tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    evaluator = Evaluator(supernet, store, progress=False)
    bounds = reference_bounds(evaluator, OBJECTIVES)
    assert bounds["top1"][0] < bounds["top1"][1] and bounds["macs"][0] < bounds["macs"][1]
    tactic = run_tactic(_concurrent(supernet, bounds), evaluator, search_id="c0", progress=False)
    assert tactic.n_validations == 24 and tactic.done
    stored = store.measurements(search_id="c0")
    assert set(stored.metric) == {"top1", "macs"} and len(stored) == 2 * 24
    results = tactic.results().set_index("arch")
    by_arch = stored.pivot_table(index="arch", columns="metric", values="value")
    assert (by_arch.loc[results.index, "top1"] == results.top1).all()
    history = store.history("c0")
    assert history.generation.nunique() == len(tactic.trace) >= 3
    assert store.searches().set_index("search_id").loc["c0", "tactic"] == "concurrent"
    warm = best_population(store, "c0", supernet.space)
    assert [supernet.space.key(a) for a in warm] == store.population("c0") and len(warm) == 8
    second = EvolutionarySearch(supernet.space, OBJECTIVES, 16, pop_size=8, initial_archs=warm, seed=1)
    run_tactic(second, evaluator, search_id="n1", progress=False)
    # the warm start's first generation is known already: nothing measured again for it
    assert list(second.results().arch[:8]) == store.population("c0")
    assert 0 < len(store.measurements(search_id="n1")) <= 2 * (second.n_validations - 8)
    archs = [supernet.space.from_key(k) for k in history.arch]
    constrained = popdb_space(supernet.space, archs, threshold=0.3, min_cluster_size=3).space
    assert constrained.size <= supernet.space.size
    with pytest.raises(ValueError, match="already exists"):
        run_tactic(_concurrent(supernet, bounds, seed=5), evaluator, search_id="c0", progress=False)


def test_killed_search_resumes_without_loss_or_repeats(supernet, tmp_path):
    path = tmp_path / "r.sqlite"
    bounds = {"top1": (0.0, 100.0), "macs": (0.0, 2e6)}
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from helpers import tiny_supernet
        from test_tactics_evaluator import _concurrent
        from nastools.evaluation import Evaluator
        from nastools.search import run_tactic
        supernet = tiny_supernet()
        evaluator = Evaluator(supernet, {str(path)!r}, progress=False)
        run_tactic(_concurrent(supernet, {bounds!r}), evaluator, search_id="s", progress=False)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 120
    stored = 0
    while time.time() < deadline and stored < 20:
        time.sleep(0.2)
        if path.exists():
            try:
                stored = len(ResultStore(path).measurements())
            except Exception:  # the child may be creating the file
                stored = 0
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = ResultStore(path).measurements()
    assert 20 <= len(before) < 48, "the child should have been killed mid-way"

    evaluator = Evaluator(supernet, ResultStore(path), progress=False)
    resumed = run_tactic(_concurrent(supernet, bounds), evaluator, search_id="s", progress=False)
    after = ResultStore(path).measurements()
    assert len(after) == 48 and not after.duplicated(["arch", "metric"]).any()
    assert set(before.id) <= set(after.id)

    fresh = Evaluator(supernet, ResultStore(tmp_path / "fresh.sqlite"), progress=False)
    uninterrupted = run_tactic(_concurrent(supernet, bounds), fresh, search_id="s", progress=False)
    pd.testing.assert_frame_equal(resumed.results(), uninterrupted.results())
    pd.testing.assert_frame_equal(resumed.trace_frame(), uninterrupted.trace_frame())
