"""The timing engine: what every measured target shares (threads, eval mode, device), and latency.

A *workload* is ``(fn, args)``: the measurers time, profile or meter ``fn(*args)``. A model and its
inputs are the workload ``(model, inputs)``; a family times something else through
:meth:`nastools.supernet.Supernet.workload` (HAT: the encoder, then incremental decoding).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils import benchmark

from nastools.hardware._base import LatencyMeasurement, _positive_int

if TYPE_CHECKING:
    from nastools.hardware._keys import HardwareConfig

#: ``(fn, args)``: the measurers time, profile or meter ``fn(*args)``.
Workload = tuple[Callable[..., Any], tuple]

_WARMUP_CALLS = 3
# Fewer timed runs than this give no usable spread: the run is extended, and flagged if still short.
MIN_REPEATS = 5


def _model_device(model: torch.nn.Module) -> torch.device | None:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return None


def _as_inputs(inputs: object) -> tuple[torch.Tensor, ...]:
    inputs = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    if not inputs or not all(isinstance(t, torch.Tensor) for t in inputs):
        raise ValueError("example inputs must be a tensor or a non-empty tuple of tensors")
    return inputs


def check_workloads(
    workloads: Sequence[Workload], modules: Sequence[torch.nn.Module | None] | None = None
) -> tuple[list[Workload], list[torch.nn.Module | None]]:
    """The workloads as ``(fn, args)`` pairs, and the module each one runs (default: ``fn`` if a module).

    Raises:
        ValueError: A workload that is not a callable and a tuple of its arguments, or ``modules``
            not one per workload.
    """
    checked = []
    for workload in workloads:
        if not (isinstance(workload, tuple) and len(workload) == 2 and callable(workload[0])):
            raise ValueError(
                f"a workload is (fn, args): a callable and the tuple of its positional arguments, "
                f"got {workload!r}"
            )
        fn, args = workload
        if not isinstance(args, tuple):
            raise ValueError(
                f"a workload's args must be a tuple (fn(*args) is measured), got {type(args).__name__}"
            )
        checked.append((fn, args))
    if modules is None:
        modules = [fn if isinstance(fn, torch.nn.Module) else None for fn, _ in checked]
    modules = list(modules)
    if len(modules) != len(checked):
        raise ValueError(
            f"{len(checked)} workloads but {len(modules)} modules: give one module (or None) for each"
        )
    return checked, modules


def on_device(args: tuple, device: torch.device) -> tuple:
    """``args`` with every tensor moved to ``device`` (other arguments as they are)."""
    return tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in args)


@contextlib.contextmanager
def prepared(modules: Sequence[torch.nn.Module | None], hardware: HardwareConfig) -> Iterator[torch.device]:
    """Measure inside this: the modules in eval mode on the target's device, its thread count, inference mode.

    Torch's thread count, the modules' training flags and their devices are restored afterwards,
    also when the workload raises.

    Yields:
        The target's device (move the workloads' tensors there: :func:`on_device`).
    """
    device = torch.device(hardware.device)
    modules = list(dict.fromkeys(m for m in modules if m is not None))
    original_devices = [_model_device(module) for module in modules]
    training_flags = {part: part.training for module in modules for part in module.modules()}
    original_threads = torch.get_num_threads()
    try:
        torch.set_num_threads(hardware.threads)
        for module, original in zip(modules, original_devices):
            if original is not None and original != device:
                module.to(device)
            module.eval()
        with torch.inference_mode():
            yield device
    finally:
        torch.set_num_threads(original_threads)
        for part, flag in training_flags.items():
            part.training = flag
        for module, original in zip(modules, original_devices):
            if original is not None and original != device:
                module.to(original)


def _check_min_run_time(min_run_time: object) -> float:
    if isinstance(min_run_time, bool) or not isinstance(min_run_time, (int, float)) or not min_run_time > 0:
        raise ValueError(f"min_run_time must be a positive number of seconds, got {min_run_time!r}")
    return float(min_run_time)


def time_workloads(
    workloads: Sequence[Workload],
    hardware: HardwareConfig,
    *,
    modules: Sequence[torch.nn.Module | None] | None = None,
    rounds: int = 5,
    min_run_time: float = 0.2,
    max_relative_spread: float = 0.1,
    progress: Callable[[float], object] | None = None,
) -> list[LatencyMeasurement]:
    """Time several workloads ``fn(*args)`` on one target, interleaved: ``rounds`` passes over all of them.

    The callable form of :func:`measure_latencies` (which times ``(model, inputs)`` workloads):
    a family times what its model really does per request, e.g. an encoder and 30 steps of
    incremental decoding. Each pass gives every workload ``min_run_time / rounds`` seconds of
    ``torch.utils.benchmark``'s ``blocked_autorange``, after a few untimed warm-up calls; a
    workload's latency is the median of all its timed blocks over the passes. Interleaving spreads
    the machine's slow and fast phases (other processes, frequency changes) evenly over the
    workloads, which keeps their order stable between two profiling runs; see
    ``benchmarks/latency_repeatability.py``. ``progress(fraction)`` is called as the work advances
    (warm-up and every round of every workload; the fractions add up to one per workload).

    Args:
        workloads: ``(fn, args)`` pairs; tensors in ``args`` are moved to the target's device.
        hardware: Where to run; validated first (thread count, CUDA availability).
        modules: The module each workload runs (None for none), put in eval mode on the target's
            device while timing and restored afterwards; default: ``fn`` where it is a module.
        rounds: Interleaved passes over the workloads.
        min_run_time: Minimum total seconds of timed runs per workload.
        max_relative_spread: Relative spread (IQR / median) above which a result is flagged.
        progress: Called with the fraction of a workload's work just done.

    Example:
        >>> from nastools.hardware import HardwareConfig
        >>> net = torch.nn.Linear(8, 8)
        >>> twice = (lambda x: net(net(x)), (torch.zeros(1, 8),))
        >>> (timing,) = time_workloads([twice], HardwareConfig(threads=1), modules=[net], min_run_time=0.05)
        >>> timing.median_ms > 0
        True
    """
    hardware.validate()
    workloads, modules = check_workloads(workloads, modules)
    min_run_time = _check_min_run_time(min_run_time)
    rounds = _positive_int("rounds", rounds)
    step = 1.0 / (rounds + 1)  # warm-up and probe, then each round: one share each

    def advance() -> None:
        if progress is not None:
            progress(step)

    times: list[list[float]] = [[] for _ in workloads]
    with prepared(modules, hardware) as device:
        timers, run_times = [], []
        for fn, args in workloads:
            args = on_device(args, device)
            for _ in range(_WARMUP_CALLS):
                fn(*args)
            timer = benchmark.Timer(
                stmt="fn(*args)",
                globals={"fn": fn, "args": args},
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

    results = []
    for per_workload in times:
        median_ms = float(np.median(per_workload)) * 1e3
        q1, q3 = np.percentile(per_workload, [25, 75])
        spread_ms = float(q3 - q1) * 1e3
        relative = spread_ms / median_ms if median_ms > 0 else float("inf")
        results.append(
            LatencyMeasurement(
                median_ms=median_ms,
                spread_ms=spread_ms,
                repeats=len(per_workload),
                flagged=relative > max_relative_spread or len(per_workload) < MIN_REPEATS,
            )
        )
    return results


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
    models, use :func:`measure_latencies`, which interleaves them; to time something other than
    ``model(*inputs)``, :func:`time_workloads`.

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

    :func:`time_workloads` of the workloads ``(model, inputs)``: everything is as described there
    and in :func:`measure_latency`.

    Example:
        >>> from nastools.hardware import HardwareConfig
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
    return time_workloads(
        list(zip(models, batches)),
        hardware,
        modules=list(models),
        rounds=rounds,
        min_run_time=min_run_time,
        max_relative_spread=max_relative_spread,
        progress=progress,
    )
