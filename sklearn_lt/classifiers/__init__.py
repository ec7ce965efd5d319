"""scikit-learn classifiers trained with skorch on long-tail objectives.

:class:`LongTailClassifier` (tabular data) and :class:`LongTailImageClassifier`
(images) are plain scikit-learn estimators sharing one base,
:class:`BaseLongTailClassifier`. Its ``fit`` validates the data, counts the
classes of ``y``, builds the loss, schedule and network from those counts, and
trains a skorch net that it keeps as ``net_``. Every fit, and so every
cross-validation fold and every resampled pipeline, gets its own margins, priors
and weights.
"""

from ._base import BaseLongTailClassifier
from ._image import LongTailImageClassifier
from ._tabular import LongTailClassifier

__all__ = ["BaseLongTailClassifier", "LongTailClassifier", "LongTailImageClassifier"]
