"""What the loaders return: a train/test split of images with its class counts."""

import numpy as np
from sklearn.utils import Bunch


def _split_bunch(
    X_train,
    X_test,
    y_train,
    y_test,
    *,
    target_names,
    image_shape,
    describe,
    return_X_y,
):
    """The loaders' Bunch, or the tuple ``(X_train, X_test, y_train, y_test)``.

    ``describe`` maps the train class counts (in the order of ``target_names``)
    to the ``DESCR`` text.
    """
    if return_X_y:
        return X_train, X_test, y_train, y_test
    class_counts = np.bincount(y_train, minlength=len(target_names))
    return Bunch(
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        class_counts=class_counts,
        target_names=target_names,
        image_shape=image_shape,
        DESCR=describe(class_counts),
    )
