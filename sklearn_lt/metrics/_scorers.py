"""Scorers of one shot group's accuracy, for model selection."""

import numpy as np
from sklearn.utils.validation import column_or_1d

from .._shot_groups import (
    check_group_params,
    fitted_class_counts,
    with_unseen_labels,
)
from ._shot_accuracy import shot_accuracy

__all__ = ["make_shot_scorer"]

_SCORER_GROUPS = {
    "many": "shots",
    "medium": "shots",
    "few": "shots",
    "head": "quantile",
    "middle": "quantile",
    "tail": "quantile",
    "overall": "shots",
}


class _ShotScorer:
    """Scorer ``(estimator, X, y) -> group accuracy`` using ``class_counts_``.

    :func:`sklearn.metrics.make_scorer` gives the metric only ``(y_true,
    y_pred)``; the shot groups also need the training counts, which only the
    fitted estimator knows. Hence this small callable, usable wherever
    scikit-learn accepts a scorer.
    """

    def __init__(self, group, many, few):
        self.group = group
        self.many = many
        self.few = few

    def __call__(self, estimator, X, y_true):
        class_counts = fitted_class_counts(estimator)
        if class_counts is None:
            has_classes = getattr(estimator, "classes_", None) is not None
            raise AttributeError(
                f"{self!r} needs a fitted estimator with the attributes classes_ "
                f"and class_counts_ (training count of each class); "
                f"{type(estimator).__name__} has "
                f"{'no class_counts_' if has_classes else 'no classes_'}. Wrap "
                "it in sklearn_lt.posthoc.LogitAdjustedClassifier (tau=0 keeps its "
                "predictions), or compute shot_accuracy with y_train."
            )
        y_true = column_or_1d(y_true)
        classes = np.asarray(estimator.classes_)
        scores = shot_accuracy(
            y_true,
            estimator.predict(X),
            class_counts=class_counts,
            # Strings keep their own width: "horse" must not become "ho".
            labels=with_unseen_labels(
                classes,
                y_true,
                dtype=None if classes.dtype.kind in "USO" else classes.dtype,
            ),
            many=self.many,
            few=self.few,
            groups=_SCORER_GROUPS[self.group],
        )
        return scores[self.group]

    def __repr__(self):
        return (
            f"make_shot_scorer(group={self.group!r}, many={self.many!r}, "
            f"few={self.few!r})"
        )


def make_shot_scorer(group="few", *, many=100, few=20):
    """Scorer of one shot group's accuracy, for ``scoring=`` in model selection.

    The scorer predicts ``X`` with the fitted estimator and returns
    ``shot_accuracy(y, estimator.predict(X), ...)[group]``, taking the training
    counts from the estimator's ``class_counts_`` (aligned with ``classes_``),
    i.e. the counts of the fold it was fitted on.

    Parameters
    ----------
    group : {"few", "medium", "many", "head", "middle", "tail", "overall"}, \
            default="few"
        The group whose accuracy is returned. ``"many"``, ``"medium"``,
        ``"few"`` use the thresholds ``many`` and ``few``; ``"head"``,
        ``"middle"``, ``"tail"`` the quantile groups; ``"overall"`` is the
        balanced accuracy (scikit-learn's ``"balanced_accuracy"`` is the same
        and needs no ``class_counts_``).

    many : float, default=100
        Many-shot threshold, see :func:`shot_accuracy`.

    few : float, default=20
        Few-shot threshold, see :func:`shot_accuracy`.

    Returns
    -------
    scorer : callable
        A callable ``scorer(estimator, X, y)`` returning a float (greater is
        better), accepted by :class:`~sklearn.model_selection.GridSearchCV`,
        :func:`~sklearn.model_selection.cross_validate` and friends, alone or
        in a dict of scorers. It raises an ``AttributeError`` if the estimator
        has no ``class_counts_``.

    See Also
    --------
    shot_accuracy : The metric.
    sklearn.metrics.get_scorer_names : scikit-learn's scorer names, which
        already include ``"balanced_accuracy"`` and ``"f1_macro"``.

    Notes
    -----
    :func:`sklearn.metrics.make_scorer` cannot build this scorer: its metric
    only sees ``(y_true, y_pred)``, not the estimator's training counts.

    The sklearn_lt classifiers and
    :class:`~sklearn_lt.posthoc.LogitAdjustedClassifier` expose
    ``class_counts_``. A test class absent from the training fold counts as a
    class with zero training examples (a few-shot class). A group without test
    classes scores NaN; :class:`~sklearn.model_selection.GridSearchCV` then
    warns and ranks that candidate last.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import cross_val_score
    >>> from sklearn_lt.metrics import make_shot_scorer
    >>> from sklearn_lt.posthoc import LogitAdjustedClassifier
    >>> X, y = make_classification(n_samples=600, n_classes=3, n_informative=4,
    ...                            weights=[0.7, 0.2, 0.1], random_state=0)
    >>> scorer = make_shot_scorer("tail")
    >>> scorer
    make_shot_scorer(group='tail', many=100, few=20)
    >>> for tau in [0.0, 1.0]:
    ...     clf = LogitAdjustedClassifier(LogisticRegression(), tau=tau)
    ...     scores = cross_val_score(clf, X, y, scoring=scorer, cv=3)
    ...     print(tau, scores.round(2))
    0.0 [0.4  0.3  0.33]
    1.0 [0.55 0.55 0.57]
    """
    if group not in _SCORER_GROUPS:
        raise ValueError(
            f"group must be one of {sorted(_SCORER_GROUPS)}, got {group!r}."
        )
    check_group_params("shots", many, few)
    return _ShotScorer(group, many, few)
