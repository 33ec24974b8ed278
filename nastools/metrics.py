"""Metrics: what can be measured of a sub-network, with its direction, unit and kind of evaluation."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ENERGY",
    "GENERIC_METRICS",
    "KINDS",
    "LATENCY",
    "MACS",
    "NASWOT",
    "PARAMS",
    "PEAK_MEMORY",
    "Metric",
]

#: Kinds of evaluation (the paper's three): measured for real, predicted by a model, or a cheap proxy.
KINDS = ("validation", "prediction", "proxy")
_DIRECTIONS = ("min", "max")


@dataclass(frozen=True)
class Metric:
    """A measurable quantity of a sub-network.

    Supernets declare their task metrics (``top1``, ``bleu``, ``perplexity`` ...); the generic ones
    (:data:`GENERIC_METRICS`) exist for every supernet.

    Attributes:
        name: Stored in the ``metric`` column, e.g. ``"top1"``.
        direction: ``"max"`` when larger is better, else ``"min"``.
        unit: For axis labels, e.g. ``"%"`` or ``"ms"``.
        description: One line for tables and figure captions.
        bounds: ``(low, high)`` range used for hypervolume boxes instead of the space's extremes,
            e.g. ``(0, 100)`` for a percentage; None: measured at the smallest and largest sub-network.
        kind: ``"validation"`` (measured for real), ``"prediction"`` (a surrogate model's estimate,
            e.g. OFA's accuracy predictor) or ``"proxy"`` (cheap stand-ins: MACs, parameters,
            zero-cost scores).
        per_hardware: Measured once per hardware config (latency, memory, energy) rather than once per
            arch, by the hardware target's measurer for this name (:data:`nastools.hardware.MEASURERS`).

    Example:
        >>> Metric("top1", "max", "%").label
        'top1 (%)'
    """

    name: str
    direction: str
    unit: str = ""
    description: str = ""
    bounds: tuple[float, float] | None = None
    kind: str = "validation"
    per_hardware: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"metric name must be an identifier such as 'top1', got {self.name!r}")
        if self.direction not in _DIRECTIONS:
            raise ValueError(f"metric {self.name!r} has direction {self.direction!r}; use 'min' or 'max'")
        if self.kind not in KINDS:
            raise ValueError(f"metric {self.name!r} has kind {self.kind!r}; use one of {list(KINDS)}")
        if self.bounds is not None:
            low, high = _bounds_pair(self.bounds, f"metric {self.name!r}: bounds")
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ValueError(
                    f"metric {self.name!r}: bounds must be finite with low < high, got {self.bounds}"
                )
            object.__setattr__(self, "bounds", (low, high))

    @property
    def label(self) -> str:
        """Axis label: the name with its unit."""
        return f"{self.name} ({self.unit})" if self.unit else self.name


def _bounds_pair(bounds: object, what: str) -> tuple[float, float]:
    """``bounds`` as ``(low, high)`` floats, or a one-line error saying a pair of numbers is needed.

    Finiteness and order are the caller's to check (each says what the bounds are for).

    Example:
        >>> _bounds_pair([0, 100], "bounds")
        (0.0, 100.0)
    """
    items = list(bounds) if isinstance(bounds, Iterable) and not isinstance(bounds, (str, bytes)) else []
    if len(items) != 2 or not all(isinstance(b, numbers.Real) and not isinstance(b, bool) for b in items):
        raise ValueError(f"{what} must be a pair (low, high) of numbers, e.g. (0, 100), got {bounds!r}")
    return float(items[0]), float(items[1])


MACS = Metric(
    "macs",
    "min",
    "MACs",
    "multiply-accumulates of one sample's forward pass (convolutions, linear layers)",
    kind="proxy",
)
PARAMS = Metric("params", "min", "parameters", "parameters of the standalone sub-network", kind="proxy")
NASWOT = Metric(
    "naswot",
    "max",
    "",
    "NASWOT zero-cost score (Mellor et al. 2021): log-determinant of the activation-pattern kernel "
    "of one batch",
    kind="proxy",
)
LATENCY = Metric(
    "latency_ms", "min", "ms", "median latency of one batch on a hardware config", per_hardware=True
)
PEAK_MEMORY = Metric(
    "peak_memory_mb",
    "min",
    "MB",
    "peak memory of one forward pass of a batch on a hardware config: weights, inputs and the most the "
    "pass holds allocated at once",
    per_hardware=True,
)
ENERGY = Metric(
    "energy_mj",
    "min",
    "mJ",
    "energy of one forward pass of a batch on a hardware config, from the platform's energy counter "
    "(RAPL, NVML) where one is readable",
    per_hardware=True,
)

#: Metrics every supernet has, besides the task metrics it declares.
GENERIC_METRICS: tuple[Metric, ...] = (MACS, PARAMS, NASWOT, LATENCY, PEAK_MEMORY, ENERGY)
