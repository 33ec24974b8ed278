"""Evolutionary architecture search on pymoo: problem, operators, algorithms by name, hypervolume.

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

from nastools.search._algorithms import ALGORITHMS, make_algorithm
from nastools.search._encoding import active_mask, canonical_x, decode_x, onehot_features
from nastools.search._hypervolume import HypervolumeIndicator, pareto_front_mask
from nastools.search._objectives import KNOWN_METRICS, Objective, parse_objectives
from nastools.search._operators import CanonicalRepair, ChoiceResetMutation
from nastools.search._problem import ArchProblem
from nastools.search._run import GenerationCallback, run_search

__all__ = [
    "ALGORITHMS",
    "KNOWN_METRICS",
    "ArchProblem",
    "CanonicalRepair",
    "ChoiceResetMutation",
    "GenerationCallback",
    "HypervolumeIndicator",
    "Objective",
    "active_mask",
    "canonical_x",
    "decode_x",
    "make_algorithm",
    "onehot_features",
    "parse_objectives",
    "pareto_front_mask",
    "run_search",
]
