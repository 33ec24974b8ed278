"""Random search: batches of archs drawn uniformly, the baseline every tactic must beat."""

from __future__ import annotations

from typing import Any

from nastools.search._tactic import Tactic, check_budget
from nastools.space import Arch

__all__ = ["RandomSearch"]


class RandomSearch(Tactic):
    """Validate batches of uniformly drawn archs until the budget is spent.

    Args:
        *args: See :class:`Tactic` (space, objectives, n_validations).
        batch_size: Archs per batch (one HV point per batch).
        **kwargs: See :class:`Tactic` (hypervolume, seed, initial_archs: validated first).

    Example:
        >>> from nastools.space import mobilenetv3_space
        >>> tactic = RandomSearch(mobilenetv3_space(), {"top1": "max", "macs": "min"}, 20, batch_size=10)
        >>> len(tactic.ask())
        10
    """

    name = "random"

    def __init__(self, *args: Any, batch_size: int = 50, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batch_size = check_budget("batch_size", batch_size)
        self._started = False

    def config(self) -> dict[str, Any]:  # noqa: D102 - documented on Tactic
        return {**super().config(), "batch_size": self.batch_size}

    def _propose(self) -> list[Arch]:
        if not self._started and self.initial_archs is not None:
            self._started = True
            return self.initial_archs
        self._started = True
        return self.space.sample(self.batch_size, rng=self.rng)
