"""The ``Hardware`` contract, and what its measurers return."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

if TYPE_CHECKING:
    from nastools.supernet import Supernet

#: The per-hardware metrics with a measurer (:data:`~nastools.hardware.MEASURERS`), as named in the store.
LATENCY_MS = "latency_ms"
PEAK_MEMORY_MB = "peak_memory_mb"
ENERGY_MJ = "energy_mj"


class Measurement(Protocol):
    """What a per-hardware measurer gives for one arch: the stored value, its spread and repeats."""

    @property
    def value(self) -> float:
        """The stored value (a median, or a peak)."""

    @property
    def spread(self) -> float:
        """How much the repeats varied, in the value's unit."""

    @property
    def repeats(self) -> int:
        """How many measurements the value comes from."""

    @property
    def flagged(self) -> bool:
        """Whether the measurement is noise and should be repeated."""


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
        >>> m.relative_spread, m.value
        (0.05, 2.0)
    """

    median_ms: float
    spread_ms: float
    repeats: int
    flagged: bool

    @property
    def value(self) -> float:
        """The stored value: :attr:`median_ms`."""
        return self.median_ms

    @property
    def spread(self) -> float:
        """The stored spread: :attr:`spread_ms`."""
        return self.spread_ms

    @property
    def relative_spread(self) -> float:
        """Spread relative to the median (``inf`` if the median is zero)."""
        if self.median_ms <= 0:
            return float("inf")
        return self.spread_ms / self.median_ms


@dataclass(frozen=True)
class MemoryMeasurement:
    """Peak memory of one forward pass (one call of the workload) on one hardware target.

    Attributes:
        peak_mb: The largest of the repeats' peaks, in MB (2**20 bytes): the weights and inputs of
            the call plus the most it held allocated at once (:func:`~nastools.hardware.measure_peak_memory`).
        spread_mb: Largest minus smallest peak over the repeats (0 for a deterministic workload).
        repeats: Number of profiled calls.

    Example:
        >>> MemoryMeasurement(peak_mb=12.5, spread_mb=0.0, repeats=3).value
        12.5
    """

    peak_mb: float
    spread_mb: float
    repeats: int
    #: Memory is not flagged: other processes do not change what a call allocates.
    flagged: bool = False

    @property
    def value(self) -> float:
        """The stored value: :attr:`peak_mb`."""
        return self.peak_mb

    @property
    def spread(self) -> float:
        """The stored spread: :attr:`spread_mb`."""
        return self.spread_mb


@dataclass(frozen=True)
class EnergyMeasurement:
    """Energy of one forward pass (one call of the workload) on one hardware target.

    Attributes:
        median_mj: Median over the measured blocks of the counter's energy per call, in millijoules.
        spread_mj: Interquartile range of the blocks' energy per call, in millijoules.
        repeats: Number of measured blocks (each of many calls).

    Example:
        >>> EnergyMeasurement(median_mj=3.0, spread_mj=0.2, repeats=5).value
        3.0
    """

    median_mj: float
    spread_mj: float
    repeats: int
    #: Energy is not flagged (only latency is, by the timing-noise rule).
    flagged: bool = False

    @property
    def value(self) -> float:
        """The stored value: :attr:`median_mj`."""
        return self.median_mj

    @property
    def spread(self) -> float:
        """The stored spread: :attr:`spread_mj`."""
        return self.spread_mj


class Hardware(ABC):
    """Where a sub-network's per-hardware metrics come from: a stable key, the metrics it gives, how.

    A subclass implements :meth:`latencies`; one that gives more than latency lists its metrics in
    :attr:`metrics` and overrides :meth:`measure`.
    """

    #: Stable name stored with every measurement, e.g. ``"cpu-t1-b1"`` or ``"lut-note10"``.
    key: str
    #: Whether measuring needs the extracted sub-network (False for look-up tables).
    needs_subnet: bool = True
    #: The per-hardware metrics this target gives (:meth:`check_metric` says whether it can now).
    metrics: tuple[str, ...] = (LATENCY_MS,)

    def host(self) -> str:
        """The machine whose measurements these are (``""``: the same everywhere, e.g. a table)."""
        return ""

    def validate(self) -> None:  # noqa: B027 - optional hook
        """Raise ``ValueError`` if this target cannot give measurements on this machine."""

    def check_metric(self, metric: str) -> None:
        """Raise ``ValueError`` (one line) if this target cannot give ``metric`` here; nothing is measured.

        Args:
            metric: A per-hardware metric's name, e.g. ``"peak_memory_mb"``.
        """
        if metric not in self.metrics:
            raise ValueError(
                f"hardware {self.key!r} gives {', '.join(self.metrics)} only, not {metric!r}; measure "
                f"{metric} on a measured config such as 'cpu-t1-b1'"
            )

    def measure(
        self,
        metric: str,
        supernet: Supernet,
        archs: Sequence[dict],
        subnets: Sequence[torch.nn.Module | None],
        **options: Any,
    ) -> list[Measurement]:
        """``metric`` of each arch (``subnets[i]`` is its extracted module when :attr:`needs_subnet`).

        Args:
            metric: One of :attr:`metrics`.
            supernet: Gives what is measured (:meth:`~nastools.supernet.Supernet.workload`).
            archs: The sub-networks.
            subnets: Their standalone modules (or None when not needed).
            **options: The measurer's options (measured targets only).

        Raises:
            ValueError: A metric this target does not give (:meth:`check_metric`), before measuring.
        """
        self.check_metric(metric)
        if metric != LATENCY_MS:
            raise NotImplementedError(
                f"{type(self).__name__} lists {metric!r} in metrics but has no measure()"
            )
        return list(self.latencies(supernet, archs, subnets, **options))

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
            supernet: Gives what is timed (:meth:`~nastools.supernet.Supernet.workload`).
            archs: The sub-networks.
            subnets: Their standalone modules (or None when not needed).
            **timing: Options of :func:`~nastools.hardware.time_workloads` (measured targets only).
        """


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
