"""Observers of a running tactic, kept apart from it as pymoo keeps callbacks apart from algorithms."""

from __future__ import annotations

import pandas as pd

from nastools.hypervolume import HypervolumeIndicator
from nastools.search._tactic import Tactic

__all__ = ["HypervolumeTrace"]


class HypervolumeTrace:
    """Records the hypervolume of everything a tactic validated after each batch it is told.

    Pass it to :func:`~nastools.search.run_tactic` (``callbacks=[trace]``), or call it after each
    ``tell`` when driving a tactic by hand.

    Args:
        indicator: The hypervolume in a fixed box (its objectives must be the tactic's).

    Example:
        >>> trace = HypervolumeTrace(indicator)  # doctest: +SKIP
        >>> run_tactic(tactic, evaluator, callbacks=[trace])  # doctest: +SKIP
        >>> trace.frame().tail(1)  # doctest: +SKIP
    """

    def __init__(self, indicator: HypervolumeIndicator) -> None:
        self.indicator = indicator
        self.rows: list[dict[str, float]] = []

    def __call__(self, tactic: Tactic) -> None:
        """Append ``(n_validated, hypervolume)`` for the tactic's current validations."""
        labels = [o.label for o in self.indicator.objectives]
        if labels != list(tactic.labels):
            raise ValueError(
                f"hypervolume objectives {labels} differ from the tactic's {list(tactic.labels)}"
            )
        self.rows.append({"n_validated": tactic.n_validated, "hypervolume": self.indicator(tactic.values)})

    @property
    def last(self) -> float:
        """The latest hypervolume (NaN before the first batch)."""
        return self.rows[-1]["hypervolume"] if self.rows else float("nan")

    def frame(self) -> pd.DataFrame:
        """The hypervolume after each batch: columns ``n_validated`` and ``hypervolume``."""
        return pd.DataFrame(self.rows, columns=["n_validated", "hypervolume"])
