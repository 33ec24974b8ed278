"""WeakNAS baseline (Wu et al. 2021), written from the paper's description."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from nastools.objectives import Objective
from nastools.predictors import PREDICTOR_KINDS, make_predictor, single_threaded
from nastools.search._tactic import Tactic, check_count
from nastools.space import Arch, SearchSpace

__all__ = ["WeakNAS"]


class WeakNAS(Tactic):
    """Weak predictors that narrow down a pool: "Stronger NAS with Weaker Predictors".

    A pool of ``pool_size`` distinct random archs (optionally only those that ``pool_filter``
    keeps, e.g. a MACs window) is drawn once. Round 0 validates ``batch_size`` of them at random;
    every later round refits a predictor of the ``target`` objective on everything validated and
    validates ``batch_size`` archs drawn uniformly from the predicted ``top_k`` not yet validated.
    WeakNAS optimises one objective; its validations count toward the hypervolume like any
    tactic's, and :meth:`best` is its single answer (paper's Table 2).

    Args:
        space: The search space.
        objectives: E.g. ``{"top1": "max", "macs": "min"}``.
        budget: Validations allowed (8-10 rounds of ``batch_size`` in the paper).
        target: The objective label the predictor ranks by (default: the first maximised one).
        pool_size: Random archs in the pool.
        batch_size: Validations per round.
        top_k: Predicted best archs each round samples from.
        predictor: Predictor kind (``"gbm"``, gradient boosting, by default).
        pool_filter: ``fn(archs) -> bool mask`` restricting the pool (e.g. a MACs window).
        seed: Seed of the pool and the draws.
        initial_archs: Joined to the pool and validated first.

    Example:
        >>> from nastools.space import SearchSpace
        >>> space = SearchSpace({f"k_{i}": [3, 5, 7] for i in range(6)})
        >>> tactic = WeakNAS(space, {"acc": "max", "cost": "min"}, 20, pool_size=20, batch_size=5, top_k=10)
        >>> len(tactic.ask())
        5
    """

    name = "weaknas"

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, str] | Iterable[Objective],
        budget: int,
        *,
        target: str | None = None,
        pool_size: int = 10_000,
        batch_size: int = 100,
        top_k: int = 1000,
        predictor: str = "gbm",
        pool_filter: Callable[[Sequence[Arch]], Sequence[bool]] | None = None,
        seed: int = 0,
        initial_archs: Sequence[Arch] | None = None,
    ) -> None:
        super().__init__(space, objectives, budget, seed=seed, initial_archs=initial_archs)
        if target is None:
            maximised = [o for o in self.objectives if o.direction == "max"]
            target = (maximised or list(self.objectives))[0].label
        if target not in self.labels:
            raise ValueError(f"target {target!r} is not an objective; choose one of {list(self.labels)}")
        if predictor not in PREDICTOR_KINDS:
            raise ValueError(f"unknown predictor kind {predictor!r}; choose one of {list(PREDICTOR_KINDS)}")
        if pool_filter is not None and not callable(pool_filter):
            raise ValueError("pool_filter must be a function of a list of archs returning a bool mask")
        self.target = target
        self._target_sign = next(o.sign for o in self.objectives if o.label == target)
        self.pool_size = check_count("pool_size", pool_size)
        self.batch_size = check_count("batch_size", batch_size)
        self.top_k = check_count("top_k", top_k)
        self.predictor = predictor
        self.pool_filter = pool_filter
        self.round = 0
        self._pool: list[Arch] | None = None
        self._pool_keys: list[str] = []
        self._pool_X = np.empty((0, self.space.n_var), dtype=np.int64)

    @property
    def pool(self) -> list[Arch]:
        """The candidate pool (drawn on first use)."""
        if self._pool is None:
            drawn = self.space.sample(self.pool_size, rng=self.rng)
            if self.pool_filter is not None:
                keep = np.asarray(self.pool_filter(drawn), dtype=bool)
                drawn = [arch for arch, k in zip(drawn, keep) if k]
            unique = {self.space.key(a): a for a in (self.initial_archs or []) + drawn}
            if not unique:
                raise ValueError("the WeakNAS pool is empty: pool_filter rejected every sampled arch")
            self._pool = list(unique.values())
            self._pool_keys = list(unique)
            self._pool_X = self.space.encode(self._pool)
        return self._pool

    def _propose(self) -> list[Arch] | None:
        pool = self.pool
        open_rows = np.array(
            [i for i, key in enumerate(self._pool_keys) if key not in self._values], dtype=int
        )
        if not len(open_rows):
            return None
        if self.round == 0:
            first = [self.space.key(a) for a in (self.initial_archs or [])][: self.batch_size]
            rest = np.array([i for i in open_rows if self._pool_keys[i] not in first], dtype=int)
            size = min(self.batch_size - len(first), len(rest))
            picks = self.rng.choice(rest, size=size, replace=False) if size > 0 else []
            proposal = [self.space.from_key(k) for k in first] + [pool[i] for i in sorted(picks)]
        else:
            with single_threaded():
                model = make_predictor(self.space, self.predictor, seed=self.seed)
                model.fit(self.space.encode(self._measured_archs()), self.values[self.target])
                score = self._target_sign * model.predict(self._pool_X[open_rows])  # lower is better
            top = open_rows[np.argsort(score, kind="stable")[: self.top_k]]
            picks = self.rng.choice(top, size=min(self.batch_size, len(top)), replace=False)
            proposal = [pool[i] for i in sorted(picks)]
        self.round += 1
        return proposal

    def best(self) -> dict[str, Any]:
        """The validated arch with the best target value: ``{"arch": key, <objective>: value, ...}``."""
        table = self.results()
        if table.empty:
            raise ValueError("WeakNAS has validated nothing yet")
        row = table.loc[(self._target_sign * table[self.target]).idxmin()]
        return {"arch": row["arch"], **{label: float(row[label]) for label in self.labels}}
