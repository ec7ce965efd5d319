"""Balanced accuracy with and without mixing augmentation (Mixup, CutMix, CMO).

Digits-LT (``load_digits_lt`` defaults: imbalance ratio 10, balanced test split
of 500 images) with :class:`LongTailImageClassifier` defaults, and a synthetic
20-class tabular problem (imbalance ratio 100, 50 balanced test rows per class)
with :class:`LongTailClassifier` defaults; each with the default loss (logit
adjusted) and with LDAM-DRW. Writes ``results/mixing.{md,json}`` with the
command, versions and date (each problem's rows in ``mixing_<problem>.json``;
the table is rebuilt from all of them, so the problems can run separately)::

    python benchmarks/bench_mixing.py [--problem digits|synthetic|all] \
        [--seeds 3] [--device cpu] [--quick]
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score

from sklearn_lt import LongTailClassifier, LongTailImageClassifier
from sklearn_lt.datasets import (
    load_digits_lt,
    make_long_tailed,
    make_long_tailed_classification,
)

RESULTS = Path(__file__).parent / "results"
NAMES = {
    "digits": "digits-LT (image)",
    "synthetic": "synthetic 20 cls rho=100 (tabular)",
}
LOSSES = {"LA": {}, "LDAM-DRW": {"loss": "ldam", "reweight_schedule": "drw"}}


def digits(seed):
    data = load_digits_lt(random_state=seed)
    return data.X_train, data.y_train, data.X_test, data.y_test


def synthetic(seed, n_classes=20, n_max=500, n_test=50):
    X, y = make_long_tailed_classification(
        n_classes=n_classes,
        n_features=20,
        n_informative=10,
        class_sep=1.5,
        imbalance_ratio=1,
        n_max=n_max + n_test,
        random_state=seed,
    )
    rng = np.random.RandomState(seed)
    test = np.zeros(y.shape, bool)
    for label in np.unique(y):
        test[rng.choice(np.flatnonzero(y == label), n_test, replace=False)] = True
    X_train, y_train = make_long_tailed(
        X[~test], y[~test], imbalance_ratio=100, n_max=n_max, random_state=seed
    )
    return X_train, y_train, X[test], y[test]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--problem", choices=("digits", "synthetic", "all"), default="all"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    problems = {
        "digits": (
            digits,
            LongTailImageClassifier,
            (None, "mixup", "cutmix", "cmo"),
        ),
        "synthetic": (
            synthetic,
            LongTailClassifier,
            (None, "mixup"),
        ),
    }
    out = RESULTS / ("quick" if args.quick else "")
    out.mkdir(parents=True, exist_ok=True)
    for problem, (load, estimator, methods) in problems.items():
        if args.problem not in ("all", problem):
            continue
        rows = []
        for seed in range(args.seeds):
            X_train, y_train, X_test, y_test = load(seed)
            for loss, params in LOSSES.items():
                for mixup in methods:
                    extra = {"max_epochs": 2} if args.quick else {}
                    clf = estimator(
                        mixup=mixup,
                        device=args.device,
                        random_state=seed,
                        **params,
                        **extra,
                    )
                    start = time.perf_counter()
                    clf.fit(X_train, y_train)
                    seconds = time.perf_counter() - start
                    score = balanced_accuracy_score(y_test, clf.predict(X_test))
                    rows.append(
                        {
                            "problem": NAMES[problem],
                            "command": " ".join(sys.argv),
                            "loss": loss,
                            "mixup": str(mixup),
                            "seed": seed,
                            "balanced_accuracy": score,
                            "fit_seconds": seconds,
                            "epochs": clf.max_epochs_,
                        }
                    )
                    print(rows[-1], flush=True)
                    path = out / f"mixing_{problem}.json"
                    path.write_text(json.dumps(rows, indent=1))
    rows = [
        row
        for path in sorted(out.glob("mixing_*.json"))
        for row in json.loads(path.read_text())
    ]
    write_markdown(rows, out / "mixing.md", args)


def write_markdown(rows, path, args):
    lines = [
        "# Mixing augmentation: balanced accuracy (mean ± std over seeds)",
        "",
        "Commands: " + ", ".join(sorted({f"`python {r['command']}`" for r in rows})),
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"torch {torch.__version__}; {platform.processor() or platform.machine()}; "
        f"load average {os.getloadavg()[0]:.1f}; seeds 0..{args.seeds - 1}",
        "",
        "| problem | loss | mixup | balanced accuracy | fit seconds |",
        "|---|---|---|---|---|",
    ]
    keys = sorted(
        {(r["problem"], r["loss"], r["mixup"]) for r in rows},
        key=lambda k: (k[0], k[1], ["None", "mixup", "cutmix", "cmo"].index(k[2])),
    )
    for key in keys:
        scores = [
            r["balanced_accuracy"]
            for r in rows
            if key == (r["problem"], r["loss"], r["mixup"])
        ]
        seconds = [
            r["fit_seconds"]
            for r in rows
            if key == (r["problem"], r["loss"], r["mixup"])
        ]
        lines.append(
            f"| {key[0]} | {key[1]} | {key[2]} | {np.mean(scores):.3f} ± "
            f"{np.std(scores):.3f} (n={len(scores)}) | {np.mean(seconds):.0f} |"
        )
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
