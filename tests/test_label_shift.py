"""Tests of sklearn_lt.label_shift.LabelShiftAdapter."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.svm import LinearSVC
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from sklearn_lt import LongTailClassifier
from sklearn_lt.label_shift import LabelShiftAdapter

TRAIN_PRIOR = np.array([0.5, 0.3, 0.2])
TEST_PRIOR = np.array([0.1, 0.2, 0.7])
# Three unit-variance Gaussian classes: a multinomial logistic model is
# well-specified, so LogisticRegression's probabilities are calibrated.
MEANS = np.array([[0.0, 0.0], [2.5, 0.0], [0.0, 2.5]])


@pytest.fixture(autouse=True)
def _single_blas_thread():
    # Many small fits on a loaded machine: extra BLAS threads only add contention.
    with threadpool_limits(limits=1):
        yield


def _sample(n, prior, seed):
    """``n`` rows with class proportions exactly ``prior`` (rounded), shuffled."""
    rng = np.random.default_rng(seed)
    counts = np.round(np.asarray(prior) * n).astype(int)
    y = rng.permutation(np.repeat(np.arange(len(prior)), counts))
    return MEANS[y] + rng.standard_normal((y.shape[0], 2)), y


def _total_variation(p, q):
    return 0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum()


@pytest.fixture(scope="module")
def shifted():
    X_train, y_train = _sample(6000, TRAIN_PRIOR, seed=0)
    X_test, y_test = _sample(20_000, TEST_PRIOR, seed=1)
    return X_train, y_train, X_test, y_test


# max_iter bounds the EM iterations of estimate_prior, not fit: n_iter_ is set
# there, and fit (which runs no EM) has no iteration count to report. Hence not in
# tests/test_common.py, which runs the checks without expected failures.
EM_RUNS_OUTSIDE_FIT = {
    "check_non_transformer_estimators_n_iter": (
        "max_iter is EM's, which runs in estimate_prior; fit sets no n_iter_"
    ),
}


@parametrize_with_checks(
    [
        LabelShiftAdapter(LogisticRegression()),
        LabelShiftAdapter(LogisticRegression(), method="bbse", cv=3),
    ],
    expected_failed_checks=lambda estimator: EM_RUNS_OUTSIDE_FIT,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("method", ["em", "bbse"])
def test_recovers_shifted_prior_and_improves_accuracy(shifted, method):
    # Measured (seeds 0/1): TV 0.0045 (EM), 0.0066 (BBSE); accuracy 0.812 -> 0.914.
    X_train, y_train, X_test, y_test = shifted
    adapter = LabelShiftAdapter(LogisticRegression(), method=method, random_state=0)
    adapter.fit(X_train, y_train)
    np.testing.assert_allclose(adapter.source_prior_, TRAIN_PRIOR)
    prior = adapter.estimate_prior(X_test)
    assert _total_variation(prior, TEST_PRIOR) < 0.02
    np.testing.assert_array_equal(adapter.target_prior_, prior)
    plain = adapter.estimator_.score(X_test, y_test)
    adapted = adapter.score(X_test, y_test)
    assert adapted > plain + 0.05


@pytest.mark.parametrize("method", ["em", "bbse"])
def test_no_shift_keeps_the_prior_and_the_accuracy(shifted, method):
    X_train, y_train, _, _ = shifted
    X_test, y_test = _sample(20_000, TRAIN_PRIOR, seed=2)
    adapter = LabelShiftAdapter(LogisticRegression(), method=method, random_state=0)
    prior = adapter.fit(X_train, y_train).estimate_prior(X_test)
    assert _total_variation(prior, TRAIN_PRIOR) < 0.02
    plain = adapter.estimator_.score(X_test, y_test)
    assert adapter.score(X_test, y_test) > plain - 0.005


def test_long_tail_classifier(shifted):
    # Training parameters are set explicitly: a small MLP, 20 epochs of Adam.
    # Measured: TV 0.0037 (EM), 0.0036 (BBSE on 10,000 held-out rows);
    # accuracy 0.815 -> 0.913.
    X_train, y_train, X_test, y_test = shifted
    net = LongTailClassifier(
        loss="ce",
        max_epochs=20,
        hidden_layer_sizes=(32,),
        batch_size=256,
        optimizer="adam",
        lr=1e-2,
        device="cpu",
        random_state=0,
    )
    em = LabelShiftAdapter(net, method="em").fit(X_train, y_train)
    prior = em.estimate_prior(X_test)
    assert _total_variation(prior, TEST_PRIOR) < 0.02
    plain = em.estimator_.score(X_test, y_test)
    assert em.score(X_test, y_test) > plain + 0.05

    # BBSE on the fitted network, with a held-out set from the training prior.
    X_val, y_val = _sample(10_000, TRAIN_PRIOR, seed=3)
    bbse = LabelShiftAdapter(FrozenEstimator(em.estimator_), method="bbse")
    prior = bbse.fit(X_val, y_val).estimate_prior(X_test)
    assert _total_variation(prior, TEST_PRIOR) < 0.02
    assert bbse.score(X_test, y_test) > plain + 0.05


def test_source_prior_uniform_for_a_balanced_model(shifted):
    # class_weight="balanced" makes the probabilities target a uniform prior:
    # EM is right with source_prior="uniform" and biased with "train"
    # (measured TV 0.004 and 0.058). BBSE's estimate ignores source_prior.
    X_train, y_train, X_test, _ = shifted
    balanced = LogisticRegression(class_weight="balanced")
    priors = {}
    for source_prior in ("uniform", "train"):
        for method in ("em", "bbse"):
            adapter = LabelShiftAdapter(
                balanced, method=method, source_prior=source_prior, random_state=0
            ).fit(X_train, y_train)
            priors[source_prior, method] = adapter.estimate_prior(X_test)
    assert _total_variation(priors["uniform", "em"], TEST_PRIOR) < 0.02
    assert _total_variation(priors["train", "em"], TEST_PRIOR) > 0.04
    np.testing.assert_allclose(priors["uniform", "bbse"], priors["train", "bbse"])
    assert _total_variation(priors["uniform", "bbse"], TEST_PRIOR) < 0.02


def test_fit_assumes_no_shift(shifted):
    X_train, y_train, X_test, _ = shifted
    adapter = LabelShiftAdapter(LogisticRegression()).fit(X_train, y_train)
    np.testing.assert_array_equal(adapter.target_prior_, adapter.source_prior_)
    np.testing.assert_allclose(
        adapter.predict_proba(X_test), adapter.estimator_.predict_proba(X_test)
    )
    np.testing.assert_array_equal(
        adapter.predict(X_test), adapter.estimator_.predict(X_test)
    )
    # Refitting discards an estimate.
    adapter.estimate_prior(X_test)
    assert not np.allclose(adapter.target_prior_, adapter.source_prior_)
    adapter.fit(X_train, y_train)
    np.testing.assert_array_equal(adapter.target_prior_, adapter.source_prior_)


def test_outputs_are_the_reweighted_probabilities(shifted):
    X_train, y_train, X_test, _ = shifted
    adapter = LabelShiftAdapter(LogisticRegression()).fit(X_train, y_train)
    adapter.estimate_prior(X_test)
    base = adapter.estimator_.predict_proba(X_test)
    expected = base * (adapter.target_prior_ / adapter.source_prior_)
    expected /= expected.sum(axis=1, keepdims=True)
    proba = adapter.predict_proba(X_test)
    np.testing.assert_allclose(proba, expected, rtol=1e-10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(adapter.predict_log_proba(X_test), np.log(expected))
    decision = adapter.decision_function(X_test)
    assert decision.shape == proba.shape
    np.testing.assert_array_equal(
        adapter.predict(X_test), adapter.classes_[np.argmax(decision, axis=1)]
    )
    # Predictions are row-wise: a batch does not change the estimated prior.
    np.testing.assert_allclose(adapter.predict_proba(X_test[:1]), proba[:1])


def test_em_matches_the_saerens_iteration(shifted):
    X_train, y_train, X_test, _ = shifted
    adapter = LabelShiftAdapter(LogisticRegression(), max_iter=3, tol=0.0)
    adapter.fit(X_train, y_train)
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        prior = adapter.estimate_prior(X_test)
    assert adapter.n_iter_ == 3

    base = adapter.estimator_.predict_proba(X_test)
    source = np.bincount(y_train) / y_train.shape[0]
    expected = source.copy()
    for _ in range(3):
        posterior = base * (expected / source)
        posterior /= posterior.sum(axis=1, keepdims=True)
        expected = posterior.mean(axis=0)
    np.testing.assert_allclose(prior, expected, rtol=1e-10)

    # At convergence the prior is a fixed point: the mean adapted posterior.
    adapter.set_params(max_iter=1000, tol=1e-12).estimate_prior(X_test)
    assert adapter.n_iter_ < 1000
    np.testing.assert_allclose(
        adapter.predict_proba(X_test).mean(axis=0), adapter.target_prior_, atol=1e-10
    )


class _PredictsFirstFeature(ClassifierMixin, BaseEstimator):
    """Predicts the class index held in the first feature, with probability 1."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.eye(self.classes_.shape[0])[np.asarray(X)[:, 0].astype(int)]


def _rows(counts_by_class, conditional):
    """Predicted-class features and true labels: counts[j] * conditional[j]."""
    X, y = [], []
    for j, n in enumerate(counts_by_class):
        for k, p in enumerate(conditional[j]):
            m = round(n * p)
            X += [[k]] * m
            y += [j] * m
    return np.array(X, dtype=float), np.array(y)


def test_bbse_is_exact_on_an_exact_confusion_matrix():
    # P(prediction | class) is the same in held-out and test data, and the
    # counts are exact: BBSE must return the test prior exactly.
    conditional = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]])
    X_val, y_val = _rows([500, 300, 200], conditional)
    X_test, _ = _rows([100, 200, 700], conditional)
    inner = _PredictsFirstFeature().fit(X_val, y_val)
    adapter = LabelShiftAdapter(FrozenEstimator(inner), method="bbse")
    adapter.fit(X_val, y_val)
    np.testing.assert_allclose(
        adapter.confusion_matrix_,
        confusion_matrix(y_val, X_val[:, 0].astype(int), normalize="all"),
    )
    np.testing.assert_allclose(adapter.estimate_prior(X_test), TEST_PRIOR, atol=1e-12)


def test_bbse_zero_prior_gives_finite_outputs():
    conditional = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]])
    X_val, y_val = _rows([500, 300, 200], conditional)
    inner = _PredictsFirstFeature().fit(X_val, y_val)
    adapter = LabelShiftAdapter(FrozenEstimator(inner), method="bbse")
    adapter.fit(X_val, y_val)
    # Every test row predicted as class 0: the least-squares weights of the
    # other classes are negative and clipped to 0.
    prior = adapter.estimate_prior(np.zeros((50, 1)))
    np.testing.assert_allclose(prior, [1.0, 0.0, 0.0])
    X = np.array([[0.0], [1.0], [2.0]])
    for method in ("predict_proba", "predict_log_proba", "decision_function"):
        assert np.all(np.isfinite(getattr(adapter, method)(X)))
    np.testing.assert_allclose(adapter.predict_proba(X).sum(axis=1), 1.0)
    np.testing.assert_array_equal(adapter.predict(X), [0, 1, 2])


def test_bbse_confusion_matrix_is_out_of_fold(shifted):
    X_train, y_train, _, _ = shifted
    adapter = LabelShiftAdapter(
        LogisticRegression(), method="bbse", cv=3, random_state=0
    ).fit(X_train, y_train)
    oof = cross_val_predict(
        LogisticRegression(),
        X_train,
        y_train,
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
        method="predict_proba",
    )
    expected = confusion_matrix(y_train, oof.argmax(axis=1), normalize="all")
    np.testing.assert_allclose(adapter.confusion_matrix_, expected)
    np.testing.assert_allclose(adapter.confusion_matrix_.sum(axis=1), TRAIN_PRIOR)


class _CountingLogisticRegression(LogisticRegression):
    n_fit_calls = 0

    def fit(self, X, y, sample_weight=None):
        type(self).n_fit_calls += 1
        return super().fit(X, y, sample_weight=sample_weight)


@pytest.mark.parametrize("method", ["em", "bbse"])
def test_frozen_estimator_is_not_refitted(shifted, method):
    X_train, y_train, X_test, _ = shifted
    inner = _CountingLogisticRegression().fit(X_train, y_train)
    coef = inner.coef_.copy()
    calls = _CountingLogisticRegression.n_fit_calls
    X_val, y_val = _sample(3000, [0.4, 0.4, 0.2], seed=4)
    adapter = LabelShiftAdapter(FrozenEstimator(inner), method=method)
    adapter.fit(X_val, y_val)
    adapter.estimate_prior(X_test)
    assert _CountingLogisticRegression.n_fit_calls == calls
    assert adapter.estimator_.estimator is inner
    np.testing.assert_array_equal(inner.coef_, coef)
    np.testing.assert_array_equal(adapter.class_counts_, np.bincount(y_val))
    np.testing.assert_allclose(adapter.source_prior_, [0.4, 0.4, 0.2])
    if method == "bbse":
        np.testing.assert_allclose(
            adapter.confusion_matrix_,
            confusion_matrix(y_val, inner.predict(X_val), normalize="all"),
        )


def test_label_unknown_to_frozen_estimator_raises(shifted):
    X_train, y_train, _, _ = shifted
    keep = y_train != 2
    inner = LogisticRegression().fit(X_train[keep], y_train[keep])
    with pytest.raises(ValueError, match=r"labels \[2\] that are not in the classes_"):
        LabelShiftAdapter(FrozenEstimator(inner)).fit(X_train, y_train)


def test_string_labels_are_aligned_with_classes(shifted):
    X_train, y_train, X_test, _ = shifted
    names = np.array(["low", "mid", "high"])
    adapter = LabelShiftAdapter(LogisticRegression()).fit(X_train, names[y_train])
    np.testing.assert_array_equal(adapter.classes_, ["high", "low", "mid"])
    np.testing.assert_allclose(adapter.source_prior_, TRAIN_PRIOR[[2, 0, 1]])
    prior = adapter.estimate_prior(X_test)
    assert _total_variation(prior, TEST_PRIOR[[2, 0, 1]]) < 0.02


def test_source_prior_options(shifted):
    X_train, y_train, _, _ = shifted
    uniform = LabelShiftAdapter(LogisticRegression(), source_prior="uniform")
    np.testing.assert_allclose(uniform.fit(X_train, y_train).source_prior_, 1 / 3)
    counts = LabelShiftAdapter(LogisticRegression(), source_prior=[2, 1, 1])
    np.testing.assert_allclose(
        counts.fit(X_train, y_train).source_prior_, [0.5, 0.25, 0.25]
    )
    # A zero is treated as the rarest positive value, as everywhere in sklearn_lt.
    zero = LabelShiftAdapter(LogisticRegression(), source_prior=[3, 1, 0])
    np.testing.assert_allclose(
        zero.fit(X_train, y_train).source_prior_, [0.6, 0.2, 0.2]
    )


def test_sample_weight_weights_prior_and_confusion_matrix(shifted):
    X_train, y_train, _, _ = shifted
    weight = np.where(y_train == 0, 0.25, 1.0)
    adapter = LabelShiftAdapter(LogisticRegression(), method="bbse", cv=3)
    adapter.fit(X_train, y_train, sample_weight=weight)
    counts = np.bincount(y_train) * np.array([0.25, 1.0, 1.0])
    np.testing.assert_allclose(adapter.source_prior_, counts / counts.sum())
    np.testing.assert_allclose(
        adapter.confusion_matrix_.sum(axis=1), adapter.source_prior_
    )
    np.testing.assert_array_equal(adapter.class_counts_, np.bincount(y_train))
    inner = LogisticRegression().fit(X_train, y_train, sample_weight=weight)
    np.testing.assert_allclose(adapter.estimator_.coef_, inner.coef_)

    frozen = LabelShiftAdapter(FrozenEstimator(inner), method="bbse")
    frozen.fit(X_train, y_train, sample_weight=weight)
    expected = confusion_matrix(
        y_train, inner.predict(X_train), sample_weight=weight, normalize="all"
    )
    np.testing.assert_allclose(frozen.confusion_matrix_, expected)


def test_binary_decision_function_convention():
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.2).astype(int)
    X = (2.0 * y - 1.0 + rng.standard_normal(2000)).reshape(-1, 1)
    adapter = LabelShiftAdapter(LogisticRegression()).fit(X, y)
    adapter.estimate_prior(X[y == 1])  # all positive: the prior moves to class 1
    assert adapter.target_prior_[1] > 0.9
    log_proba = adapter.predict_log_proba(X)
    decision = adapter.decision_function(X)
    assert decision.shape == (2000,)
    np.testing.assert_allclose(decision, log_proba[:, 1] - log_proba[:, 0])
    np.testing.assert_array_equal(adapter.predict(X), (decision > 0).astype(int))


def test_default_estimator_is_logistic_regression(shifted):
    X_train, y_train, _, _ = shifted
    adapter = LabelShiftAdapter().fit(X_train, y_train)
    assert isinstance(adapter.estimator_, LogisticRegression)
    assert adapter.estimator is None


def test_unfitted_raises(shifted):
    _, _, X_test, _ = shifted
    adapter = LabelShiftAdapter(LogisticRegression())
    for method in ("estimate_prior", "predict", "predict_proba"):
        with pytest.raises(NotFittedError):
            getattr(adapter, method)(X_test)


def test_bbse_after_fitting_for_em_raises(shifted):
    X_train, y_train, X_test, _ = shifted
    adapter = LabelShiftAdapter(LogisticRegression()).fit(X_train, y_train)
    adapter.set_params(method="bbse")
    with pytest.raises(ValueError, match="refit after changing method"):
        adapter.estimate_prior(X_test)
    # The parameters are validated again, as in fit.
    adapter.set_params(method="kmm")
    with pytest.raises(ValueError, match="'method' parameter"):
        adapter.estimate_prior(X_test)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"source_prior": [1.0, 2.0]}, r"source_prior has shape \(2,\), expected"),
        ({"source_prior": [1.0, -1.0, 1.0]}, "finite, non-negative"),
        ({"source_prior": [1.0, np.nan, 1.0]}, "finite, non-negative"),
        ({"source_prior": [0.0, 0.0, 0.0]}, "not all zero"),
        ({"source_prior": "balanced"}, "'source_prior' parameter"),
        ({"method": "kmm"}, "'method' parameter"),
        ({"estimator": LinearSVC()}, "'estimator' parameter"),
        ({"max_iter": 0}, "'max_iter' parameter"),
        ({"tol": -1.0}, "'tol' parameter"),
    ],
)
def test_invalid_parameters(shifted, params, match):
    X_train, y_train, _, _ = shifted
    adapter = LabelShiftAdapter(**{"estimator": LogisticRegression(), **params})
    with pytest.raises(ValueError, match=match):
        adapter.fit(X_train, y_train)


def test_clone_discards_the_estimate(shifted):
    X_train, y_train, X_test, _ = shifted
    adapter = LabelShiftAdapter(LogisticRegression()).fit(X_train, y_train)
    adapter.estimate_prior(X_test)
    assert not hasattr(clone(adapter), "target_prior_")
