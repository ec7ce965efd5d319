"""Per-class weights computed from class counts.

Both functions return float64 arrays normalized so that the weights sum to the
number of classes, the convention of Cui et al. (2019): a balanced problem gets
weights of one. A class with a count of zero gets weight zero (it has no examples
to weight, and ``1 - beta**0 = 0`` would otherwise divide by zero).
"""

import numbers

import numpy as np

__all__ = [
    "check_class_counts",
    "class_priors",
    "effective_number_weights",
    "inverse_frequency_weights",
]


def check_class_counts(class_counts, *, name="class_counts"):
    """Validate class counts and return them as a 1-D float64 array.

    Parameters
    ----------
    class_counts : array-like of shape (n_classes,)
        Number of training examples of each class. Counts may be fractional
        (weighted counts) but must be finite and non-negative, and at least one
        must be positive.
    name : str, default="class_counts"
        Name of the argument, used in error messages.

    Returns
    -------
    counts : ndarray of shape (n_classes,), dtype float64
        A new array; the input is never modified.

    Examples
    --------
    >>> from sklearn_lt.weights import check_class_counts
    >>> check_class_counts([10, 2, 0])
    array([10.,  2.,  0.])
    """
    try:
        counts = np.array(class_counts, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be a 1-D array of non-negative numbers; got {class_counts!r}."
        ) from exc
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-D array with one count per class; "
            f"got shape {counts.shape}."
        )
    if not np.all(np.isfinite(counts)):
        raise ValueError(f"{name} must be finite; got {counts}.")
    if np.any(counts < 0):
        raise ValueError(f"{name} must be non-negative; got {counts}.")
    if not np.any(counts > 0):
        raise ValueError(f"{name} must contain at least one positive count.")
    return counts


def class_priors(class_counts):
    r"""Class priors :math:`\pi_j = n_j / \sum_k n_k`, never zero.

    A class with a count of zero (possible when the class list is fixed in
    advance) is treated as if it were as rare as the rarest observed class, so
    that :math:`\log \pi_j` stays finite. The same rule gives the LDAM margins,
    VS scales and logit adjustments of such classes in :mod:`sklearn_lt.losses`,
    the classifiers' ``posthoc_tau`` and
    :class:`~sklearn_lt.posthoc.LogitAdjustedClassifier`.

    Parameters
    ----------
    class_counts : array-like of shape (n_classes,)
        Number (or total weight) of training examples of each class.

    Returns
    -------
    priors : ndarray of shape (n_classes,), dtype float64
        Positive, summing to one.

    Examples
    --------
    >>> from sklearn_lt.weights import class_priors
    >>> class_priors([6, 2, 0])
    array([0.6, 0.2, 0.2])
    """
    counts = check_class_counts(class_counts)
    safe = np.where(counts > 0, counts, counts[counts > 0].min())
    return safe / safe.sum()


def _weights_from_logs(log_weights, present):
    """Weights summing to the number of classes from their logs (absent: 0).

    Working with logs keeps tiny fractional counts from overflowing to inf.
    """
    weights = np.zeros(present.shape)
    shifted = log_weights - log_weights.max()
    weights[present] = np.exp(shifted)
    return weights * (weights.size / weights.sum())


def effective_number_weights(class_counts, beta=0.9999):
    r"""Class-balanced weights from the effective number of samples.

    The effective number of a class with :math:`n_j` examples is
    :math:`E_{n_j} = (1 - \beta^{n_j}) / (1 - \beta)`; each class is weighted by
    its inverse,

    .. math::

        w_j \propto \frac{1 - \beta}{1 - \beta^{n_j}},

    and the weights are scaled so that :math:`\sum_j w_j = C`, the number of
    classes.

    Parameters
    ----------
    class_counts : array-like of shape (n_classes,)
        Number of training examples of each class.
    beta : float, default=0.9999
        Hyperparameter in ``[0, 1)``. ``beta=0`` gives all ones (no re-weighting);
        ``beta -> 1`` approaches inverse class frequency. Cui et al. search
        ``{0.9, 0.99, 0.999, 0.9999}``.

    Returns
    -------
    weights : ndarray of shape (n_classes,), dtype float64
        Non-negative weights summing to ``n_classes``. Classes with a count of
        zero get weight zero.

    See Also
    --------
    inverse_frequency_weights : The ``beta -> 1`` limit.

    Notes
    -----
    The weights are computed in log space, with :math:`1 - \beta^{n}` as
    ``-expm1(n * log(beta))``, so that ``beta`` close to one and tiny
    fractional counts keep full precision.

    References
    ----------
    .. [1] Y. Cui, M. Jia, T.-Y. Lin, Y. Song, S. Belongie, "Class-Balanced Loss
       Based on Effective Number of Samples", CVPR 2019.

    Examples
    --------
    >>> from sklearn_lt.weights import effective_number_weights
    >>> effective_number_weights([5000, 500, 50], beta=0.999).round(3)
    array([0.126, 0.317, 2.557])
    >>> effective_number_weights([5000, 500, 50], beta=0.0)
    array([1., 1., 1.])
    """
    counts = check_class_counts(class_counts)
    if (
        not isinstance(beta, numbers.Real)
        or isinstance(beta, bool)
        or not 0.0 <= beta < 1.0
    ):
        raise ValueError(f"beta must be a float in [0, 1); got {beta!r}.")
    present = counts > 0
    n = counts[present]
    if beta == 0.0:
        return _weights_from_logs(np.zeros(n.size), present)
    log_beta = np.log(beta)
    exponent = n * log_beta  # <= 0
    with np.errstate(divide="ignore"):
        # log(1 - beta**n); for tiny n * log(beta), 1 - beta**n ~ n * -log(beta).
        log_one_minus_beta_n = np.where(
            exponent < -1e-8,
            np.log(-np.expm1(np.minimum(exponent, -1e-8))),
            np.log(n) + np.log(-log_beta),
        )
    return _weights_from_logs(np.log1p(-beta) - log_one_minus_beta_n, present)


def inverse_frequency_weights(class_counts):
    r"""Weights proportional to the inverse class frequency, :math:`w_j \propto 1/n_j`.

    Parameters
    ----------
    class_counts : array-like of shape (n_classes,)
        Number of training examples of each class.

    Returns
    -------
    weights : ndarray of shape (n_classes,), dtype float64
        Weights summing to ``n_classes``; classes with a count of zero get
        weight zero.

    See Also
    --------
    effective_number_weights : Smoothed version controlled by ``beta``.

    Examples
    --------
    >>> from sklearn_lt.weights import inverse_frequency_weights
    >>> inverse_frequency_weights([300, 100, 0])
    array([0.75, 2.25, 0.  ])
    """
    counts = check_class_counts(class_counts)
    present = counts > 0
    return _weights_from_logs(-np.log(counts[present]), present)
