"""Objectives: a metric, whether the search minimises or maximises it, and on which hardware."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["Objective", "column_label", "parse_objectives"]

_DIRECTIONS = ("min", "max")


def column_label(metric: str, hardware: str | None) -> str:
    """The column name of a metric in tables: ``metric``, or ``metric@hardware`` per hardware target.

    Example:
        >>> column_label("latency_ms", "cpu-t1-b1"), column_label("top1", "")
        ('latency_ms@cpu-t1-b1', 'top1')
    """
    return f"{metric}@{hardware}" if hardware else metric


@dataclass(frozen=True)
class Objective:
    """One search objective: a metric, a direction and, for per-hardware metrics, the hardware key.

    One value from the API to the figures: tactics, the Evaluator and the analysis take it as it
    is; :attr:`label` (``"latency_ms@cpu-t1-b1"``) names its column in tables and is never parsed
    back, except from user input by :meth:`from_label`.

    Attributes:
        metric: A metric name, e.g. ``"top1"`` or ``"latency_ms"``.
        direction: ``"min"`` or ``"max"``.
        hardware: The hardware key of a per-hardware metric (``"cpu-t1-b1"``, ``"lut-note10"``),
            else None. A :class:`~nastools.hardware.HardwareConfig` is replaced by its key.

    Example:
        >>> latency = Objective("latency_ms", "min", "cpu-t1-b1")
        >>> latency.label, latency.sign
        ('latency_ms@cpu-t1-b1', 1.0)
    """

    metric: str
    direction: str
    hardware: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not self.metric.isidentifier():
            raise ValueError(f"objective metric must be a metric name such as 'top1', got {self.metric!r}")
        if self.direction not in _DIRECTIONS:
            raise ValueError(
                f"objective {self.metric!r} has direction {self.direction!r}; use one of {list(_DIRECTIONS)}"
            )
        hardware = self.hardware
        if hardware is not None and not isinstance(hardware, str):
            hardware = getattr(hardware, "key", hardware)
        if hardware is not None and (
            not isinstance(hardware, str) or not hardware or hardware != hardware.strip() or "@" in hardware
        ):
            raise ValueError(f"objective {self.metric!r}: bad hardware key {hardware!r}, e.g. 'cpu-t1-b1'")
        object.__setattr__(self, "hardware", hardware)

    @property
    def label(self) -> str:
        """Column name: ``metric`` or ``metric@hardware``."""
        return column_label(self.metric, self.hardware)

    @property
    def sign(self) -> float:
        """Factor that turns the metric into a value to minimise (``+1`` for min, ``-1`` for max)."""
        return 1.0 if self.direction == "min" else -1.0

    @classmethod
    def from_label(cls, label: str, direction: str) -> Objective:
        """Read a user's ``"metric"`` or ``"metric@hardware"`` (notebook parameters, the command line).

        Example:
            >>> Objective.from_label("latency_ms@lut-note10", "min").hardware
            'lut-note10'
        """
        if not isinstance(label, str):
            raise ValueError(f"an objective is named by a string such as 'top1', got {label!r}")
        metric, sep, hardware = label.partition("@")
        if sep and not hardware:
            raise ValueError(f"objective {label!r} names no hardware after '@', e.g. 'latency_ms@cpu-t1-b1'")
        return cls(metric, direction, hardware if sep else None)


def parse_objectives(
    spec: Mapping[str, str] | Iterable[Objective | tuple[str, str] | tuple[str, str, str]],
) -> tuple[Objective, ...]:
    """Normalise an objective specification to a tuple of :class:`Objective`.

    The order is kept: the first objective is the one a front is sorted and ranked by.

    Args:
        spec: ``{"top1": "max", "latency_ms@cpu-t1-b1": "min"}``, or a sequence of
            :class:`Objective`, ``(label, direction)`` or ``(metric, direction, hardware)`` (tuples
            or lists: ``[["top1", "max"], ["latency_ms@cpu-t1-b1", "min"]]`` is how a search's
            objectives are stored, see :meth:`Tactic.config <nastools.search.Tactic.config>`).

    Returns:
        The objectives in the given order.

    Raises:
        ValueError: If ``spec`` is empty or a string, a direction is unknown, or an objective repeats.

    Example:
        >>> [o.label for o in parse_objectives({"top1": "max", "latency_ms@cpu-t1-b1": "min"})]
        ['top1', 'latency_ms@cpu-t1-b1']
        >>> parse_objectives([["macs", "min"], ["top1", "max"]])[0]
        Objective(metric='macs', direction='min', hardware=None)
    """
    if isinstance(spec, str):
        raise ValueError(f"objectives must be a mapping or a list of Objective, got the string {spec!r}")
    if isinstance(spec, Mapping):
        objectives = [Objective.from_label(label, direction) for label, direction in spec.items()]
    else:
        objectives = []
        for item in spec:
            if isinstance(item, Objective):
                objectives.append(item)
            elif isinstance(item, (tuple, list)) and len(item) == 2:
                objectives.append(Objective.from_label(*item))
            elif isinstance(item, (tuple, list)) and len(item) == 3:
                objectives.append(Objective(*item))
            else:
                raise ValueError(f"cannot read an objective from {item!r}; use Objective(metric, direction)")
    if not objectives:
        raise ValueError("at least one objective is needed, e.g. {'top1': 'max', 'macs': 'min'}")
    labels = [o.label for o in objectives]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(f"objective(s) {repeated} given more than once")
    return tuple(objectives)
