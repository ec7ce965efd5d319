"""Binary imbalanced data sets for the ``binary`` accuracy suite (offline).

Real data from Debian's R packages, read with the pure-Python package ``rdata``
(``pip install -e .[bench]``), plus scikit-learn's ``make_classification``:

- ``coil``: the CoIL 2000 insurance challenge (``r-cran-kernlab``'s
  ``ticdata``): 9,822 customers, predict whether one holds a caravan policy
  (586 positives, 6.0%, the native imbalance). 85 features: the ordered
  factors (bracketed percentages and amounts) as their integer codes, the
  three unordered ones (customer subtype, main type, age group) categorical;
- ``spam``: ``r-cran-kernlab``'s ``spam`` (4,601 e-mails, 57 word and
  character frequencies), spam (1,813 of 4,601, 39%) subsampled from the seed
  to 5% of the rows (147 spam beside the 2,788 others);
- ``pima``: ``r-cran-mlbench``'s ``PimaIndiansDiabetes`` (768 women, 8
  numeric features), diabetic (268, 35%) subsampled to 10% (56 beside 500);
- ``synthetic1`` / ``synthetic5``: ``make_classification(n_samples=20_000,
  weights=[0.99, 0.01])`` / ``[0.95, 0.05]`` with its other defaults (20
  features, 2 informative, ``flip_y=0.01``: 1% of the labels are drawn at
  random, so the positive rate is about 1.5% / 5.5%), a new draw per seed.

Each ``load_<name>(seed)`` returns ``(X, y, categorical, positive)``: a pandas
DataFrame (numeric columns float64, categorical ones strings), a numpy array of
labels, the categorical column names and the minority label. :func:`make_split`
splits it into a stratified 70% training and 30% test split (the test split
keeps the imbalance: average precision depends on it).
"""

from dataclasses import dataclass

import numpy as np
from _tabular_data import _finish, _read_rda

TEST_FRACTION = 0.3


def _subsample_positives(X, y, positive, fraction, seed):
    """Keep every negative and enough random positives to make ``fraction``."""
    rng = np.random.RandomState(seed)
    positives = np.flatnonzero(y == positive)
    n_negative = y.size - positives.size
    n_keep = round(fraction * n_negative / (1 - fraction))
    if n_keep > positives.size:
        raise ValueError(f"cannot reach {fraction} positives by subsampling")
    keep = np.ones(y.size, dtype=bool)
    keep[positives] = False
    keep[rng.choice(positives, size=n_keep, replace=False)] = True
    return X[keep].reset_index(drop=True), y[keep]


def load_coil(seed):
    """CoIL 2000 (ticdata): 9,822 rows, 85 features, 6.0% caravan policies."""
    frame = _read_rda("kernlab", "r-cran-kernlab", "ticdata")
    categorical = []
    for column in frame.columns[:-1]:
        values = frame[column]
        if hasattr(values, "cat"):
            if values.cat.ordered:
                frame[column] = values.cat.codes.astype(np.float64)
            else:
                categorical.append(column)
    X, y, categorical = _finish(frame, "CARAVAN", categorical)
    return X, y, categorical, "insurance"


def load_spam(seed):
    """spam subsampled to 5% spam (about 2,935 rows, 57 numeric features)."""
    frame = _read_rda("kernlab", "r-cran-kernlab", "spam")
    X, y, categorical = _finish(frame, "type", [])
    X, y = _subsample_positives(X, y, "spam", 0.05, seed)
    return X, y, categorical, "spam"


def load_pima(seed):
    """PimaIndiansDiabetes subsampled to 10% diabetic (556 rows, 8 features)."""
    frame = _read_rda("mlbench", "r-cran-mlbench", "PimaIndiansDiabetes")
    X, y, categorical = _finish(frame, "diabetes", [])
    X, y = _subsample_positives(X, y, "pos", 0.10, seed)
    return X, y, categorical, "pos"


def _synthetic(weight):
    def load(seed):
        import pandas as pd
        from sklearn.datasets import make_classification

        X, y = make_classification(
            n_samples=20_000, weights=[1 - weight, weight], random_state=seed
        )
        columns = [f"x{i}" for i in range(X.shape[1])]
        return pd.DataFrame(X, columns=columns), y, [], 1

    load.__doc__ = f"make_classification, 20,000 rows, positive weight {weight:g}."
    return load


@dataclass(frozen=True)
class BinaryDataset:
    """A binary data set: its title and loader ``(seed) -> (X, y, cat, positive)``."""

    title: str
    loader: object


DATASETS = {
    "coil": BinaryDataset("CoIL 2000 caravan (native 6.0%)", load_coil),
    "spam": BinaryDataset("spam, subsampled to 5%", load_spam),
    "pima": BinaryDataset("Pima diabetes, subsampled to 10%", load_pima),
    "synthetic1": BinaryDataset("make_classification 1%", _synthetic(0.01)),
    "synthetic5": BinaryDataset("make_classification 5%", _synthetic(0.05)),
}


def make_split(name, seed, max_rows=None):
    """Stratified 70/30 training and test splits of a data set, drawn from ``seed``.

    ``max_rows`` (quick runs) first keeps a stratified random subset of that
    many rows.

    Returns
    -------
    X_train, y_train, X_test, y_test, categorical, positive
    """
    from sklearn.model_selection import train_test_split

    X, y, categorical, positive = DATASETS[name].loader(seed)
    if max_rows is not None and y.size > max_rows:
        X, _, y, _ = train_test_split(
            X, y, train_size=max_rows, stratify=y, random_state=seed
        )
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_FRACTION, stratify=y, random_state=seed
    )
    return (
        X_train.reset_index(drop=True),
        np.asarray(y_train),
        X_test.reset_index(drop=True),
        np.asarray(y_test),
        categorical,
        positive,
    )
