"""One way to build a tactic: presets, shared settings, explicit options; notebooks, CLI and benchmark."""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ToySupernet

from nastools import cli
from nastools import experiments as ex
from nastools._tactic_names import BUILTIN_TACTICS, TacticName
from nastools.evaluation import Evaluator
from nastools.search import (
    TACTICS,
    ConcurrentNAS,
    EvolutionarySearch,
    FullSearch,
    RandomSearch,
    Tactic,
    WeakNAS,
    make_tactic,
    register_tactic,
    run_tactic,
    tactic_names,
    tactic_preset,
)
from nastools.store import ResultStore
from nastools.supernets.mobilenetv3 import mobilenetv3_space

ROOT = Path(__file__).resolve().parents[1]
SPACE = mobilenetv3_space()
OBJECTIVES = {"top1": "max", "macs": "min"}
EXACT = {"macs": lambda archs: [1.0] * len(archs)}


class Corners(Tactic):
    """Validates the two extremes of the space, then stops: a tactic that takes no shared setting."""

    name = "corners-factory"

    def _propose(self):
        if self.n_validated:
            return None
        return [
            {n: c[0] for n, c in self.space.choices.items()},
            {n: c[-1] for n, c in self.space.choices.items()},
        ]


class Unavailable(Tactic):
    """An alternative whose library is not installed: it fails when built, as the adapters do."""

    name = "unavailable-factory"

    def __init__(self, space, objectives, budget, *, seed=0, initial_archs=None):
        raise ImportError(
            "unavailable-factory needs fancylib (No module named 'fancylib'): pip install fancylib"
        )

    def _propose(self):  # pragma: no cover - never built
        return None


@pytest.fixture
def registered():
    """Corners and Unavailable registered for one test."""
    register_tactic(Corners)
    register_tactic(Unavailable)
    yield
    TACTICS.pop(Corners.name, None)
    TACTICS.pop(Unavailable.name, None)


# --- options, settings, presets ------------------------------------------------------------------------


def test_an_unknown_option_or_setting_is_a_one_line_error():
    with pytest.raises(ValueError, match=r"tactic 'concurrent-ridge' takes no parameter\(s\) \['pop_sise'\]"):
        make_tactic("concurrent-ridge", SPACE, OBJECTIVES, 30, pop_sise=6)
    with pytest.raises(ValueError, match="no registered tactic takes setting 'pop_sise'") as info:
        make_tactic("random", SPACE, OBJECTIVES, 30, settings={"pop_sise": 6})
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"setting 'weaknas.pool_sise': tactic 'weaknas' takes no parameter"):
        make_tactic("random", SPACE, OBJECTIVES, 30, settings={"weaknas.pool_sise": 60})
    with pytest.raises(ValueError, match="setting 'annealing.n_gen': no tactic is named 'annealing'"):
        make_tactic("random", SPACE, OBJECTIVES, 30, settings={"annealing.n_gen": 3})
    with pytest.raises(ValueError, match="settings is a mapping"):
        make_tactic("random", SPACE, OBJECTIVES, 30, settings=[("pop_size", 3)])


def test_settings_reach_only_the_classes_that_take_them(registered):
    settings = {"pop_size": 7, "n_gen": 3, "predictor": "ridge", "exact": EXACT, "n_initial": 9}
    random, nsga2, full, concurrent, weaknas, corners = (
        make_tactic(name, SPACE, OBJECTIVES, 30, settings=settings)
        for name in ("random", "nsga2", "full", "concurrent", "weaknas", Corners.name)
    )
    assert isinstance(random, RandomSearch) and random.batch_size == 7  # pop_size under its own name
    assert isinstance(nsga2, EvolutionarySearch) and nsga2.pop_size == 7
    assert isinstance(full, FullSearch)
    assert (full.pop_size, full.n_gen, full.n_initial, full.predictor, list(full.exact)) == (
        7,
        3,
        9,
        "ridge",
        ["macs"],
    )
    assert isinstance(concurrent, ConcurrentNAS) and (concurrent.pop_size, concurrent.n_gen) == (7, 3)
    assert isinstance(weaknas, WeakNAS) and (weaknas.batch_size, weaknas.predictor) == (7, "ridge")
    assert isinstance(corners, Corners) and corners.config()["seed"] == 0  # takes none of them: built as is


def test_preset_then_settings_then_options_each_win_over_the_one_before():
    assert tactic_preset("concurrent-ridge").options == {"predictor": "ridge"}
    preset = make_tactic("concurrent-ridge", SPACE, OBJECTIVES, 30)
    assert preset.predictor == "ridge" and preset.name == "concurrent"  # stored as a ConcurrentNAS search
    setting = make_tactic("concurrent-ridge", SPACE, OBJECTIVES, 30, settings={"predictor": "gbm"})
    assert setting.predictor == "gbm"
    option = make_tactic(
        "concurrent-ridge", SPACE, OBJECTIVES, 30, settings={"predictor": "gbm"}, predictor="svr"
    )
    assert option.predictor == "svr"
    # a setting scoped to one tactic (its registry name or its class's name) wins over a plain one
    shared = {"pop_size": 6, "concurrent.pop_size": 4, "weaknas.batch_size": 9}
    assert make_tactic("concurrent-ridge", SPACE, OBJECTIVES, 30, settings=shared).pop_size == 4
    assert make_tactic("nsga2", SPACE, OBJECTIVES, 30, settings=shared).pop_size == 6
    assert make_tactic("weaknas", SPACE, OBJECTIVES, 30, settings=shared).batch_size == 9
    assert make_tactic("random", SPACE, OBJECTIVES, 30, settings=shared).batch_size == 6


def test_a_preset_is_one_registration_and_checked():
    try:
        register_tactic("concurrent-short-test", ConcurrentNAS, n_gen=7, predictor="ridge")
        tactic = make_tactic("concurrent-short-test", SPACE, OBJECTIVES, 30, settings={"n_gen": 50})
        assert isinstance(tactic, ConcurrentNAS) and (tactic.n_gen, tactic.predictor) == (50, "ridge")
        assert "concurrent-short-test" in tactic_names()
        with pytest.raises(ValueError, match="'concurrent-short-test' is taken by ConcurrentNAS"):
            register_tactic("concurrent-short-test", ConcurrentNAS, n_gen=8)
    finally:
        TACTICS.pop("concurrent-short-test", None)
    with pytest.raises(
        ValueError, match=r"preset of tactic 'x-test': ConcurrentNAS takes no parameter\(s\) \['n_gem'\]"
    ):
        register_tactic("x-test", ConcurrentNAS, n_gem=7)
    with pytest.raises(ValueError, match=r"aliases of tactic 'y-test': RandomSearch takes no parameter\(s\)"):
        register_tactic("y-test", RandomSearch, aliases={"pop_size": "batch_sise"})
    assert "x-test" not in TACTICS and "y-test" not in TACTICS


def test_a_builtin_name_is_nastools_own_and_cannot_be_taken():
    with pytest.raises(ValueError, match="tactic name 'concurrent-ridge' is nastools' own") as info:
        register_tactic("concurrent-ridge", ConcurrentNAS, predictor="gbm")
    assert "\n" not in str(info.value) and tactic_preset("concurrent-ridge").options == {"predictor": "ridge"}
    with pytest.raises(ValueError, match="tactic name 'random' is nastools' own"):
        register_tactic("random", WeakNAS)
    # the same registration again changes nothing
    assert register_tactic("concurrent-ridge", ConcurrentNAS, predictor="ridge") is ConcurrentNAS


def test_a_builtin_tactic_is_one_entry_of_the_table(monkeypatch):
    entry = TacticName("random in threes", "nastools.search._random:RandomSearch", {"batch_size": 3})
    monkeypatch.setitem(BUILTIN_TACTICS, "random-trio-test", entry)
    monkeypatch.setitem(BUILTIN_TACTICS, "gone-test", TacticName("gone", "no_such_module_test:Gone"))
    try:
        assert "random-trio-test" in tactic_names() and "random-trio-test" not in TACTICS
        assert make_tactic("random-trio-test", SPACE, OBJECTIVES, 30).batch_size == 3
        assert "random-trio-test" in TACTICS  # registered from its entry on first use
        with pytest.raises(ValueError, match="tactic class no_such_module_test:Gone cannot be imported"):
            make_tactic("gone-test", SPACE, OBJECTIVES, 30)
    finally:
        TACTICS.pop("random-trio-test", None)


@pytest.mark.parametrize("name", list(BUILTIN_TACTICS))
def test_every_listed_name_is_registered_without_its_library(name, monkeypatch):
    for library in ("optuna", "botorch", "gpytorch", "syne_tune"):  # built only by make_tactic
        monkeypatch.setitem(sys.modules, library, None)
    if BUILTIN_TACTICS[name].extra:
        TACTICS.pop(name, None)  # registered again, now without its library
    preset = tactic_preset(name)
    assert issubclass(preset.cls, Tactic) and preset.options == BUILTIN_TACTICS[name].options


# --- the notebooks' settings ----------------------------------------------------------------------------


def _before(kind, settings, *, seed, exact=None, initial_archs=None, budget=24):
    """What build_tactic built before the one factory: each kind's constructor with its arguments."""
    start = list(initial_archs) if initial_archs is not None else None
    first = start if start is not None else SPACE.sample(settings.pop_size, rng=seed)
    exact, common = dict(exact or {}), {"seed": seed}
    if kind == "random":
        return RandomSearch(
            SPACE, OBJECTIVES, budget, batch_size=settings.pop_size, initial_archs=start, **common
        )
    if kind == "nsga2":
        return EvolutionarySearch(
            SPACE, OBJECTIVES, budget, pop_size=settings.pop_size, initial_archs=first, **common
        )
    if kind == "full":
        return FullSearch(
            SPACE, OBJECTIVES, budget, n_initial=settings.n_initial or 2 * settings.pop_size,
            pop_size=settings.pop_size, n_gen=settings.full_n_gen or settings.n_gen,
            predictor=settings.predictor or "auto", exact=exact, initial_archs=start, **common,
        )  # fmt: skip
    if kind in ("concurrent", "warm-start"):
        return ConcurrentNAS(
            SPACE, OBJECTIVES, budget, pop_size=settings.concurrent_pop_size or settings.pop_size,
            n_gen=settings.n_gen, predictor=settings.predictor or "auto", exact=exact,
            min_new=settings.min_new, initial_archs=start, **common,
        )  # fmt: skip
    return WeakNAS(
        SPACE, OBJECTIVES, budget, pool_size=settings.weaknas_pool_size,
        batch_size=settings.weaknas_batch_size or settings.pop_size, top_k=settings.weaknas_top_k,
        predictor=settings.weaknas_predictor, initial_archs=first, **common,
    )  # fmt: skip


SMOKE = ex.TacticSettings(pop_size=8, n_gen=5)  # notebooks/params/smoke.yaml: 00, 01, 02, 04
SMOKE_03 = ex.TacticSettings(pop_size=8, n_gen=5, n_initial=16, weaknas_pool_size=2000, weaknas_top_k=100)


@pytest.mark.parametrize("settings", [SMOKE, SMOKE_03], ids=["smoke", "smoke-03"])
@pytest.mark.parametrize("kind", ["random", "nsga2", "full", "concurrent", "warm-start", "weaknas"])
def test_the_notebooks_store_the_same_settings_as_before(kind, settings):
    warm = SPACE.sample(5, rng=42)
    for seed, exact, initial in [(0, EXACT, None), (1, None, None), (0, EXACT, warm)]:
        if kind == "warm-start" and initial is None:
            continue
        built = ex.build_tactic(
            kind, SPACE, OBJECTIVES, 24, settings, seed=seed, exact=exact, initial_archs=initial
        )
        before = _before(kind, settings, seed=seed, exact=exact, initial_archs=initial)
        assert type(built) is type(before)
        assert json.dumps(built.config(), sort_keys=True) == json.dumps(before.config(), sort_keys=True)


def test_build_tactic_takes_any_registered_name_from_the_common_population(registered):
    settings = ex.TacticSettings(pop_size=6)
    corners = ex.build_tactic(Corners.name, SPACE, OBJECTIVES, 10, settings, seed=3)
    assert corners.initial_archs == SPACE.sample(6, rng=3)  # the common first population, given
    ridge = ex.build_tactic("concurrent-ridge", SPACE, OBJECTIVES, 10, settings, seed=3)
    assert ridge.predictor == "ridge" and ridge.ask() == SPACE.sample(6, rng=3)
    assert ex.TacticSettings(predictor="svr").to_settings()["predictor"] == "svr"
    with pytest.raises(ImportError, match="pip install fancylib"):
        ex.build_tactic(Unavailable.name, SPACE, OBJECTIVES, 10, settings)
    with pytest.raises(ValueError, match="unknown tactic kind 'annealing'.*'warm-start'"):
        ex.build_tactic("annealing", SPACE, OBJECTIVES, 10, settings)


# --- the search overhead: CPU seconds next to wall seconds ---------------------------------------------


def test_run_tactic_stores_the_cpu_seconds_of_deciding(tmp_path):
    supernet = ToySupernet()
    evaluator = Evaluator(supernet, tmp_path / "s.sqlite", progress=False)
    tactic = make_tactic("nsga2", supernet.space, {"score": "max", "macs": "min"}, 8, pop_size=4)
    run_tactic(tactic, evaluator, search_id="n0", progress=False)
    assert set(tactic.seconds) == {"measure", "search", "search_cpu"} and tactic.seconds["search_cpu"] > 0
    with ResultStore(tmp_path / "s.sqlite") as store:
        stored = store.search("n0")["finished"]["seconds"]
    assert stored == {key: round(value, 3) for key, value in tactic.seconds.items()}


# --- the command line -----------------------------------------------------------------------------------


def test_search_help_lists_every_tactic_without_importing_torch():
    probe = "\n".join(
        [
            "import sys; from nastools.cli import main",
            "try:\n    main(['search', '--help'])\nexcept SystemExit:\n    pass",
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')",
        ]
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.strip().endswith("NO-TORCH"), result.stdout[-300:]
    listed = result.stdout.split("tactics (--tactic):")[1].split()
    assert all(name in listed for name in BUILTIN_TACTICS)
    assert "--option KEY=VALUE" in result.stdout


def _search(tmp_path, *args):
    """``nastools search`` on the toy supernet, budget 6; ``args`` add the tactic and its options."""
    common = ["--store", str(tmp_path / "cli.sqlite"), "--supernet", "helpers:toy_supernet", "--objectives"]
    return cli.main(["search", *common, "score:max", "macs:min", "--budget", "6", *args])


def _config(tmp_path, search_id):
    with ResultStore(tmp_path / "cli.sqlite") as store:
        return store.search(search_id)["config"]


def test_search_takes_options_in_yaml_over_the_settings(tmp_path, capsys):
    options = ["--option", "min_new=2", "--option", "predictor={score: gbm}", "--option", "n_gen=4"]
    shared = ["--pop-size", "3", "--n-gen", "2"]
    assert _search(tmp_path, "--tactic", "concurrent-ridge", "--search-id", "c0", *shared, *options) == 0
    config = _config(tmp_path, "c0")
    assert (config["min_new"], config["predictor"], config["n_gen"], config["pop_size"]) == (
        2,
        {"score": "gbm"},
        4,
        3,
    )
    assert _search(tmp_path, "--tactic", "random", "--search-id", "r0", "--pop-size", "3") == 0
    assert _config(tmp_path, "r0")["batch_size"] == 3  # --pop-size, under random's name
    assert _search(tmp_path, "--tactic", "nsga2", "--search-id", "n0") == 0
    assert _config(tmp_path, "n0")["pop_size"] == 20  # the default, where the tactic takes one
    capsys.readouterr()
    assert _search(tmp_path, "--tactic", "random", "--search-id", "r1", "--option", "n_gen=4") == 1
    error = capsys.readouterr().err
    assert "tactic 'random' takes no parameter(s) ['n_gen']" in error and error.count("\n") == 1


@pytest.mark.parametrize(
    ("tactic", "flag", "setting"),
    [("random", "--n-gen", "n_gen"), ("nsga2", "--n-gen", "n_gen"), ("optuna-tpe", "--pop-size", "pop_size")],
)
def test_search_refuses_a_shared_option_its_tactic_does_not_take(tmp_path, capsys, tactic, flag, setting):
    assert _search(tmp_path, "--tactic", tactic, "--search-id", "x", flag, "4") == 1
    error = capsys.readouterr().err
    assert error.startswith(
        f"nastools search: error: {flag}: tactic {tactic!r} takes no {setting}; it takes ["
    )
    assert error.count("\n") == 1 and not (tmp_path / "cli.sqlite").exists()  # refused before any work


def test_search_refuses_an_unknown_tactic_in_one_line(tmp_path, capsys):
    assert _search(tmp_path, "--tactic", "annealing", "--search-id", "x") == 1
    error = capsys.readouterr().err
    assert error.startswith("nastools search: error: unknown tactic 'annealing'; choose one of [")
    assert error.count("\n") == 1


@pytest.mark.parametrize(
    ("option", "message"),
    [("min_new", "write KEY=VALUE"), ("seed=3", "set by --seed"), ("a={b", "is not YAML")],
)
def test_search_refuses_a_bad_option_in_one_line(tmp_path, capsys, option, message):
    with pytest.raises(SystemExit):
        _search(tmp_path, "--search-id", "x", "--option", option)
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


def test_search_names_the_install_line_of_a_missing_library(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    assert _search(tmp_path, "--tactic", "optuna-tpe", "--search-id", "u0") == 1
    error = capsys.readouterr().err
    assert error.startswith("nastools search: error: OptunaSearch needs optuna") and error.count("\n") == 1
    assert "pip install 'nastools[alternatives]'" in error


# --- one registration: every way of naming a tactic --------------------------------------------------


def test_one_registration_adds_a_tactic_to_the_factory_notebooks_command_line_and_benchmark(
    tmp_path, monkeypatch
):
    name = "unsga3-test"
    register_tactic(name, EvolutionarySearch, algorithm="unsga3")
    try:
        built = make_tactic(name, SPACE, OBJECTIVES, 30, pop_size=6)
        assert isinstance(built, EvolutionarySearch) and (built.algorithm, built.pop_size) == ("unsga3", 6)
        notebook = ex.build_tactic(name, SPACE, OBJECTIVES, 30, ex.TacticSettings(pop_size=8), seed=2)
        assert notebook.algorithm == "unsga3" and notebook.initial_archs == SPACE.sample(8, rng=2)
        assert _search(tmp_path, "--tactic", name, "--search-id", "a0", "--pop-size", "3") == 0
        config = _config(tmp_path, "a0")
        assert (config["algorithm"], config["pop_size"]) == ("unsga3", 3)
        monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
        bench = importlib.import_module("sample_efficiency")
        assert bench.parse_row(name) == (None, name) and bench.parse_row(f"warm:{name}") == ("warm", name)
    finally:
        TACTICS.pop(name, None)
        sys.modules.pop("sample_efficiency", None)
