"""Metrics for long-tailed classification.

Long-tail benchmarks report accuracy per *shot group*: the classes are split by
their number of training examples, and per-class accuracy (recall) is averaged
inside each group. This module provides those group accuracies, a top-label
expected calibration error, a per-class report sorted from head to tail, and
scorers for :class:`~sklearn.model_selection.GridSearchCV` and
:func:`~sklearn.model_selection.cross_validate`.

Balanced accuracy and macro F1 need nothing from here: scikit-learn already
provides them as ``scoring="balanced_accuracy"`` and ``scoring="f1_macro"``.
"""

from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
from sklearn.metrics import precision_recall_fscore_support
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import column_or_1d

__all__ = [
    "expected_calibration_error",
    "few_shot_accuracy_scorer",
    "long_tail_report",
    "make_shot_scorer",
    "shot_accuracy",
    "tail_accuracy_scorer",
]

_GROUP_NAMES = {
    "shots": ("many", "medium", "few"),
    "quantile": ("head", "middle", "tail"),
}
_SCORER_GROUPS = {
    "many": "shots",
    "medium": "shots",
    "few": "shots",
    "head": "quantile",
    "middle": "quantile",
    "tail": "quantile",
    "overall": "shots",
}


# --------------------------------------------------------------------------- #
# Input handling shared by shot_accuracy and long_tail_report
# --------------------------------------------------------------------------- #


def _check_targets(y_true, y_pred):
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


def _check_group_params(groups, many, few):
    if groups not in _GROUP_NAMES:
        raise ValueError(
            f"groups must be one of {sorted(_GROUP_NAMES)}, got {groups!r}."
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


def _class_table(y_true, y_pred, *, class_counts, y_train, labels):
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
    y_true, y_pred = _check_targets(y_true, y_pred)
    if (class_counts is None) == (y_train is None):
        raise ValueError("Pass exactly one of class_counts and y_train.")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.shape[0] == 0:
            raise ValueError("labels must be a non-empty 1d array-like.")
        if len(set(labels.tolist())) != labels.shape[0]:
            raise ValueError("labels contains duplicates.")

    if y_train is not None:
        y_train = column_or_1d(y_train)
        if y_train.shape[0] == 0:
            raise ValueError("y_train is empty.")
        train_labels, counts = np.unique(y_train, return_counts=True)
        known = dict(zip(train_labels.tolist(), counts.tolist(), strict=True))
        default_labels = train_labels
    elif isinstance(class_counts, Mapping) or hasattr(class_counts, "items"):
        # A dict, or a pandas Series such as y.value_counts() (keyed by label).
        known = dict(class_counts.items())
        if len(known) == 0:
            raise ValueError("class_counts is empty.")
        default_labels = np.asarray(sorted(known))
    else:
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
        known = dict(zip(aligned.tolist(), counts.tolist(), strict=True))
        default_labels = aligned

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


def _assign_groups(train_counts, *, groups, many, few):
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


def _group_means(recall, group_of, names):
    """Mean recall of each group over classes with test samples, NaN if none."""
    tested = ~np.isnan(recall)
    result = {}
    for name in names:
        mask = tested & (group_of == name)
        result[name] = float(recall[mask].mean()) if mask.any() else float("nan")
    result["overall"] = float(recall[tested].mean()) if tested.any() else float("nan")
    return result


# --------------------------------------------------------------------------- #
# Public metrics
# --------------------------------------------------------------------------- #


def shot_accuracy(
    y_true,
    y_pred,
    *,
    class_counts=None,
    y_train=None,
    labels=None,
    many=100,
    few=20,
    groups="shots",
):
    """Accuracy per shot group (many / medium / few) and balanced accuracy.

    The classes are grouped by their number of training examples ``n_j``; the
    accuracy of a group is the mean of the per-class accuracies (recalls) of its
    classes:

    .. math::

        \\mathrm{acc}(G) = \\frac{1}{|G|} \\sum_{j \\in G}
        \\frac{|\\{i : y_i = j, \\hat y_i = j\\}|}{|\\{i : y_i = j\\}|}

    Only classes present in ``y_true`` count: the recall of a class without test
    samples is undefined. A group with no such class is NaN, never 0.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels of the test samples.

    y_pred : array-like of shape (n_samples,)
        Predicted labels.

    class_counts : dict, pandas Series or array-like of shape (n_labels,), \
            default=None
        Number of training examples of each class: a dict ``label -> count``
        (or a Series indexed by label, such as ``y.value_counts()``), or an
        array aligned with ``labels`` (or, when ``labels`` is None, with the
        sorted unique labels of ``y_true`` and ``y_pred``). Exactly one of
        ``class_counts`` and ``y_train`` must be given.

    y_train : array-like of shape (n_train_samples,), default=None
        Training labels, from which the class counts are computed.

    labels : array-like of shape (n_labels,), default=None
        The classes to evaluate. By default, the classes with a training count
        (the keys of ``class_counts`` or the unique labels of ``y_train``). A
        label given here without a training count is a class with zero training
        examples. Test samples whose true label is not in ``labels`` are ignored.
        Any label of ``y_true`` or ``y_pred`` that has no training count and is
        not in ``labels`` raises a ``ValueError`` (it usually means that the
        predictions are encoded differently from the training labels).

    many : float, default=100
        Classes with more than ``many`` training examples are many-shot.

    few : float, default=20
        Classes with fewer than ``few`` training examples are few-shot; classes
        with between ``few`` and ``many`` examples (inclusive) are medium-shot.
        Must satisfy ``few <= many``.

    groups : {"shots", "quantile"}, default="shots"
        ``"shots"`` uses the absolute thresholds ``many`` and ``few`` of the
        long-tail literature (groups ``"many"``, ``"medium"``, ``"few"``).
        ``"quantile"`` splits the evaluated classes into thirds by training count
        (groups ``"head"``, ``"middle"``, ``"tail"``), for data sets where
        absolute thresholds make no sense; ``many`` and ``few`` are then ignored.
        See Notes for ties.

    Returns
    -------
    scores : dict
        ``{"many": float, "medium": float, "few": float, "overall": float}``, or
        with keys ``"head"``, ``"middle"``, ``"tail"``, ``"overall"`` for
        ``groups="quantile"``. ``"overall"`` is the balanced accuracy: the mean
        recall over the evaluated classes present in ``y_true``. It equals
        :func:`sklearn.metrics.balanced_accuracy_score` when every label of
        ``y_true`` is evaluated.

    See Also
    --------
    long_tail_report : Per-class report sorted from head to tail.
    make_shot_scorer : The same metric as a scorer for model selection.
    sklearn.metrics.balanced_accuracy_score : The ``"overall"`` value.

    Notes
    -----
    Quantile groups are computed over all evaluated classes (``labels``),
    whether or not they appear in ``y_true``. The classes are sorted by
    decreasing training count; a class at 0-based position :math:`p` among
    :math:`C` classes is head if :math:`p < C/3`, middle if :math:`p < 2C/3`,
    tail otherwise. With distinct counts, this is ``np.array_split`` of the
    sorted classes into three parts (the first parts get the extra classes).
    Tied classes all take the mean of their positions, so classes with equal
    training counts always share a group and groups may be unequal in size
    (with all counts equal, every class is middle). With fewer than three
    classes some groups are empty, hence NaN.

    The thresholds ``many=100, few=20`` are those of the long-tail benchmarks
    (e.g. Liu et al., 2019; Cao et al., 2019).

    References
    ----------
    .. [1] Z. Liu, Z. Miao, X. Zhan, J. Wang, B. Gong, S. X. Yu, "Large-scale
       long-tailed recognition in an open world", CVPR 2019.

    Examples
    --------
    >>> from sklearn_lt.metrics import shot_accuracy
    >>> y_train = [0] * 150 + [1] * 50 + [2] * 5
    >>> y_true = [0, 0, 1, 1, 2, 2]
    >>> y_pred = [0, 0, 1, 0, 0, 0]
    >>> scores = shot_accuracy(y_true, y_pred, y_train=y_train)
    >>> {k: round(v, 3) for k, v in scores.items()}
    {'many': 1.0, 'medium': 0.5, 'few': 0.0, 'overall': 0.5}
    >>> scores = shot_accuracy(y_true, y_pred, class_counts={0: 150, 1: 50, 2: 5},
    ...                        groups="quantile")
    >>> {k: round(v, 3) for k, v in scores.items()}
    {'head': 1.0, 'middle': 0.5, 'tail': 0.0, 'overall': 0.5}
    """
    _check_group_params(groups, many, few)
    _, train_counts, _, recall = _class_table(
        y_true, y_pred, class_counts=class_counts, y_train=y_train, labels=labels
    )
    group_of = _assign_groups(train_counts, groups=groups, many=many, few=few)
    return _group_means(recall, group_of, _GROUP_NAMES[groups])


def expected_calibration_error(y_true, y_proba, *, n_bins=15, labels=None):
    """Top-label expected calibration error with equal-width bins.

    Each sample's confidence is its largest predicted probability and its
    prediction the corresponding class. Confidences are put in ``n_bins``
    equal-width bins :math:`B_b = ((b-1)/M, b/M]` of :math:`[0, 1]`, and

    .. math::

        \\mathrm{ECE} = \\sum_{b=1}^{M} \\frac{|B_b|}{n}
        \\left| \\mathrm{acc}(B_b) - \\mathrm{conf}(B_b) \\right|,

    where :math:`\\mathrm{acc}(B_b)` is the accuracy and
    :math:`\\mathrm{conf}(B_b)` the mean confidence of the samples in
    :math:`B_b`. Empty bins contribute nothing.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.

    y_proba : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, columns in the order of ``labels`` (by default
        the sorted labels, as a scikit-learn classifier's ``classes_``). Each row
        must sum to 1. A 1d array is the probability of the second (positive)
        label of a binary problem.

    n_bins : int, default=15
        Number of equal-width confidence bins.

    labels : array-like of shape (n_classes,), default=None
        The class of each column of ``y_proba``. By default the sorted unique
        labels of ``y_true``, which must then have one label per column.

    Returns
    -------
    ece : float
        The expected calibration error, in [0, 1].

    See Also
    --------
    sklearn.calibration.calibration_curve : Reliability diagram of a binary
        classifier.

    Notes
    -----
    A row whose largest probability is shared by several columns predicts the
    first of them, as :func:`numpy.argmax`. A confidence at a bin edge
    :math:`b/M` belongs to the bin on its left; a confidence of 0 belongs to the
    first bin.

    References
    ----------
    .. [1] M. P. Naeini, G. F. Cooper, M. Hauskrecht, "Obtaining well calibrated
       probabilities using Bayesian binning", AAAI 2015.
    .. [2] C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger, "On calibration of modern
       neural networks", ICML 2017.

    Examples
    --------
    >>> from sklearn_lt.metrics import expected_calibration_error
    >>> y_true = [0, 0, 1, 1]
    >>> y_proba = [[0.9, 0.1], [0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]
    >>> round(expected_calibration_error(y_true, y_proba, n_bins=10), 3)
    0.25
    """
    if not isinstance(n_bins, Integral) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")
    y_true = column_or_1d(y_true)
    y_proba = np.asarray(y_proba)
    if not np.issubdtype(y_proba.dtype, np.number):
        raise ValueError("y_proba must hold numbers.")
    if y_proba.dtype.kind != "f":
        y_proba = y_proba.astype(np.float64)
    if y_proba.ndim == 1:
        y_proba = np.column_stack([1 - y_proba, y_proba])
    if y_proba.ndim != 2:
        raise ValueError(
            f"y_proba must be 1d or 2d, got an array of shape {y_proba.shape}."
        )
    n_samples, n_classes = y_proba.shape
    if n_samples != y_true.shape[0]:
        raise ValueError(
            f"y_true and y_proba have different lengths: {y_true.shape[0]} and "
            f"{n_samples}."
        )
    if n_samples == 0:
        raise ValueError("y_true and y_proba are empty.")
    labels = np.unique(y_true) if labels is None else np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != n_classes:
        raise ValueError(
            f"y_proba has {n_classes} columns but there are {labels.shape[0]} "
            f"labels {labels.tolist()!r}; pass labels, one per column of y_proba."
        )
    unknown = set(np.unique(y_true).tolist()) - set(labels.tolist())
    if unknown:
        raise ValueError(
            f"y_true contains labels not in labels: {sorted(unknown, key=str)!r}."
        )
    if not np.all(np.isfinite(y_proba)) or y_proba.min() < 0 or y_proba.max() > 1:
        raise ValueError("y_proba must hold finite probabilities in [0, 1].")
    tol = np.sqrt(np.finfo(y_proba.dtype).eps)
    row_sums = y_proba.sum(axis=1)
    if not np.allclose(row_sums, 1.0, rtol=0, atol=tol):
        raise ValueError(
            "The rows of y_proba must sum to 1; the largest deviation is "
            f"{np.abs(row_sums - 1).max():.3g}."
        )

    y_proba = y_proba.astype(np.float64, copy=False)
    top = np.argmax(y_proba, axis=1)
    confidence = y_proba[np.arange(n_samples), top]
    correct = (labels[top] == y_true).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    gap = np.abs(
        np.bincount(bins, weights=correct, minlength=n_bins)
        - np.bincount(bins, weights=confidence, minlength=n_bins)
    )
    # sum_b |B_b|/n * |acc_b - conf_b| = sum_b |sum_{i in B_b} (correct_i - conf_i)| / n
    return float(gap.sum() / n_samples)


def _format_count(value):
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:.4g}"


def long_tail_report(
    y_true,
    y_pred,
    *,
    y_train=None,
    class_counts=None,
    labels=None,
    target_names=None,
    many=100,
    few=20,
    groups="shots",
    digits=2,
    output_dict=False,
):
    """Per-class report sorted from head to tail, with shot-group accuracies.

    For each class: training support, test support, precision, recall and F1
    (:func:`sklearn.metrics.precision_recall_fscore_support` with
    ``zero_division=0``), the classes sorted by decreasing training count. Then
    the macro averages and the group accuracies of :func:`shot_accuracy`.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels of the test samples.

    y_pred : array-like of shape (n_samples,)
        Predicted labels.

    y_train : array-like of shape (n_train_samples,), default=None
        Training labels, from which the class counts are computed.

    class_counts : dict or array-like of shape (n_labels,), default=None
        Training count of each class, as in :func:`shot_accuracy`. Exactly one
        of ``class_counts`` and ``y_train`` must be given.

    labels : array-like of shape (n_labels,), default=None
        The classes to report, as in :func:`shot_accuracy`.

    target_names : list of str of shape (n_labels,), default=None
        Display names of ``labels`` (in the order of ``labels``, by default the
        sorted training labels).

    many : float, default=100
        Many-shot threshold, see :func:`shot_accuracy`.

    few : float, default=20
        Few-shot threshold, see :func:`shot_accuracy`.

    groups : {"shots", "quantile"}, default="shots"
        Grouping of the classes, see :func:`shot_accuracy`.

    digits : int, default=2
        Number of digits of the floating-point values in the text report.
        Ignored when ``output_dict=True``.

    output_dict : bool, default=False
        Return a dict instead of a string.

    Returns
    -------
    report : str or dict
        Text report, or a dict with one entry per class (in head-to-tail
        order), keyed by its name::

            {"train_support": int, "test_support": int, "precision": float,
             "recall": float, "f1-score": float, "group": str}

        an entry ``"macro avg"`` with the same numeric keys (supports summed)
        and one entry per group (``"many"``, ``"medium"``, ``"few"``, or
        ``"head"``, ``"middle"``, ``"tail"``) and ``"overall"``::

            {"n_classes": int, "train_support": int, "test_support": int,
             "recall": float}

        where ``recall`` is the group accuracy of :func:`shot_accuracy`.
        ``pandas.DataFrame(report).T`` turns it into a table.

    See Also
    --------
    shot_accuracy : The group accuracies alone.
    sklearn.metrics.classification_report : The same per-class metrics,
        without training counts.
    imblearn.metrics.classification_report_imbalanced : Per-class report with
        specificity and geometric mean.

    Notes
    -----
    Classes without test samples are listed (test support 0, recall 0) but
    left out of the macro averages and of the groups, so that the macro-average
    recall equals the ``"overall"`` balanced accuracy. A group's ``n_classes``
    and supports count its classes that have test samples. Classes with equal
    training counts keep the order of ``labels``.

    Examples
    --------
    >>> from sklearn_lt.metrics import long_tail_report
    >>> y_train = ["cat"] * 150 + ["dog"] * 50 + ["eel"] * 5
    >>> y_true = ["cat", "cat", "dog", "dog", "eel", "eel"]
    >>> y_pred = ["cat", "cat", "dog", "cat", "cat", "eel"]
    >>> print(long_tail_report(y_true, y_pred, y_train=y_train))
                    train      test precision    recall  f1-score
    <BLANKLINE>
            cat       150         2      0.50      1.00      0.67
            dog        50         2      1.00      0.50      0.67
            eel         5         2      1.00      0.50      0.67
    <BLANKLINE>
      macro avg       205         6      0.83      0.67      0.67
    <BLANKLINE>
       many [1]       150         2                1.00
     medium [1]        50         2                0.50
        few [1]         5         2                0.50
    overall [3]       205         6                0.67
    <BLANKLINE>
    [k]: classes with test samples; many: train > 100, medium: 20 <= train <= 100,
    few: train < 20
    <BLANKLINE>
    >>> report = long_tail_report(y_true, y_pred, y_train=y_train, output_dict=True)
    >>> report["dog"]["recall"], report["few"]["recall"]
    (0.5, 0.5)
    """
    _check_group_params(groups, many, few)
    if not isinstance(digits, Integral) or isinstance(digits, bool) or digits < 0:
        raise ValueError(f"digits must be a non-negative integer, got {digits!r}.")
    labels, train_counts, support, recall_ = _class_table(
        y_true, y_pred, class_counts=class_counts, y_train=y_train, labels=labels
    )
    y_true, y_pred = _check_targets(y_true, y_pred)
    if target_names is None:
        names = [str(lab) for lab in labels.tolist()]
    else:
        names = [str(name) for name in target_names]
        if len(names) != labels.shape[0]:
            raise ValueError(
                f"target_names has {len(names)} entries but there are "
                f"{labels.shape[0]} labels."
            )
    group_names = _GROUP_NAMES[groups]
    reserved = {"macro avg", "overall", *group_names}
    clash = reserved.intersection(names)
    if clash or len(set(names)) != len(names):
        raise ValueError(
            "Class names must be unique and differ from "
            f"{sorted(reserved)!r}; pass target_names to rename "
            f"{sorted(clash) if clash else 'the duplicates'}."
        )

    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    group_of = _assign_groups(train_counts, groups=groups, many=many, few=few)
    group_acc = _group_means(recall_, group_of, group_names)
    order = np.argsort(-train_counts, kind="stable")
    tested = support > 0

    def _count(value):
        value = float(value)
        return int(value) if value.is_integer() else value

    report = {}
    for i in order:
        report[names[i]] = {
            "train_support": _count(train_counts[i]),
            "test_support": int(support[i]),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1-score": float(f1[i]),
            "group": str(group_of[i]),
        }
    nan = float("nan")
    report["macro avg"] = {
        "train_support": _count(train_counts[tested].sum()),
        "test_support": int(support[tested].sum()),
        "precision": float(precision[tested].mean()) if tested.any() else nan,
        "recall": float(recall[tested].mean()) if tested.any() else nan,
        "f1-score": float(f1[tested].mean()) if tested.any() else nan,
    }
    for name in (*group_names, "overall"):
        mask = tested if name == "overall" else tested & (group_of == name)
        report[name] = {
            "n_classes": int(mask.sum()),
            "train_support": _count(train_counts[mask].sum()),
            "test_support": int(support[mask].sum()),
            "recall": group_acc[name],
        }
    if output_dict:
        return report

    headers = ["train", "test", "precision", "recall", "f1-score"]
    row_names = [*names, "macro avg"]
    row_names += [f"{g} [{report[g]['n_classes']}]" for g in (*group_names, "overall")]
    width = max(len(n) for n in row_names)
    cell = "{:>9}"

    def _fmt(value):
        return f"{value:.{digits}f}"

    def _line(name, cells):
        return f"{name:>{width}} " + " ".join(cell.format(c) for c in cells)

    lines = [_line("", headers), ""]
    for i in order:
        row = report[names[i]]
        lines.append(
            _line(
                names[i],
                [
                    _format_count(row["train_support"]),
                    row["test_support"],
                    _fmt(row["precision"]),
                    _fmt(row["recall"]),
                    _fmt(row["f1-score"]),
                ],
            )
        )
    lines.append("")
    row = report["macro avg"]
    lines.append(
        _line(
            "macro avg",
            [
                _format_count(row["train_support"]),
                row["test_support"],
                _fmt(row["precision"]),
                _fmt(row["recall"]),
                _fmt(row["f1-score"]),
            ],
        )
    )
    lines.append("")
    for g in (*group_names, "overall"):
        row = report[g]
        lines.append(
            _line(
                f"{g} [{row['n_classes']}]",
                [
                    _format_count(row["train_support"]),
                    row["test_support"],
                    "",
                    _fmt(row["recall"]),
                ],
            ).rstrip()
        )
    lines.append("")
    if groups == "shots":
        legend = (
            f"[k]: classes with test samples; many: train > {many:g}, "
            f"medium: {few:g} <= train <= {many:g},\nfew: train < {few:g}"
        )
    else:
        legend = (
            "[k]: classes with test samples; head / middle / tail: thirds of the "
            "classes\nby training count"
        )
    lines.append(legend)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- #
# Scorers
# --------------------------------------------------------------------------- #


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
        counts = getattr(estimator, "class_counts_", None)
        classes = getattr(estimator, "classes_", None)
        if counts is None or classes is None:
            raise AttributeError(
                f"{self!r} needs a fitted estimator with the attributes classes_ "
                f"and class_counts_ (training count of each class); "
                f"{type(estimator).__name__} has "
                f"{'no classes_' if classes is None else 'no class_counts_'}. Wrap "
                "it in sklearn_lt.posthoc.LogitAdjustedClassifier (tau=0 keeps its "
                "predictions), or compute shot_accuracy with y_train."
            )
        classes = np.asarray(classes)
        y_true = column_or_1d(y_true)
        # A test class absent from the training fold has zero training examples.
        extra = [
            c for c in np.unique(y_true).tolist() if c not in set(classes.tolist())
        ]
        labels = np.asarray([*classes.tolist(), *extra], dtype=classes.dtype)
        scores = shot_accuracy(
            y_true,
            estimator.predict(X),
            class_counts=dict(
                zip(classes.tolist(), np.asarray(counts).tolist(), strict=True)
            ),
            labels=labels,
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
    _check_group_params("shots", many, few)
    return _ShotScorer(group, many, few)


few_shot_accuracy_scorer = make_shot_scorer("few")
"""Scorer of few-shot accuracy (classes with < 20 training examples)."""

tail_accuracy_scorer = make_shot_scorer("tail")
"""Scorer of tail accuracy (the third of the classes with fewest examples)."""
