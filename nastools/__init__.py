"""nastools: hardware-aware neural architecture search on weight-sharing super-networks.

The generic contracts are one module each: :mod:`nastools.space`, :mod:`nastools.objectives`,
:mod:`nastools.supernet`, :mod:`nastools.hardware`, :mod:`nastools.evaluation`,
:mod:`nastools.store`, :mod:`nastools.hypervolume`, :mod:`nastools.predictors`; searches live in
:mod:`nastools.search`, analysis shared by notebooks and benchmarks in :mod:`nastools.analysis`,
supernet families in :mod:`nastools.supernets`.
"""

from nastools.space import Arch, Condition, SearchSpace

__all__ = ["Arch", "Condition", "SearchSpace"]
__version__ = "0.2.0"
