"""
==================================
Bring your own PyTorch network
==================================

:class:`~sklearn_lt.LongTailClassifier` trains a multi-layer perceptron by
default; ``module=`` replaces it by any :class:`torch.nn.Module` class, built
in ``fit`` with ``module_params`` plus whichever of ``n_features``,
``n_classes`` and ``cosine_head`` its constructor accepts. Everything else
(losses, schedules, input standardization, seeding, devices, label encoding,
``GridSearchCV``) works unchanged.

Conventions that let the estimator do more with the network:

- accept ``cosine_head`` and use a cosine last layer
  (:class:`~sklearn_lt.modules.NormedLinear`) when it is true: LDAM's scale
  and margins are defined for cosine logits in [-1, 1], and the estimator
  passes ``cosine_head=True`` for ``loss="ldam"``;
- name the last layer ``head``: the sigmoid losses initialize its bias and
  ``tau_norm`` rescales its weights at prediction time.
"""

# %%
# A residual MLP
# --------------
import os

import numpy as np
import torch
from sklearn.model_selection import GridSearchCV, train_test_split
from torch import nn

from sklearn_lt import LongTailClassifier
from sklearn_lt.datasets import make_long_tailed, make_long_tailed_classification
from sklearn_lt.metrics import shot_accuracy
from sklearn_lt.modules import NormedLinear

QUICK = os.environ.get("SKLEARN_LT_EXAMPLES_QUICK", "0") not in ("", "0")
MAX_EPOCHS = 10 if QUICK else 30


class ResidualMLP(nn.Module):
    """Linear stem, ``depth`` residual blocks with layer norm, a class head."""

    def __init__(
        self, n_features, n_classes, width=64, depth=2, dropout=0.0, cosine_head=False
    ):
        super().__init__()
        self.stem = nn.Linear(n_features, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.LayerNorm(width),
                nn.Linear(width, width),
                nn.GELU(),
                nn.Dropout(dropout),
            )
            for _ in range(depth)
        )
        self.head = (
            NormedLinear(width, n_classes)
            if cosine_head
            else nn.Linear(width, n_classes)
        )

    def forward(self, X):
        h = self.stem(X)
        for block in self.blocks:
            h = h + block(h)
        return self.head(h)


# %%
# Long-tailed data
# ----------------
X, y = make_long_tailed_classification(
    n_classes=10, n_features=20, n_max=800, imbalance_ratio=1, random_state=0
)
X_pool, X_test, y_pool, y_test = train_test_split(
    X, y, test_size=0.5, stratify=y, random_state=0
)
X_train, y_train = make_long_tailed(X_pool, y_pool, imbalance_ratio=100, random_state=0)

# %%
# Train it with LDAM-DRW
# ----------------------
clf = LongTailClassifier(
    loss="ldam",
    reweight_schedule="drw",
    module=ResidualMLP,
    module_params={"width": 128, "depth": 2, "dropout": 0.1},
    max_epochs=MAX_EPOCHS,
    random_state=0,
)
clf.fit(X_train, y_train)
print(clf.net_.module_)

# %%
# The fitted network is ``net_.module_``: the estimator wraps it in
# :class:`~sklearn_lt.modules.Standardized`, which standardizes the inputs
# with the training statistics, and the head is a cosine layer because
# LDAM asked for it.
print(type(clf.net_.module_.network.head).__name__)
scores = shot_accuracy(y_test, clf.predict(X_test), y_train=y_train, groups="quantile")
print({group: round(value, 3) for group, value in scores.items()})

# %%
# Tune the network's own parameters
# ---------------------------------
# ``module_params`` is an ordinary estimator parameter, so the network's
# hyperparameters can be searched like any other.
search = GridSearchCV(
    LongTailClassifier(
        loss="logit_adjusted", module=ResidualMLP, max_epochs=MAX_EPOCHS, random_state=0
    ),
    {"module_params": [{"width": 32, "depth": 1}, {"width": 128, "depth": 2}]},
    scoring="balanced_accuracy",
    cv=3,
)
search.fit(X_train, y_train)
print("best:", search.best_params_["module_params"])
print(np.round(search.cv_results_["mean_test_score"], 3))

# %%
# The estimator moves the network to its ``device`` ("auto" picks CUDA when
# available), so a module only has to work on the device it is given.
print("trained on:", clf.device_, "| CUDA available:", torch.cuda.is_available())
