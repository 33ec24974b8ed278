"""Look-up-table targets: a platform nothing runs on here, whose latencies a table gives."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from nastools.hardware._base import LATENCY_MS, Hardware, LatencyMeasurement

if TYPE_CHECKING:
    from nastools.supernet import Supernet

_LUT_KEY_RE = re.compile(r"lut-[a-z0-9][a-z0-9.\-]*")


class LookupTableHardware(Hardware):
    """A platform whose latencies come from a function of the arch, keyed ``lut-<platform>``.

    Nothing runs here: the function (typically a sum of per-layer table entries that a supernet
    family reads from published files) gives one value per arch, stored with spread 0 and 1 repeat.
    A table gives latency only: any other metric is refused (:meth:`check_metric`).

    Args:
        key: ``lut-<platform>``: lower-case letters, digits, ``.`` and ``-``, e.g. ``"lut-note10"``.
        predict: ``archs -> latencies in ms``.
        description: What the table was measured on, for reports.
        check: Called by :meth:`validate`: raises when the table cannot serve (e.g. lacks layers
            the supernet has), before anything is measured.

    Example:
        >>> hw = LookupTableHardware("lut-toy", lambda archs: [1.0 + a["d"] for a in archs])
        >>> hw.key, hw.latencies(None, [{"d": 2}], [None])[0].median_ms
        ('lut-toy', 3.0)
        >>> hw.check_metric("peak_memory_mb")
        Traceback (most recent call last):
        ...
        ValueError: look-up table 'lut-toy' gives latency_ms only, not peak_memory_mb; ...
    """

    needs_subnet = False
    metrics = (LATENCY_MS,)

    def __init__(
        self,
        key: str,
        predict: Callable[[Sequence[dict]], Sequence[float]],
        description: str = "",
        check: Callable[[], None] | None = None,
    ) -> None:
        if not isinstance(key, str) or not _LUT_KEY_RE.fullmatch(key):
            raise ValueError(
                f"bad look-up-table hardware key {key!r}: expected 'lut-<platform>' in lower-case letters, "
                "digits, '.' and '-', e.g. 'lut-note10'"
            )
        self.key = key
        self.predict = predict
        self.description = description
        self.check = check

    def validate(self) -> None:
        """Run the table's check (see ``check``)."""
        if self.check is not None:
            self.check()

    def check_metric(self, metric: str) -> None:
        """Raise ``ValueError`` (one line) for any metric but ``latency_ms``: the table has nothing else."""
        if metric != LATENCY_MS:
            raise ValueError(
                f"look-up table {self.key!r} gives latency_ms only, not {metric}; measure {metric} on a "
                "measured config such as 'cpu-t1-b1'"
            )

    def __repr__(self) -> str:
        return f"LookupTableHardware({self.key!r})"

    def latencies(
        self,
        supernet: Supernet,
        archs: Sequence[dict],
        subnets: Sequence[torch.nn.Module | None],
        **timing: Any,
    ) -> list[LatencyMeasurement]:
        """The table's latency of each arch (spread 0, 1 repeat, never flagged)."""
        values = np.asarray(self.predict(list(archs)), dtype=np.float64).reshape(-1)
        if len(values) != len(archs):
            raise ValueError(f"{self.key} gave {len(values)} latencies for {len(archs)} archs")
        return [LatencyMeasurement(float(v), 0.0, 1, False) for v in values]
