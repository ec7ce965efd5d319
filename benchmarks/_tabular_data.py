"""Real tabular data sets for the ``tabular`` accuracy suite (offline).

The data come from Debian's R packages, read without R where possible:

- ``r-cran-mlbench``: ``LetterRecognition`` (26 classes), ``Satellite`` (6),
  ``Shuttle`` (7, natively long-tailed), ``Vowel`` (11) and ``Soybean`` (19,
  natively long-tailed, all columns categorical), ``.rda`` files read by the
  pure-Python package ``rdata`` (``pip install -e .[bench]``);
- ``r-cran-ggplot2``: ``diamonds`` (predict ``cut``, 5 classes, from the
  categorical ``color`` / ``clarity`` and seven heavy-tailed numeric columns).
  ggplot2 stores its data in a lazy-load database that ``rdata`` cannot read, so
  the first use converts it once with ``Rscript`` into
  ``benchmarks/results/cache/diamonds.csv`` (gitignored).

Each ``load_<name>()`` returns ``(X, y, categorical)``: a pandas DataFrame (numeric
columns float64, categorical columns ``object`` strings), a numpy array of string
labels and the list of categorical column names. A missing package raises
:class:`DatasetUnavailable` (a ``FileNotFoundError``) that names the Debian
package to install. Missing values: only Soybean has any (2,337 cells, in 121
rows concentrated in 5 classes, so dropping rows would remove whole classes);
they are kept as their own category ``"missing"``. The other sets are complete
(``dropna`` is applied anyway).

:func:`make_split` draws, deterministically from the seed, a test split and a
long-tailed training split (see :data:`DATASETS` for the sizes):

- sets that are not long-tailed (Letter, Satellite, Vowel) and diamonds: a
  balanced test split of ``n_test`` rows per class, then
  :func:`sklearn_lt.make_long_tailed` on the remaining rows with the exponential
  profile (class ``i`` in head-to-tail order keeps
  ``int(n_max * (1 / rho) ** (i / (C - 1)))`` rows). The head-to-tail order is a
  random permutation of the classes drawn from the seed, except for diamonds,
  whose order is its native frequency order (Ideal, Premium, Very Good, Good,
  Fair), so the profile sharpens the native imbalance (about 13:1) to ``rho``;
- natively long-tailed sets (Shuttle, Soybean): class ``c`` gives
  ``min(n_test, n_c // 2)`` random rows to the test split (so the tiny classes
  keep half their rows for training; the test split is then balanced except for
  those classes, and balanced accuracy weights every class equally anyway), and
  the rest is the training split, each class capped at ``cap`` random rows
  (Shuttle: the three head classes, 45,586 / 8,903 / 3,267 rows, capped at
  3,000; the tail keeps its native 86 / 25 / 7 / 5 rows).
"""

import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
CACHE_DIR = BENCH_DIR / "results" / "cache"
R_LIBRARIES = (
    Path("/usr/lib/R/site-library"),
    Path("/usr/local/lib/R/site-library"),
    Path("/usr/lib/R/library"),
)


class DatasetUnavailable(FileNotFoundError):
    """A data set's package (Debian R package, ``rdata`` or ``Rscript``) is absent."""


def _r_package_dir(package, debian):
    for library in R_LIBRARIES:
        if (library / package / "DESCRIPTION").exists():
            return library / package
    raise DatasetUnavailable(
        f"R package {package!r} not found in {[str(p) for p in R_LIBRARIES]}; "
        f"install it with `sudo apt-get install {debian}`."
    )


def _read_rda(package, debian, name):
    path = _r_package_dir(package, debian) / "data" / f"{name}.rda"
    if not path.exists():
        raise DatasetUnavailable(
            f"{path} is missing; reinstall it with "
            f"`sudo apt-get install --reinstall {debian}`."
        )
    try:
        import rdata
    except ImportError as exc:
        raise DatasetUnavailable(
            "reading R's .rda files needs the Python package `rdata`: "
            "`pip install -e .[bench]` (or `pip install rdata`)."
        ) from exc
    with warnings.catch_warnings():  # "Unknown encoding. Assumed ASCII."
        warnings.simplefilter("ignore", UserWarning)
        frame = rdata.read_rda(str(path))[name]
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _read_mlbench(name):
    return _read_rda("mlbench", "r-cran-mlbench", name)


def _finish(frame, target, categorical, missing="drop"):
    """(X, y, categorical) with float64 numeric and string categorical columns."""
    if missing == "drop":
        frame = frame.dropna()
    y = frame[target].astype(str).to_numpy()
    X = frame.drop(columns=target).reset_index(drop=True)
    for column in X.columns:
        if column in categorical:
            values = X[column].astype(object)
            X[column] = values.where(values.notna(), "missing").astype(str)
        else:
            X[column] = X[column].astype(np.float64)
    return X, y.astype(object), list(categorical)


def load_letter():
    """LetterRecognition: 20,000 rows, 16 integer-valued features, 26 letters."""
    return _finish(_read_mlbench("LetterRecognition"), "lettr", [])


def load_satellite():
    """Satellite (Landsat): 6,435 rows, 36 pixel values, 6 soil/crop classes."""
    return _finish(_read_mlbench("Satellite"), "classes", [])


def load_shuttle():
    """Shuttle (Statlog): 58,000 rows, 9 numeric features, 7 classes (80:1e-4)."""
    return _finish(_read_mlbench("Shuttle"), "Class", [])


def load_vowel():
    """Vowel (Deterding): 990 rows, speaker (categorical) + 9 numeric, 11 vowels."""
    return _finish(_read_mlbench("Vowel"), "Class", ["V1"])


def load_soybean():
    """Soybean: 683 rows, 35 categorical features, 19 diseases (92 to 8 rows).

    Missing values are kept as the category ``"missing"`` (see module docstring).
    """
    frame = _read_mlbench("Soybean")
    categorical = [c for c in frame.columns if c != "Class"]
    return _finish(frame, "Class", categorical, missing="category")


DIAMONDS_NUMERIC = ["carat", "depth", "table", "price", "x", "y", "z"]
DIAMONDS_CATEGORICAL = ["color", "clarity"]


def _diamonds_csv():
    """ggplot2's diamonds as CSV, converted once by Rscript into the cache."""
    path = CACHE_DIR / "diamonds.csv"
    if path.exists():
        return path
    _r_package_dir("ggplot2", "r-cran-ggplot2")
    rscript = shutil.which("Rscript")
    if rscript is None:
        raise DatasetUnavailable(
            "converting ggplot2's diamonds needs Rscript: "
            "`sudo apt-get install r-base-core r-cran-ggplot2`."
        )
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".csv.partial")
    code = (
        'data("diamonds", package = "ggplot2", envir = environment()); '
        f'write.csv(diamonds, "{partial.as_posix()}", row.names = FALSE)'
    )
    result = subprocess.run(
        [rscript, "--vanilla", "-e", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if result.returncode != 0 or not partial.exists():
        raise DatasetUnavailable(
            f"Rscript could not export ggplot2's diamonds (exit {result.returncode}): "
            f"{result.stderr.strip()[-500:]}; is `r-cran-ggplot2` installed?"
        )
    partial.replace(path)
    return path


def load_diamonds():
    """diamonds: 53,940 rows; predict ``cut`` (5 classes, 21,551 to 1,610 rows).

    Features: ``color`` and ``clarity`` (categorical) and ``carat``, ``depth``,
    ``table``, ``price``, ``x``, ``y``, ``z`` (numeric; price and carat heavy-tailed).
    """
    try:
        import pandas as pd
    except ImportError as exc:
        raise DatasetUnavailable(
            "the tabular data sets need pandas: `pip install -e .[bench]`."
        ) from exc
    frame = pd.read_csv(_diamonds_csv())
    frame = frame[["cut", *DIAMONDS_CATEGORICAL, *DIAMONDS_NUMERIC]]
    return _finish(frame, "cut", DIAMONDS_CATEGORICAL)


# --------------------------------------------------------------------------- #
# Splits
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class TabularDataset:
    """A data set and how its long-tailed split is drawn.

    ``native``: the set is long-tailed already (train = rest, capped at ``cap``
    rows per class). Otherwise ``make_long_tailed`` with the exponential profile,
    ``rho`` and ``n_max``, head-to-tail order ``head_classes`` (``"shuffle"``:
    drawn from the seed; a sequence: fixed).
    """

    title: str
    loader: object
    n_classes: int
    n_test: int
    native: bool = False
    rho: float = 1.0
    n_max: int | None = None
    cap: int | None = None
    head_classes: object = "shuffle"


DATASETS = {
    "letter": TabularDataset(
        "LetterRecognition", load_letter, 26, n_test=100, rho=10, n_max=400
    ),
    "satellite": TabularDataset(
        "Satellite", load_satellite, 6, n_test=100, rho=50, n_max=500
    ),
    "shuttle": TabularDataset(
        "Shuttle", load_shuttle, 7, n_test=100, native=True, cap=3000
    ),
    "diamonds": TabularDataset(
        "diamonds cut",
        load_diamonds,
        5,
        n_test=300,
        rho=20,
        n_max=2000,
        head_classes=("Ideal", "Premium", "Very Good", "Good", "Fair"),
    ),
    "vowel": TabularDataset("Vowel", load_vowel, 11, n_test=30, rho=10, n_max=60),
    "soybean": TabularDataset("Soybean", load_soybean, 19, n_test=10, native=True),
}


def _per_class_sample(y, quota, rng):
    """Boolean mask of ``quota[label]`` random rows of each class."""
    mask = np.zeros(y.shape[0], dtype=bool)
    for label, n in quota.items():
        rows = np.flatnonzero(y == label)
        mask[rng.choice(rows, size=min(n, rows.size), replace=False)] = True
    return mask


def split_settings(name):
    """The split sizes of a data set: ``{"n_test", "rho", "n_max", "cap"}``."""
    spec = DATASETS[name]
    return {
        "n_test": spec.n_test,
        "rho": spec.rho,
        "n_max": spec.n_max,
        "cap": spec.cap,
    }


def make_split(name, seed, **overrides):
    """Test split and long-tailed training split of a data set, drawn from ``seed``.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`.
    seed : int
        Seeds the test rows, the head-to-tail order (when shuffled) and the kept
        training rows.
    **overrides
        Fields of the data set's :class:`TabularDataset` to change (``n_max``,
        ``rho``, ``n_test``, ``cap``), e.g. tiny sizes for a smoke test.

    Returns
    -------
    X_train, y_train, X_test, y_test, categorical
        DataFrames (index reset), string label arrays and the categorical columns.
    """
    from sklearn_lt import make_long_tailed

    spec = DATASETS[name]
    settings = split_settings(name)
    unknown = set(overrides) - set(settings)
    if unknown:
        raise TypeError(f"unknown overrides {sorted(unknown)}")
    settings.update(overrides)
    X, y, categorical = spec.loader()
    rng = np.random.RandomState(seed)
    classes, counts = np.unique(y, return_counts=True)
    if spec.native:
        quota = {
            c: min(settings["n_test"], n // 2)
            for c, n in zip(classes, counts, strict=True)
        }
    else:
        quota = dict.fromkeys(classes, settings["n_test"])
    test = _per_class_sample(y, quota, rng)
    X_rest, y_rest = X[~test], y[~test]
    if spec.native:
        cap = settings["cap"]
        if cap is not None:
            keep = _per_class_sample(y_rest, dict.fromkeys(classes, cap), rng)
            X_rest, y_rest = X_rest[keep], y_rest[keep]
        X_train, y_train = X_rest, y_rest
    else:
        head = spec.head_classes
        if not isinstance(head, str):
            head = list(head)
        X_train, y_train = make_long_tailed(
            X_rest,
            y_rest,
            imbalance_ratio=settings["rho"],
            profile="exp",
            n_max=settings["n_max"],
            head_classes=head,
            random_state=seed,
        )
    return (
        X_train.reset_index(drop=True),
        np.asarray(y_train),
        X[test].reset_index(drop=True),
        y[test],
        categorical,
    )


def class_counts(y):
    """``{label: count}`` from the largest class to the smallest."""
    labels, counts = np.unique(y, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return {str(labels[i]): int(counts[i]) for i in order}


# --------------------------------------------------------------------------- #
# Preprocessing, as a user would write it
# --------------------------------------------------------------------------- #


def make_preprocessor(X, categorical, kind="onehot"):
    """An unfitted ColumnTransformer for the columns of ``X``.

    ``"onehot"``: ``StandardScaler`` on the numeric columns and
    ``OneHotEncoder(handle_unknown="ignore", sparse_output=False)`` on the
    categorical ones (numeric first); ``"sparse_onehot"``: the same with the
    output always a sparse matrix (``sparse_output=True``,
    ``sparse_threshold=1.0``). ``"ordinal"``: numeric columns passed
    through and categorical ones ordinal-encoded (unknown categories become NaN),
    numeric first, for ``HistGradientBoostingClassifier(categorical_features=...)``
    (see :func:`categorical_mask`).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    numeric = [c for c in X.columns if c not in categorical]
    sparse = kind == "sparse_onehot"
    if kind in ("onehot", "sparse_onehot"):
        transformers = [
            ("num", StandardScaler(), numeric),
            (
                "cat",
                OneHotEncoder(handle_unknown="ignore", sparse_output=sparse),
                list(categorical),
            ),
        ]
    elif kind == "ordinal":
        transformers = [
            ("num", "passthrough", numeric),
            (
                "cat",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value", unknown_value=np.nan
                ),
                list(categorical),
            ),
        ]
    else:
        raise ValueError(
            f"kind must be 'onehot', 'sparse_onehot' or 'ordinal', got {kind!r}"
        )
    return ColumnTransformer(
        [t for t in transformers if t[2]], sparse_threshold=1.0 if sparse else 0.3
    )


def categorical_mask(X, categorical):
    """Boolean mask of the categorical columns after the ``"ordinal"`` transformer."""
    n_numeric = sum(1 for c in X.columns if c not in categorical)
    return np.arange(X.shape[1]) >= n_numeric
