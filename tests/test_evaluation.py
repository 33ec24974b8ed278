import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from helpers import tiny_supernet

from nastools.evaluation import Evaluator, wide
from nastools.hardware import HardwareConfig
from nastools.store import ResultStore


@pytest.fixture(scope="module")
def supernet():
    return tiny_supernet()


def test_measure_matches_direct_measurements(supernet, tmp_path):
    archs = supernet.space.sample(3, rng=0)
    table = Evaluator(supernet, tmp_path / "r.sqlite", progress=False).measure(
        archs, ["top1", "macs", "params"]
    )
    assert len(table) == 9 and not table.reused.any()
    by_arch = wide(table).set_index("arch")
    for arch in archs:
        row = by_arch.loc[supernet.space.key(arch)]
        assert row.top1 == pytest.approx(supernet.evaluate(arch))
        assert row.macs == supernet.macs(arch)
        assert row.params == supernet.params(arch)
        assert 0 <= row.top1 <= 100


def test_latency_rows_per_hardware(supernet):
    archs = supernet.space.sample(2, rng=1)
    table = Evaluator(supernet, None, min_run_time=0.02, progress=False).measure(
        archs, ["latency_ms"], ["cpu-t1-b1", HardwareConfig(threads=1, batch_size=64)]
    )
    assert set(table.hardware) == {"cpu-t1-b1", "cpu-t1-b64"}
    assert (table.value > 0).all() and (table.spread >= 0).all() and (table.repeats >= 1).all()
    b1 = table[table.hardware == "cpu-t1-b1"].value.to_numpy()
    b64 = table[table.hardware == "cpu-t1-b64"].value.to_numpy()
    assert b64.mean() > 1.5 * b1.mean()  # 64 samples per batch take longer than one


def test_rerun_reuses_store_and_extracts_each_arch_once(supernet, tmp_path, monkeypatch):
    store = ResultStore(tmp_path / "r.sqlite")
    archs = supernet.space.sample(4, rng=2)
    archs = archs + [dict(archs[0])]  # a duplicate is measured once
    calls = []
    original = supernet.subnet
    monkeypatch.setattr(supernet, "subnet", lambda arch: calls.append(1) or original(arch))
    evaluator = Evaluator(supernet, store, progress=False)
    first = evaluator.measure(archs, ["top1", "macs"])
    assert len(calls) == 4 and len(first) == 8
    second = evaluator.measure(archs + supernet.space.sample(1, rng=9), ["top1", "macs", "params"])
    # extracted only for a metric that needs the module: 4 lack params (counted from the arch),
    # the new one lacks top1 too (measured on the extracted sub-network, once)
    assert len(calls) == 4 + 1
    reused = second[second.reused]
    assert len(reused) == 8
    assert len(store.measurements()) == 8 + 4 + 3
    merged = first.merge(reused, on=["arch", "metric"])
    assert (merged.value_x == merged.value_y).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"metrics": ["top5"]}, "unknown metric.*top5"),
        ({"metrics": ["latency_ms"]}, "needs at least one hardware"),
        ({"metrics": ["latency_ms"], "hardware": ["cpu-t1-b0"]}, "batch_size"),
        (
            {"metrics": ["latency_ms"], "hardware": [f"cpu-t{(os.cpu_count() or 1) + 1}-b1"]},
            "cores",
        ),
        ({"metrics": ["latency_ms"], "hardware": ["gpu-b1"]}, "bad hardware key"),
    ],
)
def test_bad_requests_fail_before_anything_is_stored(supernet, tmp_path, kwargs, match):
    store = ResultStore(tmp_path / "r.sqlite")
    with pytest.raises(ValueError, match=match):
        Evaluator(supernet, store, progress=False).measure(supernet.space.sample(2, rng=0), **kwargs)
    assert len(store.measurements()) == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_config_without_gpu_is_refused(supernet, tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        Evaluator(supernet, store, progress=False).measure(
            supernet.space.sample(1, rng=0), ["macs", "latency_ms"], ["cuda-b1"]
        )
    assert len(store.measurements()) == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_latency_is_stored_under_its_key(supernet, tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    archs = supernet.space.sample(2, rng=0)
    frame = Evaluator(supernet, store, progress=False).measure(archs, ["latency_ms"], ["cuda-b1", "cuda-b64"])
    assert set(frame["hardware"]) == {"cuda-b1", "cuda-b64"}
    assert (frame["value"] > 0).all()
    assert len(store.measurements()) == 4


def test_one_bad_arch_among_many_stores_nothing(supernet, tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    archs = supernet.space.sample(3, rng=0)
    archs[2] = archs[2] | {"ks_3": 9}
    with pytest.raises(ValueError, match=r"ks_3.*9.*\[3, 5, 7\]"):
        Evaluator(supernet, store, progress=False).measure(archs, ["macs"])
    assert len(store.measurements()) == 0


def test_killed_measurement_resumes_without_loss_or_repeats(supernet, tmp_path):
    path = tmp_path / "r.sqlite"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from helpers import tiny_supernet
        from nastools.evaluation import Evaluator
        supernet = tiny_supernet()
        archs = supernet.space.sample(20, rng=7)
        Evaluator(supernet, {str(path)!r}, progress=False).measure(archs, ["top1", "macs"])
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 60
    stored = 0
    while time.time() < deadline and stored < 6:
        time.sleep(0.2)
        if path.exists():
            stored = len(ResultStore(path).measurements())
    process.send_signal(signal.SIGKILL)
    process.wait()
    store = ResultStore(path)
    before = store.measurements()
    assert 6 <= len(before) < 40, "the child should have been killed mid-way"
    table = Evaluator(supernet, store, progress=False).measure(
        supernet.space.sample(20, rng=7), ["top1", "macs"]
    )
    after = store.measurements()
    assert table.reused.sum() == len(before)
    assert len(after) == 40
    assert not after.duplicated(["arch", "metric"]).any()
