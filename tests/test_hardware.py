import os
import time

import numpy as np
import pytest
import torch
from helpers import ToySupernet
from torch import nn

from nastools.hardware import (
    MIN_REPEATS,
    Hardware,
    HardwareConfig,
    LatencyMeasurement,
    LookupTableHardware,
    default_hardware_configs,
    host_id,
    measure_latencies,
    measure_latency,
    resolve_hardware,
)

FAST = 0.05
CORES = os.cpu_count() or 1


def image(batch=1):
    return torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))


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


class TwoInputs(nn.Module):
    """A model with token ids and a mask as positional inputs (a language model's signature)."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(50, 16)
        self.seen = []

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self.seen.append((tokens.dtype, tuple(tokens.shape), tuple(mask.shape)))
        return (self.embedding(tokens) * mask.unsqueeze(-1)).sum(1)


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
    assert resolve_hardware(key) == config


@pytest.mark.parametrize(
    "key",
    [
        "",
        "cpu-b1",
        "gpu-t1-b1",
        "cpu-t1",
        "cpu-t1-b1-x",
        "cpu-tx-b1",
        " cpu-t1-b1",
        "cpu-t1-b1 ",
        "xcpu-t1-b1",
    ],
)
def test_bad_key_shows_format(key):
    with pytest.raises(ValueError, match="expected 'cpu-t<threads>-b<batch>'"):
        HardwareConfig.from_key(key)


@pytest.mark.parametrize("key, written", [("cpu-t01-b1", "cpu-t1-b1"), ("cuda-t1-b64", "cuda-b64")])
def test_key_in_another_spelling_is_refused(key, written):
    """Latencies are stored by key: two spellings of one config would never find each other's rows."""
    with pytest.raises(ValueError, match=f"is written '{written}'"):
        HardwareConfig.from_key(key)


def test_lookup_table_key_is_not_a_measured_config():
    with pytest.raises(ValueError, match="look-up-table target.*resolve_hardware"):
        HardwareConfig.from_key("lut-note10")


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"threads": 0}, "threads"),
        ({"threads": -2}, "threads"),
        ({"threads": True}, "threads must be a positive integer, got True"),
        ({"threads": 1.0}, "threads must be a positive integer"),
        ({"threads": CORES + 1}, f"{CORES} CPU cores"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": False}, "batch_size must be a positive integer, got False"),
        ({"batch_size": "8"}, "batch_size"),
        ({"device": "tpu"}, "unknown hardware device"),
        ({"device": "cuda:x"}, "unknown hardware device"),
        ({"device": "cpu:0"}, "unknown hardware device"),
        ({"device": 0}, "device must be a string"),
        ({"device": "lut-pixel7"}, "look-up-table target"),
    ],
)
def test_invalid_config_raises(kwargs, word):
    with pytest.raises(ValueError, match=word):
        HardwareConfig(**kwargs)


def test_numpy_integers_are_accepted():
    config = HardwareConfig(threads=np.int64(1), batch_size=np.int32(64))
    assert config == HardwareConfig(threads=1, batch_size=64) and config.key == "cpu-t1-b64"
    assert type(config.threads) is int and type(config.batch_size) is int


def test_from_key_validates():
    with pytest.raises(ValueError, match="cores"):
        HardwareConfig.from_key(f"cpu-t{CORES + 1}-b1")


def test_hosts():
    assert host_id().endswith(f"x{os.cpu_count()}") and host_id() == host_id("cpu")
    assert HardwareConfig().host() == host_id()
    assert HardwareConfig().needs_subnet
    table = LookupTableHardware("lut-toy", lambda archs: [1.0] * len(archs))
    assert table.host() == "" and not table.needs_subnet  # a table is the same on every machine
    assert isinstance(table, Hardware) and isinstance(HardwareConfig(), Hardware)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_config_raises_at_measure_time_without_gpu():
    hw = HardwareConfig("cuda", batch_size=2)  # storing/parsing is fine
    assert HardwareConfig.from_key(hw.key) == hw
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        hw.validate()
    model = conv_net(4)
    threads = torch.get_num_threads()
    with pytest.raises(ValueError, match="use a cpu config"):
        measure_latency(model, image(2), hw, min_run_time=FAST)
    assert torch.get_num_threads() == threads
    assert next(model.parameters()).device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_latency_is_measured_and_the_model_comes_back():
    model = conv_net(64)
    threads = torch.get_num_threads()
    small = measure_latency(model, image(1), HardwareConfig("cuda", batch_size=1), min_run_time=FAST)
    large = measure_latency(model, image(2048), HardwareConfig("cuda", batch_size=2048), min_run_time=FAST)
    assert 0 < small.median_ms < large.median_ms
    assert small.repeats >= MIN_REPEATS
    assert torch.get_num_threads() == threads
    assert next(model.parameters()).device.type == "cpu"
    assert HardwareConfig("cuda").host().startswith(torch.cuda.get_device_name())


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
    m = measure_latency(model, image(2), HardwareConfig(batch_size=2), min_run_time=FAST)
    assert isinstance(m, LatencyMeasurement)
    assert m.median_ms > 0
    assert m.spread_ms >= 0
    assert m.repeats >= MIN_REPEATS
    assert m.relative_spread == pytest.approx(m.spread_ms / m.median_ms)
    assert m.flagged == (m.relative_spread > 0.1 or m.repeats < MIN_REPEATS)


def test_inputs_are_passed_as_given():
    """Inputs are example tensors, any number and dtype: token ids and a mask here."""
    model = TwoInputs()
    tokens = torch.randint(0, 50, (4, 7))
    mask = torch.ones(4, 7)
    m = measure_latency(model, (tokens, mask), HardwareConfig(batch_size=4), min_run_time=FAST)
    assert m.median_ms > 0
    assert set(model.seen) == {(torch.int64, (4, 7), (4, 7))}


@pytest.mark.parametrize("inputs", [(), [], (3, 32, 32), ((1, 3, 32, 32),), "x", (torch.zeros(1), None)])
def test_bad_inputs_are_refused(inputs):
    with pytest.raises(ValueError, match="example inputs must be a tensor or a non-empty tuple of tensors"):
        measure_latency(conv_net(4), inputs, HardwareConfig(), min_run_time=FAST)


def test_measure_latencies_keeps_the_models_order():
    tiny, big = conv_net(4), conv_net(64)
    x = image()
    timings = measure_latencies([big, tiny, big], [x, x, x], HardwareConfig(), rounds=2, min_run_time=FAST)
    assert len(timings) == 3
    # about 150 times the multiply-accumulates: no machine makes these two swap
    assert timings[0].median_ms > timings[1].median_ms < timings[2].median_ms
    assert all(t.repeats >= MIN_REPEATS for t in timings)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"rounds": 0}, "rounds must be a positive integer"),
        ({"rounds": True}, "rounds must be a positive integer"),
        ({"min_run_time": 0}, "min_run_time must be a positive number"),
        ({"min_run_time": "1"}, "min_run_time must be a positive number"),
    ],
)
def test_bad_timing_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        measure_latencies([conv_net(4)], [image()], HardwareConfig(), **({"min_run_time": FAST} | kwargs))


def test_models_and_inputs_must_pair_up():
    with pytest.raises(ValueError, match="2 models but 1 input batches"):
        measure_latencies([conv_net(4), conv_net(4)], [image()], HardwareConfig(), min_run_time=FAST)


def test_flagging_threshold():
    model = conv_net(4)
    hw = HardwareConfig()
    assert measure_latency(model, image(), hw, min_run_time=FAST, max_relative_spread=-1).flagged
    assert not measure_latency(
        model, image(), hw, min_run_time=FAST, max_relative_spread=float("inf")
    ).flagged


def test_bigger_model_is_slower():
    hw = HardwareConfig()
    tiny = measure_latency(conv_net(4), image(), hw, min_run_time=FAST)
    big = measure_latency(conv_net(64), image(), hw, min_run_time=FAST)
    assert big.median_ms > tiny.median_ms


def test_state_restored_after_measurement():
    model = conv_net(4)
    model.train()
    model[0].eval()  # mixed per-module flags must come back exactly
    flags = [mod.training for mod in model.modules()]
    threads = torch.get_num_threads()
    measure_latency(model, image(), HardwareConfig(threads=CORES), min_run_time=FAST)
    assert torch.get_num_threads() == threads
    assert [mod.training for mod in model.modules()] == flags
    assert next(model.parameters()).device.type == "cpu"
    assert next(model.parameters()).requires_grad


def test_state_restored_after_exception():
    model = Exploding()
    model.train()
    threads = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"):
        measure_latency(model, image(), HardwareConfig(threads=1), min_run_time=FAST)
    assert torch.get_num_threads() == threads
    assert model.training


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
        measure_latency(Spy(), image(), bad, min_run_time=FAST)
    assert calls == []


def test_slow_model_still_gets_enough_repeats():
    """A forward slower than min_run_time is still timed MIN_REPEATS times, so its spread means something."""

    class Slow(nn.Module):
        def forward(self, x):
            time.sleep(0.02)
            return x

    m = measure_latency(Slow(), torch.zeros(1), HardwareConfig(), min_run_time=0.01)
    assert m.repeats >= MIN_REPEATS
    assert m.median_ms >= 20


def test_hardware_config_times_the_supernets_example_inputs():
    supernet = ToySupernet()
    asked = []
    original = supernet.example_inputs
    supernet.example_inputs = lambda arch, batch_size: asked.append(batch_size) or original(arch, batch_size)
    archs = supernet.space.sample(2, rng=0)
    subnets = [supernet.subnet(a) for a in archs]
    timings = HardwareConfig(batch_size=3).latencies(supernet, archs, subnets, rounds=1, min_run_time=FAST)
    assert len(timings) == 2 and all(t.median_ms > 0 for t in timings)
    assert asked == [3, 3]


def test_lookup_table_hardware():
    checked = []
    table = LookupTableHardware(
        "lut-toy-1.0",
        lambda archs: [1.0 + a["width"] for a in archs],
        description="a toy",
        check=lambda: checked.append(1),
    )
    assert table.key == "lut-toy-1.0" and repr(table) == "LookupTableHardware('lut-toy-1.0')"
    timings = table.latencies(None, [{"width": 2}, {"width": 5}], [None, None])
    assert [(t.median_ms, t.spread_ms, t.repeats, t.flagged) for t in timings] == [
        (3.0, 0.0, 1, False),
        (6.0, 0.0, 1, False),
    ]
    assert checked == []
    table.validate()
    assert checked == [1]
    short = LookupTableHardware("lut-short", lambda archs: [1.0])
    with pytest.raises(ValueError, match="lut-short gave 1 latencies for 2 archs"):
        short.latencies(None, [{}, {}], [None, None])


@pytest.mark.parametrize("key", ["lut-", "lut-Note10", "lut-a b", "note10", "lut-_x", 7])
def test_lookup_table_keys_are_checked(key):
    with pytest.raises(ValueError, match="look-up-table hardware key"):
        LookupTableHardware(key, lambda archs: [])


def test_resolve_hardware():
    table = LookupTableHardware("lut-toy", lambda archs: [2.0] * len(archs))

    class WithTable(ToySupernet):
        def lookup_tables(self):
            return {"lut-toy": table}

    supernet = WithTable()
    assert resolve_hardware("lut-toy", supernet) is table
    assert resolve_hardware(table) is table
    config = HardwareConfig(batch_size=4)
    assert resolve_hardware(config, supernet) is config
    assert resolve_hardware("cpu-t1-b4", supernet) == config
    with pytest.raises(
        ValueError, match=r"'lut-other' is a look-up table that supernet 'toy' does not have.*'lut-toy'"
    ):
        resolve_hardware("lut-other", supernet)
    with pytest.raises(ValueError, match=r"supernet '\(none given\)'"):
        resolve_hardware("lut-toy")
    with pytest.raises(ValueError, match="hardware must be a key"):
        resolve_hardware(64)
