"""A synthetic long-tailed classification problem: Gaussian blobs."""

import numbers

import numpy as np
from sklearn.utils import check_random_state, check_scalar

from ._profiles import (
    _check_imbalance_ratio,
    _check_profile,
    _profile_counts,
    long_tailed_counts,
)

__all__ = ["make_long_tailed_classification"]


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
