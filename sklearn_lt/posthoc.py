"""Post-hoc corrections of a fitted classifier's predictions for long-tailed data.

:class:`LogitAdjustedClassifier` wraps any scikit-learn classifier with
``predict_proba`` and subtracts ``tau * log(prior)`` from its log-probabilities
(Menon et al., 2021, eq. 9), so that it predicts for balanced error instead of
plain error. It needs no PyTorch.
"""

import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import StratifiedKFold, check_cv, cross_val_predict
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

from ._compat import HasMethods, Interval, StrOptions, _fit_context
from ._wrapped import fit_wrapped
from .weights import class_priors

__all__ = ["LogitAdjustedClassifier"]

# Probabilities are floored at the smallest positive float64 before the log:
# a probability of exactly 0 gives a very low but finite score (about -708)
# instead of -inf, and no positive probability is changed.
_TINY = np.finfo(np.float64).tiny

_DEFAULT_TAU_GRID = np.arange(21) / 10  # 0, 0.1, ..., 2 (exact decimals)


def _adjusted_scores(proba, log_prior, tau):
    """``log p - tau * log prior``, finite, float64, shape (n_samples, n_classes)."""
    proba = np.asarray(proba, dtype=np.float64)
    return np.log(np.clip(proba, _TINY, None)) - tau * log_prior


def _decision_from_scores(scores):
    if scores.shape[1] == 2:
        return scores[:, 1] - scores[:, 0]
    return scores


class _PrecomputedScores(ClassifierMixin, BaseEstimator):
    """Fitted stand-in serving precomputed adjusted scores to a scorer.

    Each row of ``X`` holds the index of a sample in ``scores``, so that any
    scikit-learn scorer can evaluate the out-of-fold predictions of one ``tau``
    without refitting anything.
    """

    def __init__(self, classes, scores):
        self.classes = classes
        self.scores = scores
        self.classes_ = classes

    def __sklearn_is_fitted__(self):
        return True

    def _rows(self, X):
        return self.scores[np.asarray(X)[:, 0].astype(np.intp)]

    def decision_function(self, X):
        return _decision_from_scores(self._rows(X))

    def predict(self, X):
        return self.classes_[np.argmax(self._rows(X), axis=1)]

    def predict_proba(self, X):
        return softmax(self._rows(X), axis=1)

    def predict_log_proba(self, X):
        return log_softmax(self._rows(X), axis=1)


# Above this mean per-class share of examples whose true class has probability
# exactly 0, fit warns (saturated HistGradientBoosting on Shuttle: 0.74; the
# tabular suite's other sets and models, random forests included: <= 0.02).
_UNREACHABLE_WARNING = 0.1


def _check_adjustable(proba, y_idx, mean_scores):
    """Warn when the tuning data shows that the adjustment cannot work.

    ``proba`` are the (out-of-fold) probabilities of the examples of encoded
    labels ``y_idx``; ``mean_scores`` the mean score of each ``tau``. An
    example whose true class has probability exactly 0 is out of reach of
    every finite ``tau``: when that is a large share of the classes' examples,
    the wrapped classifier's probabilities are saturated.
    """
    out_of_reach = proba[np.arange(y_idx.shape[0]), y_idx] == 0.0
    present = np.unique(y_idx)
    share = float(np.mean([out_of_reach[y_idx == c].mean() for c in present]))
    if share > _UNREACHABLE_WARNING:
        message = (
            f"LogitAdjustedClassifier: on average over the classes, {share:.0%} of "
            "the examples get probability exactly 0 for their own class from "
            "the wrapped classifier (out of fold), which no tau can lift: its "
            "probabilities are saturated and the adjustment can only fail on "
            "them. A HistGradientBoostingClassifier does this when tiny classes "
            "drive its leaf values to extremes; l2_regularization=1.0 keeps "
            "them finite."
        )
    elif mean_scores.shape[0] > 1 and np.ptp(mean_scores) == 0:
        message = (
            "LogitAdjustedClassifier: every tau of tau_grid gave the same "
            f"cross-validated score ({mean_scores[0]:.4f}): the adjustment "
            "changes no prediction."
        )
    else:
        return
    warnings.warn(message, UserWarning, stacklevel=4)


class LogitAdjustedClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Post-hoc logit adjustment of a probabilistic classifier.

    A classifier trained by plain (cross-entropy) risk minimisation on
    long-tailed data estimates :math:`p(y \\mid x)`, which favours the frequent
    classes. Menon et al. (2021) show that the Bayes-optimal classifier for the
    *balanced* error is :math:`\\arg\\max_y p(y \\mid x) / \\pi_y`, with
    :math:`\\pi` the training class prior, and propose the post-hoc
    adjustment (their eq. 9):

    .. math::

        \\hat y(x) = \\arg\\max_{y}\\; \\log p(y \\mid x) - \\tau \\log \\pi_y .

    This meta-estimator fits any classifier with ``predict_proba`` and predicts
    with the adjusted scores :math:`s_y(x) = \\log p(y \\mid x) - \\tau \\log
    \\pi_y`. ``tau=1`` is the balanced-error rule for a calibrated classifier;
    ``tau="auto"`` tunes :math:`\\tau` by cross-validation.

    Parameters
    ----------
    estimator : estimator object, default=None
        The classifier to adjust; it must implement ``fit`` and
        ``predict_proba`` (e.g. :class:`~sklearn.linear_model.LogisticRegression`,
        :class:`~sklearn.ensemble.HistGradientBoostingClassifier`, a pipeline
        ending in a classifier). It is cloned and fitted in :meth:`fit`, unless
        it is a :class:`~sklearn.frozen.FrozenEstimator`, which is used as is
        (see Notes). ``None`` means ``LogisticRegression()``.

    tau : float >= 0 or "auto", default=1.0
        Strength of the adjustment. ``0`` keeps the wrapped classifier's
        predictions; ``1`` is the balanced-error rule of Menon et al.;
        ``"auto"`` picks the value of ``tau_grid`` with the best
        cross-validated ``scoring``.

    cv : int, cross-validation generator or iterable, default=5
        Splits used to tune ``tau`` when ``tau="auto"`` (otherwise ignored). An
        integer is the number of folds of a
        ``StratifiedKFold(cv, shuffle=True, random_state=random_state)``; other
        values are handled by :func:`~sklearn.model_selection.check_cv`.

    tau_grid : array-like of shape (n_taus,), default=None
        Non-negative candidate values of ``tau`` for ``tau="auto"``. ``None``
        means the 21 values 0, 0.1, ..., 2.

    scoring : str or callable, default="balanced_accuracy"
        Criterion maximised by ``tau="auto"``: a scikit-learn scorer name or a
        callable ``scorer(estimator, X, y)``. Scorers based on ``predict``,
        ``predict_proba`` or ``decision_function`` all see the adjusted outputs.

    prior : array-like of shape (n_classes,), default=None
        Class prior :math:`\\pi` to adjust for, aligned with ``classes_``
        (counts or proportions; it is normalised). ``None`` means the class
        frequencies of ``y`` in :meth:`fit`. Pass it when the wrapped model was
        not trained under the frequencies of ``y``, e.g. a pipeline that
        resamples before the classifier: after balanced over-sampling the
        classifier's own prior is uniform, ``prior=np.ones(n_classes)``, and the
        adjustment has no effect.

    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling of the folds when ``tau="auto"`` and ``cv`` is an
        integer. Pass an int for reproducible results.

    n_jobs : int, default=None
        Number of jobs of the cross-validation when ``tau="auto"``. ``None``
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

    class_prior_ : ndarray of shape (n_classes,)
        The prior :math:`\\pi` used in the adjustment; it sums to 1. Without
        ``prior``, these are the class frequencies of ``y`` (weighted by
        ``sample_weight`` when it is passed to :meth:`fit`), with zeros
        replaced as described in Notes.

    tau_ : float
        The ``tau`` used for prediction (the tuned one for ``tau="auto"``).

    best_score_ : float
        Mean cross-validated score of ``tau_``. Only when ``tau="auto"``.

    cv_results_ : dict of ndarrays
        Only when ``tau="auto"``: ``"tau"`` (the grid), ``"mean_test_score"``,
        ``"std_test_score"`` and ``"split{k}_test_score"`` for each split k,
        each of shape (n_taus,); ``pandas.DataFrame(cv_results_)`` tabulates
        them.

    n_features_in_ : int
        Number of features seen during :meth:`fit`, when ``estimator_`` exposes
        it.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features seen during :meth:`fit`, when ``estimator_``
        exposes them.

    See Also
    --------
    sklearn.model_selection.TunedThresholdClassifierCV : Tunes the decision
        threshold of a binary classifier by cross-validation.
    sklearn.calibration.CalibratedClassifierCV : Calibrates ``predict_proba``,
        which makes ``tau=1`` closer to the balanced-error rule.
    sklearn_lt.metrics.shot_accuracy : Accuracy per shot group.

    Notes
    -----
    **Outputs.** :meth:`predict` returns ``classes_[argmax_y s_y(x)]``;
    :meth:`predict_proba` returns the softmax of the adjusted scores (the
    adjusted, renormalised probabilities :math:`\\propto p(y \\mid x)
    \\pi_y^{-\\tau}`) as float64 rows summing to 1; :meth:`decision_function`
    returns :math:`s(x)` of shape (n_samples, n_classes), or
    :math:`s_1(x) - s_0(x)` of shape (n_samples,) for two classes, the
    score of ``classes_[1]``, as scikit-learn's binary classifiers.
    Probabilities are floored at the smallest positive float64 before the log,
    so a zero probability gives a very low but finite score. With ``tau_ == 0``
    :meth:`predict` returns exactly ``estimator_.predict(X)``.

    **Zero-count classes.** ``classes_`` can hold a class absent from ``y``
    (with a ``FrozenEstimator``, or a ``prior`` with zeros). Its prior would be
    0 and its adjustment :math:`+\\infty`; instead it is treated as if it were
    as rare as the rarest observed class
    (:func:`sklearn_lt.weights.class_priors`, the rule of the whole package),
    which gives it a finite boost. A label of
    ``y`` that is not in the frozen estimator's ``classes_`` raises a
    ``ValueError``.

    **Frozen estimators.** A :class:`~sklearn.frozen.FrozenEstimator` is not
    refitted: :meth:`fit` only estimates the prior from ``y`` (and, for
    ``tau="auto"``, tunes ``tau`` on ``(X, y)`` directly, without
    cross-validation). ``fit_params`` other than ``sample_weight`` are then
    unused. The ``(X, y)`` given should then be held-out data drawn from the
    training distribution, or ``prior`` should be given (e.g. the inner
    model's training class counts): the adjustment corrects for the prior the
    model learnt, i.e. its training prior.

    **Tuning.** With ``tau="auto"``, :meth:`fit` computes out-of-fold
    probabilities with :func:`~sklearn.model_selection.cross_val_predict`,
    scores every ``tau`` of ``tau_grid`` on each test fold (unweighted), keeps
    the best mean score, ties broken towards ``tau = 1`` (then the smaller
    ``tau``), and finally fits ``estimator`` on all the data, in the spirit of
    :class:`~sklearn.model_selection.TunedThresholdClassifierCV`. Only the
    predictions change with ``tau``, so the wrapped classifier is fitted once
    per fold, not once per candidate.

    **Saturated probabilities.** An example whose own class gets probability
    exactly 0 stays wrong whatever ``tau``. With ``tau="auto"``, :meth:`fit`
    warns when such examples are more than 10% of the classes' examples on
    average (out of fold), or when every ``tau`` scores the same. Gradient
    boosting does this on well-separated data with tiny classes (Shuttle in
    the benchmarks: 42% balanced accuracy with a default
    ``HistGradientBoostingClassifier``); ``l2_regularization=1.0`` keeps its
    probabilities finite.

    Logit adjustment belongs to a plainly trained model. Combining it with a
    classifier trained with a logit-adjusted or balanced-softmax loss adjusts
    twice (Menon et al., section 5.3).

    References
    ----------
    .. [1] A. K. Menon, S. Jayasumana, A. S. Rawat, H. Jain, A. Veit,
       S. Kumar, "Long-tail learning via logit adjustment", ICLR 2021.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.metrics import balanced_accuracy_score
    >>> from sklearn.model_selection import train_test_split
    >>> from sklearn_lt.posthoc import LogitAdjustedClassifier
    >>> X, y = make_classification(n_samples=2000, n_classes=3, n_informative=4,
    ...                            weights=[0.8, 0.15, 0.05], class_sep=0.8,
    ...                            random_state=0)
    >>> X_train, X_test, y_train, y_test = train_test_split(
    ...     X, y, stratify=y, random_state=0)
    >>> plain = LogisticRegression().fit(X_train, y_train)
    >>> adjusted = LogitAdjustedClassifier(LogisticRegression(), tau=1.0)
    >>> adjusted = adjusted.fit(X_train, y_train)
    >>> adjusted.class_prior_.round(2)
    array([0.8 , 0.15, 0.05])
    >>> base = balanced_accuracy_score(y_test, plain.predict(X_test))
    >>> better = balanced_accuracy_score(y_test, adjusted.predict(X_test))
    >>> bool(better > base)
    True
    >>> tuned = LogitAdjustedClassifier(LogisticRegression(), tau="auto",
    ...                                 random_state=0).fit(X_train, y_train)
    >>> bool(0 < tuned.tau_ <= 2)
    True
    """

    _parameter_constraints: ClassVar[dict] = {
        "estimator": [HasMethods(["fit", "predict_proba"]), None],
        "tau": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "cv": ["cv_object"],
        "tau_grid": ["array-like", None],
        "scoring": [StrOptions(set(get_scorer_names())), callable],
        "prior": ["array-like", None],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        estimator=None,
        *,
        tau=1.0,
        cv=5,
        tau_grid=None,
        scoring="balanced_accuracy",
        prior=None,
        random_state=None,
        n_jobs=None,
    ):
        self.estimator = estimator
        self.tau = tau
        self.cv = cv
        self.tau_grid = tau_grid
        self.scoring = scoring
        self.prior = prior
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _get_estimator(self):
        return LogisticRegression() if self.estimator is None else self.estimator

    @_fit_context(
        # The wrapped estimator is validated by its own fit.
        prefer_skip_nested_validation=False
    )
    def fit(self, X, y, **fit_params):
        """Fit the wrapped classifier, the class prior and, if asked, ``tau``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, in any form the wrapped estimator accepts.

        y : array-like of shape (n_samples,)
            Target labels.

        **fit_params : dict
            Parameters passed to the wrapped estimator's ``fit`` (also in the
            cross-validation of ``tau="auto"``). A ``sample_weight`` among them
            also weights the class prior.

        Returns
        -------
        self : object
            The fitted classifier.
        """
        estimator = self._get_estimator()
        X, y, y_idx, label_pos, frozen = fit_wrapped(self, estimator, X, y, fit_params)
        n_classes = self.classes_.shape[0]
        self.class_counts_ = np.bincount(y_idx, minlength=n_classes).astype(np.int64)
        self.class_prior_ = self._compute_prior(y_idx, fit_params.get("sample_weight"))
        log_prior = np.log(self.class_prior_)

        if self.tau != "auto":
            self.tau_ = float(self.tau)
            return self

        grid = self._get_tau_grid()
        if frozen:
            proba = self.estimator_.predict_proba(X)
            splits = [(np.array([], dtype=np.intp), np.arange(y.shape[0]))]
        else:
            if isinstance(self.cv, Integral):
                cv = StratifiedKFold(
                    self.cv, shuffle=True, random_state=self.random_state
                )
            else:
                cv = check_cv(self.cv, y, classifier=True)
            splits = list(cv.split(X, y))
            oof = cross_val_predict(
                clone(estimator),
                X,
                y,
                cv=splits,
                method="predict_proba",
                n_jobs=self.n_jobs,
                params=fit_params,
            )
            # cross_val_predict orders its columns as np.unique(y).
            proba = np.zeros((y.shape[0], n_classes))
            proba[:, label_pos] = oof

        scorer = check_scoring(self, scoring=self.scoring)
        scores = np.empty((grid.shape[0], len(splits)))
        for t, tau in enumerate(grid):
            view = _PrecomputedScores(
                self.classes_, _adjusted_scores(proba, log_prior, tau)
            )
            for k, (_, test) in enumerate(splits):
                scores[t, k] = scorer(view, test.reshape(-1, 1), y[test])

        mean = scores.mean(axis=1)
        if np.all(np.isnan(mean)):
            raise ValueError(
                f"Every candidate tau got a NaN score with scoring={self.scoring!r}."
            )
        _check_adjustable(proba, y_idx, mean)
        best = np.nanmax(mean)
        candidates = np.flatnonzero(mean >= best - 1e-12 * max(1.0, abs(best)))
        # Ties: closest to tau = 1, then the smaller tau.
        chosen = min(candidates, key=lambda i: (abs(grid[i] - 1.0), grid[i]))
        self.tau_ = float(grid[chosen])
        self.best_score_ = float(mean[chosen])
        self.cv_results_ = {
            "tau": grid,
            "mean_test_score": mean,
            "std_test_score": scores.std(axis=1),
            **{f"split{k}_test_score": scores[:, k] for k in range(len(splits))},
        }
        return self

    def _compute_prior(self, y_idx, sample_weight):
        n_classes = self.classes_.shape[0]
        if self.prior is None:
            if sample_weight is None:
                prior = np.bincount(y_idx, minlength=n_classes).astype(np.float64)
            else:
                sample_weight = np.asarray(sample_weight, dtype=np.float64)
                if sample_weight.shape != y_idx.shape:
                    raise ValueError(
                        f"sample_weight has shape {sample_weight.shape}, expected "
                        f"{y_idx.shape}."
                    )
                prior = np.bincount(y_idx, weights=sample_weight, minlength=n_classes)
        else:
            prior = np.asarray(self.prior, dtype=np.float64)
            if prior.shape != (n_classes,):
                raise ValueError(
                    f"prior has shape {prior.shape}, expected ({n_classes},): one "
                    f"value per class of classes_ {self.classes_.tolist()!r}."
                )
        if not np.all(np.isfinite(prior)) or np.any(prior < 0) or prior.sum() <= 0:
            raise ValueError(
                "The class prior must be finite, non-negative and not all zero; "
                f"got {prior.tolist()!r}."
            )
        return class_priors(prior)

    def _get_tau_grid(self):
        if self.tau_grid is None:
            return _DEFAULT_TAU_GRID.copy()
        grid = np.asarray(self.tau_grid, dtype=np.float64)
        if (
            grid.ndim != 1
            or grid.shape[0] == 0
            or not np.all(np.isfinite(grid))
            or np.any(grid < 0)
        ):
            raise ValueError(
                "tau_grid must be a non-empty 1d array of finite, non-negative "
                f"values; got {self.tau_grid!r}."
            )
        return grid

    def _scores(self, X):
        check_is_fitted(self)
        proba = self.estimator_.predict_proba(X)
        return _adjusted_scores(proba, np.log(self.class_prior_), self.tau_)

    def decision_function(self, X):
        """Adjusted log-scores :math:`\\log p(y \\mid x) - \\tau \\log \\pi_y`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            Adjusted scores, in the order of ``classes_``. For two classes, the
            score of ``classes_[1]`` minus that of ``classes_[0]``.
        """
        return _decision_from_scores(self._scores(X))

    def predict(self, X):
        """Predict the class with the highest adjusted score.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels. With ``tau_ == 0``, those of ``estimator_``.
        """
        check_is_fitted(self)
        if self.tau_ == 0:
            return self.estimator_.predict(X)
        return self.classes_[np.argmax(self._scores(X), axis=1)]

    def predict_proba(self, X):
        """Adjusted probabilities :math:`\\propto p(y \\mid x)\\, \\pi_y^{-\\tau}`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes), dtype float64
            Softmax of the adjusted scores; rows sum to 1.
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
            Log-softmax of the adjusted scores.
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
