"""Accuracy and latency predictors: scikit-learn pipelines on the search space's one-hot features.

A predictor is an ordinary scikit-learn estimator: ``make_predictor(space, kind)`` returns a
:class:`~sklearn.pipeline.Pipeline` of :class:`ArchFeatures` (archs to one-hot features) and a
regressor, so it works with ``clone``, ``cross_val_score`` and grid search as any estimator does.
:func:`nastools.analysis.predictor_learning_curve` reproduces the DyNAS-T predictor analysis (paper
section 5.4): MAPE and Kendall's tau on a held-out set against the number of training archs.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.sparse import issparse
from scipy.stats import kendalltau
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin, clone
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from sklearn.linear_model import BayesianRidge, RidgeCV
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import SVR
from sklearn.utils import Tags
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import ThreadpoolController

from nastools.space import SearchSpace

__all__ = [
    "PREDICTOR_KINDS",
    "ArchFeatures",
    "BestOfRegressor",
    "BoostingRegressor",
    "check_target",
    "make_predictor",
    "predict_with_std",
    "single_threaded",
]

PREDICTOR_KINDS: tuple[str, ...] = ("ridge", "bayes", "gp", "svr", "gbm", "mlp", "auto")
"""Regressor kinds :func:`make_predictor` accepts."""

RIDGE_ALPHAS = np.logspace(-3, 3, 13)
"""The alpha grid of the ``"ridge"`` predictor (chosen by RidgeCV's closed-form leave-one-out)."""


def check_target(y: Any, n_samples: int | None = None) -> np.ndarray:
    """Return ``y`` as a 1-D float array, or raise a one-line ``ValueError`` saying what is wrong."""
    try:
        y_arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"y must be numeric, could not convert it to floats ({error})") from None
    if y_arr.ndim == 2 and y_arr.shape[1] == 1:
        y_arr = y_arr[:, 0]
    if y_arr.ndim != 1:
        raise ValueError(f"y must be 1-D (one value per arch), got shape {y_arr.shape}")
    if y_arr.size == 0:
        raise ValueError("y is empty: a predictor needs at least one measured arch to fit on")
    if n_samples is not None and y_arr.size != n_samples:
        raise ValueError(f"X has {n_samples} archs but y has {y_arr.size} values; they must match")
    bad = ~np.isfinite(y_arr)
    if bad.any():
        raise ValueError(
            f"y has {int(bad.sum())} non-finite value(s) (NaN or inf), first at index {int(np.argmax(bad))}"
        )
    return y_arr


class ArchFeatures(TransformerMixin, BaseEstimator):
    """Map archs to the search space's features (:meth:`SearchSpace.features`), plus optional extras.

    ``X`` may be any of:

    * a sequence (list, tuple, 1-D object array) of arch dicts, e.g. ``space.sample(n, rng)``;
    * a sequence of arch keys as written by :meth:`SearchSpace.key` (the store's arch column);
    * a 2-D numeric array of shape ``(n, space.n_var)`` holding *encoded* archs ``x``, i.e.
      integer choice indices as :meth:`SearchSpace.encode` returns them (not the parameter
      values); it is decoded first. Float arrays are accepted when every entry is a whole number.
      Nested lists of numbers and pandas DataFrames are read the same way, as encoded archs.

    The transformer is stateless: :meth:`fit` learns nothing, so :meth:`transform` may be called
    without fitting. When a target ``y`` is passed to :meth:`fit` (as :class:`~sklearn.pipeline.Pipeline`
    does), it is checked first: an empty ``y``, a length that differs from ``X``'s, or NaN/inf
    values raise a one-line ``ValueError``. This is where the predictors of :func:`make_predictor`
    validate their targets.

    Args:
        space: The search space whose encoding to use.
        extra: ``fn(archs) -> array (n, k)`` of further columns, e.g. proxies of each arch (its
            parameter count, a zero-cost score); must be cheap, it runs on every prediction.

    Example:
        >>> from nastools.space import SearchSpace
        >>> space = SearchSpace({"d": [1, 2, 3], "k": [3, 5, 7]})
        >>> archs = space.sample(3, rng=0)
        >>> features = ArchFeatures(space).fit_transform(archs)
        >>> features.shape  # 3 + 3 one-hot slots and 2 numeric columns
        (3, 8)
        >>> ArchFeatures(space, extra=lambda archs: [[a["d"] * a["k"]] for a in archs]).transform(archs).shape
        (3, 9)
        >>> bool((ArchFeatures(space).transform(space.encode(archs)) == features).all())
        True
    """

    def __init__(self, space: SearchSpace, extra: Callable[[list], Any] | None = None) -> None:
        self.space = space
        self.extra = extra

    def _archs(self, data: Any) -> list[dict[str, int]]:
        """Normalise any accepted ``data`` to a list of arch dicts (raises ``ValueError`` otherwise)."""
        if not isinstance(self.space, SearchSpace):
            raise ValueError(f"space must be a SearchSpace, got {type(self.space).__name__}")
        if issparse(data):
            raise TypeError("sparse input is not supported: pass archs or a dense array of encoded archs")
        if isinstance(data, Mapping | str):
            raise ValueError("X must be a sequence of archs; wrap a single arch in a list")
        if hasattr(data, "__array__") and not isinstance(data, list | tuple):
            arr = np.asarray(data)
            if not (arr.dtype == object and arr.ndim == 1):
                return self._decode(arr)
            data = list(arr)
        elif _is_numeric_table(data):
            return self._decode(np.asarray(data))
        archs = []
        for i, row in enumerate(data):
            if isinstance(row, str):
                archs.append(self.space.from_key(row))
            elif isinstance(row, Mapping):
                archs.append(row)
            else:
                raise ValueError(
                    f"X[{i}] is a {type(row).__name__}; expected an arch dict, an arch key string, "
                    f"or a 2-D integer array of encoded archs"
                )
        return archs

    def _decode(self, x: np.ndarray) -> list[dict[str, int]]:
        if x.dtype.kind == "c":
            raise ValueError("Complex data not supported: an encoded X holds integer choice indices")
        if x.dtype == object:
            try:
                x = x.astype(np.float64)
            except (TypeError, ValueError):
                raise ValueError("an encoded X must hold integer choice indices; got non-numbers") from None
        if x.dtype.kind == "f":
            if not np.all(np.isfinite(x)):
                raise ValueError("an encoded X must hold integer choice indices; got NaN or inf")
            if np.any(x != np.round(x)):
                raise ValueError("an encoded X must hold integer choice indices; got fractional values")
            x = x.astype(np.int64)
        elif x.dtype.kind not in "iu":
            raise ValueError(f"an encoded X must hold integer choice indices; got dtype {x.dtype}")
        if x.ndim != 2:
            raise ValueError(f"an encoded X must be 2-D (n, {self.space.n_var}), got shape {x.shape}")
        if x.shape[0] == 0:
            return []
        return self.space.decode(x)

    def fit(self, X: Any, y: Any = None) -> ArchFeatures:  # noqa: N803 - scikit-learn's name
        """Check ``X`` (and ``y`` when given); learns nothing.

        Args:
            X: Archs in any form the class accepts.
            y: Optional targets, checked for emptiness, length and finiteness.

        Returns:
            self
        """
        archs = self._archs(X)
        if y is not None:
            check_target(y, len(archs))
        elif not archs:
            raise ValueError("X is empty: need at least one arch to fit on")
        for arch in archs:
            self.space.validate(arch)
        return self

    def transform(self, X: Any) -> np.ndarray:  # noqa: N803 - scikit-learn's name
        """Return the features, shape ``(n, len(space.feature_names()) + extra columns)``."""
        if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind in "iu" and len(X):
            features = self.space.features_x(X)  # encoded archs, as searches pass them: vectorised
            archs = self.space.decode(X) if self.extra is not None else []
        else:
            archs = self._archs(X)
            if not archs:
                return np.zeros((0, len(self.space.feature_names())), dtype=np.float64)
            features = self.space.features(archs)
        if self.extra is None:
            return features
        extra = np.asarray(self.extra(archs), dtype=np.float64)
        extra = extra.reshape(len(archs), -1)
        if not np.isfinite(extra).all():
            raise ValueError("ArchFeatures(extra=...) gave non-finite values")
        return np.hstack([features, extra])

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the space's columns, e.g. ``"ks_3=5"`` (the extra columns are not named)."""
        return np.asarray(self.space.feature_names(), dtype=object)

    def __sklearn_is_fitted__(self) -> bool:
        """Stateless: always fitted."""
        return True

    def __sklearn_tags__(self) -> Tags:
        """Stateless, and takes archs (dicts or key strings) rather than a numeric matrix."""
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.dict = True
        tags.input_tags.string = True
        return tags


def _is_numeric_table(data: Any) -> bool:
    """Whether ``data`` is nested sequences of numbers (encoded archs) rather than a sequence of archs."""
    return (
        isinstance(data, Sequence)
        and len(data) > 0
        and isinstance(data[0], Sequence | np.ndarray)
        and not isinstance(data[0], str)
    )


class BestOfRegressor(RegressorMixin, BaseEstimator):
    """The candidate regressor whose cross-validated predictions rank ``y`` best, refitted on all of it.

    Each fit scores every candidate by Kendall's tau between ``y`` and its out-of-fold predictions
    (``n_splits``-fold, shuffled with ``seed``), keeps the best (ties: the first) and refits it on
    everything. With fewer than 2 samples per fold possible, the first candidate is used.

    Args:
        candidates: Unfitted regressors to choose from.
        n_splits: Folds of the cross-validation (at most the number of samples).
        seed: Shuffle of the folds.

    Attributes:
        scores_: Cross-validated tau per candidate, in order.
        best_index_: Index of the chosen candidate.
        estimator_: The chosen candidate, fitted on all the data.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(60, 3))
        >>> model = BestOfRegressor([RidgeCV(), HistGradientBoostingRegressor()]).fit(X, X @ [1, 2, 3])
        >>> model.best_index_, model.predict(X[:2]).shape
        (0, (2,))
    """

    def __init__(self, candidates: Sequence[BaseEstimator], n_splits: int = 5, seed: int = 0) -> None:
        self.candidates = candidates
        self.n_splits = n_splits
        self.seed = seed

    def fit(self, X: Any, y: Any) -> BestOfRegressor:  # noqa: N803 - scikit-learn's name
        """Score the candidates, then refit the best on ``(X, y)``; returns self."""
        X, y = validate_data(self, X, y, y_numeric=True)  # noqa: N806 - scikit-learn's name
        n_splits = min(self.n_splits, len(y))
        scores = []
        for candidate in self.candidates:
            if n_splits < 2:
                scores.append(0.0)
                continue
            folds = KFold(n_splits, shuffle=True, random_state=self.seed)
            predicted = cross_val_predict(clone(candidate), X, y, cv=folds)
            tau = kendalltau(predicted, y).statistic
            scores.append(float(tau) if np.isfinite(tau) else -1.0)
        self.scores_ = scores
        self.best_index_ = int(np.argmax(scores))
        self.estimator_ = clone(self.candidates[self.best_index_]).fit(X, y)
        return self

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803 - scikit-learn's name
        """Predictions of the chosen candidate."""
        check_is_fitted(self)
        return self.estimator_.predict(validate_data(self, X, reset=False))


class BoostingRegressor(RegressorMixin, BaseEstimator):
    """Histogram gradient boosting whose leaf size grows with the number of training archs.

    scikit-learn's default of 20 samples per leaf leaves no split at all on the 20-50 archs a
    search has measured in its first rounds, so the model predicts a constant. Here each fit uses
    ``min_samples_leaf = clip(round(leaf_fraction * n), 2, max_samples_leaf)`` for ``n`` training
    archs -- a closed-form rule instead of a search. On 4,353 measured top-1 values of
    ``digits-mbv3`` (archs the benchmark's searches visited; 1,000 held out, 6 draws), Kendall's
    tau with 25 / 50 / 100 / 200 / 400 training archs was 0.65 / 0.70 / 0.77 / 0.80 / 0.85 with
    this rule, against NaN (constant) / 0.16 / 0.35 / 0.75 / 0.83 with the default and
    0.32 / 0.41 / 0.49 / 0.60 / 0.67 for ridge.

    Args:
        leaf_fraction: Samples per leaf as a share of the training set.
        max_samples_leaf: Upper end of the leaf size (scikit-learn's default 20 is reached only
            on far more data than a search measures).
        random_state: Seed of the boosting's random choices.

    Attributes:
        estimator_: The fitted :class:`~sklearn.ensemble.HistGradientBoostingRegressor`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = rng.integers(0, 2, size=(30, 4)).astype(float)
        >>> model = BoostingRegressor(random_state=0).fit(X, X @ [1.0, 2.0, 0.0, 0.0])
        >>> model.estimator_.min_samples_leaf, len(np.unique(model.predict(X))) > 1
        (2, True)
    """

    def __init__(
        self, leaf_fraction: float = 0.05, max_samples_leaf: int = 10, random_state: Any = None
    ) -> None:
        self.leaf_fraction = leaf_fraction
        self.max_samples_leaf = max_samples_leaf
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> BoostingRegressor:  # noqa: N803 - scikit-learn's name
        """Fit the boosting with the leaf size for ``len(y)`` archs; returns self."""
        X, y = validate_data(self, X, y, y_numeric=True)  # noqa: N806 - scikit-learn's name
        n = len(y)
        leaf = int(np.clip(round(self.leaf_fraction * n), 2, max(2, self.max_samples_leaf)))
        self.estimator_ = HistGradientBoostingRegressor(min_samples_leaf=leaf, random_state=self.random_state)
        self.estimator_.fit(X, y)
        return self

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803 - scikit-learn's name
        """Predictions of the fitted boosting."""
        check_is_fitted(self)
        return self.estimator_.predict(validate_data(self, X, reset=False))


def make_predictor(
    space: SearchSpace,
    kind: str = "ridge",
    seed: int = 0,
    extra_features: Callable[[list], Any] | None = None,
) -> Pipeline:
    """Build an unfitted predictor: ``Pipeline([("features", ArchFeatures(space)), ("regressor", ...)])``.

    Kinds (see :data:`PREDICTOR_KINDS`), all cheap to fit on a few hundred archs:

    * ``"ridge"``: :class:`~sklearn.linear_model.RidgeCV` over ``alphas=np.logspace(-3, 3, 13)``,
      alpha chosen by closed-form leave-one-out (the DyNAS-T default for accuracy and latency).
    * ``"bayes"``: :class:`~sklearn.linear_model.BayesianRidge`, the same linear model with its
      regularisation set by evidence maximisation and a predictive standard deviation
      (``predict(X, return_std=True)``, :func:`predict_with_std`): how sure it is of each arch, which
      ConcurrentNAS's expected-hypervolume batches use. It ranks as ridge does (on OFA's surrogate
      top-1, Kendall tau 0.78 / 0.82 / 0.83 at 100 / 200 / 400 random training archs, as ridge).
    * ``"gp"``: :class:`~sklearn.gaussian_process.GaussianProcessRegressor`, a Matern-5/2 kernel
      with one length scale on the features scaled to [0, 1], plus white noise, hyperparameters by
      maximum likelihood, standardised target; with a predictive standard deviation. Its fit grows
      cubically with the archs (0.06 s at 200, 0.3 s at 400 here); it ranks random OFA archs as
      ridge does but is sharper near what was measured, which is where a search asks (ConcurrentNAS's
      default, see :class:`~nastools.search._models.ObjectiveModel`).
    * ``"svr"``: RBF :class:`~sklearn.svm.SVR` with fixed ``C=10``, ``epsilon=0.05``,
      ``gamma="scale"`` on a standardised target (a
      :class:`~sklearn.compose.TransformedTargetRegressor` with a
      :class:`~sklearn.preprocessing.StandardScaler`), so the fixed values suit any metric's units.
      No grid search.
    * ``"gbm"``: :class:`BoostingRegressor`, histogram gradient boosting (100 iterations, learning
      rate 0.1) with a leaf size that follows the training-set size, ``random_state=seed``.
    * ``"mlp"``: :class:`~sklearn.neural_network.MLPRegressor`, one hidden layer of 64, L2
      ``alpha=1e-3``, ``max_iter=1000``, ``random_state=seed``, on a standardised target.
    * ``"auto"``: ``"ridge"`` or ``"gbm"``, whichever ranks better in 5-fold cross-validation at
      each fit (:class:`BestOfRegressor`). Which ranks better depends on the problem: boosting on
      ``digits-mbv3``'s measured top-1 (see :class:`BoostingRegressor`), ridge on OFA's smooth
      surrogate once it has 200 or more archs (tau 0.92 against 0.88).

    The features step checks ``y`` when the pipeline is fitted (see :class:`ArchFeatures`). Extra
    feature columns (``extra_features``: proxies such as MACs, in their own units) are standardised
    on the training archs before the regressor sees them, so that a linear model's regularisation
    treats them like the one-hot columns instead of ignoring them (MACs in the hundreds of millions)
    or letting them dominate.

    Args:
        space: The search space of the archs to predict for.
        kind: One of :data:`PREDICTOR_KINDS`.
        seed: Random state of the stochastic regressors (``"gbm"``, ``"mlp"``).
        extra_features: ``fn(archs) -> array (n, k)`` appended to the space's features, e.g.
            cheap proxies (``lambda archs: [[supernet.params(a)] for a in archs]``).

    Returns:
        An unfitted pipeline; ``fit(archs, y)`` returns it, ``predict(archs)`` gives one value per arch.

    Raises:
        ValueError: ``kind`` is not one of :data:`PREDICTOR_KINDS`.

    Example:
        >>> from nastools.space import SearchSpace
        >>> space = SearchSpace({f"e_{i}": [3, 4, 6] for i in range(8)})
        >>> archs = space.sample(50, rng=0)
        >>> y = [sum(a[f"e_{i}"] for i in range(8)) for a in archs]
        >>> model = make_predictor(space, "ridge").fit(archs, y)
        >>> model.predict(archs[:2]).shape
        (2,)
    """
    if kind == "ridge":
        regressor: BaseEstimator = RidgeCV(alphas=RIDGE_ALPHAS)
    elif kind == "bayes":
        regressor = BayesianRidge()
    elif kind == "gp":
        kernel = ConstantKernel(1.0) * Matern(length_scale=2.0, nu=2.5) + WhiteKernel(
            1e-2, noise_level_bounds=(1e-9, 1e1)
        )
        regressor = GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed)
    elif kind == "svr":
        regressor = TransformedTargetRegressor(
            regressor=SVR(kernel="rbf", C=10.0, epsilon=0.05, gamma="scale"), transformer=StandardScaler()
        )
    elif kind == "gbm":
        regressor = BoostingRegressor(random_state=seed)
    elif kind == "mlp":
        regressor = TransformedTargetRegressor(
            regressor=MLPRegressor(hidden_layer_sizes=(64,), alpha=1e-3, max_iter=1000, random_state=seed),
            transformer=StandardScaler(),
        )
    elif kind == "auto":
        candidates = [RidgeCV(alphas=RIDGE_ALPHAS), BoostingRegressor(random_state=seed)]
        regressor = BestOfRegressor(candidates, seed=seed)
    else:
        raise ValueError(f"unknown predictor kind {kind!r}; choose one of {list(PREDICTOR_KINDS)}")
    steps: list[tuple[str, Any]] = [("features", ArchFeatures(space, extra=extra_features))]
    if extra_features is not None:
        n_space = len(space.feature_names())
        scale_extra = [
            ("space", "passthrough", slice(0, n_space)),
            ("extra", StandardScaler(), slice(n_space, None)),
        ]
        steps.append(("scale", ColumnTransformer(scale_extra)))
    if kind == "gp":  # one length scale for every column: numeric columns in [0, 1] like the one-hot ones
        steps.append(("unit", MinMaxScaler()))
    return Pipeline([*steps, ("regressor", regressor)])


def predict_with_std(model: Any, X: Any) -> tuple[np.ndarray, np.ndarray | None]:  # noqa: N803
    """A fitted predictor's mean prediction and, where it has one, its predictive standard deviation.

    Returns:
        ``(mean, std)``; ``std`` is None for a regressor without ``predict(X, return_std=True)``
        (``"bayes"`` and ``"gp"`` have it).

    Example:
        >>> from nastools.space import SearchSpace
        >>> space = SearchSpace({f"e_{i}": [3, 4, 6] for i in range(4)})
        >>> archs = space.sample(30, rng=0)
        >>> model = make_predictor(space, "bayes").fit(archs, [a["e_0"] for a in archs])
        >>> mean, std = predict_with_std(model, archs[:3])
        >>> mean.shape, bool((std > 0).all())
        ((3,), True)
    """
    final = model[-1] if isinstance(model, Pipeline) else model
    if isinstance(final, (BayesianRidge, GaussianProcessRegressor)):
        mean, std = model.predict(X, return_std=True)
        return np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    return np.asarray(model.predict(X), dtype=np.float64), None


def single_threaded() -> contextlib.AbstractContextManager:
    """Context in which OpenMP and BLAS use one thread: how the tactics fit and predict.

    The predictors here train on hundreds to a few thousand archs, where one thread is fast; on a
    machine whose cores are busy, OpenMP's spinning threads in gradient boosting can instead be
    slower by orders of magnitude (measured here, 2 shared cores: 114 s against 1.8 s to fit on
    1,000 archs and predict 10,000). The thread pools are found once per process: looking them up
    anew reads the process's memory map, which cost more than the predictions of an inner search.

    Example:
        >>> with single_threaded():
        ...     pass
    """
    return _thread_pools().limit(limits=1)


@functools.cache
def _thread_pools() -> ThreadpoolController:
    return ThreadpoolController()
