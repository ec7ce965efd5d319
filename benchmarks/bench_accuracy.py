"""Accuracy benchmark: the long-tail methods of sklearn_lt against baselines.

Every method of the papers is one parameter setting of ``LongTailClassifier``
or ``LongTailImageClassifier``; the baselines are the same network after
imbalanced-learn resampling and four scikit-learn / imbalanced-learn
classifiers. All run on the same splits, for several seeds (each seed draws a
new long-tailed training split, test split and initialization).

The ``binary`` suite (``_binary_suite.py``, ``_binary_data.py``) scores
imbalanced two-class problems by balanced accuracy, ROC AUC, average precision
and minority F1, against the peers a user would try for them (class-weighted
logistic regression and gradient boosting, TunedThresholdClassifierCV, SMOTE
pipelines, BalancedRandomForest).

The ``tabular`` suite is different: real tabular data sets (LetterRecognition,
Satellite, Shuttle, Vowel, Soybean from Debian's ``r-cran-mlbench``, diamonds
from ``r-cran-ggplot2``; see ``_tabular_data.py``), every model a pipeline as a
user would write it (ColumnTransformer, then the model with its defaults), to
check whether ``LongTailClassifier()`` with default parameters beats the
estimators a user would try first. It is skipped, with a message, when the R
packages or the Python package ``rdata`` (``pip install -e .[bench]``) are
missing.

    python benchmarks/bench_accuracy.py                 # all suites, 3 seeds
    python benchmarks/bench_accuracy.py --quick         # CI smoke test (< 60 s)
    python benchmarks/bench_accuracy.py --suite digits --seeds 5
    python benchmarks/bench_accuracy.py --suite tabular
    python benchmarks/bench_accuracy.py --suite binary --no-ablation

Each suite writes ``benchmarks/results/accuracy_<suite>.{json,csv}`` (rows,
settings, command, versions, hardware, seeds); every run then rebuilds
``accuracy.{md,csv,png}`` from all the suite files present, so suites can be
rerun one at a time (``--quick`` writes to ``benchmarks/results/quick/``). Full
runs copy ``accuracy.md`` into ``docs/benchmarks.md`` through ``report.py``.
See ``benchmarks/README.md``.
"""

import argparse
import csv
import json
import math
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import _binary_suite
import _tabular_data
import numpy as np
import torch
from _common import (
    RESULTS_DIR,
    environment,
    environment_markdown,
    fmt,
    fmt_mean_std,
    load_average,
    markdown_table,
    write_json,
)
from _docs import update_docs
from imblearn.ensemble import BalancedRandomForestClassifier
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.pipeline import Pipeline
from scipy.stats import rankdata
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, f1_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from sklearn_lt import (
    LongTailClassifier,
    LongTailImageClassifier,
    load_digits_lt,
    load_fashion_mnist_lt,
    make_long_tailed,
    make_long_tailed_classification,
    shot_accuracy,
)
from sklearn_lt._device_data import stratified_holdout
from sklearn_lt.posthoc import LogitAdjustedClassifier

# --------------------------------------------------------------------------- #
# Methods: one parameter setting each (the table of LongTailClassifier's Notes)
# --------------------------------------------------------------------------- #

METHODS = {
    "ERM": {"loss": "ce"},
    "Focal": {"loss": "focal", "gamma": 1.0},
    "CB-RW": {"loss": "ce", "reweight_schedule": "reweight"},
    "CB-RS": {"loss": "ce", "reweight_schedule": "resample"},
    "CB-Focal": {"loss": "focal", "gamma": 1.0, "reweight_schedule": "reweight"},
    "ERM-DRW": {"loss": "ce", "reweight_schedule": "drw"},
    "ERM-DRS": {"loss": "ce", "reweight_schedule": "drs"},
    "LDAM": {"loss": "ldam"},
    "LDAM-DRW": {"loss": "ldam", "reweight_schedule": "drw"},
    "LA loss": {"loss": "logit_adjusted", "tau": 1.0},
    "Balanced Softmax": {"loss": "balanced_softmax"},
    "VS": {"loss": "vs"},
    # Further methods (issue 14): the papers' settings where they have one.
    # SAM radius: Rangwani et al.'s CIFAR-10-LT values (0.8 with LDAM-DRW,
    # 0.1 with CE, used for LA, which they do not run).
    "LDAM-DRW+SAM": {
        "loss": "ldam",
        "reweight_schedule": "drw",
        "optimizer": "sam",
        "sam_rho": 0.8,
    },
    "LA+SAM": {"loss": "logit_adjusted", "optimizer": "sam", "sam_rho": 0.1},
    # Decoupled second stage (Kang et al. 2020; Wang et al., MARC) on ERM / LA.
    "ERM+cRT": {"loss": "ce", "classifier_retraining": "crt"},
    "LA+cRT": {"loss": "logit_adjusted", "classifier_retraining": "crt"},
    "LWS": {"loss": "ce", "classifier_retraining": "lws"},
    "MARC": {"loss": "ce", "classifier_retraining": "marc"},
    # LongTailImageClassifier mixes its batches with CMO by default
    # (mixup="auto"); the orderings' methods and the default loss without it.
    "ERM (no mixing)": {"loss": "ce", "mixup": None},
    "ERM-DRW (no mixing)": {"loss": "ce", "reweight_schedule": "drw", "mixup": None},
    "LDAM (no mixing)": {"loss": "ldam", "mixup": None},
    "LDAM-DRW (no mixing)": {
        "loss": "ldam",
        "reweight_schedule": "drw",
        "mixup": None,
    },
    "LA loss (no mixing)": {"loss": "logit_adjusted", "tau": 1.0, "mixup": None},
    # ABSGD: temperature 5; 1.0 diverged (logits to inf) on diamonds at lr 0.05.
    "ABSGD": {"loss": "ce", "reweight_schedule": "drw", "sample_attention": 5.0},
}
# Post-hoc logit adjustment of the ERM model (no refit: ``posthoc_tau`` only
# changes prediction). "tuned" picks tau on a validation split (see _tune_tau).
POSTHOC_FIXED = "LA post-hoc (τ=1)"
POSTHOC_TUNED = "LA post-hoc (τ tuned)"
TAU_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
VALIDATION_FRACTION = 0.2
BASELINES = (
    "Net + ROS",
    "Net + SMOTE",
    "MLPClassifier",
    "LogReg (balanced)",
    "HGB (balanced)",
    "BalancedRF",
)
ALL_METHODS = (*METHODS, POSTHOC_FIXED, POSTHOC_TUNED, *BASELINES)
# The "no mixing" methods differ from the defaults on images only.
IMAGE_ONLY_METHODS = tuple(m for m, params in METHODS.items() if "mixup" in params)
FLAT_METHODS = tuple(m for m in ALL_METHODS if m not in IMAGE_ONLY_METHODS)

# Papers' top-1 error (%) on balanced test sets, ResNet-32 (REFERENCE.md): LDAM
# paper table 2 / appendix table 5, LA paper table 3. None: not reported.
PAPER_COLUMNS = ("C10 LT-100", "C10 LT-10", "C10 step-100", "C100 LT-100")
PAPER_ERROR = {
    "ERM": (29.64, 13.61, 36.70, 61.68),
    "Focal": (29.62, 13.34, 36.09, 61.59),
    "LDAM": (26.65, 13.04, 33.42, 60.40),
    "CB-RW": (27.63, 13.46, 38.06, 66.01),
    "CB-Focal": (25.43, 12.90, 39.73, 63.98),
    "ERM-DRW": (25.14, 13.12, 28.40, 59.34),
    "LDAM-DRW": (22.97, 11.84, 23.08, 57.96),
    "LA loss": (22.33, None, None, 56.11),
    POSTHOC_FIXED: (22.60, None, None, 58.24),
    # Rangwani et al. 2022, README (imbalance 100): 81.9 / 45.4 (C10 / C100).
    "LDAM-DRW+SAM": (18.1, None, None, 54.6),
}
# Orderings that a paper claims without a number for our columns (another
# data set, or no such baseline): only the direction is checked.
DIRECTIONAL_CLAIMS = {
    ("LDAM-DRW+SAM", "LDAM-DRW"),
    ("LA+SAM", "LA loss"),
    ("ERM+cRT", "ERM"),
    ("LA loss", "LA loss (no mixing)"),
}
# Orderings reported by the papers: (A, B) means "A ahead of B".
CLAIMS = (
    ("LDAM-DRW", "ERM"),
    ("LA loss", "ERM"),
    (POSTHOC_FIXED, "ERM"),
    ("ERM-DRW", "ERM"),
    ("LDAM", "ERM"),
    ("LDAM-DRW", "LDAM"),
    ("LDAM-DRW", "ERM-DRW"),
    ("ERM-DRW", "CB-RW"),
    ("CB-Focal", "Focal"),
    ("LA loss", "LDAM-DRW"),
    ("Focal", "ERM"),
    ("LDAM-DRW+SAM", "LDAM-DRW"),
    ("LA+SAM", "LA loss"),
    ("ERM+cRT", "ERM"),
    ("LA loss", "LA loss (no mixing)"),
)
TIE_PP = 0.5  # a paper difference below this many points is a tie

# The tabular suite: pipelines as a user would write them (see make_tabular_model).
TABULAR_DEFAULT = "LongTailClassifier (defaults)"
TABULAR_SMOTE = "SMOTE + LongTailClassifier (ce)"
TABULAR_LA_HGB = "LA post-hoc HGB (τ auto)"
# The same with the setting LogitAdjustedClassifier's saturation warning names.
TABULAR_LA_HGB_L2 = "LA post-hoc HGB (τ auto, l2=1)"
TABULAR_METHODS = (
    TABULAR_DEFAULT,
    "ERM",
    "LDAM-DRW",
    "LA loss",
    "LDAM-DRW+SAM",
    "LA+SAM",
    "ABSGD",
    "ERM+cRT",
    "LA+cRT",
    "LWS",
    "MARC",
    TABULAR_SMOTE,
    "SVC (rbf, balanced)",
    "LogReg (balanced)",
    "HGB (balanced)",
    TABULAR_LA_HGB,
    TABULAR_LA_HGB_L2,
    "BalancedRF",
    "MLPClassifier (defaults)",
)
PIPELINES = "pipelines"  # settings["network"] of the tabular suite
BINARY = "binary pipelines"  # settings["network"] of the binary suite


# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #


def _per_class_sample(y, n_per_class, rng):
    """Boolean mask of ``n_per_class`` random rows of every class (vectorized)."""
    order = rng.permutation(y.shape[0])
    order = order[np.argsort(y[order], kind="stable")]
    labels = y[order]
    first = np.searchsorted(labels, labels, side="left")
    rank = np.arange(labels.shape[0]) - first
    mask = np.zeros(y.shape[0], dtype=bool)
    mask[order[rank < n_per_class]] = True
    return mask


def load_digits_config(profile, rho, seed, settings):
    X_train, X_test, y_train, y_test = load_digits_lt(
        imbalance_ratio=rho, profile=profile, random_state=seed, return_X_y=True
    )
    return X_train, y_train, X_test, y_test


def load_fashion_config(profile, rho, seed, settings):
    X_train, X_test, y_train, y_test = load_fashion_mnist_lt(
        imbalance_ratio=rho,
        profile=profile,
        n_max=settings["n_max"],
        random_state=seed,
        return_X_y=True,
    )
    test = _per_class_sample(
        y_test, settings["n_test_per_class"], np.random.RandomState(seed)
    )
    scale = np.float32(1 / 255)
    return (
        X_train.astype(np.float32) * scale,
        y_train,
        X_test[test].astype(np.float32) * scale,
        y_test[test],
    )


def load_synthetic_config(profile, rho, seed, settings):
    """A balanced pool of Gaussian classes; balanced test, long-tailed train."""
    n_max, n_test = settings["n_max"], settings["n_test_per_class"]
    X, y = make_long_tailed_classification(
        n_classes=settings["n_classes"],
        n_features=settings["n_features"],
        n_informative=settings["n_informative"],
        class_sep=settings["class_sep"],
        imbalance_ratio=1,
        n_max=n_max + n_test,
        random_state=seed,
    )
    X = X.astype(np.float32)
    test = _per_class_sample(y, n_test, np.random.RandomState(seed))
    X_train, y_train = make_long_tailed(
        X[~test],
        y[~test],
        imbalance_ratio=rho,
        profile=profile,
        n_max=n_max,
        random_state=seed,
    )
    return X_train, y_train, X[test], y[test]


def load_tabular_config(name, rho, seed, settings):
    """A real data set's splits: ``X_train, y_train, X_test, y_test, categorical``.

    DataFrames and string labels (see ``_tabular_data.make_split``); ``rho`` is
    that of ``settings["datasets"][name]``.
    """
    return _tabular_data.make_split(name, seed, **settings["datasets"][name])


def tabular_label(name, split):
    spec = _tabular_data.DATASETS[name]
    if spec.native:
        shape = "native LT" + (f", cap {split['cap']}" if split["cap"] else "")
    else:
        shape = f"exp rho={split['rho']:g}"
    return f"{spec.title} {spec.n_classes} cls {shape}"


# --------------------------------------------------------------------------- #
# Suites
# --------------------------------------------------------------------------- #


@dataclass
class Suite:
    """A data family: its configurations, network, training budget and methods."""

    name: str
    description: str
    loader: object
    configs: tuple  # (label, profile, rho, paper column)
    settings: dict
    groups: str  # "shots" or "quantile"
    methods: tuple = ALL_METHODS
    defined_configs: tuple = ()  # every configuration, before ``--dataset``

    def network(self, seed, device, **params):
        """The suite's estimator with its defaults, plus ``params``.

        ``epochs`` / ``warmup_epochs`` in the settings (quick runs) override
        the default budget (``max_epochs="auto"``); full runs measure defaults.
        """
        s = self.settings
        common = {"device": device, "random_state": seed}
        if s.get("epochs") is not None:
            common.update(max_epochs=s["epochs"], warmup_epochs=s["warmup_epochs"])
        common.update(params)
        if s["network"] == "cnn":
            return LongTailImageClassifier(image_shape=s["image_shape"], **common)
        return LongTailClassifier(**common)


def make_suites(quick):
    digits = Suite(
        name="digits",
        description="digits-LT (sklearn load_digits, 8x8, 500 balanced test images)",
        loader=load_digits_config,
        configs=(
            ("digits exp rho=10", "exp", 10, "C10 LT-10"),
            ("digits exp rho=100", "exp", 100, "C10 LT-100"),
            ("digits step rho=10", "step", 10, "C10 step-100"),
        ),
        settings={
            "network": "cnn",
            "image_shape": (1, 8, 8),
            "epochs": None,
            "warmup_epochs": None,
        },
        groups="shots",
    )
    fashion = Suite(
        name="fashion",
        description="Fashion-MNIST-LT (28x28, pixels scaled to [0, 1])",
        loader=load_fashion_config,
        configs=(
            ("Fashion exp rho=100", "exp", 100, "C10 LT-100"),
            ("Fashion step rho=10", "step", 10, "C10 step-100"),
        ),
        settings={
            "network": "cnn",
            "image_shape": (1, 28, 28),
            "epochs": None,
            "warmup_epochs": None,
            "n_max": 500,
            "n_test_per_class": 1000,
        },
        groups="shots",
        # Each CNN fit costs minutes on this CPU: a subset of the methods.
        methods=(
            "ERM",
            "ERM-DRW",
            "LDAM",
            "LDAM-DRW",
            "LA loss",
            POSTHOC_FIXED,
            "ERM (no mixing)",
            "ERM-DRW (no mixing)",
            "LDAM (no mixing)",
            "LDAM-DRW (no mixing)",
            "LA loss (no mixing)",
            "MLPClassifier",
            "LogReg (balanced)",
            "HGB (balanced)",
            "BalancedRF",
        ),
    )
    synthetic = Suite(
        name="synthetic",
        description=(
            "synthetic tabular, 100 Gaussian classes (make_long_tailed_classification"
            " pool, make_long_tailed train split, 50 balanced test rows per class)"
        ),
        loader=load_synthetic_config,
        configs=(("synthetic 100 cls exp rho=100", "exp", 100, "C100 LT-100"),),
        settings={
            "network": "mlp",
            "epochs": None,
            "warmup_epochs": None,
            "n_max": 500,
            "n_test_per_class": 50,
            "n_classes": 100,
            "n_features": 20,
            "n_informative": 10,
            "class_sep": 1.5,
        },
        groups="quantile",
        methods=FLAT_METHODS,
    )
    tabular_splits = {
        name: _tabular_data.split_settings(name) for name in _tabular_data.DATASETS
    }
    if quick:  # one small data set with categorical and numeric columns
        tabular_splits = {
            "diamonds": {"n_test": 20, "rho": 10, "n_max": 100, "cap": None}
        }
    tabular = Suite(
        name="tabular",
        description=(
            "real tabular data sets (Debian r-cran-mlbench and r-cran-ggplot2; "
            "benchmarks/_tabular_data.py): balanced test split, long-tailed "
            "training split (exponential profile, or the native imbalance)"
        ),
        loader=load_tabular_config,
        configs=tuple(
            (tabular_label(name, split), name, split["rho"], None)
            for name, split in tabular_splits.items()
        ),
        settings={
            "network": PIPELINES,
            "datasets": tabular_splits,
            # Recorded: the defaults are what the suite measures.
            "longtail_defaults": LongTailClassifier().get_params(),
        },
        groups="quantile",
        methods=TABULAR_METHODS,
    )
    binary = Suite(
        name="binary",
        description=(
            "binary imbalanced data (benchmarks/_binary_data.py: CoIL 2000 and "
            "spam from Debian r-cran-kernlab, Pima from r-cran-mlbench, "
            "make_classification): stratified 70% / 30% training / test splits"
        ),
        loader=None,  # _binary_suite.run_binary_config draws the splits
        configs=tuple(
            (spec.title, name, None, None)
            for name, spec in _binary_suite.binary_datasets().items()
        ),
        settings={
            "network": BINARY,
            "max_rows": 1000 if quick else None,
            "longtail_defaults": LongTailClassifier().get_params(),
        },
        groups="none",
        methods=_binary_suite.METHODS,
    )
    if quick:
        binary.configs = binary.configs[:1]
        digits.configs = digits.configs[1:2]
        digits.settings.update(epochs=3, warmup_epochs=1)
        fashion.configs = fashion.configs[:1]
        fashion.settings.update(
            epochs=1, warmup_epochs=0, n_max=100, n_test_per_class=5
        )
        synthetic.settings.update(
            epochs=2, warmup_epochs=1, n_max=100, n_test_per_class=5, n_classes=20
        )
    suites = (digits, fashion, synthetic, tabular, binary)
    return {suite.name: suite for suite in suites}


# --------------------------------------------------------------------------- #
# Baselines
# --------------------------------------------------------------------------- #


def _resampled_size(y, smote):
    """Rows after over-sampling every class to the majority count."""
    counts = np.bincount(y)
    counts = counts[counts > 0]
    if smote:  # classes with a single example cannot be interpolated
        return int(counts.max() * (counts > 1).sum() + (counts == 1).sum())
    return int(counts.max() * counts.size)


def _smote(y, seed):
    """SMOTE up to the majority count; k_neighbors small enough for every class."""
    labels, counts = np.unique(y, return_counts=True)
    target = counts.max()
    strategy = {
        (label.item() if isinstance(label, np.generic) else label): int(target)
        for label, n in zip(labels, counts, strict=True)
        if n > 1  # a class with a single example cannot be interpolated
    }
    k = int(max(1, min(5, counts[counts > 1].min() - 1)))
    return SMOTE(sampling_strategy=strategy, k_neighbors=k, random_state=seed)


def make_baseline(name, suite, seed, device, y_train, quick):
    epochs = suite.settings["epochs"]
    if name in ("Net + ROS", "Net + SMOTE"):
        smote = name == "Net + SMOTE"
        # Same number of SGD steps as the other methods: epochs scaled by the
        # growth of the training set, warm-up likewise.
        # (max_epochs="auto" already counts steps, not epochs.)
        budget = {}
        if epochs is not None:
            ratio = y_train.shape[0] / _resampled_size(y_train, smote)
            budget = {
                "max_epochs": max(1, round(epochs * ratio)),
                "warmup_epochs": round(suite.settings["warmup_epochs"] * ratio),
            }
        net = suite.network(seed, device, loss="ce", **budget)
        sampler = (
            _smote(y_train, seed) if smote else RandomOverSampler(random_state=seed)
        )
        return Pipeline([("resample", sampler), ("net", net)])
    if name == "MLPClassifier":
        return make_pipeline(
            StandardScaler(),
            MLPClassifier(
                hidden_layer_sizes=(256, 256),
                max_iter=epochs or 200,
                random_state=seed,
            ),
        )
    if name == "LogReg (balanced)":
        return make_pipeline(
            StandardScaler(),
            LogisticRegression(class_weight="balanced", max_iter=50 if quick else 500),
        )
    if name == "HGB (balanced)":
        return HistGradientBoostingClassifier(
            class_weight="balanced", max_iter=10 if quick else 100, random_state=seed
        )
    if name == "BalancedRF":
        return BalancedRandomForestClassifier(
            n_estimators=10 if quick else 100, random_state=seed, n_jobs=1
        )
    raise ValueError(name)


# --------------------------------------------------------------------------- #
# Running
# --------------------------------------------------------------------------- #

GROUP_COLUMNS = ("many", "medium", "few", "head", "middle", "tail")
CSV_COLUMNS = (
    "suite",
    "dataset",
    "seed",
    "method",
    "balanced_accuracy",
    "macro_f1",
    "roc_auc",  # binary suite only, like the three below
    "average_precision",
    "minority_f1",
    "threshold",
    *GROUP_COLUMNS,
    "fit_time_s",
    "n_train",
    "n_test",
    "tau",
    "error",
)


def evaluate(model, X_test, y_test, y_train, groups):
    y_pred = model.predict(X_test)
    scores = shot_accuracy(y_test, y_pred, y_train=y_train, groups=groups)
    row = {
        "balanced_accuracy": balanced_accuracy_score(y_test, y_pred),
        "macro_f1": f1_score(y_test, y_pred, average="macro"),
    }
    row.update({name: scores.get(name, math.nan) for name in GROUP_COLUMNS})
    return row


def timed_fit(model, X, y):
    start = time.perf_counter()
    model.fit(X, y)
    return time.perf_counter() - start


def tune_tau(erm, X_train, y_train, seed):
    """Post-hoc tau with the best balanced accuracy on a validation split.

    A clone of the ERM model is trained on a stratified 80% of the training
    split; ``posthoc_tau`` is chosen on the other 20% (classes with one example
    stay in training). Ties go to the tau closest to 1.
    """
    train, valid = stratified_holdout(
        y_train, VALIDATION_FRACTION, np.random.RandomState(seed)
    )
    model = clone(erm).set_params(posthoc_tau=0.0)
    elapsed = timed_fit(model, X_train[train], y_train[train])
    log_proba = model.predict_log_proba(X_train[valid])
    counts = model.class_counts_.astype(np.float64)
    log_prior = np.log(counts / counts.sum())
    taus = np.asarray(TAU_GRID)
    adjusted = log_proba[None] - taus[:, None, None] * log_prior
    predictions = model.classes_[adjusted.argmax(axis=2)]
    scores = np.array([balanced_accuracy_score(y_train[valid], p) for p in predictions])
    best = np.flatnonzero(scores >= scores.max() - 1e-12)
    return float(taus[best[np.argmin(np.abs(taus[best] - 1.0))]]), elapsed


def run_config(suite, config, seed, args, emit):
    label, profile, rho, _ = config
    X_train, y_train, X_test, y_test = suite.loader(profile, rho, seed, suite.settings)
    base = {
        "suite": suite.name,
        "dataset": label,
        "seed": seed,
        "n_train": y_train.shape[0],
        "n_test": y_test.shape[0],
        "tau": math.nan,
        "error": "",
    }
    erm = None
    erm_time = math.nan
    for method in suite.methods:
        row = {**base, "method": method}
        try:
            if method in METHODS:
                model = suite.network(seed, args.device, **METHODS[method])
                row["fit_time_s"] = timed_fit(model, X_train, y_train)
                if method == "ERM":
                    erm, erm_time = model, row["fit_time_s"]
            elif method in (POSTHOC_FIXED, POSTHOC_TUNED):
                if erm is None:  # --method without ERM: fit it, without its row
                    erm = suite.network(seed, args.device, **METHODS["ERM"])
                    erm_time = timed_fit(erm, X_train, y_train)
                if method == POSTHOC_FIXED:
                    tau, extra = 1.0, 0.0
                else:
                    tau, extra = tune_tau(erm, X_train, y_train, seed)
                model = erm.set_params(posthoc_tau=tau)
                row["tau"] = tau
                row["fit_time_s"] = erm_time + extra
            else:
                model = make_baseline(
                    method, suite, seed, args.device, y_train, args.quick
                )
                row["fit_time_s"] = timed_fit(model, X_train, y_train)
            row.update(evaluate(model, X_test, y_test, y_train, suite.groups))
            if erm is not None:
                erm.set_params(posthoc_tau=0.0)
        except Exception as exc:  # record the failure, go on with the others
            traceback.print_exc()
            row["error"] = f"{type(exc).__name__}: {exc}"
        emit(row)
    return np.bincount(y_train).tolist()


def make_tabular_model(method, seed, X_train, y_train, categorical, quick):
    """One method of the tabular suite: a pipeline as a user would write it.

    Numeric columns standardized and categorical ones one-hot encoded
    (``_tabular_data.make_preprocessor``), then the model with its defaults
    (``random_state=seed``). The two HistGradientBoosting models get the
    numeric columns as they are and the categorical ones ordinal-encoded and
    declared through ``categorical_features`` (HGB's native categorical
    support). ``quick`` shrinks the tree ensembles and iteration caps only.
    """
    onehot = _tabular_data.make_preprocessor(X_train, categorical)
    if method == TABULAR_DEFAULT:
        return make_pipeline(onehot, LongTailClassifier(random_state=seed))
    if method in METHODS:  # explicit loss / schedule, defaults otherwise
        net = LongTailClassifier(random_state=seed, **METHODS[method])
        return make_pipeline(onehot, net)
    if method == TABULAR_SMOTE:
        return Pipeline(
            [
                ("columns", onehot),
                ("smote", _smote(y_train, seed)),
                ("net", LongTailClassifier(loss="ce", random_state=seed)),
            ]
        )
    if method == "SVC (rbf, balanced)":
        return make_pipeline(onehot, SVC(kernel="rbf", class_weight="balanced"))
    if method == "LogReg (balanced)":
        logreg = LogisticRegression(
            class_weight="balanced", max_iter=50 if quick else 1000
        )
        return make_pipeline(onehot, logreg)
    if method == "BalancedRF":
        forest = BalancedRandomForestClassifier(
            n_estimators=10 if quick else 100, random_state=seed, n_jobs=1
        )
        return make_pipeline(onehot, forest)
    if method == "MLPClassifier (defaults)":
        mlp = MLPClassifier(max_iter=50 if quick else 500, random_state=seed)
        return make_pipeline(onehot, mlp)
    ordinal = _tabular_data.make_preprocessor(X_train, categorical, kind="ordinal")
    hgb = {
        "categorical_features": (
            _tabular_data.categorical_mask(X_train, categorical)
            if categorical
            else None
        ),
        "max_iter": 10 if quick else 100,
        "random_state": seed,
    }
    if method == "HGB (balanced)":
        model = HistGradientBoostingClassifier(class_weight="balanced", **hgb)
        return make_pipeline(ordinal, model)
    if method in (TABULAR_LA_HGB, TABULAR_LA_HGB_L2):
        if method == TABULAR_LA_HGB_L2:
            hgb["l2_regularization"] = 1.0
        model = LogitAdjustedClassifier(
            HistGradientBoostingClassifier(**hgb), tau="auto", random_state=seed
        )
        return make_pipeline(ordinal, model)
    raise ValueError(method)


def run_tabular_config(suite, config, seed, args, emit):
    """Every method of the tabular suite on one data set and seed."""
    label, name, _, _ = config
    X_train, y_train, X_test, y_test, categorical = suite.loader(
        name, None, seed, suite.settings
    )
    base = {
        "suite": suite.name,
        "dataset": label,
        "seed": seed,
        "n_train": y_train.shape[0],
        "n_test": y_test.shape[0],
        "tau": math.nan,
        "error": "",
    }
    for method in suite.methods:
        row = {**base, "method": method}
        try:
            model = make_tabular_model(
                method, seed, X_train, y_train, categorical, args.quick
            )
            row["fit_time_s"] = timed_fit(model, X_train, y_train)
            row.update(evaluate(model, X_test, y_test, y_train, suite.groups))
            if method in (TABULAR_LA_HGB, TABULAR_LA_HGB_L2):
                row["tau"] = float(model[-1].tau_)
        except Exception as exc:  # record the failure, go on with the others
            traceback.print_exc()
            row["error"] = f"{type(exc).__name__}: {exc}"
        emit(row)
    return _tabular_data.class_counts(y_train)


ABLATION_DATASETS = (
    "digits exp rho=100",
    "Fashion exp rho=100",
    "synthetic 100 cls exp rho=100",
)


def ablation_variants(settings):
    """One-at-a-time changes of the training defaults (the CNN: a few)."""
    epochs = settings["epochs"]
    cnn = settings["network"] == "cnn"
    lr = 0.1 if cnn else 0.05  # the estimators' defaults
    variants = {
        "base": {},
        "cosine schedule": {"lr_schedule": "cosine"},
        "adam, lr 1e-3": {"optimizer": "adam", "lr": 1e-3},
    }
    if epochs is not None:  # fixed budgets; "auto" has its own ablation
        variants["epochs x2"] = {"max_epochs": 2 * epochs}
    if not cnn:
        variants.update(
            {
                "constant lr, no warm-up": {
                    "lr_schedule": "constant",
                    "warmup_epochs": 0,
                },
                "lr x0.4": {"lr": 0.4 * lr},
                "lr x2": {"lr": 2 * lr},
            }
        )
        if epochs is not None:
            variants["epochs x0.5"] = {"max_epochs": max(1, epochs // 2)}
    return variants


def _variant_label(label, epochs):
    """Labels of older result files ("base (...)", "epochs 60") made uniform."""
    if label.startswith("base"):
        return "base"
    if label.startswith("epochs ") and label[7:].isdigit():
        return "epochs x2" if int(label[7:]) == 2 * epochs else "epochs x0.5"
    return label


DRW_VARIANTS = {
    "step, deferral 0.8 (default)": {},
    "cosine, deferral 0.8": {"lr_schedule": "cosine"},
    "step, deferral 0.6": {"deferral_start": 0.6},
}


def run_ablation(suite, config, seed, args, emit):
    """Training-default studies, scored on a validation split of the training data.

    "defaults": one-at-a-time changes (schedule, lr, epochs) for the LA and CE
    losses. "drw": ERM/LDAM with and without deferred re-weighting under the
    step schedule (whose x0.01 drop coincides with the deferral), a cosine
    schedule, and an earlier deferral.
    """
    label, profile, rho, _ = config
    X_train, y_train, _, _ = suite.loader(profile, rho, seed, suite.settings)
    train, valid = stratified_holdout(
        y_train, VALIDATION_FRACTION, np.random.RandomState(seed)
    )
    cache = {}

    def score(params):
        key = tuple(sorted(params.items()))
        if key not in cache:
            model = suite.network(seed, args.device, **params)
            elapsed = timed_fit(model, X_train[train], y_train[train])
            y_pred = model.predict(X_train[valid])
            cache[key] = (balanced_accuracy_score(y_train[valid], y_pred), elapsed)
        return cache[key]

    def record(study, column, variant, params):
        accuracy, elapsed = score(params)
        emit(
            {
                "study": study,
                "dataset": label,
                "seed": seed,
                "column": column,
                "variant": variant,
                "valid_balanced_accuracy": accuracy,
                "fit_time_s": elapsed,
            }
        )

    for variant, params in ablation_variants(suite.settings).items():
        for loss in ("logit_adjusted", "ce"):
            record("defaults", loss, variant, {"loss": loss, **params})
    if suite.settings["network"] == "cnn":
        return  # the DRW study costs too much with the CNN on a CPU
    for variant, params in DRW_VARIANTS.items():
        for method in ("ERM", "ERM-DRW", "LDAM", "LDAM-DRW"):
            method_params = METHODS[method]
            if "deferral_start" in params and "reweight_schedule" not in method_params:
                continue  # the deferral does not change a run without DRW
            record("drw", method, variant, {**method_params, **params})


# --------------------------------------------------------------------------- #
# Reporting
# --------------------------------------------------------------------------- #


def _values(rows, dataset, method, key):
    return [
        r[key]
        for r in rows
        if r["dataset"] == dataset and r["method"] == method and not r["error"]
    ]


def _mean(values):
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def dataset_table(rows, dataset, groups, methods=ALL_METHODS):
    group_names = ("many", "medium", "few") if groups == "shots" else GROUP_COLUMNS[3:]
    header = [
        "method",
        "bal. acc. %",
        "macro-F1 %",
        *[f"{g} %" for g in group_names],
        "fit s",
    ]
    methods = [m for m in methods if _values(rows, dataset, m, "balanced_accuracy")]
    body = []
    for method in methods:
        get = lambda key, m=method: _values(rows, dataset, m, key)  # noqa: E731
        body.append(
            [
                method,
                fmt_mean_std(get("balanced_accuracy")),
                fmt_mean_std(get("macro_f1")),
                *[fmt_mean_std(get(g)) for g in group_names],
                fmt(_mean(get("fit_time_s")), 1),
            ]
        )
    failures = [r for r in rows if r["dataset"] == dataset and r["error"]]
    text = markdown_table(header, body)
    if failures:
        text += "\n\nFailed runs: " + "; ".join(
            f"{r['method']} seed {r['seed']}: {r['error']}" for r in failures
        )
    return text


def _mean_accuracies(rows, datasets, methods):
    return {
        (d, m): _mean(_values(rows, d, m, "balanced_accuracy"))
        for d in datasets
        for m in methods
    }


def summary_table(rows, datasets, methods=ALL_METHODS):
    header = ["method", *datasets, "mean rank"]
    means = _mean_accuracies(rows, datasets, methods)
    ranks = {}
    for d in datasets:
        present = [m for m in methods if not math.isnan(means[d, m])]
        order = sorted(present, key=lambda m: -means[d, m])
        for position, m in enumerate(order, start=1):
            ranks.setdefault(m, []).append(position)
    body = []
    for m in methods:
        cells = [
            fmt_mean_std(_values(rows, d, m, "balanced_accuracy")) for d in datasets
        ]
        if all(c == "-" for c in cells):
            continue
        body.append([m, *cells, fmt(_mean(ranks.get(m, [math.nan])), 1)])
    return markdown_table(header, body), ranks


def paper_table(rows, datasets_by_column):
    """Papers' accuracy (100 - error) beside ours, per matching benchmark."""
    header = ["method"]
    for column in PAPER_COLUMNS:
        header.append(f"paper {column}")
        header += [f"ours {d}" for d in datasets_by_column.get(column, [])]
    body = []
    for method, errors in PAPER_ERROR.items():
        cells = [method]
        for column, error in zip(PAPER_COLUMNS, errors, strict=True):
            cells.append("-" if error is None else f"{100 - error:.1f}")
            for d in datasets_by_column.get(column, []):
                cells.append(
                    fmt(_mean(_values(rows, d, method, "balanced_accuracy")), 1, 100)
                )
        body.append(cells)
    return markdown_table(header, body)


def _paired_differences(rows, dataset, a, b):
    by_seed = {}
    for r in rows:
        if r["dataset"] == dataset and not r["error"] and r["method"] in (a, b):
            by_seed.setdefault(r["seed"], {})[r["method"]] = r["balanced_accuracy"]
    return [100 * (v[a] - v[b]) for v in by_seed.values() if a in v and b in v]


def claims_table(rows, configs):
    """Does each ordering of the papers hold on each of our data sets?"""
    header = ["claim (A ahead of B)"]
    for label, _, _, column in configs:
        header.append(f"{label} (paper {column})")
    body = []
    tally = {"yes": 0, "weak": 0, "no": 0}
    for a, b in CLAIMS:
        cells = [f"{a} > {b}"]
        for label, _, _, column in configs:
            col = PAPER_COLUMNS.index(column)
            pa = PAPER_ERROR.get(a, (None,) * len(PAPER_COLUMNS))[col]
            pb = PAPER_ERROR.get(b, (None,) * len(PAPER_COLUMNS))[col]
            diffs = _paired_differences(rows, label, a, b)
            if not diffs:
                cells.append("n/a")
                continue
            ours = np.asarray(diffs)
            ours_text = f"{ours.mean():+.1f}" + (
                f" ± {ours.std(ddof=1):.1f}" if ours.size > 1 else ""
            )
            if pa is not None and pb is not None:
                paper = pb - pa  # accuracy of A minus accuracy of B, points
            elif (a, b) in DIRECTIONAL_CLAIMS:
                paper = math.inf  # A ahead, by an amount not reported here
            else:
                cells.append(f"{ours_text} (paper -)")
                continue
            if abs(paper) < TIE_PP:
                verdict = "yes" if abs(ours.mean()) < 1.0 else "no"
                expected = "≈"
            else:
                sign = np.sign(paper)
                if np.all(np.sign(ours) == sign):
                    verdict = "yes"
                elif np.sign(ours.mean()) == sign:
                    verdict = "weak"
                else:
                    verdict = "no"
                expected = "> 0" if math.isinf(paper) else f"{paper:+.1f}"
            tally[verdict] += 1
            cells.append(f"{ours_text} vs {expected}: **{verdict}**")
        body.append(cells)
    return markdown_table(header, body), tally


def ablation_table(ablation_rows, study):
    rows = [r for r in ablation_rows if r["study"] == study]
    if not rows:
        return ""
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    columns = list(dict.fromkeys(r["column"] for r in rows))
    header = ["variant"] + [f"{d}, {c}" for d in datasets for c in columns]
    header.append("mean fit s")
    body = []
    for variant in variants:
        cells = [variant]
        times = []
        for d in datasets:
            for c in columns:
                sel = [
                    r
                    for r in rows
                    if r["dataset"] == d
                    and r["variant"] == variant
                    and r["column"] == c
                ]
                cells.append(fmt_mean_std([r["valid_balanced_accuracy"] for r in sel]))
                times += [r["fit_time_s"] for r in sel]
        cells.append(fmt(_mean(times), 1))
        body.append(cells)
    return markdown_table(header, body)


def settings_text(suites, class_counts):
    lines = []
    for suite in suites:
        s = suite.settings
        if s["network"] in (PIPELINES, BINARY):
            continue  # the tabular suite: described in its own section
        if s["network"] == "cnn":
            net = f"LongTailImageClassifier(image_shape={s['image_shape']})"
        else:
            net = "LongTailClassifier()"
        extra = {
            k: v
            for k, v in s.items()
            if k not in ("network", "image_shape") and v is not None
        }
        budget = (
            f"{s['epochs']} epochs ({s['warmup_epochs']} warm-up)"
            if s.get("epochs") is not None
            else "the default budget (max_epochs='auto')"
        )
        lines.append(
            f"- **{suite.name}**: {suite.description}. Network {net} with "
            f"{budget}; settings {extra}; estimator defaults otherwise (see "
            "the `defaults` record of each result file: SGD momentum 0.9, "
            "weight decay 2e-4, batch 128, warm-up then cosine decay, lr 0.05 "
            "tabular / 0.1 images, beta 0.9999, LDAM max margin 0.5 and s=30, "
            "VS gamma 0.05; images: the CNN below 32x32 or 10,000 images, no "
            "flips on grayscale, CMO mixing from 8x8, `mixup=None` in the "
            f"'(no mixing)' rows). Groups: {suite.groups}."
        )
        for label, *_ in suite.configs:
            if label in class_counts:
                lines.append(f"  - {label}: train class counts {class_counts[label]}")
    return "\n".join(lines)


def plot(rows, datasets, path, methods=ALL_METHODS):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [
        m
        for m in methods
        if any(_values(rows, d, m, "balanced_accuracy") for d in datasets)
    ]
    fig, ax = plt.subplots(figsize=(max(8, 0.65 * len(methods)), 5))
    width = 0.8 / max(len(datasets), 1)
    for i, d in enumerate(datasets):
        means = [100 * _mean(_values(rows, d, m, "balanced_accuracy")) for m in methods]
        ax.bar(np.arange(len(methods)) + i * width, means, width, label=d)
    ax.set_xticks(np.arange(len(methods)) + 0.4 - width / 2)
    ax.set_xticklabels(methods, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("balanced accuracy (%), mean over seeds")
    ax.set_ylim(0, 100)
    ax.set_xlim(-0.5, len(methods))
    ax.legend(fontsize=8, ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


SUITE_ORDER = ("digits", "fashion", "synthetic", "tabular", "binary")


def load_runs(out_dir):
    """The per-suite result files of ``out_dir``, in suite order."""
    runs = []
    for name in SUITE_ORDER:
        path = out_dir / f"accuracy_{name}.json"
        if path.exists():
            runs.append(json.loads(path.read_text()))
    return runs


def tabular_tables(rows, datasets, methods=TABULAR_METHODS):
    """Summary (accuracy, mean rank, gap to the best, fit time) and gap tables.

    Returns the two markdown tables and ``{method: (mean rank, [ranks], {dataset:
    gap in points})}`` for the methods that ran.
    """
    means = _mean_accuracies(rows, datasets, methods)
    stats = {}
    for d in datasets:
        present = [m for m in methods if not math.isnan(means[d, m])]
        if not present:
            continue
        best = max(means[d, m] for m in present)
        # Ties share their mean rank ("LA loss" repeats the defaults row while
        # the defaults are loss="logit_adjusted", tau=1).
        positions = rankdata([-means[d, m] for m in present], method="average")
        for m, position in zip(present, positions, strict=True):
            entry = stats.setdefault(m, ([], {}))
            entry[0].append(float(position))
            entry[1][d] = 100 * (means[d, m] - best)
    order = [m for m in methods if m in stats]
    summary_body, gap_body = [], []
    for m in order:
        ranks, gaps = stats[m]
        fit = [t for d in datasets for t in _values(rows, d, m, "fit_time_s")]
        summary_body.append(
            [
                m,
                *[
                    fmt_mean_std(_values(rows, d, m, "balanced_accuracy"))
                    for d in datasets
                ],
                fmt(_mean(ranks), 1),
                fmt(_mean(list(gaps.values())), 1),
                fmt(_mean(fit), 1),
            ]
        )
        gap_body.append(
            [
                m,
                *[
                    "-"
                    if d not in gaps
                    else ("**0.0**" if gaps[d] == 0 else f"{gaps[d]:.1f}")
                    for d in datasets
                ],
                fmt(_mean(list(gaps.values())), 1),
            ]
        )
    summary = markdown_table(
        ["method", *datasets, "mean rank", "mean gap (points)", "mean fit s"],
        summary_body,
    )
    gap = markdown_table(["method", *datasets, "mean"], gap_body)
    return summary, gap, {m: (_mean(stats[m][0]), *stats[m]) for m in order}


def tabular_verdict(stats, datasets):
    """One sentence: where LongTailClassifier() with its defaults stands."""
    if TABULAR_DEFAULT not in stats:
        return f"`{TABULAR_DEFAULT}` did not run."
    by_rank = sorted(stats, key=lambda m: stats[m][0])
    mean_rank, ranks, gaps = stats[TABULAR_DEFAULT]
    wins = sum(1 for r in ranks if r == 1)
    worst = min(gaps, key=gaps.get)
    peers = [m for m in by_rank if m != TABULAR_DEFAULT]
    text = (
        f"`{TABULAR_DEFAULT}`: mean rank {mean_rank:.1f} "
        f"({by_rank.index(TABULAR_DEFAULT) + 1} of {len(by_rank)} methods), best on "
        f"{wins} of {len(ranks)} data sets"
    )
    if gaps[worst] < 0:
        text += f", at most {-gaps[worst]:.1f} points behind the best ({worst})"
    if peers:
        best = peers[0]
        text += f"; best other method by mean rank: `{best}` ({stats[best][0]:.1f})"
    return text + "."


# LongTailClassifier parameters left out of the defaults line of the report.
_UNREPORTED = (
    "module",
    "module_params",
    "accelerator",
    "device",
    "random_state",
    "verbose",
    "progress_bar",
    "warm_start",
)


def tabular_report(rows, suite, class_counts, out_dir):
    """The section of the tabular suite (markdown lines)."""
    configs = [c for c in suite.configs if any(r["dataset"] == c[0] for r in rows)]
    datasets = [c[0] for c in configs]
    if not datasets:
        return []
    summary, gap, stats = tabular_tables(rows, datasets)
    defaults = suite.settings.get("longtail_defaults", {})
    defaults_text = ", ".join(
        f"{k}={v!r}" for k, v in defaults.items() if k not in _UNREPORTED
    )
    sizes = []
    for label, name, _, _ in configs:
        split = suite.settings["datasets"][name]
        n_test = next(r["n_test"] for r in rows if r["dataset"] == label)
        counts = class_counts.get(label, {})
        sizes.append(
            f"- **{label}** (`{name}`; split {split}): {sum(counts.values())} "
            f"training rows, class counts {list(counts.values())} (head to tail); "
            f"{n_test} test rows"
        )
    parts = [
        "### Real long-tailed tabular data (suite tabular)",
        "",
        f"{suite.description}. Test split: `n_test` rows per class (natively "
        "long-tailed sets: at most half of a class, so tiny classes keep half for "
        "training). Training split: `make_long_tailed(profile='exp', "
        "imbalance_ratio=rho, n_max=n_max)` of the remaining rows, head-to-tail "
        "order drawn from the seed (diamonds: its native frequency order), or, for "
        "the natively long-tailed sets, the remaining rows with each class capped "
        "at `cap`. Every seed draws new splits.",
        "",
        *sizes,
        "",
        "Every model is a pipeline as a user would write it: "
        "`ColumnTransformer([('num', StandardScaler(), numeric), ('cat', "
        "OneHotEncoder(handle_unknown='ignore', sparse_output=False), "
        "categorical)])`, then the model. "
        f"`{TABULAR_DEFAULT}` is `LongTailClassifier(random_state=seed)` with "
        "nothing else set; `ERM`, `LDAM-DRW` and `LA loss` set only the loss "
        "(`'ce'`; `'ldam'` with `reweight_schedule='drw'`; `'logit_adjusted'` with "
        "`tau=1`, which duplicates the defaults row while those are the "
        "defaults). "
        f"`{TABULAR_SMOTE}`: imblearn pipeline, SMOTE (every class up to the "
        "majority count, `k_neighbors=min(5, smallest class - 1)`) after the "
        "ColumnTransformer, then `LongTailClassifier(loss='ce')` (its epochs are "
        "not rescaled). Peers: `SVC(kernel='rbf', class_weight='balanced')`, "
        "`LogisticRegression(class_weight='balanced', max_iter=1000)`, "
        "`BalancedRandomForestClassifier(n_jobs=1)` and `MLPClassifier("
        "max_iter=500)` (hidden (100,), adam) after the same ColumnTransformer; "
        "`HistGradientBoostingClassifier(class_weight='balanced')` and "
        f"`{TABULAR_LA_HGB}` = `LogitAdjustedClassifier("
        "HistGradientBoostingClassifier(), tau='auto')` (5-fold CV of the "
        "balanced accuracy over tau in 0, 0.1, ..., 2), and "
        f"`{TABULAR_LA_HGB_L2}`, the same with `HistGradientBoostingClassifier("
        "l2_regularization=1.0)` (the setting that LogitAdjustedClassifier's "
        "saturation warning names; it was added after the Shuttle collapse), "
        "see the numeric columns "
        "as they are and the categorical ones through `OrdinalEncoder`, declared "
        "as `categorical_features` (HGB's native categorical support). Nothing "
        "tuned on the test split. Groups head / middle / tail: thirds of the "
        "classes by training count.",
        "",
        f"LongTailClassifier defaults at run time: {defaults_text or 'not recorded'}.",
        "",
        "#### Balanced accuracy (%), mean ± std over seeds",
        "",
        summary,
        "",
        "Mean rank: rank by mean balanced accuracy within each data set (ties "
        f"share the mean of their ranks), averaged over the {len(datasets)} data "
        "sets. Mean gap: balanced-accuracy points "
        "behind the best method of each data set, averaged. Mean fit s: fit time "
        "per fit (one CPU thread), averaged over data sets and seeds.",
        "",
        tabular_verdict(stats, datasets),
        "",
        "#### Gap to the best method of each data set (balanced-accuracy points)",
        "",
        gap,
        "",
    ]
    for label in datasets:
        parts += [
            f"#### {label}",
            "",
            dataset_table(rows, label, suite.groups, TABULAR_METHODS),
            "",
        ]
    png = out_dir / "accuracy_tabular.png"
    plot(rows, datasets, png, TABULAR_METHODS)
    parts += [f"![balanced accuracy per method, tabular]({png.name})", ""]
    return parts


def write_report(out_dir):
    """accuracy.{md,csv,png} from every ``accuracy_<suite>.json`` of ``out_dir``."""
    runs = load_runs(out_dir)
    suites = [
        SimpleNamespace(
            **{**run["suite"], "configs": [tuple(c) for c in run["suite"]["configs"]]}
        )
        for run in runs
    ]
    rows = [row for run in runs for row in run["rows"]]
    ablation_rows = [
        {
            **row,
            "variant": _variant_label(
                row["variant"], run["suite"]["settings"]["epochs"]
            ),
        }
        for run in runs
        for row in run["ablation"]
    ]
    class_counts = {k: v for run in runs for k, v in run["class_counts"].items()}
    with (out_dir / "accuracy.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tabular = [s for s in suites if s.settings["network"] == PIPELINES]
    binary = [s for s in suites if s.settings["network"] == BINARY]
    configs = [
        c for s in suites if s not in tabular and s not in binary for c in s.configs
    ]
    datasets = [c[0] for c in configs if any(r["dataset"] == c[0] for r in rows)]
    setup = []
    for suite, run in zip(suites, runs, strict=True):
        setup += [
            f"Suite **{suite.name}**:",
            "",
            environment_markdown(run["environment"]),
            "",
        ]
    parts = ["### Setup", "", *setup]
    if datasets:
        parts += long_tail_report(
            rows,
            [r for r in ablation_rows if r.get("study") != "binary"],
            suites,
            class_counts,
            configs,
            datasets,
            out_dir,
        )
    for suite in tabular:
        parts += tabular_report(rows, suite, class_counts, out_dir)
    for suite in binary:
        parts += _binary_suite.binary_report(rows, suite, class_counts)
    text = "\n".join(parts)
    (out_dir / "accuracy.md").write_text(text)
    return text


def long_tail_report(
    rows, ablation_rows, suites, class_counts, configs, datasets, out_dir
):
    """The sections of the digits / Fashion / synthetic suites (markdown lines)."""
    by_column = {}
    for label, _, _, column in configs:
        if label in datasets:
            by_column.setdefault(column, []).append(label)
    summary, _ = summary_table(rows, datasets)
    claims, tally = claims_table(rows, [c for c in configs if c[0] in datasets])
    parts = [
        settings_text(suites, class_counts),
        "",
        "Methods are parameter settings (LongTailClassifier Notes table). "
        f"`{POSTHOC_FIXED}` is the ERM model with `posthoc_tau=1`; "
        f"`{POSTHOC_TUNED}` picks `posthoc_tau` in {list(TAU_GRID)} by balanced "
        "accuracy on a stratified 20% validation split of the training data (ERM "
        "refitted on the other 80% for that; the reported model is the full ERM "
        "model; its fit time includes the tuning fit). Baselines: `Net + ROS` / "
        "`Net + SMOTE` are imblearn pipelines ending in the same network with "
        "`loss='ce'`, epochs and warm-up scaled so the number of SGD steps equals "
        "that of the other methods; MLPClassifier (adam, hidden (256, 256), "
        "`max_iter` = the suite's epochs) and LogisticRegression after "
        "StandardScaler; HistGradientBoosting and BalancedRandomForest with their "
        "defaults (HGB stops early on the synthetic suite only, above 10,000 "
        "rows). No "
        "other hyperparameter was tuned; the test split is used only for the "
        "numbers below (the papers report the best test epoch, which is "
        "optimistic). Balanced accuracy equals top-1 accuracy here: every test "
        "split is balanced.",
        "",
        "### Balanced accuracy (%), mean ± std over seeds",
        "",
        summary,
        "",
        f"Mean rank: rank by mean balanced accuracy within each data set, averaged "
        f"over the {len(datasets)} data sets where the method ran.",
        "",
        "### Papers' CIFAR numbers beside ours (top-1 accuracy %, 100 - error)",
        "",
        paper_table(rows, by_column),
        "",
        "### Orderings of the papers, reproduced or not",
        "",
        "Cells: our paired difference A - B in balanced-accuracy points (mean ± "
        "std over seeds) vs the paper's difference on the matching CIFAR "
        f"benchmark. **yes**: same sign in every seed (or, for a paper tie below "
        f"{TIE_PP} points, |ours| < 1); **weak**: same sign on average only; "
        "**no**: opposite sign.",
        "",
        claims,
        "",
        f"Tally: {tally}.",
        "",
    ]
    for label in datasets:
        suite = next(s for s in suites if any(c[0] == label for c in s.configs))
        parts += [f"### {label}", "", dataset_table(rows, label, suite.groups), ""]
    if ablation_rows:
        parts += [
            "### Training defaults ablation (validation split, not test)",
            "",
            "Balanced accuracy (%) on a stratified 20% validation split of the "
            "training data, the models trained on the other 80%. One setting "
            "changed at a time from each suite's base (the settings above: step "
            "schedule with warm-up; lr 0.05 and 60 / 30 epochs for digits / "
            "synthetic, lr 0.1 and 10 epochs for Fashion), for "
            "`loss='logit_adjusted'` (the default) and `loss='ce'`. The digits "
            "validation split has 62 images (tail classes 0-1 each), so its "
            "numbers move in steps and often tie.",
            "",
            ablation_table(ablation_rows, "defaults"),
            "",
            "Deferred re-weighting under three schedules (the step schedule drops "
            "the learning rate x0.01 at the deferral epoch; `deferral_start=0.6` "
            "re-weights for 20% of the epochs at the full rate first):",
            "",
            ablation_table(ablation_rows, "drw"),
            "",
        ]
    png = out_dir / "accuracy.png"
    plot(rows, datasets, png)
    parts += [f"![balanced accuracy per method]({png.name})", ""]
    return parts


def previous_rows(out_dir, suite, methods, seeds):
    """(rows, environment, class counts, ablation rows) of the suite's result file.

    For ``--method``: a rerun of some methods on the suite's configurations
    and ``seeds`` keeps every other row (other methods, data sets and seeds).
    Returns ``([], None, {}, [])`` when there is no result file.
    """
    path = out_dir / f"accuracy_{suite.name}.json"
    if not path.exists():
        return [], None, {}, []
    run = json.loads(path.read_text())
    rerun = {c[0] for c in suite.configs}
    kept = [
        r
        for r in run["rows"]
        if not (r["method"] in methods and r["dataset"] in rerun and r["seed"] in seeds)
    ]
    counts = run.get("class_counts", {})
    return kept, run["environment"], counts, run.get("ablation", [])


def merged_environment(previous, env, methods):
    """The first run's environment, with the later run of ``methods`` recorded."""
    if previous is None:
        return env
    later = {k: env[k] for k in ("command", "date_utc", "load_average_start")}
    later["methods"] = list(methods)
    later["wall_time_s"] = env.get("wall_time_s")
    runs = [
        r for r in previous.get("later_runs", []) if r["methods"] != later["methods"]
    ]
    return {**previous, "later_runs": [*runs, later]}


def save_run(out_dir, env, suite, rows, ablation_rows, class_counts):
    """accuracy_<suite>.{json,csv}: one suite's rows with its environment."""
    write_json(
        out_dir / f"accuracy_{suite.name}.json",
        {
            "environment": env,
            "suite": {
                "name": suite.name,
                "description": suite.description,
                # Every configuration with results (a rerun of some keeps the
                # others' rows, so it keeps their configurations too).
                "configs": [
                    c
                    for c in suite.defined_configs or suite.configs
                    if any(r["dataset"] == c[0] for r in rows)
                ],
                "settings": suite.settings,
                "groups": suite.groups,
            },
            "class_counts": class_counts,
            "rows": rows,
            "ablation": ablation_rows,
        },
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke test")
    parser.add_argument("--suite", choices=(*SUITE_ORDER, "all"), default="all")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1")
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="start the seeds here (K .. K+N-1), to add seeds to a run",
    )
    parser.add_argument(
        "--dataset",
        action="append",
        default=None,
        help="run only the configurations with this label (repeatable), e.g. "
        "'digits exp rho=100'",
    )
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch and BLAS/OpenMP threads (default 1: on a shared CPU, 2 threads "
        "ran up to 100x slower than 1); 0 keeps the libraries' defaults",
    )
    parser.add_argument("--no-ablation", action="store_true")
    parser.add_argument("--out", default=None, help="results folder")
    parser.add_argument(
        "--method",
        action="append",
        default=None,
        help="run only this method of the suite (repeatable); the rows of its "
        "other methods in the suite's result file are kept",
    )
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.out is not None:
        out_dir = Path(args.out)
    else:
        out_dir = RESULTS_DIR / "quick" if args.quick else RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    # Validation splits lack the classes with a single training example.
    warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
    if args.threads:
        torch.set_num_threads(args.threads)
    limits = threadpool_limits(args.threads) if args.threads else None

    n_seeds = 1 if args.quick else args.seeds
    seeds = list(range(args.first_seed, args.first_seed + n_seeds))
    all_suites = make_suites(args.quick)
    names = list(all_suites) if args.suite == "all" else [args.suite]
    suites = [all_suites[name] for name in names]
    if args.dataset:
        for suite in suites:
            suite.defined_configs = suite.configs
            suite.configs = tuple(c for c in suite.configs if c[0] in args.dataset)
        suites = [suite for suite in suites if suite.configs]
    if args.method:
        for suite in suites:
            unknown = set(args.method) - set(suite.methods)
            if unknown:
                parser.error(f"{sorted(unknown)} not among {list(suite.methods)}")
            suite.methods = tuple(m for m in suite.methods if m in args.method)
    start = time.perf_counter()
    failed = 0
    for suite in suites:
        env = environment(
            seeds=seeds, device=args.device, quick=args.quick, threads=args.threads
        )
        suite_start = time.perf_counter()
        rows, ablation_rows, class_counts = [], [], {}
        kept, previous, class_counts, ablation_rows = (
            previous_rows(out_dir, suite, args.method, seeds)
            if args.method
            else ([], None, {}, [])
        )
        csv_path = out_dir / f"accuracy_{suite.name}.csv"
        with csv_path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
            writer.writeheader()

            def emit(row, writer=writer, handle=handle, rows=rows):
                row = {key: row.get(key, math.nan) for key in CSV_COLUMNS}
                rows.append(row)
                writer.writerow(row)
                handle.flush()
                print(
                    f"[{time.perf_counter() - start:7.1f} s] {row['dataset']:<28} "
                    f"seed {row['seed']} {row['method']:<22} "
                    f"bacc {100 * row['balanced_accuracy']:5.1f}  "
                    f"fit {row['fit_time_s']:6.1f} s {row['error']}",
                    flush=True,
                )

            runner = {
                PIPELINES: run_tabular_config,
                BINARY: _binary_suite.run_binary_config,
            }.get(suite.settings["network"], run_config)
            missing = set()
            for seed in seeds:
                for config in suite.configs:
                    if config[0] in missing:
                        continue
                    try:
                        counts = runner(suite, config, seed, args, emit)
                    except FileNotFoundError as exc:  # optional data (Fashion, R)
                        print(f"{config[0]} skipped: {exc}", flush=True)
                        missing.add(config[0])
                        continue
                    class_counts.setdefault(config[0], counts)
                    # Saved as it goes: an interrupted run keeps what it measured.
                    save_run(
                        out_dir,
                        merged_environment(previous, env, suite.methods),
                        suite,
                        kept + rows,
                        ablation_rows,
                        class_counts,
                    )
                    if not args.no_ablation and config[0] in ABLATION_DATASETS:
                        run_ablation(suite, config, seed, args, ablation_rows.append)
        if not rows:
            print(f"suite {suite.name} skipped: no data set available", flush=True)
            continue
        env["wall_time_s"] = round(time.perf_counter() - suite_start, 1)
        env["load_average_end"] = load_average()
        wall = env["wall_time_s"]
        env = merged_environment(previous, env, suite.methods)
        save_run(out_dir, env, suite, kept + rows, ablation_rows, class_counts)
        if kept:  # the CSV as well: every method's rows
            with csv_path.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
                writer.writeheader()
                writer.writerows(kept + rows)
        failed += sum(1 for r in rows if r["error"])
        print(f"suite {suite.name} took {wall} s", flush=True)

    if limits is not None:
        limits.unregister()
    text = write_report(out_dir)
    if not args.quick and out_dir.resolve() == RESULTS_DIR.resolve():
        update_docs({"accuracy": text})  # not for --out elsewhere
    total = round(time.perf_counter() - start, 1)
    print(f"wrote {out_dir}/accuracy.{{md,csv,png}} (this run: {total} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
