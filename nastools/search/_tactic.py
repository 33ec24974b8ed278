"""The ask/tell contract every search tactic follows, with validation counting and the HV trace."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from nastools.search._hypervolume import HypervolumeIndicator, pareto_front_mask
from nastools.search._objectives import Objective, parse_objectives
from nastools.space import Arch, SearchSpace

__all__ = ["Tactic", "check_budget"]

#: How many proposals in a row may consist only of already validated archs before a tactic stops.
_MAX_IDLE_PROPOSALS = 50


def check_budget(name: str, value: int) -> int:
    """Return ``value`` as an int, or raise a ``ValueError`` naming ``name`` when it is not positive."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class Tactic(ABC):
    """A search tactic with an ask/tell interface over validations (measurements of real archs).

    ``ask()`` returns canonical archs that still need validating (never one validated before, never
    more than the remaining budget; an empty list when the tactic is finished); ``tell(archs,
    values)`` hands back their measured objective values. The base class keeps every validated
    arch with its values, counts validations and, after each ``tell``, appends the hypervolume of
    everything validated so far to :attr:`trace`, so that any two tactics compare on "HV vs number
    of validations". Proposals a subclass makes of archs that were validated already are answered
    from memory without spending budget.

    Subclasses implement :meth:`_propose` (the next batch, or None when finished) and, when they
    keep state of their own (an evolutionary algorithm's population), override :meth:`_receive`
    (the values of a whole proposed batch); the others read what they need from the base's record.

    Args:
        space: The search space.
        objectives: E.g. ``{"top1": "max", "macs": "min"}``; names are the measured columns.
        n_validations: Budget: the tactic stops after this many validations.
        hypervolume: Indicator for the trace (fixed bounds); None records no trace.
        seed: Seed of the tactic's random choices.
        initial_archs: Warm start: archs for the first batch or population instead of random ones
            (e.g. :func:`best_population` of an earlier search).
    """

    #: Short name stored with the search (``searches.tactic`` in the store).
    name = "tactic"

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, str] | Iterable[Objective],
        n_validations: int,
        *,
        hypervolume: HypervolumeIndicator | None = None,
        seed: int = 0,
        initial_archs: Sequence[Mapping[str, int]] | None = None,
    ) -> None:
        self.space = space
        self.objectives = parse_objectives(objectives)
        self.n_validations_max = check_budget("n_validations", n_validations)
        if hypervolume is not None and [o.name for o in hypervolume.objectives] != list(self.names):
            raise ValueError(
                f"hypervolume objectives {[o.name for o in hypervolume.objectives]} differ from the "
                f"tactic's {list(self.names)}"
            )
        self.hypervolume = hypervolume
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.initial_archs = None
        if initial_archs is not None:
            initial = _unique_canonical(space, initial_archs)
            if not initial:
                raise ValueError("initial_archs is empty; pass None for a random start")
            self.initial_archs = initial
        self._values: dict[str, dict[str, float]] = {}
        self._pending: list[Arch] | None = None
        self._finished = False
        self.trace: list[dict[str, float]] = []
        #: Wall seconds spent measuring and deciding, filled in by :func:`run_tactic`.
        self.seconds = {"measure": 0.0, "search": 0.0}

    @property
    def names(self) -> tuple[str, ...]:
        """Objective names in order."""
        return tuple(o.name for o in self.objectives)

    @property
    def n_validations(self) -> int:
        """Number of distinct archs validated so far."""
        return len(self._values)

    @property
    def done(self) -> bool:
        """True once the budget is spent or the tactic has nothing more to propose."""
        return self._finished or self.n_validations >= self.n_validations_max

    def config(self) -> dict[str, Any]:
        """JSON-serialisable settings (stored with the search, so a resumed run must match)."""
        return {
            "space": {name: list(choices) for name, choices in self.space.choices.items()},
            "objectives": {o.name: o.direction for o in self.objectives},
            "n_validations": self.n_validations_max,
            "seed": self.seed,
            "initial_archs": None
            if self.initial_archs is None
            else [self.space.key(a) for a in self.initial_archs],
        }

    def ask(self) -> list[Arch]:
        """Archs to validate next (canonical, none validated before); ``[]`` when finished."""
        if self._pending is not None:
            return self._unvalidated(self._pending)
        for _ in range(_MAX_IDLE_PROPOSALS):
            if self.done:
                return []
            proposal = self._propose()
            if proposal is None:
                self._finished = True
                return []
            proposal = _unique_canonical(self.space, proposal)
            new = self._unvalidated(proposal)
            if new:
                self._pending = proposal
                return new
            self._receive(proposal, self._known(proposal))
        self._finished = True
        return []

    def tell(self, archs: Sequence[Mapping[str, int]], values: Mapping[str, Any] | pd.DataFrame) -> None:
        """Record measured objective values of ``archs`` (as returned by :meth:`ask`).

        Args:
            archs: The validated archs.
            values: One array per objective name (or a DataFrame with those columns), aligned
                with ``archs``.

        Raises:
            ValueError: If an objective is missing, lengths differ or a value is not finite.
        """
        keys = [self.space.key(arch) for arch in archs]
        columns = {}
        for name in self.names:
            if name not in values:
                raise ValueError(f"tell() got no values for objective {name!r} (got {sorted(values)})")
            column = np.asarray(values[name], dtype=np.float64).reshape(-1)
            if len(column) != len(keys):
                raise ValueError(f"tell() got {len(column)} values of {name!r} for {len(keys)} archs")
            if not np.all(np.isfinite(column)):
                raise ValueError(f"tell() got non-finite values of {name!r}: {column.tolist()}")
            columns[name] = column
        for i, key in enumerate(keys):
            if key not in self._values and self.n_validations < self.n_validations_max:
                self._values[key] = {name: float(columns[name][i]) for name in self.names}
        if self.hypervolume is not None:
            self.trace.append(
                {"n_validations": self.n_validations, "hypervolume": self.hypervolume(self.values)}
            )
        if self._pending is not None:
            validated = [a for a in self._pending if self.space.key(a) in self._values]
            if len(validated) == len(self._pending) or self.n_validations >= self.n_validations_max:
                self._pending = None
                self._receive(validated, self._known(validated))

    @property
    def values(self) -> dict[str, np.ndarray]:
        """Every validated arch's objective values, in validation order, by objective name."""
        return {name: np.array([v[name] for v in self._values.values()]) for name in self.names}

    def results(self) -> pd.DataFrame:
        """Validated archs in order: ``n_validations`` (1-based), ``arch`` key, objectives, ``front``."""
        table = pd.DataFrame(list(self._values.values()), columns=list(self.names))
        table.insert(0, "arch", list(self._values))
        table.insert(0, "n_validations", np.arange(1, len(table) + 1))
        signs = np.array([o.sign for o in self.objectives])
        table["front"] = pareto_front_mask(table[list(self.names)].to_numpy() * signs) if len(table) else []
        return table

    def population(self, size: int = 50) -> list[Arch]:
        """The best ``size`` validated archs (by non-dominated rank, then validation order).

        This is what a search records per generation and what warm-start reads back; evolutionary
        tactics return their algorithm's current population instead.
        """
        if not self._values:
            return []
        fronts = NonDominatedSorting().do(self._F(self.values))
        order = [int(i) for front in fronts for i in sorted(front)]
        keys = list(self._values)
        return [self.space.from_key(keys[i]) for i in order[:size]]

    def trace_frame(self) -> pd.DataFrame:
        """The hypervolume after each batch: columns ``n_validations`` and ``hypervolume``."""
        return pd.DataFrame(self.trace, columns=["n_validations", "hypervolume"])

    def _unvalidated(self, archs: list[Arch]) -> list[Arch]:
        remaining = self.n_validations_max - self.n_validations
        new = [a for a in archs if self.space.key(a) not in self._values]
        return new[: max(remaining, 0)]

    def _known(self, archs: list[Arch]) -> dict[str, np.ndarray]:
        rows = [self._values[self.space.key(a)] for a in archs if self.space.key(a) in self._values]
        return {name: np.array([r[name] for r in rows]) for name in self.names}

    def _measured_archs(self) -> list[Arch]:
        return [self.space.from_key(key) for key in self._values]

    def _F(self, values: Mapping[str, np.ndarray]) -> np.ndarray:  # noqa: N802, N806 - pymoo's name
        """Minimised objective matrix (maximised objectives negated) of ``values``."""
        return np.column_stack(
            [o.sign * np.asarray(values[o.name], dtype=np.float64) for o in self.objectives]
        )

    @abstractmethod
    def _propose(self) -> list[Arch] | None:
        """Next batch of archs (validated ones allowed), or None when the tactic is finished."""

    def _receive(self, archs: list[Arch], values: dict[str, np.ndarray]) -> None:  # noqa: B027 - optional hook
        """Values of the validated archs of the last proposal (all of them unless the budget ran out)."""


def _unique_canonical(space: SearchSpace, archs: Iterable[Mapping[str, int]]) -> list[Arch]:
    unique: dict[str, Arch] = {}
    for arch in archs:
        key = space.key(arch)
        unique.setdefault(key, space.from_key(key))
    return list(unique.values())
