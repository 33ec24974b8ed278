"""Metrics, objectives and the NASWOT proxy."""

import math

import pytest
import torch
from torch import nn

from nastools.hardware import HardwareConfig, LookupTableHardware
from nastools.metrics import (
    ENERGY,
    GENERIC_METRICS,
    KINDS,
    LATENCY,
    MACS,
    NASWOT,
    PARAMS,
    PEAK_MEMORY,
    Metric,
)
from nastools.objectives import Objective, column_label, parse_objectives
from nastools.proxies import naswot


def test_generic_metrics():
    names = ["macs", "params", "naswot", "latency_ms", "peak_memory_mb", "energy_mj"]
    assert [m.name for m in GENERIC_METRICS] == names
    assert {m.kind for m in (MACS, PARAMS, NASWOT)} == {"proxy"} and LATENCY.kind == "validation"
    assert all(m.per_hardware and m.kind == "validation" for m in (LATENCY, PEAK_MEMORY, ENERGY))
    assert not any(m.per_hardware for m in (MACS, PARAMS, NASWOT))
    assert PEAK_MEMORY.label == "peak_memory_mb (MB)" and ENERGY.label == "energy_mj (mJ)"
    assert PEAK_MEMORY.direction == ENERGY.direction == "min"
    assert NASWOT.direction == "max" and MACS.direction == PARAMS.direction == LATENCY.direction == "min"
    assert KINDS == ("validation", "prediction", "proxy")
    assert LATENCY.label == "latency_ms (ms)" and Metric("score", "max").label == "score"


def test_bounds_are_floats():
    assert Metric("top1", "max", "%", bounds=(0, 100)).bounds == (0.0, 100.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "top-1", "direction": "max"}, "identifier"),
        ({"name": "top1", "direction": "up"}, "direction 'up'; use 'min' or 'max'"),
        ({"name": "top1", "direction": "max", "kind": "guess"}, "kind 'guess'"),
        ({"name": "top1", "direction": "max", "bounds": (100, 0)}, "low < high"),
        ({"name": "top1", "direction": "max", "bounds": (0, float("inf"))}, "finite"),
    ],
)
def test_bad_metrics_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Metric(**kwargs)


def test_objective_label_and_sign():
    latency = Objective("latency_ms", "min", "cpu-t1-b1")
    assert latency.label == "latency_ms@cpu-t1-b1" and latency.sign == 1.0
    top1 = Objective("top1", "max")
    assert top1.label == "top1" and top1.sign == -1.0 and top1.hardware is None
    # a hardware target is kept by its key, so objectives compare and hash by value
    assert Objective("latency_ms", "min", HardwareConfig(batch_size=4)) == Objective(
        "latency_ms", "min", "cpu-t1-b4"
    )
    table = LookupTableHardware("lut-toy", lambda archs: [])
    assert Objective("latency_ms", "min", table).hardware == "lut-toy"
    assert column_label("top1", "") == column_label("top1", None) == "top1"
    assert Objective.from_label("latency_ms@lut-note10", "min") == Objective(
        "latency_ms", "min", "lut-note10"
    )
    assert Objective.from_label("macs", "min") == Objective("macs", "min")


@pytest.mark.parametrize(
    "args, match",
    [
        (("top1", "maximise"), r"'top1' has direction 'maximise'; use one of \['min', 'max'\]"),
        (("top1", "MAX"), "direction 'MAX'"),
        (("top-1", "max"), "metric name such as 'top1'"),
        (("latency_ms", "min", ""), "bad hardware key ''"),
        (("latency_ms", "min", "a@b"), "bad hardware key 'a@b'"),
        (("latency_ms", "min", " cpu-t1-b1"), "bad hardware key"),
        (("latency_ms", "min", 5), "bad hardware key 5"),
    ],
)
def test_bad_objectives_are_one_line_errors(args, match):
    with pytest.raises(ValueError, match=match) as info:
        Objective(*args)
    assert "\n" not in str(info.value)


def test_parse_objectives():
    spec = {"top1": "max", "latency_ms@cpu-t1-b1": "min"}
    parsed = parse_objectives(spec)
    assert parsed == (Objective("top1", "max"), Objective("latency_ms", "min", "cpu-t1-b1"))
    assert parse_objectives(parsed) == parsed
    assert parse_objectives([("top1", "max"), ("latency_ms", "min", "cpu-t1-b1")]) == parsed


@pytest.mark.parametrize(
    "spec, match",
    [
        ("top1", "got the string 'top1'"),
        ({}, "at least one objective is needed"),
        ([], "at least one objective is needed"),
        ([("top1", "max"), Objective("top1", "min")], r"objective\(s\) \['top1'\] given more than once"),
        ([["top1"]], "cannot read an objective from"),
        ({"latency_ms@": "min"}, "names no hardware after '@'"),
        ({"top1": "best"}, "direction 'best'"),
    ],
)
def test_bad_objective_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_objectives(spec)


def _mlp(width):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(8, width), nn.ReLU(), nn.Linear(width, width), nn.GELU(), nn.Linear(width, 2)
    )


def test_naswot_reads_the_activation_codes():
    x = torch.randn(16, 8, generator=torch.Generator().manual_seed(1))
    net = _mlp(64)
    net.train()
    score = naswot(net, x)
    assert math.isfinite(score) and net.training  # flags restored
    assert naswot(net, (x,)) == score  # a tuple of inputs is the same
    # the kernel by hand: units agreeing on two inputs, summed over both activation layers
    codes = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: codes.append((o > 0).double())) for m in (net[1], net[3])
    ]
    with torch.no_grad():
        net.eval()(x)
    for hook in hooks:
        hook.remove()
    kernel = sum(c @ c.T + (1 - c) @ (1 - c).T for c in codes)
    assert score == pytest.approx(float(torch.linalg.slogdet(kernel)[1]), abs=1e-3)


def test_naswot_separates_wide_from_narrow_and_stays_finite_when_singular():
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(2))
    narrow, wide = naswot(_mlp(2), x), naswot(_mlp(256), x)
    assert math.isfinite(narrow) and narrow < wide  # 2+2 units cannot tell 64 inputs apart


def test_naswot_needs_a_batch_and_activation_modules():
    with pytest.raises(ValueError, match="give more than one sample, got 1"):
        naswot(_mlp(4), torch.randn(1, 8))
    with pytest.raises(ValueError, match="NASWOT needs activation modules.*Sequential has none"):
        naswot(nn.Sequential(nn.Linear(8, 2)), torch.randn(4, 8))
