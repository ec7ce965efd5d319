"""Class-size profiles of long-tailed data sets: exponential and step decay."""

import numbers

import numpy as np
from sklearn.utils import check_scalar

__all__ = ["long_tailed_counts"]

_PROFILES = ("exp", "step")

# A count whose floating-point value lies this close (relatively) below an integer is
# that integer: pow() and the product carry a few ulps of rounding error, which must
# not turn an exact 1.0 into 0.9999999999999999 and drop an example.
_FLOOR_RELATIVE_TOLERANCE = 1e-12


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
