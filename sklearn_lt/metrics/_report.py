"""Per-class report sorted from head to tail, with the shot-group accuracies."""

from numbers import Integral

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from .._shot_groups import (
    GROUP_NAMES,
    assign_groups,
    check_group_params,
    check_targets,
    class_table,
    group_means,
)

__all__ = ["long_tail_report"]


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
    check_group_params(groups, many, few)
    if not isinstance(digits, Integral) or isinstance(digits, bool) or digits < 0:
        raise ValueError(f"digits must be a non-negative integer, got {digits!r}.")
    labels, train_counts, support, recall_ = class_table(
        y_true, y_pred, class_counts=class_counts, y_train=y_train, labels=labels
    )
    y_true, y_pred = check_targets(y_true, y_pred)
    group_names = GROUP_NAMES[groups]
    names = _class_names(labels, target_names, group_names)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    group_of = assign_groups(train_counts, groups=groups, many=many, few=few)
    order = np.argsort(-train_counts, kind="stable")
    report = {
        names[i]: {
            "train_support": _count(train_counts[i]),
            "test_support": int(support[i]),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1-score": float(f1[i]),
            "group": str(group_of[i]),
        }
        for i in order
    }
    tested = support > 0
    report["macro avg"] = _macro_average(train_counts, support, precision, recall, f1)
    group_acc = group_means(recall_, group_of, group_names)
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
    lines = _format_rows(report, [names[i] for i in order], group_names, digits)
    lines.append(_legend(groups, many, few))
    return "\n".join(lines) + "\n"


def _class_names(labels, target_names, group_names):
    """Display names of ``labels``, unique and distinct from the summary rows."""
    if target_names is None:
        names = [str(lab) for lab in labels.tolist()]
    else:
        names = [str(name) for name in target_names]
        if len(names) != labels.shape[0]:
            raise ValueError(
                f"target_names has {len(names)} entries but there are "
                f"{labels.shape[0]} labels."
            )
    reserved = {"macro avg", "overall", *group_names}
    clash = reserved.intersection(names)
    if clash or len(set(names)) != len(names):
        raise ValueError(
            "Class names must be unique and differ from "
            f"{sorted(reserved)!r}; pass target_names to rename "
            f"{sorted(clash) if clash else 'the duplicates'}."
        )
    return names


def _count(value):
    """A training count as an int when it is whole (weighted counts may not be)."""
    value = float(value)
    return int(value) if value.is_integer() else value


def _macro_average(train_counts, support, precision, recall, f1):
    """The ``"macro avg"`` row, over the classes with test samples."""
    tested = support > 0

    def mean(values):
        return float(values[tested].mean()) if tested.any() else float("nan")

    return {
        "train_support": _count(train_counts[tested].sum()),
        "test_support": int(support[tested].sum()),
        "precision": mean(precision),
        "recall": mean(recall),
        "f1-score": mean(f1),
    }


def _format_rows(report, class_names, group_names, digits):
    """Lines of the text report: header, classes, macro average, groups."""
    summary = (*group_names, "overall")
    row_names = [*class_names, "macro avg"]
    row_names += [f"{g} [{report[g]['n_classes']}]" for g in summary]
    width = max(len(n) for n in row_names)

    def line(name, cells):
        return f"{name:>{width}} " + " ".join(f"{c:>9}" for c in cells)

    def cells(row, scores):
        counts = [_format_count(row["train_support"]), row["test_support"]]
        return counts + [
            "" if row.get(key) is None else f"{row[key]:.{digits}f}" for key in scores
        ]

    scores = ("precision", "recall", "f1-score")
    lines = [line("", ["train", "test", *scores]), ""]
    lines += [line(name, cells(report[name], scores)) for name in class_names]
    lines += ["", line("macro avg", cells(report["macro avg"], scores)), ""]
    lines += [
        line(f"{g} [{report[g]['n_classes']}]", cells(report[g], scores[:2])).rstrip()
        for g in summary
    ]
    return [*lines, ""]


def _legend(groups, many, few):
    if groups == "shots":
        return (
            f"[k]: classes with test samples; many: train > {many:g}, "
            f"medium: {few:g} <= train <= {many:g},\nfew: train < {few:g}"
        )
    return (
        "[k]: classes with test samples; head / middle / tail: thirds of the "
        "classes\nby training count"
    )
