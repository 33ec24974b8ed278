from dataclasses import replace

import pytest
import torch
from helpers import TINY_CONFIG, TINY_DATA

from nastools.data import DigitsConfig, distort, load_digits_task
from nastools.training import TrainingConfig, train_supernet


def test_task_is_deterministic_and_split_is_held_out():
    a, b = load_digits_task(TINY_DATA), load_digits_task(TINY_DATA)
    assert torch.equal(a.test_x, b.test_x) and torch.equal(a.calibration_x, b.calibration_x)
    assert a.test_x.shape[1:] == (1, 24, 24) and a.n_classes == 10
    assert len(a.train_y) + len(a.test_y) == 1797  # one distortion per held-out digit here
    other = load_digits_task(replace(TINY_DATA, seed=1))
    assert not torch.equal(a.test_x, other.test_x)


def test_distortion_is_random_but_seeded_and_in_range():
    task = load_digits_task(TINY_DATA)
    x = task.train_x[:16]
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    d1, d2 = distort(x, task.config, g1), distort(x, task.config, g2)
    assert torch.equal(d1, d2)
    assert not torch.equal(d1, distort(x, task.config, g1))
    assert d1.min() >= 0 and d1.max() <= 1 and (d1 - x).abs().mean() > 0.05


def test_bad_data_config_is_rejected():
    with pytest.raises(ValueError, match="resolution"):
        load_digits_task(DigitsConfig(resolution=4))
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits_task(DigitsConfig(test_fraction=1.5))


def test_unknown_training_strategy_is_rejected():
    with pytest.raises(ValueError, match="unknown strategy 'greedy'"):
        train_supernet(TINY_CONFIG, TINY_DATA, TrainingConfig(strategy="greedy"), progress=False)


@pytest.mark.parametrize("strategy", ["sandwich", "progressive"])
def test_training_reduces_loss_and_is_reproducible(strategy):
    config = TrainingConfig(strategy=strategy, epochs=3, warmup_epochs=1, batch_size=256, threads=1)
    net_a, _, log_a = train_supernet(TINY_CONFIG, TINY_DATA, config, progress=False)
    net_b, _, log_b = train_supernet(TINY_CONFIG, TINY_DATA, config, progress=False)
    assert log_a["loss"] == log_b["loss"]
    for (name, a), b in zip(net_a.state_dict().items(), net_b.state_dict().values()):
        assert torch.equal(a, b), name
    assert log_a["loss"][-1] < log_a["loss"][0]
    assert torch.get_num_threads() >= 1
