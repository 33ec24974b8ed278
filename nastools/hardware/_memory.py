"""Peak memory of one forward pass: the weights and inputs, plus the most the call holds allocated at once.

What is counted, on every device alike:

* the bytes of the module's parameters and buffers (each storage once: tied weights count once)
  and of the workload's tensor arguments, which are resident while the call runs; and
* the peak of what the call itself allocates above the level at its start (activations,
  workspaces, outputs), measured at the allocator:

  - CPU: ``torch.profiler`` with ``profile_memory=True`` reports every allocation and free made
    through torch's CPU allocator during the call; the peak is the largest running total of those
    events in time order. Memory that a library allocates outside torch's allocator (a BLAS or
    oneDNN private buffer) is not seen.
  - CUDA: ``torch.cuda.reset_peak_memory_stats`` before the call and ``max_memory_allocated`` after
    it, minus ``memory_allocated`` at its start (the caching allocator's blocks, rounded up to 512
    bytes; memory it keeps reserved but unallocated is not counted).

The call is made once untimed first (lazy initialisation, e.g. oneDNN's weight caches, is not a
forward pass's memory), then ``repeats`` times; the largest peak is kept. MB are 2**20 bytes.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import torch

from nastools.hardware._base import MemoryMeasurement, _positive_int
from nastools.hardware._timing import Workload, check_workloads, on_device, prepared

if TYPE_CHECKING:
    from nastools.hardware._keys import HardwareConfig

_MB = 2**20


def resident_bytes(module: torch.nn.Module | None, args: tuple) -> int:
    """Bytes of the module's parameters and buffers and of the tensors in ``args``, each storage once.

    Example:
        >>> resident_bytes(torch.nn.Linear(4, 4, bias=False), (torch.zeros(2, 4),))
        96
    """
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    if module is not None:
        tensors += [*module.parameters(), *module.buffers()]
    storages = {}
    for tensor in tensors:
        storage = tensor.untyped_storage()
        storages[(tensor.device, storage.data_ptr())] = storage.nbytes()
    return sum(storages.values())


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Hide what native code writes to stderr meanwhile (Kineto logs two lines per profile)."""
    if sys.stderr is not None:
        sys.stderr.flush()  # what Python wrote before goes out now, not into the void
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _cpu_call_peak(fn: Callable, args: tuple) -> int:
    """The largest running total of the allocations and frees ``fn(*args)`` makes (CPU allocator)."""
    from torch.profiler import ProfilerActivity, profile

    tracer = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with _native_stderr_silenced():  # only the profiler's start and stop, never the call's own output
        tracer.__enter__()
    try:
        fn(*args)
    finally:
        with _native_stderr_silenced():
            tracer.__exit__(None, None, None)
    results = getattr(tracer.profiler, "kineto_results", None)
    if results is None:
        raise RuntimeError("torch.profiler gave no events: is another profiler running? peak memory needs it")
    events = [
        (event.start_ns(), event.nbytes())
        for event in results.events()
        if event.name() == "[memory]" and event.device_type() == torch.autograd.DeviceType.CPU
    ]
    events.sort(key=lambda event: event[0])  # stable: events of one time keep their order
    running = peak = 0
    for _, nbytes in events:
        running += nbytes
        peak = max(peak, running)
    return peak


def _cuda_call_peak(fn: Callable, args: tuple, device: torch.device) -> int:
    """What ``fn(*args)`` allocated at most above the level at its start (CUDA caching allocator)."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    start = torch.cuda.memory_allocated(device)
    fn(*args)
    torch.cuda.synchronize(device)
    return max(0, torch.cuda.max_memory_allocated(device) - start)


def measure_peak_memory(
    workloads: Sequence[Workload],
    hardware: HardwareConfig,
    *,
    modules: Sequence[torch.nn.Module | None] | None = None,
    repeats: int = 3,
    progress: Callable[[float], object] | None = None,
) -> list[MemoryMeasurement]:
    """Peak memory of one call ``fn(*args)`` of each workload on one target, in MB (see the module).

    Under the target's thread count, in eval mode and inference mode, as latency is timed; the
    state is restored afterwards (:func:`~nastools.hardware.time_workloads`).

    Args:
        workloads: ``(fn, args)`` pairs; tensors in ``args`` are moved to the target's device.
        hardware: Where to run; validated first.
        modules: The module each workload runs (None for none): its weights are counted, and it is
            moved and put in eval mode as for timing; default: ``fn`` where it is a module.
        repeats: Profiled calls per workload after one untimed call; the largest peak is kept.
        progress: Called with the fraction of a workload's work just done (one per workload).

    Example:
        >>> from nastools.hardware import HardwareConfig
        >>> net = torch.nn.Linear(256, 256)
        >>> (memory,) = measure_peak_memory([(net, (torch.zeros(64, 256),))], HardwareConfig(threads=1))
        >>> round(memory.peak_mb, 2)  # weights 0.25 + input 0.06 + output 0.06
        0.38
    """
    hardware.validate()
    workloads, modules = check_workloads(workloads, modules)
    repeats = _positive_int("repeats", repeats)
    results = []
    with prepared(modules, hardware) as device:
        for (fn, args), module in zip(workloads, modules):
            args = on_device(args, device)
            fn(*args)
            if progress is not None:
                progress(1 / (repeats + 1))
            peaks = []
            for _ in range(repeats):
                peaks.append(
                    _cuda_call_peak(fn, args, device) if device.type == "cuda" else _cpu_call_peak(fn, args)
                )
                if progress is not None:
                    progress(1 / (repeats + 1))
            resident = resident_bytes(module, args)
            results.append(
                MemoryMeasurement(
                    peak_mb=(resident + max(peaks)) / _MB,
                    spread_mb=(max(peaks) - min(peaks)) / _MB,
                    repeats=repeats,
                )
            )
    return results
