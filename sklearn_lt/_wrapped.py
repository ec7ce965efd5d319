"""Fitting the classifier wrapped by a meta-estimator (post-hoc, label shift)."""

import numpy as np
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.utils import assert_all_finite, indexable
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

__all__ = ["fit_wrapped"]


def fit_wrapped(meta, estimator, X, y, fit_params):
    """Fit (or take, when frozen) ``estimator`` for ``meta`` and encode ``y``.

    Sets ``meta.estimator_``, ``meta.classes_`` (the wrapped estimator's order)
    and, when the wrapped estimator has them, ``n_features_in_`` and
    ``feature_names_in_``.

    Returns
    -------
    X, y : indexable
        The validated data.
    y_idx : ndarray of int
        The position of each label of ``y`` in ``meta.classes_``.
    label_pos : ndarray of int
        The position of each of ``np.unique(y)`` in ``meta.classes_`` (the
        column order of ``cross_val_predict``).
    frozen : bool
        Whether ``estimator`` is a ``FrozenEstimator`` (used as it is).
    """
    if y is not None:
        assert_all_finite(y, input_name="y")
    check_classification_targets(y)
    X, y = indexable(X, y)
    y = column_or_1d(y, warn=True)
    frozen = isinstance(estimator, FrozenEstimator)
    meta.estimator_ = estimator if frozen else clone(estimator).fit(X, y, **fit_params)
    meta.classes_ = np.asarray(meta.estimator_.classes_)
    for attr in ("n_features_in_", "feature_names_in_"):
        if hasattr(meta.estimator_, attr):
            setattr(meta, attr, getattr(meta.estimator_, attr))
    y_labels, y_inverse = np.unique(y, return_inverse=True)
    position = {c: i for i, c in enumerate(meta.classes_.tolist())}
    unknown = [c for c in y_labels.tolist() if c not in position]
    if unknown:
        raise ValueError(
            f"y contains labels {unknown!r} that are not in the classes_ "
            f"{meta.classes_.tolist()!r} of the wrapped estimator."
        )
    label_pos = np.array([position[c] for c in y_labels.tolist()], dtype=np.intp)
    return X, y, label_pos[y_inverse.ravel()], label_pos, frozen
