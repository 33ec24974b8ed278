"""Hardware targets and latency measurement for hardware-aware search.

Every hardware target implements :class:`Hardware`: a stable key that labels stored latencies and
a way to give the latency of sub-networks.

* :class:`HardwareConfig` (``cpu-t1-b1``, ``cpu-t8-b64``, ``cuda-b64``, ``cuda:1-b64``) times the
  sub-networks here with ``torch.utils.benchmark`` (warm-up, fixed thread count, median and
  spread, threads restored). Its latencies belong to the machine that measured them:
  :meth:`Hardware.host` names it, and the store keeps it with every row.
* :class:`LookupTableHardware` (``lut-<platform>``, e.g. ``lut-note10``) is a platform nothing runs
  on here: it owns a function from archs to latencies, typically a per-layer table that a supernet
  family provides (:meth:`nastools.supernet.Supernet.lookup_tables`).

:func:`resolve_hardware` turns a key into a target for a given supernet.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils import benchmark

if TYPE_CHECKING:
    from nastools.supernet import Supernet

__all__ = [
    "MIN_REPEATS",
    "Hardware",
    "busy_cores",
    "HardwareConfig",
    "LatencyMeasurement",
    "LookupTableHardware",
    "default_hardware_configs",
    "host_id",
    "measure_latencies",
    "measure_latency",
    "resolve_hardware",
    "timing_noise",
]

_KEY_FORMAT = "'cpu-t<threads>-b<batch>', 'cuda[:<index>]-b<batch>' or 'cuda[:<index>]-t<threads>-b<batch>'"
_KEY_RE = re.compile(r"(?P<device>cpu|cuda(?::\d+)?)(?:-t(?P<threads>\d+))?-b(?P<batch>\d+)")
_DEVICE_RE = re.compile(r"cpu|cuda(:\d+)?")
_LUT_KEY_RE = re.compile(r"lut-[a-z0-9][a-z0-9.\-]*")
_WARMUP_CALLS = 3
# Fewer timed runs than this give no usable spread: the run is extended, and flagged if still short.
MIN_REPEATS = 5


@dataclass(frozen=True)
class LatencyMeasurement:
    """Latency of one model on one hardware target.

    Attributes:
        median_ms: Median time of one forward pass over a whole batch, in milliseconds.
        spread_ms: Interquartile range of the per-run times, in milliseconds.
        repeats: Number of timed measurements the statistics come from.
        flagged: True when ``spread_ms / median_ms`` exceeded the allowed relative spread, or
            fewer than ``MIN_REPEATS`` runs were timed (no usable spread), i.e. the measurement
            is noisy (often another process competing for the cores) and should be repeated.

    Example:
        >>> m = LatencyMeasurement(median_ms=2.0, spread_ms=0.1, repeats=10, flagged=False)
        >>> m.relative_spread
        0.05
    """

    median_ms: float
    spread_ms: float
    repeats: int
    flagged: bool

    @property
    def relative_spread(self) -> float:
        """Spread relative to the median (``inf`` if the median is zero)."""
        if self.median_ms <= 0:
            return float("inf")
        return self.spread_ms / self.median_ms


class Hardware(ABC):
    """Where a sub-network's latency comes from: a stable key and a way to give latencies."""

    #: Stable name stored with every latency, e.g. ``"cpu-t1-b1"`` or ``"lut-note10"``.
    key: str
    #: Whether the latency needs the extracted sub-network (False for look-up tables).
    needs_subnet: bool = True

    def host(self) -> str:
        """The machine whose latencies these are (``""``: the same everywhere, e.g. a table)."""
        return ""

    def validate(self) -> None:  # noqa: B027 - optional hook
        """Raise ``ValueError`` if this target cannot give latencies on this machine."""

    @abstractmethod
    def latencies(
        self,
        supernet: Supernet,
        archs: Sequence[dict],
        subnets: Sequence[torch.nn.Module | None],
        **timing: Any,
    ) -> list[LatencyMeasurement]:
        """Latency of each arch (``subnets[i]`` is its extracted module when :attr:`needs_subnet`).

        Args:
            supernet: Gives the example inputs of each arch.
            archs: The sub-networks.
            subnets: Their standalone modules (or None when not needed).
            **timing: Options of :func:`measure_latencies` (measured targets only).
        """


@functools.cache
def _cpu_name() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:  # Linux; elsewhere platform's
        for line in handle:
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def host_id(device: str = "cpu") -> str:
    """The machine as latency depends on it: CPU model, core count and, for CUDA, the GPU model.

    Example:
        >>> host_id().endswith(f"x{os.cpu_count()}")
        True
    """
    cpu = f"{platform.machine()} {_cpu_name()} x{os.cpu_count()}"
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(torch.device(device))} | {cpu}"
    return cpu


def _cpu_seconds() -> tuple[float, float] | None:
    """CPU seconds used by every process on the machine, and by this one (None off Linux)."""
    try:
        with open("/proc/stat") as handle:
            fields = handle.readline().split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
        with open("/proc/self/stat") as handle:
            own = handle.read().rpartition(")")[2].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (user + nice + system + irq + softirq) / ticks, (int(own[11]) + int(own[12])) / ticks
    except (OSError, ValueError, IndexError):
        return None


def _last_level_cache_bytes() -> int | None:
    sizes = []
    for index in range(8):
        with contextlib.suppress(OSError, ValueError):
            text = Path(f"/sys/devices/system/cpu/cpu0/cache/index{index}/size").read_text().strip()
            sizes.append(int(text.rstrip("KMG")) * {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1], 1))
    return max(sizes) if sizes else None


@functools.lru_cache(maxsize=1)
def _noise_probe() -> torch.nn.Module:
    # weights filling half the last-level cache: where other tenants of a shared host compete
    cache = _last_level_cache_bytes() or 32 * 2**20
    width = max(64, int((cache / 2 / 4 / 4) ** 0.5))  # 4 float32 layers of width x width
    generator = torch.Generator().manual_seed(0)
    layers = [torch.nn.Linear(width, width, bias=False) for _ in range(4)]
    with torch.no_grad():
        for layer in layers:
            layer.weight.copy_(torch.randn(width, width, generator=generator) / width**0.5)
    return torch.nn.Sequential(*layers).eval()


def timing_noise(seconds: float = 0.3) -> float:
    """How much this machine's timing varies: the relative spread (IQR / median) of a fixed probe.

    The probe is a chain of linear layers whose weights fill half the last-level cache, timed on
    one thread by :func:`measure_latencies`, as a sub-network is. On a shared host the
    cores can be idle while other machines (VMs) use the shared cache: :func:`busy_cores` sees
    nothing, yet sub-networks whose weights live in that cache vary by 30-40 % between blocks
    (measured here: 41 % for a 16 MiB probe while 1 MiB and 64 MiB ones varied 3-5 %). Above the
    flagging threshold (0.1), latency timed now will be flagged.

    Example:
        >>> noise = timing_noise(0.05)
        >>> 0.0 <= noise < float("inf")
        True
    """
    probe = _noise_probe()
    x = torch.zeros(1, probe[0].in_features)
    (timing,) = measure_latencies([probe], [x], HardwareConfig(threads=1), min_run_time=seconds)
    return timing.spread_ms / timing.median_ms


def busy_cores(interval: float = 0.3) -> float | None:
    """How many cores other processes keep busy, over ``interval`` seconds (None where unknown).

    Latency timed while other processes use the cores is noise: a 66 ms batch was measured at
    2,900 ms on 2 shared cores. The :class:`~nastools.evaluation.Evaluator` checks this before it
    times anything.

    Example:
        >>> busy = busy_cores(0.05)
        >>> busy is None or 0.0 <= busy <= os.cpu_count()
        True
    """
    import time

    before = _cpu_seconds()
    if before is None:
        return None
    start = time.perf_counter()
    time.sleep(interval)
    after = _cpu_seconds()
    elapsed = time.perf_counter() - start
    if after is None or elapsed <= 0:
        return None
    others = (after[0] - before[0]) - (after[1] - before[1])
    return max(0.0, min(float(os.cpu_count() or 1), others / elapsed))


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class HardwareConfig(Hardware):
    """One measured hardware target: the device, the CPU threads torch may use, and the batch size.

    The key is ``<device>-t<threads>-b<batch>``. On CUDA targets the thread count only affects
    host-side work, so it is left out of the key when it is 1 (``cuda-b64``, ``cuda:1-b64``) and
    written otherwise (``cuda-t4-b64``); CPU keys always carry it (``cpu-t1-b1``). Keys round-trip
    exactly through :meth:`from_key`.

    Construction checks everything except whether a CUDA GPU is present, so a CUDA target can be
    parsed and stored on a CPU-only machine; :meth:`validate` checks that too.

    Attributes:
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        threads: Intra-op CPU threads (``torch.set_num_threads``) used while measuring.
        batch_size: Samples per forward pass.

    Example:
        >>> hw = HardwareConfig(threads=1, batch_size=64)
        >>> hw.key
        'cpu-t1-b64'
        >>> HardwareConfig.from_key("cpu-t1-b64") == hw
        True
    """

    device: str = "cpu"
    threads: int = 1
    batch_size: int = 1

    def __post_init__(self) -> None:
        """Check the configuration, except for the presence of a CUDA GPU."""
        object.__setattr__(self, "threads", _positive_int("threads", self.threads))
        object.__setattr__(self, "batch_size", _positive_int("batch_size", self.batch_size))
        self._check(require_cuda=False)

    @property
    def is_cuda(self) -> bool:
        """Whether the target is a CUDA device."""
        return self.device.startswith("cuda")

    @property
    def key(self) -> str:
        """Stable string naming this configuration, e.g. ``cpu-t2-b64`` or ``cuda-b64``."""
        if self.is_cuda and self.threads == 1:
            return f"{self.device}-b{self.batch_size}"
        return f"{self.device}-t{self.threads}-b{self.batch_size}"

    def host(self) -> str:
        """This machine (:func:`host_id` of the device): measured latencies are valid here only."""
        return host_id(self.device)

    @classmethod
    def from_key(cls, key: str) -> HardwareConfig:
        """Parse a key written by :attr:`key` back into a configuration.

        Raises:
            ValueError: If the key is malformed, not written as :attr:`key` writes it (``cpu-t01-b1``,
                ``cuda-t1-b64``), or names an invalid configuration.
        """
        if isinstance(key, str) and key.startswith("lut-"):
            raise ValueError(
                f"hardware key {key!r} is a look-up-table target, not a measured one: its table comes "
                "from the supernet (resolve_hardware(key, supernet))"
            )
        match = _KEY_RE.fullmatch(key) if isinstance(key, str) else None
        if match is None or (match["device"] == "cpu" and match["threads"] is None):
            raise ValueError(f"bad hardware key {key!r}: expected {_KEY_FORMAT}, e.g. 'cpu-t1-b1'")
        threads = int(match["threads"]) if match["threads"] is not None else 1
        try:
            config = cls(device=match["device"], threads=threads, batch_size=int(match["batch"]))
        except ValueError as error:
            raise ValueError(f"hardware key {key!r}: {error}") from None
        if config.key != key:  # e.g. 'cpu-t01-b1' or 'cuda-t1-b64': stored latencies use one spelling
            raise ValueError(f"hardware key {key!r} is written {config.key!r}; use that spelling")
        return config

    def validate(self) -> None:
        """Check that this configuration can be measured on this machine.

        Raises:
            ValueError: If the machine has fewer cores than ``threads``, or the target is CUDA and
                no (such) CUDA GPU is available.
        """
        self._check(require_cuda=True)

    def _check(self, *, require_cuda: bool) -> None:
        if not isinstance(self.device, str):
            raise ValueError(f"hardware device must be a string, got {self.device!r}")
        if self.device.startswith("lut-"):
            raise ValueError(
                f"hardware device {self.device!r} is a look-up-table target: pass the key {self.device!r} "
                "and let the supernet give its table (resolve_hardware)"
            )
        if not _DEVICE_RE.fullmatch(self.device):
            raise ValueError(f"unknown hardware device {self.device!r}: expected 'cpu', 'cuda' or 'cuda:N'")
        cores = os.cpu_count()
        if cores is not None and self.threads > cores:
            raise ValueError(f"threads={self.threads} exceeds the {cores} CPU cores this machine has")
        if require_cuda and self.is_cuda:
            if not torch.cuda.is_available():
                raise ValueError(
                    f"hardware {self.key!r} needs CUDA, but no CUDA GPU is available on this machine; "
                    "use a cpu config"
                )
            index = torch.device(self.device).index
            count = torch.cuda.device_count()
            if index is not None and index >= count:
                raise ValueError(
                    f"hardware {self.key!r} names CUDA device {index}, but this machine has only "
                    f"{count} GPU(s)"
                )

    def latencies(
        self,
        supernet: Supernet,
        archs: Sequence[dict],
        subnets: Sequence[torch.nn.Module | None],
        **timing: Any,
    ) -> list[LatencyMeasurement]:
        """Time ``subnets`` interleaved on this target (:func:`measure_latencies`)."""
        inputs = [supernet.example_inputs(arch, self.batch_size) for arch in archs]
        return measure_latencies(list(subnets), inputs, self, **timing)


class LookupTableHardware(Hardware):
    """A platform whose latencies come from a function of the arch, keyed ``lut-<platform>``.

    Nothing runs here: the function (typically a sum of per-layer table entries that a supernet
    family reads from published files) gives one value per arch, stored with spread 0 and 1 repeat.

    Args:
        key: ``lut-<platform>``: lower-case letters, digits, ``.`` and ``-``, e.g. ``"lut-note10"``.
        predict: ``archs -> latencies in ms``.
        description: What the table was measured on, for reports.
        check: Called by :meth:`validate`: raises when the table cannot serve (e.g. lacks layers
            the supernet has), before anything is measured.

    Example:
        >>> hw = LookupTableHardware("lut-toy", lambda archs: [1.0 + a["d"] for a in archs])
        >>> hw.key, hw.latencies(None, [{"d": 2}], [None])[0].median_ms
        ('lut-toy', 3.0)
    """

    needs_subnet = False

    def __init__(
        self,
        key: str,
        predict: Callable[[Sequence[dict]], Sequence[float]],
        description: str = "",
        check: Callable[[], None] | None = None,
    ) -> None:
        if not isinstance(key, str) or not _LUT_KEY_RE.fullmatch(key):
            raise ValueError(
                f"bad look-up-table hardware key {key!r}: expected 'lut-<platform>' in lower-case letters, "
                "digits, '.' and '-', e.g. 'lut-note10'"
            )
        self.key = key
        self.predict = predict
        self.description = description
        self.check = check

    def validate(self) -> None:
        """Run the table's check (see ``check``)."""
        if self.check is not None:
            self.check()

    def __repr__(self) -> str:
        return f"LookupTableHardware({self.key!r})"

    def latencies(
        self,
        supernet: Supernet,
        archs: Sequence[dict],
        subnets: Sequence[torch.nn.Module | None],
        **timing: Any,
    ) -> list[LatencyMeasurement]:
        """The table's latency of each arch (spread 0, 1 repeat, never flagged)."""
        values = np.asarray(self.predict(list(archs)), dtype=np.float64).reshape(-1)
        if len(values) != len(archs):
            raise ValueError(f"{self.key} gave {len(values)} latencies for {len(archs)} archs")
        return [LatencyMeasurement(float(v), 0.0, 1, False) for v in values]


def resolve_hardware(hardware: Hardware | str, supernet: Supernet | None = None) -> Hardware:
    """The target a key names: a :class:`HardwareConfig`, or one of the supernet's look-up tables.

    Raises:
        ValueError: A malformed key, or a ``lut-`` key the supernet has no table for (its tables
            are listed, and the family's message says where the files come from).

    Example:
        >>> resolve_hardware("cpu-t1-b64")
        HardwareConfig(device='cpu', threads=1, batch_size=64)
    """
    if isinstance(hardware, Hardware):
        return hardware
    if not isinstance(hardware, str):
        raise ValueError(f"hardware must be a key such as 'cpu-t1-b1' or a Hardware, got {hardware!r}")
    if hardware.startswith("lut-"):
        tables = supernet.lookup_tables() if supernet is not None else {}
        if hardware in tables:
            return tables[hardware]
        why = supernet.missing_table_message(hardware) if supernet is not None else ""
        name = supernet.supernet_id if supernet is not None else "(none given)"
        raise ValueError(
            why
            or f"hardware {hardware!r} is a look-up table that supernet {name!r} does not have; "
            f"its tables are {sorted(tables)}"
        )
    return HardwareConfig.from_key(hardware)


def default_hardware_configs() -> list[HardwareConfig]:
    """The standard targets for this machine.

    Batch-1 single-thread CPU (``cpu-t1-b1``), batch-1 and batch-64 on all cores
    (``cpu-t{n}-b1``, ``cpu-t{n}-b64`` with ``n = os.cpu_count()``), and ``cuda-b1`` /
    ``cuda-b64`` when a CUDA GPU is available. Duplicates (one core) are dropped.
    """
    cores = os.cpu_count() or 1
    configs = [
        HardwareConfig("cpu", threads=1, batch_size=1),
        HardwareConfig("cpu", threads=cores, batch_size=1),
        HardwareConfig("cpu", threads=cores, batch_size=64),
    ]
    if torch.cuda.is_available():
        configs += [HardwareConfig("cuda", batch_size=1), HardwareConfig("cuda", batch_size=64)]
    return list(dict.fromkeys(configs))


def _model_device(model: torch.nn.Module) -> torch.device | None:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return None


def _as_inputs(inputs: object) -> tuple[torch.Tensor, ...]:
    inputs = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    if not inputs or not all(isinstance(t, torch.Tensor) for t in inputs):
        raise ValueError("example inputs must be a tensor or a non-empty tuple of tensors")
    return inputs


def measure_latency(
    model: torch.nn.Module,
    inputs: torch.Tensor | tuple[torch.Tensor, ...],
    hardware: HardwareConfig,
    *,
    min_run_time: float = 0.2,
    max_relative_spread: float = 0.1,
) -> LatencyMeasurement:
    """Time a model's forward pass on ``inputs`` (one batch) with ``torch.utils.benchmark.Timer``.

    The model runs in eval mode under ``torch.inference_mode()``, after a few untimed warm-up
    calls, with ``hardware.threads`` intra-op threads. Torch's thread count, the model's training
    flags and its device are restored afterwards, also when the model raises. To compare many
    models, use :func:`measure_latencies`, which interleaves them.

    Args:
        model: The network to time.
        inputs: Its positional inputs for one batch (e.g. ``torch.randn(1, 3, 32, 32)`` or token ids).
        hardware: Where to run; validated first (thread count, CUDA availability).
        min_run_time: Minimum total seconds of timed runs (``Timer.blocked_autorange``).
        max_relative_spread: Relative spread (IQR / median) above which the result is flagged.
    """
    return measure_latencies(
        [model],
        [inputs],
        hardware,
        rounds=1,
        min_run_time=min_run_time,
        max_relative_spread=max_relative_spread,
    )[0]


def measure_latencies(
    models: Sequence[torch.nn.Module],
    inputs: Sequence[torch.Tensor | tuple[torch.Tensor, ...]],
    hardware: HardwareConfig,
    *,
    rounds: int = 5,
    min_run_time: float = 0.2,
    max_relative_spread: float = 0.1,
    progress: Callable[[float], object] | None = None,
) -> list[LatencyMeasurement]:
    """Time several models on one target, interleaved: ``rounds`` passes over all of them.

    Each pass gives every model ``min_run_time / rounds`` seconds of ``blocked_autorange``; a
    model's latency is the median of all its timed blocks over the passes. Interleaving spreads
    the machine's slow and fast phases (other processes, frequency changes) evenly over the models,
    which keeps their order stable between two profiling runs; see
    ``benchmarks/latency_repeatability.py``. Everything else is as in :func:`measure_latency`.
    ``progress(fraction)`` is called as the work advances (warm-up and every round of every model;
    the fractions add up to one per model), e.g. a progress bar's ``update``.

    Example:
        >>> nets = [torch.nn.Linear(8, 8), torch.nn.Linear(8, 512)]
        >>> x = torch.zeros(1, 8)
        >>> timings = measure_latencies(nets, [x, x], HardwareConfig(threads=1), min_run_time=0.05)
        >>> len(timings), all(t.median_ms > 0 for t in timings)
        (2, True)
    """
    hardware.validate()
    batches = [_as_inputs(batch) for batch in inputs]
    if len(batches) != len(models):
        raise ValueError(f"{len(models)} models but {len(batches)} input batches")
    if not isinstance(min_run_time, (int, float)) or not min_run_time > 0:
        raise ValueError(f"min_run_time must be a positive number of seconds, got {min_run_time!r}")
    rounds = _positive_int("rounds", rounds)
    step = 1.0 / (rounds + 1)  # warm-up and probe, then each round: one share each

    def advance() -> None:
        if progress is not None:
            progress(step)

    device = torch.device(hardware.device)
    original_devices = [_model_device(model) for model in models]
    training_flags = {module: module.training for model in models for module in model.modules()}
    original_threads = torch.get_num_threads()
    times: list[list[float]] = [[] for _ in models]
    try:
        torch.set_num_threads(hardware.threads)
        timers, run_times = [], []
        with torch.inference_mode():
            for model, batch, original in zip(models, batches, original_devices):
                if original is not None and original != device:
                    model.to(device)
                model.eval()
                batch = tuple(t.to(device) for t in batch)
                for _ in range(_WARMUP_CALLS):
                    model(*batch)
                timer = benchmark.Timer(
                    stmt="model(*inputs)",
                    globals={"model": model, "inputs": batch},
                    num_threads=hardware.threads,
                    label="measure_latency",
                    description=hardware.key,
                )
                probe = timer.timeit(number=1)
                timers.append(timer)
                # at least MIN_REPEATS timed runs in all, spread over the rounds
                run_times.append(max(min_run_time, 1.5 * MIN_REPEATS * probe.median) / rounds)
                advance()
            for _ in range(rounds):
                for i, timer in enumerate(timers):
                    times[i] += timer.blocked_autorange(min_run_time=run_times[i]).times
                    advance()
            for i, timer in enumerate(timers):  # a busy machine can leave too few blocks: extend
                for _ in range(MIN_REPEATS):
                    if len(times[i]) >= MIN_REPEATS:
                        break
                    times[i] += timer.blocked_autorange(min_run_time=run_times[i]).times
    finally:
        torch.set_num_threads(original_threads)
        for module, flag in training_flags.items():
            module.training = flag
        for model, original in zip(models, original_devices):
            if original is not None and original != device:
                model.to(original)

    results = []
    for per_model in times:
        median_ms = float(np.median(per_model)) * 1e3
        q1, q3 = np.percentile(per_model, [25, 75])
        spread_ms = float(q3 - q1) * 1e3
        relative = spread_ms / median_ms if median_ms > 0 else float("inf")
        results.append(
            LatencyMeasurement(
                median_ms=median_ms,
                spread_ms=spread_ms,
                repeats=len(per_model),
                flagged=relative > max_relative_spread or len(per_model) < MIN_REPEATS,
            )
        )
    return results
