"""Statistics of the training data: class counts, class priors, input moments."""

import numpy as np

from ..weights import class_priors

__all__ = ["class_counts", "log_prior", "moments"]

#: Values per chunk when input moments are accumulated: float64 temporaries of
#: 8 MiB, whatever the size of X.
_CHUNK_VALUES = 2**20


def class_counts(y_encoded, sample_weight, n_classes):
    """Examples per class, or the sum of their weights when weights are given.

    ``sample_weight`` means repetition (scikit-learn's convention), so priors,
    margins and class-balanced weights see the weighted class sizes.
    """
    return np.bincount(y_encoded, weights=sample_weight, minlength=n_classes)


def log_prior(class_counts):
    """Log class priors; zero counts count as the rarest class (never -inf)."""
    return np.log(class_priors(class_counts))


def moments(X, axis, sample_weight=None):
    """Mean and standard deviation over ``axis``, in float64, without a copy of X.

    Sums are accumulated in float64 over chunks of rows, so the temporary
    memory is one chunk, whatever the size of ``X``. With ``sample_weight``,
    the moments are weighted (a weight of k counts as k copies of the row).
    """
    n_rows = X.shape[0]
    per_row = int(np.prod([X.shape[a] for a in axis if a != 0]))
    weights = np.ones(n_rows) if sample_weight is None else sample_weight
    shape = (-1,) + (1,) * (X.ndim - 1)
    rows = max(1, _CHUNK_VALUES // max(1, int(np.prod(X.shape[1:]))))
    chunks = range(0, n_rows, rows)

    def weighted_sum(values, start):
        w = weights[start : start + rows].reshape(shape)
        return (values * w).sum(axis=axis, dtype=np.float64)

    total_weight = float(np.sum(weights, dtype=np.float64)) * per_row
    total = sum(weighted_sum(X[start : start + rows], start) for start in chunks)
    mean = total / total_weight
    shaped_mean = np.expand_dims(mean, axis)
    squares = sum(
        weighted_sum(np.square(X[start : start + rows] - shaped_mean), start)
        for start in chunks
    )
    return mean, np.sqrt(squares / total_weight)
