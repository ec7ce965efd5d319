"""Tests of sklearn_lt.posthoc.LogitAdjustedClassifier."""

import warnings

import numpy as np
import pytest
from imblearn.over_sampling import RandomOverSampler
from imblearn.pipeline import make_pipeline as make_imb_pipeline
from scipy.stats import norm
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from sklearn_lt.posthoc import LogitAdjustedClassifier


@pytest.fixture(autouse=True)
def _single_blas_thread():
    # Many tiny fits: BLAS and OpenMP threads only add contention (a
    # LogisticRegression fit on 300 samples went from 4 ms to 230 ms with two
    # BLAS threads on a loaded two-core machine).
    with threadpool_limits(limits=1):
        yield


@parametrize_with_checks(
    [
        LogitAdjustedClassifier(LogisticRegression()),
        LogitAdjustedClassifier(LogisticRegression(), tau="auto", cv=3),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def long_tailed():
    """Three classes with priors 0.8 / 0.15 / 0.05, split in train and test."""
    X, y = make_classification(
        n_samples=3000,
        n_classes=3,
        n_informative=4,
        n_redundant=0,
        weights=[0.8, 0.15, 0.05],
        class_sep=0.8,
        flip_y=0,
        random_state=0,
    )
    return train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)


def _gaussians(n, prior1, rng):
    """1d classes N(-1, 1) (label 0) and N(+1, 1) (label 1), P(y=1) = prior1."""
    y = (rng.random(n) < prior1).astype(int)
    X = (2.0 * y - 1.0 + rng.standard_normal(n)).reshape(-1, 1)
    return X, y


def test_tau_one_recovers_balanced_bayes_rule():
    # p(y=1 | x) = sigmoid(2x + log(0.1 / 0.9)): logistic regression is
    # well-specified, hence calibrated. The Bayes rule for plain error thresholds
    # x at log(9) / 2 ~ 1.10; the Bayes rule for balanced error at 0, with
    # balanced accuracy Phi(1) ~ 0.841.
    rng = np.random.default_rng(0)
    X, y = _gaussians(20_000, 0.1, rng)
    X_test, y_test = _gaussians(20_000, 0.5, rng)

    plain = LogitAdjustedClassifier(LogisticRegression(), tau=0.0).fit(X, y)
    adjusted = LogitAdjustedClassifier(LogisticRegression(), tau=1.0).fit(X, y)

    def boundary(clf):
        # decision_function is affine in x for a binary logistic model.
        d0, d1 = clf.decision_function(np.array([[0.0], [1.0]]))
        return -d0 / (d1 - d0)

    assert boundary(plain) == pytest.approx(np.log(9) / 2, abs=0.1)
    assert boundary(adjusted) == pytest.approx(0.0, abs=0.1)
    assert np.allclose(adjusted.class_prior_, [0.9, 0.1], atol=0.01)

    bal_plain = balanced_accuracy_score(y_test, plain.predict(X_test))
    bal_adjusted = balanced_accuracy_score(y_test, adjusted.predict(X_test))
    assert bal_adjusted > bal_plain + 0.05
    assert bal_adjusted == pytest.approx(norm.cdf(1.0), abs=0.01)


def test_tau_zero_is_identity(long_tailed):
    X_train, X_test, y_train, _ = long_tailed
    inner = LogisticRegression().fit(X_train, y_train)
    clf = LogitAdjustedClassifier(LogisticRegression(), tau=0.0).fit(X_train, y_train)
    np.testing.assert_array_equal(clf.predict(X_test), inner.predict(X_test))
    np.testing.assert_allclose(
        clf.predict_proba(X_test), inner.predict_proba(X_test), rtol=1e-12
    )
    np.testing.assert_allclose(
        clf.decision_function(X_test),
        np.log(inner.predict_proba(X_test)),
        rtol=1e-12,
    )


def test_adjusted_outputs_are_consistent(long_tailed):
    X_train, X_test, y_train, _ = long_tailed
    clf = LogitAdjustedClassifier(LogisticRegression(), tau=1.0).fit(X_train, y_train)
    proba = clf.predict_proba(X_test)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X_test)), proba)
    scores = clf.decision_function(X_test)
    expected = np.log(clf.estimator_.predict_proba(X_test)) - np.log(clf.class_prior_)
    np.testing.assert_allclose(scores, expected, rtol=1e-12)
    np.testing.assert_array_equal(
        clf.predict(X_test), clf.classes_[np.argmax(scores, axis=1)]
    )
    counts = np.bincount(y_train)
    np.testing.assert_array_equal(clf.class_counts_, counts)
    np.testing.assert_allclose(clf.class_prior_, counts / counts.sum())
    assert clf.n_features_in_ == X_train.shape[1]
    assert clf.tau_ == 1.0


def test_binary_decision_function_convention():
    rng = np.random.default_rng(1)
    X, y = _gaussians(500, 0.2, rng)
    clf = LogitAdjustedClassifier(LogisticRegression(), tau=0.5).fit(X, y)
    decision = clf.decision_function(X)
    assert decision.shape == (X.shape[0],)
    log_proba = clf.predict_log_proba(X)
    np.testing.assert_allclose(decision, log_proba[:, 1] - log_proba[:, 0])
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(decision > 0) * 1])


def test_auto_tau_improves_balanced_accuracy(long_tailed):
    X_train, X_test, y_train, y_test = long_tailed
    plain = LogitAdjustedClassifier(LogisticRegression(), tau=0.0)
    tuned = LogitAdjustedClassifier(
        LogisticRegression(), tau="auto", cv=3, random_state=0
    )
    plain.fit(X_train, y_train)
    tuned.fit(X_train, y_train)
    assert tuned.tau_ > 0
    bal_plain = balanced_accuracy_score(y_test, plain.predict(X_test))
    bal_tuned = balanced_accuracy_score(y_test, tuned.predict(X_test))
    assert bal_tuned > bal_plain + 0.05

    results = tuned.cv_results_
    grid = np.linspace(0, 2, 21)
    np.testing.assert_allclose(results["tau"], grid)
    splits = np.column_stack([results[f"split{k}_test_score"] for k in range(3)])
    np.testing.assert_allclose(results["mean_test_score"], splits.mean(axis=1))
    np.testing.assert_allclose(results["std_test_score"], splits.std(axis=1))
    best = np.argmax(results["mean_test_score"])
    assert tuned.best_score_ == pytest.approx(results["mean_test_score"][best])
    # The final model is refitted on all the training data.
    np.testing.assert_allclose(
        tuned.estimator_.coef_, LogisticRegression().fit(X_train, y_train).coef_
    )


def test_auto_tau_picks_the_best_scoring_tau_when_it_is_not_one(long_tailed):
    # A classifier trained with balanced class weights already predicts for
    # balanced error: adjusting it again over-corrects, so tau = 0 is clearly
    # best and tau = 1 (the tie-break target) clearly worse.
    X_train, _, y_train, _ = long_tailed
    grid = [0.0, 0.5, 1.0, 1.5, 2.0]
    tuned = LogitAdjustedClassifier(
        LogisticRegression(class_weight="balanced"),
        tau="auto",
        tau_grid=grid,
        cv=3,
        random_state=0,
    ).fit(X_train, y_train)
    mean = tuned.cv_results_["mean_test_score"]
    best = int(np.argmax(mean))
    assert np.sum(mean == mean[best]) == 1
    assert mean[grid.index(1.0)] < mean[best] - 0.05
    assert tuned.tau_ == grid[best] == 0.0
    assert tuned.best_score_ == mean[best]
    # Scores fall as tau grows away from the best value.
    assert np.all(np.diff(mean) < 0)


def test_auto_tau_ties_go_to_one():
    # Separable classes: every tau of the grid scores 1.0.
    X = np.array([[-3.0], [-2.0], [-2.5], [-3.5], [2.0], [3.0], [2.5], [3.5]])
    X = np.vstack([X, X - 0.1, X + 0.1])
    y = (X[:, 0] > 0).astype(int)
    clf = LogitAdjustedClassifier(
        LogisticRegression(), tau="auto", cv=3, tau_grid=[0.0, 0.5, 2.0]
    ).fit(X, y)
    np.testing.assert_allclose(clf.cv_results_["mean_test_score"], 1.0)
    assert clf.tau_ == 0.5


def test_auto_tau_with_proba_scorer_and_callable(long_tailed):
    X_train, _, y_train, _ = long_tailed
    calls = []

    def scorer(estimator, X, y):
        calls.append(len(y))
        return balanced_accuracy_score(y, estimator.predict(X))

    for scoring in ["neg_log_loss", scorer]:
        clf = LogitAdjustedClassifier(
            LogisticRegression(),
            tau="auto",
            cv=2,
            tau_grid=[0.0, 1.0],
            scoring=scoring,
            random_state=0,
        ).fit(X_train, y_train)
        assert clf.tau_ in (0.0, 1.0)
        assert np.all(np.isfinite(clf.cv_results_["mean_test_score"]))
    assert len(calls) == 4
    assert sum(calls) == 2 * len(y_train)


def test_auto_tau_is_reproducible(long_tailed):
    X_train, _, y_train, _ = long_tailed
    kwargs = dict(tau="auto", cv=3, tau_grid=np.linspace(0, 2, 5), random_state=3)
    a = LogitAdjustedClassifier(LogisticRegression(), **kwargs).fit(X_train, y_train)
    b = LogitAdjustedClassifier(LogisticRegression(), **kwargs).fit(X_train, y_train)
    np.testing.assert_array_equal(
        a.cv_results_["mean_test_score"], b.cv_results_["mean_test_score"]
    )


def test_grid_search_over_tau(long_tailed):
    X_train, _, y_train, _ = long_tailed
    search = GridSearchCV(
        LogitAdjustedClassifier(LogisticRegression()),
        {"tau": [0.0, 1.0], "estimator__C": [0.1, 1.0]},
        scoring="balanced_accuracy",
        cv=3,
    ).fit(X_train, y_train)
    assert search.best_params_["tau"] == 1.0
    assert search.best_params_["estimator__C"] == search.best_estimator_.estimator_.C


def test_imblearn_pipeline_estimator(long_tailed):
    X_train, X_test, y_train, y_test = long_tailed
    pipe = make_imb_pipeline(
        StandardScaler(), RandomOverSampler(random_state=0), LogisticRegression()
    )
    clf = LogitAdjustedClassifier(pipe, tau=1.0).fit(X_train, y_train)
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.n_features_in_ == X_train.shape[1]
    np.testing.assert_array_equal(clf.class_counts_, np.bincount(y_train))
    assert clf.predict(X_test).shape == y_test.shape

    # After balanced over-sampling the classifier's prior is uniform: passing
    # it makes the adjustment a no-op.
    uniform = LogitAdjustedClassifier(pipe, prior=np.ones(3)).fit(X_train, y_train)
    np.testing.assert_allclose(uniform.class_prior_, 1 / 3)
    np.testing.assert_array_equal(
        uniform.predict(X_test), clone(pipe).fit(X_train, y_train).predict(X_test)
    )


def test_hist_gradient_boosting_with_string_labels(long_tailed):
    X_train, X_test, y_train, y_test = long_tailed
    names = np.array(["head", "middle", "tail"])
    hgb = HistGradientBoostingClassifier(max_iter=30, random_state=0)
    clf = LogitAdjustedClassifier(hgb, tau=1.0).fit(X_train, names[y_train])
    np.testing.assert_array_equal(clf.classes_, names)
    y_pred = clf.predict(X_test)
    assert set(np.unique(y_pred)) <= set(names)
    np.testing.assert_allclose(clf.predict_proba(X_test).sum(axis=1), 1.0)
    plain = LogitAdjustedClassifier(hgb, tau=0.0).fit(X_train, names[y_train])
    assert balanced_accuracy_score(names[y_test], y_pred) > balanced_accuracy_score(
        names[y_test], plain.predict(X_test)
    )


class _CountingLogisticRegression(LogisticRegression):
    n_fit_calls = 0

    def fit(self, X, y, sample_weight=None):
        type(self).n_fit_calls += 1
        return super().fit(X, y, sample_weight=sample_weight)


@pytest.mark.parametrize("tau", [1.0, "auto"])
def test_frozen_estimator_is_not_refitted(long_tailed, tau):
    X_train, X_test, y_train, y_test = long_tailed
    inner = _CountingLogisticRegression().fit(X_train, y_train)
    coef = inner.coef_.copy()
    calls = _CountingLogisticRegression.n_fit_calls
    clf = LogitAdjustedClassifier(FrozenEstimator(inner), tau=tau, cv=3)
    clf.fit(X_test, y_test)
    assert _CountingLogisticRegression.n_fit_calls == calls
    assert clf.estimator_.estimator is inner
    np.testing.assert_array_equal(inner.coef_, coef)
    np.testing.assert_array_equal(clf.class_counts_, np.bincount(y_test))
    if tau == "auto":
        # tau is tuned on (X, y) directly: a single "split".
        assert set(clf.cv_results_) == {
            "tau",
            "mean_test_score",
            "std_test_score",
            "split0_test_score",
        }
        scores = [
            balanced_accuracy_score(
                y_test,
                LogitAdjustedClassifier(FrozenEstimator(inner), tau=t)
                .fit(X_test, y_test)
                .predict(X_test),
            )
            for t in (0.5, 1.0)
        ]
        np.testing.assert_allclose(clf.cv_results_["mean_test_score"][[5, 10]], scores)


def test_zero_count_class_is_finite(long_tailed):
    X_train, X_test, y_train, y_test = long_tailed
    inner = LogisticRegression().fit(X_train, y_train)
    keep = y_test != 2
    clf = LogitAdjustedClassifier(FrozenEstimator(inner)).fit(
        X_test[keep], y_test[keep]
    )
    np.testing.assert_array_equal(clf.class_counts_[2], 0)
    counts = np.bincount(y_test[keep], minlength=3).astype(float)
    counts[2] = counts[:2].min()  # as rare as the rarest observed class
    np.testing.assert_allclose(clf.class_prior_, counts / counts.sum())
    for method in ("predict_proba", "predict_log_proba", "decision_function"):
        assert np.all(np.isfinite(getattr(clf, method)(X_test)))

    # A zero in a given prior is handled the same way.
    clf = LogitAdjustedClassifier(LogisticRegression(), prior=[3.0, 1.0, 0.0])
    clf.fit(X_train, y_train)
    np.testing.assert_allclose(clf.class_prior_, np.array([3, 1, 1]) / 5)


def test_zero_probabilities_give_finite_scores():
    class Hard(ClassifierMixin, BaseEstimator):
        def fit(self, X, y):
            self.classes_ = np.unique(y)
            return self

        def predict_proba(self, X):
            proba = np.zeros((len(X), len(self.classes_)))
            proba[:, 0] = 1.0
            return proba

    X = np.zeros((6, 1))
    y = np.array([0, 0, 0, 0, 1, 2])
    clf = LogitAdjustedClassifier(Hard(), tau=1.0).fit(X, y)
    for method in ("predict_proba", "predict_log_proba", "decision_function"):
        assert np.all(np.isfinite(getattr(clf, method)(X)))
    np.testing.assert_array_equal(clf.predict(X), 0)
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0)


def test_label_unknown_to_frozen_estimator_raises(long_tailed):
    X_train, X_test, y_train, y_test = long_tailed
    keep = y_train != 2
    inner = LogisticRegression().fit(X_train[keep], y_train[keep])
    with pytest.raises(ValueError, match=r"labels \[2\] that are not in the classes_"):
        LogitAdjustedClassifier(FrozenEstimator(inner)).fit(X_test, y_test)


def test_sample_weight_weights_the_prior(long_tailed):
    X_train, _, y_train, _ = long_tailed
    weight = np.where(y_train == 0, 0.25, 1.0)
    clf = LogitAdjustedClassifier(LogisticRegression()).fit(
        X_train, y_train, sample_weight=weight
    )
    counts = np.bincount(y_train) * np.array([0.25, 1.0, 1.0])
    np.testing.assert_allclose(clf.class_prior_, counts / counts.sum())
    np.testing.assert_array_equal(clf.class_counts_, np.bincount(y_train))
    inner = LogisticRegression().fit(X_train, y_train, sample_weight=weight)
    np.testing.assert_allclose(clf.estimator_.coef_, inner.coef_)


def test_default_estimator_is_logistic_regression(long_tailed):
    X_train, _, y_train, _ = long_tailed
    clf = LogitAdjustedClassifier().fit(X_train, y_train)
    assert isinstance(clf.estimator_, LogisticRegression)
    assert clf.estimator is None


@pytest.mark.parametrize(
    "params, match",
    [
        ({"prior": [1.0, 2.0]}, r"prior has shape \(2,\), expected \(3,\)"),
        ({"prior": [1.0, -1.0, 1.0]}, "finite, non-negative"),
        ({"tau": "auto", "tau_grid": [-1.0, 1.0]}, "tau_grid must be"),
        ({"tau": "auto", "tau_grid": []}, "tau_grid must be"),
        ({"tau": -1.0}, "'tau' parameter"),
        ({"scoring": "not_a_scorer"}, "'scoring' parameter"),
    ],
)
def test_invalid_parameters(long_tailed, params, match):
    X_train, _, y_train, _ = long_tailed
    with pytest.raises(ValueError, match=match):
        LogitAdjustedClassifier(LogisticRegression(), **params).fit(X_train, y_train)


class _FixedProbabilities(ClassifierMixin, BaseEstimator):
    """Predicts the same probability row, ``row``, for every example."""

    def __init__(self, row=(1.0, 0.0)):
        self.row = row

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.tile(np.asarray(self.row, dtype=np.float64), (len(X), 1))

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def _imbalanced_binary():
    X, y = make_classification(
        n_samples=300, weights=[0.8, 0.2], n_informative=2, random_state=0
    )
    return X, y


@pytest.mark.parametrize(
    "row, match",
    [
        # Minority examples get probability exactly 0 for their own class.
        ((1.0, 0.0), "50% of the examples get probability exactly 0"),
        # Tiny but positive: reachable in principle, yet no tau moves it.
        ((1.0, 1e-200), "every tau of tau_grid gave the same"),
    ],
)
def test_auto_tau_warns_when_the_adjustment_cannot_work(row, match):
    X, y = _imbalanced_binary()
    clf = LogitAdjustedClassifier(_FixedProbabilities(row), tau="auto", cv=3)
    with pytest.warns(UserWarning, match=match) as caught:
        clf.fit(X, y)
    assert caught[0].filename == __file__  # points at the caller's fit


def test_auto_tau_does_not_warn_for_a_working_adjustment():
    X, y = _imbalanced_binary()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LogitAdjustedClassifier(LogisticRegression(), tau="auto", cv=3).fit(X, y)


def test_saturated_gradient_boosting_warns_and_l2_regularization_fixes_it():
    # The Shuttle failure in small: separated classes of 2,000 down to 5
    # examples drive HistGradientBoosting's leaf values to extremes (half of
    # the tail's examples get probability exactly 0 for their own class, out
    # of fold); l2_regularization keeps them finite.
    rng = np.random.RandomState(0)
    sizes = (2000, 2000, 25, 7, 5)
    X = np.vstack(
        [10.0 * np.eye(5)[c] + rng.normal(size=(n, 5)) for c, n in enumerate(sizes)]
    )
    y = np.repeat(np.arange(5), sizes)
    saturated = LogitAdjustedClassifier(
        HistGradientBoostingClassifier(random_state=0),
        tau="auto",
        cv=3,
        random_state=0,
    )
    with pytest.warns(UserWarning, match="l2_regularization"):
        saturated.fit(X, y)
    saturated.set_params(estimator__l2_regularization=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        saturated.fit(X, y)
