import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_info

from nastools.analysis import _predictors as predictor_analysis
from nastools.analysis import predictor_learning_curve, summarize_learning_curve
from nastools.predictors import (
    PREDICTOR_KINDS,
    ArchFeatures,
    BestOfRegressor,
    BoostingRegressor,
    check_target,
    make_predictor,
    single_threaded,
)
from nastools.space import Condition, SearchSpace
from nastools.supernets.mobilenetv3 import mobilenetv3_space

N_BLOCKS = 20


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Gradient boosting spins OpenMP threads: on busy shared cores one thread is many times faster.

    The tactics fit their predictors the same way (``single_threaded``).
    """
    with single_threaded():
        yield


@pytest.fixture(scope="module")
def space():
    return mobilenetv3_space()


def toy_objective(space, archs, rng, noise=1.0):
    """Closed-form toy metric: sum over active blocks of (kernel + expand), plus Gaussian noise."""
    clean = np.array(
        [
            sum(a[f"ks_{i}"] + a[f"e_{i}"] for i in range(N_BLOCKS) if space.is_active(a, f"ks_{i}"))
            for a in archs
        ],
        dtype=float,
    )
    return clean + rng.normal(0.0, noise, size=len(archs))


@pytest.fixture(scope="module")
def toy(space):
    rng = np.random.default_rng(123)
    archs = space.sample(600, rng)
    return archs, toy_objective(space, archs, rng)


def test_arch_features_match_space_features(space, toy):
    archs, _ = toy
    features = ArchFeatures(space)
    expected = space.features(archs[:20])
    np.testing.assert_array_equal(features.transform(archs[:20]), expected)  # stateless: no fit needed
    np.testing.assert_array_equal(features.fit_transform(archs[:20]), expected)
    np.testing.assert_array_equal(features.transform(space.encode(archs[:20])), expected)
    np.testing.assert_array_equal(features.transform(space.encode(archs[:20]).astype(float)), expected)
    np.testing.assert_array_equal(features.transform(space.encode(archs[:20]).tolist()), expected)
    np.testing.assert_array_equal(features.transform(np.array(archs[:20], dtype=object)), expected)
    np.testing.assert_array_equal(features.transform([space.key(a) for a in archs[:20]]), expected)
    assert list(features.get_feature_names_out()) == space.feature_names()
    assert features.transform(archs[:0]).shape == (0, len(space.feature_names()))


def test_arch_features_rejects_bad_input(space, toy):
    archs, _ = toy
    features = ArchFeatures(space)
    with pytest.raises(ValueError, match="wrap a single arch"):
        features.transform(archs[0])
    with pytest.raises(ValueError, match="integer choice indices"):
        features.transform(space.encode(archs[:3]) + 0.5)
    with pytest.raises(ValueError, match="out of range"):
        features.transform(space.encode(archs[:3]) + 5)
    with pytest.raises(ValueError, match=r"shape \(n, 45\): one column per parameter"):
        features.transform(space.encode(archs[:3])[:, :10])
    with pytest.raises(ValueError, match="ks_0"):
        features.transform([archs[0] | {"ks_0": 4}])


# --- the scikit-learn estimator contract -------------------------------------------------------------

# ArchFeatures reads the archs of one space; these checks feed arbitrary float matrices (random widths,
# fractional or negative values), which are not encoded archs of any space and are rejected by design.
# Every other check of scikit-learn's suite must pass, and every check must pass for the regressors.
_NOT_ARCHS = "feeds a float matrix that is not encoded archs of the space (rejected by design)"
ARCH_FEATURES_NOT_APPLICABLE = {
    name: _NOT_ARCHS
    for name in (
        "check_fit_score_takes_y",
        "check_estimators_overwrite_params",
        "check_dont_overwrite_parameters",
        "check_estimators_fit_returns_self",
        "check_readonly_memmap_input",
        "check_n_features_in_after_fitting",
        "check_positive_only_tag_during_fit",
        "check_estimators_dtypes",
        "check_dtype_object",
        "check_estimators_empty_data_messages",
        "check_pipeline_consistency",
        "check_estimators_nan_inf",
        "check_estimators_pickle",
        "check_f_contiguous_array_estimator",
        "check_transformer_data_not_an_array",
        "check_transformer_general",
        "check_transformer_preserve_dtypes",
        "check_transformers_unfitted_stateless",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_fit2d_1sample",
        "check_fit2d_1feature",
        "check_dict_unchanged",
        "check_fit_idempotent",
        "check_fit_check_is_fitted",
        "check_n_features_in",
        "check_fit2d_predict1d",
    )
}


@parametrize_with_checks(
    [
        BoostingRegressor(random_state=0),
        BestOfRegressor([RidgeCV(), BoostingRegressor(random_state=0)]),
    ]
)
def test_regressors_pass_every_sklearn_check(estimator, check):
    check(estimator)


def test_arch_features_fails_only_the_inapplicable_checks(space):
    """Every check not listed above passes, and every listed one does fail (the list is exact)."""
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(ArchFeatures(space), on_fail=None, on_skip=None)
    failed = {r["check_name"] for r in results if r["status"] == "failed"}
    assert failed == set(ARCH_FEATURES_NOT_APPLICABLE)
    assert {"check_estimator_cloneable", "check_get_params_invariance", "check_set_params"} <= {
        r["check_name"] for r in results if r["status"] == "passed"
    }


# --- make_predictor -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", PREDICTOR_KINDS)
def test_clone_and_cross_val_score(space, toy, kind):
    archs, y = toy
    model = make_predictor(space, kind, seed=0)
    assert isinstance(model, Pipeline)
    copy = clone(model)
    assert copy is not model
    assert copy.get_params()["features__space"] == space
    scores = cross_val_score(model, archs[:150], y[:150], cv=3)
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    assert scores.mean() > 0.3  # R^2 well above a constant prediction on the toy objective


@pytest.mark.parametrize("kind", PREDICTOR_KINDS)
def test_fitted_state_and_not_fitted(space, toy, kind):
    archs, y = toy
    model = make_predictor(space, kind, seed=0)
    with pytest.raises(NotFittedError):
        model.predict(archs[:5])
    params = model.get_params(deep=True)
    regressor = model[-1]
    before = set(vars(regressor))
    assert model.fit(archs[:100], y[:100]) is model
    added = {name for name in set(vars(regressor)) - before if not name.startswith("_")}  # public state
    assert added and all(name.endswith("_") for name in added), added
    assert set(vars(model[0])) == {"space", "extra"}  # the features step is stateless
    after = model.get_params(deep=True)
    assert after.keys() == params.keys()
    for name, value in params.items():
        if not hasattr(value, "get_params"):  # estimator-valued params are the same, now fitted, objects
            assert np.all(after[name] == value), name
    assert model.predict(archs[100:110]).shape == (10,)


def test_best_of_regressor_picks_what_ranks_best():
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import RidgeCV

    rng = np.random.default_rng(0)
    candidates = [RidgeCV(), HistGradientBoostingRegressor(random_state=0)]
    x = rng.normal(size=(40, 3))
    linear = BestOfRegressor(candidates).fit(x, x @ [1.0, 2.0, 3.0])
    assert linear.best_index_ == 0 and linear.scores_[0] > linear.scores_[1]
    x = rng.uniform(size=(400, 2))
    xor = ((x[:, 0] > 0.5) ^ (x[:, 1] > 0.5)).astype(float) + 0.01 * rng.normal(size=400)
    nonlinear = BestOfRegressor(candidates).fit(x, xor)
    assert nonlinear.best_index_ == 1 and nonlinear.scores_[1] > 0.3 > abs(nonlinear.scores_[0])
    assert isinstance(nonlinear.estimator_, HistGradientBoostingRegressor)
    assert BestOfRegressor(candidates).fit(x[:1], xor[:1]).best_index_ == 0  # too few to cross-validate
    with pytest.raises(NotFittedError):
        BestOfRegressor(candidates).predict(x)


@pytest.mark.parametrize(("n", "leaf"), [(10, 2), (30, 2), (100, 5), (150, 8), (1000, 10)])
def test_boosting_leaf_size_follows_the_training_set(n, leaf):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    model = BoostingRegressor(random_state=0).fit(x, x @ [1.0, 2.0, 3.0])
    assert model.estimator_.min_samples_leaf == leaf


def test_boosting_ranks_archs_from_few_examples(space, toy):
    """30 archs: scikit-learn's default leaf size (20) could not split and would predict a constant."""
    archs, y = toy
    model = make_predictor(space, "gbm", seed=0).fit(archs[:30], y[:30])
    assert isinstance(model[-1], BoostingRegressor)
    predicted = model.predict(archs[300:])
    assert np.ptp(predicted) > 0
    assert kendalltau(y[300:], predicted).statistic > 0.2


def test_ridge_ranks_held_out_archs(space, toy):
    archs, y = toy
    model = make_predictor(space, "ridge").fit(archs[:300], y[:300])
    tau = kendalltau(y[300:], model.predict(archs[300:])).statistic
    assert tau > 0.9


@pytest.mark.parametrize("kind", ["ridge", "svr"])
def test_encoded_x_gives_same_predictions_as_archs(space, toy, kind):
    archs, y = toy
    from_archs = make_predictor(space, kind).fit(archs[:200], y[:200])
    from_x = make_predictor(space, kind).fit(space.encode(archs[:200]), y[:200])
    test_archs = archs[200:260]
    expected = from_archs.predict(test_archs)
    np.testing.assert_allclose(from_archs.predict(space.encode(test_archs)), expected)
    np.testing.assert_allclose(from_x.predict(test_archs), expected)


def test_unknown_kind_lists_the_kinds(space):
    with pytest.raises(ValueError, match="unknown predictor kind 'lasso'") as info:
        make_predictor(space, "lasso")
    assert all(kind in str(info.value) for kind in PREDICTOR_KINDS)


@pytest.mark.parametrize(
    ("n_archs", "y", "match"),
    [
        (0, [], "y is empty"),
        (3, [1.0, np.nan, 2.0], "non-finite"),
        (3, [1.0, np.inf, 2.0], "non-finite"),
        (3, [1.0, 2.0], "X has 3 archs but y has 2"),
        (3, [[1.0, 2.0, 3.0]] * 3, "1-D"),
    ],
)
def test_fit_rejects_bad_targets(space, toy, n_archs, y, match):
    archs, _ = toy
    with pytest.raises(ValueError, match=match) as info:
        make_predictor(space, "ridge").fit(archs[:n_archs], y)
    assert "\n" not in str(info.value)


def test_fit_rejects_empty_x_without_y(space):
    with pytest.raises(ValueError, match="X is empty"):
        ArchFeatures(space).fit([])


def test_check_target_reads_columns_and_names_the_problem():
    np.testing.assert_array_equal(check_target([[1.0], [2.0]]), [1.0, 2.0])
    assert check_target((1, 2, 3), n_samples=3).dtype == np.float64
    with pytest.raises(ValueError, match="y must be numeric"):
        check_target(["a", "b"])
    with pytest.raises(ValueError, match="first at index 1"):
        check_target([0.0, np.nan, np.nan])


# --- extra features ---------------------------------------------------------------------------------


_PROXY_WEIGHTS = np.random.default_rng(5).normal(size=len(mobilenetv3_space().feature_names()))


def _proxy(archs):
    """A per-arch quantity (think: a zero-cost score) that no function of the one-hot slots predicts."""
    x = mobilenetv3_space().features(archs)
    return np.sin(50.0 * (x @ _PROXY_WEIGHTS))[:, None]


def test_extra_features_are_appended_on_every_input_path(space, toy):
    archs, _ = toy
    plain = ArchFeatures(space).transform(archs[:10])
    extended = ArchFeatures(space, extra=_proxy)
    features = extended.transform(archs[:10])
    assert features.shape == (10, plain.shape[1] + 1)
    np.testing.assert_array_equal(features[:, :-1], plain)
    np.testing.assert_allclose(features[:, -1], np.ravel(_proxy(archs[:10])))
    np.testing.assert_array_equal(extended.transform(space.encode(archs[:10])), features)  # vectorised path
    np.testing.assert_array_equal(extended.transform([space.key(a) for a in archs[:10]]), features)
    with pytest.raises(ValueError, match="non-finite"):
        ArchFeatures(space, extra=lambda archs: [[np.inf]] * len(archs)).transform(archs[:2])
    assert clone(extended).get_params()["extra"] is _proxy


def test_extra_features_reach_the_regressor(space, toy):
    archs, _ = toy
    y = 3.0 * np.ravel(_proxy(archs)) + 10.0
    plain = make_predictor(space, "ridge").fit(archs[:200], y[:200])
    extended = make_predictor(space, "ridge", extra_features=_proxy).fit(archs[:200], y[:200])
    assert kendalltau(y[200:], extended.predict(archs[200:])).statistic > 0.95
    assert abs(kendalltau(y[200:], plain.predict(archs[200:])).statistic) < 0.3


def test_single_threaded_limits_every_pool_and_restores_them():
    before = [pool["num_threads"] for pool in threadpool_info()]
    with single_threaded():
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    assert [pool["num_threads"] for pool in threadpool_info()] == before


def test_predictors_on_a_space_of_strings_floats_and_bools():
    space = SearchSpace(
        {"act": ["relu", "gelu"], "width": [0.5, 1.0, 1.5], "se": [False, True], "ratio": [0.25, 0.5]},
        [Condition("ratio", "se", (True,))],
    )
    archs = space.sample(120, rng=0)
    y = np.array(
        [a["width"] * (2.0 if a["act"] == "gelu" else 1.0) + (a["ratio"] if a["se"] else 0.0) for a in archs]
    )
    features = ArchFeatures(space).transform(archs)
    assert list(ArchFeatures(space).get_feature_names_out()) == space.feature_names()
    assert features.shape == (120, 2 + 3 + 2 + 2 + 2)  # one-hot slots, then width and ratio scaled
    for kind in ("ridge", "gbm"):
        model = make_predictor(space, kind).fit(archs[:80], y[:80])
        assert kendalltau(y[80:], model.predict(archs[80:])).statistic > 0.8, kind


# --- learning curve -----------------------------------------------------------------------------------


def test_learning_curve_shape_and_columns(space, toy):
    archs, y = toy
    df = predictor_learning_curve(space, archs, y, "ridge", train_sizes=(20, 100), n_test=100, n_trials=3)
    assert list(df.columns) == ["kind", "train_size", "trial", "test_hash", "mape", "kendall_tau"]
    assert len(df) == 2 * 3
    assert sorted(zip(df.train_size, df.trial)) == [(s, t) for s in (20, 100) for t in range(3)]
    assert (df.kind == "ridge").all()
    assert np.isfinite(df[["mape", "kendall_tau"]].to_numpy()).all()
    # one test set per trial, shared across sizes, different between trials
    assert (df.groupby("trial").test_hash.nunique() == 1).all()
    assert df.groupby("trial").test_hash.first().nunique() == 3


def test_learning_curve_shares_the_test_set_within_a_trial(space, toy, monkeypatch):
    """Observe the splits: unique y values identify archs; record what each fit and each score sees."""
    archs, _ = toy
    y = np.arange(1.0, len(archs) + 1.0)
    fitted, scored = [], []

    class Recorder(Ridge):
        def fit(self, X, y, sample_weight=None):  # noqa: N803
            fitted.append(frozenset(np.asarray(y).tolist()))
            return super().fit(X, y, sample_weight)

    def spy_kendalltau(measured, predicted):
        scored.append(frozenset(np.asarray(measured).tolist()))
        return kendalltau(measured, predicted)

    monkeypatch.setattr(
        predictor_analysis,
        "make_predictor",
        lambda space, kind, seed: Pipeline([("features", ArchFeatures(space)), ("r", Recorder())]),
    )
    monkeypatch.setattr(predictor_analysis, "kendalltau", spy_kendalltau)
    sizes, n_trials, n_test = (10, 50, 200), 3, 100
    predictor_learning_curve(space, archs, y, "ridge", sizes, n_test=n_test, n_trials=n_trials)
    assert len(scored) == len(fitted) == len(sizes) * n_trials
    for trial in range(n_trials):
        tests = scored[trial * len(sizes) : (trial + 1) * len(sizes)]
        trains = fitted[trial * len(sizes) : (trial + 1) * len(sizes)]
        assert len(set(tests)) == 1 and len(tests[0]) == n_test
        assert [len(t) for t in trains] == list(sizes)
        assert all(not (train & tests[0]) for train in trains)
    assert len({scored[t * len(sizes)] for t in range(n_trials)}) == n_trials


def test_learning_curve_error_falls_with_more_data(space, toy):
    archs, y = toy
    df = predictor_learning_curve(space, archs, y, "ridge", train_sizes=(20, 300), n_test=200, n_trials=3)
    summary = summarize_learning_curve(df).set_index("train_size")
    assert summary.loc[300, "mape_mean"] < summary.loc[20, "mape_mean"]
    assert summary.loc[300, "kendall_tau_mean"] > summary.loc[20, "kendall_tau_mean"]


def test_learning_curve_is_reproducible(space, toy):
    archs, y = toy
    kwargs = dict(train_sizes=(30, 60), n_test=100, n_trials=2)
    first = predictor_learning_curve(space, archs, y, ["ridge", "svr"], seed=7, **kwargs)
    again = predictor_learning_curve(space, archs, y, ["ridge", "svr"], seed=7, **kwargs)
    other = predictor_learning_curve(space, archs, y, ["ridge", "svr"], seed=8, **kwargs)
    pd.testing.assert_frame_equal(first, again)
    assert not first.test_hash.equals(other.test_hash)
    # several kinds are compared on the same splits
    per_kind = first.set_index(["train_size", "trial", "kind"]).test_hash.unstack("kind")
    assert (per_kind.ridge == per_kind.svr).all()


def test_learning_curve_skips_sizes_that_do_not_fit(space, toy):
    archs, y = toy
    with pytest.warns(UserWarning, match="skipping train size 1000"):
        df = predictor_learning_curve(space, archs, y, "ridge", (50, 1000), n_test=100, n_trials=1)
    assert df.train_size.tolist() == [50]
    with pytest.raises(ValueError, match="no train size fits"), pytest.warns(UserWarning):
        predictor_learning_curve(space, archs, y, "ridge", (1000,), n_test=100, n_trials=1)


def test_learning_curve_validates_inputs(space, toy):
    archs, y = toy
    with pytest.raises(ValueError, match="non-finite"):
        predictor_learning_curve(space, archs, np.r_[np.nan, y[1:]], "ridge", (10,), n_test=50)
    with pytest.raises(ValueError, match="X has 600 archs but y has 599"):
        predictor_learning_curve(space, archs, y[1:], "ridge", (10,), n_test=50)
    with pytest.raises(ValueError, match="n_test"):
        predictor_learning_curve(space, archs, y, "ridge", (10,), n_test=600)
    with pytest.raises(ValueError, match="unknown predictor kind"):
        predictor_learning_curve(space, archs, y, "lasso", (10,), n_test=50)


def test_summarize_learning_curve():
    df = pd.DataFrame(
        {
            "kind": ["ridge"] * 3 + ["svr"] * 2,
            "train_size": [10, 10, 20, 10, 10],
            "trial": [0, 1, 0, 0, 1],
            "mape": [4.0, 6.0, 3.0, 8.0, 10.0],
            "kendall_tau": [0.5, 0.7, 0.8, 0.2, 0.4],
        }
    )
    summary = summarize_learning_curve(df)
    assert list(summary.columns) == [
        "kind",
        "train_size",
        "n_trials",
        "mape_mean",
        "mape_std",
        "kendall_tau_mean",
        "kendall_tau_std",
    ]
    assert summary[["kind", "train_size", "n_trials"]].values.tolist() == [
        ["ridge", 10, 2],
        ["ridge", 20, 1],
        ["svr", 10, 2],
    ]
    np.testing.assert_allclose(summary.mape_mean, [5.0, 3.0, 9.0])
    np.testing.assert_allclose(summary.kendall_tau_mean, [0.6, 0.8, 0.3])
    np.testing.assert_allclose(summary.mape_std[[0, 2]], [np.sqrt(2.0), np.sqrt(2.0)])
    with pytest.raises(ValueError, match="missing column"):
        summarize_learning_curve(df.drop(columns="mape"))
