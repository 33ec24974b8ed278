"""Inputs that were accepted without a word and gave wrong results: each is now a clear one-line error."""

import math
import warnings

import numpy as np
import pytest
from helpers import ToySupernet

from nastools import cli
from nastools.analysis import space_summary
from nastools.export import export_subnet
from nastools.hypervolume import HypervolumeIndicator
from nastools.objectives import parse_objectives
from nastools.search import ConcurrentNAS, EvolutionarySearch, make_algorithm
from nastools.search._surrogate import search_on_predictors
from nastools.space import Condition, SearchSpace

pytestmark = pytest.mark.usefixtures("one_thread")

SPACE = SearchSpace({f"k_{i}": [3, 5, 7] for i in range(6)})
OBJECTIVES = {"acc": "max", "cost": "min"}


def toy(archs):
    return {
        "acc": np.array([sum(a.values()) for a in archs], dtype=float),
        "cost": np.array([2 * a["k_0"] + a["k_1"] for a in archs], dtype=float),
    }


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# --- the search space -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choices", "shown"),
    [
        ([1.0, math.inf], "an infinite choice (inf)"),
        ([-math.inf, 0.5], "an infinite choice (-inf)"),
        (np.array([0.25, np.inf]), "an infinite choice (inf)"),
        ([np.float32(0.5), np.float32("nan")], "a NaN choice"),
    ],
)
def test_non_finite_choices_are_refused(choices, shown):
    with pytest.raises(ValueError, match="use finite numbers") as error:
        SearchSpace({"scale": choices, "k": [3, 5]})
    assert f"parameter 'scale' has {shown}" in one_line(error)


def test_a_condition_without_values_is_refused():
    with pytest.raises(ValueError, match="lists no value of 'd', so 'k' could never be active") as error:
        SearchSpace({"d": [1, 2], "k": [3, 5]}, [Condition("k", "d", ())])
    one_line(error)


def test_a_restriction_may_still_leave_a_parameter_never_active():
    space = SearchSpace({"d": [1, 2, 3], "k": [3, 5]}, [Condition("k", "d", (3,))])
    restricted = space.restrict({"d": [1, 2]})
    assert restricted.conditions["k"].values == () and restricted.size == 2
    assert SearchSpace.from_dict(restricted.to_dict()) == restricted


def test_an_arch_key_giving_a_parameter_twice_is_refused():
    space = SearchSpace({"d": [1, 2], "k": [3, 5]})
    with pytest.raises(ValueError, match=r"arch key gives 'd' twice \('d=2' again\)") as error:
        space.from_key("d=1,k=3,d=2")
    one_line(error)
    assert space.from_key("d=1,k=3") == {"d": 1, "k": 3}


# --- hypervolume boxes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bounds",
    [
        {"acc": (float("nan"), 1.0), "cost": (0.0, 10.0)},
        {"acc": (0.0, 1.0), "cost": (0.0, math.inf)},
        {"acc": (-math.inf, 1.0), "cost": (0.0, 10.0)},
    ],
)
def test_hypervolume_bounds_must_be_finite(bounds):
    with pytest.raises(ValueError, match="must be finite numbers") as error:
        HypervolumeIndicator(OBJECTIVES, bounds)
    one_line(error)


def test_rnsga2_reference_points_must_be_finite():
    with pytest.raises(ValueError, match="ref_points must be finite"):
        make_algorithm("rnsga2", SPACE, pop_size=4, ref_points=[[np.nan, 1.0]])


# --- options pymoo would swallow ------------------------------------------------------------------


def test_an_unknown_algorithm_option_is_refused():
    assert make_algorithm("nsga2", SPACE, pop_size=4, n_offsprings=2).n_offsprings == 2
    with pytest.raises(ValueError, match=r"algorithm_options \['n_offspring'\] are not options of 'nsga2'"):
        make_algorithm("nsga2", SPACE, pop_size=4, n_offspring=2)
    with pytest.raises(ValueError, match=r"\['pop_szie'\] are not options of 'nsga2'"):
        EvolutionarySearch(SPACE, OBJECTIVES, 8, pop_size=4, algorithm_options={"pop_szie": 10})


def test_search_on_predictors_refuses_an_unknown_algorithm_option():
    archs = SPACE.sample(12, rng=0)
    with pytest.raises(ValueError, match=r"\['eliminate_duplicate'\] are not options of 'nsga2'"):
        search_on_predictors(
            SPACE, parse_objectives(OBJECTIVES), archs, toy(archs), kinds={"acc": "ridge", "cost": "ridge"},
            exact={}, pop_size=4, n_gen=2, algorithm_options={"eliminate_duplicate": False},
        )  # fmt: skip


def test_concurrent_refuses_an_unknown_iteration_option():
    def drive(iteration_options):
        tactic = ConcurrentNAS(
            SPACE, OBJECTIVES, 12, pop_size=4, n_gen=2, predictor="ridge", iteration_options=iteration_options
        )
        while archs := tactic.ask():
            tactic.tell(archs, toy(archs))
        return tactic

    assert drive(lambda i: {"n_gen": 3, "pop_size": 4, "n_offsprings": 2}).n_validated == 12
    with pytest.raises(
        ValueError, match=r"iteration_options\(1\) keys \['n_gne'\] .* use n_gen, pop_size or"
    ):
        drive(lambda i: {"n_gne": 5})
    with pytest.raises(ValueError, match=r"iteration_options\(1\) must return a dict"):
        drive(lambda i: 5)


# --- export, tables, extremes ---------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_export_refuses_a_batch_size_that_is_not_a_positive_integer(tmp_path, batch_size):
    toy_supernet = ToySupernet()
    arch = toy_supernet.space.sample(1, rng=0)[0]
    with pytest.raises(ValueError, match=f"batch_size must be a positive integer .*got {batch_size!r}"):
        export_subnet(toy_supernet, arch, tmp_path / "out", formats=["torchscript"], batch_size=batch_size)
    assert not (tmp_path / "out").exists()


def test_a_parameter_description_naming_no_parameter_warns():
    space = ToySupernet().space
    with pytest.warns(
        UserWarning, match=r"key\(s\) \['widht'\] name no parameter of this space, whose prefixes "
    ):
        table = space_summary(space, {"widht": "hidden units", "act": "activation"})
    assert table.set_index("kind").loc["act", "meaning"] == "activation"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        space_summary(space, {"width": "hidden units"})


class NoOrder(ToySupernet):
    choice_order = {}


def test_extremes_refuse_string_choices_without_a_declared_order():
    with pytest.raises(ValueError, match=r"string parameter\(s\) \['act'\] have no size order") as error:
        NoOrder().extremes()
    assert "choice_order" in one_line(error) and "override extremes()" in str(error.value)
    with pytest.raises(ValueError, match=r"choice_order lacks \['relu'\] of parameter 'act'"):
        type("Partial", (ToySupernet,), {"choice_order": {"act": ["gelu"]}})().extremes()
    reversed_order = type("Reversed", (ToySupernet,), {"choice_order": {"act": ["gelu", "relu"]}})()
    low, high = reversed_order.extremes()
    assert (low["act"], high["act"]) == ("gelu", "relu")
    assert (low["width"], low["bias"], high["width"], high["bias"]) == (4, False, 16, True)
    # numbers and booleans need no order
    numeric = type("Numeric", (NoOrder,), {})()
    numeric.space = SearchSpace({"width": [16, 4, 8], "bias": [True, False]})
    assert numeric.extremes() == ({"width": 4, "bias": False}, {"width": 16, "bias": True})


# --- the command line ------------------------------------------------------------------------------


def test_measure_on_hardware_without_a_per_hardware_metric_is_an_error(capsys):
    args = ["measure", "--supernet", "helpers:toy_supernet", "--n-archs", "1", "--hardware", "cpu-t1-b1"]
    assert cli.main([*args, "--metrics", "macs"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "add latency_ms to --metrics, or drop --hardware" in error


def test_measure_on_hardware_without_metrics_measures_latency_there(capsys):
    args = ["measure", "--supernet", "helpers:toy_supernet", "--n-archs", "1", "--hardware", "cpu-t1-b1"]
    assert cli.main(args) == 0
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header == ["arch", "macs", "params", "score", "latency_ms@cpu-t1-b1"]
