"""The committed embedded supernet: loads offline, and is a meaningful search problem."""

import pytest
import torch
from scipy.stats import kendalltau

from nastools.supernet import default_supernet, file_hash, load_supernet
from nastools.supernets._image import (
    fold_batchnorm,
    recalibrate_batchnorm,
    resize,
    shipped_checkpoint,
    top1_accuracy,
)
from nastools.supernets.mobilenetv3 import MobileNetV3Config
from nastools.supernets.mobilenetv3._embedded import EMBEDDED_MODEL_CONFIG, recipe
from nastools.tasks.digits import DigitsConfig
from nastools.training import TrainingConfig

# Small forward passes on shared cores: one thread is fastest and steadiest (conftest's fixture).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def supernet():
    if not shipped_checkpoint("digits-mbv3").is_file():
        pytest.fail(
            "data/digits-mbv3.pt is missing: it is committed; retrain it with "
            "python -m nastools.training --supernet digits-mbv3 --out data/digits-mbv3.pt --report"
        )
    return load_supernet("digits-mbv3")


def test_it_is_the_default_and_ships_inside_the_package(supernet):
    assert default_supernet() == "digits-mbv3"
    path = shipped_checkpoint("digits-mbv3")
    assert path.parent.name == "data" and (path.parent / "__init__.py").is_file()  # nastools.checkpoints
    assert supernet.supernet_id == "digits-mbv3" and supernet.checkpoint_hash == file_hash(path)
    assert len(supernet.checkpoint_hash) == 16


def test_checkpoint_records_how_it_was_made(supernet):
    meta = supernet.metadata
    assert meta["training_config"]["strategy"] == "sandwich"
    assert TrainingConfig(**meta["training_config"]).epochs == meta["training_config"]["epochs"]
    assert len(meta["log"]["loss"]) == meta["training_config"]["epochs"]
    assert meta["data_config"]["seed"] == 0 and supernet.space.n_var == 46
    # the shipped file is what the recipe builds: the same network and task
    assert MobileNetV3Config.from_dict(meta["model_config"]) == EMBEDDED_MODEL_CONFIG == supernet.net.config
    shipped_data = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["data_config"].items()}
    assert DigitsConfig(**shipped_data) == recipe().task().config == supernet.task.config


def test_largest_beats_smallest_by_five_points(supernet):
    largest = supernet.evaluate(supernet.net.max_arch(), "top1")
    smallest = supernet.evaluate(supernet.net.min_arch(), "top1")
    assert largest - smallest >= 5
    report = supernet.metadata["report"]
    # evaluation is repeatable: what training measured is what evaluate() measures now
    assert largest == pytest.approx(report["top1_largest"], abs=0.1)
    assert smallest == pytest.approx(report["top1_smallest"], abs=0.1)


def test_fast_evaluation_equals_the_plain_one_and_leaves_the_subnet_as_it_was(supernet):
    arch = supernet.space.sample(1, rng=3)[0]
    subnet = supernet.subnet(arch)
    top1 = supernet.evaluate(arch, "top1", subnet)  # channels-last, batches of 128
    assert all(p.is_contiguous() for p in subnet.parameters())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in subnet.modules())  # folded a copy only
    plain, task, r = supernet.subnet(arch), supernet.task, supernet.net.resolution(arch)
    recalibrate_batchnorm(plain, resize(task.calibration_x, r))
    assert top1 == pytest.approx(top1_accuracy(plain, resize(task.test_x, r), task.test_y, 1024), abs=0.05)


def test_folded_batchnorm_computes_the_same_logits(supernet):
    arch = supernet.space.sample(1, rng=4)[0]
    subnet, r = supernet.subnet(arch), supernet.net.resolution(arch)
    recalibrate_batchnorm(subnet, resize(supernet.task.calibration_x, r))
    folded = fold_batchnorm(subnet.eval())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in subnet.modules())  # the original is kept
    x = resize(supernet.task.test_x[:256], r)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), subnet(x), atol=1e-4, rtol=1e-4)


def test_recalibration_restores_the_batchnorm_settings(supernet):
    subnet = supernet.subnet(supernet.net.min_arch())
    norms = [m for m in subnet.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = [(m.momentum, m.training, m.running_mean.clone()) for m in norms]
    r = supernet.net.resolution(supernet.net.min_arch())
    recalibrate_batchnorm(subnet, resize(supernet.task.calibration_x, r))
    assert [(m.momentum, m.training) for m in norms] == [(b[0], b[1]) for b in before]
    assert any(not torch.equal(m.running_mean, b[2]) for m, b in zip(norms, before))  # statistics changed


@pytest.mark.slow
def test_report_targets_remeasured(supernet):
    """The checks stored in the checkpoint's report, measured again (except the standalone training)."""
    from nastools.supernets._checks import supernet_report

    report = supernet_report(
        supernet.net, supernet.task, recipe(), recipe().training, n_random=200, train_standalone=False
    )
    stored = supernet.metadata["report"]
    assert report["top1_gap"] >= 5
    assert 0.3 <= report["kendall_tau_top1_macs"] <= 0.9
    assert report["kendall_tau_top1_macs"] == pytest.approx(stored["kendall_tau_top1_macs"], abs=0.02)
    assert report["noise_to_spread"] < 0.2


@pytest.mark.slow
def test_tau_between_top1_and_macs_remeasured(supernet):
    archs = supernet.space.sample(200, rng=1)
    top1 = [supernet.evaluate(a, "top1") for a in archs]
    macs = [supernet.macs(a) for a in archs]
    tau = kendalltau(top1, macs).statistic
    assert 0.3 <= tau <= 0.9
    assert tau == pytest.approx(supernet.metadata["report"]["kendall_tau_top1_macs"], abs=0.02)
