"""
=========================================
Quickstart: a long-tailed tabular problem
=========================================

A classifier trained by plain empirical risk minimization (ERM, cross-entropy)
on long-tailed data learns the class imbalance along with the classes: it
predicts the frequent "head" classes well and rarely predicts the "tail"
classes. This example trains :class:`~sklearn_lt.LongTailClassifier` three
ways on the same data and evaluates it on a *balanced* test set:

- ERM: ``loss="ce"``;
- LDAM-DRW: ``loss="ldam", reweight_schedule="drw"`` (Cao et al., 2019);
- the logit-adjusted loss: ``loss="logit_adjusted"`` (Menon et al., 2021).
"""

# %%
# A long-tailed training set and a balanced test set
# --------------------------------------------------
# We draw a balanced pool of 10 Gaussian classes, keep half of every class as
# a balanced test set, and subsample the other half so that class sizes decay
# exponentially from 400 (class 0, the head) to 4 (class 9, the tail): an
# imbalance ratio of 100, as in CIFAR-10-LT.
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from sklearn_lt import LongTailClassifier
from sklearn_lt.datasets import make_long_tailed, make_long_tailed_classification
from sklearn_lt.metrics import long_tail_report, shot_accuracy
from sklearn_lt.plotting import ClassAccuracyDisplay, TrainingCurvesDisplay

# Fewer epochs when the test suite runs the examples.
QUICK = os.environ.get("SKLEARN_LT_EXAMPLES_QUICK", "0") not in ("", "0")
MAX_EPOCHS = 10 if QUICK else 30

X, y = make_long_tailed_classification(
    n_classes=10, n_features=20, n_max=800, imbalance_ratio=1, random_state=0
)
X_pool, X_test, y_pool, y_test = train_test_split(
    X, y, test_size=0.5, stratify=y, random_state=0
)
X_train, y_train = make_long_tailed(X_pool, y_pool, imbalance_ratio=100, random_state=0)
print("training examples per class:", np.bincount(y_train).tolist())
print("test examples per class:    ", np.bincount(y_test).tolist())

# %%
# Three training objectives
# -------------------------
# Each method is one parameter setting of the same estimator. The class counts
# (for the LDAM margins, the logit-adjustment priors and the DRW weights) are
# taken from ``y`` in every ``fit``.
models = {
    "ERM": LongTailClassifier(loss="ce", max_epochs=MAX_EPOCHS, random_state=0),
    "LDAM-DRW": LongTailClassifier(
        loss="ldam", reweight_schedule="drw", max_epochs=MAX_EPOCHS, random_state=0
    ),
    "LA loss": LongTailClassifier(
        loss="logit_adjusted", max_epochs=MAX_EPOCHS, random_state=0
    ),
}
predictions = {}
for name, model in models.items():
    model.fit(X_train, y_train)
    predictions[name] = model.predict(X_test)
    scores = shot_accuracy(
        y_test, predictions[name], y_train=y_train, groups="quantile"
    )
    print(
        f"{name:9s} balanced accuracy {scores['overall']:.3f}  "
        f"head {scores['head']:.3f}  middle {scores['middle']:.3f}  "
        f"tail {scores['tail']:.3f}"
    )

# %%
# The test set is balanced, so plain accuracy is balanced accuracy. The
# groups are thirds of the classes by training count (``groups="quantile"``);
# with ``groups="shots"`` (the default) :func:`~sklearn_lt.metrics.shot_accuracy`
# uses the many (> 100 examples) / medium / few (< 20) thresholds of the
# long-tail benchmarks.
#
# Per-class accuracy against class frequency
# ------------------------------------------
# ERM's accuracy falls with the training count; the long-tail objectives
# trade a little head accuracy for much better tail accuracy.
fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
for name, y_pred in predictions.items():
    ClassAccuracyDisplay.from_predictions(
        y_test, y_pred, y_train=y_train, groups="quantile", name=name, ax=ax
    )
plt.show()

# %%
# A per-class report
# ------------------
# :func:`~sklearn_lt.metrics.long_tail_report` lists the classes from head to
# tail with their training and test support.
print(long_tail_report(y_test, predictions["LA loss"], y_train=y_train))

# %%
# Deferred re-weighting in the training curves
# --------------------------------------------
# LDAM-DRW trains with uniform class weights for the first 80% of the epochs
# (``deferral_start=0.8``) and with class-balanced weights afterwards; the
# dashed line marks the switch. As in Cao et al., the step schedule has
# lowered the learning rate 100-fold by then, so on a small data set that the
# network already fits, the deferred phase changes little: here LDAM-DRW's
# gain over ERM comes mostly from its margins. Deferred re-weighting pays off
# on large data sets trained for many epochs.
TrainingCurvesDisplay.from_estimator(models["LDAM-DRW"], name="LDAM-DRW")
plt.show()
