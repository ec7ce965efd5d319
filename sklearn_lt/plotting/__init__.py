"""Plots for long-tailed classification, in scikit-learn's Display style.

:class:`ClassAccuracyDisplay` shows the accuracy (recall) of every class against
its number of training examples, head to tail, with the shot groups marked; it
overlays several models on one axes for comparison. :class:`TrainingCurvesDisplay`
shows the loss, the validation balanced accuracy and the learning rate of each
epoch of a skorch training run, with the epoch where re-balancing starts (the
switch of deferred re-weighting or re-sampling).

matplotlib is an optional dependency (``pip install matplotlib``), imported
only when a figure is drawn.
"""

from ._class_accuracy import ClassAccuracyDisplay
from ._training_curves import TrainingCurvesDisplay

__all__ = ["ClassAccuracyDisplay", "TrainingCurvesDisplay"]
