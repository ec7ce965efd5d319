"""Label-shift adaptation of a fitted classifier to unlabelled test data.

Under *label shift* the class prior changes between training and test,
:math:`q(y) \\neq p(y)`, while the classes themselves do not,
:math:`q(x \\mid y) = p(x \\mid y)`. :class:`LabelShiftAdapter` estimates the
test prior :math:`q(y)` from unlabelled test data, by EM (Saerens et al., 2002)
or by black-box shift estimation (Lipton et al., 2018), and re-weights the
probabilities of any scikit-learn classifier with ``predict_proba`` to it. It
needs no PyTorch.
"""

import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from scipy.special import log_softmax, softmax
from sklearn import get_config
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, check_cv, cross_val_predict
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

from ._compat import (
    HasMethods,
    Interval,
    StrOptions,
    _check_sample_weight,
    _fit_context,
)
from ._wrapped import fit_wrapped
from .weights import class_priors

__all__ = ["LabelShiftAdapter"]

# Probabilities are floored at the smallest positive float64 before the log, so
# that a probability (or an estimated prior) of exactly 0 gives a very low but
# finite score instead of -inf; no positive value is changed.
_TINY = np.finfo(np.float64).tiny


def _safe_log(values):
    return np.log(np.clip(values, _TINY, None))


def _em_prior(proba, source_prior, max_iter, tol):
    """Saerens et al.'s EM: the test prior, the iterations run, and convergence."""
    log_proba = _safe_log(proba)
    log_source = np.log(source_prior)
    prior = source_prior.copy()
    for n_iter in range(1, max_iter + 1):
        # E-step: posteriors under the current prior; M-step: their mean.
        posterior = softmax(log_proba + _safe_log(prior) - log_source, axis=1)
        new_prior = posterior.mean(axis=0)
        change = np.max(np.abs(new_prior - prior))
        prior = new_prior
        if change < tol:
            return prior, n_iter, True
    return prior, max_iter, False


def _bbse_prior(confusion, predicted, n_classes):
    """Lipton et al.'s BBSE: solve ``confusion.T @ w = mu`` and return the prior."""
    mu = np.bincount(predicted, minlength=n_classes) / predicted.shape[0]
    w = np.linalg.lstsq(confusion.T, mu, rcond=None)[0]
    prior = np.clip(w, 0.0, None) * confusion.sum(axis=1)
    if not prior.sum() > 0:
        raise ValueError(
            "BBSE found no non-negative solution for the test prior: the "
            "confusion matrix of the held-out predictions is too poorly "
            "conditioned. Use method='em', or more held-out data."
        )
    return prior / prior.sum()


class LabelShiftAdapter(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Adapt a probabilistic classifier to the class prior of unlabelled data.

    A classifier trained under the class prior :math:`\\pi` (the source)
    estimates :math:`p(y \\mid x)`. If the test data follow another prior
    :math:`q` but the same class-conditional distributions (*label shift*),
    Bayes' rule gives the test posterior (Saerens et al., 2002, eq. 2.4):

    .. math::

        q(y \\mid x) = \\frac{w_y\\, p(y \\mid x)}{\\sum_k w_k\\, p(k \\mid x)},
        \\qquad w_y = \\frac{q_y}{\\pi_y}.

    This meta-estimator fits any classifier with ``predict_proba``;
    :meth:`estimate_prior` estimates :math:`q` from unlabelled test rows, and
    :meth:`predict_proba` and :meth:`predict` then return :math:`q(y \\mid x)`
    and its argmax, the Bayes rule for accuracy on the test distribution.

    ``method="em"`` (Saerens et al., 2002) starts from :math:`q^{(0)} = \\pi`
    and alternates the posteriors above with the mean posterior over the
    :math:`n` test rows,

    .. math::

        q^{(t+1)}_y = \\frac{1}{n} \\sum_{i=1}^{n}
        \\frac{w^{(t)}_y\\, p(y \\mid x_i)}{\\sum_k w^{(t)}_k\\, p(k \\mid x_i)},
        \\qquad w^{(t)}_y = \\frac{q^{(t)}_y}{\\pi_y},

    until no prior changes by ``tol`` or more; it is the maximum-likelihood
    estimate of :math:`q` when :math:`p(y \\mid x)` is calibrated.

    ``method="bbse"`` (black-box shift estimation, Lipton et al., 2018) needs
    only the hard predictions :math:`\\hat y`. With
    :math:`C_{jk} = P(y = j, \\hat y = k)` the joint confusion matrix of
    held-out source predictions and :math:`\\mu_k` the fraction of test rows
    predicted as class :math:`k`,
    :math:`\\mu_k = \\sum_j C_{jk}\\, q_j / P(y = j)`, so it solves
    :math:`C^\\top w = \\mu` by least squares, clips :math:`w` at 0 and returns
    :math:`q_j \\propto w_j\\, P(y = j)`. It is consistent even for a
    miscalibrated classifier, provided :math:`C` is invertible.

    Parameters
    ----------
    estimator : estimator object, default=None
        The classifier to adapt; it must implement ``fit`` and
        ``predict_proba`` (any scikit-learn classifier with probabilities, a
        pipeline, or a :class:`~sklearn_lt.LongTailClassifier`). It is cloned
        and fitted in :meth:`fit`, unless it is a
        :class:`~sklearn.frozen.FrozenEstimator`, which is used as is (see
        Notes). ``None`` means ``LogisticRegression()``.

    method : {"em", "bbse"}, default="em"
        How :meth:`estimate_prior` estimates the test prior: EM on the
        probabilities, or BBSE on the confusion matrix (see above).

    source_prior : {"train", "uniform"} or array-like of shape (n_classes,), \
            default="train"
        The prior :math:`\\pi` under which ``estimator``'s probabilities are
        posteriors: ``"train"`` is the class frequencies of the ``y`` given to
        :meth:`fit` (weighted by ``sample_weight``); ``"uniform"`` is for a
        model whose probabilities already target a balanced prior (see Notes);
        an array, aligned with ``classes_``, gives counts or proportions and is
        normalised.

    cv : int, cross-validation generator or iterable, default=5
        With ``method="bbse"``, the splits whose out-of-fold predictions build
        ``confusion_matrix_``. An integer is the number of folds of a
        ``StratifiedKFold(cv, shuffle=True, random_state=random_state)``; other
        values are handled by :func:`~sklearn.model_selection.check_cv`.
        Ignored with ``method="em"`` and for a ``FrozenEstimator``.

    max_iter : int >= 1, default=100
        Maximum number of EM iterations (``method="em"``).

    tol : float >= 0, default=1e-6
        EM stops when no class prior changes by ``tol`` or more in an
        iteration (``method="em"``).

    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling of the folds when ``method="bbse"`` and ``cv`` is
        an integer. Pass an int for reproducible results.

    n_jobs : int, default=None
        Number of jobs of the cross-validation with ``method="bbse"``. ``None``
        means 1 unless in a :obj:`joblib.parallel_backend` context.

    Attributes
    ----------
    estimator_ : estimator object
        The fitted wrapped classifier (the ``FrozenEstimator`` itself when
        ``estimator`` is one).

    classes_ : ndarray of shape (n_classes,)
        Class labels, those of ``estimator_``.

    class_counts_ : ndarray of shape (n_classes,), dtype int64
        Number of samples of each class in the ``y`` given to :meth:`fit`.

    source_prior_ : ndarray of shape (n_classes,)
        The prior :math:`\\pi` of the wrapped classifier; positive, sums to 1.
        A zero (a class absent from ``y``, or a zero in ``source_prior``) is
        replaced by the rarest positive value, as in
        :func:`sklearn_lt.weights.class_priors`.

    target_prior_ : ndarray of shape (n_classes,)
        The test prior :math:`q` used by the predict methods; sums to 1. Equal
        to ``source_prior_`` after :meth:`fit` (no shift), then the estimate of
        the last call to :meth:`estimate_prior`.

    confusion_matrix_ : ndarray of shape (n_classes, n_classes)
        Only with ``method="bbse"``: the joint distribution
        :math:`C_{jk} = P(y = j, \\hat y = k)` of the true (rows) and
        predicted (columns) classes of held-out source rows, as
        ``sklearn.metrics.confusion_matrix(y, y_pred, normalize="all")``.

    n_iter_ : int
        Only with ``method="em"``, after :meth:`estimate_prior`: the number of
        EM iterations run.

    n_features_in_ : int
        Number of features seen during :meth:`fit`, when ``estimator_`` exposes
        it.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features seen during :meth:`fit`, when ``estimator_``
        exposes them.

    See Also
    --------
    sklearn_lt.posthoc.LogitAdjustedClassifier : Re-weights to a balanced
        prior, known in advance, instead of an estimated one.
    sklearn.calibration.CalibratedClassifierCV : Calibrates ``predict_proba``,
        which EM assumes.

    Notes
    -----
    **Estimate, then predict.** :meth:`fit` assumes no shift
    (``target_prior_ = source_prior_``, so the predict methods return the
    wrapped classifier's probabilities); call :meth:`estimate_prior` on the
    unlabelled test data to adapt. The predict methods never estimate the prior
    from the ``X`` they are given: a prediction for one row does not depend on
    the other rows of the batch, and one estimate from a large unlabelled set
    serves any later batch, however small. To adapt transductively, call
    ``estimate_prior(X)`` then ``predict(X)``. Refitting, cloning and
    ``set_params`` followed by ``fit`` discard the estimate.

    **Outputs.** :meth:`predict_proba` returns :math:`q(y \\mid x)` as float64
    rows summing to 1; :meth:`predict_log_proba` its logarithm;
    :meth:`decision_function` the scores :math:`\\log p(y \\mid x) + \\log
    w_y`, of shape (n_samples, n_classes), or their difference
    :math:`s_1(x) - s_0(x)` of shape (n_samples,) for two classes, as
    scikit-learn's binary classifiers; :meth:`predict` their argmax. They are
    all computed from the wrapped classifier's ``predict_proba``, whatever
    other methods it has. Probabilities and priors are floored at the smallest
    positive float64 before the log, so a zero gives a very low but finite
    score.

    **Which source prior.** EM needs probabilities that are posteriors under
    ``source_prior_``. A model trained by plain risk minimisation (cross
    entropy, ``LogisticRegression``) estimates them under its training
    frequencies: keep ``source_prior="train"``. A model trained to target
    a balanced prior, such as ``LongTailClassifier(loss="balanced_softmax")``,
    ``loss="logit_adjusted"`` with ``tau=1``, ``loss="ce"`` with
    ``posthoc_tau=1``, class-balanced re-sampling from the first epoch, or a
    scikit-learn classifier with ``class_weight="balanced"``, needs
    ``source_prior="uniform"``. With a model in between (deferred
    re-weighting, focal or LDAM losses) neither is exact; prefer
    ``method="bbse"``, whose estimate of :math:`q` does not depend on
    ``source_prior`` (only the re-weighting does), or calibrate the model
    first. EM is biased by miscalibrated probabilities, an over-confident
    network's for instance; wrapping the estimator in
    :class:`~sklearn.calibration.CalibratedClassifierCV` corrects most of it
    (Alexandari et al., 2020).

    **Confusion matrix.** With ``method="bbse"``, :meth:`fit` fits
    ``estimator`` on all the data and computes ``confusion_matrix_`` from
    out-of-fold predictions (the argmax of
    :func:`~sklearn.model_selection.cross_val_predict`'s probabilities), so
    every labelled row serves both the model and the confusion matrix; the
    fold models stand in for the final one. A class that is never predicted,
    or never present, makes :math:`C` singular: the least-squares solution
    then gives such a class a prior of 0.

    **Frozen estimators.** A :class:`~sklearn.frozen.FrozenEstimator` is not
    refitted: :meth:`fit` only computes ``source_prior_`` from ``y`` and, with
    ``method="bbse"``, ``confusion_matrix_`` from the predictions on
    ``(X, y)`` directly. ``(X, y)`` should then be held-out data from the
    model's training distribution (or ``source_prior`` should be given).
    ``fit_params`` other than ``sample_weight`` are then unused. A label of
    ``y`` that is not in the frozen estimator's ``classes_`` raises a
    ``ValueError``.

    References
    ----------
    .. [1] M. Saerens, P. Latinne, C. Decaestecker, "Adjusting the outputs of
       a classifier to new a priori probabilities: a simple procedure",
       Neural Computation 14(1), 2002.
    .. [2] Z. C. Lipton, Y.-X. Wang, A. J. Smola, "Detecting and correcting
       for label shift with black box predictors", ICML 2018.
    .. [3] A. Alexandari, A. Kundaje, A. Shrikumar, "Maximum likelihood with
       bias-corrected calibration is hard-to-beat at label shift adaptation",
       ICML 2020.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn_lt.label_shift import LabelShiftAdapter
    >>> centers = [[0, 0], [2, 0], [0, 2]]
    >>> X_train, y_train = make_blobs([3000, 1500, 500], centers=centers,
    ...                               random_state=0)
    >>> X_test, y_test = make_blobs([500, 1500, 3000], centers=centers,
    ...                             random_state=1)
    >>> adapter = LabelShiftAdapter(LogisticRegression()).fit(X_train, y_train)
    >>> adapter.source_prior_
    array([0.6, 0.3, 0.1])
    >>> adapter.estimate_prior(X_test).round(2)
    array([0.08, 0.31, 0.61])
    >>> plain = adapter.estimator_.score(X_test, y_test)
    >>> adapted = adapter.score(X_test, y_test)
    >>> bool(adapted > plain + 0.05)
    True
    """

    _parameter_constraints: ClassVar[dict] = {
        "estimator": [HasMethods(["fit", "predict_proba"]), None],
        "method": [StrOptions({"em", "bbse"})],
        "source_prior": [StrOptions({"train", "uniform"}), "array-like"],
        "cv": ["cv_object"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        estimator=None,
        *,
        method="em",
        source_prior="train",
        cv=5,
        max_iter=100,
        tol=1e-6,
        random_state=None,
        n_jobs=None,
    ):
        self.estimator = estimator
        self.method = method
        self.source_prior = source_prior
        self.cv = cv
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _get_estimator(self):
        return LogisticRegression() if self.estimator is None else self.estimator

    @_fit_context(
        # The wrapped estimator is validated by its own fit.
        prefer_skip_nested_validation=False
    )
    def fit(self, X, y, **fit_params):
        """Fit the wrapped classifier, the source prior and BBSE's confusion matrix.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Labelled training data (held-out data for a ``FrozenEstimator``),
            in any form the wrapped estimator accepts.

        y : array-like of shape (n_samples,)
            Target labels.

        **fit_params : dict
            Parameters passed to the wrapped estimator's ``fit`` (also in the
            cross-validation of ``method="bbse"``). A ``sample_weight`` among
            them also weights ``source_prior="train"`` and
            ``confusion_matrix_``.

        Returns
        -------
        self : object
            The fitted adapter, with ``target_prior_ = source_prior_``.
        """
        estimator = self._get_estimator()
        X, y, y_idx, label_pos, frozen = fit_wrapped(self, estimator, X, y, fit_params)
        n_classes = self.classes_.shape[0]
        sample_weight = fit_params.get("sample_weight")
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, y, dtype=np.float64)

        self.class_counts_ = np.bincount(y_idx, minlength=n_classes).astype(np.int64)
        self.source_prior_ = self._get_source_prior(
            np.bincount(y_idx, weights=sample_weight, minlength=n_classes)
        )

        if self.method == "bbse":
            if frozen:
                proba = self.estimator_.predict_proba(X)
            else:
                if isinstance(self.cv, Integral):
                    cv = StratifiedKFold(
                        self.cv, shuffle=True, random_state=self.random_state
                    )
                else:
                    cv = check_cv(self.cv, y, classifier=True)
                oof = cross_val_predict(
                    clone(estimator),
                    X,
                    y,
                    cv=cv,
                    method="predict_proba",
                    n_jobs=self.n_jobs,
                    params=fit_params,
                )
                # cross_val_predict orders its columns as np.unique(y).
                proba = np.zeros((y.shape[0], n_classes))
                proba[:, label_pos] = oof
            y_pred = np.argmax(proba, axis=1)
            confusion = np.zeros((n_classes, n_classes))
            np.add.at(
                confusion,
                (y_idx, y_pred),
                1.0 if sample_weight is None else sample_weight,
            )
            total = confusion.sum()
            if not total > 0:
                raise ValueError("The sample weights of fit sum to zero.")
            self.confusion_matrix_ = confusion / total

        self.target_prior_ = self.source_prior_.copy()
        return self

    def _get_source_prior(self, class_weight):
        n_classes = self.classes_.shape[0]
        if isinstance(self.source_prior, str):
            if self.source_prior == "uniform":
                return np.full(n_classes, 1.0 / n_classes)
            prior = class_weight  # "train"
        else:
            prior = np.asarray(self.source_prior, dtype=np.float64)
            if prior.shape != (n_classes,):
                raise ValueError(
                    f"source_prior has shape {prior.shape}, expected ({n_classes},):"
                    f" one value per class of classes_ {self.classes_.tolist()!r}."
                )
        if not np.all(np.isfinite(prior)) or np.any(prior < 0) or prior.sum() <= 0:
            raise ValueError(
                "The source prior must be finite, non-negative and not all zero; "
                f"got {prior.tolist()!r}."
            )
        return class_priors(prior)

    def _base_proba(self, X):
        check_is_fitted(self)
        proba = np.asarray(self.estimator_.predict_proba(X), dtype=np.float64)
        n_classes = self.classes_.shape[0]
        if proba.ndim != 2 or proba.shape[1] != n_classes:
            raise ValueError(
                f"The wrapped estimator's predict_proba returned shape "
                f"{proba.shape}; expected (n_samples, {n_classes})."
            )
        return proba

    def estimate_prior(self, X):
        """Estimate the class prior of unlabelled data and adapt to it.

        Stores the estimate in ``target_prior_``, which the predict methods
        then use; ``n_iter_`` too with ``method="em"``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Unlabelled rows of the test distribution. The more rows, the
            better the estimate; they need not be the rows to predict.

        Returns
        -------
        target_prior : ndarray of shape (n_classes,), dtype float64
            The estimated prior, aligned with ``classes_``; it sums to 1. A
            copy of ``target_prior_``.
        """
        if not get_config()["skip_parameter_validation"]:
            self._validate_params()
        proba = self._base_proba(X)
        if proba.shape[0] == 0:
            raise ValueError("estimate_prior needs at least one row of X.")
        if self.method == "em":
            prior, self.n_iter_, converged = _em_prior(
                proba, self.source_prior_, self.max_iter, self.tol
            )
            if not converged:
                warnings.warn(
                    f"EM did not converge in max_iter={self.max_iter} iterations "
                    f"(tol={self.tol}); increase max_iter.",
                    ConvergenceWarning,
                    stacklevel=2,
                )
        else:
            if not hasattr(self, "confusion_matrix_"):
                raise ValueError(
                    "method='bbse' needs the confusion_matrix_ that fit computes "
                    "with method='bbse'; refit after changing method."
                )
            prior = _bbse_prior(
                self.confusion_matrix_,
                np.argmax(proba, axis=1),
                self.classes_.shape[0],
            )
        self.target_prior_ = prior
        return prior.copy()

    def _scores(self, X):
        proba = self._base_proba(X)
        log_w = _safe_log(self.target_prior_) - np.log(self.source_prior_)
        return _safe_log(proba) + log_w

    def decision_function(self, X):
        """Adapted log-scores :math:`\\log p(y \\mid x) + \\log(q_y / \\pi_y)`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            Scores in the order of ``classes_``. For two classes, the score of
            ``classes_[1]`` minus that of ``classes_[0]``.
        """
        scores = self._scores(X)
        if scores.shape[1] == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def predict(self, X):
        """Predict the class of highest probability under ``target_prior_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels.
        """
        scores = self._scores(X)  # checks that the adapter is fitted
        return self.classes_[np.argmax(scores, axis=1)]

    def predict_proba(self, X):
        """Probabilities :math:`q(y \\mid x) \\propto p(y \\mid x)\\, q_y / \\pi_y`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes), dtype float64
            The wrapped classifier's probabilities re-weighted to
            ``target_prior_``; rows sum to 1.
        """
        return softmax(self._scores(X), axis=1)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed stably.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes), dtype float64
            Log-probabilities in the order of ``classes_``.
        """
        return log_softmax(self._scores(X), axis=1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self._get_estimator())
        for name in (
            "sparse",
            "allow_nan",
            "pairwise",
            "categorical",
            "string",
            "positive_only",
        ):
            setattr(tags.input_tags, name, getattr(inner.input_tags, name))
        tags.non_deterministic = inner.non_deterministic
        if inner.classifier_tags is not None:
            tags.classifier_tags.poor_score = inner.classifier_tags.poor_score
        return tags
