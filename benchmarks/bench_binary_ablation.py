"""Ablation of LongTailClassifier's settings on the binary suite's data sets.

Scored on a validation split, never on the test split of ``bench_accuracy.py
--suite binary``: each seed draws the suite's stratified training split
(``_binary_data.make_split``), holds out a stratified 25% of it, trains each
setting on the other 75% (inside the suite's ColumnTransformer pipeline) and
scores balanced accuracy (of ``predict``), ROC AUC and average precision (of
``predict_proba``) on the held-out rows. One setting changes at a time from
the defaults, plus two combinations.

    python benchmarks/bench_binary_ablation.py              # 2 seeds, 5 data sets
    python benchmarks/bench_binary_ablation.py --quick      # smoke test

Writes ``benchmarks/results/binary_ablation.{json,md}`` (``quick/`` for
``--quick``); a full run copies the table into ``docs/benchmarks.md`` (markers
``binary-ablation``).
"""

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import _binary_data
import _tabular_data
import torch
from _binary_suite import binary_scores
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
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from threadpoolctl import threadpool_limits

from sklearn_lt import LongTailClassifier

VALIDATION_FRACTION = 0.25
VARIANTS = {
    "defaults": {},
    "weight_decay=1e-2": {"weight_decay": 1e-2},
    "hidden_layer_sizes=(64,)": {"hidden_layer_sizes": (64,)},
    "validation_fraction=0.2": {"validation_fraction": 0.2},
    "loss='ce', posthoc_tau=1": {"loss": "ce", "posthoc_tau": 1.0},
    "hidden (64,), weight_decay=1e-2": {
        "hidden_layer_sizes": (64,),
        "weight_decay": 1e-2,
    },
    # Second round, after the first showed over-fitting:
    "linear (hidden_layer_sizes=())": {"hidden_layer_sizes": ()},
    "validation_fraction=0.2, weight_decay=1e-2": {
        "validation_fraction": 0.2,
        "weight_decay": 1e-2,
    },
    "validation_fraction=0.2, hidden (64,), weight_decay=1e-2": {
        "validation_fraction": 0.2,
        "hidden_layer_sizes": (64,),
        "weight_decay": 1e-2,
    },
}
METRICS = ("balanced_accuracy", "roc_auc", "average_precision")


def run(name, seed, quick, emit, variants=VARIANTS):
    X, y, _, _, categorical, positive = _binary_data.make_split(
        name, seed, max_rows=1000 if quick else None
    )
    X_fit, X_valid, y_fit, y_valid = train_test_split(
        X, y, test_size=VALIDATION_FRACTION, stratify=y, random_state=seed
    )
    for variant in variants:
        params = VARIANTS[variant]
        if quick:
            params = {**params, "max_epochs": 2, "warmup_epochs": 0}
        model = make_pipeline(
            _tabular_data.make_preprocessor(X_fit, categorical),
            LongTailClassifier(random_state=seed, **params),
        )
        start = time.perf_counter()
        model.fit(X_fit, y_fit)
        elapsed = time.perf_counter() - start
        scores = binary_scores(model, X_valid, y_valid, positive)
        emit(
            {
                "dataset": _binary_data.DATASETS[name].title,
                "seed": seed,
                "variant": variant,
                "fit_time_s": elapsed,
                **{k: scores[k] for k in METRICS},
            }
        )


def table(rows):
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    header = ["setting"]
    header += [f"{d}: bal. acc. / ROC AUC / AP" for d in datasets]
    header += ["mean bal. acc.", "mean AP", "mean fit s"]
    body = []
    for variant in VARIANTS:
        cells = [variant]
        means = {k: [] for k in METRICS}
        times = []
        for d in datasets:
            sel = [r for r in rows if r["dataset"] == d and r["variant"] == variant]
            if not sel:
                cells.append("-")
                continue
            parts = []
            for k in METRICS:
                values = [r[k] for r in sel]
                means[k].append(sum(values) / len(values))
                parts.append(f"{100 * means[k][-1]:.1f}")
            times += [r["fit_time_s"] for r in sel]
            cells.append(" / ".join(parts))
        for k in ("balanced_accuracy", "average_precision"):
            cells.append(
                f"{100 * sum(means[k]) / len(means[k]):.1f}" if means[k] else "-"
            )
        cells.append(f"{sum(times) / len(times):.1f}" if times else "-")
        body.append(cells)
    return markdown_table(header, body)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument(
        "--dataset", action="append", choices=list(_binary_data.DATASETS)
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--variant",
        action="append",
        choices=list(VARIANTS),
        help="run only this setting (repeatable); the result file keeps the "
        "rows of the others",
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    torch.set_num_threads(args.threads)
    limits = threadpool_limits(args.threads)
    out_dir = RESULTS_DIR / "quick" if args.quick else RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    seeds = list(range(1 if args.quick else args.seeds))
    names = args.dataset or list(_binary_data.DATASETS)
    if args.quick:
        names = names[:1]
    env = environment(seeds=seeds, device="cpu", threads=args.threads)
    rows = []
    path = out_dir / "binary_ablation.json"
    if args.variant and path.exists():  # keep the other settings' rows
        previous = json.loads(path.read_text())
        rows = [r for r in previous["rows"] if r["variant"] not in args.variant]
        later = [*previous["environment"].get("later_runs", []), env]
        env = {**previous["environment"], "later_runs": later}
    start = time.perf_counter()

    def emit(row):
        rows.append(row)
        print(
            f"[{time.perf_counter() - start:7.1f} s] {row['dataset']:<34} seed "
            f"{row['seed']} {row['variant']:<34} "
            + " ".join(f"{100 * row[k]:5.1f}" for k in METRICS)
            + f"  fit {row['fit_time_s']:5.1f} s",
            flush=True,
        )

    for seed in seeds:
        for name in names:
            run(name, seed, args.quick, emit, args.variant or list(VARIANTS))
    limits.unregister()
    run_env = env["later_runs"][-1] if "later_runs" in env else env
    run_env["wall_time_s"] = round(time.perf_counter() - start, 1)
    run_env["load_average_end"] = load_average()
    if args.variant:
        run_env["methods"] = args.variant
    write_json(
        path,
        {"environment": env, "variants": VARIANTS, "rows": rows},
    )
    text = "\n".join(
        [
            "#### Ablation on validation splits (bench_binary_ablation.py)",
            "",
            environment_markdown(env),
            "",
            "Mean over seeds of balanced accuracy / ROC AUC / average precision "
            f"(%) on a stratified {VALIDATION_FRACTION:.0%} validation split of "
            "each training split, the model trained on the rest. Spread over "
            "seeds of the defaults' balanced accuracy per data set: "
            + "; ".join(
                f"{d} {fmt_mean_std(v)}" for d, v in _defaults_by_dataset(rows).items()
            )
            + ".",
            "",
            table(rows),
            "",
        ]
    )
    (out_dir / "binary_ablation.md").write_text(text)
    if not args.quick:
        update_docs({"binary-ablation": text})
    print(f"wrote {Path(out_dir) / 'binary_ablation.md'}")
    return 0


def _defaults_by_dataset(rows):
    values = {}
    for r in rows:
        if r["variant"] == "defaults" and not math.isnan(r["balanced_accuracy"]):
            values.setdefault(r["dataset"], []).append(r["balanced_accuracy"])
    return values


if __name__ == "__main__":
    sys.exit(main())
