"""Tactics by name: one registry and one factory for the notebooks, the benchmark and the command line.

A registered name is a :class:`~nastools.search.Tactic` class with preset options
(``"concurrent-ridge"`` is :class:`~nastools.search.ConcurrentNAS` with ``predictor="ridge"``).
:func:`make_tactic` builds one from three layers, each winning over the one before:

1. the preset's options;
2. ``settings``, what a comparison shares across its tactics (``pop_size``, ``n_gen``,
   ``predictor``, ``n_initial``, ``exact``, ...): each reaches the classes that take it, under its
   own name or under the name a class gives the same concept (RandomSearch's and WeakNAS's
   ``batch_size`` take ``pop_size``), and no other class; a key ``"<tactic>.<parameter>"`` reaches
   one tactic (by its registry name or its class's ``name``) and wins over a plain key;
3. the explicit ``options``: constructor arguments of that tactic.

A typo never falls back to a default: an option the class does not take, a setting no registered
tactic takes, or a scoped setting its tactic does not take is a one-line ``ValueError``.

nastools' own tactics and the alternatives are entries of one table,
:data:`nastools._tactic_names.BUILTIN_TACTICS` (torch-free: what ``nastools search --help`` lists),
registered from it on first use (the alternatives' libraries are imported only when one is built);
a user's tactic is one :func:`register_tactic` call.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nastools._tactic_names import BUILTIN_TACTICS, TacticName
from nastools.objectives import Objective
from nastools.search._tactic import Tactic
from nastools.space import SearchSpace

__all__ = ["TACTICS", "TacticPreset", "make_tactic", "register_tactic", "tactic_names", "tactic_preset"]

#: The arguments every tactic takes first; make_tactic's own, never options or settings.
_POSITIONAL = ("space", "objectives", "budget")


@dataclass(frozen=True)
class TacticPreset:
    """A registered tactic: its class and the options its name fixes.

    Example:
        >>> preset = tactic_preset("concurrent-ridge")
        >>> preset.cls.__name__, preset.options
        ('ConcurrentNAS', {'predictor': 'ridge'})
    """

    cls: type[Tactic]
    options: dict[str, Any] = field(default_factory=dict)

    def parameters(self) -> list[str]:
        """The constructor arguments options and settings may set (all but space, objectives, budget)."""
        return [p for p in self.cls.parameter_names() if p not in _POSITIONAL]

    def parameter_for(self, setting: str) -> str | None:
        """The constructor argument a shared ``setting`` reaches: its own name, the class's alias, or None.

        Example:
            >>> random = tactic_preset("random")
            >>> random.parameter_for("pop_size"), random.parameter_for("n_gen")
            ('batch_size', None)
        """
        if setting in self.parameters():
            return setting
        target = _ALIASES.get(self.cls, {}).get(setting)
        return target if target in self.parameters() else None


#: Registered tactics by name.
TACTICS: dict[str, TacticPreset] = {}
#: Per class, the shared settings it takes under another name: ``{class: {setting: parameter}}``.
_ALIASES: dict[type[Tactic], dict[str, str]] = {}


def register_tactic(
    name_or_cls: str | type[Tactic],
    cls: type[Tactic] | None = None,
    /,
    *,
    overwrite: bool = False,
    aliases: Mapping[str, str] | None = None,
    **preset: Any,
) -> type[Tactic]:
    """Register a :class:`Tactic` subclass under a name, with preset options: one call adds a tactic.

    ``register_tactic(cls)`` registers ``cls`` under its ``name`` attribute with no preset (usable as a
    class decorator); ``register_tactic(name, cls, **preset)`` registers a named configuration. The
    name then works everywhere a tactic is named: :func:`make_tactic`, the notebooks'
    :func:`~nastools.experiments.build_tactic`, ``nastools search --tactic`` (when the module that
    registers it is imported, e.g. the ``--supernet module:factory``'s) and the benchmark's rows.
    nastools' own tactics are entries of :data:`nastools._tactic_names.BUILTIN_TACTICS` instead.

    Args:
        name_or_cls: The name, or the class (registered under ``cls.name``).
        cls: The class, when a name is given first.
        overwrite: Replace another tactic registered under the name.
        aliases: Shared settings this class takes under another name, e.g. ``{"pop_size":
            "batch_size"}``: a comparison's ``pop_size`` becomes its ``batch_size``.
        **preset: Constructor arguments the name fixes (explicit settings and options still win).

    Returns:
        The class.

    Raises:
        ValueError: Not a Tactic subclass; a constructor with ``*args``/``**kwargs`` (whose settings
            :meth:`Tactic.config` could not record); a preset or alias naming an argument the class
            does not take; a name of a built-in tactic; or a name taken by another tactic (without
            ``overwrite``).

    Example:
        >>> from nastools.search import ConcurrentNAS
        >>> register_tactic("concurrent-short", ConcurrentNAS, n_gen=50).__name__
        'ConcurrentNAS'
        >>> TACTICS.pop("concurrent-short").options
        {'n_gen': 50}
    """
    if isinstance(name_or_cls, str):
        name = name_or_cls
        if cls is None:
            raise ValueError(
                f"register_tactic({name!r}, cls, **preset) takes the Tactic class after the name"
            )
    else:
        if cls is not None:
            raise ValueError("register_tactic takes a name and a class, or a class alone")
        cls = name_or_cls
        name = getattr(cls, "name", None)
    if isinstance(name, str) and name in BUILTIN_TACTICS:
        builtin = BUILTIN_TACTICS[name]
        if not overwrite and (cls, dict(preset), dict(aliases or {})) != _builtin_parts(builtin):
            raise ValueError(
                f"tactic name {name!r} is nastools' own ({builtin.tactic}); choose another name, or pass "
                "overwrite=True"
            )
    return _register(name, cls, overwrite=overwrite, aliases=aliases, preset=preset)


def _builtin_parts(entry: TacticName) -> tuple[type[Tactic], dict[str, Any], dict[str, str]]:
    """The class (imported now), preset and aliases of a built-in entry."""
    module, _, attribute = entry.tactic.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"tactic class {entry.tactic} cannot be imported ({reason})") from None
    return cls, dict(entry.options), dict(entry.aliases)


def _register(
    name: object,
    cls: object,
    *,
    overwrite: bool,
    aliases: Mapping[str, str] | None,
    preset: Mapping[str, Any],
) -> type[Tactic]:
    if not (isinstance(cls, type) and issubclass(cls, Tactic)):
        raise ValueError(f"register_tactic takes a Tactic subclass, got {cls!r}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_tactic needs a name for {cls.__name__}, got {name!r}")
    try:
        cls.parameter_names()
    except TypeError as error:
        raise ValueError(str(error)) from None
    entry = TacticPreset(cls, dict(preset))
    accepted = entry.parameters()
    unknown = sorted(set(preset) - set(accepted))
    if unknown:
        raise ValueError(f"preset of tactic {name!r}: {cls.__name__} takes no parameter(s) {unknown}")
    aliases = dict(aliases or {})
    if wrong := sorted(target for target in aliases.values() if target not in accepted):
        raise ValueError(f"aliases of tactic {name!r}: {cls.__name__} takes no parameter(s) {wrong}")
    existing = TACTICS.get(name)
    if existing is not None and existing != entry and not overwrite:
        raise ValueError(f"tactic name {name!r} is taken by {existing.cls.__name__}; pass overwrite=True")
    TACTICS[name] = entry
    if aliases:
        _ALIASES.setdefault(cls, {}).update(aliases)
    return cls


def tactic_names() -> list[str]:
    """Every tactic name: the built-in ones (registered or registered on first use), then the user's.

    Example:
        >>> tactic_names()[:4]
        ['random', 'nsga2', 'full', 'concurrent']
    """
    return [*BUILTIN_TACTICS, *sorted(set(TACTICS) - set(BUILTIN_TACTICS))]


def _register_builtin(name: str) -> None:
    """Register built-in tactic ``name`` from its entry (importing its class; its library comes later)."""
    cls, preset, aliases = _builtin_parts(BUILTIN_TACTICS[name])
    _register(name, cls, overwrite=False, aliases=aliases, preset=preset)


def _import_all() -> None:
    """Register every built-in name not registered yet (what a check of all settings needs)."""
    for name in BUILTIN_TACTICS:
        if name not in TACTICS:
            _register_builtin(name)


def tactic_preset(name: str) -> TacticPreset:
    """The tactic registered as ``name`` (registering a built-in one on first use).

    An alternative's library is imported only when the tactic is built (:func:`make_tactic`), so
    this answers without it.

    Raises:
        ValueError: An unknown name (the known ones are listed), or a built-in entry whose class
            cannot be imported.

    Example:
        >>> tactic_preset("optuna-tpe").options
        {'sampler': 'tpe'}
    """
    if not isinstance(name, str):
        raise ValueError(f"a tactic name is a string, got {name!r}")
    if name not in TACTICS and name in BUILTIN_TACTICS:
        _register_builtin(name)
    if name not in TACTICS:
        raise ValueError(f"unknown tactic {name!r}; choose one of {tactic_names()}")
    return TACTICS[name]


def _check_settings(settings: Mapping[str, Any]) -> None:
    """Raise for a setting no registered tactic takes, or a scoped one its tactic does not take."""
    if not isinstance(settings, Mapping):
        raise ValueError(f"settings is a mapping of setting names to values, got {type(settings).__name__}")
    for key in settings:
        if not isinstance(key, str) or not key:
            raise ValueError(f"a setting name is a non-empty string, got {key!r}")
        scope, dot, parameter = key.rpartition(".")
        _import_all()
        if dot:
            matched = {n: p for n, p in TACTICS.items() if scope in (n, p.cls.name)}
            known = bool(matched)
        else:
            known = any(preset.parameter_for(key) for preset in TACTICS.values())
        if dot and not matched:
            raise ValueError(f"setting {key!r}: no tactic is named {scope!r}; choose one of {tactic_names()}")
        if dot:
            for tactic, preset in matched.items():
                if parameter not in preset.parameters():
                    raise ValueError(
                        f"setting {key!r}: tactic {tactic!r} takes no parameter {parameter!r}; it takes "
                        f"{preset.parameters()}"
                    )
        elif not known:
            raise ValueError(
                f"no registered tactic takes setting {key!r}: a setting is a parameter of some tactic "
                "(pop_size, n_gen, predictor, ...) or '<tactic>.<parameter>' for one tactic"
            )


def _applied_settings(name: str, preset: TacticPreset, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that reach tactic ``name``, by its parameter names: aliased, then direct, then scoped."""
    accepted = set(preset.parameters())
    aliases = _ALIASES.get(preset.cls, {})
    aliased, direct, scoped = {}, {}, {}
    for key, value in settings.items():
        scope, dot, parameter = key.rpartition(".")
        if dot:
            if scope in (name, preset.cls.name):
                scoped[parameter] = value
        elif key in accepted:
            direct[key] = value
        elif aliases.get(key) in accepted:
            aliased[aliases[key]] = value
    return {**aliased, **direct, **scoped}


def make_tactic(
    name: str,
    /,
    space: SearchSpace,
    objectives: Mapping[str, str] | Iterable[Objective],
    budget: int,
    *,
    settings: Mapping[str, Any] | None = None,
    **options: Any,
) -> Tactic:
    """Build the tactic registered as ``name``: its preset, then the shared ``settings``, then ``options``.

    Args:
        name: A registered name (:func:`tactic_names`).
        space: The space searched.
        objectives: The objectives.
        budget: Validations allowed.
        settings: Settings a comparison shares, applied where the class takes them (see the module
            docstring): e.g. ``{"pop_size": 20, "n_gen": 100, "exact": evaluator.free(objectives),
            "weaknas.top_k": 200}``.
        **options: Constructor arguments of this tactic.

    Raises:
        ValueError: An unknown name, an option the tactic does not take (what it takes is listed),
            a setting no registered tactic takes, or a scoped setting its tactic does not take.
        ImportError: A built-in alternative whose library is not installed (with the install line).

    Example:
        >>> from nastools.space import SearchSpace
        >>> space = SearchSpace({"d": [1, 2, 3], "k": [3, 5, 7]})
        >>> objectives = {"acc": "max", "cost": "min"}
        >>> make_tactic("nsga2", space, objectives, 30, pop_size=6).pop_size
        6
        >>> make_tactic("random", space, objectives, 30, settings={"pop_size": 4, "n_gen": 9}).batch_size
        4
    """
    preset = tactic_preset(name)
    accepted = preset.parameters()
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"tactic {name!r} takes no parameter(s) {unknown}; it takes {accepted}")
    settings = {} if settings is None else settings
    _check_settings(settings)
    params = {**preset.options, **_applied_settings(name, preset, settings), **options}
    return preset.cls(space, objectives, budget, **params)


for _name, _entry in BUILTIN_TACTICS.items():  # nastools' own (imported above); the alternatives on use
    if _entry.extra is None:
        _register_builtin(_name)
