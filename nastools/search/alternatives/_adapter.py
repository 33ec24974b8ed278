"""What the adapters share: lazy imports, library proposals mapped to canonical archs, repeats, randomness."""

from __future__ import annotations

import importlib
import random
import warnings
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import numpy as np
import torch

from nastools.objectives import Objective
from nastools.search._tactic import Tactic, check_count
from nastools.space import Arch, SearchSpace

__all__ = ["INSTALL", "LibraryTactic", "require_library"]

#: What a user runs to get every library the alternatives drive.
INSTALL = "pip install 'nastools[alternatives]'"


def require_library(module: str, tactic: str) -> ModuleType:
    """Import ``module`` for ``tactic``, or raise a one-line ``ImportError`` naming the install line.

    The alternatives import their library only when a tactic is built, so that importing
    :mod:`nastools.search` (and listing the registry) never needs them.

    Example:
        >>> require_library("numpy", "MyTactic").__name__
        'numpy'
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ImportError(f"{tactic} needs {module.split('.')[0]} ({reason}): {INSTALL}") from None


class _GlobalRandomness:
    """The global generators of Python, numpy and torch, swapped in around calls into a library.

    Some libraries draw from the global generators (syne-tune's random configs from numpy's, its
    EHVI seeds torch's): running them inside :meth:`active` makes a tactic reproducible from its
    seed and leaves the caller's generators as they were.
    """

    def __init__(self, seed: int) -> None:
        self._python = random.Random(seed).getstate()
        self._numpy = np.random.RandomState(seed).get_state()
        self._torch = torch.Generator().manual_seed(seed).get_state()

    @contextmanager
    def active(self) -> Iterator[None]:
        saved = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
        random.setstate(self._python)
        np.random.set_state(self._numpy)
        torch.random.set_rng_state(self._torch)
        try:
            yield
        finally:
            self._python, self._numpy = random.getstate(), np.random.get_state()
            self._torch = torch.random.get_rng_state()
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.random.set_rng_state(saved[2])


class LibraryTactic(Tactic):
    """A tactic whose proposals come from another library's ask/tell interface.

    Each batch asks the library for up to ``batch_size`` proposals (its trials); they are
    canonicalised into archs for the :class:`~nastools.search.Tactic` base class, which validates
    each new network once and answers the rest from memory. Once the batch is validated, every
    library trial is told its network's values, a repeat included (Optuna's FAQ answer to
    duplicated samples, and what syne-tune users do); :attr:`n_repeats` counts those repeats. A
    trial left unvalidated because the budget ran out is told as abandoned.

    A library that proposes only networks validated before for :attr:`max_idle_batches` batches
    in a row has stalled: the search ends there, short of its budget, with a one-line warning
    saying so (:attr:`stalled`), instead of asking it again and again.

    Subclasses implement :meth:`_ask_library` and :meth:`_tell_library`.
    """

    #: Batches in a row of nothing but repeats after which the library counts as stalled.
    max_idle_batches = 10

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, str] | Iterable[Objective],
        budget: int,
        *,
        batch_size: int,
        seed: int,
        initial_archs: Sequence[Arch] | None,
    ) -> None:
        super().__init__(space, objectives, budget, seed=seed, initial_archs=initial_archs)
        self.batch_size = check_count("batch_size", batch_size)
        #: Library proposals answered from memory: a network validated before, or twice in one batch.
        self.n_repeats = 0
        #: Whether the search ended because the library proposed only repeats (see the class docstring).
        self.stalled = False
        self._idle_batches = 0
        self._randomness = _GlobalRandomness(self.seed)
        self._asked: list[tuple[Any, str]] = []
        self._known_before: set[str] = set()

    def _propose(self) -> list[Arch] | None:
        if self._idle_batches >= self.max_idle_batches:
            self.stalled = True
            warnings.warn(
                f"{type(self).__name__}: the library proposed only networks validated before in "
                f"{self._idle_batches} batches in a row; the search stopped at {self.n_validated} of "
                f"{self.budget} validations{self._stall_reason()}",
                RuntimeWarning,
                stacklevel=2,
            )
            return None
        size = min(self.batch_size, self.budget - self.n_validated)
        with self._randomness.active():
            proposals = self._ask_library(size)
        if not proposals:
            return None
        self._asked = [(handle, self.space.key(arch)) for handle, arch in proposals]
        self._known_before = set(self._values)
        return [self.space.from_key(key) for _, key in self._asked]

    def _receive(self, archs: list[Arch], values: dict[str, np.ndarray]) -> None:
        seen: set[str] = set()
        answers = []
        repeats = 0
        for handle, key in self._asked:
            if key in self._known_before or key in seen:
                repeats += 1
            seen.add(key)
            answers.append((handle, self._values.get(key)))
        self.n_repeats += repeats
        self._idle_batches = self._idle_batches + 1 if repeats == len(self._asked) else 0
        self._asked = []
        with self._randomness.active():
            self._tell_library(answers)

    def ordered_names(self) -> list[str]:
        """Parameter names with every controller before the parameters it switches on."""
        order: list[str] = []

        def visit(name: str) -> None:
            if name in order:
                return
            condition = self.space.conditions.get(name)
            if condition is not None:
                visit(condition.controller)
            order.append(name)

        for name in self.space.names:
            visit(name)
        return order

    def _stall_reason(self) -> str:
        """Why this library stalls, when known: appended to the warning (``"; ..."``)."""
        return ""

    @abstractmethod
    def _ask_library(self, size: int) -> list[tuple[Any, Arch]]:
        """Up to ``size`` proposals as ``(library handle, arch)``; an empty list when finished."""

    @abstractmethod
    def _tell_library(self, answers: list[tuple[Any, dict[str, float] | None]]) -> None:
        """Each handle of the last batch with its objective values by label (None: not validated)."""
