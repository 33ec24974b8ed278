import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ToySupernet, tiny_supernet

from nastools.evaluation import COLUMNS, BusyMachineWarning, Evaluator, wide
from nastools.hardware import HardwareConfig, LookupTableHardware, busy_cores, host_id
from nastools.objectives import Objective
from nastools.proxies import naswot
from nastools.store import ResultStore

# Small forward passes on shared cores: one thread is fastest and steadiest (conftest's fixture).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def supernet():
    return tiny_supernet()


class TableToy(ToySupernet):
    """The toy supernet with one look-up-table target whose latency is its width in ms."""

    def __init__(self):
        super().__init__()
        self.predicted = []
        self.table = LookupTableHardware("lut-toy", self._predict)

    def _predict(self, archs):
        self.predicted.append(len(archs))
        return [float(a["width"]) for a in archs]

    def lookup_tables(self):
        return {"lut-toy": self.table}


def test_measure_matches_direct_measurements(supernet, tmp_path):
    archs = supernet.space.sample(3, rng=0)
    table = Evaluator(supernet, tmp_path / "r.sqlite", progress=False).measure(
        archs, ["top1", "macs", "params", "naswot"]
    )
    assert list(table.columns) == COLUMNS
    assert len(table) == 12 and not table.reused.any()
    kinds = dict(zip(table.metric, table.kind))
    assert kinds == {"top1": "validation", "macs": "proxy", "params": "proxy", "naswot": "proxy"}
    assert set(table.host) == {""} and set(table.hardware) == {""}
    by_arch = wide(table).set_index("arch")
    for arch in archs:
        row = by_arch.loc[supernet.space.key(arch)]
        assert row.top1 == pytest.approx(supernet.evaluate(arch))
        assert row.macs == supernet.macs(arch)
        assert row.params == supernet.params(arch)
        assert 0 <= row.top1 <= 100
        inputs = supernet.example_inputs(arch, 64)
        assert row.naswot == pytest.approx(naswot(supernet.subnet(arch), inputs))


def test_proxies_are_measured_before_validation_changes_the_subnet(supernet):
    """top1 recalibrates batch norm in place on the shared sub-network: NASWOT must come first."""
    arch = supernet.space.sample(1, rng=11)[0]
    evaluator = Evaluator(supernet, None, progress=False)
    together = wide(evaluator.measure(arch, ["top1", "naswot"])).iloc[0]
    alone = wide(evaluator.measure(arch, ["naswot"])).iloc[0]
    assert together.naswot == alone.naswot


def test_default_metrics_and_bare_strings(supernet):
    evaluator = Evaluator(supernet, None, progress=False)
    assert [m.name for m in evaluator.metrics()] == ["top1", "macs", "params"]
    assert [m.name for m in evaluator.metrics("macs")] == ["macs"]
    arch = supernet.space.sample(1, rng=0)[0]
    table = evaluator.measure(arch, "macs")  # one arch, one metric, no lists
    assert table.metric.tolist() == ["macs"] and table.value[0] == supernet.macs(arch)
    timed = evaluator.measure(arch, "latency_ms", "cpu-t1-b1")
    assert timed.hardware.tolist() == ["cpu-t1-b1"]


def test_latency_rows_per_hardware(supernet):
    archs = supernet.space.sample(2, rng=1)
    table = Evaluator(supernet, None, min_run_time=0.02, progress=False).measure(
        archs, ["latency_ms"], ["cpu-t1-b1", HardwareConfig(threads=1, batch_size=64)]
    )
    assert set(table.hardware) == {"cpu-t1-b1", "cpu-t1-b64"}
    assert set(table.host) == {host_id()} and set(table.kind) == {"validation"}
    assert (table.value > 0).all() and (table.spread >= 0).all() and (table.repeats >= 1).all()
    b1 = table[table.hardware == "cpu-t1-b1"].value.to_numpy()
    b64 = table[table.hardware == "cpu-t1-b64"].value.to_numpy()
    assert b64.mean() > 1.5 * b1.mean()  # 64 samples per batch take longer than one


def test_duplicate_hardware_is_measured_once(supernet):
    evaluator = Evaluator(supernet, None, min_run_time=0.02, progress=False)
    targets = evaluator.hardware(["cpu-t1-b1", HardwareConfig(), "cpu-t1-b2", HardwareConfig(batch_size=2)])
    assert [t.key for t in targets] == ["cpu-t1-b1", "cpu-t1-b2"]
    table = evaluator.measure(supernet.space.sample(2, rng=1), "latency_ms", ["cpu-t1-b1", HardwareConfig()])
    assert len(table) == 2 and set(table.hardware) == {"cpu-t1-b1"}
    assert evaluator.n_measured == 2


def test_rerun_reuses_store_and_extracts_each_arch_once(supernet, tmp_path, monkeypatch):
    store = ResultStore(tmp_path / "r.sqlite")
    archs = supernet.space.sample(4, rng=2)
    archs = archs + [dict(archs[0])]  # a duplicate is measured once
    calls = []
    original = supernet.subnet
    monkeypatch.setattr(supernet, "subnet", lambda arch: calls.append(1) or original(arch))
    evaluator = Evaluator(supernet, store, progress=False)
    first = evaluator.measure(archs, ["top1", "macs"])
    assert len(calls) == 4 and len(first) == 8 and evaluator.n_measured == 8
    second = evaluator.measure(archs + supernet.space.sample(1, rng=9), ["top1", "macs", "params"])
    # extracted only for a metric that needs the module: 4 lack params (counted from the arch),
    # the new one lacks top1 too (measured on the extracted sub-network, once)
    assert len(calls) == 4 + 1
    reused = second[second.reused]
    assert len(reused) == 8
    assert len(store.measurements()) == 8 + 4 + 3
    merged = first.merge(reused, on=["arch", "metric"])
    assert (merged.value_x == merged.value_y).all()


def test_latency_of_another_host_is_not_reused(supernet, tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    arch = supernet.space.sample(1, rng=3)[0]
    key = supernet.space.key(arch)
    stored = {
        "supernet_id": supernet.supernet_id,
        "checkpoint_hash": supernet.checkpoint_hash,
        "arch": key,
        "metric": "latency_ms",
        "hardware": "cpu-t1-b1",
        "value": 1234.5,
    }
    store.add([stored | {"host": "another machine"}])
    evaluator = Evaluator(supernet, store, min_run_time=0.02, progress=False)
    fresh = evaluator.measure(arch, "latency_ms", "cpu-t1-b1")
    assert not fresh.reused.any() and fresh.value[0] != 1234.5 and fresh.host[0] == host_id()
    again = evaluator.measure(arch, "latency_ms", "cpu-t1-b1")
    assert again.reused.all() and again.value[0] == fresh.value[0]
    assert sorted(store.measurements().host) == sorted(["another machine", host_id()])


def test_values_are_aligned_with_the_archs_and_labelled(supernet):
    evaluator = Evaluator(supernet, None, min_run_time=0.02, progress=False)
    archs = supernet.space.sample(3, rng=4)
    archs = [archs[1], archs[0], archs[1], archs[2]]
    objectives = [Objective("macs", "min"), Objective("latency_ms", "min", HardwareConfig())]
    values = evaluator.values(archs, objectives)
    assert list(values) == ["macs", "latency_ms@cpu-t1-b1"]
    assert values["macs"].tolist() == [supernet.macs(a) for a in archs]
    assert values["latency_ms@cpu-t1-b1"].shape == (4,) and values["latency_ms@cpu-t1-b1"][0] > 0
    assert values["latency_ms@cpu-t1-b1"][0] == values["latency_ms@cpu-t1-b1"][2]
    same = evaluator.values(archs, {"macs": "min"})
    assert np.array_equal(same["macs"], values["macs"])
    assert evaluator.values([], {"macs": "min"})["macs"].shape == (0,)


@pytest.mark.parametrize(
    "objectives, match",
    [
        ({"latency_ms": "min"}, r"'latency_ms' needs a hardware key, e\.g\. 'latency_ms@cpu-t1-b1'"),
        ({"macs@cpu-t1-b1": "min"}, r"'macs' does not depend on hardware; drop '@cpu-t1-b1'"),
        ({"top5": "max"}, "has no metric 'top5'"),
        ({"macs": "smallest"}, r"direction 'smallest'; use one of \['min', 'max'\]"),
        ({"latency_ms@cpu-t01-b1": "min"}, "is written 'cpu-t1-b1'"),
    ],
)
def test_bad_objectives_are_refused(supernet, objectives, match):
    with pytest.raises(ValueError, match=match):
        Evaluator(supernet, None, progress=False).values(supernet.space.sample(1, rng=0), objectives)


def test_free_objectives(supernet):
    evaluator = Evaluator(supernet, None, progress=False)
    archs = supernet.space.sample(3, rng=5)
    free = evaluator.free({"top1": "max", "macs": "min", "params": "min", "latency_ms@cpu-t1-b1": "min"})
    assert sorted(free) == ["macs", "params"]  # closed form; top1 and measured latency cost a validation
    assert free["macs"](archs) == [float(supernet.macs(a)) for a in archs]
    assert free["params"](archs) == [float(supernet.params(a)) for a in archs]
    # the toy supernet counts MACs on the extracted module (the ABC's default): nothing is free
    assert Evaluator(ToySupernet(), None, progress=False).free({"macs": "min", "params": "min"}) == {}


def test_lookup_table_latency_needs_no_subnet_and_is_free():
    toy = TableToy()
    evaluator = Evaluator(toy, None, progress=False)
    archs = [{"width": w, "act": "gelu", "bias": True} for w in (16, 4, 8)]
    table = evaluator.measure(archs, ["latency_ms"], ["lut-toy"])
    assert toy.n_subnets == 0  # nothing was extracted
    assert table.value.tolist() == [float(a["width"]) for a in archs]
    assert (table.spread == 0).all() and (table.repeats == 1).all() and not table.flagged.any()
    assert set(table.host) == {""}
    free = evaluator.free({"latency_ms@lut-toy": "min", "score": "max"})
    assert list(free) == ["latency_ms@lut-toy"]
    assert free["latency_ms@lut-toy"](archs) == [float(a["width"]) for a in archs]
    with pytest.raises(ValueError, match="'lut-other' is a look-up table that supernet 'toy' does not have"):
        evaluator.measure(archs, ["latency_ms"], ["lut-other"])


def test_generic_supernet_defaults_extract_once_per_arch():
    """A supernet with only the three required methods: MACs, params and its metric from one module."""
    toy = ToySupernet()
    archs = [
        {"width": 4, "act": "relu", "bias": True},
        {"width": 16, "act": "gelu", "bias": False},
    ]
    table = Evaluator(toy, None, progress=False).measure(archs, ["score", "macs", "params", "naswot"])
    assert toy.n_subnets == 2
    by_arch = wide(table).set_index("arch")
    small, large = (by_arch.loc[toy.space.key(a)] for a in archs)
    assert (small.score, small.macs, small.params) == (4.0, 8 * 4 + 4 * 2, 8 * 4 + 4 + 4 * 2 + 2)
    assert (large.score, large.macs, large.params) == (16.5, 8 * 16 + 16 * 2, 8 * 16 + 16 * 2 + 2)
    # 4 hidden units cannot give 64 inputs distinct codes: the singular kernel still scores finitely
    assert math.isfinite(small.naswot) and math.isfinite(large.naswot) and small.naswot < large.naswot


def test_latency_groups_cover_every_arch(supernet, tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    archs = supernet.space.sample(5, rng=6)
    evaluator = Evaluator(
        supernet, store, min_run_time=0.01, latency_group=2, latency_rounds=1, progress=False
    )
    table = evaluator.measure(archs, ["macs", "latency_ms"], ["cpu-t1-b1"])
    assert len(table) == 10 and (table[table.metric == "latency_ms"].value > 0).all()
    assert len(store.measurements(metric="latency_ms")) == 5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"metrics": ["top5"]}, r"has no metric 'top5': it declares \['top1'\]; every supernet also has"),
        ({"metrics": ["latency_ms"]}, "needs at least one hardware"),
        ({"metrics": ["latency_ms"], "hardware": ["cpu-t1-b0"]}, "batch_size"),
        (
            {"metrics": ["latency_ms"], "hardware": [f"cpu-t{(os.cpu_count() or 1) + 1}-b1"]},
            "cores",
        ),
        ({"metrics": ["latency_ms"], "hardware": ["gpu-b1"]}, "bad hardware key"),
        ({"metrics": ["macs", "latency_ms"], "hardware": ["lut-note10"]}, "does not have"),
        ({"metrics": ["macs"], "hardware": [3]}, "hardware must be a key"),
        ({"metrics": 5}, "metrics must be a list"),
    ],
)
def test_bad_requests_fail_before_anything_is_stored(supernet, tmp_path, kwargs, match):
    store = ResultStore(tmp_path / "r.sqlite")
    with pytest.raises(ValueError, match=match):
        Evaluator(supernet, store, progress=False).measure(supernet.space.sample(2, rng=0), **kwargs)
    assert len(store.measurements()) == 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"min_run_time": 0}, "min_run_time must be a positive number"),
        ({"max_relative_spread": True}, "max_relative_spread must be a positive number"),
        ({"latency_rounds": 0}, "latency_rounds must be a positive integer"),
        ({"latency_group": 2.0}, "latency_group must be a positive integer"),
        ({"naswot_batch_size": 1}, "naswot_batch_size must be at least 2"),
    ],
)
def test_bad_settings_are_refused(supernet, kwargs, match):
    with pytest.raises(ValueError, match=match):
        Evaluator(supernet, None, **kwargs)


def test_evaluator_needs_a_supernet():
    with pytest.raises(ValueError, match="needs a nastools Supernet, got str.*load_supernet"):
        Evaluator("digits-mbv3")


def test_store_path_opens_a_store(supernet, tmp_path):
    evaluator = Evaluator(supernet, tmp_path / "sub" / "r.sqlite", progress=False)
    assert isinstance(evaluator.store, ResultStore)
    evaluator.measure(supernet.space.sample(1, rng=0), "macs")
    assert len(ResultStore(tmp_path / "sub" / "r.sqlite").measurements()) == 1


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
    assert set(frame["host"]) == {host_id("cuda")}
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
        import torch
        torch.set_num_threads(1)
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from helpers import tiny_supernet
        from nastools.evaluation import Evaluator
        supernet = tiny_supernet()
        archs = supernet.space.sample(10, rng=7)
        evaluator = Evaluator(supernet, {str(path)!r}, progress=False)
        add, added = evaluator.store.add, []

        def add_then_block_after_four(rows):
            added.extend(rows)
            stored = add(rows)
            if len(added) == 4:  # say so, then wait (never to return) for the parent to kill this process
                print("stored 4", flush=True)
                sys.stdin.readline()
            return stored

        evaluator.store.add = add_then_block_after_four
        evaluator.measure(archs, ["top1", "macs"])
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        signalled = process.stdout.readline()  # waits for the child's word, however long that takes
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdin.close()
        process.stdout.close()
    assert signalled == "stored 4\n", f"the child ended (status {process.returncode}) before it was killed"
    store = ResultStore(path)
    before = store.measurements()
    assert len(before) == 4, "each measurement is committed as it is made, and the child stopped after 4"
    table = Evaluator(supernet, store, progress=False).measure(
        supernet.space.sample(10, rng=7), ["top1", "macs"]
    )
    after = store.measurements()
    assert table.reused.sum() == len(before)
    assert len(after) == 20
    assert not after.duplicated(["arch", "metric"]).any()


def test_proxy_features_give_closed_form_proxies_as_predictor_columns(supernet):
    evaluator = Evaluator(supernet, None, progress=False)
    archs = supernet.space.sample(3, rng=0)
    features = evaluator.proxy_features(["params", "macs"])(archs)
    assert features.shape == (3, 2)
    assert features[:, 0].tolist() == [supernet.params(a) for a in archs]
    assert features[:, 1].tolist() == [supernet.macs(a) for a in archs]
    with pytest.raises(ValueError, match="'naswot' cannot be a predictor feature.*objective instead"):
        evaluator.proxy_features("naswot")
    with pytest.raises(ValueError, match="no metric 'flops'"):
        evaluator.proxy_features(["flops"])


@pytest.fixture
def spinning():
    """Another process keeping a core busy, running once busy_cores sees it (waits for that, no clock)."""
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        for _ in range(100):
            if (busy_cores(0.3) or 0.0) >= 0.5:
                break
        else:
            pytest.fail("busy_cores never saw a process spinning on a core")
        yield child
    finally:
        child.kill()
        child.wait()


@pytest.mark.skipif(busy_cores(0.01) is None, reason="busy_cores reads /proc/stat (Linux)")
def test_a_process_spinning_on_a_core_is_seen_and_latency_timing_warns_first(supernet, spinning):
    evaluator = Evaluator(supernet, progress=False, busy_interval=1.0)
    with pytest.warns(BusyMachineWarning, match="cores are busy with other processes.*look-up-table"):
        table = evaluator.measure(supernet.space.sample(1, rng=0), ["latency_ms"], ["cpu-t1-b1"])
    assert evaluator.busy >= 0.5 and len(table) == 1  # it warns, and still measures (flagged or not)


def test_noisy_timing_on_idle_cores_warns_and_a_steady_probe_does_not(supernet, monkeypatch):
    # the host's shared cache in use by other machines cannot be staged here: the probe's reading is set
    import warnings

    import nastools.evaluation as evaluation

    monkeypatch.setattr(evaluation, "busy_cores", lambda interval: 0.0)
    evaluator = Evaluator(supernet, progress=False, busy_interval=0.05)
    arch = supernet.space.sample(1, rng=0)
    monkeypatch.setattr(evaluation, "timing_noise", lambda seconds: 0.41)
    with pytest.warns(BusyMachineWarning, match="probe varies 41.0% .* no process here keeps a core busy"):
        evaluator.measure(arch, ["latency_ms"], ["cpu-t1-b1"])
    assert evaluator.timing_noise == 0.41
    monkeypatch.setattr(evaluation, "timing_noise", lambda seconds: 0.35)
    with warnings.catch_warnings():  # a search times every generation: said once per Evaluator
        warnings.simplefilter("error", BusyMachineWarning)
        evaluator.measure(supernet.space.sample(1, rng=1), ["latency_ms"], ["cpu-t1-b1"])
    assert evaluator.timing_noise == 0.35  # but still read each time
    steady = Evaluator(supernet, progress=False, busy_interval=0.05)
    monkeypatch.setattr(evaluation, "timing_noise", lambda seconds: 0.03)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BusyMachineWarning)
        steady.measure(arch, ["latency_ms"], ["cpu-t1-b1"])
    assert steady.timing_noise == 0.03
