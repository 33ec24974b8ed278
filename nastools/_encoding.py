"""Vectorised encodings from integer choice indices ``X`` (what pymoo evolves), no per-arch Python."""

# pymoo's names: X is the decision matrix (choice indices), F the objective matrix.
# ruff: noqa: N803, N806

from __future__ import annotations

from functools import lru_cache

import numpy as np

from nastools.space import Arch, SearchSpace

__all__ = ["active_mask", "canonical_x", "decode_x", "onehot_features"]


class _Tables:
    """Lookup tables derived once per space."""

    def __init__(self, space: SearchSpace) -> None:
        names = space.names
        self.dependent = np.array([names.index(p) for p in space.conditions], dtype=np.int64)
        self.controller = np.array(
            [names.index(c.controller) for c in space.conditions.values()], dtype=np.int64
        )
        # active_by_choice[k, i]: is dependent k active when its controller has choice index i
        width = int(space.n_choices.max())
        self.active_by_choice = np.zeros((len(self.dependent), width), dtype=bool)
        for k, condition in enumerate(space.conditions.values()):
            values = np.array(space.choices[condition.controller])
            self.active_by_choice[k, : len(values)] = values >= condition.min_value
        self.offsets = np.concatenate([[0], np.cumsum(space.n_choices)[:-1]]).astype(np.int64)
        self.n_features = int(space.n_choices.sum())
        self.values = np.zeros((space.n_var, width), dtype=np.int64)
        for j, name in enumerate(names):
            self.values[j, : space.n_choices[j]] = space.choices[name]


@lru_cache(maxsize=32)
def _tables(space: SearchSpace) -> _Tables:
    return _Tables(space)


def _check(space: SearchSpace, X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != space.n_var:
        raise ValueError(
            f"X must have shape (n, {space.n_var}): one of {space.n_var} columns per parameter, got {X.shape}"
        )
    if X.dtype.kind == "f":
        X = np.rint(X)
    X = X.astype(np.int64, copy=False)
    bad = (X < 0) | (X >= space.n_choices)
    if bad.any():
        j = int(np.argwhere(bad)[0, 1])
        raise ValueError(
            f"x index out of range for parameter {space.names[j]!r} (0..{space.n_choices[j] - 1})"
        )
    return X


def active_mask(space: SearchSpace, X: np.ndarray) -> np.ndarray:
    """Which genes change the network: boolean array of ``X``'s shape.

    Example:
        >>> from nastools.space import mobilenetv3_space
        >>> space = mobilenetv3_space()
        >>> int(active_mask(space, np.zeros((1, space.n_var), dtype=int)).sum())  # depth 2 everywhere
        25
    """
    X = _check(space, X)
    t = _tables(space)
    mask = np.ones(X.shape, dtype=bool)
    if len(t.dependent):
        mask[:, t.dependent] = t.active_by_choice[np.arange(len(t.dependent)), X[:, t.controller]]
    return mask


def canonical_x(space: SearchSpace, X: np.ndarray) -> np.ndarray:
    """``X`` with inactive genes set to index 0; row ``i`` equals ``space.encode(space.decode(X)[i])``."""
    X = _check(space, X)
    return np.where(active_mask(space, X), X, 0)


def onehot_features(space: SearchSpace, X: np.ndarray) -> np.ndarray:
    """Same array as ``space.features(space.decode(X))``, built without per-arch Python."""
    X = _check(space, X)
    t = _tables(space)
    out = np.zeros((len(X), t.n_features), dtype=np.float64)
    rows, cols = np.nonzero(active_mask(space, X))
    out[rows, t.offsets[cols] + X[rows, cols]] = 1.0
    return out


def decode_x(space: SearchSpace, X: np.ndarray) -> list[Arch]:
    """Same list as ``space.decode(X)`` for 2-D ``X`` (canonical archs), vectorised up to the dicts."""
    X = canonical_x(space, X)
    t = _tables(space)
    values = t.values[np.arange(space.n_var), X].tolist()
    names = space.names
    return [dict(zip(names, row)) for row in values]
