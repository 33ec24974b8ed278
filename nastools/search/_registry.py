"""Tactics by name: one registry for the notebooks, the benchmark and the command line."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from nastools.objectives import Objective
from nastools.search._concurrent import ConcurrentNAS, FullSearch
from nastools.search._evolutionary import EvolutionarySearch
from nastools.search._random import RandomSearch
from nastools.search._tactic import Tactic
from nastools.search._weaknas import WeakNAS
from nastools.space import SearchSpace

__all__ = ["TACTICS", "make_tactic", "register_tactic"]

#: Tactic classes by their ``name``.
TACTICS: dict[str, type[Tactic]] = {
    cls.name: cls for cls in (RandomSearch, EvolutionarySearch, FullSearch, ConcurrentNAS, WeakNAS)
}


def register_tactic(cls: type[Tactic], *, overwrite: bool = False) -> type[Tactic]:
    """Add a :class:`Tactic` subclass under its ``name`` (usable as a class decorator).

    Raises:
        ValueError: Not a Tactic subclass, a constructor with ``*args``/``**kwargs`` (whose settings
            :meth:`Tactic.config` could not record), or the name is taken (without ``overwrite``).
    """
    if not (isinstance(cls, type) and issubclass(cls, Tactic)):
        raise ValueError(f"register_tactic takes a Tactic subclass, got {cls!r}")
    try:
        cls.parameter_names()
    except TypeError as error:
        raise ValueError(str(error)) from None
    if cls.name in TACTICS and TACTICS[cls.name] is not cls and not overwrite:
        raise ValueError(
            f"tactic name {cls.name!r} is taken by {TACTICS[cls.name].__name__}; pass overwrite=True"
        )
    TACTICS[cls.name] = cls
    return cls


def make_tactic(
    name: str,
    space: SearchSpace,
    objectives: Mapping[str, str] | Iterable[Objective],
    budget: int,
    **params: Any,
) -> Tactic:
    """Build the tactic registered as ``name`` with keyword ``params``.

    Raises:
        ValueError: An unknown name, or a parameter the tactic does not take (its parameters are
            listed), so that a typo never falls back to a default.

    Example:
        >>> from nastools.space import SearchSpace
        >>> space = SearchSpace({"d": [1, 2, 3], "k": [3, 5, 7]})
        >>> make_tactic("nsga2", space, {"acc": "max", "cost": "min"}, 30, pop_size=6).name
        'nsga2'
    """
    if name not in TACTICS:
        raise ValueError(f"unknown tactic {name!r}; choose one of {sorted(TACTICS)}")
    cls = TACTICS[name]
    accepted = [p for p in cls.parameter_names() if p not in ("space", "objectives", "budget")]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"tactic {name!r} takes no parameter(s) {unknown}; it takes {accepted}")
    return cls(space, objectives, budget, **params)
