"""
===============================================================
Post-hoc logit adjustment of a gradient-boosting classifier
===============================================================

A classifier trained on long-tailed data estimates :math:`p(y \\mid x)` under
the training class prior :math:`\\pi`, so its predictions favour the
frequent classes. Menon et al. (2021) show that the rule minimising the
*balanced* error divides the prior out:

.. math::

    \\hat y(x) = \\arg\\max_y \\; \\log p(y \\mid x) - \\tau \\log \\pi_y,

with :math:`\\tau = 1` for a calibrated model. This needs no retraining and
works for any classifier with ``predict_proba``:
:class:`~sklearn_lt.posthoc.LogitAdjustedClassifier` wraps it, here around
scikit-learn's :class:`~sklearn.ensemble.HistGradientBoostingClassifier`, and
``tau="auto"`` picks :math:`\\tau` by cross-validated balanced accuracy.
"""

# %%
# Data
# ----
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split

from sklearn_lt.datasets import make_long_tailed, make_long_tailed_classification
from sklearn_lt.metrics import shot_accuracy
from sklearn_lt.posthoc import LogitAdjustedClassifier

QUICK = os.environ.get("SKLEARN_LT_EXAMPLES_QUICK", "0") not in ("", "0")
MAX_ITER = 30 if QUICK else 50

X, y = make_long_tailed_classification(
    n_classes=10, n_features=20, n_max=1500, imbalance_ratio=1, random_state=3
)
X_pool, X_test, y_pool, y_test = train_test_split(
    X, y, test_size=0.4, stratify=y, random_state=0
)
X_train, y_train = make_long_tailed(X_pool, y_pool, imbalance_ratio=50, random_state=0)
print("training examples per class:", np.bincount(y_train).tolist())


# %%
# Four models
# -----------
# The plain model, the fixed adjustment ``tau=1``, the tuned adjustment, and,
# for comparison, scikit-learn's own answer to imbalance: training with
# ``class_weight="balanced"``.
def boosting(**params):
    return HistGradientBoostingClassifier(max_iter=MAX_ITER, random_state=0, **params)


models = {
    "plain": boosting(),
    "adjusted, tau=1": LogitAdjustedClassifier(boosting(), tau=1.0),
    'adjusted, tau="auto"': LogitAdjustedClassifier(
        boosting(), tau="auto", cv=3, random_state=0
    ),
    'class_weight="balanced"': boosting(class_weight="balanced"),
}
rows = []
for name, model in models.items():
    model.fit(X_train, y_train)
    scores = shot_accuracy(
        y_test, model.predict(X_test), y_train=y_train, groups="quantile"
    )
    rows.append({"model": name, **scores})
results = pd.DataFrame(rows).set_index("model")
print(results.rename(columns={"overall": "balanced acc."}).round(3).to_string())

# %%
# The adjustment moves accuracy from the head classes to the tail classes
# and raises balanced accuracy without refitting the model: ``tau`` only
# changes how its probabilities are turned into a prediction.
#
# The tuned ``tau``
# -----------------
# ``tau="auto"`` fits the model once per fold, scores every ``tau`` of the
# grid on the out-of-fold probabilities, and refits on all the data. Gradient
# boosting is over-confident on its training classes, so the best ``tau`` is
# usually above the theoretical 1.
tuned = models['adjusted, tau="auto"']
print(f"chosen tau: {tuned.tau_:.1f} (cross-validated score {tuned.best_score_:.3f})")

fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
mean = tuned.cv_results_["mean_test_score"]
std = tuned.cv_results_["std_test_score"]
ax.plot(tuned.cv_results_["tau"], mean, marker="o")
ax.fill_between(tuned.cv_results_["tau"], mean - std, mean + std, alpha=0.2)
ax.axvline(tuned.tau_, color="k", linestyle="--", label=f"tau_ = {tuned.tau_:.1f}")
ax.set_xlabel("tau")
ax.set_ylabel("CV balanced accuracy")
ax.legend()
plt.show()

# %%
# Notes
# -----
# - Adjust a model trained with the *plain* loss. A model trained with the
#   logit-adjusted or balanced-softmax loss, or after re-sampling to balanced
#   classes, already accounts for the prior; adjusting it again over-corrects.
# - The prior is estimated from the ``y`` given to ``fit``. For a model
#   trained elsewhere, wrap it in :class:`~sklearn.frozen.FrozenEstimator` and
#   pass held-out data (or ``prior=``).
# - The neural classifiers of sklearn_lt have the same adjustment built in:
#   ``LongTailClassifier(loss="ce", posthoc_tau=1.0)``, changeable after
#   fitting with ``set_params(posthoc_tau=...)``.
