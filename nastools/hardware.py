"""Hardware targets and latency measurement for hardware-aware search.

A :class:`HardwareConfig` names where a network runs (device, CPU threads, batch size) and has a
stable string key (``cpu-t1-b1``, ``cpu-t8-b64``, ``cuda-b64``, ``cuda:1-b64``) to label stored
latencies. :func:`measure_latency` times a model on such a target with
``torch.utils.benchmark.Timer`` and reports the median per-batch latency with its spread.

A :class:`LookupTableHardware` (key ``lut-<platform>``, e.g. ``lut-note10``) is a platform you cannot
run on: its latencies come from a per-layer look-up table (:mod:`nastools.lut`).
:func:`hardware_from_key` parses either kind of key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils import benchmark

__all__ = [
    "MIN_REPEATS",
    "HardwareConfig",
    "LatencyMeasurement",
    "LookupTableHardware",
    "default_hardware_configs",
    "hardware_from_key",
    "measure_latencies",
    "measure_latency",
]

_KEY_FORMAT = "'cpu-t<threads>-b<batch>', 'cuda[:<index>]-b<batch>' or 'cuda[:<index>]-t<threads>-b<batch>'"
_KEY_RE = re.compile(r"^(?P<device>cpu|cuda(?::\d+)?)(?:-t(?P<threads>\d+))?-b(?P<batch>\d+)$")
_DEVICE_RE = re.compile(r"^(cpu|cuda(:\d+)?)$")
_LUT_KEY_RE = re.compile(r"^lut-[a-z0-9][a-z0-9.\-]*$")
_WARMUP_CALLS = 3
# Fewer timed runs than this give no usable spread: the run is extended, and flagged if still short.
MIN_REPEATS = 5


@dataclass(frozen=True)
class HardwareConfig:
    """One hardware target: the device, the CPU threads torch may use, and the batch size.

    The key is ``<device>-t<threads>-b<batch>``. On CUDA targets the thread count only affects
    host-side work, so it is left out of the key when it is 1 (``cuda-b64``, ``cuda:1-b64``) and
    written otherwise (``cuda-t4-b64``); CPU keys always carry it (``cpu-t1-b1``). Keys round-trip
    exactly through :meth:`from_key`.

    Construction checks everything except whether a CUDA GPU is present, so a CUDA target can be
    parsed and stored on a CPU-only machine; :meth:`validate` (run by :func:`measure_latency`)
    checks that too. Keys starting with ``lut-`` name look-up-table targets: see
    :class:`LookupTableHardware` and :func:`hardware_from_key`.

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

    @classmethod
    def from_key(cls, key: str) -> HardwareConfig:
        """Parse a key written by :attr:`key` back into a configuration.

        Args:
            key: A key such as ``cpu-t1-b1``, ``cuda-b64`` or ``cuda:1-t2-b8``.

        Returns:
            The configuration the key names.

        Raises:
            ValueError: If the key is malformed or names an invalid configuration.
        """
        if isinstance(key, str) and key.startswith("lut-"):
            raise ValueError(
                f"hardware key {key!r} is a look-up-table target, not a measured one: use "
                "LookupTableHardware.from_key or hardware_from_key (nastools.hardware)"
            )
        match = _KEY_RE.match(key) if isinstance(key, str) else None
        if match is None or (match["device"] == "cpu" and match["threads"] is None):
            raise ValueError(f"bad hardware key {key!r}: expected {_KEY_FORMAT}, e.g. 'cpu-t1-b1'")
        threads = int(match["threads"]) if match["threads"] is not None else 1
        return cls(device=match["device"], threads=threads, batch_size=int(match["batch"]))

    def validate(self) -> None:
        """Check that this configuration can be measured on this machine.

        Raises:
            ValueError: If a field is invalid, the machine has fewer cores than ``threads``, or
                the target is CUDA and no (such) CUDA GPU is available.
        """
        self._check(require_cuda=True)

    def _check(self, *, require_cuda: bool) -> None:
        if not isinstance(self.device, str):
            raise ValueError(f"hardware device must be a string, got {self.device!r}")
        if self.device.startswith("lut-"):
            raise ValueError(
                f"hardware device {self.device!r} is a lookup-table target: use "
                f"LookupTableHardware({self.device[4:]!r}) or hardware_from_key({self.device!r})"
            )
        if not _DEVICE_RE.match(self.device):
            raise ValueError(f"unknown hardware device {self.device!r}: expected 'cpu', 'cuda' or 'cuda:N'")
        if not isinstance(self.threads, int) or self.threads <= 0:
            raise ValueError(f"threads must be a positive integer, got {self.threads!r}")
        cores = os.cpu_count()
        if cores is not None and self.threads > cores:
            raise ValueError(f"threads={self.threads} exceeds the {cores} CPU cores this machine has")
        if not isinstance(self.batch_size, int) or self.batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if require_cuda and self.is_cuda:
            if not torch.cuda.is_available():
                raise ValueError(
                    f"hardware {self.key!r} needs CUDA, but no CUDA GPU is available on this "
                    "machine; use a cpu config"
                )
            index = torch.device(self.device).index
            count = torch.cuda.device_count()
            if index is not None and index >= count:
                raise ValueError(
                    f"hardware {self.key!r} names CUDA device {index}, but this machine has "
                    f"only {count} CUDA GPU(s)"
                )


@dataclass(frozen=True)
class LookupTableHardware:
    """A platform whose latency comes from a per-layer look-up table, keyed ``lut-<platform>``.

    Nothing runs here: the :class:`~nastools.evaluation.Evaluator` sums the table's entries for each
    sub-network (one value per arch, spread 0, 1 repeat). The table itself is passed to the Evaluator
    (``latency_tables={"lut-note10": path}``); :data:`nastools.lut.KNOWN_TABLES` lists the public ones.

    Attributes:
        platform: Lower-case name, e.g. ``"note10"`` or ``"i7-8700k"``.

    Example:
        >>> hw = hardware_from_key("lut-note10")
        >>> hw.key, hw.batch_size
        ('lut-note10', 1)
    """

    platform: str

    def __post_init__(self) -> None:
        """Check the platform name."""
        if not isinstance(self.platform, str) or not _LUT_KEY_RE.match(f"lut-{self.platform}"):
            raise ValueError(
                f"bad look-up-table platform {self.platform!r}: lower-case letters, digits, '.' and '-', "
                "e.g. 'note10'"
            )

    @property
    def key(self) -> str:
        """``lut-<platform>``."""
        return f"lut-{self.platform}"

    @property
    def device(self) -> str:
        """The key (there is no torch device)."""
        return self.key

    @property
    def is_cuda(self) -> bool:
        """Always False."""
        return False

    @property
    def threads(self) -> int:
        """1: the tables are per-layer latencies of single runs."""
        return 1

    @property
    def batch_size(self) -> int:
        """1: the public tables are batch-1 latencies."""
        return 1

    @classmethod
    def from_key(cls, key: str) -> LookupTableHardware:
        """Parse ``lut-<platform>``.

        Raises:
            ValueError: The key does not start with ``lut-`` or the platform name is malformed.
        """
        if not isinstance(key, str) or not _LUT_KEY_RE.match(key):
            raise ValueError(
                f"bad look-up-table hardware key {key!r}: expected 'lut-<platform>', e.g. 'lut-note10'"
            )
        return cls(key[4:])

    def validate(self) -> None:
        """Nothing to check on this machine (the Evaluator checks the table covers the supernet)."""


def hardware_from_key(key: str) -> HardwareConfig | LookupTableHardware:
    """Parse any hardware key: measured targets (``cpu-t1-b1``, ``cuda-b64``) or tables (``lut-note10``).

    Raises:
        ValueError: The key is malformed or names an invalid configuration.

    Example:
        >>> hardware_from_key("cpu-t1-b64")
        HardwareConfig(device='cpu', threads=1, batch_size=64)
        >>> hardware_from_key("lut-i7-8700k").platform
        'i7-8700k'
    """
    if isinstance(key, str) and key.startswith("lut-"):
        return LookupTableHardware.from_key(key)
    return HardwareConfig.from_key(key)


def default_hardware_configs() -> list[HardwareConfig]:
    """The standard targets for this machine.

    Batch-1 single-thread CPU (``cpu-t1-b1``), batch-1 and batch-64 on all cores
    (``cpu-t{n}-b1``, ``cpu-t{n}-b64`` with ``n = os.cpu_count()``), and ``cuda-b1`` /
    ``cuda-b64`` when a CUDA GPU is available. Duplicates (one core) are dropped.

    Returns:
        The configurations, in that order.
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


def _model_device(model: torch.nn.Module) -> torch.device | None:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return None


def measure_latency(
    model: torch.nn.Module,
    input_shape: tuple[int, ...],
    hardware: HardwareConfig,
    *,
    min_run_time: float = 0.2,
    max_relative_spread: float = 0.1,
) -> LatencyMeasurement:
    """Time a model's forward pass on a hardware target with ``torch.utils.benchmark.Timer``.

    The model runs in eval mode under ``torch.inference_mode()`` on a random batch of
    ``hardware.batch_size`` samples, after a few untimed warm-up calls, with
    ``hardware.threads`` intra-op threads. Torch's thread count, the model's training flags and
    its device are restored afterwards, also when the model raises. To compare many models, use
    :func:`measure_latencies`, which interleaves them so that slow phases of a shared machine do
    not fall on some of them only.

    Args:
        model: The network to time.
        input_shape: Shape of one sample, e.g. ``(3, 32, 32)``; the batch dimension is added.
        hardware: Where to run; validated first (thread count, CUDA availability).
        min_run_time: Minimum total seconds of timed runs (``Timer.blocked_autorange``).
        max_relative_spread: Relative spread (IQR / median) above which the result is flagged.

    Returns:
        The median per-batch latency in milliseconds, its interquartile range, the number of
        timed measurements and whether the spread was too large.

    Raises:
        ValueError: If ``hardware`` cannot be measured here or ``input_shape`` is invalid.
    """
    return measure_latencies(
        [model],
        [input_shape],
        hardware,
        rounds=1,
        min_run_time=min_run_time,
        max_relative_spread=max_relative_spread,
    )[0]


def measure_latencies(
    models: Sequence[torch.nn.Module],
    input_shapes: Sequence[tuple[int, ...]],
    hardware: HardwareConfig,
    *,
    rounds: int = 5,
    min_run_time: float = 0.2,
    max_relative_spread: float = 0.1,
) -> list[LatencyMeasurement]:
    """Time several models on one target, interleaved: ``rounds`` passes over all of them.

    Each pass gives every model ``min_run_time / rounds`` seconds of ``blocked_autorange``; a
    model's latency is the median of all its timed blocks over the passes. Interleaving spreads
    the machine's slow and fast phases (other processes, frequency changes) evenly over the models,
    which keeps their order stable between two profiling runs; see
    ``benchmarks/latency_repeatability.py``. Everything else is as in :func:`measure_latency`.

    Example:
        >>> nets = [torch.nn.Linear(8, 8), torch.nn.Linear(8, 512)]
        >>> timings = measure_latencies(nets, [(8,), (8,)], HardwareConfig(threads=1), min_run_time=0.05)
        >>> len(timings), all(t.median_ms > 0 for t in timings)
        (2, True)
    """
    hardware.validate()
    shapes = [tuple(shape) for shape in input_shapes]
    if len(shapes) != len(models):
        raise ValueError(f"{len(models)} models but {len(shapes)} input shapes")
    for shape in shapes:
        if not shape or not all(isinstance(d, int) and d > 0 for d in shape):
            raise ValueError(f"input_shape must be a non-empty tuple of positive ints, got {shape!r}")
    if min_run_time <= 0:
        raise ValueError(f"min_run_time must be positive, got {min_run_time!r}")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds!r}")

    device = torch.device(hardware.device)
    original_devices = [_model_device(model) for model in models]
    training_flags = {module: module.training for model in models for module in model.modules()}
    original_threads = torch.get_num_threads()
    times: list[list[float]] = [[] for _ in models]
    try:
        torch.set_num_threads(hardware.threads)
        timers, run_times = [], []
        with torch.inference_mode():
            for model, shape, original in zip(models, shapes, original_devices):
                if original is not None and original != device:
                    model.to(device)
                model.eval()
                inputs = torch.randn((hardware.batch_size, *shape), device=device)
                for _ in range(_WARMUP_CALLS):
                    model(inputs)
                timer = benchmark.Timer(
                    stmt="model(inputs)",
                    globals={"model": model, "inputs": inputs},
                    num_threads=hardware.threads,
                    label="measure_latency",
                    description=hardware.key,
                )
                probe = timer.timeit(number=1)
                timers.append(timer)
                # at least MIN_REPEATS timed runs in all, spread over the rounds
                run_times.append(max(min_run_time, 1.5 * MIN_REPEATS * probe.median) / rounds)
            for _ in range(rounds):
                for i, timer in enumerate(timers):
                    times[i] += timer.blocked_autorange(min_run_time=run_times[i]).times
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
