"""Private scikit-learn helpers, imported in one place.

scikit-learn keeps parameter validation and ``validate_data`` in semi-private
modules; every import of them lives here so a scikit-learn upgrade touches one file.
"""

from sklearn.base import _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, validate_data

__all__ = [
    "HasMethods",
    "Interval",
    "StrOptions",
    "_check_sample_weight",
    "_fit_context",
    "validate_data",
]
