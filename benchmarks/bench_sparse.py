"""Sparse benchmark: LongTailClassifier on long-tailed TF-IDF-like data.

A synthetic text-classification problem, generated offline with numpy and
scipy (nothing is downloaded): documents of about 50 distinct terms (65 tokens) drawn
from a Zipfian vocabulary of 50,000 terms, a share of each document's tokens
drawn from its class's own topic terms, a few hundred classes with
exponentially decreasing sizes (imbalance ratio 100), TF-IDF weighted
(``TfidfTransformer(sublinear_tf=True)``, rows of unit norm). The training
set is 100,000 x 50,000 at a density of about 0.1%; its dense float32 form
would take 20 GB and is never allocated. The test set has the same number of
documents of every class (balanced accuracy is plain accuracy there).

Each contender fits in a fresh subprocess that loads the data from a ``.npz``
file, so its peak memory (VmHWM, reset just before ``fit``; ru_maxrss where
VmHWM is missing) is its own:

- ``LongTailClassifier`` (logit-adjusted loss, scale-only standardization),
  with the MLP default ``(256, 256)``, batch 512 and a few epochs (stated in
  the table) to keep the run within about 10 minutes on 2 cores,
- ``LogisticRegression(class_weight="balanced")`` (lbfgs, multinomial),
- ``SGDClassifier(class_weight="balanced")`` (hinge loss, one-vs-rest).

The peers run on the first ``--peer-rows`` training rows (default 25,000,
stated in the table: lbfgs on all 100,000 rows and 300 classes would take
several times the whole run on 2 shared cores); each contender is stopped
after ``--timeout`` seconds (recorded as such). Results are written after
each contender.

    python benchmarks/bench_sparse.py            # full run (see below)
    python benchmarks/bench_sparse.py --quick    # CI smoke test (seconds)

The full run took 23 minutes (18 of them the LongTailClassifier fit) at
``nice -n 10`` on 2 cores shared with jobs that kept the load average near
10; on a quiet machine it should take a fraction of that (not measured).
Results go to ``benchmarks/results/sparse.{md,json}`` (``--quick``:
``results/quick/``), with the command, hardware and load average.
"""

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from _common import (
    RESULTS_DIR,
    environment,
    environment_markdown,
    fmt,
    load_average,
    markdown_table,
    write_json,
)

FULL = {
    "n_train": 100_000,
    "n_features": 50_000,
    "n_classes": 300,
    "terms_per_doc": 65,
    "test_per_class": 20,
    "epochs": 3,
    "peer_rows": 25_000,
}
QUICK = {
    "n_train": 3_000,
    "n_features": 5_000,
    "n_classes": 20,
    "terms_per_doc": 20,
    "test_per_class": 5,
    "epochs": 5,
    "peer_rows": 3_000,
}
IMBALANCE = 100  # largest class / smallest class
TOPIC_TERMS = 50  # terms of each class's own topic
TOPIC_SHARE = 0.1  # share of a document's tokens drawn from its class topic
BATCH_SIZE = 512


# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #


def class_sizes(n_samples, n_classes, imbalance=IMBALANCE):
    """Exponentially decreasing class sizes, largest / smallest = ``imbalance``."""
    profile = imbalance ** (-np.arange(n_classes) / max(n_classes - 1, 1))
    sizes = np.maximum(1, np.round(profile / profile.sum() * n_samples)).astype(int)
    sizes[0] += n_samples - sizes.sum()
    return sizes


def documents(labels, n_features, terms_per_doc, topics, rng):
    """Term-count matrix (CSR) of one document per label: vectorized draws."""
    n_docs = labels.size
    lengths = rng.poisson(terms_per_doc, size=n_docs).clip(min=5)
    doc_of_token = np.repeat(np.arange(n_docs), lengths)
    n_tokens = doc_of_token.size
    # Background: a Zipfian vocabulary (frequency ~ 1 / rank^1.1).
    zipf = 1.0 / np.arange(1, n_features + 1) ** 1.1
    terms = np.searchsorted(np.cumsum(zipf / zipf.sum()), rng.uniform(size=n_tokens))
    terms = np.minimum(terms, n_features - 1)
    on_topic = rng.uniform(size=n_tokens) < TOPIC_SHARE
    topic_pick = rng.integers(0, TOPIC_TERMS, size=n_tokens)
    terms[on_topic] = topics[labels[doc_of_token[on_topic]], topic_pick[on_topic]]
    counts = sp.csr_matrix(
        (np.ones(n_tokens, dtype=np.float32), (doc_of_token, terms)),
        shape=(n_docs, n_features),
    )
    counts.sum_duplicates()
    return counts


def make_data(config, seed=0):
    """``(X_train, y_train, X_test, y_test)``, TF-IDF CSR float32 matrices."""
    from sklearn.feature_extraction.text import TfidfTransformer

    rng = np.random.default_rng(seed)
    n_classes, n_features = config["n_classes"], config["n_features"]
    # Topic terms come from the middle of the vocabulary (informative, not
    # stop words); classes share some of them.
    topics = rng.integers(n_features // 50, n_features, size=(n_classes, TOPIC_TERMS))
    y_train = np.repeat(np.arange(n_classes), class_sizes(config["n_train"], n_classes))
    rng.shuffle(y_train)
    y_test = np.repeat(np.arange(n_classes), config["test_per_class"])
    terms = config["terms_per_doc"]
    counts_train = documents(y_train, n_features, terms, topics, rng)
    counts_test = documents(y_test, n_features, terms, topics, rng)
    tfidf = TfidfTransformer(sublinear_tf=True).fit(counts_train)
    X_train = tfidf.transform(counts_train).astype(np.float32)
    X_test = tfidf.transform(counts_test).astype(np.float32)
    return X_train, y_train, X_test, y_test


def save_data(path, X_train, y_train, X_test, y_test):
    sp.save_npz(f"{path}_train.npz", X_train, compressed=False)
    sp.save_npz(f"{path}_test.npz", X_test, compressed=False)
    np.savez(f"{path}_labels.npz", y_train=y_train, y_test=y_test)


def load_data(path):
    labels = np.load(f"{path}_labels.npz")
    return (
        sp.load_npz(f"{path}_train.npz").tocsr(),
        labels["y_train"],
        sp.load_npz(f"{path}_test.npz").tocsr(),
        labels["y_test"],
    )


def csr_mb(X):
    return (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20


# --------------------------------------------------------------------------- #
# One contender, in a fresh process
# --------------------------------------------------------------------------- #


def _status_mb(field):
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _peak_rss_mb():
    """VmHWM (MiB); ru_maxrss where it is missing (then it may include the
    parent's peak at exec, an overstatement)."""
    peak = _status_mb("VmHWM")
    if peak is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return peak


def _memory_mark():
    """Current RSS (MiB), after resetting the peak to it where Linux allows."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass
    current = _status_mb("VmRSS")
    return _peak_rss_mb() if current is None else current


def make_estimator(name, config, seed):
    if name == "LongTailClassifier":
        from sklearn_lt import LongTailClassifier

        return LongTailClassifier(
            max_epochs=config["epochs"],
            batch_size=BATCH_SIZE,
            device="cpu",
            random_state=seed,
        )
    if name == "LogisticRegression":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(class_weight="balanced")
    from sklearn.linear_model import SGDClassifier

    return SGDClassifier(class_weight="balanced", random_state=seed, n_jobs=1)


def run_contender(name, path, config, seed):
    """Child side: load the data, fit, predict; times, peak memory, accuracy."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    X_train, y_train, X_test, y_test = load_data(path)
    if name != "LongTailClassifier":
        X_train, y_train = (
            X_train[: config["peer_rows"]],
            y_train[: config["peer_rows"]],
        )
    estimator = make_estimator(name, config, seed)
    before = _memory_mark()
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit(X_train, y_train)
    fit_s = time.perf_counter() - start
    peak = _peak_rss_mb()
    start = time.perf_counter()
    y_pred = estimator.predict(X_test)
    predict_s = time.perf_counter() - start
    return {
        "contender": name,
        "rows": X_train.shape[0],
        "fit_s": fit_s,
        "predict_s": predict_s,
        "rss_before_fit_mb": before,
        "peak_rss_mb": peak,
        "fit_increase_mb": peak - before,
        "accuracy": accuracy_score(y_test, y_pred),
        "balanced_accuracy": balanced_accuracy_score(y_test, y_pred),
        "converged": not any(
            issubclass(w.category, ConvergenceWarning) for w in caught
        ),
        "train_classes_seen": int(np.unique(y_train).size),
    }


def measure(name, path, config, seed, log, timeout):
    command = [
        sys.executable,
        __file__,
        "--_contender",
        json.dumps({"name": name, "path": path, "config": config, "seed": seed}),
    ]
    load = load_average()
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        log(f"{name} stopped after {timeout} s")
        return {"contender": name, "error": f"stopped after {timeout} s"}
    if completed.returncode != 0:
        error = completed.stderr.strip().splitlines()[-1:] or ["?"]
        log(f"{name} failed:\n{completed.stderr[-2000:]}")
        return {"contender": name, "error": error[0], "load_average": load}
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["load_average"] = load
    log(
        f"{name}: fit {result['fit_s']:.1f} s, peak {result['peak_rss_mb']:.0f} MiB, "
        f"balanced accuracy {result['balanced_accuracy']:.3f}"
    )
    return result


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #


def markdown(env, data, results, config):
    dense_gb = data["dense_bytes"] / 1e9
    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["contender"], "error: " + r["error"]] + ["-"] * 8)
            continue
        rows.append(
            [
                r["contender"] + ("" if r["converged"] else " (not converged)"),
                f"{r['rows']:,}",
                fmt(r["fit_s"]),
                fmt(r["predict_s"], 2),
                fmt(r["rss_before_fit_mb"], 0),
                fmt(r["peak_rss_mb"], 0),
                fmt(r["peak_rss_mb"] * 2**20 / data["dense_bytes"] * 100, 2),
                fmt(r["accuracy"], 1, 100),
                fmt(r["balanced_accuracy"], 1, 100),
                str(r["load_average"][0]),
            ]
        )
    table = markdown_table(
        [
            "contender",
            "training rows",
            "fit s",
            "predict s",
            "RSS before fit MiB",
            "peak RSS MiB",
            "peak / dense X %",
            "accuracy %",
            "balanced accuracy %",
            "load (1 min)",
        ],
        rows,
    )
    ours = next((r for r in results if r["contender"] == "LongTailClassifier"), {})
    verdict = (
        "not measured"
        if "peak_rss_mb" not in ours
        else (
            f"peak RSS {ours['peak_rss_mb']:.0f} MiB = "
            f"{ours['peak_rss_mb'] * 2**20 / data['dense_bytes'] * 100:.2f}% of the "
            f"{dense_gb:.1f} GB dense X: "
            + (
                "below"
                if ours["peak_rss_mb"] * 2**20 < data["dense_bytes"]
                else "NOT below"
            )
        )
    )
    return f"""# Sparse benchmark (`bench_sparse.py`)

### Setup

{environment_markdown(env)}

### Data (synthetic, TF-IDF-like, generated offline)

- Training: {data["n_train"]:,} x {data["n_features"]:,}, {data["nnz"]:,} stored
  values (density {data["density"] * 100:.3f}%), CSR float32 {data["csr_mb"]:.0f} MiB;
  the dense float32 X would be {dense_gb:.1f} GB (never allocated).
- {data["n_classes"]} classes, sizes {data["largest_class"]:,} down to
  {data["smallest_class"]:,} (imbalance ratio {IMBALANCE}, exponential profile);
  test: {data["test_per_class"]} documents of each class ({data["n_test"]:,} rows).
- Documents: Poisson({config["terms_per_doc"]}) tokens, Zipfian vocabulary,
  {TOPIC_SHARE:.0%} of the tokens from the class's {TOPIC_TERMS} topic terms;
  `TfidfTransformer(sublinear_tf=True)`. Generated in {data["generate_s"]:.0f} s.

### Results

`LongTailClassifier(max_epochs={config["epochs"]}, batch_size={BATCH_SIZE},
device="cpu")`, otherwise defaults (logit-adjusted loss, MLP 256-256, scale-only
standardization); {config["epochs"]} epochs instead of `"auto"` (which would
train 20 here) to keep the run short. `LogisticRegression(class_weight=
"balanced")` (lbfgs, max_iter 100) and `SGDClassifier(class_weight="balanced")`
(hinge, one-vs-rest) with their defaults, on the first {config["peer_rows"]:,}
training rows. Each fit in a fresh process; peak RSS is its VmHWM, reset just
before `fit` (the data already loaded: "RSS before fit"). Balanced accuracy on
the balanced test set.

{table}

Done-when of the issue (a 100,000 x 50,000 fit at density 0.1% without
densifying, peak memory below the dense size of X): {verdict}.
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke test")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument(
        "--peer-rows", type=int, default=None, help="training rows of the peers"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--timeout", type=float, default=3600, help="seconds per contender"
    )
    parser.add_argument("--out", default=None, help="results folder")
    parser.add_argument("--_contender", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._contender is not None:
        spec = json.loads(args._contender)
        try:
            result = run_contender(
                spec["name"], spec["path"], spec["config"], spec["seed"]
            )
        except Exception:
            traceback.print_exc()
            raise
        print(json.dumps(result))
        return
    config = dict(QUICK if args.quick else FULL)
    if args.epochs is not None:
        config["epochs"] = args.epochs
    if args.peer_rows is not None:
        config["peer_rows"] = args.peer_rows
    out = Path(args.out) if args.out else RESULTS_DIR / ("quick" if args.quick else "")
    env = environment(seeds=[args.seed], config=config)
    wall = time.perf_counter()
    start = time.perf_counter()
    X_train, y_train, X_test, y_test = make_data(config, seed=args.seed)
    sizes = np.bincount(y_train)
    data = {
        "n_train": X_train.shape[0],
        "n_features": X_train.shape[1],
        "nnz": int(X_train.nnz),
        "density": X_train.nnz / (X_train.shape[0] * X_train.shape[1]),
        "csr_mb": csr_mb(X_train),
        "dense_bytes": X_train.shape[0] * X_train.shape[1] * 4,
        "n_classes": config["n_classes"],
        "largest_class": int(sizes.max()),
        "smallest_class": int(sizes.min()),
        "n_test": X_test.shape[0],
        "test_per_class": config["test_per_class"],
        "generate_s": time.perf_counter() - start,
    }
    print(f"data: {data}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "data")
        save_data(path, X_train, y_train, X_test, y_test)
        del X_train, X_test
        for name in ("LongTailClassifier", "LogisticRegression", "SGDClassifier"):
            results.append(measure(name, path, config, args.seed, print, args.timeout))
            env["wall_time_s"] = round(time.perf_counter() - wall, 1)
            env["load_average_end"] = load_average()
            payload = {"environment": env, "data": data, "results": results}
            write_json(out / "sparse.json", payload)
            (out / "sparse.md").write_text(markdown(env, data, results, config))
    print(f"wrote {out / 'sparse.md'}")


if __name__ == "__main__":
    main()
