"""Channel counts of elastic layers: OFA's rounding of widths (torch-free, so that configs use it)."""

from __future__ import annotations

__all__ = ["make_divisible"]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to a multiple of ``divisor`` without going down by more than 10% (OFA's rule).

    Example:
        >>> make_divisible(64 * 0.65), make_divisible(256 * 0.8), make_divisible(round(256 * 0.35))
        (40, 208, 88)
    """
    min_value = divisor if min_value is None else min_value
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value
