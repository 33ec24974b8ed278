"""The ResNet family's supernets: ``digits-resnet`` (shipped, trained) and ``ofa-resnet50`` (no top-1)."""

import importlib
import shutil

import pytest
import torch
from scipy.stats import kendalltau

from nastools.evaluation import Evaluator, wide
from nastools.supernet import Supernet, load_supernet, supernet_names
from nastools.supernets._image import shipped_checkpoint
from nastools.supernets.resnet import CHECKPOINT_KIND, ElasticResNet, ResNetSupernet
from nastools.supernets.resnet._supernet import embedded, from_checkpoint, ofa_resnet50
from nastools.training import recipes

# Small forward passes on shared cores: one thread is fastest and steadiest (conftest's fixture).
pytestmark = pytest.mark.usefixtures("one_thread")

METRICS = ["top1", "macs", "params", "naswot", "latency_ms"]


@pytest.fixture(scope="module")
def supernet():
    if not shipped_checkpoint("digits-resnet").is_file():
        pytest.fail(
            "data/digits-resnet.pt is missing: it is committed; retrain it with "
            "python -m nastools.training --supernet digits-resnet --out data/digits-resnet.pt --report"
        )
    return load_supernet("digits-resnet")


@pytest.fixture(scope="module")
def ofa():
    return load_supernet("ofa-resnet50")


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


def test_registry_finds_both_supernets_and_the_recipe(supernet, ofa):
    names = supernet_names()
    assert "digits-resnet" in names and "ofa-resnet50" in names
    assert recipes()["digits-resnet"] == "nastools.supernets.resnet._embedded:recipe"
    assert isinstance(supernet, Supernet) and isinstance(supernet, ResNetSupernet)
    assert isinstance(ofa, ResNetSupernet) and ofa.supernet_id == "ofa-resnet50"
    assert supernet.supernet_id == "digits-resnet" and len(supernet.checkpoint_hash) == 16
    assert not hasattr(importlib.import_module("nastools.supernets.resnet"), "DEFAULT")


def test_checkpoint_records_how_it_was_made(supernet):
    meta = supernet.metadata
    assert meta["training_config"]["strategy"] == "sandwich"
    assert len(meta["log"]["loss"]) == meta["training_config"]["epochs"]
    assert meta["model_config"] == supernet.net.config.to_dict()
    assert supernet.net.config.in_channels == 1 and supernet.task.in_channels == 1
    assert shipped_checkpoint("digits-resnet").stat().st_size < 8e6


def test_parameter_descriptions_cover_the_space(supernet, ofa):
    for net in (supernet, ofa):
        prefixes = {name.split("_")[0] for name in net.space.names}
        assert prefixes <= set(net.parameter_descriptions)
    assert "r" in supernet.space.names and "r" not in ofa.space.names


def test_evaluator_measures_and_then_reuses_every_row(supernet, tmp_path):
    archs = [{**arch, "r": 16} for arch in supernet.space.sample(2, rng=0)]  # small images: fast top1
    evaluator = Evaluator(supernet, tmp_path / "r.sqlite", min_run_time=0.02, progress=False)
    first = evaluator.measure(archs, METRICS, ["cpu-t1-b1"])
    assert len(first) == 2 * len(METRICS) and not first.reused.any()
    assert set(first.metric) == set(METRICS)
    by_arch = wide(first).set_index("arch")
    for arch in archs:
        row = by_arch.loc[supernet.space.key(arch)]
        assert 0 <= row.top1 <= 100
        assert (row.macs, row.params) == supernet.net.macs_params(arch)
        assert row["latency_ms@cpu-t1-b1"] > 0
    second = Evaluator(supernet, tmp_path / "r.sqlite", progress=False).measure(archs, METRICS, ["cpu-t1-b1"])
    assert second.reused.all()
    assert second.value.tolist() == first.value.tolist()


# Closed-form counts equal the flop counter, sub-networks equal the supernet: tests/test_conformance.py;
# OFA's ResNet50 at 224 px counts as OFA's own networks: tests/test_resnet_network.py.


def test_ofa_resnet50_extremes_are_ofas_smallest_and_largest(ofa):
    small, large = ofa.extremes()
    assert (ofa.macs(small), ofa.params(small)) == (962_192_128, 6_539_280)
    assert (ofa.macs(large), ofa.params(large)) == (7_491_643_904, 48_105_992)


def test_ofa_resnet50_has_no_top1_and_says_why(ofa, tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        ofa.check_metric("top1")
    assert "ImageNet" in _one_line(error) and "macs" in str(error.value)
    arch = ofa.space.sample(1, rng=0)[0]
    with pytest.raises(FileNotFoundError, match="architecture-only"):
        ofa.evaluate(arch, "top1")
    with pytest.raises(FileNotFoundError, match="architecture-only"):
        Evaluator(ofa, tmp_path / "r.sqlite", progress=False).measure([arch], ["top1", "macs"])
    table = Evaluator(ofa, None, progress=False).measure([arch], ["macs", "params"])
    assert table.value.tolist() == list(map(float, ofa.net.macs_params(arch)))
    assert ofa.example_inputs(arch, 2)[0].shape == (2, 3, 224, 224)


def test_ofa_resnet50_options(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ofa_resnet50(checkpoint=tmp_path / "missing.pth")
    several = load_supernet("ofa-resnet50", resolutions=(160, 224))
    assert several.space.choices["r"] == (160, 224)
    arch = {**several.net.min_arch(), "r": 160}
    assert several.macs(arch) < several.macs({**arch, "r": 224})


def test_shipped_smallest_measures_as_reported(supernet):
    small = supernet.extremes()[0]
    assert small == supernet.net.min_arch()
    # the checks' plain pass and evaluate's folded, channels-last one agree
    assert supernet.evaluate(small) == pytest.approx(supernet.metadata["report"]["top1_smallest"], abs=0.2)


@pytest.mark.slow
def test_shipped_largest_beats_smallest_by_five_points_measured(supernet):
    small, large = supernet.extremes()
    assert large == supernet.net.max_arch()
    top1_large, top1_small = supernet.evaluate(large), supernet.evaluate(small)  # the largest: ~5 s
    assert top1_large - top1_small >= 5
    assert top1_large == pytest.approx(supernet.metadata["report"]["top1_largest"], abs=0.2)


def test_stored_report_meets_the_targets(supernet):
    report = supernet.metadata["report"]
    assert report["top1_gap"] >= 5
    assert report["largest_vs_standalone"] >= 0.95
    assert 0.3 <= report["kendall_tau_top1_macs"] <= 0.9
    assert report["noise_to_spread"] <= 0.1


@pytest.mark.slow
def test_shipped_tau_between_top1_and_macs_measured(supernet):
    archs = supernet.space.sample(40, rng=5)
    top1 = [supernet.evaluate(arch) for arch in archs]
    macs = [supernet.macs(arch) for arch in archs]
    assert kendalltau(top1, macs).statistic > 0.2


def test_a_checkpoint_of_another_kind_is_refused_in_one_line(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"format": "nastools-supernet", "version": 1, "kind": "elastic-vit"}, path)
    with pytest.raises(ValueError) as error:
        load_supernet(path)
    assert "'elastic-vit'" in _one_line(error) and CHECKPOINT_KIND in str(error.value)
    with pytest.raises(ValueError) as error:
        embedded(path)
    _one_line(error)
    with pytest.raises(ValueError) as error:
        from_checkpoint(path, {"format": "nastools-supernet", "kind": "elastic-mobilenetv3"})
    assert "'elastic-mobilenetv3'" in _one_line(error)


def test_a_checkpoint_of_the_mobilenetv3_family_is_not_digits_resnet():
    mbv3 = shipped_checkpoint("digits-mbv3")
    if not mbv3.is_file():
        pytest.skip("data/digits-mbv3.pt is not here")
    with pytest.raises(ValueError) as error:
        embedded(mbv3)
    assert CHECKPOINT_KIND in _one_line(error)


def test_corrupted_or_mismatched_files_are_refused_in_one_line(tmp_path):
    shipped = shipped_checkpoint("digits-resnet")
    data = shipped.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    for path in (truncated, garbage):
        with pytest.raises(ValueError) as error:
            load_supernet(path)
        assert "not a readable nastools supernet checkpoint" in _one_line(error)
    payload = torch.load(shipped, map_location="cpu", weights_only=True)
    wider = dict(payload, model_config={**payload["model_config"], "base_stem_width": 48})
    torch.save(wider, tmp_path / "wider.pt")
    with pytest.raises(ValueError) as error:
        load_supernet(tmp_path / "wider.pt")
    assert "do not fit" in _one_line(error)
    del payload["state_dict"]
    torch.save(payload, tmp_path / "no-weights.pt")
    with pytest.raises(ValueError) as error:
        load_supernet(tmp_path / "no-weights.pt")
    _one_line(error)
    copy = tmp_path / "copy.pt"
    shutil.copy(shipped, copy)
    assert isinstance(embedded(copy).net, ElasticResNet)
