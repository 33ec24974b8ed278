"""The machine as measurements depend on it, and whether it is quiet enough to time anything now."""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import time
from pathlib import Path

import torch

from nastools.hardware._timing import measure_latencies


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
    one thread by :func:`~nastools.hardware.measure_latencies`, as a sub-network is. On a shared
    host the cores can be idle while other machines (VMs) use the shared cache: :func:`busy_cores`
    sees nothing, yet sub-networks whose weights live in that cache vary by 30-40 % between blocks
    (measured here: 41 % for a 16 MiB probe while 1 MiB and 64 MiB ones varied 3-5 %). Above the
    flagging threshold (0.1), latency timed now will be flagged.

    Example:
        >>> noise = timing_noise(0.05)
        >>> 0.0 <= noise < float("inf")
        True
    """
    from nastools.hardware._keys import HardwareConfig

    probe = _noise_probe()
    x = torch.zeros(1, probe[0].in_features)
    (timing,) = measure_latencies([probe], [x], HardwareConfig(threads=1), min_run_time=seconds)
    return timing.spread_ms / timing.median_ms


def busy_cores(interval: float = 0.3) -> float | None:
    """How many cores other processes keep busy, over ``interval`` seconds (None where unknown).

    Latency timed while other processes use the cores is noise: a 66 ms batch was measured at
    2,900 ms on 2 shared cores. The :class:`~nastools.evaluation.Evaluator` checks this before it
    times anything (latency, energy).

    Example:
        >>> busy = busy_cores(0.05)
        >>> busy is None or 0.0 <= busy <= os.cpu_count()
        True
    """
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
