"""The ask/tell contract every search tactic follows, with validation counting."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from nastools.hypervolume import pareto_front_mask
from nastools.objectives import Objective, parse_objectives
from nastools.space import Arch, SearchSpace

__all__ = ["Tactic", "check_count"]

#: How many proposals in a row may consist only of already validated archs before a tactic stops.
_MAX_IDLE_PROPOSALS = 50


def check_count(name: str, value: object, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise a ``ValueError`` naming ``name`` when it is below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


class Tactic(ABC):
    """A search tactic with an ask/tell interface over validations (measurements of real archs).

    ``ask()`` returns canonical archs that still need validating (never one validated before, never
    more than the remaining budget; an empty list when the tactic is finished); ``tell(archs,
    values)`` hands back their measured objective values. The base class keeps every validated
    arch with its values and counts validations, so that any two tactics compare on "front vs
    number of validations"; the hypervolume trace is kept by an observer
    (:class:`~nastools.search.HypervolumeTrace`), as pymoo keeps callbacks apart from algorithms.
    Proposals of archs validated already are answered from memory without spending budget.

    Subclasses implement :meth:`_propose` (the next batch, or None when finished) and, when they
    keep state of their own (an evolutionary algorithm's population), :meth:`_receive` (the values
    of a whole proposed batch). Their constructors take explicit keyword arguments stored under
    the same names (scikit-learn's rule), which :meth:`config` reads back.

    Args:
        space: The search space.
        objectives: E.g. ``{"top1": "max", "macs": "min"}`` or a list of
            :class:`~nastools.objectives.Objective`; values are told by objective label.
        budget: The tactic stops after this many validations.
        seed: Seed of the tactic's random choices.
        initial_archs: Warm start: archs for the first batch or population instead of random ones
            (e.g. :func:`best_population` of an earlier search).
    """

    #: Short name stored with the search (``searches.tactic`` in the store) and used by the registry.
    name = "tactic"

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, str] | Iterable[Objective],
        budget: int,
        *,
        seed: int = 0,
        initial_archs: Sequence[Arch] | None = None,
    ) -> None:
        if not isinstance(space, SearchSpace):
            raise ValueError(f"space must be a SearchSpace, got {type(space).__name__}")
        self.space = space
        self.objectives = parse_objectives(objectives)
        self.budget = check_count("budget", budget)
        self.seed = check_count("seed", seed, minimum=0)
        self.rng = np.random.default_rng(self.seed)
        self.initial_archs = None
        if initial_archs is not None:
            if isinstance(initial_archs, Mapping):
                raise ValueError("initial_archs is a list of archs; wrap a single arch in a list")
            initial = _unique_canonical(space, initial_archs)
            if not initial:
                raise ValueError("initial_archs is empty; pass None for a random start")
            self.initial_archs = initial
        self._values: dict[str, dict[str, float]] = {}
        self._pending: list[Arch] | None = None
        self._finished = False
        #: Wall seconds spent measuring and deciding, filled in by :func:`run_tactic`.
        self.seconds = {"measure": 0.0, "search": 0.0}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.n_validated}/{self.budget} validated)"

    @property
    def labels(self) -> tuple[str, ...]:
        """Objective labels in order (the columns of :meth:`results`)."""
        return tuple(o.label for o in self.objectives)

    @property
    def n_validated(self) -> int:
        """Number of distinct archs validated so far."""
        return len(self._values)

    @property
    def done(self) -> bool:
        """True once the budget is spent or the tactic has nothing more to propose."""
        return self._finished or self.n_validated >= self.budget

    @classmethod
    def parameter_names(cls) -> list[str]:
        """The constructor's parameters, which :meth:`config` records (as ``_get_param_names``).

        Raises:
            TypeError: The constructor takes ``*args`` or ``**kwargs`` (its settings could not be
                recorded; scikit-learn's rule for estimators).
        """
        signature = inspect.signature(cls.__init__)
        variadic = [
            p.name for p in signature.parameters.values() if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        if variadic:
            raise TypeError(
                f"{cls.__name__}.__init__ takes *{variadic[0]}: a tactic names every parameter in its "
                "signature, so that config() can record it"
            )
        return [p.name for p in signature.parameters.values() if p.name != "self"]

    def config(self) -> dict[str, Any]:
        """JSON-serialisable settings (stored with the search, so a resumed run must match).

        Objectives are recorded as a list of ``[label, direction]`` pairs in the order given (the
        store writes JSON with sorted keys, which would reorder a dict): the first one is what
        ``nastools front`` and ``nastools export --rank`` rank by.
        :func:`~nastools.objectives.parse_objectives` reads the list back.
        """
        return {name: self._setting(getattr(self, name)) for name in self.parameter_names()}

    def _setting(self, value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, SearchSpace):
            return value.to_dict()
        if isinstance(value, tuple) and value and all(isinstance(v, Objective) for v in value):
            return [[o.label, o.direction] for o in value]
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            return [self.space.key(a) for a in value]
        if isinstance(value, Mapping):
            if any(callable(v) for v in value.values()):
                return sorted(value)
            return {str(k): self._setting(v) for k, v in value.items()}
        if callable(value):
            return getattr(value, "__qualname__", type(value).__name__)
        return value

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

    def tell(self, archs: Sequence[Arch], values: Mapping[str, Any] | pd.DataFrame) -> None:
        """Record measured objective values of ``archs`` (as returned by :meth:`ask`).

        Args:
            archs: The validated archs.
            values: One array per objective label (or a DataFrame with those columns), aligned
                with ``archs``.

        Raises:
            ValueError: If an objective is missing, lengths differ or a value is not finite.
        """
        keys = [self.space.key(arch) for arch in archs]
        columns = {}
        for label in self.labels:
            if label not in values:
                raise ValueError(f"tell() got no values for objective {label!r} (got {sorted(values)})")
            column = np.asarray(values[label], dtype=np.float64).reshape(-1)
            if len(column) != len(keys):
                raise ValueError(f"tell() got {len(column)} values of {label!r} for {len(keys)} archs")
            if not np.all(np.isfinite(column)):
                raise ValueError(
                    f"tell() got non-finite values of {label!r} ({column.tolist()[:5]}...): a measurement "
                    "failed; fix the metric before searching on it"
                )
            columns[label] = column
        for i, key in enumerate(keys):
            if key not in self._values and self.n_validated < self.budget:
                self._values[key] = {label: float(columns[label][i]) for label in self.labels}
        if self._pending is not None:
            validated = [a for a in self._pending if self.space.key(a) in self._values]
            if len(validated) == len(self._pending) or self.n_validated >= self.budget:
                self._pending = None
                self._receive(validated, self._known(validated))

    @property
    def values(self) -> dict[str, np.ndarray]:
        """Every validated arch's objective values, in validation order, by objective label."""
        return {label: np.array([v[label] for v in self._values.values()]) for label in self.labels}

    @property
    def validated(self) -> list[str]:
        """Keys of the validated archs, in validation order."""
        return list(self._values)

    def results(self) -> pd.DataFrame:
        """Validated archs in order: ``n_validated`` (1-based), ``arch`` key, objectives, ``front``."""
        table = pd.DataFrame(list(self._values.values()), columns=list(self.labels))
        table.insert(0, "arch", list(self._values))
        table.insert(0, "n_validated", np.arange(1, len(table) + 1))
        signs = np.array([o.sign for o in self.objectives])
        table["front"] = pareto_front_mask(table[list(self.labels)].to_numpy() * signs) if len(table) else []
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

    def _unvalidated(self, archs: list[Arch]) -> list[Arch]:
        remaining = self.budget - self.n_validated
        new = [a for a in archs if self.space.key(a) not in self._values]
        return new[: max(remaining, 0)]

    def _known(self, archs: list[Arch]) -> dict[str, np.ndarray]:
        rows = [self._values[self.space.key(a)] for a in archs if self.space.key(a) in self._values]
        return {label: np.array([r[label] for r in rows]) for label in self.labels}

    def _measured_archs(self) -> list[Arch]:
        return [self.space.from_key(key) for key in self._values]

    def _F(self, values: Mapping[str, np.ndarray]) -> np.ndarray:  # noqa: N802 - pymoo's name
        """Minimised objective matrix (maximised objectives negated) of ``values``."""
        return np.column_stack(
            [o.sign * np.asarray(values[o.label], dtype=np.float64) for o in self.objectives]
        )

    @abstractmethod
    def _propose(self) -> list[Arch] | None:
        """Next batch of archs (validated ones allowed), or None when the tactic is finished."""

    def _receive(self, archs: list[Arch], values: dict[str, np.ndarray]) -> None:  # noqa: B027 - optional hook
        """Values of the validated archs of the last proposal (all of them unless the budget ran out)."""


def _unique_canonical(space: SearchSpace, archs: Iterable[Arch]) -> list[Arch]:
    unique: dict[str, Arch] = {}
    for arch in archs:
        key = space.key(arch)
        unique.setdefault(key, space.from_key(key))
    return list(unique.values())


Callback = Callable[[Tactic], None]
