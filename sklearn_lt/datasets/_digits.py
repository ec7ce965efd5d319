"""A long-tailed train split and a balanced test split of scikit-learn's digits."""

import numbers

import numpy as np
from sklearn.datasets import load_digits
from sklearn.utils import check_random_state, check_scalar

from ._bunch import _split_bunch
from ._long_tailed import _smallest_keys_per_class, make_long_tailed

__all__ = ["load_digits_lt"]

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

    def describe(class_counts):
        return _DIGITS_LT_DESCR.format(
            n_test_per_class=n_test_per_class,
            profile=profile,
            imbalance_ratio=imbalance_ratio,
            n_max=int(class_counts.max()),
            class_counts=class_counts.tolist(),
        )

    return _split_bunch(
        X_train,
        X_test,
        y_train,
        y_test,
        target_names=digits.target_names,
        image_shape=(1, 8, 8),
        describe=describe,
        return_X_y=return_X_y,
    )
