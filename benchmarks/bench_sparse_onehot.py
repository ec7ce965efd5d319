"""One-hot columns as a sparse matrix: does the default network see the same data?

A ``ColumnTransformer`` with scikit-learn's default ``OneHotEncoder``
(``sparse_output=True``) hands ``LongTailClassifier`` a sparse matrix whenever
the one-hot columns make the output sparse enough (Soybean, 35 categorical
columns, does with the default ``sparse_threshold=0.3``). Sparse inputs of up
to 4,096 columns are standardized as their dense form is; this script checks
that the default estimator scores what it scores on the dense one-hot
encoding, on the real tabular sets
with categorical columns (Vowel, diamonds, Soybean; the accuracy suite's
splits), with the one-hot block forced sparse (``sparse_threshold=1.0``) or
dense. From the repository root::

    OMP_NUM_THREADS=1 python benchmarks/bench_sparse_onehot.py [--seeds 3]

writes ``benchmarks/results/sparse_onehot.{json,md}`` with the command,
versions, hardware and per-seed numbers, and copies the table into
``docs/benchmarks.md``. Needs the tabular suite's data
(``pip install -e .[bench]`` and Debian's R data packages).
"""

import argparse
import sys
import time

import _tabular_data
import numpy as np
import torch
from _common import (
    RESULTS_DIR,
    environment,
    environment_markdown,
    fmt_mean_std,
    load_average,
    markdown_table,
    write_json,
)
from _docs import update_docs
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import make_pipeline

from sklearn_lt import LongTailClassifier

DATASETS = ("vowel", "diamonds", "soybean")
ENCODINGS = {"dense one-hot": False, "sparse one-hot": True}


def make_model(X_train, categorical, sparse, seed):
    """The suite's pipeline, with the one-hot block dense or forced sparse."""
    kind = "sparse_onehot" if sparse else "onehot"
    columns = _tabular_data.make_preprocessor(X_train, categorical, kind=kind)
    return make_pipeline(columns, LongTailClassifier(random_state=seed))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    env = environment(seeds=list(range(args.seeds)))
    started = time.perf_counter()
    rows = []
    for name in DATASETS:
        for seed in range(args.seeds):
            X_train, y_train, X_test, y_test, categorical = _tabular_data.make_split(
                name, seed
            )
            for encoding, sparse in ENCODINGS.items():
                start = time.perf_counter()
                model = make_model(X_train, categorical, sparse, seed)
                model.fit(X_train, y_train)
                score = balanced_accuracy_score(y_test, model.predict(X_test))
                rows.append(
                    {
                        "dataset": _tabular_data.DATASETS[name].title,
                        "seed": seed,
                        "encoding": encoding,
                        "balanced_accuracy": float(score),
                        "fit_time_s": time.perf_counter() - start,
                    }
                )
                print(f"{name} seed {seed} {encoding}: {100 * score:.1f}", flush=True)
    env["wall_time_s"] = round(time.perf_counter() - started, 1)
    env["load_average_end"] = load_average()
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    table = markdown_table(
        ["data set", *ENCODINGS],
        [
            [
                d,
                *[
                    fmt_mean_std(
                        [
                            r["balanced_accuracy"]
                            for r in rows
                            if r["dataset"] == d and r["encoding"] == e
                        ]
                    )
                    for e in ENCODINGS
                ],
            ]
            for d in datasets
        ],
    )
    text = "\n".join(
        [
            "### `LongTailClassifier()` on dense and sparse one-hot columns",
            "",
            environment_markdown(env),
            "",
            "Balanced accuracy (%), mean ± std over seeds, the accuracy suite's "
            "splits; the pipeline of the tabular suite, with the one-hot block "
            "dense (`sparse_output=False`) or sparse (`sparse_threshold=1.0`).",
            "",
            table,
            "",
        ]
    )
    write_json(RESULTS_DIR / "sparse_onehot.json", {"environment": env, "rows": rows})
    (RESULTS_DIR / "sparse_onehot.md").write_text(text)
    update_docs({"sparse-onehot": text})
    print(text)
    print(f"mean difference (sparse - dense): {_difference(rows):+.2f} points")
    return 0


def _difference(rows):
    by_key = {(r["dataset"], r["seed"], r["encoding"]): r for r in rows}
    return 100 * np.mean(
        [
            by_key[d, s, "sparse one-hot"]["balanced_accuracy"]
            - by_key[d, s, "dense one-hot"]["balanced_accuracy"]
            for d, s, e in by_key
            if e == "dense one-hot"
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
