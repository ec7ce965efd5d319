"""sklearn_lt: scikit-learn classifiers for long-tailed and imbalanced classes.

Neural-network classifiers trained with skorch and PyTorch on the objectives of
the long-tail literature (LDAM with deferred re-weighting, class-balanced losses,
logit adjustment, balanced softmax, VS and focal losses), post-hoc logit
adjustment for any scikit-learn classifier, long-tail metrics and datasets.
"""

from .classifiers import LongTailClassifier, LongTailImageClassifier
from .datasets import (
    load_digits_lt,
    load_fashion_mnist,
    load_fashion_mnist_lt,
    make_long_tailed,
    make_long_tailed_classification,
)
from .label_shift import LabelShiftAdapter
from .losses import make_loss
from .metrics import (
    expected_calibration_error,
    long_tail_report,
    make_shot_scorer,
    shot_accuracy,
)
from .persistence import load_model, save_model
from .plotting import ClassAccuracyDisplay, TrainingCurvesDisplay
from .posthoc import LogitAdjustedClassifier
from .weights import effective_number_weights, inverse_frequency_weights

# The one place the version is written: pyproject.toml reads it from here.
__version__ = "0.1.0.dev0"

__all__ = [
    "ClassAccuracyDisplay",
    "LabelShiftAdapter",
    "LogitAdjustedClassifier",
    "LongTailClassifier",
    "LongTailImageClassifier",
    "TrainingCurvesDisplay",
    "__version__",
    "effective_number_weights",
    "expected_calibration_error",
    "inverse_frequency_weights",
    "load_digits_lt",
    "load_fashion_mnist",
    "load_fashion_mnist_lt",
    "load_model",
    "long_tail_report",
    "make_long_tailed",
    "make_long_tailed_classification",
    "make_loss",
    "make_shot_scorer",
    "save_model",
    "shot_accuracy",
]
