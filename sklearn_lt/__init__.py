"""sklearn_lt: scikit-learn classifiers for long-tailed and imbalanced classes."""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
