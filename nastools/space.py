"""Search spaces: named elastic parameters, their choices, and the encodings search and predictors use."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Condition", "SearchSpace", "mobilenetv3_space"]

Arch = dict[str, int]


@dataclass(frozen=True)
class Condition:
    """A parameter that is used only when another parameter is large enough.

    Attributes:
        parameter: The dependent parameter, e.g. ``"ks_5"`` (kernel size of the sixth block).
        controller: The parameter that switches it on, e.g. ``"d_1"`` (depth of the second stage).
        min_value: ``parameter`` is active when ``arch[controller] >= min_value``.
    """

    parameter: str
    controller: str
    min_value: int


class SearchSpace:
    """Named elastic parameters with their allowed values.

    An ``arch`` is a dict mapping every parameter name to one of its choices; ``x`` is the same
    arch as an integer vector of choice indices (what pymoo evolves). Parameters may be conditional:
    a block's kernel size matters only when its stage is deep enough to contain the block.
    :meth:`canonical` sets inactive parameters to their first choice, so two archs that build the
    same network compare equal, and :attr:`size` counts distinct networks, not encodings.

    Args:
        choices: Parameter name to its allowed integer values, in encoding order.
        conditions: Which parameters are active only above a controller's value (one level deep).

    Example:
        >>> space = SearchSpace({"d": [1, 2], "k_0": [3, 5], "k_1": [3, 5]},
        ...                     conditions=[Condition("k_1", "d", 2)])
        >>> space.size  # d=1: 2 networks; d=2: 4 networks
        6
        >>> space.canonical({"d": 1, "k_0": 5, "k_1": 5})
        {'d': 1, 'k_0': 5, 'k_1': 3}
    """

    def __init__(
        self,
        choices: Mapping[str, Sequence[int]],
        conditions: Iterable[Condition] = (),
    ) -> None:
        if not choices:
            raise ValueError("a SearchSpace needs at least one parameter")
        self.choices: dict[str, tuple[int, ...]] = {}
        for name, values in choices.items():
            values = tuple(int(v) for v in values)
            if not values:
                raise ValueError(f"parameter {name!r} has no choices")
            if len(set(values)) != len(values):
                raise ValueError(f"parameter {name!r} has repeated choices {values}")
            self.choices[name] = values
        self.conditions: dict[str, Condition] = {}
        for condition in conditions:
            for name in (condition.parameter, condition.controller):
                if name not in self.choices:
                    raise ValueError(f"condition names unknown parameter {name!r}")
            self.conditions[condition.parameter] = condition
        for condition in self.conditions.values():
            if condition.controller in self.conditions:
                raise ValueError(
                    f"controller {condition.controller!r} is itself conditional; "
                    "only one level of conditions is supported"
                )
        self.names: tuple[str, ...] = tuple(self.choices)
        self._index = {name: {v: i for i, v in enumerate(vals)} for name, vals in self.choices.items()}
        self.n_choices = np.array([len(self.choices[n]) for n in self.names], dtype=np.int64)

    def __repr__(self) -> str:
        return f"SearchSpace({len(self.names)} parameters, {self.size:.3g} networks)"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SearchSpace)
            and self.choices == other.choices
            and self.conditions == other.conditions
        )

    def __hash__(self) -> int:
        return hash((tuple(self.choices.items()), tuple(self.conditions.items())))

    @property
    def n_var(self) -> int:
        """Number of parameters (length of ``x``)."""
        return len(self.names)

    @property
    def size(self) -> int:
        """Number of distinct networks (archs equal after :meth:`canonical` count once)."""
        dependents: dict[str, list[Condition]] = {}
        for condition in self.conditions.values():
            dependents.setdefault(condition.controller, []).append(condition)
        total = 1
        for name in self.names:
            if name in self.conditions:
                continue
            if name not in dependents:
                total *= len(self.choices[name])
                continue
            total *= sum(
                math.prod(len(self.choices[c.parameter]) for c in dependents[name] if value >= c.min_value)
                for value in self.choices[name]
            )
        return total

    def validate(self, arch: Mapping[str, int]) -> None:
        """Raise ``ValueError`` naming the first problem with ``arch``; return None if it is valid."""
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
            if isinstance(value, bool) or value not in self._index[name]:
                raise ValueError(
                    f"parameter {name!r} has value {value!r}, allowed choices are {list(self.choices[name])}"
                )

    def is_active(self, arch: Mapping[str, int], name: str) -> bool:
        """Whether parameter ``name`` changes the network built from ``arch``."""
        condition = self.conditions.get(name)
        return condition is None or arch[condition.controller] >= condition.min_value

    def canonical(self, arch: Mapping[str, int]) -> Arch:
        """Return a validated copy of ``arch`` with inactive parameters set to their first choice."""
        self.validate(arch)
        return {
            name: int(arch[name]) if self.is_active(arch, name) else self.choices[name][0]
            for name in self.names
        }

    def key(self, arch: Mapping[str, int]) -> str:
        """A stable string for the canonical arch (used as the store's arch column)."""
        canonical = self.canonical(arch)
        return ",".join(f"{name}={canonical[name]}" for name in self.names)

    def from_key(self, key: str) -> Arch:
        """Inverse of :meth:`key`."""
        try:
            arch = {k: int(v) for k, v in (item.split("=") for item in key.split(","))}
        except ValueError as error:
            raise ValueError(f"not an arch key: {key[:80]!r}") from error
        return self.canonical(arch)

    def sample(self, n: int, rng: np.random.Generator | int | None) -> list[Arch]:
        """Draw ``n`` archs uniformly per parameter, returned canonical.

        Args:
            n: How many archs.
            rng: A numpy Generator or a seed.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        rng = np.random.default_rng(rng)
        x = rng.integers(0, self.n_choices, size=(n, self.n_var))
        return self.decode(x)

    def encode(self, archs: Arch | Sequence[Arch]) -> np.ndarray:
        """Archs to integer choice indices: shape ``(n_var,)`` for one arch, else ``(n, n_var)``."""
        single = isinstance(archs, Mapping)
        rows = [archs] if single else list(archs)
        x = np.empty((len(rows), self.n_var), dtype=np.int64)
        for i, arch in enumerate(rows):
            self.validate(arch)
            x[i] = [self._index[name][arch[name]] for name in self.names]
        return x[0] if single else x

    def decode(self, x: np.ndarray) -> Arch | list[Arch]:
        """Inverse of :meth:`encode`; the archs returned are canonical."""
        x = np.asarray(x)
        single = x.ndim == 1
        x2 = np.atleast_2d(x)
        if x2.shape[1] != self.n_var:
            raise ValueError(f"x has {x2.shape[1]} columns, the space has {self.n_var} parameters")
        if np.any(x2 < 0) or np.any(x2 >= self.n_choices):
            bad = int(np.argwhere((x2 < 0) | (x2 >= self.n_choices))[0, 1])
            raise ValueError(
                f"x index out of range for parameter {self.names[bad]!r} (0..{self.n_choices[bad] - 1})"
            )
        archs = [
            self.canonical({name: self.choices[name][int(i)] for name, i in zip(self.names, row)})
            for row in x2
        ]
        return archs[0] if single else archs

    def features(self, archs: Arch | Sequence[Arch]) -> np.ndarray:
        """One-hot encoding for predictors: one slot per choice, inactive parameters all zero.

        Returns:
            Float array of shape ``(n, sum of choice counts)``.
        """
        rows = [archs] if isinstance(archs, Mapping) else list(archs)
        offsets = np.concatenate([[0], np.cumsum(self.n_choices)[:-1]])
        out = np.zeros((len(rows), int(self.n_choices.sum())), dtype=np.float64)
        for i, arch in enumerate(rows):
            self.validate(arch)
            for j, name in enumerate(self.names):
                if self.is_active(arch, name):
                    out[i, offsets[j] + self._index[name][arch[name]]] = 1.0
        return out

    def feature_names(self) -> list[str]:
        """Column names of :meth:`features`, e.g. ``"ks_3=5"``."""
        return [f"{name}={value}" for name in self.names for value in self.choices[name]]

    def restrict(self, allowed: Mapping[str, Sequence[int]]) -> SearchSpace:
        """A sub-space keeping only the ``allowed`` values of some parameters (PopDB uses this)."""
        new_choices = dict(self.choices)
        for name, values in allowed.items():
            if name not in self.choices:
                raise ValueError(f"unknown parameter {name!r}")
            kept = tuple(v for v in self.choices[name] if v in set(values))
            if not kept:
                raise ValueError(f"restriction leaves parameter {name!r} with no choices")
            new_choices[name] = kept
        return SearchSpace(new_choices, self.conditions.values())


def mobilenetv3_space(
    n_stages: int = 5,
    depths: Sequence[int] = (2, 3, 4),
    kernel_sizes: Sequence[int] = (3, 5, 7),
    expand_ratios: Sequence[int] = (3, 4, 6),
    resolutions: Sequence[int] | None = None,
) -> SearchSpace:
    """The OFA MobileNetV3 space: per-stage depth ``d_s``, per-block ``ks_i`` and ``e_i``, optional ``r``.

    Blocks are numbered 0..n_stages*max(depths)-1 as in OFA's ``ks``/``e`` lists; block ``i`` sits at
    position ``i % max_depth`` of stage ``i // max_depth`` and is active when ``d_stage > position``.

    Example:
        >>> space = mobilenetv3_space()
        >>> space.n_var, f"{space.size:.2e}"
        (45, '2.21e+19')
    """
    max_depth = max(depths)
    n_blocks = n_stages * max_depth
    choices: dict[str, Sequence[int]] = {f"d_{s}": depths for s in range(n_stages)}
    choices |= {f"ks_{i}": kernel_sizes for i in range(n_blocks)}
    choices |= {f"e_{i}": expand_ratios for i in range(n_blocks)}
    if resolutions is not None:
        choices["r"] = resolutions
    conditions = []
    for i in range(n_blocks):
        stage, position = divmod(i, max_depth)
        if position + 1 > min(depths):
            for kind in ("ks", "e"):
                conditions.append(Condition(f"{kind}_{i}", f"d_{stage}", position + 1))
    return SearchSpace(choices, conditions)
