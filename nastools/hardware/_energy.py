"""Energy of one forward pass, read from the platform's energy counter where one is readable.

* CPU targets: Linux's RAPL counters (``/sys/class/powercap/intel-rapl:<package>/energy_uj``,
  Intel, and AMD Zen from Linux 5.8), summed over the CPU packages. RAPL meters the whole package:
  its idle power and other processes' work during the calls count too, as in any RAPL reading
  (codecarbon's, HW-GPT-Bench's); measure on a quiet machine. Many systems let only root read
  ``energy_uj``.
* CUDA targets: the GPU board's total-energy counter through NVML (``nvidia-ml-py``; Volta or newer).

Where no counter is readable, :func:`energy_counter` raises a one-line "not available here" error,
before anything is measured.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from nastools.hardware._base import EnergyMeasurement, _positive_int
from nastools.hardware._timing import (
    _WARMUP_CALLS,
    Workload,
    _check_min_run_time,
    check_workloads,
    on_device,
    prepared,
)

if TYPE_CHECKING:
    from nastools.hardware._keys import HardwareConfig

#: Where Linux exposes the RAPL counters (the tests point it at a folder of their own).
POWERCAP = Path("/sys/class/powercap")
_PACKAGE_ZONE = re.compile(r"intel-rapl:\d+")  # a CPU package; intel-rapl:0:1 ... are parts of one


@dataclass(frozen=True)
class RaplCounter:
    """The RAPL energy counters of the CPU packages (``energy_uj`` files, microjoules, wrapping).

    Example:
        >>> RaplCounter.find(Path("/no/such/folder"))
        Traceback (most recent call last):
        ...
        ValueError: energy_mj is not available here: no RAPL counter readable at /no/such/folder/...
    """

    #: The package zones' folders.
    zones: tuple[Path, ...]
    #: Each zone's ``max_energy_range_uj``: where its counter wraps to 0.
    ranges: tuple[int, ...]

    @classmethod
    def find(cls, root: Path | None = None) -> RaplCounter:
        """The readable package counters under ``root`` (default :data:`POWERCAP`).

        Raises:
            ValueError: No package zone, or one whose counter cannot be read (one line).
        """
        root = POWERCAP if root is None else Path(root)
        zones = sorted(p for p in root.glob("intel-rapl:*") if _PACKAGE_ZONE.fullmatch(p.name))
        pattern = root / "intel-rapl:*" / "energy_uj"
        needs = (
            "needs Linux's powercap RAPL driver (Intel, or AMD Zen from Linux 5.8) and read access to "
            "energy_uj: root, or 'sudo chmod a+r' on those files"
        )
        if not zones:
            raise ValueError(
                f"energy_mj is not available here: no RAPL counter readable at {pattern} ({needs})"
            )
        ranges = []
        for zone in zones:
            try:
                int((zone / "energy_uj").read_text())
                ranges.append(int((zone / "max_energy_range_uj").read_text()))
            except (OSError, ValueError) as error:
                raise ValueError(
                    f"energy_mj is not available here: the RAPL counter {zone / 'energy_uj'} is not readable "
                    f"({type(error).__name__}; {needs})"
                ) from None
        return cls(tuple(zones), tuple(ranges))

    def read(self) -> tuple[int, ...]:
        """Each package's counter now, in microjoules."""
        return tuple(int((zone / "energy_uj").read_text()) for zone in self.zones)

    def millijoules(self, before: tuple[int, ...], after: tuple[int, ...]) -> float:
        """Energy between two readings, in millijoules (a counter that wrapped once is unwrapped)."""
        total = 0
        for start, end, wrap in zip(before, after, self.ranges):
            total += end - start if end >= start else end + wrap - start
        return total / 1e3


@dataclass(frozen=True)
class NvmlCounter:
    """A GPU's total-energy counter through NVML (millijoules since the driver loaded)."""

    #: The NVML device handle.
    handle: object

    @classmethod
    def find(cls, device: torch.device) -> NvmlCounter:
        """The counter of CUDA ``device``.

        Raises:
            ValueError: No NVML, or a GPU without the counter (one line).
        """
        needs = "needs the nvidia-ml-py package (pip install nvidia-ml-py) and a Volta or newer NVIDIA GPU"
        try:
            import pynvml

            handle = torch.cuda._get_pynvml_handler(device)  # maps CUDA_VISIBLE_DEVICES to NVML's index
            pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except Exception as error:  # noqa: BLE001 - any failure means no readable counter
            detail = str(error).splitlines()[0][:100] if str(error) else type(error).__name__
            raise ValueError(
                f"energy_mj is not available here: {device} has no energy counter readable through NVML "
                f"({detail}; {needs})"
            ) from None
        return cls(handle)

    def read(self) -> tuple[int, ...]:
        """The counter now, in millijoules."""
        import pynvml

        return (int(pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)),)

    def millijoules(self, before: tuple[int, ...], after: tuple[int, ...]) -> float:
        """Energy between two readings, in millijoules."""
        return float(after[0] - before[0])


def energy_counter(hardware: HardwareConfig) -> RaplCounter | NvmlCounter:
    """The energy counter that meters ``hardware``'s device: RAPL for the CPU, NVML for a CUDA GPU.

    Raises:
        ValueError: ``energy_mj is not available here: ...`` (one line: what is missing, what it needs).
    """
    device = torch.device(hardware.device)
    if device.type == "cuda":
        return NvmlCounter.find(device)
    return RaplCounter.find()


def measure_energy(
    workloads: Sequence[Workload],
    hardware: HardwareConfig,
    *,
    modules: Sequence[torch.nn.Module | None] | None = None,
    min_run_time: float = 1.0,
    blocks: int = 5,
    progress: Callable[[float], object] | None = None,
) -> list[EnergyMeasurement]:
    """Energy of one call ``fn(*args)`` of each workload on one target, in millijoules.

    The counter (:func:`energy_counter`) is found first: where none is readable, nothing runs.
    After a few warm-up calls, each workload runs in ``blocks`` blocks of about
    ``min_run_time / blocks`` seconds; a block's energy divided by its calls is one reading, and the
    median and interquartile range of the readings are kept. Under the target's thread count, in
    eval and inference mode, with the state restored afterwards, as latency is timed.

    Args:
        workloads: ``(fn, args)`` pairs; tensors in ``args`` are moved to the target's device.
        hardware: Where to run; validated first.
        modules: The module each workload runs (None for none), moved and put in eval mode while
            measuring; default: ``fn`` where it is a module.
        min_run_time: Seconds of metered calls per workload.
        blocks: Readings per workload.
        progress: Called with the fraction of a workload's work just done (one per workload).

    Raises:
        ValueError: ``energy_mj is not available here``: no readable counter (before anything runs).
    """
    hardware.validate()
    counter = energy_counter(hardware)
    workloads, modules = check_workloads(workloads, modules)
    min_run_time = _check_min_run_time(min_run_time)
    blocks = _positive_int("blocks", blocks)
    step = 1.0 / (blocks + 1)
    results = []
    with prepared(modules, hardware) as device:
        synchronize = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
        for fn, args in workloads:
            args = on_device(args, device)
            for _ in range(_WARMUP_CALLS):
                fn(*args)
            synchronize()
            start = time.perf_counter()
            fn(*args)
            synchronize()
            once = time.perf_counter() - start
            calls = max(1, math.ceil(min_run_time / blocks / max(once, 1e-6)))
            if progress is not None:
                progress(step)
            readings = []
            for _ in range(blocks):
                synchronize()
                before = counter.read()
                for _ in range(calls):
                    fn(*args)
                synchronize()
                readings.append(counter.millijoules(before, counter.read()) / calls)
                if progress is not None:
                    progress(step)
            q1, median, q3 = np.percentile(readings, [25, 50, 75])
            results.append(
                EnergyMeasurement(median_mj=float(median), spread_mj=float(q3 - q1), repeats=blocks)
            )
    return results
