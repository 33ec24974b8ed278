"""Architecture search: the pymoo problem and algorithms, ask/tell tactics by name, warm start, PopDB.

Example:
    >>> from nastools.space import SearchSpace
    >>> from nastools.search import ArchProblem, make_algorithm, run_search
    >>> space = SearchSpace({"d_0": [1, 2, 3], "d_1": [1, 2, 3], "k": [3, 5, 7]})
    >>> def evaluate(archs):
    ...     return {"depth": [a["d_0"] + a["d_1"] for a in archs], "kernel": [a["k"] for a in archs]}
    >>> problem = ArchProblem(space, {"depth": "max", "kernel": "min"}, evaluate)
    >>> res = run_search(problem, make_algorithm("nsga2", space, pop_size=10), n_gen=3, seed=0)
    >>> res.F.shape[1]
    2
"""

from nastools.search._algorithms import ALGORITHMS, make_algorithm
from nastools.search._concurrent import ConcurrentNAS, FullSearch
from nastools.search._evolutionary import EvolutionarySearch
from nastools.search._operators import CanonicalRepair, ChoiceResetMutation
from nastools.search._popdb import PopDBResult, popdb_space
from nastools.search._popdb_history import predictor_history
from nastools.search._problem import ArchProblem
from nastools.search._random import RandomSearch
from nastools.search._registry import (
    TACTICS,
    TacticPreset,
    make_tactic,
    register_tactic,
    tactic_names,
    tactic_preset,
)
from nastools.search._run import GenerationCallback, run_search
from nastools.search._runner import run_tactic
from nastools.search._surrogate import PredictorGuidedSearch, PredictorSearch, search_on_predictors
from nastools.search._tactic import Tactic
from nastools.search._trace import HypervolumeTrace
from nastools.search._warm_start import best_population
from nastools.search._weaknas import WeakNAS

__all__ = [
    "ALGORITHMS",
    "TACTICS",
    "ArchProblem",
    "CanonicalRepair",
    "ChoiceResetMutation",
    "ConcurrentNAS",
    "EvolutionarySearch",
    "FullSearch",
    "GenerationCallback",
    "HypervolumeTrace",
    "PopDBResult",
    "PredictorGuidedSearch",
    "PredictorSearch",
    "RandomSearch",
    "Tactic",
    "TacticPreset",
    "WeakNAS",
    "best_population",
    "make_algorithm",
    "make_tactic",
    "popdb_space",
    "predictor_history",
    "register_tactic",
    "run_search",
    "run_tactic",
    "search_on_predictors",
    "tactic_names",
    "tactic_preset",
]
