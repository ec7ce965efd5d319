"""Speed benchmark: LongTailClassifier against a hand-written PyTorch loop.

1. Head to head, one process, interleaved repeats, medians: the same MLP
   (64 -> 256 -> 256 -> 10), SGD (momentum 0.9, weight decay 2e-4, constant
   learning rate, no warm-up), batch 128 and epochs, trained by

   - a hand-written PyTorch loop (tensors on the device, randperm + index
     slicing, ``nn.CrossEntropyLoss``, ``loss.item()`` every step as skorch),
   - ``LongTailClassifier(loss="ce")`` (with ``standardize=False``, the same
     network; and with the default ``standardize=True``),
   - stock skorch ``NeuralNetClassifier`` (default DataLoader, no validation),
   - scikit-learn ``MLPClassifier(solver="sgd")``.

2. Scaling, each point in a fresh subprocess (peak memory = its
   ``ru_maxrss``): rows (1 epoch), classes (with the loss's share of a
   training step), ``LongTailImageClassifier(architecture="cnn")`` on
   Fashion-MNIST images (1 epoch), ``predict_proba`` throughput, and ResNet-32
   on 32x32 inputs (the GPU mode; a small CPU reference otherwise).

    python benchmarks/bench_speed.py              # full run, waits for load < 1.5
    python benchmarks/bench_speed.py --quick      # CI smoke test (< 60 s)
    python benchmarks/bench_speed.py --device cuda

torch keeps its default number of threads (recorded). Results go to
``benchmarks/results/speed.{md,json,png}`` (``--quick``: ``results/quick/``).
"""

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import report
import torch
from _common import (
    RESULTS_DIR,
    environment,
    environment_markdown,
    fmt,
    load_average,
    markdown_table,
    wait_for_low_load,
    write_json,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from skorch import NeuralNetClassifier
from threadpoolctl import threadpool_info
from torch import nn

from sklearn_lt import LongTailClassifier, LongTailImageClassifier

N_FEATURES = 64
HIDDEN = (256, 256)
BATCH_SIZE = 128
LR = 0.05
MOMENTUM = 0.9
WEIGHT_DECAY = 2e-4
PREDICT_BATCH = 8192


def make_data(n_samples, n_classes, seed=0):
    """float32 features, labels from a random linear rule (learnable)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, N_FEATURES), dtype=np.float32)
    W = rng.standard_normal((N_FEATURES, n_classes), dtype=np.float32)
    return X, np.argmax(X @ W, axis=1).astype(np.int64)


class PlainMLP(nn.Module):
    """64 -> 256 -> 256 -> C with ReLUs: the network of every contender."""

    def __init__(self, n_features=N_FEATURES, n_classes=10):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(n_features, HIDDEN[0]),
            nn.ReLU(),
            nn.Linear(HIDDEN[0], HIDDEN[1]),
            nn.ReLU(),
            nn.Linear(HIDDEN[1], n_classes),
        )

    def forward(self, X):
        return self.layers(X)


# --------------------------------------------------------------------------- #
# Contenders of the head-to-head comparison; each trains from numpy arrays.
# --------------------------------------------------------------------------- #


def fit_hand_loop(X, y, epochs, seed, device):
    torch.manual_seed(seed)
    model = PlainMLP(X.shape[1], int(y.max()) + 1).to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY
    )
    criterion = nn.CrossEntropyLoss()
    features = torch.as_tensor(X, device=device)
    targets = torch.as_tensor(y, device=device)
    n_samples = features.shape[0]
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n_samples, device=device)
        for start in range(0, n_samples, BATCH_SIZE):
            rows = order[start : start + BATCH_SIZE]
            loss = criterion(model(features[rows]), targets[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()
    return model


def _long_tail_classifier(epochs, seed, device, standardize):
    return LongTailClassifier(
        loss="ce",
        hidden_layer_sizes=HIDDEN,
        max_epochs=epochs,
        batch_size=BATCH_SIZE,
        lr=LR,
        momentum=MOMENTUM,
        weight_decay=WEIGHT_DECAY,
        lr_schedule="constant",
        warmup_epochs=0,
        standardize=standardize,
        device=device,
        random_state=seed,
    )


def fit_long_tail(X, y, epochs, seed, device):
    return _long_tail_classifier(epochs, seed, device, False).fit(X, y)


def fit_long_tail_standardized(X, y, epochs, seed, device):
    return _long_tail_classifier(epochs, seed, device, True).fit(X, y)


def fit_skorch(X, y, epochs, seed, device):
    torch.manual_seed(seed)
    net = NeuralNetClassifier(
        PlainMLP,
        module__n_features=X.shape[1],
        module__n_classes=int(y.max()) + 1,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=MOMENTUM,
        optimizer__weight_decay=WEIGHT_DECAY,
        lr=LR,
        batch_size=BATCH_SIZE,
        max_epochs=epochs,
        train_split=None,
        iterator_train__shuffle=True,
        device=device,
        verbose=0,
    )
    return net.fit(X, y)


def fit_sklearn_mlp(X, y, epochs, seed, device):
    model = MLPClassifier(
        hidden_layer_sizes=HIDDEN,
        solver="sgd",
        momentum=MOMENTUM,
        nesterovs_momentum=False,
        learning_rate="constant",
        learning_rate_init=LR,
        alpha=WEIGHT_DECAY,
        batch_size=BATCH_SIZE,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=10**6,
        shuffle=True,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


HAND_LOOP = "hand-written PyTorch loop"
CONTENDERS = {
    HAND_LOOP: fit_hand_loop,
    "LongTailClassifier(loss='ce', standardize=False)": fit_long_tail,
    "LongTailClassifier(loss='ce'), standardize=True (default)": (
        fit_long_tail_standardized
    ),
    "skorch NeuralNetClassifier (stock)": fit_skorch,
    "sklearn MLPClassifier(solver='sgd')": fit_sklearn_mlp,
}


def head_to_head(args, log):
    n_samples = 4000 if args.quick else 50_000
    epochs = 1 if args.quick else args.epochs
    X, y = make_data(n_samples, 10)
    # Two threads on a busy 2-core machine can be ~100x slower (spinning
    # OpenMP/OpenBLAS workers): even the warm-up waits for a quiet machine.
    _wait(args, log)
    # One small warm-up fit each (lazy imports, allocator, kernel selection).
    for fit in CONTENDERS.values():
        fit(X[:1024], y[:1024], 1, 0, args.device)
    times = {name: [] for name in CONTENDERS}
    loads = []
    names = list(CONTENDERS)
    for repeat in range(args.repeats):
        load, timed_out = _wait(args, log)
        loads.append(round(load, 2) if not timed_out else f"{load:.2f} (high)")
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:  # interleaved, rotating order
            start = time.perf_counter()
            CONTENDERS[name](X, y, epochs, repeat, args.device)
            if args.device == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
        log(
            f"repeat {repeat}: "
            + ", ".join(f"{n.split('(')[0]} {t[-1]:.2f}s" for n, t in times.items())
        )
    steps = epochs * math.ceil(n_samples / BATCH_SIZE)
    reference = statistics.median(times[HAND_LOOP])
    results = []
    for name, values in times.items():
        median = statistics.median(values)
        results.append(
            {
                "contender": name,
                "median_s": median,
                "min_s": min(values),
                "max_s": max(values),
                "times_s": values,
                "us_per_step": 1e6 * median / steps,
                "ratio_to_hand_loop": median / reference,
            }
        )
    return {
        "n_samples": n_samples,
        "n_features": N_FEATURES,
        "n_classes": 10,
        "epochs": epochs,
        "steps": steps,
        "repeats": args.repeats,
        "load_average_per_repeat": loads,
        "results": results,
    }


# --------------------------------------------------------------------------- #
# Scaling points, each run in a fresh subprocess (``--_point``)
# --------------------------------------------------------------------------- #


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _time_loss(name, class_counts, n_classes, device, iterations):
    """Seconds per forward + backward of a loss on one (128, C) batch."""
    from sklearn_lt.losses import make_loss

    criterion = make_loss(name, class_counts).to(device)
    logits = torch.randn(BATCH_SIZE, n_classes, device=device, requires_grad=True)
    target = torch.randint(0, n_classes, (BATCH_SIZE,), device=device)
    if name == "ldam":  # cosine logits in [-1, 1]
        logits = torch.tanh(logits.detach()).requires_grad_()
    for _ in range(5):
        criterion(logits, target).backward()
    start = time.perf_counter()
    for _ in range(iterations):
        criterion(logits, target).backward()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / iterations


def _fashion_images(n_images):
    """Fashion-MNIST training images in [0, 1], repeated up to ``n_images``.

    Without the data (an optional Debian package), random 28x28 images of the
    same shape stand in: the timings do not depend on the pixels.
    """
    from sklearn_lt import load_fashion_mnist

    try:
        X, _, y, _ = load_fashion_mnist(return_X_y=True)
        source = "Fashion-MNIST"
    except FileNotFoundError:
        rng = np.random.default_rng(0)
        X = rng.integers(0, 256, (n_images, 784), dtype=np.uint8)
        y = rng.integers(0, 10, n_images)
        source = "random (Fashion-MNIST not installed)"
    reps = math.ceil(n_images / X.shape[0])
    X = np.tile(X, (reps, 1))[:n_images]
    y = np.tile(y, reps)[:n_images]
    return X.astype(np.float32) / 255, y, source


def run_point(point):
    """Measure one scaling point; returns a dict (printed as JSON by the child)."""
    kind, device = point["kind"], point["device"]
    out = {**point, "torch_threads": torch.get_num_threads()}
    if kind == "predict" and point["n_fit"] > point["n"]:
        raise ValueError("n_fit must not exceed n")
    if kind in ("rows", "classes", "predict"):
        X, y = make_data(point["n"], point.get("n_classes", 10))
        out["data_mb"] = X.nbytes / 2**20
        out["rss_before_fit_mb"] = _peak_rss_mb()
        # Classes: 3 epochs; the step time is the fastest of epochs 2 and 3
        # (skorch's per-epoch duration): free of one-off costs and robust to a
        # burst of load from other processes.
        epochs = 3 if kind == "classes" else 1
        model = LongTailClassifier(max_epochs=epochs, device=device, random_state=0)
        start = time.perf_counter()
        n_fit = point.get("n_fit", point["n"])
        model.fit(X[:n_fit], y[:n_fit])
        out["fit_s"] = time.perf_counter() - start
        if kind == "classes":
            n_steps = math.ceil(point["n"] / BATCH_SIZE)
            fastest = min(model.history_[1:, "dur"])
            out["step_ms"] = 1e3 * fastest / n_steps
            counts = np.bincount(y, minlength=point["n_classes"])
            counts = np.maximum(counts, 1)
            for loss in ("logit_adjusted", "ce", "ldam", "focal"):
                seconds = _time_loss(
                    loss, counts, point["n_classes"], device, point["loss_iterations"]
                )
                out[f"loss_ms_{loss}"] = 1e3 * seconds
            out["loss_share"] = out["loss_ms_logit_adjusted"] / out["step_ms"]
        if kind == "predict":
            start = time.perf_counter()
            proba = model.predict_proba(X)
            out["predict_proba_s"] = time.perf_counter() - start
            out["rows_per_s"] = X.shape[0] / out["predict_proba_s"]
            out["proba_shape"] = list(proba.shape)
            # Reference: the same network in float32, no post-processing.
            module = model.net_.module_.eval()
            start = time.perf_counter()
            with torch.inference_mode():
                for first in range(0, X.shape[0], PREDICT_BATCH):
                    batch = torch.as_tensor(X[first : first + PREDICT_BATCH])
                    torch.softmax(module(batch.to(device)), dim=1).cpu()
            out["float32_forward_rows_per_s"] = X.shape[0] / (
                time.perf_counter() - start
            )
    elif kind == "cnn":
        X, y, out["data"] = _fashion_images(point["n"])
        out["rss_before_fit_mb"] = _peak_rss_mb()
        model = LongTailImageClassifier(
            architecture="cnn",
            image_shape=(1, 28, 28),
            max_epochs=1,
            device=device,
            random_state=0,
        )
        start = time.perf_counter()
        model.fit(X, y)
        out["fit_s"] = time.perf_counter() - start
        out["images_per_s"] = point["n"] / out["fit_s"]
        # Prediction: the estimator (float64 on CPU) vs a float32 forward.
        images = X[: min(1000, point["n"])]
        start = time.perf_counter()
        model.predict_proba(images)
        out["predict_images_per_s"] = images.shape[0] / (time.perf_counter() - start)
        module = model.net_.module_.eval()
        start = time.perf_counter()
        with torch.inference_mode():
            batch = torch.as_tensor(images.reshape(-1, 1, 28, 28), device=device)
            for first in range(0, batch.shape[0], 256):
                torch.softmax(module(batch[first : first + 256]), dim=1).cpu()
        out["float32_predict_images_per_s"] = images.shape[0] / (
            time.perf_counter() - start
        )
    elif kind == "resnet32":
        rng = np.random.default_rng(0)
        X = rng.random((point["n"], 3, 32, 32), dtype=np.float32)
        y = rng.integers(0, 10, point["n"])
        out["rss_before_fit_mb"] = _peak_rss_mb()
        params = {
            "architecture": "resnet32",
            "device": device,
            "random_state": 0,
            "mixed_precision": point.get("mixed_precision", False),
        }
        warm = min(512, point["n"])
        LongTailImageClassifier(max_epochs=1, **params).fit(X[:warm], y[:warm])
        start = time.perf_counter()
        LongTailImageClassifier(max_epochs=point["epochs"], **params).fit(X, y)
        out["fit_s"] = time.perf_counter() - start
        out["images_per_s"] = point["n"] * point["epochs"] / out["fit_s"]
    else:
        raise ValueError(kind)
    out["peak_rss_mb"] = _peak_rss_mb()
    if device == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _wait(args, log):
    """Wait for load < --max-load, out of a total budget of --max-wait seconds."""
    start = time.monotonic()
    budget = 0 if args.quick else args.wait_left
    load, timed_out = wait_for_low_load(args.max_load, budget, log=log)
    args.wait_left = max(0.0, args.wait_left - (time.monotonic() - start))
    return load, timed_out


def measure_point(point, args, log):
    """Run one point in a fresh interpreter, after waiting for a quiet machine."""
    load, timed_out = _wait(args, log)
    command = [sys.executable, __file__, "--_point", json.dumps(point)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        log(f"point {point} failed:\n{completed.stderr[-2000:]}")
        return {**point, "error": completed.stderr.strip().splitlines()[-1]}
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["load_average"] = round(load, 2)
    result["load_high"] = timed_out
    log(f"{point['kind']} n={point['n']}: " + _short(result))
    return result


def _short(result):
    keys = ("fit_s", "peak_rss_mb", "rows_per_s", "images_per_s", "loss_share")
    return ", ".join(f"{k} {result[k]:.3g}" for k in keys if k in result)


def scaling(args, log):
    quick = args.quick
    device = args.device
    points = {"rows": [], "classes": [], "cnn": [], "predict": [], "resnet32": []}
    for n in (2_000,) if quick else (10_000, 100_000, 1_000_000):
        points["rows"].append({"kind": "rows", "n": n, "device": device})
    n_class_rows = 5_000 if quick else 100_000
    for c in (10, 100) if quick else (10, 100, 1000):
        points["classes"].append(
            {
                "kind": "classes",
                "n": n_class_rows,
                "n_classes": c,
                "loss_iterations": 20 if quick else 300,
                "device": device,
            }
        )
    for n in (128,) if quick else (1_000, 5_000, 20_000):
        points["cnn"].append({"kind": "cnn", "n": n, "device": device})
    n_predict = 5_000 if quick else 1_000_000
    points["predict"].append(
        {
            "kind": "predict",
            "n": n_predict,
            "n_fit": min(n_predict, 10_000),
            "device": device,
        }
    )
    if device == "cuda":
        for mixed in (False, True):
            points["resnet32"].append(
                {
                    "kind": "resnet32",
                    "n": 1_000 if quick else 10_000,
                    "epochs": 1 if quick else 2,
                    "mixed_precision": mixed,
                    "device": device,
                }
            )
    else:  # a CPU reference only; the ResNet-32 mode is meant for CUDA
        points["resnet32"].append(
            {
                "kind": "resnet32",
                "n": 32 if quick else 512,
                "epochs": 1,
                "device": device,
            }
        )
    return {
        name: [measure_point(p, args, log) for p in group]
        for name, group in points.items()
    }


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #


def head_to_head_table(h2h):
    header = [
        "contender",
        "median s",
        "min s",
        "max s",
        "µs / step",
        "ratio to hand loop",
    ]
    rows = [
        [
            r["contender"],
            fmt(r["median_s"], 2),
            fmt(r["min_s"], 2),
            fmt(r["max_s"], 2),
            fmt(r["us_per_step"], 0),
            f"{r['ratio_to_hand_loop']:.2f}x",
        ]
        for r in h2h["results"]
    ]
    return markdown_table(header, rows)


def _rows(group, columns):
    body = []
    for r in group:
        if "error" in r:
            body.append(
                [r.get("n"), f"failed: {r['error']}"] + [""] * (len(columns) - 2)
            )
            continue
        body.append([fn(r) for _, fn in columns])
    return markdown_table([name for name, _ in columns], body)


def scaling_tables(scale):
    n = ("rows", lambda r: f"{r['n']:,}")
    fit = ("fit s", lambda r: fmt(r["fit_s"], 2))
    rss = ("peak RSS MiB", lambda r: fmt(r["peak_rss_mb"], 0))
    before = ("RSS before fit MiB", lambda r: fmt(r["rss_before_fit_mb"], 0))
    load = (
        "load avg",
        lambda r: (
            fmt(r.get("load_average"), 2) + (" (high)" if r.get("load_high") else "")
        ),
    )
    parts = [
        "#### Rows (LongTailClassifier defaults, 64 features, 10 classes, 1 epoch)",
        "",
        _rows(
            scale["rows"],
            [
                n,
                ("data MiB", lambda r: fmt(r["data_mb"], 0)),
                fit,
                ("µs / row", lambda r: fmt(1e6 * r["fit_s"] / r["n"], 1)),
                before,
                rss,
                load,
            ],
        ),
        "",
        "#### Classes (100k rows unless quick, LongTailClassifier defaults, 3 "
        "epochs; step time from the fastest of epochs 2-3; each loss timed "
        "alone on (128, C) logits, forward + backward)",
        "",
        _rows(
            scale["classes"],
            [
                ("classes", lambda r: str(r["n_classes"])),
                ("fit s (3 epochs)", lambda r: fmt(r["fit_s"], 2)),
                ("step ms", lambda r: fmt(r["step_ms"], 3)),
                ("LA loss ms", lambda r: fmt(r["loss_ms_logit_adjusted"], 3)),
                ("CE ms", lambda r: fmt(r["loss_ms_ce"], 3)),
                ("LDAM ms", lambda r: fmt(r["loss_ms_ldam"], 3)),
                ("focal ms", lambda r: fmt(r["loss_ms_focal"], 3)),
                ("LA loss share of step", lambda r: f"{100 * r['loss_share']:.1f}%"),
                rss,
                load,
            ],
        ),
        "",
        "#### LongTailImageClassifier(architecture='cnn'), 28x28 images, 1 epoch",
        "",
        _rows(
            scale["cnn"],
            [
                ("images", lambda r: f"{r['n']:,}"),
                ("data", lambda r: r.get("data", "Fashion-MNIST")),
                fit,
                ("images / s", lambda r: fmt(r["images_per_s"], 0)),
                (
                    "predict_proba images / s",
                    lambda r: fmt(r["predict_images_per_s"], 0),
                ),
                (
                    "float32 forward images / s (reference)",
                    lambda r: fmt(r["float32_predict_images_per_s"], 0),
                ),
                rss,
                load,
            ],
        ),
        "",
        "#### predict_proba throughput (model fitted on the first 10k rows, 1 epoch)",
        "",
        _rows(
            scale["predict"],
            [
                n,
                ("predict_proba s", lambda r: fmt(r["predict_proba_s"], 2)),
                ("rows / s", lambda r: f"{r['rows_per_s']:,.0f}"),
                (
                    "float32 forward + softmax rows / s (reference)",
                    lambda r: f"{r['float32_forward_rows_per_s']:,.0f}",
                ),
                rss,
                load,
            ],
        ),
        "",
        "#### ResNet-32 on 32x32x3 inputs (LongTailImageClassifier defaults)",
        "",
        _rows(
            scale["resnet32"],
            [
                ("images", lambda r: f"{r['n']:,}"),
                ("epochs", lambda r: str(r["epochs"])),
                ("mixed precision", lambda r: str(r.get("mixed_precision", False))),
                fit,
                ("images / s", lambda r: fmt(r["images_per_s"], 0)),
                rss,
                load,
            ],
        ),
    ]
    return "\n".join(parts)


def plot(h2h, scale, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    ax = axes[0, 0]
    names = [r["contender"].replace(", ", ",\n") for r in h2h["results"]]
    ax.barh(names, [r["median_s"] for r in h2h["results"]], color="tab:blue")
    ax.set_xlabel(
        f"median fit time (s), {h2h['epochs']} epochs, {h2h['n_samples']:,} rows"
    )
    ax.tick_params(axis="y", labelsize=7)
    ax.invert_yaxis()

    def ok(group):
        return [r for r in group if "error" not in r]

    ax = axes[0, 1]
    rows = ok(scale["rows"])
    ax.loglog([r["n"] for r in rows], [r["fit_s"] for r in rows], "o-", label="fit s")
    ax.set_xlabel("rows (1 epoch)")
    ax.set_ylabel("fit time (s)")
    twin = ax.twinx()
    twin.semilogx(
        [r["n"] for r in rows], [r["peak_rss_mb"] for r in rows], "s--", color="tab:red"
    )
    twin.set_ylabel("peak RSS (MiB)", color="tab:red")
    ax.set_title("LongTailClassifier: rows")

    ax = axes[1, 0]
    classes = ok(scale["classes"])
    c = [r["n_classes"] for r in classes]
    ax.semilogx(c, [r["step_ms"] for r in classes], "o-", label="training step")
    ax.semilogx(
        c, [r["loss_ms_logit_adjusted"] for r in classes], "s--", label="LA loss alone"
    )
    ax.set_xlabel("classes")
    ax.set_ylabel("ms per batch of 128")
    ax.legend()
    ax.set_title("classes: step time and the loss's share")

    ax = axes[1, 1]
    cnn = ok(scale["cnn"])
    ax.loglog([r["n"] for r in cnn], [r["fit_s"] for r in cnn], "o-")
    ax.set_xlabel("Fashion-MNIST images (1 epoch)")
    ax.set_ylabel("fit time (s)")
    ax.set_title("LongTailImageClassifier(architecture='cnn')")
    for axis in axes.flat:
        axis.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out_dir, env, h2h, scale):
    blas = [
        f"{info['internal_api']} {info['num_threads']} threads"
        for info in threadpool_info()
    ]
    parts = [
        "### Setup",
        "",
        environment_markdown(env),
        f"- Thread pools (threadpoolctl): {', '.join(blas)}; torch threads: "
        + (
            f"{env['torch_threads']} (torch's default)"
            if not env["threads_option"]
            else f"set to {env['threads_option']} with --threads"
        )
        + ".",
        f"- Timed only once the 1-minute load average was below {env['max_load']} "
        f"(waiting at most {env['max_wait_s']} s in all, then going on; the load "
        "seen is listed with each number, '(high)' when the wait ran out).",
        "",
        f"### Head to head: {h2h['n_samples']:,} x {h2h['n_features']} float32 rows, "
        f"{h2h['n_classes']} classes, MLP 64-256-256-10, SGD (lr {LR}, momentum "
        f"{MOMENTUM}, weight decay {WEIGHT_DECAY}, constant), batch {BATCH_SIZE}, "
        f"{h2h['epochs']} epochs ({h2h['steps']} steps)",
        "",
        f"Median of {h2h['repeats']} interleaved repeats (order rotated each "
        f"repeat), after one warm-up fit each. Load average before each repeat: "
        f"{h2h['load_average_per_repeat']}.",
        "",
        head_to_head_table(h2h),
        "",
        "### Scaling (each point in a fresh process; peak RSS is its ru_maxrss)",
        "",
        scaling_tables(scale),
        "",
        "![speed plots](speed.png)",
        "",
    ]
    text = "\n".join(parts)
    plot(h2h, scale, out_dir / "speed.png")
    (out_dir / "speed.md").write_text(text)
    write_json(
        out_dir / "speed.json",
        {"environment": env, "head_to_head": h2h, "scaling": scale},
    )
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke test")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--max-load", type=float, default=1.5)
    parser.add_argument(
        "--max-wait",
        type=float,
        default=1800,
        help="total seconds the run may spend waiting for low load",
    )
    parser.add_argument("--out", default=None, help="results folder")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads; default: torch's default (--quick: 1, which avoids "
        "the slowdown of two threads on a busy 2-core machine)",
    )
    parser.add_argument("--_point", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.wait_left = args.max_wait
    if args.quick:
        args.repeats = min(args.repeats, 2)
        if args.threads is None:
            args.threads = 1
    if args.threads:
        torch.set_num_threads(args.threads)
    if args._point is not None:
        print(json.dumps(run_point(json.loads(args._point))))
        return 0
    if args.out is not None:
        out_dir = Path(args.out)
    else:
        out_dir = RESULTS_DIR / "quick" if args.quick else RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    def log(message):
        print(f"[{time.perf_counter() - start:7.1f} s] {message}", flush=True)

    env = environment(
        device=args.device,
        quick=args.quick,
        max_load=args.max_load,
        max_wait_s=args.max_wait,
        seeds=list(range(args.repeats)),
        threads_option=args.threads,
    )
    if args.device != "cuda":
        log("no GPU: CUDA is not available; the ResNet-32 point runs a CPU reference")
    h2h = head_to_head(args, log)
    for r in h2h["results"]:
        log(f"{r['contender']}: {r['median_s']:.2f} s, {r['ratio_to_hand_loop']:.2f}x")
    scale = scaling(args, log)
    env["wall_time_s"] = round(time.perf_counter() - start, 1)
    env["load_average_end"] = load_average()
    text = write_report(out_dir, env, h2h, scale)
    if not args.quick:
        report.update_docs({"speed": text})
    log(f"wrote {out_dir}/speed.{{md,json,png}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
