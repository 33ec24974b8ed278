"""The digits task's data and the training command line (the trainer itself: tests/test_training.py)."""

from dataclasses import replace

import pytest
import torch
from helpers import TINY_CONFIG, TINY_DATA

from nastools.supernet import file_hash, load_supernet
from nastools.supernets.mobilenetv3 import MobileNetV3Config, MobileNetV3Supernet
from nastools.supernets.mobilenetv3._supernet import embedded
from nastools.tasks.digits import DigitsConfig, distort, load_digits_task
from nastools.training import main, recipes

# Small forward passes on shared cores: one thread is fastest and steadiest (conftest's fixture).
pytestmark = pytest.mark.usefixtures("one_thread")


def test_task_is_deterministic_and_split_is_held_out():
    a, b = load_digits_task(TINY_DATA), load_digits_task(TINY_DATA)
    assert torch.equal(a.test_x, b.test_x) and torch.equal(a.calibration_x, b.calibration_x)
    assert a.test_x.shape[1:] == (1, 24, 24) and a.n_classes == 10 and a.in_channels == 1
    assert len(a.train_y) + len(a.test_y) == 1797  # one distortion per held-out digit here
    assert len(a.calibration_x) == TINY_DATA.calibration_size
    other = load_digits_task(replace(TINY_DATA, seed=1))
    assert not torch.equal(a.test_x, other.test_x)
    # the split is stratified: every class is held out in proportion
    counts = torch.bincount(a.test_y, minlength=10)
    assert counts.min() >= 50 and counts.max() <= 56


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
    with pytest.raises(ValueError, match="test_distortions must be a positive integer, got 0"):
        load_digits_task(DigitsConfig(test_distortions=0))
    with pytest.raises(ValueError, match="calibration_size must be a positive integer, got 0"):
        load_digits_task(DigitsConfig(calibration_size=0))


@pytest.fixture
def tiny_cli(monkeypatch):
    """The training command line, with the tiny recipe as its only one."""
    monkeypatch.setattr("nastools.training.recipes", lambda: {"tiny-mbv3": "helpers:tiny_recipe"})


def test_the_families_name_their_recipes():
    assert recipes()["digits-mbv3"] == "nastools.supernets.mobilenetv3._embedded:recipe"


def test_command_line_trains_a_checkpoint_the_registry_loads(tiny_cli, tmp_path, capsys):
    out = tmp_path / "tiny.pt"
    assert main(["--supernet", "tiny-mbv3", "--out", str(out), "--epochs", "2"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    supernet = load_supernet(out)
    assert isinstance(supernet, MobileNetV3Supernet) and supernet.supernet_id == "tiny"
    assert supernet.checkpoint_hash == file_hash(out)
    assert MobileNetV3Config.from_dict(supernet.metadata["model_config"]) == TINY_CONFIG
    assert supernet.metadata["training_config"]["epochs"] == 2 and len(supernet.metadata["log"]["loss"]) == 2
    arch = supernet.space.sample(1, rng=0)[0]
    assert 0 <= supernet.evaluate(arch, "top1") <= 100
    assert embedded(checkpoint=out).supernet_id == "digits-mbv3"  # the embedded name, another checkpoint
    with pytest.raises(SystemExit):
        main(["--supernet", "tiny-mbv3", "--out", str(out), "--epochs", "2"])
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main(["--supernet", "tiny-mbv3", "--out", str(out), "--epochs", "2", "--overwrite"]) == 0


def test_the_trained_checkpoint_is_written_before_the_checks_and_survives_their_failure(
    tiny_cli, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "tiny.pt"

    def failing_checks(*args):
        assert out.exists()  # the training is on disk before the checks start
        raise RuntimeError("checks failed")

    monkeypatch.setattr("nastools.supernets._checks.supernet_report", failing_checks)
    with pytest.raises(RuntimeError, match="checks failed"):
        main(["--supernet", "tiny-mbv3", "--out", str(out), "--epochs", "2", "--report"])
    assert len(load_supernet(out).metadata["log"]["loss"]) == 2  # the trained weights are kept
    monkeypatch.setattr("nastools.supernets._checks.supernet_report", lambda *args: {"gap": 1.5})
    argv = ["--supernet", "tiny-mbv3", "--out", str(out), "--epochs", "2", "--report", "--overwrite"]
    assert main(argv) == 0
    assert load_supernet(out).metadata["report"] == {"gap": 1.5}
    assert "added the checks to" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--supernet", "tiny-mbv3"], "--out is required"),
        (["--supernet", "nope", "--out", "{tmp}/x.pt"], "no training recipe for 'nope'"),
        (["--supernet", "tiny-mbv3", "--out", "{tmp}"], "is a folder"),
        (["--supernet", "tiny-mbv3", "--out", "{tmp}/x.pt", "--epochs", "1"], "must exceed warmup_epochs"),
    ],
)
def test_command_line_errors(tiny_cli, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_command_line_lists_the_recipes(tiny_cli, capsys):
    assert main(["--list"]) == 0
    assert capsys.readouterr().out.split() == ["tiny-mbv3"]
