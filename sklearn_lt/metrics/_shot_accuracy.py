"""Accuracy per shot group: the long-tail benchmarks' headline metric."""

from .._shot_groups import (
    GROUP_NAMES,
    assign_groups,
    check_group_params,
    class_table,
    group_means,
)

__all__ = ["shot_accuracy"]


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
    check_group_params(groups, many, few)
    _, train_counts, _, recall = class_table(
        y_true, y_pred, class_counts=class_counts, y_train=y_train, labels=labels
    )
    group_of = assign_groups(train_counts, groups=groups, many=many, few=few)
    return group_means(recall, group_of, GROUP_NAMES[groups])
