"""The decoupled second stage (cRT, LWS, MARC) against one-stage training.

Balanced test accuracy on digits-LT (real 8x8 digits, a long-tailed training
split and a balanced test split, :func:`sklearn_lt.datasets.load_digits_lt`)
of ERM, ERM + cRT, ERM + LWS, ERM + MARC, the logit-adjusted loss (LA) and
LA + cRT, over several seeds. From the repository root::

    OMP_NUM_THREADS=1 python benchmarks/bench_retraining.py [--rho 100]
        [--seeds 3] [--model mlp|cnn] [--device cpu|cuda|auto]

writes ``benchmarks/results/retraining_<model>_rho<rho>.md`` with the command,
versions, date and the per-seed numbers.
"""

import argparse
import datetime
import os
import platform
import sys
import time

import numpy as np
import sklearn
import torch
from sklearn.metrics import balanced_accuracy_score

from sklearn_lt import LongTailClassifier, LongTailImageClassifier
from sklearn_lt.datasets import load_digits_lt

METHODS = {
    "ERM": {"loss": "ce"},
    "ERM + cRT": {"loss": "ce", "classifier_retraining": "crt"},
    "ERM + LWS": {"loss": "ce", "classifier_retraining": "lws"},
    "ERM + MARC": {"loss": "ce", "classifier_retraining": "marc"},
    "LA": {"loss": "logit_adjusted"},
    "LA + cRT": {"loss": "logit_adjusted", "classifier_retraining": "crt"},
}


def make_model(model, params, seed, device):
    if model == "cnn":
        return LongTailImageClassifier(
            architecture="cnn",
            image_shape=(1, 8, 8),
            random_state=seed,
            device=device,
            **params,
        )
    return LongTailClassifier(random_state=seed, device=device, **params)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rho", type=float, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    scores = {name: [] for name in METHODS}
    seconds = {name: [] for name in METHODS}
    for seed in range(args.seeds):
        data = load_digits_lt(imbalance_ratio=args.rho, random_state=seed)
        for name, params in METHODS.items():
            start = time.perf_counter()
            clf = make_model(args.model, params, seed, args.device)
            clf.fit(data.X_train, data.y_train)
            seconds[name].append(time.perf_counter() - start)
            score = balanced_accuracy_score(data.y_test, clf.predict(data.X_test))
            scores[name].append(100 * score)
            print(f"seed {seed} {name:12s} {100 * score:6.2f}", flush=True)
    lines = [
        f"# Second-stage re-training, digits-LT rho={args.rho:g} ({args.model})",
        "",
        "Command: `" + " ".join(["python", *sys.argv]) + "`",
        "",
        f"Date {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; "
        f"torch {torch.__version__}, scikit-learn {sklearn.__version__}, "
        f"Python {platform.python_version()}, device {args.device}, "
        f"load average {os.getloadavg()[0]:.1f}; "
        f"training examples {len(data.y_train)}, balanced test set "
        f"{len(data.y_test)}.",
        "",
        "| method | balanced accuracy % (mean ± sd) | per seed | fit s |",
        "|---|---|---|---|",
    ]
    for name in METHODS:
        values = np.array(scores[name])
        per_seed = ", ".join(f"{v:.1f}" for v in values)
        lines.append(
            f"| {name} | {values.mean():.1f} ± {values.std():.1f} | {per_seed} | "
            f"{np.mean(seconds[name]):.1f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"retraining_{args.model}_rho{args.rho:g}.md")
    with open(path, "w") as handle:
        handle.write(text)


if __name__ == "__main__":
    main()
