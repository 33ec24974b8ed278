"""The searches a researcher would run instead of nastools' tactics, on the same ask/tell contract.

Each adapter drives its library through the library's own public API, as its users do, while the
:class:`~nastools.search.Tactic` base class counts validations of unique canonical archs, so these
tactics compare with nastools' own on hypervolume against validations. The libraries are an
optional extra (``pip install 'nastools[alternatives]'``), imported only when a tactic is built;
without them, building one is a one-line ``ImportError`` naming that install line. The registry
names them ``optuna-tpe``, ``optuna-gp``, ``optuna-nsga2``, ``optuna-auto``, ``botorch-qnehvi``,
``synetune-morea`` and ``synetune-ehvi`` (:func:`~nastools.search.make_tactic`, ``nastools search
--tactic``, the benchmark's rows); docs/benchmarks.md says how each library is driven.

Example:
    >>> from nastools.space import SearchSpace
    >>> from nastools.search.alternatives import OptunaSearch
    >>> space = SearchSpace({f"k_{i}": [3, 5, 7] for i in range(6)})
    >>> OptunaSearch(space, {"acc": "max", "cost": "min"}, 20, sampler="nsga2").name
    'optuna'
"""

from nastools.search.alternatives._adapter import LibraryTactic
from nastools.search.alternatives._botorch import BoTorchSearch, ordinal_positions
from nastools.search.alternatives._optuna import OptunaSearch
from nastools.search.alternatives._synetune import SyneTuneSearch

__all__ = ["BoTorchSearch", "LibraryTactic", "OptunaSearch", "SyneTuneSearch", "ordinal_positions"]
