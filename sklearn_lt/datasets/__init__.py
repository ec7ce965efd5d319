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

from ._digits import load_digits_lt
from ._fashion_mnist import load_fashion_mnist, load_fashion_mnist_lt
from ._idx import read_idx
from ._long_tailed import make_long_tailed
from ._profiles import long_tailed_counts
from ._synthetic import make_long_tailed_classification

__all__ = [
    "load_digits_lt",
    "load_fashion_mnist",
    "load_fashion_mnist_lt",
    "long_tailed_counts",
    "make_long_tailed",
    "make_long_tailed_classification",
    "read_idx",
]
