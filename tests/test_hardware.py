import os
import time

import pytest
import torch
from torch import nn

from nastools.hardware import (
    MIN_REPEATS,
    HardwareConfig,
    LatencyMeasurement,
    default_hardware_configs,
    measure_latency,
)

SHAPE = (3, 32, 32)
FAST = 0.05
CORES = os.cpu_count() or 1


def conv_net(width: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, 10),
    )


class Exploding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom")


@pytest.mark.parametrize(
    "config, key",
    [
        (HardwareConfig(), "cpu-t1-b1"),
        (HardwareConfig("cpu", threads=CORES, batch_size=64), f"cpu-t{CORES}-b64"),
        (HardwareConfig("cuda", batch_size=64), "cuda-b64"),
        (HardwareConfig("cuda:1", batch_size=8), "cuda:1-b8"),
        (HardwareConfig("cuda", threads=CORES, batch_size=2), f"cuda-t{CORES}-b2"),
    ],
)
def test_key_round_trip(config, key):
    assert config.key == key
    assert HardwareConfig.from_key(key) == config


@pytest.mark.parametrize("key", ["", "cpu-b1", "gpu-t1-b1", "cpu-t1", "cpu-t1-b1-x", "cpu-tx-b1"])
def test_bad_key_shows_format(key):
    with pytest.raises(ValueError, match="expected 'cpu-t<threads>-b<batch>'"):
        HardwareConfig.from_key(key)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"threads": 0}, "threads"),
        ({"threads": -2}, "threads"),
        ({"threads": CORES + 1}, f"{CORES} CPU cores"),
        ({"batch_size": 0}, "batch_size"),
        ({"device": "tpu"}, "unknown hardware device"),
        ({"device": "cuda:x"}, "unknown hardware device"),
        ({"device": "lut-pixel7"}, "lookup-table"),
    ],
)
def test_invalid_config_raises(kwargs, word):
    with pytest.raises(ValueError, match=word):
        HardwareConfig(**kwargs)


def test_from_key_validates():
    with pytest.raises(ValueError, match="cores"):
        HardwareConfig.from_key(f"cpu-t{CORES + 1}-b1")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_config_raises_at_measure_time_without_gpu():
    hw = HardwareConfig("cuda", batch_size=2)  # storing/parsing is fine
    assert HardwareConfig.from_key(hw.key) == hw
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        hw.validate()
    model = conv_net(4)
    threads = torch.get_num_threads()
    with pytest.raises(ValueError, match="use a cpu config"):
        measure_latency(model, SHAPE, hw, min_run_time=FAST)
    assert torch.get_num_threads() == threads
    assert next(model.parameters()).device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_latency_is_measured_and_the_model_comes_back():
    model = conv_net(64)
    threads = torch.get_num_threads()
    small = measure_latency(model, SHAPE, HardwareConfig("cuda", batch_size=1), min_run_time=FAST)
    large = measure_latency(model, SHAPE, HardwareConfig("cuda", batch_size=2048), min_run_time=FAST)
    assert 0 < small.median_ms < large.median_ms
    assert small.repeats >= MIN_REPEATS
    assert torch.get_num_threads() == threads
    assert next(model.parameters()).device.type == "cpu"


def test_default_configs():
    configs = default_hardware_configs()
    keys = [c.key for c in configs]
    assert len(keys) == len(set(keys))
    assert HardwareConfig("cpu", threads=1, batch_size=1) in configs
    assert any(c.device == "cpu" and c.threads == CORES and c.batch_size >= 64 for c in configs)
    for c in configs:
        c.validate()
        assert HardwareConfig.from_key(c.key) == c
    assert any(c.is_cuda for c in configs) == torch.cuda.is_available()


def test_measure_latency_basic():
    model = conv_net(8)
    m = measure_latency(model, SHAPE, HardwareConfig(batch_size=2), min_run_time=FAST)
    assert isinstance(m, LatencyMeasurement)
    assert m.median_ms > 0
    assert m.spread_ms >= 0
    assert m.repeats >= 1
    assert m.relative_spread == pytest.approx(m.spread_ms / m.median_ms)
    assert m.flagged == (m.relative_spread > 0.1 or m.repeats < MIN_REPEATS)


def test_flagging_threshold():
    model = conv_net(4)
    hw = HardwareConfig()
    assert measure_latency(model, SHAPE, hw, min_run_time=FAST, max_relative_spread=-1).flagged
    assert not measure_latency(model, SHAPE, hw, min_run_time=FAST, max_relative_spread=float("inf")).flagged


def test_bigger_model_is_slower():
    hw = HardwareConfig()
    tiny = measure_latency(conv_net(4), SHAPE, hw, min_run_time=FAST)
    big = measure_latency(conv_net(64), SHAPE, hw, min_run_time=FAST)
    assert big.median_ms > tiny.median_ms


def test_state_restored_after_measurement():
    model = conv_net(4)
    model.train()
    model[0].eval()  # mixed per-module flags must come back exactly
    flags = [mod.training for mod in model.modules()]
    threads = torch.get_num_threads()
    measure_latency(model, SHAPE, HardwareConfig(threads=CORES), min_run_time=FAST)
    assert torch.get_num_threads() == threads
    assert [mod.training for mod in model.modules()] == flags
    assert next(model.parameters()).device.type == "cpu"
    assert next(model.parameters()).requires_grad


def test_state_restored_after_exception():
    model = Exploding()
    model.train()
    threads = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"):
        measure_latency(model, SHAPE, HardwareConfig(threads=1), min_run_time=FAST)
    assert torch.get_num_threads() == threads
    assert model.training


@pytest.mark.parametrize("shape", [(), (3, 0, 32), (3, -1, 32), (3, 32.0, 32)])
def test_bad_input_shape(shape):
    with pytest.raises(ValueError, match="input_shape"):
        measure_latency(conv_net(4), shape, HardwareConfig(), min_run_time=FAST)


def test_invalid_hardware_raises_before_running():
    calls = []

    class Spy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(1)
            return x

    bad = HardwareConfig.__new__(HardwareConfig)  # bypass __post_init__ to reach measure time
    object.__setattr__(bad, "device", "cpu")
    object.__setattr__(bad, "threads", CORES + 1)
    object.__setattr__(bad, "batch_size", 1)
    with pytest.raises(ValueError, match="cores"):
        measure_latency(Spy(), SHAPE, bad, min_run_time=FAST)
    assert calls == []


def test_slow_model_still_gets_enough_repeats():
    """A forward slower than min_run_time is still timed MIN_REPEATS times, so its spread means something."""

    class Slow(nn.Module):
        def forward(self, x):
            time.sleep(0.02)
            return x

    m = measure_latency(Slow(), (1,), HardwareConfig(), min_run_time=0.01)
    assert m.repeats >= MIN_REPEATS
    assert m.median_ms >= 20
