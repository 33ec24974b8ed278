"""One measurer per per-hardware metric: what a measured target (``cpu-t1-b1``, ``cuda-b64``) can give."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import torch

from nastools.hardware._base import ENERGY_MJ, LATENCY_MS, PEAK_MEMORY_MB, Measurement
from nastools.hardware._energy import energy_counter, measure_energy
from nastools.hardware._memory import measure_peak_memory
from nastools.hardware._timing import Workload, time_workloads

if TYPE_CHECKING:
    from nastools.hardware._keys import HardwareConfig


def _always_available(hardware: HardwareConfig) -> None:
    """Latency and memory can be measured wherever the target itself can run."""


@dataclass(frozen=True)
class Measurer:
    """How one per-hardware metric is measured on a :class:`~nastools.hardware.HardwareConfig`.

    Attributes:
        metric: The metric's name, as stored (``"peak_memory_mb"``).
        measure: ``(workloads, hardware, *, modules, progress, **options) -> measurements``.
        timing_sensitive: Whether other processes on the machine make it noise: the Evaluator
            checks the machine is quiet before measuring it (latency, energy; not memory).
        check: Raises ``ValueError`` (one line) where the metric cannot be measured on this machine,
            before anything runs (energy without a readable counter).

    Example:
        >>> MEASURERS["peak_memory_mb"].timing_sensitive
        False
    """

    metric: str
    measure: Callable[..., Sequence[Measurement]]
    timing_sensitive: bool
    check: Callable[[HardwareConfig], Any] = _always_available

    def __call__(
        self,
        workloads: Sequence[Workload],
        hardware: HardwareConfig,
        *,
        modules: Sequence[torch.nn.Module | None] | None = None,
        **options: Any,
    ) -> list[Measurement]:
        """Measure the workloads on ``hardware`` (see :attr:`measure` for the options)."""
        return list(self.measure(workloads, hardware, modules=modules, **options))


#: The per-hardware metrics a measured target gives, each with its measurer.
MEASURERS: Mapping[str, Measurer] = MappingProxyType(
    {
        LATENCY_MS: Measurer(LATENCY_MS, time_workloads, timing_sensitive=True),
        PEAK_MEMORY_MB: Measurer(PEAK_MEMORY_MB, measure_peak_memory, timing_sensitive=False),
        ENERGY_MJ: Measurer(ENERGY_MJ, measure_energy, timing_sensitive=True, check=energy_counter),
    }
)
