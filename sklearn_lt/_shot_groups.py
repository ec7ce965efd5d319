"""Shot groups: classes grouped by their number of training examples.

Private: the one place that knows how classes are grouped (many / medium / few
shots, or head / middle / tail thirds), how test labels are matched with
training counts, and how a fitted estimator's counts are read. Used by
:mod:`sklearn_lt.metrics`, :mod:`sklearn_lt.plotting` and :mod:`sklearn_lt.demo`.
"""

from collections.abc import Mapping
from numbers import Real

import numpy as np
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import column_or_1d

__all__ = [
    "GROUP_NAMES",
    "assign_groups",
    "check_group_params",
    "check_targets",
    "class_table",
    "counts_by_label",
    "fitted_class_counts",
    "group_means",
    "with_unseen_labels",
]

#: Group names, head to tail, of each grouping.
GROUP_NAMES = {
    "shots": ("many", "medium", "few"),
    "quantile": ("head", "middle", "tail"),
}


def check_targets(y_true, y_pred):
    """Return ``y_true`` and ``y_pred`` as 1d arrays of equal, non-zero length."""
    y_true = column_or_1d(y_true)
    y_pred = column_or_1d(y_pred)
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(
            "y_true and y_pred have different lengths: "
            f"{y_true.shape[0]} and {y_pred.shape[0]}."
        )
    if y_true.shape[0] == 0:
        raise ValueError("y_true and y_pred are empty.")
    return y_true, y_pred


def check_group_params(groups, many, few):
    """Validate the grouping and the many-shot and few-shot thresholds."""
    if groups not in GROUP_NAMES:
        raise ValueError(
            f"groups must be one of {sorted(GROUP_NAMES)}, got {groups!r}."
        )
    for name, value in (("many", many), ("few", few)):
        if (
            not isinstance(value, Real)
            or isinstance(value, bool)
            or not np.isfinite(value)
            or value < 0
        ):
            raise ValueError(f"{name} must be a non-negative number, got {value!r}.")
    if few > many:
        raise ValueError(f"few must be <= many, got few={few!r} and many={many!r}.")


def _encode(y, index, missing):
    """Position of each element of ``y`` in ``index`` (a dict), else ``missing``."""
    uniques, inverse = np.unique(y, return_inverse=True)
    codes = np.array([index.get(v, missing) for v in uniques.tolist()], np.intp)
    return codes[inverse.ravel()]


def _check_labels(labels):
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] == 0:
        raise ValueError("labels must be a non-empty 1d array-like.")
    if len(set(labels.tolist())) != labels.shape[0]:
        raise ValueError("labels contains duplicates.")
    return labels


def _known_counts(y_true, y_pred, class_counts, y_train, labels):
    """Training count of each label with one, and the default labels to evaluate."""
    if y_train is not None:
        y_train = column_or_1d(y_train)
        if y_train.shape[0] == 0:
            raise ValueError("y_train is empty.")
        train_labels, counts = np.unique(y_train, return_counts=True)
        return counts_by_label(train_labels, counts), train_labels
    if isinstance(class_counts, Mapping) or hasattr(class_counts, "items"):
        # A dict, or a pandas Series such as y.value_counts() (keyed by label).
        known = dict(class_counts.items())
        if len(known) == 0:
            raise ValueError("class_counts is empty.")
        return known, np.asarray(sorted(known))
    counts = np.asarray(class_counts)
    if counts.ndim != 1 or counts.shape[0] == 0:
        raise ValueError(
            "class_counts must be a dict or a non-empty 1d array-like, got an "
            f"array of shape {counts.shape}."
        )
    aligned = labels if labels is not None else unique_labels(y_true, y_pred)
    if aligned.shape[0] != counts.shape[0]:
        raise ValueError(
            f"class_counts has {counts.shape[0]} entries but there are "
            f"{aligned.shape[0]} labels {aligned.tolist()!r}; pass labels "
            "aligned with class_counts, or class_counts as a dict."
        )
    return counts_by_label(aligned, counts), aligned


def class_table(y_true, y_pred, *, class_counts, y_train, labels):
    """Training counts and per-class test statistics of the evaluated labels.

    Returns
    -------
    labels : ndarray of shape (n_labels,)
        The evaluated labels.
    train_counts : ndarray of shape (n_labels,), dtype float64
    support : ndarray of shape (n_labels,), dtype int64
        Number of test samples of each label.
    recall : ndarray of shape (n_labels,), dtype float64
        Per-class recall, NaN for labels absent from ``y_true``.
    """
    y_true, y_pred = check_targets(y_true, y_pred)
    if (class_counts is None) == (y_train is None):
        raise ValueError("Pass exactly one of class_counts and y_train.")
    labels = _check_labels(labels)
    known, default_labels = _known_counts(y_true, y_pred, class_counts, y_train, labels)

    values = np.asarray(list(known.values()), dtype=object)
    if not all(
        isinstance(v, Real) and not isinstance(v, bool) and np.isfinite(v) and v >= 0
        for v in values
    ):
        raise ValueError("class_counts must hold finite, non-negative numbers.")

    labels = default_labels if labels is None else labels
    allowed = set(known) | set(labels.tolist())
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        unknown = set(np.unique(y).tolist()) - allowed
        if unknown:
            raise ValueError(
                f"{name} contains labels without a training count: "
                f"{sorted(unknown, key=str)!r}. Pass them in labels to treat them "
                "as classes with zero training examples."
            )

    train_counts = np.array([known.get(lab, 0) for lab in labels.tolist()], float)
    index = {lab: i for i, lab in enumerate(labels.tolist())}
    idx_true = _encode(y_true, index, missing=-1)
    idx_pred = _encode(y_pred, index, missing=-2)
    evaluated = idx_true >= 0
    n_labels = labels.shape[0]
    support = np.bincount(idx_true[evaluated], minlength=n_labels)
    hits = np.bincount(idx_true[evaluated & (idx_true == idx_pred)], minlength=n_labels)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, hits / np.maximum(support, 1), np.nan)
    return labels, train_counts, support.astype(np.int64), recall


def assign_groups(train_counts, *, groups, many, few):
    """Group name of each class, from its training count."""
    train_counts = np.asarray(train_counts, dtype=float)
    if groups == "shots":
        return np.where(
            train_counts > many,
            "many",
            np.where(train_counts < few, "few", "medium"),
        ).astype(object)
    # Quantile groups: each class sits at its mid-rank position p (0-based, tied
    # classes share the mean of their positions) in the head-to-tail order of
    # n classes; head if p < n/3, middle if p < 2n/3, tail otherwise. We compare
    # 6p with 2n and 4n to stay in integers.
    n = train_counts.shape[0]
    greater = (train_counts[None, :] > train_counts[:, None]).sum(axis=1)
    equal = (train_counts[None, :] == train_counts[:, None]).sum(axis=1)
    six_p = 6 * greater + 3 * (equal - 1)
    return np.where(
        six_p < 2 * n, "head", np.where(six_p < 4 * n, "middle", "tail")
    ).astype(object)


def group_means(recall, group_of, names):
    """Mean recall of each group over classes with test samples, NaN if none."""
    tested = ~np.isnan(recall)
    result = {}
    for name in names:
        mask = tested & (group_of == name)
        result[name] = float(recall[mask].mean()) if mask.any() else float("nan")
    result["overall"] = float(recall[tested].mean()) if tested.any() else float("nan")
    return result


def counts_by_label(labels, counts):
    """``{label: count}`` from two aligned 1d array-likes."""
    return dict(
        zip(np.asarray(labels).tolist(), np.asarray(counts).tolist(), strict=True)
    )


def fitted_class_counts(estimator):
    """``{label: training count}`` of a fitted estimator, or None.

    None when the estimator lacks ``classes_`` or ``class_counts_`` (the
    sklearn_lt classifiers and :class:`~sklearn_lt.posthoc.LogitAdjustedClassifier`
    have both); the callers say what to do instead.
    """
    counts = getattr(estimator, "class_counts_", None)
    classes = getattr(estimator, "classes_", None)
    if counts is None or classes is None:
        return None
    return counts_by_label(classes, counts)


def with_unseen_labels(classes, y_true, dtype=None):
    """``classes`` followed by the labels of ``y_true`` that are not among them.

    A test class absent from training is a class with zero training examples.
    """
    classes = np.asarray(classes)
    known = set(classes.tolist())
    extra = [c for c in np.unique(column_or_1d(y_true)).tolist() if c not in known]
    return np.asarray([*classes.tolist(), *extra], dtype=dtype)
