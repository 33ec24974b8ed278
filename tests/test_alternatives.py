"""The alternatives (Optuna, BoTorch, syne-tune) as tactics of the registry, on a closed-form problem."""

import sys

import numpy as np
import pytest
from helpers import ToySupernet

from nastools._tactic_names import BUILTIN_TACTICS, install_line
from nastools.evaluation import Evaluator
from nastools.metrics import Metric
from nastools.search import make_tactic, run_tactic, tactic_preset
from nastools.space import Condition, SearchSpace

#: Each alternative with the libraries it needs and options that keep a run to seconds.
ALTERNATIVES = {
    "optuna-tpe": (("optuna",), {"batch_size": 4}),
    "optuna-gp": (("optuna",), {"batch_size": 4, "sampler_options": {"n_startup_trials": 6}}),
    "optuna-nsga2": (("optuna",), {"batch_size": 4}),
    "optuna-auto": (("optuna",), {"batch_size": 4}),
    "botorch-qnehvi": (
        ("botorch",),
        {"batch_size": 3, "n_initial": 6, "num_restarts": 2, "raw_samples": 16, "mc_samples": 16},
    ),
    "synetune-morea": (("syne_tune",), {"batch_size": 4}),
    "synetune-ehvi": (("syne_tune", "botorch"), {}),
}
#: The alternatives that search (syne-tune's EHVI stalls: see its own test).
SEARCHING = [name for name in ALTERNATIVES if name != "synetune-ehvi"]
BUDGET = 12


class ClosedForm(ToySupernet):
    """Depth switches kernel sizes on, a width multiplier scales both objectives: formulas, no network.

    78 distinct networks (``d`` in 1..3 blocks, ``k_i`` active for ``d > i``, ``w``): a budget of
    12 leaves room for the libraries to propose repeats.
    """

    supernet_id = "closed-form"
    checkpoint_hash = "closed-form-0"
    metrics = (
        Metric("score", "max", "points", "kernel sizes of the active blocks, scaled by w"),
        Metric("cost", "min", "units", "squared kernel sizes of the active blocks, scaled by w squared"),
    )
    parameter_descriptions = {"d": "blocks", "k_0": "kernel", "k_1": "kernel", "k_2": "kernel", "w": "width"}
    choice_order = {}

    def __init__(self) -> None:
        conditions = [Condition("k_1", "d", (2, 3)), Condition("k_2", "d", (3,))]
        kernels = {f"k_{i}": [3, 5, 7] for i in range(3)}
        self.space = SearchSpace({"d": [1, 2, 3], **kernels, "w": [0.5, 1.0]}, conditions)
        self.n_subnets = 0

    def needs_subnet(self, metric):
        return False

    def evaluate(self, arch, metric, subnet=None):
        self.metric(metric)
        self.space.validate(arch)
        kernels = np.array([arch[f"k_{i}"] for i in range(arch["d"])], dtype=float)
        if metric == "score":
            return float(arch["w"] * (kernels.sum() + 2 * arch["d"]))
        return float(arch["w"] ** 2 * (kernels**2).sum())


OBJECTIVES = {"score": "max", "cost": "min"}


def _run(name, tmp_path, seed, search_id):
    libraries, options = ALTERNATIVES[name]
    for library in libraries:
        pytest.importorskip(library)
    supernet = ClosedForm()
    evaluator = Evaluator(supernet, tmp_path / f"{name}.sqlite", progress=False)
    tactic = make_tactic(name, supernet.space, OBJECTIVES, BUDGET, seed=seed, **options)
    run_tactic(tactic, evaluator, search_id=search_id, progress=False)
    return tactic, evaluator


def _check_validations(tactic, evaluator, search_id, expected):
    """``expected`` validations, each a distinct canonical network measured once."""
    space = evaluator.supernet.space
    validated = evaluator.store.validations(search_id)
    assert tactic.n_validated == len(validated) == len(set(validated)) == expected
    assert all(space.key(space.canonical(space.from_key(key))) == key for key in validated)
    assert len(evaluator.store.measurements(metric="score")) == expected


@pytest.mark.parametrize("name", SEARCHING)
def test_an_alternative_runs_from_the_registry_counting_unique_canonical_archs(name, tmp_path, one_thread):
    tactic, evaluator = _run(name, tmp_path, 0, "s0")
    assert type(tactic) is tactic_preset(name).cls and not tactic.stalled
    _check_validations(tactic, evaluator, "s0", BUDGET)
    again, _ = _run(name, tmp_path / "again", 0, "s0")
    assert again.validated == tactic.validated  # reproducible from the seed
    other, _ = _run(name, tmp_path / "other", 1, "s1")
    assert other.validated != tactic.validated


def test_syne_tune_ehvi_stalls_on_one_network_and_says_so_in_one_line(tmp_path, monkeypatch, one_thread):
    from nastools.search.alternatives import SyneTuneSearch

    monkeypatch.setattr(SyneTuneSearch, "max_idle_batches", 3)  # the default 10 costs seconds each
    with pytest.warns(RuntimeWarning, match="stopped at 4 of 12 validations.*reference point") as caught:
        tactic, evaluator = _run("synetune-ehvi", tmp_path, 0, "e0")
    assert tactic.stalled and tactic.n_repeats >= 3 and "\n" not in str(caught[0].message)
    _check_validations(tactic, evaluator, "e0", 4)  # its 3 random configs and one of its own
    with pytest.warns(RuntimeWarning):
        again, _ = _run("synetune-ehvi", tmp_path / "again", 0, "e0")
    assert again.validated == tactic.validated


def test_a_repeat_costs_no_validation(tmp_path, one_thread):
    # MOREA mutates one parameter of a small population: on 78 networks it proposes repeats
    tactic, evaluator = _run("synetune-morea", tmp_path, 0, "m0")
    assert tactic.n_repeats > 0
    assert len(evaluator.store.measurements(metric="score")) == tactic.n_validated == BUDGET


@pytest.mark.parametrize(
    ("name", "module"),
    [("optuna-tpe", "optuna"), ("botorch-qnehvi", "botorch"), ("synetune-morea", "syne_tune")],
)
def test_a_missing_library_is_a_one_line_error_with_the_install_line(name, module, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # import optuna (say) now raises ImportError
    space = ClosedForm().space
    with pytest.raises(ImportError) as info:
        make_tactic(name, space, OBJECTIVES, BUDGET)
    message = str(info.value)
    assert "\n" not in message and module in message and install_line(name) in message
    assert BUILTIN_TACTICS[name].extra == "alternatives"


def test_syne_tune_ehvi_runs_one_trial_at_a_time_and_refuses_moreas_settings():
    pytest.importorskip("syne_tune")
    pytest.importorskip("botorch")
    space = ClosedForm().space
    assert make_tactic("synetune-ehvi", space, OBJECTIVES, BUDGET).batch_size == 1
    with pytest.raises(ValueError, match="population_size and sample_size are MOREA's settings"):
        make_tactic("synetune-ehvi", space, OBJECTIVES, BUDGET, population_size=10)
