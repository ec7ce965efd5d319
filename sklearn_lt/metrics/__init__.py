"""Metrics for long-tailed classification.

Long-tail benchmarks report accuracy per *shot group*: the classes are split by
their number of training examples, and per-class accuracy (recall) is averaged
inside each group. This module provides those group accuracies, a top-label
expected calibration error, a per-class report sorted from head to tail, and
scorers for :class:`~sklearn.model_selection.GridSearchCV` and
:func:`~sklearn.model_selection.cross_validate`.

Balanced accuracy and macro F1 need nothing from here: scikit-learn already
provides them as ``scoring="balanced_accuracy"`` and ``scoring="f1_macro"``.
"""

from ._calibration import expected_calibration_error
from ._report import long_tail_report
from ._scorers import make_shot_scorer
from ._shot_accuracy import shot_accuracy

__all__ = [
    "expected_calibration_error",
    "few_shot_accuracy_scorer",
    "long_tail_report",
    "make_shot_scorer",
    "shot_accuracy",
    "tail_accuracy_scorer",
]

few_shot_accuracy_scorer = make_shot_scorer("few")
"""Scorer of few-shot accuracy (classes with < 20 training examples)."""

tail_accuracy_scorer = make_shot_scorer("tail")
"""Scorer of tail accuracy (the third of the classes with fewest examples)."""
