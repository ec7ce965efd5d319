"""Long-tailed versions of labelled data sets, and the loaders that build them.

A long-tailed benchmark keeps every example of a balanced data set's test split and
subsamples its training split so that class sizes decay from ``n_max`` (the head
class) to ``n_max / imbalance_ratio`` (the tail class), as in Cao et al. (2019) and
Cui et al. (2019). This module holds the class-size profiles
(:func:`long_tailed_counts`), the subsampler that applies them to any labelled data
(:func:`make_long_tailed`), a synthetic generator
(:func:`make_long_tailed_classification`) and loaders for two real image data sets
available offline: scikit-learn's digits (:func:`load_digits_lt`) and Fashion-MNIST
(:func:`load_fashion_mnist`, :func:`load_fashion_mnist_lt`), read from IDX files
(:func:`read_idx`).

It depends on numpy and scikit-learn only, never on torch.
"""

import gzip
import numbers
import os
import zlib
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.utils import (
    Bunch,
    _safe_indexing,
    check_consistent_length,
    check_random_state,
    check_scalar,
    column_or_1d,
)

__all__ = [
    "load_digits_lt",
    "load_fashion_mnist",
    "load_fashion_mnist_lt",
    "long_tailed_counts",
    "make_long_tailed",
    "make_long_tailed_classification",
    "read_idx",
]

_PROFILES = ("exp", "step")

# A count whose floating-point value lies this close (relatively) below an integer is
# that integer: pow() and the product carry a few ulps of rounding error, which must
# not turn an exact 1.0 into 0.9999999999999999 and drop an example.
_FLOOR_RELATIVE_TOLERANCE = 1e-12


# --------------------------------------------------------------------------------------
# Class-size profiles
# --------------------------------------------------------------------------------------


def _check_imbalance_ratio(imbalance_ratio):
    check_scalar(imbalance_ratio, "imbalance_ratio", numbers.Real, min_val=1)
    if not np.isfinite(imbalance_ratio):
        raise ValueError(
            f"imbalance_ratio must be a finite number >= 1, got {imbalance_ratio!r}."
        )
    return float(imbalance_ratio)


def _check_profile(profile):
    if profile not in _PROFILES:
        raise ValueError(f"profile must be one of {_PROFILES}, got {profile!r}.")


def _tolerant_floor(values):
    """Floor ``values``, rounding up those a few ulps below an integer."""
    values = np.asarray(values, dtype=np.float64)
    nudged = values + _FLOOR_RELATIVE_TOLERANCE * np.maximum(values, 1.0)
    return np.floor(nudged).astype(np.int64)


def _profile_counts(n_max, n_classes, imbalance_ratio, profile):
    """Class sizes, head first, without validation; the tail may be 0."""
    if n_classes == 1:
        return np.array([n_max], dtype=np.int64)
    if profile == "exp":
        # Python's float power (the C library's pow) rather than np.power: numpy may
        # dispatch to a SIMD pow whose last bit differs between machines, and the
        # published CIFAR-LT counts come from this exact expression.
        base = 1.0 / imbalance_ratio
        fractions = [base ** (i / (n_classes - 1)) for i in range(n_classes)]
        return _tolerant_floor(n_max * np.array(fractions))
    n_head = max(n_classes // 2, 1)
    n_tail_class = _tolerant_floor(n_max / imbalance_ratio)
    return np.array(
        [n_max] * n_head + [int(n_tail_class)] * (n_classes - n_head), dtype=np.int64
    )


def long_tailed_counts(n_max, n_classes, *, imbalance_ratio=100, profile="exp"):
    """Number of examples each class keeps in a long-tailed data set.

    Parameters
    ----------
    n_max : int
        Size of the head (largest) class, at least 1.
    n_classes : int
        Number of classes, at least 1.
    imbalance_ratio : float, default=100
        Ratio rho between the head and the tail class sizes, ``n_max / n_min``; at
        least 1 (1 gives a balanced data set).
    profile : {"exp", "step"}, default="exp"
        ``"exp"``: class ``i`` keeps ``int(n_max * (1 / rho) ** (i / (C - 1)))``
        examples, ``i = 0 .. C - 1``. ``"step"``: the first ``C // 2`` classes
        (mu = 0.5; at least one) keep ``n_max``, the others ``int(n_max / rho)``.

    Returns
    -------
    counts : ndarray of shape (n_classes,), dtype int64
        Class sizes, head class first; non-increasing.

    Raises
    ------
    ValueError
        If an argument is out of range, or if the tail class would keep no example
        (``n_max < imbalance_ratio`` with more than one class).

    See Also
    --------
    make_long_tailed : Subsample a labelled data set to these counts.

    Notes
    -----
    The counts are truncated to integers as in the reference code, so the realised
    ratio ``counts[0] / counts[-1]`` can exceed ``imbalance_ratio`` when ``n_max`` is
    small. Values within a relative ``1e-12`` below an integer are rounded up to it,
    so that floating-point error never removes an example (``n_max=49``,
    ``imbalance_ratio=49`` keeps 1 tail example, not 0); the published CIFAR-LT
    counts are reproduced exactly.

    With one class the result is ``[n_max]`` for both profiles.

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga and T. Ma, "Learning Imbalanced
       Datasets with Label-Distribution-Aware Margin Loss", NeurIPS 2019.
    .. [2] Y. Cui, M. Jia, T.-Y. Lin, Y. Song and S. Belongie, "Class-Balanced Loss
       Based on Effective Number of Samples", CVPR 2019.

    Examples
    --------
    CIFAR-10-LT with imbalance ratio 100:

    >>> from sklearn_lt.datasets import long_tailed_counts
    >>> counts = long_tailed_counts(5000, 10, imbalance_ratio=100)
    >>> counts.tolist()
    [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    >>> int(counts.sum())
    12406
    >>> long_tailed_counts(5000, 10, imbalance_ratio=100, profile="step").tolist()
    [5000, 5000, 5000, 5000, 5000, 50, 50, 50, 50, 50]
    """
    check_scalar(n_max, "n_max", numbers.Integral, min_val=1)
    check_scalar(n_classes, "n_classes", numbers.Integral, min_val=1)
    imbalance_ratio = _check_imbalance_ratio(imbalance_ratio)
    _check_profile(profile)
    counts = _profile_counts(int(n_max), int(n_classes), imbalance_ratio, profile)
    if counts[-1] < 1:
        raise ValueError(
            f"n_max={n_max} with imbalance_ratio={imbalance_ratio:g} leaves the tail "
            f"class with int({n_max} / {imbalance_ratio:g}) = 0 examples; use "
            "n_max >= imbalance_ratio or a smaller imbalance_ratio."
        )
    return counts


# --------------------------------------------------------------------------------------
# Subsampling labelled data
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------------------


def _n_max_for_total(n_samples, n_classes, imbalance_ratio, profile):
    """Largest n_max whose long-tailed total does not exceed ``n_samples``."""

    def counts(n_max):
        return _profile_counts(n_max, n_classes, imbalance_ratio, profile)

    # Smallest n_max with a non-empty tail: the tail size is non-decreasing in n_max.
    low, high = 0, max(int(np.ceil(imbalance_ratio)) + 1, 1)
    while high - low > 1:
        middle = (low + high) // 2
        if counts(middle)[-1] >= 1:
            high = middle
        else:
            low = middle
    smallest_valid = high
    smallest_total = int(counts(smallest_valid).sum())
    if smallest_total > n_samples:
        raise ValueError(
            f"n_samples={n_samples} is too small for n_classes={n_classes} with "
            f"imbalance_ratio={imbalance_ratio:g} and profile={profile!r}: the "
            f"smallest such data set has {smallest_total} examples."
        )
    # Largest n_max with total <= n_samples; the head alone makes n_samples + 1 exceed.
    low, high = smallest_valid, n_samples + 1
    while high - low > 1:
        middle = (low + high) // 2
        if counts(middle).sum() <= n_samples:
            low = middle
        else:
            high = middle
    return low


def make_long_tailed_classification(
    n_samples=None,
    n_classes=10,
    n_features=20,
    *,
    imbalance_ratio=100,
    n_max=1000,
    profile="exp",
    n_informative=None,
    class_sep=1.0,
    random_state=None,
):
    """Generate a synthetic long-tailed classification problem.

    Each class is a Gaussian blob with identity covariance around a centroid drawn
    at random in the first ``n_informative`` features; the remaining features are
    standard normal noise. Class ``j`` has ``long_tailed_counts(n_max, n_classes,
    ...)[j]`` examples, so class 0 is the head and class ``n_classes - 1`` the tail.
    The generator is vectorised: a million rows over a thousand classes take about
    a second.

    Parameters
    ----------
    n_samples : int, default=None
        Approximate total number of examples. If given, ``n_max`` is ignored and
        replaced by the largest head-class size whose long-tailed total does not
        exceed ``n_samples``, so the total is at most ``n_samples`` and short of it
        by less than one step of ``n_max`` (about ``n_samples / n_max`` examples).
        ``None`` uses ``n_max`` as given.
    n_classes : int, default=10
        Number of classes, at least 1.
    n_features : int, default=20
        Number of features, at least 1.
    imbalance_ratio : float, default=100
        Ratio between the head and the tail class sizes, at least 1.
    n_max : int, default=1000
        Size of the head class, used when ``n_samples`` is None.
    profile : {"exp", "step"}, default="exp"
        Shape of the class-size decay, see :func:`long_tailed_counts`.
    n_informative : int, default=None
        Number of leading features that carry the class centroids, between 1 and
        ``n_features``. ``None`` uses ``max(1, n_features // 2)``.
    class_sep : float, default=1.0
        Standard deviation of the centroid coordinates, in units of the within-class
        standard deviation (1). Larger values make the classes easier to separate;
        0 makes all classes identical.
    random_state : int, RandomState instance or None, default=None
        Controls centroids, noise and row order. Pass an int for reproducible output.

    Returns
    -------
    X : ndarray of shape (n_total, n_features), dtype float64
        Examples, rows in random order.
    y : ndarray of shape (n_total,), dtype int64
        Class labels in ``0 .. n_classes - 1``, label 0 being the head class.

    See Also
    --------
    long_tailed_counts : The class sizes of the generated data.
    sklearn.datasets.make_classification : Balanced or weighted synthetic classes.

    Notes
    -----
    Unlike :func:`sklearn.datasets.make_classification`, which puts the centroids on
    the vertices of a hypercube (at most ``2 ** n_informative`` classes), the
    centroids here are independent normal vectors, so any number of classes fits in
    any number of informative features; with ``k`` informative features two
    centroids lie ``class_sep * sqrt(2 * k)`` apart on average.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lt.datasets import make_long_tailed_classification
    >>> X, y = make_long_tailed_classification(
    ...     n_classes=5, n_features=4, n_max=100, imbalance_ratio=10, random_state=0
    ... )
    >>> X.shape, X.dtype
    ((214, 4), dtype('float64'))
    >>> np.bincount(y).tolist()
    [100, 56, 31, 17, 10]
    """
    check_scalar(n_classes, "n_classes", numbers.Integral, min_val=1)
    check_scalar(n_features, "n_features", numbers.Integral, min_val=1)
    imbalance_ratio = _check_imbalance_ratio(imbalance_ratio)
    _check_profile(profile)
    if n_informative is None:
        n_informative = max(1, n_features // 2)
    check_scalar(
        n_informative,
        "n_informative",
        numbers.Integral,
        min_val=1,
        max_val=n_features,
    )
    check_scalar(class_sep, "class_sep", numbers.Real, min_val=0)
    if n_samples is not None:
        check_scalar(n_samples, "n_samples", numbers.Integral, min_val=1)
        n_max = _n_max_for_total(int(n_samples), n_classes, imbalance_ratio, profile)
    counts = long_tailed_counts(
        n_max, n_classes, imbalance_ratio=imbalance_ratio, profile=profile
    )
    rng = check_random_state(random_state)

    centroids = class_sep * rng.standard_normal((n_classes, n_informative))
    y = np.repeat(np.arange(n_classes, dtype=np.int64), counts)
    rng.shuffle(y)
    X = rng.standard_normal((y.shape[0], n_features))
    X[:, :n_informative] += centroids[y]
    return X, y


# --------------------------------------------------------------------------------------
# Digits
# --------------------------------------------------------------------------------------

_DIGITS_LT_DESCR = """\
.. _digits_lt_dataset:

Long-tailed digits
------------------

scikit-learn's optical recognition of handwritten digits data (1797 real 8x8
images, 10 classes, pixels are integers 0..16 stored as float64), split into a
balanced test split of {n_test_per_class} images per class and a long-tailed train
split subsampled from the remaining images with ``make_long_tailed``
(profile={profile!r}, imbalance_ratio={imbalance_ratio:g}, n_max={n_max}).

Train class sizes (digit 0 is the head): {class_counts}.

Because the test split is balanced, its top-1 accuracy equals its balanced
accuracy. See ``sklearn.datasets.load_digits`` for the source data.
"""


def _balanced_test_mask(y, n_test_per_class, random_state, dataset):
    """Boolean mask holding ``n_test_per_class`` random examples of every class."""
    classes, class_codes, class_sizes = np.unique(
        y, return_inverse=True, return_counts=True
    )
    too_small = class_sizes <= n_test_per_class
    if np.any(too_small):
        raise ValueError(
            f"n_test_per_class={n_test_per_class} leaves no training example for "
            f"classes {classes[too_small].tolist()} of {dataset}, whose smallest "
            f"class has {class_sizes.min()} examples; use n_test_per_class < "
            f"{class_sizes.min()}."
        )
    random_keys = random_state.permutation(y.shape[0])
    quota_per_class = np.full(len(classes), n_test_per_class)
    test_mask = np.zeros(y.shape[0], dtype=bool)
    test_mask[
        _smallest_keys_per_class(class_codes, class_sizes, quota_per_class, random_keys)
    ] = True
    return test_mask


def load_digits_lt(
    *,
    imbalance_ratio=10,
    profile="exp",
    n_test_per_class=50,
    n_max=None,
    return_X_y=False,
    random_state=0,
):
    """Load a long-tailed train split and a balanced test split of the digits.

    The 1797 real 8x8 images of :func:`sklearn.datasets.load_digits` (bundled with
    scikit-learn, no download) are split into a balanced test split of
    ``n_test_per_class`` random images per class; the other images are subsampled
    to a long-tailed train split with :func:`make_long_tailed`, digit 0 being the
    head class and digit 9 the tail.

    Parameters
    ----------
    imbalance_ratio : float, default=10
        Ratio between the head and the tail train class sizes, at least 1.
    profile : {"exp", "step"}, default="exp"
        Shape of the class-size decay, see :func:`long_tailed_counts`.
    n_test_per_class : int, default=50
        Test images per class. The smallest digit class has 174 images, so the
        default leaves at least 124 per class for training and gives a 500-image
        balanced test split.
    n_max : int, default=None
        Size of the head train class. ``None`` uses the smallest number of images a
        class has left after the test split (124 with the default split).
    return_X_y : bool, default=False
        If True, return ``(X_train, X_test, y_train, y_test)`` in the order of
        :func:`sklearn.model_selection.train_test_split` instead of a Bunch.
    random_state : int, RandomState instance or None, default=0
        Controls the test split and the train subsampling.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes:

        X_train : ndarray of shape (n_train, 64), dtype float64
            Long-tailed train images, flattened, pixels in [0, 16].
        y_train : ndarray of shape (n_train,), dtype int64
            Train labels, digits 0..9.
        X_test : ndarray of shape (10 * n_test_per_class, 64), dtype float64
            Balanced test images.
        y_test : ndarray of shape (10 * n_test_per_class,), dtype int64
            Test labels.
        class_counts : ndarray of shape (10,), dtype int64
            Train examples per class, in the order of ``target_names``.
        target_names : ndarray of shape (10,)
            The class labels, ``0 .. 9``.
        image_shape : tuple of int
            ``(1, 8, 8)``: channels, height, width, to reshape rows into images.
        DESCR : str
            Description of the data and of how it was split.

    (X_train, X_test, y_train, y_test) : tuple of ndarrays
        If ``return_X_y`` is True.

    See Also
    --------
    make_long_tailed : The subsampler that builds the train split.
    load_fashion_mnist_lt : The same construction on Fashion-MNIST.

    Notes
    -----
    Rows keep the order they have in :func:`sklearn.datasets.load_digits`; shuffle
    them before mini-batch training if that matters.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lt.datasets import load_digits_lt
    >>> digits = load_digits_lt(imbalance_ratio=10)
    >>> digits.class_counts.tolist()
    [124, 96, 74, 57, 44, 34, 26, 20, 16, 12]
    >>> digits.X_train.shape, digits.X_test.shape
    ((503, 64), (500, 64))
    >>> np.bincount(digits.y_test).tolist()
    [50, 50, 50, 50, 50, 50, 50, 50, 50, 50]
    """
    check_scalar(n_test_per_class, "n_test_per_class", numbers.Integral, min_val=1)
    rng = check_random_state(random_state)
    digits = load_digits()
    X, y = digits.data, digits.target
    test_mask = _balanced_test_mask(y, n_test_per_class, rng, "the digits")
    X_train, y_train = make_long_tailed(
        X[~test_mask],
        y[~test_mask],
        imbalance_ratio=imbalance_ratio,
        profile=profile,
        n_max=n_max,
        random_state=rng,
    )
    X_test, y_test = X[test_mask], y[test_mask]
    if return_X_y:
        return X_train, X_test, y_train, y_test
    class_counts = np.bincount(y_train, minlength=len(digits.target_names))
    descr = _DIGITS_LT_DESCR.format(
        n_test_per_class=n_test_per_class,
        profile=profile,
        imbalance_ratio=imbalance_ratio,
        n_max=int(class_counts.max()),
        class_counts=class_counts.tolist(),
    )
    return Bunch(
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        class_counts=class_counts,
        target_names=digits.target_names,
        image_shape=(1, 8, 8),
        DESCR=descr,
    )


# --------------------------------------------------------------------------------------
# IDX files and Fashion-MNIST
# --------------------------------------------------------------------------------------

# IDX type code -> big-endian numpy dtype of the stored values.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_idx_bytes(path):
    """The decompressed content of an IDX file, gzip detected by its magic bytes."""
    with open(path, "rb") as raw_file:
        content = raw_file.read()
    if not content.startswith(_GZIP_MAGIC):
        return content
    try:
        return gzip.decompress(content)
    except (EOFError, OSError, zlib.error) as error:
        raise ValueError(
            f"{path}: corrupt or truncated gzip data ({error})."
        ) from error


def read_idx(path):
    """Read an IDX file, the format of MNIST and Fashion-MNIST, into an array.

    Parameters
    ----------
    path : str or path-like
        IDX file, raw or gzip-compressed (detected by the gzip magic bytes
        ``1f 8b``, not by the file name).

    Returns
    -------
    array : ndarray
        The stored values with the stored shape, in native byte order: uint8
        (type code 0x08), int8 (0x09), int16 (0x0B), int32 (0x0C), float32 (0x0D)
        or float64 (0x0E).

    Raises
    ------
    ValueError
        If the file (named in the message) has a bad magic number, an unknown type
        code, a truncated header or data, trailing bytes, or corrupt gzip data.
    FileNotFoundError
        If ``path`` does not exist.

    See Also
    --------
    load_fashion_mnist : Fashion-MNIST from its four IDX files.

    Notes
    -----
    An IDX file starts with a 4-byte magic number: two zero bytes, a type code and
    the number of dimensions ``ndim``; then ``ndim`` big-endian unsigned 32-bit
    sizes, then the values in C order, big-endian.

    References
    ----------
    .. [1] Y. LeCun, C. Cortes and C. J. C. Burges, "The MNIST database of
       handwritten digits", section "File formats for the MNIST database".

    Examples
    --------
    >>> import gzip, os, tempfile
    >>> from sklearn_lt.datasets import read_idx
    >>> magic = bytes([0, 0, 0x08, 2])  # zero, zero, uint8 type code, 2 dimensions
    >>> header = magic + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     path = os.path.join(directory, "tiny-idx2-ubyte.gz")
    ...     with gzip.open(path, "wb") as idx_file:
    ...         _ = idx_file.write(header + bytes(range(6)))
    ...     array = read_idx(path)
    >>> array
    array([[0, 1, 2],
           [3, 4, 5]], dtype=uint8)
    """
    content = _read_idx_bytes(path)
    if len(content) < 4:
        raise ValueError(
            f"{path}: not an IDX file, it has {len(content)} bytes, fewer than the "
            "4-byte magic number."
        )
    zeros, type_code, ndim = content[:2], content[2], content[3]
    if zeros != b"\x00\x00" or type_code not in _IDX_DTYPES:
        raise ValueError(
            f"{path}: not an IDX file, bad magic number 0x{content[:4].hex()} "
            "(expected two zero bytes, a type code among "
            f"{', '.join(f'0x{code:02X}' for code in _IDX_DTYPES)} and the number of "
            "dimensions)."
        )
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise ValueError(
            f"{path}: truncated IDX header, {ndim} dimensions need {header_size} "
            f"bytes but the file has {len(content)}."
        )
    shape = tuple(
        int.from_bytes(content[4 + 4 * axis : 8 + 4 * axis], "big")
        for axis in range(ndim)
    )
    dtype = _IDX_DTYPES[type_code]
    expected_size = header_size + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(content) != expected_size:
        problem = "truncated" if len(content) < expected_size else "too long"
        raise ValueError(
            f"{path}: {problem} IDX data, shape {shape} of {dtype.itemsize}-byte "
            f"values needs {expected_size} bytes but the file has {len(content)}."
        )
    values = np.frombuffer(content, dtype=dtype, offset=header_size)
    return values.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


_FASHION_MNIST_ENV = "SKLEARN_LT_FASHION_MNIST"
_FASHION_MNIST_DEFAULT_HOME = "/usr/share/datasets/fashion-mnist"
_FASHION_MNIST_FILES = {
    "X_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "X_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_FASHION_MNIST_TARGET_NAMES = np.array(
    [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
)
_FASHION_MNIST_DESCR = """\
.. _fashion_mnist_dataset:

Fashion-MNIST{suffix}
-------------{underline}

Zalando's article images (Xiao, Rasul and Vollgraf, 2017): 28x28 grayscale
images in 10 classes, 60,000 for training and 10,000 for testing, a drop-in
replacement for MNIST. MIT license. Read from the IDX files in {data_home}.

Rows are flattened images (784 uint8 pixels in 0..255, row-major); reshape them
with ``image_shape`` = (1, 28, 28). Labels: {labels}.
{details}"""


def _fashion_mnist_home(data_home):
    if data_home is None:
        data_home = os.environ.get(_FASHION_MNIST_ENV) or _FASHION_MNIST_DEFAULT_HOME
    return Path(data_home).expanduser()


def _find_fashion_mnist_files(data_home):
    found, missing = {}, []
    for key, name in _FASHION_MNIST_FILES.items():
        for candidate in (data_home / f"{name}.gz", data_home / name):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            missing.append(f"{name}.gz")
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST not found in {data_home}: missing {', '.join(missing)} "
            "(gzip-compressed or not). sklearn_lt never downloads data. On Debian or "
            "Ubuntu install the files into "
            f"{_FASHION_MNIST_DEFAULT_HOME} with\n\n"
            "    sudo apt-get install dataset-fashion-mnist\n\n"
            "or download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
            "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from "
            "https://github.com/zalandoresearch/fashion-mnist into a directory and "
            f"pass it as data_home= or set the {_FASHION_MNIST_ENV} environment "
            "variable."
        )
    return found


def _read_fashion_mnist_split(images_path, labels_path):
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"{images_path}: expected uint8 images of shape (n, 28, 28), got "
            f"{images.dtype} of shape {images.shape}."
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"{labels_path}: expected {images.shape[0]} labels to match "
            f"{images_path}, got shape {labels.shape}."
        )
    if labels.size and labels.max() >= len(_FASHION_MNIST_TARGET_NAMES):
        raise ValueError(
            f"{labels_path}: labels must be 0..9, found {int(labels.max())}."
        )
    return images.reshape(images.shape[0], -1), labels.astype(np.int64)


def load_fashion_mnist(data_home=None, *, return_X_y=False):
    """Load Fashion-MNIST from its four IDX files, without downloading anything.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Directory holding ``train-images-idx3-ubyte.gz``,
        ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and
        ``t10k-labels-idx1-ubyte.gz`` (or the same names without ``.gz``). ``None``
        uses the environment variable ``SKLEARN_LT_FASHION_MNIST`` if set, else
        ``/usr/share/datasets/fashion-mnist``, where the Debian package
        ``dataset-fashion-mnist`` installs them.
    return_X_y : bool, default=False
        If True, return ``(X_train, X_test, y_train, y_test)`` in the order of
        :func:`sklearn.model_selection.train_test_split` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes:

        X_train : ndarray of shape (60000, 784), dtype uint8
            Train images, flattened row-major, pixels in 0..255.
        y_train : ndarray of shape (60000,), dtype int64
            Train labels, 0..9.
        X_test : ndarray of shape (10000, 784), dtype uint8
            Test images (1000 per class).
        y_test : ndarray of shape (10000,), dtype int64
            Test labels.
        class_counts : ndarray of shape (10,), dtype int64
            Train examples per class (6000 each).
        target_names : ndarray of shape (10,), dtype str
            Class names, ``target_names[label]``: "T-shirt/top", "Trouser", ...,
            "Ankle boot".
        image_shape : tuple of int
            ``(1, 28, 28)``: channels, height, width, to reshape rows into images.
        DESCR : str
            Description of the data set.

    (X_train, X_test, y_train, y_test) : tuple of ndarrays
        If ``return_X_y`` is True.

    Raises
    ------
    FileNotFoundError
        If a file is missing; the message says how to install or download them.
    ValueError
        If a file is not a valid IDX file of the expected shape.

    See Also
    --------
    load_fashion_mnist_lt : Its long-tailed version.
    read_idx : The IDX reader.

    Notes
    -----
    Pixels stay uint8 (47 MB for the train images instead of 376 MB as float64);
    scale them, for instance ``X_train / 255.0``, before fitting.

    References
    ----------
    .. [1] H. Xiao, K. Rasul and R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset
       for Benchmarking Machine Learning Algorithms", arXiv:1708.07747, 2017.

    Examples
    --------
    The files are not part of sklearn_lt, so this example is skipped when testing:

    >>> from sklearn_lt.datasets import load_fashion_mnist
    >>> fashion = load_fashion_mnist()  # doctest: +SKIP
    >>> fashion.X_train.shape, fashion.X_test.shape  # doctest: +SKIP
    ((60000, 784), (10000, 784))
    >>> fashion.target_names[fashion.y_train[0]]  # doctest: +SKIP
    np.str_('Ankle boot')
    """
    data_home = _fashion_mnist_home(data_home)
    paths = _find_fashion_mnist_files(data_home)
    X_train, y_train = _read_fashion_mnist_split(paths["X_train"], paths["y_train"])
    X_test, y_test = _read_fashion_mnist_split(paths["X_test"], paths["y_test"])
    if return_X_y:
        return X_train, X_test, y_train, y_test
    class_counts = np.bincount(y_train, minlength=len(_FASHION_MNIST_TARGET_NAMES))
    return Bunch(
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        class_counts=class_counts,
        target_names=_FASHION_MNIST_TARGET_NAMES.copy(),
        image_shape=(1, 28, 28),
        DESCR=_fashion_mnist_descr(data_home, ""),
    )


def _fashion_mnist_descr(data_home, details, suffix=""):
    return _FASHION_MNIST_DESCR.format(
        suffix=suffix,
        underline="-" * len(suffix),
        data_home=data_home,
        labels=", ".join(
            f"{label} {name}" for label, name in enumerate(_FASHION_MNIST_TARGET_NAMES)
        ),
        details=details,
    )


def load_fashion_mnist_lt(
    data_home=None,
    *,
    imbalance_ratio=100,
    profile="exp",
    n_max=None,
    random_state=0,
    return_X_y=False,
):
    """Load Fashion-MNIST with a long-tailed train split and its balanced test split.

    The 60,000 training images (6000 per class) are subsampled with
    :func:`make_long_tailed`, class 0 ("T-shirt/top") being the head and class 9
    ("Ankle boot") the tail; the test split is the full balanced test set (1000
    images per class), as in the CIFAR-LT benchmarks.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Directory of the IDX files, see :func:`load_fashion_mnist`.
    imbalance_ratio : float, default=100
        Ratio between the head and the tail train class sizes, at least 1.
    profile : {"exp", "step"}, default="exp"
        Shape of the class-size decay, see :func:`long_tailed_counts`.
    n_max : int, default=None
        Size of the head train class. ``None`` uses the smallest train class, 6000
        for the real data.
    random_state : int, RandomState instance or None, default=0
        Controls which training images are kept.
    return_X_y : bool, default=False
        If True, return ``(X_train, X_test, y_train, y_test)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        The attributes of :func:`load_fashion_mnist`, with ``X_train``, ``y_train``
        and ``class_counts`` those of the long-tailed train split. For the default
        arguments ``class_counts`` is ``[6000, 3596, 2156, 1292, 774, 464, 278,
        166, 100, 60]`` (14,886 images).

    (X_train, X_test, y_train, y_test) : tuple of ndarrays
        If ``return_X_y`` is True.

    Raises
    ------
    FileNotFoundError
        If the files are missing; the message says how to install or download them.

    See Also
    --------
    load_fashion_mnist : The balanced data set.
    load_digits_lt : A smaller long-tailed data set bundled with scikit-learn.

    Examples
    --------
    The files are not part of sklearn_lt, so this example is skipped when testing:

    >>> from sklearn_lt.datasets import load_fashion_mnist_lt
    >>> fashion = load_fashion_mnist_lt(imbalance_ratio=100)  # doctest: +SKIP
    >>> fashion.class_counts.tolist()  # doctest: +SKIP
    [6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60]
    >>> fashion.X_test.shape  # doctest: +SKIP
    (10000, 784)
    """
    X_train, X_test, y_train, y_test = load_fashion_mnist(data_home, return_X_y=True)
    X_train, y_train = make_long_tailed(
        X_train,
        y_train,
        imbalance_ratio=imbalance_ratio,
        profile=profile,
        n_max=n_max,
        random_state=random_state,
    )
    if return_X_y:
        return X_train, X_test, y_train, y_test
    class_counts = np.bincount(y_train, minlength=len(_FASHION_MNIST_TARGET_NAMES))
    details = (
        f"\nLong-tailed train split: make_long_tailed with profile={profile!r}, "
        f"imbalance_ratio={imbalance_ratio:g}; class sizes {class_counts.tolist()}. "
        "The test split is the full balanced test set.\n"
    )
    return Bunch(
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        class_counts=class_counts,
        target_names=_FASHION_MNIST_TARGET_NAMES.copy(),
        image_shape=(1, 28, 28),
        DESCR=_fashion_mnist_descr(
            _fashion_mnist_home(data_home), details, suffix="-LT"
        ),
    )
