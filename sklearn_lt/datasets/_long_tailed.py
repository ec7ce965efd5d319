"""Subsample any labelled data set so that its class sizes follow a long tail."""

import numpy as np
from sklearn.utils import (
    _safe_indexing,
    check_consistent_length,
    check_random_state,
    column_or_1d,
)

from ._profiles import (
    _check_imbalance_ratio,
    _check_profile,
    _profile_counts,
    long_tailed_counts,
)

__all__ = ["make_long_tailed"]


def _smallest_keys_per_class(class_codes, class_sizes, quota_per_class, random_keys):
    """Rows, ascending, holding each class's ``quota`` smallest random keys.

    ``class_codes`` are the row classes as indices ``0 .. C - 1``, ``class_sizes``
    their counts, ``quota_per_class`` how many rows each class keeps and
    ``random_keys`` a random permutation of the rows.
    """
    by_class_then_key = np.lexsort((random_keys, class_codes))
    sorted_codes = class_codes[by_class_then_key]
    class_starts = np.concatenate(([0], np.cumsum(class_sizes)[:-1]))
    rank_in_class = np.arange(sorted_codes.shape[0]) - class_starts[sorted_codes]
    return np.sort(by_class_then_key[rank_in_class < quota_per_class[sorted_codes]])


def _head_to_tail_order(classes, head_classes, random_state):
    """Indices into ``classes``, head class first."""
    if isinstance(head_classes, str):
        if head_classes == "sorted":
            return np.arange(len(classes))
        if head_classes == "shuffle":
            return random_state.permutation(len(classes))
        raise ValueError(
            "head_classes must be 'sorted', 'shuffle' or a sequence of class labels "
            f"ordered from head to tail, got {head_classes!r}."
        )
    requested = np.asarray(head_classes)
    if requested.ndim != 1:
        raise ValueError(
            "head_classes must be a 1-D sequence of class labels, got an array of "
            f"shape {requested.shape}."
        )
    class_set, requested_set = set(classes.tolist()), set(requested.tolist())
    unknown = [label for label in requested.tolist() if label not in class_set]
    missing = [label for label in classes.tolist() if label not in requested_set]
    if unknown or missing or len(requested) != len(classes):
        raise ValueError(
            "head_classes must list every class label of y exactly once; "
            f"labels not in y: {unknown}, labels of y missing: {missing}, "
            f"{len(requested)} labels given for {len(classes)} classes."
        )
    return np.searchsorted(classes, requested)


def _largest_feasible_n_max(available, n_classes, imbalance_ratio, profile, upper):
    """Largest ``n_max <= upper`` whose quotas ``available`` (head first) can meet."""

    def counts(n_max):
        return _profile_counts(n_max, n_classes, imbalance_ratio, profile)

    # Every quota is non-decreasing in n_max, so "all quotas available" holds up to
    # some n_max and fails beyond: bisect for it. fits(upper) is False, fits(0) True.
    low, high = 0, upper
    while high - low > 1:
        middle = (low + high) // 2
        if np.all(counts(middle) <= available):
            low = middle
        else:
            high = middle
    # The tail quota is non-decreasing too: if it is empty here, no n_max works.
    return low if low >= 1 and counts(low)[-1] >= 1 else None


def make_long_tailed(
    X,
    y,
    *,
    imbalance_ratio=100,
    profile="exp",
    n_max=None,
    head_classes="sorted",
    random_state=None,
):
    """Subsample a labelled data set so its class sizes follow a long tail.

    Class ``k`` in head-to-tail order keeps ``long_tailed_counts(n_max, C,
    imbalance_ratio=imbalance_ratio, profile=profile)[k]`` of its examples, chosen
    uniformly at random.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_samples, ...)
        Examples: numpy array, pandas DataFrame, scipy sparse matrix or list.
    y : array-like of shape (n_samples,)
        Class labels: numpy array, pandas Series or list.
    imbalance_ratio : float, default=100
        Ratio between the head and the tail class sizes, at least 1.
    profile : {"exp", "step"}, default="exp"
        Shape of the class-size decay, see :func:`long_tailed_counts`.
    n_max : int, default=None
        Size of the head class. ``None`` uses the smallest class size in ``y``, so
        that every class can supply its quota whatever the order.
    head_classes : {"sorted", "shuffle"} or sequence of labels, default="sorted"
        Which class is the head and which the tail. ``"sorted"``: the order of
        ``np.unique(y)``, the first label being the head. ``"shuffle"``: a random
        permutation of the classes drawn from ``random_state``. A sequence lists
        every label of ``y`` once, from head to tail.
    random_state : int, RandomState instance or None, default=None
        Controls which examples are kept and, with ``head_classes="shuffle"``, the
        class order. Pass an int for reproducible output.

    Returns
    -------
    X_lt : same type as X, shape (n_kept, ...)
        Kept examples, in their original relative order. Pandas inputs keep their
        index; lists stay lists.
    y_lt : same type as y, shape (n_kept,)
        Labels of the kept examples, aligned with ``X_lt``.

    Raises
    ------
    ValueError
        If a class has fewer examples than its quota (the message names the class,
        what it has, what was requested and the largest ``n_max`` that fits), if
        ``head_classes`` is not a permutation of the labels, or if an argument is
        out of range.

    See Also
    --------
    long_tailed_counts : The class sizes this function produces.
    load_digits_lt : A long-tailed train split of scikit-learn's digits.

    Notes
    -----
    The examples kept from a class are those with the smallest keys in one random
    permutation of all rows, drawn from ``random_state`` before anything else. So
    for a fixed ``random_state`` the selections are nested: a larger quota
    (a larger ``n_max`` or a smaller ``imbalance_ratio``) only adds examples, and the
    examples kept do not depend on ``head_classes`` beyond each class's quota.
    Inputs are never modified.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lt.datasets import make_long_tailed
    >>> X = np.arange(200).reshape(100, 2)
    >>> y = np.repeat([0, 1, 2, 3], 25)
    >>> X_lt, y_lt = make_long_tailed(X, y, imbalance_ratio=10, random_state=0)
    >>> np.bincount(y_lt).tolist()
    [25, 11, 5, 2]
    >>> X_lt.shape
    (43, 2)
    """
    check_consistent_length(X, y)
    y_array = column_or_1d(y)
    if y_array.shape[0] == 0:
        raise ValueError("make_long_tailed needs at least one labelled example.")
    imbalance_ratio = _check_imbalance_ratio(imbalance_ratio)
    _check_profile(profile)
    rng = check_random_state(random_state)

    classes, class_codes, class_sizes = np.unique(
        y_array, return_inverse=True, return_counts=True
    )
    # Drawn first, so the kept rows do not depend on head_classes (see Notes).
    random_keys = rng.permutation(y_array.shape[0])
    head_to_tail = _head_to_tail_order(classes, head_classes, rng)

    if n_max is None:
        n_max = int(class_sizes.min())
    quotas_head_first = long_tailed_counts(
        n_max, len(classes), imbalance_ratio=imbalance_ratio, profile=profile
    )
    available_head_first = class_sizes[head_to_tail]
    short = np.flatnonzero(available_head_first < quotas_head_first)
    if short.size:
        labels = classes.tolist()
        shortages = "; ".join(
            f"class {labels[head_to_tail[k]]!r} has {available_head_first[k]} "
            f"examples but {quotas_head_first[k]} were requested"
            for k in short
        )
        largest = _largest_feasible_n_max(
            available_head_first, len(classes), imbalance_ratio, profile, n_max
        )
        advice = (
            f"n_max={largest} is the largest that fits"
            if largest is not None
            else "no n_max fits this imbalance_ratio"
        )
        raise ValueError(
            f"Cannot build a long-tailed data set with n_max={n_max}, "
            f"imbalance_ratio={imbalance_ratio:g} and profile={profile!r}: "
            f"{shortages}. Lower n_max ({advice}) or imbalance_ratio, or order the "
            "classes with head_classes so that the largest ones are at the head."
        )

    quota_per_class = np.empty(len(classes), dtype=np.int64)
    quota_per_class[head_to_tail] = quotas_head_first
    kept = _smallest_keys_per_class(
        class_codes, class_sizes, quota_per_class, random_keys
    )
    return _safe_indexing(X, kept), _safe_indexing(y, kept)
