"""
=============================================================
Re-balancing the data or the loss: SMOTE vs long-tail losses
=============================================================

Two ways to stop a classifier from ignoring rare classes:

- change the **data**: over-sample the rare classes, e.g. with SMOTE
  (:class:`imblearn.over_sampling.SMOTE`), which adds synthetic examples
  interpolated between a rare example and one of its nearest neighbours of
  the same class, then train as usual;
- change the **objective**: keep the data and train with a loss that knows
  the class frequencies, such as the logit-adjusted loss or LDAM with
  deferred re-weighting.

This example compares them on the same long-tailed data, with the same
network, scored on a balanced test set.
"""

# %%
# Data
# ----
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import make_pipeline
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sklearn_lt import LongTailClassifier
from sklearn_lt.datasets import make_long_tailed, make_long_tailed_classification
from sklearn_lt.metrics import shot_accuracy

QUICK = os.environ.get("SKLEARN_LT_EXAMPLES_QUICK", "0") not in ("", "0")
MAX_EPOCHS = 10 if QUICK else 30

X, y = make_long_tailed_classification(
    n_classes=10, n_features=20, n_max=800, imbalance_ratio=1, random_state=2
)
X_pool, X_test, y_pool, y_test = train_test_split(
    X, y, test_size=0.5, stratify=y, random_state=0
)
X_train, y_train = make_long_tailed(X_pool, y_pool, imbalance_ratio=100, random_state=0)
print("training examples per class:", np.bincount(y_train).tolist())


# %%
# Five models
# -----------
# SMOTE's ``k_neighbors`` must be smaller than the rarest class (4 examples
# here). With SMOTE's default ``sampling_strategy="auto"`` every class is
# over-sampled to the size of the head class, so the classifier after it sees
# balanced counts: a prior-aware loss after full SMOTE has nothing left to
# correct (the logit adjustment with uniform priors *is* cross-entropy).
def network(loss, **params):
    return LongTailClassifier(
        loss=loss, max_epochs=MAX_EPOCHS, random_state=0, **params
    )


def smote():
    return SMOTE(k_neighbors=3, random_state=0)


models = {
    "ERM": network("ce"),
    "SMOTE + ERM": make_pipeline(StandardScaler(), smote(), network("ce")),
    "LA loss": network("logit_adjusted"),
    "LDAM-DRW": network("ldam", reweight_schedule="drw"),
    "SMOTE + LA loss": make_pipeline(
        StandardScaler(), smote(), network("logit_adjusted")
    ),
}

rows = []
for name, model in models.items():
    start = time.perf_counter()
    model.fit(X_train, y_train)
    fit_time = time.perf_counter() - start
    scores = shot_accuracy(
        y_test, model.predict(X_test), y_train=y_train, groups="quantile"
    )
    # The classifier's class_counts_ are what it trained on (after SMOTE).
    classifier = model[-1] if hasattr(model, "steps") else model
    rows.append(
        {
            "model": name,
            "training rows": int(classifier.class_counts_.sum()),
            "balanced acc.": scores["overall"],
            "head": scores["head"],
            "middle": scores["middle"],
            "tail": scores["tail"],
            "fit time (s)": fit_time,
        }
    )
results = pd.DataFrame(rows).set_index("model")
print(results.round(3).to_string())

# %%
ax = results[["head", "middle", "tail", "balanced acc."]].plot.bar(
    figsize=(8, 4), rot=0, ylim=(0, 1), width=0.8
)
ax.set_ylabel("accuracy on the balanced test set")
ax.legend(ncols=4, loc="upper center", bbox_to_anchor=(0.5, 1.15), frameon=False)
plt.tight_layout()
plt.show()

# %%
# What to take from it
# --------------------
# - Both approaches raise tail accuracy at some cost on the head. On this
#   problem the logit-adjusted loss does at least as well as SMOTE without
#   changing the data, and trains on 988 rows instead of 4,000.
# - SMOTE multiplies the training set (here by about four; by up to the number
#   of classes in general), so the fit time grows with it, and it needs a
#   meaningful distance between examples: it suits low-dimensional tabular
#   features, much less raw images or one-hot categories (see
#   :class:`imblearn.over_sampling.SMOTENC` for mixed data).
# - A loss costs nothing extra, works on any input the network takes
#   (images, text embeddings), and keeps the real data distribution.
# - Combining full over-sampling with a prior-aware loss corrects the
#   imbalance once, not twice: the classifier counts the classes *after*
#   SMOTE, sees a uniform prior, and the logit-adjusted loss becomes plain
#   cross-entropy. To combine them, over-sample partially (a dict or callable
#   ``sampling_strategy``) and let the loss handle the remaining imbalance, as
#   in :ref:`sphx_glr_auto_examples_plot_grid_search_smote_ldam.py`.
