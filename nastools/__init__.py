"""nastools: hardware-aware neural architecture search on weight-sharing super-networks.

Public subpackages and modules: :mod:`nastools.space`, :mod:`nastools.supernets`,
:mod:`nastools.hardware`, :mod:`nastools.evaluation`, :mod:`nastools.store`, :mod:`nastools.data`,
:mod:`nastools.training`.
"""

from nastools.space import Condition, SearchSpace, mobilenetv3_space

__all__ = ["Condition", "SearchSpace", "mobilenetv3_space"]
__version__ = "0.1.0"
