"""The order of objectives a user gives is kept end to end: stored search, front, export rank, explorer.

The store writes a search's config as JSON with sorted keys, so objectives kept in a dict came back
in alphabetical order and "the first objective" became the alphabetically first one.
"""

import warnings

import pandas as pd
import pytest

from nastools import cli
from nastools.analysis import front_mask
from nastools.evaluation import Evaluator
from nastools.experiments.explorer import explore
from nastools.objectives import parse_objectives
from nastools.search import RandomSearch, run_tactic
from nastools.space import SearchSpace
from nastools.store import ResultStore
from nastools.supernet import load_supernet

pytestmark = pytest.mark.usefixtures("one_thread")

SPACE = SearchSpace({f"k_{i}": [3, 5, 7] for i in range(4)})
# the order given differs from the alphabetical one ("macs" < "params"): a dict serialised with
# sorted keys would put macs first
GIVEN = ["params:min", "macs:min"]


def _search(store, search_id, objectives, budget=6):
    options = ["--tactic", "random", "--budget", str(budget), "--pop-size", "3"]
    return cli.main(
        ["search", "--objectives", *objectives, *options, "--store", str(store), "--search-id", search_id]
    )


@pytest.fixture
def exported(monkeypatch):
    """Stand in for the file writer: record which sub-network ``nastools export`` chose."""
    chosen = []

    def export_subnet(supernet, arch, out_dir, **options):
        chosen.append(supernet.space.key(arch))
        return []

    monkeypatch.setattr("nastools.export.export_subnet", export_subnet)
    return chosen


def _front(store, search_id):
    """The stored search's front, measured values by label (what the CLI reads)."""
    evaluator = Evaluator(load_supernet("digits-mbv3"), store, progress=False)
    keys = evaluator.store.validations(search_id)
    space = evaluator.supernet.space
    objectives = parse_objectives({"params": "min", "macs": "min"})
    table = pd.DataFrame({"arch": keys, **evaluator.values([space.from_key(k) for k in keys], objectives)})
    return table[front_mask(table, objectives)]


def test_tactic_config_records_objectives_in_the_order_given(tmp_path):
    for given in ({"top1": "max", "macs": "min"}, {"macs": "min", "top1": "max"}):
        tactic = RandomSearch(SPACE, given, 4)
        with ResultStore(tmp_path / f"{next(iter(given))}.sqlite") as store:
            store.start_search("s", "toy", tactic.name, tactic.config())
            stored = store.search("s")["config"]["objectives"]
        assert stored == [list(item) for item in given.items()]
        assert [o.label for o in parse_objectives(stored)] == list(given)


def test_front_and_export_rank_by_the_first_objective_given(tmp_path, capsys, exported):
    store = tmp_path / "r.sqlite"
    assert _search(store, "params-first", GIVEN) == 0
    front = _front(store, "params-first")
    by_params = front.sort_values(["params", "macs"])["arch"].tolist()
    by_macs = front.sort_values(["macs", "params"])["arch"].tolist()
    assert by_params[0] != by_macs[0], "the front must tell the two orders apart"
    common = ["--store", str(store), "--search-id", "params-first"]
    capsys.readouterr()

    assert cli.main(["front", *common, "--csv", str(tmp_path / "front.csv")]) == 0
    assert pd.read_csv(tmp_path / "front.csv")["arch"].tolist() == by_params
    assert "best first by params (min, the search's first objective)" in capsys.readouterr().out

    assert cli.main(["export", *common, "--rank", "0", "--out", str(tmp_path / "o")]) == 0
    assert exported[-1] == by_params[0]
    assert "by params (min, the search's first objective)" in capsys.readouterr().out
    assert cli.main(["export", *common, "--rank", "0", "--by", "macs", "--out", str(tmp_path / "o")]) == 0
    assert exported[-1] == by_macs[0]
    assert "by macs (min, --by)" in capsys.readouterr().out

    # the same archs searched in the other order (measured once, read from the store) rank by macs
    assert _search(store, "macs-first", GIVEN[::-1]) == 0
    assert cli.main(["export", "--store", str(store), "--search-id", "macs-first", "--rank", "0",
                     "--out", str(tmp_path / "o")]) == 0  # fmt: skip
    assert exported[-1] == by_macs[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rank", "0", "--by", "top1"], "--by top1: the search's objectives are ['params', 'macs']"),
        (["--arch", "d_0=2", "--by", "macs"], "with --arch, drop --by"),
    ],
)
def test_export_by_names_a_searched_objective(tmp_path, capsys, exported, args, message):
    store = tmp_path / "r.sqlite"
    assert _search(store, "s", GIVEN, budget=3) == 0
    capsys.readouterr()
    assert cli.main(["export", "--store", str(store), "--search-id", "s", *args, "--out", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and not exported


def test_a_store_written_before_the_order_was_kept_is_read_with_a_note(tmp_path, capsys, exported):
    supernet = load_supernet("digits-mbv3")
    evaluator = Evaluator(supernet, tmp_path / "old.sqlite", progress=False)
    archs = supernet.space.sample(4, rng=3)
    # what earlier versions stored: a dict, which the store's JSON (sorted keys) turned alphabetical
    config = {"objectives": {"params": "min", "macs": "min"}}
    evaluator.store.start_search("old", supernet.supernet_id, "random", config)
    evaluator.values(archs, parse_objectives(config["objectives"]), search_id="old")
    evaluator.store.record_validations("old", [supernet.space.key(a) for a in archs])
    evaluator.store.release_search("old")
    assert list(evaluator.store.search("old")["config"]["objectives"]) == ["macs", "params"]
    assert cli.main(["front", "--store", str(tmp_path / "old.sqlite"), "--search-id", "old"]) == 0
    out = capsys.readouterr().out
    assert "may be in alphabetical order, not the one given; pass --by" in out
    assert "best first by macs (min, the search's first objective)" in out


def test_a_repeated_objective_is_refused_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        _search(tmp_path / "r.sqlite", "dup", ["params:min", "params:max", "macs:min"], budget=3)
    assert exit_.value.code == 2 and not (tmp_path / "r.sqlite").exists()
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("nastools: error: objective 'params' is given twice (params:min and params:max)")


def test_a_direction_against_the_metric_warns(tmp_path, capsys):
    assert _search(tmp_path / "r.sqlite", "rev", ["params:max", "macs:min"], budget=3) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning:" in line]
    assert len(lines) == 1
    assert lines[0].startswith("nastools search: warning: objective params:max goes against 'params'")

    evaluator = Evaluator(load_supernet("digits-mbv3"), None, progress=False)
    with pytest.warns(UserWarning, match="use params:min unless that is what you want"):
        run_tactic(RandomSearch(evaluator.supernet.space, {"params": "max"}, 2), evaluator, progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_tactic(RandomSearch(evaluator.supernet.space, {"params": "min"}, 2), evaluator, progress=False)
    assert not [w for w in caught if "goes against" in str(w.message)]


def test_explorer_takes_objectives_in_any_stored_form_and_keeps_their_order():
    table = pd.DataFrame(
        {
            "arch": ["a", "b", "c"],
            "nll": [1.0, 2.0, 3.0],
            "latency_ms@cpu-t1-b1": [3.0, 2.0, 1.0],
            "macs": [1.0] * 3,
        }
    )
    given = {"nll": "min", "latency_ms@cpu-t1-b1": "min"}
    stored = [list(item) for item in given.items()]  # Tactic.config()'s form
    for objectives in (given, parse_objectives(given), stored):
        explorer = explore(table, objectives)
        assert (explorer.y, explorer.x) == ("nll", "latency_ms@cpu-t1-b1")
        assert list(explorer.table.columns) == ["arch", "nll", "latency_ms@cpu-t1-b1"]


def test_a_search_stored_before_the_order_was_kept_resumes_and_records_its_order(tmp_path):
    store = ResultStore(tmp_path / "old.sqlite")
    objectives = {"params": "min", "macs": "min"}
    tactic = RandomSearch(SPACE, objectives, 6, batch_size=3)
    old_config = {**tactic.config(), "objectives": dict(sorted(objectives.items()))}
    store.start_search("random-s0", "toy", "random", old_config)  # what an older nastools stored
    store.release_search("random-s0")
    assert store.start_search("random-s0", "toy", "random", tactic.config()) is False  # resumes
    assert store.search("random-s0")["config"]["objectives"] == [["params", "min"], ["macs", "min"]]
    other = RandomSearch(SPACE, {"params": "min", "macs": "max"}, 6, batch_size=3)
    store.release_search("random-s0")
    with pytest.raises(ValueError, match="other settings"):
        store.start_search("random-s0", "toy", "random", other.config())
