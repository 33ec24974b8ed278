"""One objective's predictor across the iterations of a search, with the model chosen as the search goes.

:class:`ObjectiveModel` is what ConcurrentNAS refits every iteration. With ``kind="auto"`` several
candidate predictors compete *prequentially*: each batch a search validates was proposed before it
was measured, so every candidate fitted at that time is scored on it for free (Kendall's tau of its
predictions against the measurements, pooled over the last few batches), and the best one gives the
predictions of the next iteration. That scores the models where the search needs them (the archs it
proposes, near the front) at the cost of one fit per candidate, instead of the k folds and refit of a
cross-validated choice (:class:`~nastools.predictors.BestOfRegressor`, five times as many fits, most
of the search overhead before). Candidates that are not chosen are refitted only every few
iterations, so a model that ranks worse costs little.

The candidates are a Gaussian process (``"gp"``: a Matern kernel on the one-hot features, its
hyperparameters re-optimised every few iterations) and gradient boosting (``"gbm"``). The predictive
standard deviation comes from the chosen candidate where it has one, else from the Gaussian process
(or, for a kind without one, a Bayesian linear model fitted beside it): how far an arch lies from what
the search has measured, which the expected-hypervolume batches trade off against the predicted mean.
"""

# X: encoded archs (choice indices), as the inner search passes them.
# ruff: noqa: N803, N806

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import kendalltau
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.linear_model import BayesianRidge

from nastools.predictors import make_predictor, predict_with_std, single_threaded
from nastools.space import Arch, SearchSpace

__all__ = ["AUTO_CANDIDATES", "ObjectiveModel"]

#: The kinds ``"auto"`` chooses among (each also with the proxy features, where there are some).
AUTO_CANDIDATES = ("gp", "gbm")
#: Batches whose predictions are pooled to score the candidates.
_WINDOW = 5
#: A candidate that is not chosen is refitted (a Gaussian process's kernel re-optimised) every this
#: many iterations.
_REFIT_EVERY = 4
#: A Gaussian process re-optimises its kernel once the archs grew by this factor since it last did.
_RETUNE_GROWTH = 1.25


def _has_std(model: Any) -> bool:
    return isinstance(model[-1], (BayesianRidge, GaussianProcessRegressor))


class ObjectiveModel:
    """Predicts one objective (mean and standard deviation) for a search that refits it every iteration.

    Args:
        space: The search space.
        kind: A predictor kind (:data:`~nastools.predictors.PREDICTOR_KINDS`); ``"auto"``: the
            candidates of :data:`AUTO_CANDIDATES` compete prequentially (module docstring).
        seed: Seed of the stochastic regressors.
        proxy_features: ``fn(archs) -> (n, k)`` of cheap exact quantities (MACs, parameters) as
            (standardised) extra features: ``"auto"`` also tries each candidate with them and keeps
            them where they rank better; another kind always uses them.

    Attributes:
        chosen: The candidate whose predictions :meth:`predict` returns.
        scores: The candidates' pooled Kendall tau on the batches validated since they were fitted.

    Example:
        >>> from nastools.space import SearchSpace
        >>> space = SearchSpace({f"e_{i}": [3, 4, 6] for i in range(6)})
        >>> archs = space.sample(40, rng=0)
        >>> model = ObjectiveModel(space, "auto", seed=0)
        >>> model.fit(archs, [sum(a.values()) for a in archs])
        >>> mean, std = model.predict(space.encode(archs[:3]))
        >>> model.chosen, mean.shape, bool((std > 0).all())
        ('gp', (3,), True)
    """

    def __init__(
        self,
        space: SearchSpace,
        kind: str,
        *,
        seed: int = 0,
        proxy_features: Callable[[Sequence[Arch]], Any] | None = None,
    ) -> None:
        self.space = space
        self.seed = seed
        self.proxy_features = proxy_features
        if kind == "auto":
            self.candidates = {name: (name, None) for name in AUTO_CANDIDATES}
            if proxy_features is not None:
                self.candidates |= {f"{name}+proxies": (name, proxy_features) for name in AUTO_CANDIDATES}
        else:  # one kind: with the proxies where there are some, as a predictor_features user asks
            self.candidates = {kind: (kind, proxy_features)}
        self.chosen = next(iter(self.candidates))
        self.scores: dict[str, float] = {}
        self._fitted: dict[str, Any] = {}
        self._uncertainty: Any = None
        self._pending: dict[str, np.ndarray] = {}
        self._batches: list[tuple[dict[str, np.ndarray], np.ndarray]] = []
        self._iteration = 0
        self._tuned_on: dict[str, int] = {}

    def observe(self, archs: Sequence[Arch], measured: Sequence[float]) -> None:
        """Score every fitted candidate on newly validated ``archs`` before the next :meth:`fit`.

        Call it with the batch the search proposed after the last fit, once it is measured.
        """
        if not self._fitted or not len(archs):
            return
        X = self.space.encode(list(archs))
        with single_threaded():
            predicted = {name: predict_with_std(model, X)[0] for name, model in self._fitted.items()}
        self._batches = [*self._batches, (predicted, np.asarray(measured, dtype=np.float64))][-_WINDOW:]
        self.scores = {name: self._score(name) for name in self._fitted}
        if self.scores:
            best = max(self.scores.values())
            # ties (and a candidate not scored yet) keep the current choice
            if self.scores.get(self.chosen, -np.inf) < best:
                self.chosen = max(self.scores, key=lambda name: self.scores[name])

    def _score(self, name: str) -> float:
        pairs = [(p[name], y) for p, y in self._batches if name in p]
        if not pairs:
            return -np.inf
        predicted = np.concatenate([p for p, _ in pairs])
        measured = np.concatenate([y for _, y in pairs])
        if len(measured) < 3 or np.ptp(measured) == 0:
            return -np.inf
        tau = kendalltau(predicted, measured).statistic
        return float(tau) if np.isfinite(tau) else -np.inf

    def fit(self, archs: Sequence[Arch], y: Sequence[float]) -> None:
        """Refit the chosen candidate, the candidates that are due, and the uncertainty model.

        A Gaussian process re-optimises its kernel's hyperparameters when it is due (every
        :data:`_REFIT_EVERY` iterations) or when the archs grew by a quarter since it last did (every
        iteration early on, when a few archs change the kernel most); otherwise it keeps them and
        refits on all the data, one Cholesky factorisation instead of a few dozen.
        """
        X = self.space.encode(list(archs))
        y = np.asarray(y, dtype=np.float64)
        due_anyway = self._iteration % _REFIT_EVERY == 0
        due = {
            name for name in self.candidates if name == self.chosen or name not in self._fitted or due_anyway
        }
        with single_threaded(), warnings.catch_warnings():
            # a Gaussian process on a (nearly) noiseless objective drives its noise level to the bound
            # and L-BFGS stops early: the best hyperparameters found are kept, which is what we want
            warnings.simplefilter("ignore", ConvergenceWarning)
            for name in due:
                kind, extra = self.candidates[name]
                model = make_predictor(self.space, kind, seed=self.seed, extra_features=extra)
                previous = self._fitted.get(name)
                tuned_on = self._tuned_on.get(name, 0)
                if (
                    kind == "gp"
                    and previous is not None
                    and not due_anyway
                    and len(y) < _RETUNE_GROWTH * tuned_on
                ):
                    model.set_params(regressor__kernel=previous[-1].kernel_, regressor__optimizer=None)
                else:
                    self._tuned_on[name] = len(y)
                self._fitted[name] = model.fit(X, y)
            with_std = [name for name in (self.chosen, *self._fitted) if _has_std(self._fitted[name])]
            if with_std:
                self._uncertainty = self._fitted[with_std[0]]
            else:
                self._uncertainty = make_predictor(self.space, "bayes", seed=self.seed).fit(X, y)
        self._iteration += 1

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean (the chosen candidate's) and standard deviation (the uncertainty model's) of ``X``."""
        with single_threaded():
            mean, std = predict_with_std(self._fitted[self.chosen], X)
            if std is None:
                std = predict_with_std(self._uncertainty, X)[1]
        return mean, std
