"""Metrics: what can be measured of a sub-network, with its direction, unit and kind of evaluation."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["GENERIC_METRICS", "KINDS", "LATENCY", "MACS", "NASWOT", "PARAMS", "Metric"]

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
        per_hardware: Measured once per hardware config (latency) rather than once per arch.

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
            low, high = (float(b) for b in self.bounds)
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ValueError(
                    f"metric {self.name!r}: bounds must be finite with low < high, got {self.bounds}"
                )
            object.__setattr__(self, "bounds", (low, high))

    @property
    def label(self) -> str:
        """Axis label: the name with its unit."""
        return f"{self.name} ({self.unit})" if self.unit else self.name


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

#: Metrics every supernet has, besides the task metrics it declares.
GENERIC_METRICS: tuple[Metric, ...] = (MACS, PARAMS, NASWOT, LATENCY)
