"""Tactics driven through the Evaluator and the store on real supernets: resume, warm start, PopDB, tinylm."""

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import ToySupernet, tiny_supernet

from nastools.analysis import hypervolume_indicator, reference_bounds
from nastools.evaluation import Evaluator
from nastools.hypervolume import HypervolumeIndicator
from nastools.search import (
    ConcurrentNAS,
    EvolutionarySearch,
    HypervolumeTrace,
    RandomSearch,
    best_population,
    popdb_space,
    run_tactic,
)
from nastools.store import ResultStore
from nastools.supernet import load_supernet

OBJECTIVES = {"top1": "max", "macs": "min"}
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def supernet():
    return tiny_supernet()


def _concurrent(supernet, seed=0, budget=18, pop_size=6):
    return ConcurrentNAS(
        supernet.space, OBJECTIVES, budget, pop_size=pop_size, n_gen=5, predictor="ridge", seed=seed
    )


def test_run_tactic_measures_through_store_and_records_generations(supernet, tmp_path, one_thread):
    store = ResultStore(tmp_path / "r.sqlite")
    evaluator = Evaluator(supernet, store, progress=False)
    bounds = reference_bounds(evaluator, OBJECTIVES)
    assert bounds["top1"][0] < bounds["top1"][1] and bounds["macs"][0] < bounds["macs"][1]
    trace = HypervolumeTrace(HypervolumeIndicator(OBJECTIVES, bounds))
    tactic = run_tactic(_concurrent(supernet), evaluator, search_id="c0", callbacks=[trace], progress=False)
    assert tactic.n_validated == 18 and tactic.done
    assert tactic.seconds["measure"] > 0 and tactic.seconds["search"] > 0
    stored = store.measurements(search_id="c0")
    assert set(stored.metric) == {"top1", "macs"} and len(stored) == 2 * 18
    results = tactic.results().set_index("arch")
    by_arch = stored.pivot_table(index="arch", columns="metric", values="value")
    assert (by_arch.loc[results.index, "top1"] == results.top1).all()
    assert store.validations("c0") == tactic.validated
    history = store.history("c0")
    assert history.generation.nunique() == len(trace.rows) >= 3
    assert trace.frame().n_validated.iloc[-1] == 18
    search = store.search("c0")
    assert search["tactic"] == "concurrent" and search["config"] == json.loads(json.dumps(tactic.config()))
    assert search["finished"]["n_validated"] == 18
    warm = best_population(store, "c0", supernet.space)
    assert [supernet.space.key(a) for a in warm] == store.population("c0") and len(warm) == 6
    second = EvolutionarySearch(supernet.space, OBJECTIVES, 10, pop_size=6, initial_archs=warm, seed=1)
    measured = evaluator.n_measured
    run_tactic(second, evaluator, search_id="n1", progress=False)
    # the warm start's first generation is known already: nothing measured again for it
    assert list(second.results().arch[:6]) == store.population("c0")
    assert evaluator.n_measured - measured <= 2 * (second.n_validated - 6)
    assert 0 < len(store.measurements(search_id="n1")) <= 2 * (second.n_validated - 6)
    archs = [supernet.space.from_key(k) for k in history.arch]
    constrained = popdb_space(supernet.space, archs, threshold=0.3, min_cluster_size=3).space
    assert constrained.size <= supernet.space.size
    narrow = run_tactic(
        RandomSearch(constrained, OBJECTIVES, 4, batch_size=4, seed=2),
        evaluator,
        search_id="p",
        progress=False,
    )
    assert all(constrained.validate(constrained.from_key(k)) is None for k in narrow.validated)
    with pytest.raises(ValueError, match="other settings.*seed 0 -> 5"):
        run_tactic(_concurrent(supernet, seed=5), evaluator, search_id="c0", progress=False)


def test_same_search_again_measures_nothing_and_gives_the_same_front(supernet, tmp_path, one_thread):
    evaluator = Evaluator(supernet, tmp_path / "r.sqlite", progress=False)
    small = dict(pop_size=4, n_gen=3, predictor="ridge", seed=3)
    first = run_tactic(
        ConcurrentNAS(supernet.space, OBJECTIVES, 8, **small), evaluator, search_id="a", progress=False
    )
    measured = evaluator.n_measured
    again = run_tactic(
        ConcurrentNAS(supernet.space, OBJECTIVES, 8, **small), evaluator, search_id="a", progress=False
    )
    assert evaluator.n_measured == measured
    pd.testing.assert_frame_equal(first.results(), again.results())
    assert evaluator.store.validations("a") == first.validated  # recorded once


@pytest.mark.parametrize(
    ("objectives", "message"),
    [
        ({"top1": "max", "bleu": "min"}, "no metric 'bleu'"),
        ({"top1": "max", "latency_ms": "min"}, "needs a hardware key"),
        ({"top1@cpu-t1-b1": "max", "macs": "min"}, "takes no hardware"),
        ({"top1": "max", "latency_ms@cpu-t0-b1": "min"}, "threads must be a positive integer"),
        ({"top1": "max", "latency_ms@lut-note10": "min"}, "lut-note10"),
    ],
)
def test_run_tactic_refuses_what_it_cannot_measure_before_measuring(supernet, tmp_path, objectives, message):
    store = ResultStore(tmp_path / "r.sqlite")
    tactic = RandomSearch(supernet.space, objectives, 4, batch_size=4)
    with pytest.raises(ValueError, match=message):
        run_tactic(tactic, Evaluator(supernet, store, progress=False), search_id="bad", progress=False)
    assert store.measurements().empty and not store.has_search("bad") and tactic.n_validated == 0


def test_run_tactic_refuses_a_space_of_another_supernet(supernet, tmp_path):
    toy = ToySupernet()
    tactic = RandomSearch(toy.space, {"score": "max", "macs": "min"}, 4)
    with pytest.raises(ValueError, match="search a space of this supernet"):
        run_tactic(tactic, Evaluator(supernet, None, progress=False), progress=False)


def _killed_child_script(path, marker, kill_at):
    """A child that runs the search and blocks, never to return, inside its ``kill_at``-th validation."""
    return textwrap.dedent(
        f"""
        import sys, time
        import torch
        torch.set_num_threads(1)
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from helpers import tiny_supernet
        from test_tactics_evaluator import _concurrent
        from nastools.evaluation import Evaluator
        from nastools.search import run_tactic
        supernet = tiny_supernet()
        evaluate, calls = supernet.evaluate, []

        def blocking(arch, metric, subnet=None):
            calls.append(metric)
            if len(calls) == {kill_at}:
                open({str(marker)!r}, "w").close()
                while True:
                    time.sleep(1)
            return evaluate(arch, metric, subnet)

        supernet.evaluate = blocking
        evaluator = Evaluator(supernet, {str(path)!r}, progress=False)
        run_tactic(_concurrent(supernet, budget=12, pop_size=4), evaluator, search_id="s", progress=False)
        """
    )


def test_killed_search_resumes_without_loss_or_repeats(supernet, tmp_path, one_thread):
    path, marker = tmp_path / "r.sqlite", tmp_path / "blocked"
    kill_at = 7  # mid-way through the second batch of 4
    process = subprocess.Popen([sys.executable, "-c", _killed_child_script(path, marker, kill_at)])
    while not marker.exists() and process.poll() is None:  # wait for the condition, not for a clock
        time.sleep(0.05)
    assert marker.exists(), f"the child exited with {process.returncode} before it was killed"
    process.kill()
    process.wait()
    before = ResultStore(path).measurements()
    assert (before.metric == "top1").sum() == kill_at - 1  # each validation was committed as it was made
    assert ResultStore(path).search("s")["finished"] is None

    bounds = {"top1": (0.0, 100.0), "macs": (0.0, 2e6)}
    trace = HypervolumeTrace(HypervolumeIndicator(OBJECTIVES, bounds))
    evaluator = Evaluator(supernet, ResultStore(path), progress=False)
    resumed = run_tactic(
        _concurrent(supernet, budget=12, pop_size=4),
        evaluator,
        search_id="s",
        callbacks=[trace],
        progress=False,
    )
    after = ResultStore(path).measurements()
    assert len(after) == 2 * 12 and not after.duplicated(["arch", "metric"]).any()
    assert set(before.id) <= set(after.id)
    assert evaluator.n_measured == 2 * 12 - len(before)
    assert ResultStore(path).validations("s") == resumed.validated

    fresh = Evaluator(supernet, ResultStore(tmp_path / "fresh.sqlite"), progress=False)
    fresh_trace = HypervolumeTrace(HypervolumeIndicator(OBJECTIVES, bounds))
    uninterrupted = run_tactic(
        _concurrent(supernet, budget=12, pop_size=4),
        fresh,
        search_id="s",
        callbacks=[fresh_trace],
        progress=False,
    )
    pd.testing.assert_frame_equal(resumed.results(), uninterrupted.results())
    pd.testing.assert_frame_equal(trace.frame(), fresh_trace.frame())


# --- a user supernet: the tinylm example ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tinylm():
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield load_supernet("tinylm.supernet:make_supernet")
    finally:
        sys.path.remove(str(EXAMPLES))


def test_search_on_the_tinylm_user_supernet(tinylm, tmp_path, one_thread):
    objectives = {"perplexity": "min", "macs": "min"}
    evaluator = Evaluator(tinylm, tmp_path / "r.sqlite", progress=False)
    indicator = hypervolume_indicator(evaluator, objectives)
    low, high = indicator.bounds["perplexity"]
    assert 1.0 < low < high  # a perplexity is above 1
    trace = HypervolumeTrace(indicator)
    tactic = ConcurrentNAS(
        tinylm.space,
        objectives,
        8,
        pop_size=4,
        n_gen=3,
        predictor="ridge",
        exact=evaluator.free(objectives),
        seed=0,
    )
    assert tactic.kinds == {"perplexity": "ridge"}  # MACs are computed in closed form, not predicted
    run_tactic(tactic, evaluator, search_id="lm", callbacks=[trace], progress=False)
    results = tactic.results()
    assert tactic.n_validated == 8 and list(results.columns) == [
        "n_validated",
        "arch",
        "perplexity",
        "macs",
        "front",
    ]
    assert (results.perplexity > 1.0).all()
    np.testing.assert_array_equal(results.macs, [tinylm.macs(tinylm.space.from_key(k)) for k in results.arch])
    assert 0 < trace.last <= 1 and trace.frame().n_validated.tolist()[-1] == 8
    stored = evaluator.store.measurements(search_id="lm", metric="perplexity")
    assert sorted(stored.arch) == sorted(results.arch)
    for key in results.arch:  # archs of the conditional space are canonical: absent layers at first choice
        arch = tinylm.space.from_key(key)
        assert arch == tinylm.space.canonical(arch)
