"""
=======================================================
Fashion-MNIST-LT: cross-entropy, LDAM-DRW and LA loss
=======================================================

The long-tailed benchmarks of the literature (CIFAR-10-LT, ImageNet-LT)
subsample the training split of a balanced image data set so that class sizes
decay exponentially, and keep the balanced test split. This example builds
Fashion-MNIST-LT with an imbalance ratio of 100 (6000 "T-shirt/top" images
down to 60 "Ankle boot" images) and compares plain cross-entropy (ERM),
LDAM-DRW and the logit-adjusted loss, by balanced accuracy and by accuracy on
the many-shot (> 100 training images), medium-shot and few-shot (< 20)
classes. (At ratio 100 with 6000 head images, no class is few-shot: its
accuracy is NaN, as an empty group should be.)

Fashion-MNIST is not shipped with sklearn_lt and never downloaded: install
the Debian package ``dataset-fashion-mnist`` (files in
``/usr/share/datasets/fashion-mnist``) or point the environment variable
``SKLEARN_LT_FASHION_MNIST`` at a directory holding the four IDX files. The
example prints a message and stops when the files are missing.

On a CUDA GPU the images go through a small CNN
(:class:`~sklearn_lt.LongTailImageClassifier`, ``architecture="cnn"``); on a
CPU through :class:`~sklearn_lt.LongTailClassifier`'s MLP on the 784 pixels,
which takes seconds instead of minutes. With ``SKLEARN_LT_EXAMPLES_QUICK=1``
it trains for 3 epochs on a third of the head images.
"""

# %%
# Load the data
# -------------
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from sklearn_lt import LongTailClassifier, LongTailImageClassifier
from sklearn_lt.datasets import load_fashion_mnist_lt
from sklearn_lt.metrics import shot_accuracy
from sklearn_lt.plotting import ClassAccuracyDisplay

QUICK = os.environ.get("SKLEARN_LT_EXAMPLES_QUICK", "0") not in ("", "0")

try:
    data = load_fashion_mnist_lt(
        imbalance_ratio=100, n_max=2000 if QUICK else None, random_state=0
    )
except FileNotFoundError as exc:
    data = None
    print(f"Skipping this example: {exc}")

if data is not None:
    names = data.target_names.tolist()
    print(dict(zip(names, data.class_counts.tolist(), strict=True)))
    print("test images per class:", np.bincount(data.y_test).tolist())

# %%
# Three losses, one network
# -------------------------
GPU = torch.cuda.is_available()


def make_model(**params):
    if GPU:
        return LongTailImageClassifier(
            architecture="cnn",
            image_shape=(1, 28, 28),
            max_epochs=15,
            random_state=0,
            **params,
        )
    return LongTailClassifier(max_epochs=3 if QUICK else 10, random_state=0, **params)


methods = {
    "ERM": {"loss": "ce"},
    "LDAM-DRW": {"loss": "ldam", "reweight_schedule": "drw"},
    "LA loss": {"loss": "logit_adjusted"},
}
predictions = {}
if data is not None:
    rows = []
    for name, params in methods.items():
        model = make_model(**params).fit(data.X_train, data.y_train)
        predictions[name] = model.predict(data.X_test)
        shots = shot_accuracy(
            data.y_test, predictions[name], class_counts=data.class_counts
        )
        thirds = shot_accuracy(
            data.y_test,
            predictions[name],
            class_counts=data.class_counts,
            groups="quantile",
        )
        rows.append({"model": name, **shots, "tail third": thirds["tail"]})
    results = pd.DataFrame(rows).set_index("model")
    results = results.rename(columns={"overall": "balanced acc."})
    print(results.round(3).to_string())

# %%
# ``many``, ``medium`` and ``few`` use the benchmarks' thresholds (more than
# 100, 20 to 100, fewer than 20 training images); ``tail third`` is the mean
# accuracy of the three rarest classes (``groups="quantile"``), which stays
# defined whatever the class sizes.

# %%
# Per-class accuracy
# ------------------
# The classes are sorted from head to tail; the step line is the number of
# training images of each class (log scale).
if data is not None:
    # Class names instead of numbers on the x-axis.
    class_counts = dict(zip(names, data.class_counts.tolist(), strict=True))
    fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
    for name, y_pred in predictions.items():
        ClassAccuracyDisplay.from_predictions(
            data.target_names[data.y_test],
            data.target_names[y_pred],
            class_counts=class_counts,
            name=name,
            ax=ax,
        )
    ax.tick_params(axis="x", labelrotation=30)
    plt.show()

# %%
# The long-tail losses gain most on the rarer classes (the ``medium`` and
# ``tail third`` columns); the plot shows class by class where the accuracy
# moves. The logit-adjusted loss needs no schedule: it corrects for the class
# priors from the first epoch, whereas DRW re-weights only in the last 20% of
# the epochs.
# For the papers' setting, train ``LongTailImageClassifier(architecture=
# "resnet32")`` for 200 epochs on a GPU; the benchmarks page of the
# documentation (``docs/benchmarks.md``) has measured results.
