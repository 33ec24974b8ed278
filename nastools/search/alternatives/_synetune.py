"""syne-tune's multi-objective searchers (MOREA, EHVI) as a tactic, through its AskTellScheduler."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from nastools.objectives import Objective
from nastools.search._tactic import check_count
from nastools.search.alternatives._adapter import LibraryTactic, require_library
from nastools.space import Arch, SearchSpace

__all__ = ["SyneTuneSearch"]

SEARCHERS = ("morea", "ehvi")


class SyneTuneSearch(LibraryTactic):
    """syne-tune's MOREA or EHVI searcher on the ask/tell contract, driven by its ``AskTellScheduler``.

    The config space is flat, one ``choice(...)`` domain per parameter (syne-tune has no
    conditional parameters: an inactive one is drawn like any other and canonicalised away
    here). syne-tune takes one direction for all metrics, so every objective is reported to be
    minimised, maximised ones negated, as its users do. Each batch asks ``batch_size`` trials
    before telling them (syne-tune's pending trials); a trial that suggests a network validated
    before, or twice in one batch, is told the stored values (:attr:`n_repeats` counts them).
    Both searchers draw from numpy's and torch's global generators (MOREA's random phase
    ignores its ``random_seed``): the tactic runs them on generators of its own seeded with
    ``seed``, so runs are reproducible and the caller's generators untouched.

    Searchers (syne-tune 0.16):

    * ``"morea"``: ``MultiObjectiveRegularizedEvolution`` in a ``SingleFidelityScheduler``:
      random configs until ``population_size`` trials completed, then each trial mutates one
      parameter of the best (non-dominated sorting) of ``sample_size`` members drawn from the
      population, whose oldest member leaves. Its default population of 100 would make it random
      search for the first 100 validations: by default the population fits the budget
      (``budget // 10`` within ``[batch_size, 100]``) and ``sample_size`` is half of it, at most
      10.
    * ``"ehvi"``: the ``EHVI`` baseline (``ExpectedHyperVolumeImprovement``: GPs on normalised
      configs, qLogEHVI optimised over a continuous relaxation, pending trials fantasised). With
      BoTorch 0.18 it crashes on its first model-based ask (float32 reference point, float64
      model), so it runs with torch's default dtype set to float64 around each call (the
      workaround its users apply). It cannot search all the same: its reference point is
      hard-coded at 2 in the negated metrics, which no outcome dominates unless every metric is
      below -2, so the acquisition is flat and, after its 3 random configs, it proposes the same
      network again and again. The search then stalls and ends short of its budget with a
      one-line warning (:attr:`~LibraryTactic.stalled`).
      Each ask also fantasises the pending trials of the batch, and qLogEHVI's
      inclusion-exclusion over them grows exponentially: the registry's ``synetune-ehvi`` asks
      one trial at a time (``batch_size=1``).

    Args:
        space: The search space.
        objectives: E.g. ``{"top1": "max", "macs": "min"}`` (two or more).
        budget: Validations allowed.
        searcher: ``"morea"`` or ``"ehvi"``.
        population_size: MOREA's population (None: sized to the budget, see above).
        sample_size: MOREA's tournament size (None: half the population, at most 10).
        batch_size: Trials asked before telling.
        seed: Seed of the searcher and of the generators it draws from.
        initial_archs: The searcher's ``points_to_evaluate``.

    Raises:
        ValueError: An unknown searcher, fewer than two objectives, a space without choices to
            make, or MOREA's settings given to EHVI.
        ImportError: syne-tune (or, for EHVI, BoTorch) is not installed (the message names the
            install line).

    Example:
        >>> from nastools.space import SearchSpace
        >>> space = SearchSpace({f"k_{i}": [3, 5, 7] for i in range(6)})
        >>> tactic = SyneTuneSearch(space, {"acc": "max", "cost": "min"}, 20, batch_size=4)
        >>> len(tactic.ask())
        4
    """

    name = "synetune"

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, str] | Iterable[Objective],
        budget: int,
        *,
        searcher: str = "morea",
        population_size: int | None = None,
        sample_size: int | None = None,
        batch_size: int = 10,
        seed: int = 0,
        initial_archs: Sequence[Arch] | None = None,
    ) -> None:
        super().__init__(
            space, objectives, budget, batch_size=batch_size, seed=seed, initial_archs=initial_archs
        )
        if searcher not in SEARCHERS:
            raise ValueError(f"unknown syne-tune searcher {searcher!r}; choose one of {list(SEARCHERS)}")
        if len(self.objectives) < 2:
            raise ValueError(
                f"SyneTuneSearch runs multi-objective searchers, which need two or more objectives, "
                f"got {list(self.labels)}"
            )
        if all(len(c) == 1 for c in space.choices.values()):
            raise ValueError("the space has one network only: there is nothing for syne-tune to search")
        if searcher == "ehvi" and (population_size is not None or sample_size is not None):
            raise ValueError(
                "population_size and sample_size are MOREA's settings; searcher 'ehvi' takes neither"
            )
        self.searcher = searcher
        self.population_size = population_size
        self.sample_size = sample_size
        population = min(max(self.budget // 10, self.batch_size), 100)
        self._population_size = (
            population if population_size is None else check_count("population_size", population_size)
        )
        sample = min(max(self._population_size // 2, 1), 10)
        self._sample_size = sample if sample_size is None else check_count("sample_size", sample_size)
        require_library("syne_tune", type(self).__name__)
        if searcher == "ehvi":
            require_library("botorch", type(self).__name__)
        with self._randomness.active(), self._dtype():
            self._scheduler = self._make_scheduler()

    @contextmanager
    def _dtype(self) -> Iterator[None]:
        """For EHVI: torch's default dtype float64 during the call (its float32 reference point crashes)."""
        if self.searcher != "ehvi":
            yield
            return
        import torch

        default = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            yield
        finally:
            torch.set_default_dtype(default)

    def _config_space(self) -> dict[str, Any]:
        from syne_tune.config_space import choice

        return {
            name: choice(list(values)) if len(values) > 1 else values[0]
            for name, values in self.space.choices.items()
        }

    def _points(self) -> list[dict[str, Any]] | None:
        if self.initial_archs is None:
            return None
        # inactive parameters at their first choice: a restricted space's placeholder may lie outside
        return [
            {n: a[n] if self.space.is_active(a, n) else self.space.choices[n][0] for n in self.space.names}
            for a in self.initial_archs
        ]

    def _make_scheduler(self) -> Any:
        from syne_tune.optimizer.schedulers.ask_tell_scheduler import AskTellScheduler

        config_space = self._config_space()
        metrics = list(self.labels)
        if self.searcher == "morea":
            from syne_tune.optimizer.schedulers.multiobjective import MultiObjectiveRegularizedEvolution
            from syne_tune.optimizer.schedulers.single_fidelity_scheduler import SingleFidelityScheduler

            searcher = MultiObjectiveRegularizedEvolution(
                config_space,
                points_to_evaluate=self._points(),
                population_size=self._population_size,
                sample_size=self._sample_size,
                random_seed=self.seed,
            )
            scheduler = SingleFidelityScheduler(
                config_space, metrics=metrics, do_minimize=True, searcher=searcher, random_seed=self.seed
            )
        else:
            from syne_tune.optimizer.baselines import EHVI

            scheduler = EHVI(
                config_space,
                metrics=metrics,
                do_minimize=True,
                random_seed=self.seed,
                points_to_evaluate=self._points(),
            )
        return AskTellScheduler(base_scheduler=scheduler)

    def _stall_reason(self) -> str:
        if self.searcher != "ehvi":
            return ""
        return (
            " (syne-tune's EHVI fixes its reference point at 2 in the negated metrics, which no outcome "
            "dominates unless every metric is below -2: its acquisition is flat and it proposes the same "
            "network again)"
        )

    def _ask_library(self, size: int) -> list[tuple[Any, Arch]]:
        proposals = []
        with self._dtype():
            for _ in range(size):
                trial = self._scheduler.ask()
                proposals.append((trial, {name: trial.config[name] for name in self.space.names}))
        return proposals

    def _tell_library(self, answers: list[tuple[Any, dict[str, float] | None]]) -> None:
        with self._dtype():
            for trial, values in answers:
                if values is None:  # the budget ran out: the searcher hears of a failed trial
                    self._scheduler.base_scheduler.on_trial_error(trial)
                    continue
                minimised = {o.label: o.sign * values[o.label] for o in self.objectives}
                self._scheduler.tell(trial, minimised)
