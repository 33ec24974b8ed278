"""Architecture search: pymoo problem and algorithms, ask/tell tactics, PopDB, hypervolume analysis.

Example:
    >>> from nastools.space import mobilenetv3_space
    >>> from nastools.search import ArchProblem, make_algorithm, run_search
    >>> space = mobilenetv3_space()
    >>> def evaluate(archs):
    ...     return {"depth": [sum(a[f"d_{s}"] for s in range(5)) for a in archs],
    ...             "kernel": [sum(a[f"ks_{i}"] for i in range(20)) for a in archs]}
    >>> problem = ArchProblem(space, {"depth": "max", "kernel": "min"}, evaluate)
    >>> res = run_search(problem, make_algorithm("nsga2", space, pop_size=10), n_gen=3, seed=0)
    >>> res.F.shape[1]
    2
"""

from nastools._encoding import active_mask, canonical_x, decode_x, onehot_features
from nastools.search._algorithms import ALGORITHMS, make_algorithm
from nastools.search._analysis import hypervolume_at, summarize_traces, validations_to_reach
from nastools.search._concurrent import ConcurrentNAS, FullSearch
from nastools.search._evolutionary import EvolutionarySearch
from nastools.search._hypervolume import HypervolumeIndicator, pareto_front_mask
from nastools.search._objectives import KNOWN_METRICS, Objective, parse_objectives
from nastools.search._operators import CanonicalRepair, ChoiceResetMutation
from nastools.search._popdb import PopDBResult, popdb_space
from nastools.search._problem import ArchProblem
from nastools.search._random import RandomSearch
from nastools.search._run import GenerationCallback, run_search
from nastools.search._runner import measure_objectives, objective_metrics, reference_bounds, run_tactic
from nastools.search._tactic import Tactic
from nastools.search._warm_start import best_population
from nastools.search._weaknas import WeakNAS

__all__ = [
    "ALGORITHMS",
    "KNOWN_METRICS",
    "ArchProblem",
    "CanonicalRepair",
    "ChoiceResetMutation",
    "ConcurrentNAS",
    "EvolutionarySearch",
    "FullSearch",
    "GenerationCallback",
    "HypervolumeIndicator",
    "Objective",
    "PopDBResult",
    "RandomSearch",
    "Tactic",
    "WeakNAS",
    "active_mask",
    "best_population",
    "canonical_x",
    "decode_x",
    "hypervolume_at",
    "make_algorithm",
    "measure_objectives",
    "objective_metrics",
    "onehot_features",
    "parse_objectives",
    "pareto_front_mask",
    "popdb_space",
    "reference_bounds",
    "run_search",
    "run_tactic",
    "summarize_traces",
    "validations_to_reach",
]
