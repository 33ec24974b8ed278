"""Random search: batches of archs drawn uniformly, the baseline every tactic must beat."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from nastools.objectives import Objective
from nastools.search._tactic import Tactic, check_count
from nastools.space import Arch, SearchSpace

__all__ = ["RandomSearch"]


class RandomSearch(Tactic):
    """Validate batches of uniformly drawn archs until the budget is spent.

    Args:
        space: The search space.
        objectives: E.g. ``{"top1": "max", "macs": "min"}``.
        budget: Validations allowed.
        batch_size: Archs per batch.
        seed: Seed of the draws.
        initial_archs: Validated first.

    Example:
        >>> from nastools.space import SearchSpace
        >>> space = SearchSpace({f"k_{i}": [3, 5, 7] for i in range(6)})
        >>> tactic = RandomSearch(space, {"acc": "max", "cost": "min"}, 20, batch_size=4)
        >>> len(tactic.ask())
        4
    """

    name = "random"

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, str] | Iterable[Objective],
        budget: int,
        *,
        batch_size: int = 50,
        seed: int = 0,
        initial_archs: Sequence[Arch] | None = None,
    ) -> None:
        super().__init__(space, objectives, budget, seed=seed, initial_archs=initial_archs)
        self.batch_size = check_count("batch_size", batch_size)
        self._started = False

    def _propose(self) -> list[Arch]:
        if not self._started and self.initial_archs is not None:
            self._started = True
            return self.initial_archs
        self._started = True
        return self.space.sample(self.batch_size, rng=self.rng)
