"""Statistics of the training data: class counts, class priors, input moments."""

import numpy as np
import scipy.sparse as sp
import torch

from ..weights import class_priors

__all__ = [
    "class_counts",
    "indicator_columns",
    "log_prior",
    "moments",
    "output_log_prior",
    "target_log_prior",
]

#: Values per chunk when input moments are accumulated: float64 temporaries of
#: 8 MiB, whatever the size of X.
_CHUNK_VALUES = 2**20


def class_counts(y_encoded, sample_weight, n_classes):
    """Examples per class, or the sum of their weights when weights are given.

    ``sample_weight`` means repetition (scikit-learn's convention), so priors,
    margins and class-balanced weights see the weighted class sizes.
    """
    return np.bincount(y_encoded, weights=sample_weight, minlength=n_classes)


def indicator_columns(X):
    """Boolean mask of the columns of 2-D ``X`` whose values are all 0 or 1.

    Such columns are indicators (one-hot or binary features). Dense ``X`` is
    read in chunks of rows (temporaries of one chunk, whatever the size of
    X), stopping as soon as no column can still be one; sparse ``X`` (CSR or
    CSC) in one pass over its stored values (implicit zeros are zeros).

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from sklearn_lt.classifiers._statistics import indicator_columns
    >>> X = np.array([[0.0, 1.0, 0.5], [1.0, 1.0, 2.0]])
    >>> indicator_columns(X)
    array([ True,  True, False])
    >>> indicator_columns(sp.csr_matrix(X))
    array([ True,  True, False])
    """
    indicator = np.ones(X.shape[1], dtype=bool)
    if sp.issparse(X):
        if X.format != "csr":
            X = X.tocoo()
        columns = X.indices if X.format == "csr" else X.col  # of each stored value
        indicator[columns[(X.data != 0) & (X.data != 1)]] = False
        return indicator
    rows = max(1, _CHUNK_VALUES // max(1, X.shape[1]))
    for start in range(0, X.shape[0], rows):
        chunk = X[start : start + rows]
        indicator &= ((chunk == 0) | (chunk == 1)).all(axis=0)
        if not indicator.any():
            break
    return indicator


def log_prior(class_counts):
    """Log class priors; zero counts count as the rarest class (never -inf)."""
    return np.log(class_priors(class_counts))


def target_log_prior(prediction_prior, class_counts):
    """Log of the class prior that ``prediction_prior`` names, float64 tensor.

    ``"train"``: the training prior; ``"balanced"``: uniform; an array-like:
    non-negative, finite weights of each class, normalized (a zero gives
    ``-inf``: that class is never predicted).
    """
    n_classes = len(class_counts)
    if isinstance(prediction_prior, str):
        if prediction_prior == "train":
            return torch.as_tensor(log_prior(class_counts))
        return torch.full((n_classes,), -np.log(n_classes), dtype=torch.float64)
    prior = np.asarray(prediction_prior, dtype=np.float64)
    if prior.shape != (n_classes,):
        raise ValueError(
            f"prediction_prior must have one entry per class, shape ({n_classes},);"
            f" got shape {prior.shape}."
        )
    if not np.isfinite(prior).all() or (prior < 0).any() or not prior.sum() > 0:
        raise ValueError(
            "prediction_prior must be finite and non-negative with a positive sum; "
            f"got {prior.tolist()}."
        )
    with np.errstate(divide="ignore"):
        return torch.as_tensor(np.log(prior / prior.sum()))


def output_log_prior(criterion, class_counts, class_weights=None):
    """Log of the prior that a trained model's prediction scores target.

    The loss says which prior its outputs are calibrated to, given the
    training prior (``criterion.output_log_prior``; the training prior for a
    loss that does not say). Class weights active at the end of training
    (re-weighting the loss, or re-sampling the batches) multiply it: the
    model was trained on data whose prior is the training prior times the
    weights. A class of weight zero, never trained on, keeps its prior.
    """
    train = torch.as_tensor(log_prior(class_counts))
    link = getattr(criterion, "output_log_prior", None)
    result = train if link is None else link(train).to(torch.float64)
    if class_weights is not None:
        weights = np.asarray(class_weights, dtype=np.float64)
        result = result + torch.as_tensor(np.log(np.where(weights > 0, weights, 1.0)))
    return result


def moments(X, axis, sample_weight=None):
    """Mean and standard deviation over ``axis``, in float64, without a copy of X.

    Sums are accumulated in float64 over chunks of rows, so the temporary
    memory is one chunk, whatever the size of ``X``. A sparse ``X`` is read
    one densified chunk at a time, so its moments are those of its dense
    form. With ``sample_weight``, the moments are weighted (a weight of k
    counts as k copies of the row).
    """
    n_rows = X.shape[0]
    per_row = int(np.prod([X.shape[a] for a in axis if a != 0]))
    weights = np.ones(n_rows) if sample_weight is None else sample_weight
    shape = (-1,) + (1,) * (X.ndim - 1)
    rows = max(1, _CHUNK_VALUES // max(1, int(np.prod(X.shape[1:]))))
    chunks = range(0, n_rows, rows)

    def chunk(start):
        values = X[start : start + rows]
        return values.toarray() if sp.issparse(values) else values

    def weighted_sum(values, start):
        if sample_weight is None:  # no product with ones: one pass less
            return values.sum(axis=axis, dtype=np.float64)
        w = weights[start : start + rows].reshape(shape)
        return (values * w).sum(axis=axis, dtype=np.float64)

    def squared_deviations(start):
        deviations = chunk(start) - shaped_mean  # a float64 chunk
        return np.multiply(deviations, deviations, out=deviations)

    total_weight = float(np.sum(weights, dtype=np.float64)) * per_row
    total = sum(weighted_sum(chunk(start), start) for start in chunks)
    mean = total / total_weight
    shaped_mean = np.expand_dims(mean, axis)
    squares = sum(weighted_sum(squared_deviations(start), start) for start in chunks)
    return mean, np.sqrt(squares / total_weight)
