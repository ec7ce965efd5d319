"""
==========================================================
Tuning LDAM-DRW inside an imbalanced-learn SMOTE pipeline
==========================================================

:class:`~sklearn_lt.LongTailClassifier` is a scikit-learn estimator, so it
fits in an :func:`imblearn.pipeline.make_pipeline` after a resampler and its
hyperparameters can be tuned with :class:`~sklearn.model_selection.GridSearchCV`.
Here the pipeline scales the features, over-samples the rarest classes with
SMOTE, and trains with the LDAM loss and deferred re-weighting (LDAM-DRW); the
grid searches the class-balanced ``beta`` and the largest LDAM margin
``max_margin``, scored by balanced accuracy.

The labels are strings: the estimator encodes them itself and ``predict``
returns the original labels.
"""

# %%
# Data with string labels
# -----------------------
import os
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import make_pipeline
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler

from sklearn_lt import LongTailClassifier
from sklearn_lt.datasets import make_long_tailed, make_long_tailed_classification
from sklearn_lt.metrics import shot_accuracy

QUICK = os.environ.get("SKLEARN_LT_EXAMPLES_QUICK", "0") not in ("", "0")
MAX_EPOCHS = 8 if QUICK else 20

X, y = make_long_tailed_classification(
    n_classes=8, n_features=20, n_max=600, imbalance_ratio=1, random_state=1
)
species = np.array(
    ["oak", "pine", "birch", "maple", "alder", "rowan", "yew", "juniper"]
)
y = species[y]
X_pool, X_test, y_pool, y_test = train_test_split(
    X, y, test_size=0.5, stratify=y, random_state=0
)
# Head-to-tail order of the classes: the order of `species`.
X_train, y_train = make_long_tailed(
    X_pool, y_pool, imbalance_ratio=50, head_classes=species, random_state=0
)
print({str(label): n for label, n in Counter(y_train).most_common()})

# %%
# The pipeline: partial SMOTE, then LDAM-DRW
# ------------------------------------------
# The classifier counts the classes of the ``y`` it receives, i.e. *after*
# SMOTE. Over-sampling every class up to the head class (SMOTE's default)
# would leave nothing long-tailed for LDAM's margins and DRW's weights to act
# on: all margins and weights would be equal. So SMOTE only lifts the rarest
# classes to a quarter of the head class and the loss handles the remaining
# imbalance.


def quarter_of_head(y):
    """SMOTE target: every class gets at least a quarter of the head's size."""
    counts = Counter(y)
    floor = max(counts.values()) // 4
    return {label: max(n, floor) for label, n in counts.items()}


pipeline = make_pipeline(
    StandardScaler(),
    SMOTE(sampling_strategy=quarter_of_head, k_neighbors=3, random_state=0),
    LongTailClassifier(
        loss="ldam", reweight_schedule="drw", max_epochs=MAX_EPOCHS, random_state=0
    ),
)

# %%
# Grid search over ``beta`` and ``max_margin``
# --------------------------------------------
# Parameters of a pipeline step are addressed as ``<step name>__<parameter>``;
# :func:`~imblearn.pipeline.make_pipeline` names a step after its lower-cased
# class. SMOTE runs inside each cross-validation fold, on that fold's training
# part only, so no synthetic example leaks into a validation fold.
param_grid = {
    "longtailclassifier__beta": [0.9, 0.999, 0.9999],
    "longtailclassifier__max_margin": [0.3, 0.5],
}
search = GridSearchCV(
    pipeline,
    param_grid,
    scoring="balanced_accuracy",
    cv=StratifiedKFold(n_splits=3, shuffle=True, random_state=0),
)
search.fit(X_train, y_train)
print("best parameters:", search.best_params_)
print(f"best cross-validated balanced accuracy: {search.best_score_:.3f}")

# %%
# The cross-validated scores, with their standard deviation over the folds:
results = pd.DataFrame(search.cv_results_).rename(
    columns=lambda name: name.removeprefix("param_longtailclassifier__")
)
columns = ["beta", "max_margin", "mean_test_score", "std_test_score"]
print(results[columns].to_string(index=False, float_format="{:.4g}".format))
table = results.pivot(index="beta", columns="max_margin", values="mean_test_score")

# %%
# On this small problem ``beta`` hardly matters: the deferred phase covers the
# last 20% of the epochs (``deferral_start=0.8``), which the step schedule
# trains at 1% of the learning rate (as in Cao et al.), and by then the
# network already fits its few thousand training rows, so re-weighting has
# little loss left to re-balance. ``max_margin`` changes the decision
# boundaries from the first epoch and matters more, though the differences
# are of the order of the fold-to-fold spread: read them as such. On large
# data sets trained for many epochs (CIFAR-LT, 200 epochs), the DRW phase is
# where LDAM-DRW gains most of its advantage over LDAM.

# %%
# Held-out evaluation of the refitted best pipeline
# -------------------------------------------------
# ``predict`` returns tree names; accuracy per third of the classes comes
# from :func:`~sklearn_lt.metrics.shot_accuracy` with the original (pre-SMOTE)
# training labels.
y_pred = search.predict(X_test)
print(y_pred[:5])
scores = shot_accuracy(y_test, y_pred, y_train=y_train, groups="quantile")
print({group: round(value, 3) for group, value in scores.items()})

fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
im = ax.imshow(table.to_numpy(), cmap="viridis")
ax.set_xticks(range(table.shape[1]), [f"{v:g}" for v in table.columns])
ax.set_yticks(range(table.shape[0]), [f"{v:g}" for v in table.index])
ax.set_xlabel("max_margin")
ax.set_ylabel("beta")
fig.colorbar(im, label="mean CV balanced accuracy")
plt.show()
