"""Top-label expected calibration error."""

from numbers import Integral

import numpy as np
from sklearn.utils.validation import column_or_1d

__all__ = ["expected_calibration_error"]


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
