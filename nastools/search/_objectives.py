"""Objectives: a metric name and whether the search minimises or maximises it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["KNOWN_METRICS", "Objective", "parse_objectives"]

#: Metric names the toolkit measures; hardware-specific variants such as ``"latency_ms@cpu-t1-b1"``
#: and other names are accepted too.
KNOWN_METRICS: tuple[str, ...] = ("top1", "macs", "params", "latency_ms", "bleu")

_DIRECTIONS = ("min", "max")


@dataclass(frozen=True)
class Objective:
    """One search objective.

    Attributes:
        name: The metric name, e.g. ``"top1"`` or ``"latency_ms@cpu-t1-b1"``.
        direction: ``"min"`` or ``"max"``.

    Example:
        >>> Objective("top1", "max").sign
        -1.0
    """

    name: str
    direction: Literal["min", "max"] = "min"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"objective name must be a non-empty string, got {self.name!r}")
        if self.direction not in _DIRECTIONS:
            raise ValueError(
                f"objective {self.name!r} has direction {self.direction!r}; use one of {list(_DIRECTIONS)}"
            )

    @property
    def sign(self) -> float:
        """Factor that turns the metric into a value to minimise (``+1`` for min, ``-1`` for max)."""
        return 1.0 if self.direction == "min" else -1.0


def parse_objectives(
    spec: Mapping[str, str] | Iterable[Objective | tuple[str, str]],
) -> tuple[Objective, ...]:
    """Normalise an objective specification to a tuple of :class:`Objective`.

    Args:
        spec: ``{"top1": "max", "macs": "min"}``, or a sequence of :class:`Objective` or
            ``(name, direction)`` pairs.

    Returns:
        The objectives in the given order.

    Raises:
        ValueError: If ``spec`` is empty, a direction is unknown, or a name repeats.

    Example:
        >>> [o.name for o in parse_objectives({"top1": "max", "macs": "min"})]
        ['top1', 'macs']
    """
    if isinstance(spec, str):
        raise ValueError(f"objectives must be a mapping or a list of Objective, got the string {spec!r}")
    items = spec.items() if isinstance(spec, Mapping) else spec
    objectives = []
    for item in items:
        if isinstance(item, Objective):
            objectives.append(item)
        elif isinstance(item, tuple) and len(item) == 2:
            objectives.append(Objective(*item))
        else:
            raise ValueError(f"cannot read an objective from {item!r}; use Objective(name, direction)")
    if not objectives:
        raise ValueError("at least one objective is needed, e.g. {'top1': 'max', 'macs': 'min'}")
    names = [o.name for o in objectives]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"objective name(s) {duplicated} given more than once")
    return tuple(objectives)
