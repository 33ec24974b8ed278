"""Per-hardware metrics, each with its own measurer, on what the supernet's workload runs.

No assertion here depends on the machine's speed: memory is what the allocator saw, energy comes
from a counter the test controls, and timing is checked by counting calls.
"""

import math
import warnings

import pytest
import torch
from helpers import TOY_INPUTS, ToySupernet
from torch import nn

import nastools.evaluation as evaluation
from nastools.evaluation import Evaluator, wide
from nastools.hardware import (
    MEASURERS,
    MIN_REPEATS,
    EnergyMeasurement,
    HardwareConfig,
    LookupTableHardware,
    MemoryMeasurement,
    RaplCounter,
    _energy,
    energy_counter,
    host_id,
    measure_energy,
    measure_peak_memory,
    resident_bytes,
    time_workloads,
)
from nastools.metrics import GENERIC_METRICS, Metric
from nastools.store import ResultStore
from nastools.supernet import count_params, load_supernet

pytestmark = pytest.mark.usefixtures("one_thread")

MB = 2**20
FAST = 0.02


class Allocating(nn.Module):
    """A forward pass that allocates ``mb`` MB (untouched: nothing to wait for) besides its output."""

    def __init__(self, mb: int, at_once: int = 1) -> None:
        super().__init__()
        self.linear = nn.Linear(TOY_INPUTS, 2)
        self.mb, self.at_once = mb, at_once

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        held = [torch.empty(self.mb * MB, dtype=torch.uint8) for _ in range(self.at_once)]
        del held
        return self.linear(x)


class MemoryToy(ToySupernet):
    """A supernet that declares its own per-hardware ``peak_memory_mb``: sub-networks allocate 16 MB."""

    metrics = (*ToySupernet.metrics, Metric("peak_memory_mb", "min", "MB", per_hardware=True))

    def subnet(self, arch):
        self.space.validate(arch)
        self.n_subnets += 1
        return Allocating(16).eval()


class PowerToy(ToySupernet):
    """A supernet that declares a per-hardware metric nothing measures."""

    metrics = (*ToySupernet.metrics, Metric("power_w", "min", "W", per_hardware=True))


class CountingNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(TOY_INPUTS, 2)
        self.calls = 0
        self.modes = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.modes.add(self.training)
        return self.linear(x)


class TwiceToy(ToySupernet):
    """A supernet whose workload runs the sub-network twice per request (as a decoder runs steps)."""

    def __init__(self) -> None:
        super().__init__()
        self.subnets: list[CountingNet] = []
        self.requests = 0
        self.asked: list[int] = []

    def subnet(self, arch):
        self.space.validate(arch)
        self.subnets.append(CountingNet().eval())
        return self.subnets[-1]

    def workload(self, subnet, arch, batch_size):
        self.asked.append(batch_size)

        def request(x):
            self.requests += 1
            return subnet(subnet(x)[:, :1].expand(-1, TOY_INPUTS))

        return request, self.example_inputs(arch, batch_size)


def fake_rapl(root, start_uj=0, range_uj=2**40):
    """A RAPL folder like Linux's: one package zone, and a sub-zone that must not be added to it."""
    for zone, value in (("intel-rapl:0", start_uj), ("intel-rapl:0:0", 7 * 10**9)):
        (root / zone).mkdir(parents=True)
        (root / zone / "energy_uj").write_text(f"{value}\n")
        (root / zone / "max_energy_range_uj").write_text(f"{range_uj}\n")
    return root / "intel-rapl:0" / "energy_uj"


def spending(counter_file, microjoules=1000):
    """A callable that adds ``microjoules`` to a fake RAPL counter each time it runs."""

    def spend(x):
        counter_file.write_text(f"{int(counter_file.read_text()) + microjoules}\n")
        return x

    return spend


class EnergyToy(ToySupernet):
    """A supernet whose every request spends exactly 1 mJ on a fake RAPL counter."""

    def __init__(self, counter_file) -> None:
        super().__init__()
        self.counter_file = counter_file

    def workload(self, subnet, arch, batch_size):
        return spending(self.counter_file), self.example_inputs(arch, batch_size)


ARCH = {"width": 8, "act": "relu", "bias": True}


# --- the regression: per-hardware metrics were all timed as latency -------------------------------------


def test_a_declared_memory_metric_stores_memory_not_a_timing(tmp_path):
    toy = MemoryToy()
    store = ResultStore(tmp_path / "r.sqlite")
    table = Evaluator(toy, store, progress=False, busy_interval=0).measure(
        ARCH, ["peak_memory_mb"], ["cpu-t1-b1"]
    )
    (row,) = table.itertuples()
    assert row.metric == "peak_memory_mb" and row.hardware == "cpu-t1-b1" and row.host == host_id()
    # 16 MB allocated by the forward pass, plus a few hundred bytes of weights, input and output;
    # a timing of allocating untouched memory (microseconds) is nowhere near
    assert 16 <= row.value < 16.01
    assert row.repeats == 3 and row.spread == 0 and not row.flagged
    stored = store.measurements(metric="peak_memory_mb", hardware="cpu-t1-b1")
    assert stored.value.tolist() == [row.value] and stored.repeats.tolist() == [3]


def test_a_per_hardware_metric_without_a_measurer_is_refused_before_measuring(tmp_path):
    toy = PowerToy()
    store = ResultStore(tmp_path / "r.sqlite")
    with pytest.raises(
        ValueError,
        match=r"^hardware 'cpu-t1-b1' has no measurer for 'power_w': it measures latency_ms, peak_memory_mb, "
        "energy_mj$",
    ):
        Evaluator(toy, store, progress=False, busy_interval=0).measure(
            ARCH, ["score", "power_w"], ["cpu-t1-b1"]
        )
    assert toy.n_subnets == 0 and store.measurements().empty


# --- peak memory -----------------------------------------------------------------------------------------


def test_memory_of_digits_mbv3_grows_from_the_smallest_to_the_largest_subnetwork():
    supernet = load_supernet("digits-mbv3")
    smallest, largest = supernet.extremes()
    table = Evaluator(supernet, None, progress=False, busy_interval=0).measure(
        [smallest, largest], ["peak_memory_mb"], ["cpu-t1-b64"]
    )
    assert set(table.metric) == {"peak_memory_mb"} and set(table.kind) == {"validation"}
    small, large = table.value.tolist()
    weights_mb = [count_params(supernet.subnet(arch)) * 4 / MB for arch in (smallest, largest)]
    # more than weights and inputs alone: the activations of a batch of 64 were seen, and plausibly sized
    for value, arch, weights in zip((small, large), (smallest, largest), weights_mb):
        inputs_mb = resident_bytes(None, supernet.example_inputs(arch, 64)) / MB
        assert weights + inputs_mb < value < 1000
    assert large > 2 * small


def test_a_workload_allocating_n_mb_peaks_at_n_mb_plus_its_weights_and_inputs():
    x = torch.zeros(4, TOY_INPUTS)
    one, two_at_once = Allocating(8), Allocating(8, at_once=2)
    results = measure_peak_memory([(one, (x,)), (two_at_once, (x,))], HardwareConfig())
    assert all(isinstance(r, MemoryMeasurement) and r.repeats == 3 and r.spread_mb == 0 for r in results)
    resident = resident_bytes(one, (x,)) / MB
    assert 8 + resident <= results[0].peak_mb < 8.01 + resident
    assert 16 + resident <= results[1].peak_mb < 16.01 + resident


def test_a_tensor_freed_before_the_next_is_allocated_does_not_add_up():
    def in_turn(x):
        for _ in range(3):
            block = torch.empty(8 * MB, dtype=torch.uint8)
            del block
        return x

    (memory,) = measure_peak_memory([(in_turn, (torch.zeros(1),))], HardwareConfig())
    assert 8 <= memory.peak_mb < 8.01


def test_weights_count_once_and_memory_restores_the_module_state():
    net = nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 64))
    net[1].weight = net[0].weight  # tied: one storage
    net.train()
    threads = torch.get_num_threads()
    expected = (64 * 64 + 64 + 64) * 4 + 64 * 4  # weight once, two biases, the input
    assert resident_bytes(net, (torch.zeros(1, 64),)) == expected
    measure_peak_memory([(net, (torch.zeros(1, 64),))], HardwareConfig(threads=1))
    assert net.training and all(m.training for m in net.modules()) and torch.get_num_threads() == threads


def test_a_lookup_table_gives_latency_only():
    toy = ToySupernet()
    table = LookupTableHardware("lut-toy", lambda archs: [1.0] * len(archs))
    toy.lookup_tables = lambda: {"lut-toy": table}
    evaluator = Evaluator(toy, None, progress=False, busy_interval=0)
    for metric in ("peak_memory_mb", "energy_mj"):
        with pytest.raises(
            ValueError, match=rf"^look-up table 'lut-toy' gives latency_ms only, not {metric}; measure"
        ):
            evaluator.measure(ARCH, [metric], ["lut-toy"])
    assert toy.n_subnets == 0
    assert list(evaluator.free({"peak_memory_mb@lut-toy": "min", "latency_ms@lut-toy": "min"})) == [
        "latency_ms@lut-toy"
    ]
    assert evaluator.measure(ARCH, ["latency_ms"], ["lut-toy"]).value.tolist() == [1.0]


def test_memory_is_an_objective_like_latency():
    toy = MemoryToy()
    values = Evaluator(toy, None, progress=False, busy_interval=0).values(
        [ARCH, {"width": 4, "act": "gelu", "bias": False}],
        {"score": "max", "peak_memory_mb@cpu-t1-b2": "min"},
    )
    assert list(values) == ["score", "peak_memory_mb@cpu-t1-b2"]
    assert all(16 <= v < 16.01 for v in values["peak_memory_mb@cpu-t1-b2"])


# --- energy ----------------------------------------------------------------------------------------------


def test_energy_without_a_counter_is_one_line_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(_energy, "POWERCAP", tmp_path)  # an empty folder: no RAPL zone
    toy = ToySupernet()
    store = ResultStore(tmp_path / "r.sqlite")
    where = rf"{tmp_path}/intel-rapl:\*/energy_uj"
    message = rf"^energy_mj is not available here: no RAPL counter readable at {where} \(needs"
    with pytest.raises(ValueError, match=message) as raised:
        Evaluator(toy, store, progress=False).measure(ARCH, ["score", "energy_mj"], ["cpu-t1-b1"])
    assert "\n" not in str(raised.value)
    assert toy.n_subnets == 0 and store.measurements().empty
    calls = []
    with pytest.raises(ValueError, match=message):
        measure_energy([(lambda x: calls.append(x), (torch.zeros(1),))], HardwareConfig())
    assert calls == []


def test_an_unreadable_counter_is_not_available_either(tmp_path, monkeypatch):
    counter = fake_rapl(tmp_path)
    counter.write_text("not a number")  # as a permission error leaves it unreadable to us
    monkeypatch.setattr(_energy, "POWERCAP", tmp_path)
    with pytest.raises(
        ValueError, match=rf"^energy_mj is not available here: the RAPL counter {counter} is not"
    ):
        HardwareConfig().check_metric("energy_mj")


def test_energy_is_the_counter_per_call_of_the_workload(tmp_path, monkeypatch):
    counter = fake_rapl(tmp_path)
    monkeypatch.setattr(_energy, "POWERCAP", tmp_path)
    spend = spending(counter, microjoules=1000)
    (energy,) = measure_energy([(spend, (torch.zeros(1),))], HardwareConfig(), min_run_time=0.01, blocks=3)
    assert isinstance(energy, EnergyMeasurement)
    assert energy.median_mj == pytest.approx(1.0) and energy.spread_mj == pytest.approx(0.0)
    assert energy.repeats == 3 and not energy.flagged


def test_energy_rows_through_the_evaluator(tmp_path, monkeypatch):
    counter = fake_rapl(tmp_path)
    monkeypatch.setattr(_energy, "POWERCAP", tmp_path)
    toy = EnergyToy(counter)
    table = Evaluator(toy, None, progress=False, busy_interval=0).measure(ARCH, ["energy_mj"], ["cpu-t1-b1"])
    assert table.metric.tolist() == ["energy_mj"] and table.hardware.tolist() == ["cpu-t1-b1"]
    assert table.value.tolist() == [pytest.approx(1.0)] and table.repeats.tolist() == [5]


def test_a_wrapped_rapl_counter_is_unwrapped(tmp_path):
    fake_rapl(tmp_path, range_uj=10_000)
    counter = RaplCounter.find(tmp_path)
    assert counter.zones == (tmp_path / "intel-rapl:0",)  # the package only, not its parts
    assert counter.millijoules((9_500,), (500,)) == pytest.approx(1.0)
    assert counter.millijoules((500,), (1_500,)) == pytest.approx(1.0)


def test_energy_here_measures_or_says_why_not():
    """Both branches on the real machine: a readable RAPL counter measures, else the one-line reason."""
    net = nn.Linear(64, 64)
    try:
        energy_counter(HardwareConfig())
    except ValueError as error:
        assert str(error).startswith("energy_mj is not available here: ") and "\n" not in str(error)
        with pytest.raises(ValueError, match="^energy_mj is not available here"):
            measure_energy([(net, (torch.zeros(1, 64),))], HardwareConfig(), min_run_time=0.05)
    else:
        (energy,) = measure_energy([(net, (torch.zeros(1, 64),))], HardwareConfig(), min_run_time=0.05)
        assert energy.median_mj >= 0 and math.isfinite(energy.median_mj)


# --- what is measured: the supernet's workload -----------------------------------------------------------


def test_the_default_workload_is_the_forward_pass_on_example_inputs():
    toy = ToySupernet()
    subnet = toy.subnet(ARCH)
    fn, args = toy.workload(subnet, ARCH, 3)
    assert fn is subnet and len(args) == 1 and torch.equal(args[0], toy.example_inputs(ARCH, 3)[0])
    toy.example_inputs = lambda arch, batch_size: torch.zeros(batch_size, TOY_INPUTS)  # a bare tensor
    assert isinstance(toy.workload(subnet, ARCH, 2)[1], tuple)


def test_run_active_is_not_implemented_by_default():
    with pytest.raises(
        NotImplementedError, match=r"^ToySupernet does not implement run_active\(arch, \*inputs\)"
    ):
        ToySupernet().run_active(ARCH, torch.zeros(1, TOY_INPUTS))


def test_latency_times_the_workload_not_the_forward_pass():
    toy = TwiceToy()
    table = Evaluator(
        toy, None, min_run_time=FAST, latency_rounds=2, progress=False, busy_interval=0
    ).measure([ARCH], ["latency_ms"], ["cpu-t1-b4"])
    assert table.value[0] > 0 and toy.asked == [4]
    (subnet,) = toy.subnets
    # warm-up, the probe and at least MIN_REPEATS timed runs, each running the sub-network twice:
    # never once on its own
    assert toy.requests >= 3 + 1 + MIN_REPEATS
    assert subnet.calls == 2 * toy.requests and subnet.modes == {False}


def test_memory_profiles_the_workload():
    toy = MemoryToy()

    def smaller_request(subnet, arch, batch_size):  # 4 MB instead of the sub-network's forward pass
        return Allocating(4).forward, toy.example_inputs(arch, batch_size)

    toy.workload = smaller_request
    table = Evaluator(toy, None, progress=False, busy_interval=0).measure(
        ARCH, ["peak_memory_mb"], ["cpu-t1-b1"]
    )
    assert 4 <= table.value[0] < 4.01  # the workload's 4 MB, not the forward pass's 16 MB


def test_time_workloads_restores_the_modules_it_is_given():
    net = CountingNet().train()
    threads = torch.get_num_threads()
    (timing,) = time_workloads(
        [(lambda x: net(net(x)[:, :1].expand(-1, TOY_INPUTS)), (torch.zeros(1, TOY_INPUTS),))],
        HardwareConfig(),
        modules=[net],
        min_run_time=FAST,
    )
    assert timing.median_ms > 0 and net.modes == {False}  # timed in eval mode
    assert net.training and torch.get_num_threads() == threads


@pytest.mark.parametrize(
    "workload, match",
    [
        (lambda subnet, arch, batch_size: subnet, "TwiceToy.workload must return \\(fn, args\\)"),
        (lambda subnet, arch, batch_size: (subnet, [1]), "TwiceToy.workload must return \\(fn, args\\)"),
    ],
)
def test_a_bad_workload_is_one_line(workload, match):
    toy = TwiceToy()
    toy.workload = workload
    with pytest.raises(ValueError, match=match):
        HardwareConfig().measure("latency_ms", toy, [ARCH], [toy.subnet(ARCH)])


@pytest.mark.parametrize(
    "bad, match",
    [
        ([(1, ())], "a workload is \\(fn, args\\)"),
        ([(print, [1])], "a workload's args must be a tuple"),
    ],
)
def test_bad_workloads_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        measure_peak_memory(bad, HardwareConfig())


# --- the busy-machine check: before what timing noise spoils ------------------------------------------


def test_the_machine_is_checked_before_latency_and_energy_only(tmp_path, monkeypatch):
    counter = fake_rapl(tmp_path)
    monkeypatch.setattr(_energy, "POWERCAP", tmp_path)
    checks = []
    monkeypatch.setattr(evaluation, "busy_cores", lambda interval: checks.append("busy") or 0.0)
    monkeypatch.setattr(evaluation, "timing_noise", lambda seconds: 0.0)
    toy = EnergyToy(counter)
    toy.workload = lambda subnet, arch, batch_size: (subnet, toy.example_inputs(arch, batch_size))
    evaluator = Evaluator(toy, None, min_run_time=FAST, latency_rounds=1, progress=False, busy_interval=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluator.measure(ARCH, ["peak_memory_mb"], ["cpu-t1-b1"])
        assert checks == []  # memory: other processes do not change what a call allocates
        evaluator.measure(ARCH, ["latency_ms"], ["cpu-t1-b1"])
        assert checks == ["busy"]
    toy.workload = EnergyToy.workload.__get__(toy)
    evaluator.measure({"width": 4, "act": "relu", "bias": True}, ["energy_mj"], ["cpu-t1-b1"])
    assert checks == ["busy", "busy"]


def test_generic_metrics_have_a_measurer_each():
    per_hardware = [m.name for m in GENERIC_METRICS if m.per_hardware]
    assert per_hardware == ["latency_ms", "peak_memory_mb", "energy_mj"] == list(MEASURERS)
    assert [MEASURERS[name].timing_sensitive for name in per_hardware] == [True, False, True]
    table = Evaluator(ToySupernet(), None, progress=False, busy_interval=0).measure(
        ARCH, ["peak_memory_mb"], ["cpu-t1-b8"]
    )
    assert wide(table).columns.tolist() == ["arch", "peak_memory_mb@cpu-t1-b8"]


def test_the_hardware_package_exports_what_the_module_did():
    import nastools.hardware as hardware

    before = [
        "MIN_REPEATS",
        "Hardware",
        "HardwareConfig",
        "LatencyMeasurement",
        "LookupTableHardware",
        "busy_cores",
        "default_hardware_configs",
        "host_id",
        "measure_latencies",
        "measure_latency",
        "resolve_hardware",
        "timing_noise",
    ]
    assert set(before) <= set(hardware.__all__)
    assert all(hasattr(hardware, name) for name in hardware.__all__)
