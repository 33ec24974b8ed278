"""The notebooks' parameters for the transformer families: predictor kinds, Fig. 7's groups, the profiles."""

import matplotlib
import pandas as pd
import pytest
from helpers import ToySupernet

from nastools import experiments as ex
from nastools.evaluation import Evaluator
from nastools.experiments import plotting, runner
from nastools.objectives import Objective
from nastools.space import SearchSpace

matplotlib.use("Agg")

LATENCY = Objective("latency_ms", "min", "cpu-t1-b1")
SCORE = Objective("score", "max")


@pytest.fixture
def experiment(tmp_path):
    supernet = ToySupernet()
    return ex.Experiment(
        "nb", tmp_path, supernet, Evaluator(supernet, tmp_path / "store.sqlite", progress=False)
    )


def test_settings_for_keys_predictor_kinds_by_the_searchs_objective_labels(experiment):
    settings = ex.TacticSettings(pop_size=4, n_gen=2)
    assert experiment.settings_for(settings, [SCORE, LATENCY], None) is settings
    assert experiment.settings_for(settings, [SCORE, LATENCY], "svr").predictor == "svr"
    by_metric = {"score": "svr", "latency_ms": "ridge"}
    assert experiment.settings_for(settings, [SCORE, LATENCY], by_metric).predictor == {
        "score": "svr",
        "latency_ms@cpu-t1-b1": "ridge",
    }
    # a kind given for the label wins over the metric's; a metric the search lacks is left out
    both = {"latency_ms": "ridge", "latency_ms@cpu-t1-b1": "gbm"}
    assert experiment.settings_for(settings, [SCORE, LATENCY], both).predictor == {
        "latency_ms@cpu-t1-b1": "gbm"
    }
    macs = Objective("macs", "min")
    assert experiment.settings_for(settings, [SCORE, macs], by_metric).predictor == {"score": "svr"}
    assert experiment.settings_for(settings, [SCORE, macs], {"latency_ms": "ridge"}).predictor is None
    assert settings.predictor is None  # the notebook's settings are left as they were


def test_settings_for_refuses_a_typo_and_a_wrong_type(experiment):
    settings = ex.TacticSettings(pop_size=4, n_gen=2)
    with pytest.raises(ValueError, match="has no metric 'scroe'"):
        experiment.settings_for(settings, [SCORE, LATENCY], {"scroe": "svr"})
    with pytest.raises(ValueError, match=r"predictor is a kind .* got \['svr'\]"):
        experiment.settings_for(settings, [SCORE, LATENCY], ["svr"])


def test_latency_search_fits_the_predictor_kinds_of_the_notebook_parameter(experiment):
    settings = ex.TacticSettings(pop_size=2, n_gen=1)
    tactic = experiment.latency_search("cpu-t1-b1", 4, settings, seed=1, predictor={"score": "svr"})
    assert tactic.kinds == {"score": "svr", "latency_ms@cpu-t1-b1": "auto"}
    assert experiment.latency_search("cpu-t1-b1", 4, settings).kinds == {
        "score": "auto",
        "latency_ms@cpu-t1-b1": "auto",
    }


def test_front_segments_say_whether_each_value_is_one_run_along_the_cost():
    grouped = pd.DataFrame({"latency_ms": [4.0, 1.0, 3.0, 2.0], "layers": [3, 1, 2, 1]})
    summary = front_segments_by_value(grouped)
    assert summary == {1: (2, 1, 1.0, 2.0), 2: (1, 1, 3.0, 3.0), 3: (1, 1, 4.0, 4.0)}
    interleaved = pd.DataFrame({"latency_ms": [1.0, 2.0, 3.0, 4.0, 5.0], "layers": [1, 2, 1, 2, 2]})
    assert front_segments_by_value(interleaved) == {1: (2, 2, 1.0, 3.0), 2: (3, 2, 2.0, 5.0)}
    with pytest.raises(ValueError, match=r"no column\(s\) \['depth'\]"):
        ex.front_segments(grouped, "depth", "latency_ms")


def front_segments_by_value(front):
    table = ex.front_segments(front, "layers", "latency_ms")
    assert list(table.columns) == ["layers", "n_points", "segments", "cost_min", "cost_max"]
    return {
        row.layers: (row.n_points, row.segments, row.cost_min, row.cost_max) for row in table.itertuples()
    }


def test_with_parameter_reads_the_value_from_each_arch_key():
    space = SearchSpace({"layers": [1, 2, 3], "width": [8, 16]})
    archs = [{"layers": 3, "width": 8}, {"layers": 1, "width": 16}]
    table = pd.DataFrame({"arch": [space.key(a) for a in archs], "bleu": [30.0, 20.0]})
    assert ex.with_parameter(table, space, "layers")["layers"].tolist() == [3, 1]
    assert "layers" not in table.columns
    with pytest.raises(ValueError, match=r"'depth' is not a parameter .*\['layers', 'width'\]"):
        ex.with_parameter(table, space, "depth")
    with pytest.raises(ValueError, match="already has a column 'width'"):
        ex.with_parameter(table.assign(width=0), space, "width")


def test_plot_front_colours_the_points_by_the_group_column():
    table = pd.DataFrame(
        {"bleu": [10.0, 20.0, 30.0, 15.0], "macs": [1.0, 2.0, 3.0, 2.5], "declayers": [1, 2, 3, 1]}
    )
    fig = plotting.plot_front(table, "macs", "bleu", {"bleu": "max", "macs": "min"}, hue="declayers")
    legend = fig.axes[0].get_legend()
    assert legend.get_title().get_text() == "declayers"
    assert [t.get_text() for t in legend.get_texts()] == ["front (3)", "1", "2", "3"]


@pytest.mark.parametrize("profile", ["gpt", "hat"])
def test_transformer_profiles_fit_the_notebooks_parameters(profile):
    config = runner.load_profile(profile)
    for name in runner.notebook_names():
        declared = runner.notebook_parameters(runner.NOTEBOOKS_DIR / f"{name}.ipynb")
        parameters = runner._parameters_for(name, declared, config)
        runner.check_parameter_types(name, declared, parameters)
    declared = {
        p
        for name in runner.notebook_names()
        for p in runner.notebook_parameters(runner.NOTEBOOKS_DIR / f"{name}.ipynb")
    }
    assert set(config["common"]) <= declared


def test_hat_profile_uses_the_papers_predictor_and_groups_by_decoder_layers():
    from nastools.supernets.hat._embedded import EMBEDDED_MODEL_CONFIG

    config = runner.load_profile("hat")
    assert config["common"]["predictor"] == {"bleu": "svr"}
    assert config["notebooks"]["00_quickstart"]["front_groups"] in EMBEDDED_MODEL_CONFIG.space().names
    gpt = runner.load_profile("gpt")
    assert "peak_memory_mb" in gpt["notebooks"]["05_predictor_analysis"]["hardware_metrics"]
