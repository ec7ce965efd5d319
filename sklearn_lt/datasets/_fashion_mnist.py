"""Fashion-MNIST from its IDX files, balanced or long-tailed; never downloaded."""

import os
from pathlib import Path

import numpy as np

from ._bunch import _split_bunch
from ._idx import read_idx
from ._long_tailed import make_long_tailed

__all__ = ["load_fashion_mnist", "load_fashion_mnist_lt"]

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
    return _split_bunch(
        X_train,
        X_test,
        y_train,
        y_test,
        target_names=_FASHION_MNIST_TARGET_NAMES.copy(),
        image_shape=(1, 28, 28),
        describe=lambda class_counts: _fashion_mnist_descr(data_home, ""),
        return_X_y=return_X_y,
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

    def describe(class_counts):
        details = (
            f"\nLong-tailed train split: make_long_tailed with profile={profile!r}, "
            f"imbalance_ratio={imbalance_ratio:g}; class sizes "
            f"{class_counts.tolist()}. The test split is the full balanced test set.\n"
        )
        return _fashion_mnist_descr(
            _fashion_mnist_home(data_home), details, suffix="-LT"
        )

    return _split_bunch(
        X_train,
        X_test,
        y_train,
        y_test,
        target_names=_FASHION_MNIST_TARGET_NAMES.copy(),
        image_shape=(1, 28, 28),
        describe=describe,
        return_X_y=return_X_y,
    )
