"""Package namespaces whose public names are imported on first use (PEP 562).

A family's ``__init__`` (and :mod:`nastools.supernets._elastic`'s) lists what it offers without
importing it, so that its torch-free modules (``_config``: the config and the space) import without
torch, and the registry reads a family's names without building its networks.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__``: each exported name is imported on first use.

    Args:
        package: The package's ``__name__``.
        exports: Module (relative to ``package`` when it starts with a dot) -> the names it defines.

    Example:
        >>> getattr_, dir_ = lazy_exports("json", {".decoder": ["JSONDecodeError"]})
        >>> getattr_("JSONDecodeError").__name__, "JSONDecodeError" in dir_()
        ('JSONDecodeError', True)
    """
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module-level hook PEP 562 names
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name], package), name)
        setattr(sys.modules[package], name, value)  # found without this hook from now on
        return value

    def __dir__() -> list[str]:  # noqa: N807
        return sorted({*vars(sys.modules[package]), *where})

    return __getattr__, __dir__
