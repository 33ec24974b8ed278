"""The tactics nastools registers: one table, read without importing torch (``nastools search --help``).

Each entry names a :class:`~nastools.search.Tactic` class by import path, with the options its
name fixes; :func:`nastools.search.tactic_preset` registers an entry the first time it is asked for
(importing its class then). Adding a built-in tactic or an alternative is one entry here; a user's
own tactic is one :func:`nastools.search.register_tactic` call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BUILTIN_TACTICS", "TacticName", "install_line"]


@dataclass(frozen=True)
class TacticName:
    """A built-in tactic: one line on what it does, its class, and the options its name fixes.

    Attributes:
        description: One line for ``--help`` and the docs.
        tactic: The class as ``"module:Class"``, imported when the name is first used.
        options: Constructor arguments the name fixes (shared settings and explicit options win).
        aliases: Shared settings the class takes under another name, e.g. ``{"pop_size":
            "batch_size"}``.
        extra: The optional dependency set (``pip install 'nastools[<extra>]'``) its library comes
            with; None for the tactics of nastools itself.

    Example:
        >>> BUILTIN_TACTICS["concurrent-ridge"].options
        {'predictor': 'ridge'}
    """

    description: str
    tactic: str
    options: Mapping[str, Any] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    extra: str | None = None


_SEARCH = "nastools.search"
_ALTERNATIVES = "nastools.search.alternatives"
_BATCH = {"pop_size": "batch_size"}


def _alternative(description: str, cls: str, **options: Any) -> TacticName:
    # their own batch (``batch_size``, 10 by default, as their users run them): a comparison's
    # pop_size does not reach it
    return TacticName(description, f"{_ALTERNATIVES}:{cls}", options, extra="alternatives")


#: Every tactic name nastools registers, in the order ``--help`` lists them.
BUILTIN_TACTICS: dict[str, TacticName] = {
    "random": TacticName(
        "uniform random sub-networks, a batch at a time", f"{_SEARCH}._random:RandomSearch", {}, _BATCH
    ),
    "nsga2": TacticName(
        "NSGA-II on validations alone (pymoo)", f"{_SEARCH}._evolutionary:EvolutionarySearch"
    ),
    "full": TacticName(
        "one NSGA-II search on predictors trained on a random sample, then its front",
        f"{_SEARCH}._concurrent:FullSearch",
    ),
    "concurrent": TacticName(
        "ConcurrentNAS with the library's default predictors", f"{_SEARCH}._concurrent:ConcurrentNAS"
    ),
    "concurrent-ridge": TacticName(
        "ConcurrentNAS with ridge predictors (the paper's), batches by expected hypervolume improvement",
        f"{_SEARCH}._concurrent:ConcurrentNAS",
        {"predictor": "ridge"},
    ),
    "concurrent-population": TacticName(
        "ConcurrentNAS with the default predictors, validating the inner search's final population",
        f"{_SEARCH}._concurrent:ConcurrentNAS",
        {"acquisition": "population"},
    ),
    "concurrent-paper": TacticName(
        "ConcurrentNAS as the paper's Algorithm 1: ridge predictors, the inner final population validated",
        f"{_SEARCH}._concurrent:ConcurrentNAS",
        {"predictor": "ridge", "acquisition": "population"},
    ),
    "weaknas": TacticName(
        "the WeakNAS baseline: rounds of the predicted top-k of a random pool",
        f"{_SEARCH}._weaknas:WeakNAS",
        {},
        _BATCH,
    ),
    "optuna-tpe": _alternative("Optuna's multivariate TPE sampler", "OptunaSearch", sampler="tpe"),
    "optuna-gp": _alternative("Optuna's GP sampler (log-EHVI)", "OptunaSearch", sampler="gp"),
    "optuna-nsga2": _alternative("Optuna's NSGA-II sampler", "OptunaSearch", sampler="nsga2"),
    "optuna-auto": _alternative("the sampler Optuna's AutoSampler picks", "OptunaSearch", sampler="auto"),
    "botorch-qnehvi": _alternative("BoTorch: ARD GPs, qLogNEHVI, discrete local search", "BoTorchSearch"),
    "synetune-morea": _alternative("syne-tune's MOREA", "SyneTuneSearch", searcher="morea"),
    "synetune-ehvi": _alternative(
        "syne-tune's EHVI, one trial at a time (it stalls: its reference point is fixed at 2)",
        "SyneTuneSearch",
        searcher="ehvi",
        batch_size=1,
    ),
}


def install_line(name: str) -> str | None:
    """The pip line that installs the library of built-in tactic ``name`` (None: nothing to install).

    Example:
        >>> install_line("optuna-tpe")
        "pip install 'nastools[alternatives]'"
    """
    entry = BUILTIN_TACTICS.get(name)
    return None if entry is None or entry.extra is None else f"pip install 'nastools[{entry.extra}]'"
