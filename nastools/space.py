"""Search spaces: named elastic parameters, their choices, and the encodings search and predictors use."""

# pymoo's names: X is the decision matrix (choice indices).
# ruff: noqa: N803, N806

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, MappingView, Sequence, Set
from dataclasses import dataclass

import numpy as np

__all__ = ["Arch", "Condition", "SearchSpace"]

Arch = dict[str, Hashable]
"""An architecture: one value per parameter of a :class:`SearchSpace`."""

_TYPES = {bool: "bool", int: "int", float: "float", str: "str"}
_KEY_SEPARATORS = (",", "=")


def _normalise(value: object) -> object:
    """A choice as a plain Python scalar (numpy scalars become bool/int/float/str)."""
    if isinstance(value, np.str_):
        return str(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _type_name(value: object) -> str:
    return _TYPES.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Condition:
    """A parameter that changes the network only when its controller has one of some values.

    Controllers may themselves be conditional: a parameter is active when its condition holds and
    its controller is active.

    Attributes:
        parameter: The dependent parameter, e.g. ``"ks_5"`` (kernel size of the sixth block).
        controller: The parameter that switches it on, e.g. ``"d_1"`` (depth of the second stage).
        values: The controller's values for which ``parameter`` is active, e.g. ``(3, 4)``.

    Example:
        >>> Condition("ks_5", "d_1", (3, 4)).holds({"d_1": 4})
        True
    """

    parameter: str
    controller: str
    values: tuple

    def __post_init__(self) -> None:
        if isinstance(self.values, (str, bytes)) or not isinstance(self.values, Iterable):
            raise ValueError(
                f"condition on {self.parameter!r}: values must be a list of {self.controller!r} values, "
                f"got {self.values!r}"
            )
        object.__setattr__(self, "values", tuple(_normalise(v) for v in self.values))

    def holds(self, arch: Mapping[str, object]) -> bool:
        """Whether the controller's value in ``arch`` switches the parameter on."""
        return arch[self.controller] in self.values


class SearchSpace:
    """Named elastic parameters with their allowed values.

    An ``arch`` is a dict mapping every parameter name to one of its choices; ``x`` is the same
    arch as an integer vector of choice indices (what pymoo evolves), and ``X`` a matrix of them.
    Choices are any of bool, int, float or str (one type per parameter) and are kept exactly, in
    the given order. Parameters may be conditional (a block's kernel size matters only when its
    stage is deep enough); :meth:`canonical` sets inactive parameters to their first choice, so two
    archs that build the same network compare equal, and :attr:`size` counts distinct networks.

    Every encoding is vectorised over ``X`` (``canonical_x``, ``decode``, ``features_x``); the
    per-arch methods go through the same code.

    Args:
        choices: Parameter name to its allowed values, in encoding order.
        conditions: When dependent parameters are active (see :class:`Condition`).

    Raises:
        ValueError: For a parameter without choices, choices in a set (unordered), repeated,
            mixed-type or non-finite (NaN, infinite) choices, a name holding ',' or '=', a condition
            naming an unknown parameter or value or no value at all, two conditions on one
            parameter, or a cycle.

    Example:
        >>> space = SearchSpace({"d": [1, 2], "k_0": [3, 5], "k_1": [3, 5], "act": ["relu", "gelu"]},
        ...                     conditions=[Condition("k_1", "d", (2,))])
        >>> space.size  # d=1: 2 networks, d=2: 4 networks; times 2 activations
        12
        >>> space.canonical({"d": 1, "k_0": 5, "k_1": 5, "act": "gelu"})
        {'d': 1, 'k_0': 5, 'k_1': 3, 'act': 'gelu'}
    """

    def __init__(
        self, choices: Mapping[str, Sequence[Hashable]], conditions: Iterable[Condition] = ()
    ) -> None:
        if isinstance(choices, SearchSpace) or not isinstance(choices, Mapping) or not choices:
            raise ValueError("a SearchSpace needs a non-empty dict of parameter name to its choices")
        self.choices: dict[str, tuple] = {}
        for name, values in choices.items():
            name = self._checked_name(name)
            self.choices[name] = self._checked_choices(name, values)
        self.names: tuple[str, ...] = tuple(self.choices)
        self.n_choices = np.array([len(self.choices[n]) for n in self.names], dtype=np.int64)
        self.types: dict[str, str] = {n: _type_name(c[0]) for n, c in self.choices.items()}
        self._index = {n: {v: i for i, v in enumerate(vals)} for n, vals in self.choices.items()}
        self.conditions: dict[str, Condition] = {}
        for condition in conditions:
            self._add_condition(condition)
        self._by_text = {n: {str(v): v for v in vals} for n, vals in self.choices.items()}
        # what an inactive parameter is set to; a restricted space keeps its parent's, so that the
        # same network has the same key in both (see :meth:`restrict`)
        self._placeholders = {n: vals[0] for n, vals in self.choices.items()}
        self._order = self._topological_order()
        self._tables = _Tables(self)
        # the choice objects exactly as the space holds them, by (type, value): the fast path of
        # validate/canonical/key for archs whose values are the space's own (what decode returns)
        self._typed = [{(type(v), v): i for i, v in enumerate(self.choices[n])} for n in self.names]
        self._parts = [[f"{n}={v}" for v in self.choices[n]] for n in self.names]

    @staticmethod
    def _checked_name(name: object) -> str:
        # keys are "name=value,name=value": a name holding ',' or '=' would not read back
        if not isinstance(name, str) or not name or any(sep in name for sep in _KEY_SEPARATORS):
            raise ValueError(
                f"parameter name {name!r}: use a non-empty string without ',' or '=', e.g. 'ks_0'"
            )
        return name

    @staticmethod
    def _checked_choices(name: str, values: Sequence[Hashable]) -> tuple:
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise ValueError(f"parameter {name!r}: choices must be a list of values, got {values!r}")
        if isinstance(values, (Set, MappingView)):
            # a set's order changes from one process to the next, and the order is the encoding
            raise ValueError(
                f"parameter {name!r}: choices given as a {type(values).__name__}, which has no fixed order; "
                "give a list: the order is the encoding"
            )
        values = tuple(_normalise(v) for v in values)
        if not values:
            raise ValueError(f"parameter {name!r} has no choices")
        types = sorted({_type_name(v) for v in values})
        unknown = [t for t in types if t not in _TYPES.values()]
        if unknown:
            raise ValueError(f"parameter {name!r}: choices must be bool, int, float or str, got {unknown}")
        if len(types) > 1:
            raise ValueError(
                f"parameter {name!r} mixes choice types {types} in {list(values)}: "
                "give one type per parameter"
            )
        if types == ["float"] and not all(math.isfinite(v) for v in values):
            bad = next(v for v in values if not math.isfinite(v))
            what = "a NaN choice" if math.isnan(bad) else f"an infinite choice ({bad})"
            raise ValueError(f"parameter {name!r} has {what} in {list(values)}: use finite numbers")
        if types == ["str"] and any(sep in v for v in values for sep in _KEY_SEPARATORS):
            raise ValueError(
                f"parameter {name!r}: string choices may not contain ',' or '=' ({list(values)})"
            )
        repeated = sorted({str(v) for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f"parameter {name!r} repeats choice(s) {repeated} in {list(values)}")
        return values

    def _add_condition(self, condition: Condition) -> None:
        if not isinstance(condition, Condition):
            raise ValueError(f"conditions must be Condition objects, got {condition!r}")
        for name in (condition.parameter, condition.controller):
            if name not in self.choices:
                raise ValueError(f"condition names unknown parameter {name!r}")
        if condition.parameter in self.conditions:
            raise ValueError(f"parameter {condition.parameter!r} has two conditions; give one per parameter")
        controller = condition.controller
        if not condition.values and not self._derived:
            raise ValueError(
                f"condition on {condition.parameter!r} lists no value of {controller!r}, so "
                f"{condition.parameter!r} could never be active: give the {controller!r} values that switch "
                f"it on, or leave {condition.parameter!r} out of the space"
            )
        outside = [v for v in condition.values if not self._allowed(controller, v)]
        if outside:
            raise ValueError(
                f"condition on {condition.parameter!r} names value(s) {outside} that controller "
                f"{controller!r} does not have; its choices are {list(self.choices[controller])}"
            )
        # the controller's own choice objects (1.0 for a float controller given 1), in its order
        values = tuple(v for v in self.choices[controller] if v in condition.values)
        self.conditions[condition.parameter] = Condition(condition.parameter, controller, values)

    def _topological_order(self) -> tuple[str, ...]:
        """Conditional parameters with every controller before what it controls (raises on a cycle)."""
        order: list[str] = []
        state: dict[str, str] = {}
        for start in self.conditions:
            path = []
            name = start
            while name in self.conditions and state.get(name) != "done":
                if state.get(name) == "visiting":
                    cycle = path[path.index(name) :] + [name]
                    raise ValueError(
                        f"condition cycle {' -> '.join(reversed(cycle))}: a parameter controls itself"
                    )
                state[name] = "visiting"
                path.append(name)
                name = self.conditions[name].controller
            for name in reversed(path):
                state[name] = "done"
                order.append(name)
        return tuple(order)

    def __repr__(self) -> str:
        return f"SearchSpace({len(self.names)} parameters, {self.size:.3g} networks)"

    def __eq__(self, other: object) -> bool:
        # parameter order is the encoding's order, and 1 == 1.0 == True: compare both too
        return (
            isinstance(other, SearchSpace)
            and list(self.choices.items()) == list(other.choices.items())
            and self.types == other.types
            and self.conditions == other.conditions
            and self._placeholders == other._placeholders
        )

    def __hash__(self) -> int:
        return hash((tuple(self.choices.items()), frozenset(self.conditions.items())))

    @property
    def n_var(self) -> int:
        """Number of parameters (length of ``x``)."""
        return len(self.names)

    @property
    def size(self) -> int:
        """Number of distinct networks (archs equal after :meth:`canonical` count once)."""
        children: dict[str, list[Condition]] = {}
        for condition in self.conditions.values():
            children.setdefault(condition.controller, []).append(condition)

        def count(name: str) -> int:
            below = children.get(name, [])
            return sum(
                math.prod(count(c.parameter) if value in c.values else 1 for c in below)
                for value in self.choices[name]
            )

        return math.prod(count(name) for name in self.names if name not in self.conditions)

    def is_numeric(self, name: str) -> bool:
        """Whether parameter ``name`` has int or float choices (a predictor may use their values)."""
        return self.types[name] in ("int", "float")

    # --- single archs -------------------------------------------------------------------------

    def _fast_indices(self, arch: Mapping[str, object]) -> list[int] | None:
        """Choice indices of ``arch`` when every value is one of the space's choices, of its exact type.

        None sends the caller down the general path (numpy scalars, placeholders, errors).
        """
        if not isinstance(arch, dict) or len(arch) != len(self.names):
            return None
        try:
            return [typed[(type(arch[name]), arch[name])] for typed, name in zip(self._typed, self.names)]
        except (KeyError, TypeError):
            return None

    def validate(self, arch: Mapping[str, object]) -> None:
        """Raise ``ValueError`` naming the first problem with ``arch``; return None if it is valid."""
        if self._fast_indices(arch) is not None:
            return
        if not isinstance(arch, Mapping):
            raise ValueError(f"an arch is a dict of parameter values, got {type(arch).__name__}")
        missing = [n for n in self.names if n not in arch]
        if missing:
            raise ValueError(f"arch is missing parameter(s) {missing[:5]}{'...' if len(missing) > 5 else ''}")
        unknown = [k for k in arch if k not in self.choices]
        if unknown:
            raise ValueError(
                f"arch has unknown parameter(s) {unknown[:5]}; this space has {list(self.names)[:5]}..."
            )
        for name in self.names:
            value = arch[name]
            if not self._allowed(name, value) and not self._is_inactive_placeholder(arch, name):
                raise ValueError(
                    f"parameter {name!r} has value {value!r}, allowed choices are {list(self.choices[name])}"
                )

    def _allowed(self, name: str, value: object) -> bool:
        kind = self.types[name]
        if (kind == "bool") != isinstance(value, (bool, np.bool_)):
            return False
        if kind == "str" and not isinstance(value, str):
            return False
        if kind != "str" and isinstance(value, str):
            return False
        try:
            return value in self._index[name]
        except TypeError:  # unhashable
            return False

    def _is_inactive_placeholder(self, arch: Mapping[str, object], name: str) -> bool:
        placeholder = self._placeholders[name]
        value = arch[name]
        return (
            placeholder not in self._index[name]
            and type(value) is type(placeholder)
            and value == placeholder
            and not self.is_active(arch, name)
        )

    def _choice_index(self, name: str, value: object) -> int:
        return self._index[name].get(value, 0)  # 0: an inactive placeholder outside the choices

    def is_active(self, arch: Mapping[str, object], name: str) -> bool:
        """Whether parameter ``name`` changes the network built from ``arch``."""
        condition = self.conditions.get(name)
        while condition is not None:
            if not condition.holds(arch):
                return False
            condition = self.conditions.get(condition.controller)
        return True

    def canonical(self, arch: Mapping[str, object]) -> Arch:
        """Return a validated copy of ``arch`` with inactive parameters set to their first choice.

        Values come back as the space's own choices (``np.float64(0.25)`` becomes ``0.25``).
        """
        indices = self._fast_indices(arch)
        if indices is None:
            self.validate(arch)
            indices = [self._choice_index(name, arch[name]) for name in self.names]
        out = {name: self.choices[name][i] for name, i in zip(self.names, indices)}
        inactive: set[str] = set()
        for name in self._order:  # controllers before what they control
            condition = self.conditions[name]
            if condition.controller in inactive or out[condition.controller] not in condition.values:
                inactive.add(name)
        for name in inactive:
            out[name] = self._placeholders[name]
        return out

    def key(self, arch: Mapping[str, object]) -> str:
        """A stable string for the canonical arch (the store's arch column), e.g. ``"d=2,k_0=5"``."""
        canonical = self.canonical(arch)
        indices = self._fast_indices(canonical)  # None where a restricted space's placeholder sits
        if indices is not None:
            return ",".join(parts[i] for parts, i in zip(self._parts, indices))
        return ",".join(f"{name}={canonical[name]}" for name in self.names)

    def from_key(self, key: str) -> Arch:
        """Inverse of :meth:`key`.

        Raises:
            ValueError: The string is not a key of this space (the problem is named).
        """
        if not isinstance(key, str):
            raise ValueError(f"an arch key is a string, got {type(key).__name__}")
        arch = {}
        for item in key.split(","):
            name, sep, text = item.partition("=")
            if not sep or name not in self._by_text:
                raise ValueError(f"not an arch key of this space: {key[:80]!r} (item {item[:40]!r})")
            if name in arch:
                raise ValueError(
                    f"arch key gives {name!r} twice ({item[:40]!r} again): give each parameter once"
                )
            placeholder = self._placeholders[name]
            if text not in self._by_text[name] and text != str(placeholder):
                raise ValueError(
                    f"arch key gives {name}={text}, allowed choices are {list(self.choices[name])}"
                )
            arch[name] = self._by_text[name].get(text, placeholder)
        return self.canonical(arch)

    # --- many archs, vectorised -----------------------------------------------------------------

    def sample(self, n: int, rng: np.random.Generator | int | None) -> list[Arch]:
        """Draw ``n`` archs uniformly per parameter, returned canonical.

        Args:
            n: How many archs.
            rng: A numpy Generator or a seed.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        rng = np.random.default_rng(rng)
        return self.decode(rng.integers(0, self.n_choices, size=(int(n), self.n_var)))

    def encode(self, archs: Mapping[str, object] | Sequence[Mapping[str, object]]) -> np.ndarray:
        """Archs to integer choice indices: shape ``(n_var,)`` for one arch, else ``(n, n_var)``.

        The indices are canonical (inactive parameters at index 0).
        """
        single = isinstance(archs, Mapping)
        rows = [archs] if single else list(archs)
        X = np.empty((len(rows), self.n_var), dtype=np.int64)
        for i, arch in enumerate(rows):
            indices = self._fast_indices(arch)
            if indices is None:
                self.validate(arch)
                indices = [self._choice_index(name, arch[name]) for name in self.names]
            X[i] = indices
        X = self.canonical_x(X)
        return X[0] if single else X

    def check_x(self, X: np.ndarray) -> np.ndarray:
        """``X`` as a 2-D int64 array of valid choice indices (floats are rounded); raises otherwise."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_var:
            raise ValueError(f"X must have shape (n, {self.n_var}): one column per parameter, got {X.shape}")
        if X.dtype.kind == "f":
            X = np.rint(X)
        X = X.astype(np.int64, copy=False)
        bad = (X < 0) | (X >= self.n_choices)
        if bad.any():
            j = int(np.argwhere(bad)[0, 1])
            raise ValueError(
                f"x index out of range for parameter {self.names[j]!r} (0..{self.n_choices[j] - 1})"
            )
        return X

    def active_mask(self, X: np.ndarray) -> np.ndarray:
        """Which genes change the network: boolean array of ``X``'s shape.

        Example:
            >>> space = SearchSpace({"d": [1, 2], "k_1": [3, 5]}, [Condition("k_1", "d", (2,))])
            >>> space.active_mask(np.array([[0, 1], [1, 1]])).tolist()
            [[True, False], [True, True]]
        """
        X = self.check_x(X)
        t = self._tables
        mask = np.ones(X.shape, dtype=bool)
        for j, c, allowed in zip(t.dependent, t.controller, t.allowed):
            mask[:, j] = mask[:, c] & allowed[X[:, c]]
        return mask

    def canonical_x(self, X: np.ndarray) -> np.ndarray:
        """``X`` with inactive genes set to index 0 (each row then stands for one network)."""
        X = self.check_x(X)
        return np.where(self.active_mask(X), X, 0)

    def decode(self, X: np.ndarray) -> Arch | list[Arch]:
        """Inverse of :meth:`encode`: archs (canonical) for the rows of ``X``; one arch for a vector."""
        X = np.asarray(X)
        single = X.ndim == 1
        X = self.canonical_x(np.atleast_2d(X))
        columns = [self._tables.values[j][X[:, j]] for j in range(self.n_var)]
        archs = [dict(zip(self.names, row)) for row in zip(*columns)] if len(X) else []
        return archs[0] if single else archs

    def features_x(self, X: np.ndarray) -> np.ndarray:
        """Predictor features of encoded archs: what :meth:`features` returns, without dicts.

        One slot per choice (one-hot, all zero when the parameter is inactive), then one column per
        numeric parameter with its value scaled to [0, 1] over its choices (0 when inactive), so that
        a predictor can use the order of the values.
        """
        X = self.canonical_x(X)
        t = self._tables
        out = np.zeros((len(X), t.n_features), dtype=np.float64)
        mask = self.active_mask(X)
        rows, cols = np.nonzero(mask)
        out[rows, t.offsets[cols] + X[rows, cols]] = 1.0
        for k, j in enumerate(t.numeric):
            out[:, t.n_onehot + k] = np.where(mask[:, j], t.scaled[j][X[:, j]], 0.0)
        return out

    def features(self, archs: Mapping[str, object] | Sequence[Mapping[str, object]]) -> np.ndarray:
        """Predictor features of archs (see :meth:`features_x`): shape ``(n, len(feature_names()))``."""
        rows = [archs] if isinstance(archs, Mapping) else list(archs)
        if not rows:
            return np.zeros((0, self._tables.n_features), dtype=np.float64)
        return self.features_x(self.encode(rows))

    def feature_names(self) -> list[str]:
        """Column names of :meth:`features`: ``"ks_3=5"`` per choice, then ``"ks_3"`` per numeric one."""
        onehot = [f"{name}={value}" for name in self.names for value in self.choices[name]]
        return onehot + [self.names[j] for j in self._tables.numeric]

    # --- derived spaces -------------------------------------------------------------------------

    def restrict(self, allowed: Mapping[str, Sequence[Hashable]]) -> SearchSpace:
        """A sub-space keeping only the ``allowed`` values of some parameters (PopDB uses this).

        Raises:
            ValueError: For an unknown parameter, a value the parameter does not have, a single
                value instead of a list, or a parameter left with no choices.

        Example:
            >>> space = SearchSpace({"r": [16, 24, 32], "k": [3, 5]})
            >>> space.restrict({"r": [24, 32]}).choices["r"]
            (24, 32)
        """
        if not isinstance(allowed, Mapping):
            raise ValueError(
                f"restrict takes a dict of parameter to allowed values, got {type(allowed).__name__}"
            )
        new_choices = dict(self.choices)
        for name, values in allowed.items():
            if name not in self.choices:
                raise ValueError(
                    f"restrict names unknown parameter {name!r}; this space has {list(self.names)[:8]}..."
                )
            if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
                raise ValueError(
                    f"restrict({{{name!r}: {values!r}}}) gives a single value; pass a list, "
                    f"e.g. {{{name!r}: [{values!r}]}}"
                )
            values = [_normalise(v) for v in values]
            outside = [v for v in values if not self._allowed(name, v)]
            if outside:
                raise ValueError(
                    f"restrict gives {name!r} value(s) {outside} outside the space; its choices are "
                    f"{list(self.choices[name])}"
                )
            kept = tuple(v for v in self.choices[name] if v in values)
            if not kept:
                raise ValueError(f"restrict leaves parameter {name!r} with no choices")
            new_choices[name] = kept
        conditions = [
            Condition(c.parameter, c.controller, tuple(v for v in c.values if v in new_choices[c.controller]))
            for c in self.conditions.values()
        ]
        restricted = SearchSpace._derive(new_choices, conditions)
        restricted._placeholders = dict(self._placeholders)
        return restricted

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly form: ``{"choices": {...}, "conditions": [[parameter, controller, values]]}``."""
        data = {
            "choices": {name: list(values) for name, values in self.choices.items()},
            "conditions": [[c.parameter, c.controller, list(c.values)] for c in self.conditions.values()],
        }
        moved = {n: v for n, v in self._placeholders.items() if v != self.choices[n][0]}
        if moved:  # a restricted space's inactive values, taken from the space it came from
            data["placeholders"] = moved
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SearchSpace:
        """Inverse of :meth:`to_dict`."""
        conditions = [Condition(p, c, tuple(v)) for p, c, v in data.get("conditions", [])]
        space = cls._derive(data["choices"], conditions)
        space._placeholders.update(data.get("placeholders", {}))
        return space

    #: True for a space derived from another (:meth:`restrict`, :meth:`from_dict`), where a
    #: condition may list no value: the restriction left that parameter never active.
    _derived = False

    @classmethod
    def _derive(
        cls, choices: Mapping[str, Sequence[Hashable]], conditions: Iterable[Condition]
    ) -> SearchSpace:
        space = cls.__new__(cls)
        space._derived = True
        space.__init__(choices, conditions)
        return space


class _Tables:
    """Arrays derived once per space for the vectorised encodings."""

    def __init__(self, space: SearchSpace) -> None:
        names = space.names
        self.dependent = [names.index(p) for p in space._order]
        self.controller = [names.index(space.conditions[p].controller) for p in space._order]
        self.allowed = [
            np.array([v in space.conditions[p].values for v in space.choices[space.conditions[p].controller]])
            for p in space._order
        ]
        self.offsets = np.concatenate([[0], np.cumsum(space.n_choices)[:-1]]).astype(np.int64)
        self.n_onehot = int(space.n_choices.sum())
        self.values = []
        for name in names:
            column = np.empty(len(space.choices[name]), dtype=object)
            column[:] = space.choices[name]
            self.values.append(column)
        self.numeric = [j for j, name in enumerate(names) if space.is_numeric(name)]
        self.scaled = {}
        for j in self.numeric:
            values = np.array(space.choices[names[j]], dtype=np.float64)
            span = values.max() - values.min()
            self.scaled[j] = (values - values.min()) / span if span > 0 else np.zeros_like(values)
        self.n_features = self.n_onehot + len(self.numeric)
