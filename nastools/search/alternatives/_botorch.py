"""BoTorch's qLogNEHVI as a tactic: two GPs on an ordinal encoding, discrete local search, batches."""

# BoTorch's names: X inputs (n x d), Y outcomes (n x m, maximised).
# ruff: noqa: N806

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from nastools.objectives import Objective
from nastools.search._tactic import check_count
from nastools.search.alternatives._adapter import LibraryTactic, require_library
from nastools.space import Arch, SearchSpace

__all__ = ["BoTorchSearch", "ordinal_positions"]


def ordinal_positions(space: SearchSpace) -> list[np.ndarray]:
    """Each parameter's choices as positions in ``[0, 1]``, by choice index.

    Numeric choices are placed by rank of their values (so ``[6, 3, 4]`` gives ``[1, 0, 0.5]``),
    other choices (strings, booleans) by their order in the space; a parameter with one choice
    sits at 0.

    Example:
        >>> ordinal_positions(SearchSpace({"e": [6, 3, 4], "act": ["relu", "gelu"]}))[0].tolist()
        [1.0, 0.0, 0.5]
    """
    positions = []
    for name in space.names:
        choices = space.choices[name]
        if len(choices) == 1:
            positions.append(np.zeros(1))
            continue
        order = (
            np.argsort(np.asarray(choices, dtype=np.float64), kind="stable")
            if space.is_numeric(name)
            else None
        )
        rank = np.empty(len(choices)) if order is not None else np.arange(len(choices), dtype=np.float64)
        if order is not None:
            rank[order] = np.arange(len(choices))
        positions.append(rank / (len(choices) - 1))
    return positions


class BoTorchSearch(LibraryTactic):
    """qLogNEHVI as a plain BoTorch user writes it, on the ask/tell contract.

    Every parameter is one input dimension holding its choice's ordinal position in ``[0, 1]``
    (:func:`ordinal_positions`: numeric choices by rank, others by order); validated archs enter
    canonical, inactive parameters at their placeholder. The first batch is an initial design of
    ``n_initial`` archs (``initial_archs``, then scrambled Sobol points rounded to choices). Each
    later batch fits one ``SingleTaskGP`` per objective (BoTorch 0.18's defaults: ARD RBF kernel
    with dimension-scaled priors, ``Standardize``) in a ``ModelListGP``, builds
    ``qLogNoisyExpectedHypervolumeImprovement`` (pruned baseline, ``mc_samples`` Sobol MC
    samples) and picks ``batch_size`` candidates with ``optimize_acqf_discrete_local_search``
    over the choices of each dimension, sequential greedy, with ``X_avoid`` holding the
    validated archs and every earlier proposal (what Ax does for a fully discrete space of this
    size; ``optimize_acqf_mixed`` would enumerate every combination). A candidate that differs
    from a validated arch only in inactive parameters is the same network: it is answered from
    memory (:attr:`n_repeats`) and not validated again.

    Cost: fitting is cubic in the validations and the local search evaluates the acquisition on
    every one-choice neighbour of ``num_restarts`` starting points per candidate: minutes per
    batch of 10 on two cores for 45 parameters (about 5 CPU seconds per validation by 100).

    Args:
        space: The search space.
        objectives: E.g. ``{"top1": "max", "macs": "min"}`` (two or more).
        budget: Validations allowed.
        batch_size: Candidates per batch (``q``).
        n_initial: Size of the initial design.
        reference_point: The hypervolume reference point in natural units: per objective label
            its worst acceptable value, or a ``(low, high)`` pair of the hypervolume box (e.g.
            :attr:`HypervolumeIndicator.bounds <nastools.hypervolume.HypervolumeIndicator>`), of
            which the worst end is taken. None infers it from the current front each batch
            (``infer_reference_point``: the nadir less 10% of the range, Ax's default).
        num_restarts: Starting points of the local search (BoTorch tutorials' 10).
        raw_samples: Random points the starting points are chosen from (tutorials' 512).
        mc_samples: Monte Carlo samples of the acquisition (tutorials' 128).
        seed: Seed of the initial design, the MC samples and the local search.
        initial_archs: First in the initial design.

    Raises:
        ValueError: Fewer than two objectives, or a reference point that misses an objective or
            is not finite.
        ImportError: BoTorch is not installed (the message names the install line).

    Example:
        >>> from nastools.space import SearchSpace
        >>> space = SearchSpace({f"k_{i}": [3, 5, 7] for i in range(6)})
        >>> tactic = BoTorchSearch(space, {"acc": "max", "cost": "min"}, 20, n_initial=8)
        >>> len(tactic.ask())
        8
    """

    name = "botorch"

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, str] | Iterable[Objective],
        budget: int,
        *,
        batch_size: int = 10,
        n_initial: int = 20,
        reference_point: Mapping[str, float | Sequence[float]] | None = None,
        num_restarts: int = 10,
        raw_samples: int = 512,
        mc_samples: int = 128,
        seed: int = 0,
        initial_archs: Sequence[Arch] | None = None,
    ) -> None:
        super().__init__(
            space, objectives, budget, batch_size=batch_size, seed=seed, initial_archs=initial_archs
        )
        if len(self.objectives) < 2:
            raise ValueError(
                f"BoTorchSearch runs qLogNEHVI, which needs two or more objectives, got {list(self.labels)}"
            )
        self.n_initial = check_count("n_initial", n_initial)
        self.num_restarts = check_count("num_restarts", num_restarts)
        self.raw_samples = check_count("raw_samples", raw_samples)
        self.mc_samples = check_count("mc_samples", mc_samples)
        self.reference_point = None if reference_point is None else dict(reference_point)
        self._ref_point = None if reference_point is None else self._maximised_point(reference_point)
        self._torch = require_library("torch", type(self).__name__)
        require_library("botorch", type(self).__name__)
        require_library("gpytorch", type(self).__name__)
        self._positions = ordinal_positions(space)
        self._proposed: list[np.ndarray] = []  # every candidate proposed, as ordinal positions
        self._round = 0

    def _maximised_point(self, reference_point: Mapping[str, Any]) -> list[float]:
        if not isinstance(reference_point, Mapping):
            raise ValueError(f"reference_point must be a dict by objective label, got {reference_point!r}")
        unknown = sorted(set(reference_point) - set(self.labels))
        missing = [label for label in self.labels if label not in reference_point]
        if unknown or missing:
            raise ValueError(
                f"reference_point gives {sorted(reference_point)}; give one value per objective "
                f"{list(self.labels)}"
            )
        point = []
        for objective in self.objectives:
            value = reference_point[objective.label]
            if isinstance(value, Sequence) and not isinstance(value, str):
                if len(value) != 2:
                    raise ValueError(f"reference_point[{objective.label!r}]: give a value or (low, high)")
                value = value[0] if objective.direction == "max" else value[1]
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"reference_point[{objective.label!r}] must be finite, got {value}")
            point.append(-objective.sign * value)  # BoTorch maximises every outcome
        return point

    def _encode(self, archs: Sequence[Arch]) -> np.ndarray:
        X = self.space.encode(archs)
        return np.column_stack([self._positions[j][X[:, j]] for j in range(self.space.n_var)])

    def _decode(self, positions: np.ndarray) -> list[Arch]:
        X = np.column_stack(
            [
                np.abs(positions[:, [j]] - self._positions[j][None, :]).argmin(axis=1)
                for j in range(self.space.n_var)
            ]
        )
        return self.space.decode(X)

    def _ask_library(self, size: int) -> list[tuple[Any, Arch]]:
        if self._round == 0:
            candidates = self._initial_design()
        else:
            candidates = self._candidates(size)
        self._round += 1
        if not len(candidates):
            return []
        self._proposed.extend(candidates)
        return list(enumerate(self._decode(candidates)))

    def _tell_library(self, answers: list[tuple[Any, dict[str, float] | None]]) -> None:
        """Nothing to tell: each batch refits on every validated arch."""

    def _initial_design(self) -> np.ndarray:
        from botorch.utils.sampling import draw_sobol_samples

        torch = self._torch
        first = list(self.initial_archs or [])
        size = max(min(self.n_initial, self.budget) - len(first), 0)
        d = self.space.n_var
        bounds = torch.stack([torch.zeros(d, dtype=torch.double), torch.ones(d, dtype=torch.double)])
        unit = (
            draw_sobol_samples(bounds, n=size, q=1, seed=self.seed).squeeze(1).numpy()
            if size
            else np.empty((0, d))
        )
        X = np.minimum((unit * self.space.n_choices).astype(np.int64), self.space.n_choices - 1)
        sobol = np.column_stack([self._positions[j][X[:, j]] for j in range(d)]) if size else unit
        return np.vstack([self._encode(first), sobol]) if first else sobol

    def _candidates(self, q: int) -> np.ndarray:
        torch = self._torch
        from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import ModelListGP, SingleTaskGP
        from botorch.optim import optimize_acqf_discrete_local_search
        from botorch.sampling import SobolQMCNormalSampler
        from botorch.utils.multi_objective.hypervolume import infer_reference_point
        from botorch.utils.multi_objective.pareto import is_non_dominated
        from gpytorch.mlls import SumMarginalLogLikelihood

        double = {"dtype": torch.double}
        X = torch.tensor(self._encode(self._measured_archs()), **double)
        Y = torch.tensor(-self._F(self.values), **double)  # maximised outcomes
        avoid = torch.tensor(np.vstack([X.numpy(), *self._proposed]), **double)
        # a local search needs num_restarts starting points that are not avoided
        open_points = math.prod(int(k) for k in self.space.n_choices) - len(torch.unique(avoid, dim=0))
        if open_points <= 0:
            return np.empty((0, self.space.n_var))
        model = ModelListGP(*[SingleTaskGP(X, Y[:, i : i + 1]) for i in range(Y.shape[1])])
        fit_gpytorch_mll(SumMarginalLogLikelihood(model.likelihood, model))
        if self._ref_point is not None:
            ref_point = torch.tensor(self._ref_point, **double)
        else:
            ref_point = infer_reference_point(Y[is_non_dominated(Y)])
        acquisition = qLogNoisyExpectedHypervolumeImprovement(
            model=model,
            ref_point=ref_point,
            X_baseline=X,
            prune_baseline=True,
            sampler=SobolQMCNormalSampler(sample_shape=torch.Size([self.mc_samples]), seed=self.seed),
        )
        q = min(q, open_points)
        candidates, _ = optimize_acqf_discrete_local_search(
            acquisition,
            discrete_choices=[torch.tensor(p, **double) for p in self._positions],
            q=q,
            num_restarts=min(self.num_restarts, open_points - q + 1),
            raw_samples=self.raw_samples,
            X_avoid=avoid,
        )
        return candidates.detach().numpy()
