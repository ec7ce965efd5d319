"""Scratch harness: try estimator variants on the real long-tailed tabular sets.

The splits are those of the ``tabular`` suite of ``bench_accuracy.py`` (see
``_tabular_data.py``). From the repository root:

    OMP_NUM_THREADS=1 python benchmarks/tabular_quick.py              # all sets
    OMP_NUM_THREADS=1 python benchmarks/tabular_quick.py letter diamonds --seeds 0 1

or from Python (``sys.path`` must hold ``benchmarks/``)::

    from tabular_quick import load_split, score
    from sklearn.pipeline import make_pipeline
    from sklearn_lt import LongTailClassifier

    X_train, y_train, X_test, y_test, pre = load_split("letter", seed=0)
    model = make_pipeline(pre, LongTailClassifier(random_state=0))
    model.fit(X_train, y_train)

    # or, balanced accuracy (%) and fit time on several sets / seeds:
    score(lambda pre, seed: make_pipeline(pre, LongTailClassifier(random_state=seed)))
"""

import argparse
import os
import sys
import time

import numpy as np
from _tabular_data import (
    DATASETS,
    class_counts,
    make_preprocessor,
    make_split,
)
from sklearn.metrics import balanced_accuracy_score


def load_split(name, seed=0, **overrides):
    """``(X_train, y_train, X_test, y_test, preprocessor)`` of one data set.

    ``name``: one of ``DATASETS`` (letter, satellite, shuttle, diamonds, vowel,
    soybean). ``preprocessor`` is an unfitted ``ColumnTransformer``:
    ``StandardScaler`` on the numeric columns, ``OneHotEncoder(
    handle_unknown="ignore", sparse_output=False)`` on the categorical ones.
    ``overrides`` change the split sizes (``n_max``, ``rho``, ``n_test``, ``cap``).
    """
    X_train, y_train, X_test, y_test, categorical = make_split(name, seed, **overrides)
    return X_train, y_train, X_test, y_test, make_preprocessor(X_train, categorical)


def score(make_model, names=None, seeds=(0,), verbose=True):
    """Balanced accuracy (%) and fit time of ``make_model(preprocessor, seed)``.

    Returns ``{name: (mean balanced accuracy %, mean fit seconds)}``.
    """
    names = list(DATASETS) if names is None else list(names)
    results = {}
    for name in names:
        accuracies, times = [], []
        for seed in seeds:
            X_train, y_train, X_test, y_test, pre = load_split(name, seed)
            model = make_model(pre, seed)
            start = time.perf_counter()
            model.fit(X_train, y_train)
            times.append(time.perf_counter() - start)
            accuracies.append(
                100 * balanced_accuracy_score(y_test, model.predict(X_test))
            )
        results[name] = (float(np.mean(accuracies)), float(np.mean(times)))
        if verbose:
            print(
                f"{name:<10} bal. acc. {results[name][0]:5.1f} %  "
                f"({', '.join(f'{a:.1f}' for a in accuracies)})  "
                f"fit {results[name][1]:5.1f} s",
                flush=True,
            )
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", help=f"data sets (default all): {list(DATASETS)}"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--sizes", action="store_true", help="only print the class counts"
    )
    args = parser.parse_args(argv)
    names = args.names or list(DATASETS)
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        parser.error(f"unknown data sets {unknown}; choose from {list(DATASETS)}")
    if args.sizes:
        for name in names:
            X_train, y_train, _, y_test, _ = load_split(name, args.seeds[0])
            print(f"{name}: {X_train.shape[1]} columns")
            print(f"  train {y_train.size}: {class_counts(y_train)}")
            print(f"  test  {y_test.size}: {class_counts(y_test)}")
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline

    from sklearn_lt import LongTailClassifier

    torch.set_num_threads(1)
    print("LongTailClassifier() defaults")
    score(
        lambda pre, seed: make_pipeline(pre, LongTailClassifier(random_state=seed)),
        names,
        args.seeds,
    )
    print("HistGradientBoostingClassifier(class_weight='balanced') on one-hot")
    score(
        lambda pre, seed: make_pipeline(
            pre,
            HistGradientBoostingClassifier(class_weight="balanced", random_state=seed),
        ),
        names,
        args.seeds,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
