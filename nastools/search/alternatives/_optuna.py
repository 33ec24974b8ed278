"""Optuna's samplers as a tactic: a Study driven by ask/tell in batches, one categorical per parameter."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from nastools.objectives import Objective
from nastools.search.alternatives._adapter import LibraryTactic, require_library
from nastools.space import Arch, SearchSpace

__all__ = ["OptunaSearch"]

#: Samplers by name, and whether each models define-by-run conditional parameters.
SAMPLERS = {"tpe": True, "gp": False, "nsga2": False, "auto": True}


class OptunaSearch(LibraryTactic):
    """Optuna's multi-objective samplers (TPE, GP, NSGA-II, AutoSampler's choice) on the ask/tell contract.

    A :class:`optuna.study.Study` with one direction per objective; each arch is a trial whose
    parameters are suggested with ``suggest_categorical`` over the space's choices. Each batch
    asks ``batch_size`` trials, then tells them (running trials are what TPE's constant liar and
    the GP's Kriging believer account for). A trial that suggests a network validated before, or
    twice in one batch, is told the stored values without spending budget (Optuna's FAQ on
    duplicated samples); :attr:`n_repeats` counts them. Seeded samplers make runs reproducible.

    Samplers, as a user drives them (Optuna 5.1):

    * ``"tpe"``: ``TPESampler(multivariate=True, constant_liar=True)`` on the define-by-run space:
      a conditional parameter is suggested only when its controller makes it active, so equal
      networks have equal ``trial.params``.
    * ``"gp"``: ``GPSampler`` (log-EHVI for several objectives; a Hamming kernel on categorical
      parameters) on the flat space, every parameter suggested each time: it models no
      conditional parameters (it samples those outside the intersection space at random). Its
      cost grows quickly: tens of seconds per trial with 45 parameters and 100 trials.
    * ``"nsga2"``: ``NSGAIISampler`` on the flat space with ``population_size`` sized to the
      budget (``budget // 10`` within ``[batch_size, 50]``; its default of 50 leaves a budget of
      100 two generations).
    * ``"auto"``: what OptunaHub's ``AutoSampler`` picks for choice parameters, rebuilt from the
      built-in samplers because the hub module loads from GitHub: random for the first batch,
      then multivariate TPE with the constant liar (for the whole study once the define-by-run
      space shows conditional parameters), switching to NSGA-II (population 50) at 250 completed
      trials only in a flat space.

    Args:
        space: The search space.
        objectives: E.g. ``{"top1": "max", "macs": "min"}``.
        budget: Validations allowed.
        sampler: ``"tpe"``, ``"gp"``, ``"nsga2"`` or ``"auto"``.
        batch_size: Trials asked before telling.
        define_by_run: Suggest conditional parameters only when active (None: as the sampler
            handles them, True for ``"tpe"`` and ``"auto"``, False for ``"gp"`` and ``"nsga2"``).
        sampler_options: Extra keyword arguments of the sampler's constructor (e.g.
            ``{"n_startup_trials": 20}``); not for ``"auto"``, which takes none.
        seed: Seed of the sampler.
        initial_archs: Enqueued as the first trials (``study.enqueue_trial``).

    Raises:
        ValueError: An unknown sampler, or options for ``"auto"``.
        ImportError: Optuna is not installed (the message names the install line).

    Example:
        >>> from nastools.space import SearchSpace
        >>> space = SearchSpace({f"k_{i}": [3, 5, 7] for i in range(6)})
        >>> tactic = OptunaSearch(space, {"acc": "max", "cost": "min"}, 20, sampler="tpe", batch_size=4)
        >>> len(tactic.ask())
        4
    """

    name = "optuna"

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, str] | Iterable[Objective],
        budget: int,
        *,
        sampler: str = "tpe",
        batch_size: int = 10,
        define_by_run: bool | None = None,
        sampler_options: Mapping[str, Any] | None = None,
        seed: int = 0,
        initial_archs: Sequence[Arch] | None = None,
    ) -> None:
        super().__init__(
            space, objectives, budget, batch_size=batch_size, seed=seed, initial_archs=initial_archs
        )
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown Optuna sampler {sampler!r}; choose one of {list(SAMPLERS)}")
        if define_by_run is not None and not isinstance(define_by_run, bool):
            raise ValueError(f"define_by_run must be True, False or None, got {define_by_run!r}")
        if sampler_options is not None and not isinstance(sampler_options, Mapping):
            raise ValueError(f"sampler_options must be a dict of keyword arguments, got {sampler_options!r}")
        if sampler == "auto" and sampler_options:
            raise ValueError(f"sampler 'auto' takes no sampler_options (got {sorted(sampler_options)})")
        self.sampler = sampler
        self.define_by_run = define_by_run
        self.sampler_options = dict(sampler_options or {})
        self._define_by_run = SAMPLERS[sampler] if define_by_run is None else define_by_run
        self._optuna = require_library("optuna", type(self).__name__)
        self._order = self.ordered_names()
        with self._quiet(), self._randomness.active():
            self._study = self._optuna.create_study(
                directions=["maximize" if o.direction == "max" else "minimize" for o in self.objectives],
                sampler=self._make_sampler(),
            )
            for arch in self.initial_archs or []:
                self._study.enqueue_trial(self._params(arch))

    @contextmanager
    def _quiet(self) -> Iterator[None]:
        """Optuna's INFO lines (a new study, each trial) off while this tactic calls it."""
        logging = self._optuna.logging
        verbosity = logging.get_verbosity()
        logging.set_verbosity(min(max(verbosity, logging.WARNING), logging.CRITICAL))
        try:
            yield
        finally:
            logging.set_verbosity(verbosity)

    def _make_sampler(self) -> Any:
        samplers = self._optuna.samplers
        options = dict(self.sampler_options)
        if self.sampler == "tpe":
            # the constant liar: what Optuna's docs advise for trials asked before others are told
            options = {"multivariate": True, "constant_liar": True} | options
            return samplers.TPESampler(seed=self.seed, **options)
        if self.sampler == "gp":
            return samplers.GPSampler(seed=self.seed, **options)
        if self.sampler == "nsga2":
            population = min(max(self.budget // 10, self.batch_size), 50)
            options = {"population_size": population} | options
            return samplers.NSGAIISampler(seed=self.seed, **options)
        from nastools.search.alternatives._optuna_auto import AutoChoiceSampler

        return AutoChoiceSampler(seed=self.seed)

    def _params(self, arch: Arch) -> dict[str, Any]:
        """The trial parameters of a canonical arch: only the active ones when define-by-run.

        In the flat space an inactive parameter takes its first choice (a restricted space's
        placeholder may lie outside its choices).
        """
        params = {}
        for name in self._order:
            if self.space.is_active(arch, name):
                params[name] = arch[name]
            elif not self._define_by_run:
                params[name] = self.space.choices[name][0]
        return params

    def _suggest(self, trial: Any) -> Arch:
        arch: Arch = {}
        for name in self._order:  # controllers first: a dependent's activity is known when reached
            if self._define_by_run and not self.space.is_active(arch, name):
                arch[name] = self.space.choices[name][0]  # inactive: canonical() sets the placeholder
            else:
                arch[name] = trial.suggest_categorical(name, self.space.choices[name])
        return arch

    def _ask_library(self, size: int) -> list[tuple[Any, Arch]]:
        with self._quiet():
            trials = [self._study.ask() for _ in range(size)]
            return [(trial, self._suggest(trial)) for trial in trials]

    def _tell_library(self, answers: list[tuple[Any, dict[str, float] | None]]) -> None:
        failed = self._optuna.trial.TrialState.FAIL
        with self._quiet():
            for trial, values in answers:
                if values is None:
                    self._study.tell(trial, state=failed)
                else:
                    self._study.tell(trial, [values[label] for label in self.labels])
