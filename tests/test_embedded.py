"""The committed embedded supernet: loads offline, and is a meaningful search problem."""

import pytest
import torch
from scipy.stats import kendalltau

from nastools.supernets import data_dir, fold_batchnorm, load_supernet, recalibrate_batchnorm, top1_accuracy
from nastools.supernets._validation import resize
from nastools.training import TrainingConfig


@pytest.fixture(scope="module")
def supernet():
    if not (data_dir() / "digits-mbv3.pt").is_file():
        pytest.fail("data/digits-mbv3.pt is missing: it is committed; retrain with `make train`")
    return load_supernet()


def test_checkpoint_records_how_it_was_made(supernet):
    meta = supernet.metadata
    assert meta["training_config"]["strategy"] == "sandwich"
    assert TrainingConfig(**meta["training_config"]).epochs == meta["training_config"]["epochs"]
    assert len(meta["log"]["loss"]) == meta["training_config"]["epochs"]
    assert meta["data_config"]["seed"] == 0 and supernet.space.n_var == 46
    assert len(supernet.checkpoint_hash) == 16


def test_largest_beats_smallest_by_five_points(supernet):
    largest = supernet.evaluate(supernet.net.max_arch())
    smallest = supernet.evaluate(supernet.net.min_arch())
    assert largest - smallest >= 5
    report = supernet.metadata["report"]
    assert largest == pytest.approx(report["top1_largest"], abs=0.1)  # evaluation is repeatable


def test_fast_evaluation_equals_the_plain_one_and_leaves_the_subnet_as_it_was(supernet):
    arch = supernet.space.sample(1, rng=3)[0]
    subnet = supernet.subnet(arch)
    top1 = supernet.evaluate(arch, subnet)  # channels-last, batches of 128
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
    x = resize(supernet.task.test_x[:256], r)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), subnet(x), atol=1e-4, rtol=1e-4)


def test_report_meets_the_targets(supernet):
    report = supernet.metadata["report"]
    assert report["top1_gap"] >= 5
    assert report["largest_vs_standalone"] >= 0.95
    assert 0.3 <= report["kendall_tau_top1_macs"] <= 0.9
    assert report["noise_to_spread"] < 0.2


@pytest.mark.slow
def test_tau_between_top1_and_macs_remeasured(supernet):
    archs = supernet.space.sample(200, rng=1)
    top1 = [supernet.evaluate(a) for a in archs]
    macs = [supernet.macs(a) for a in archs]
    tau = kendalltau(top1, macs).statistic
    assert 0.3 <= tau <= 0.9
    assert tau == pytest.approx(supernet.metadata["report"]["kendall_tau_top1_macs"], abs=0.02)
