"""Speed benchmark: LongTailClassifier against a hand-written PyTorch loop.

1. Head to head, one process, interleaved repeats, medians: the same MLP
   (64 -> 256 -> 256 -> 10), SGD (momentum 0.9, weight decay 2e-4, constant
   learning rate, no warm-up), batch 128 and epochs, trained by

   - a hand-written PyTorch loop (tensors on the device, randperm + index
     slicing, ``nn.CrossEntropyLoss``, ``loss.item()`` every step as skorch),
     and the same loop standardizing each batch with float64-computed
     moments, as the default estimator does,
   - ``LongTailClassifier(loss="ce")`` (with ``standardize=False``, the same
     network; and with the default ``standardize=True``),
   - stock skorch ``NeuralNetClassifier`` (default DataLoader, no validation),
   - scikit-learn ``MLPClassifier(solver="sgd")``.

2. Image head to head, the same way: ``LongTailImageClassifier`` with
   ``architecture="cnn"`` and ``"resnet32"`` against a hand loop with the same
   network class, on-device augmentation (``RandomCropFlip``, padding 4, no
   flips), input standardization, SGD (lr 0.1, momentum 0.9, weight decay
   2e-4), cosine learning rate per epoch, batch 128 and epochs, on 28x28
   Fashion-MNIST images. Then ``predict_proba`` of a fitted CNN against a hand
   float32 loop on the same module, with its peak memory increase.

3. Scaling, each point in a fresh subprocess (peak memory = its own VmHWM):
   rows (1 epoch), classes (with the loss's share of a training step), fit
   memory against the data size, ``LongTailImageClassifier(architecture="cnn")``
   on Fashion-MNIST images (1 epoch), ``predict_proba`` throughput, and
   ResNet-32 on 32x32 inputs (the GPU mode; a small CPU reference otherwise).

4. ``GridSearchCV(n_jobs=2)`` against ``n_jobs=1`` on a small grid.

5. A GPU section: the tabular and image head-to-heads (and the image
   ``predict_proba`` check) on ``device="cuda"`` when CUDA is available.

    python benchmarks/bench_speed.py              # full run, waits for load < 1.5
    python benchmarks/bench_speed.py --quick      # CI smoke test (< 60 s)
    python benchmarks/bench_speed.py --device cuda

torch keeps its default number of threads (recorded). Results go to
``benchmarks/results/speed.{md,json,png}`` (``--quick``: ``results/quick/``).
"""

import argparse
import gc
import json
import math
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
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
from _docs import update_docs
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier
from skorch import NeuralNetClassifier
from threadpoolctl import threadpool_info
from torch import nn

from sklearn_lt import LongTailClassifier, LongTailImageClassifier
from sklearn_lt.augmentation import RandomCropFlip
from sklearn_lt.modules import SmallCNN, resnet32

N_FEATURES = 64
HIDDEN = (256, 256)
BATCH_SIZE = 128
LR = 0.05
MOMENTUM = 0.9
WEIGHT_DECAY = 2e-4
PREDICT_BATCH = 8192
# Image head to head: the papers' SGD recipe on 28x28 grayscale images.
IMAGE_SIDE = 28
IMAGE_LR = 0.1
# LongTailImageClassifier's crop_padding="auto": max(1, round(min(H, W) / 8)).
IMAGE_CROP_PADDING = max(1, round(IMAGE_SIDE / 8))
IMAGE_PREDICT_BATCH = 256
# Targets shown next to the measurements (not enforced).
PREDICT_TIME_TARGET = 2.0  # predict_proba / hand float32 loop
PREDICT_MEMORY_TARGET_MB = 1024.0  # peak RSS increase of predict_proba
FIT_MEMORY_TARGET = 2.0  # peak RSS increase of fit / data size


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


def fit_hand_loop(X, y, epochs, seed, device, standardize=False):
    torch.manual_seed(seed)
    model = PlainMLP(X.shape[1], int(y.max()) + 1).to(device)
    if standardize:  # as StandardScaler: float64 moments, each batch scaled
        mean = torch.as_tensor(X.mean(axis=0, dtype=np.float64), device=device)
        scale = torch.as_tensor(X.std(axis=0, dtype=np.float64), device=device)
        mean, scale = mean.float(), scale.float()
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
            batch = features[rows]
            if standardize:
                batch = (batch - mean) / scale
            loss = criterion(model(batch), targets[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()
    return model


def fit_hand_loop_standardized(X, y, epochs, seed, device):
    return fit_hand_loop(X, y, epochs, seed, device, standardize=True)


def _long_tail_classifier(epochs, seed, device, standardize):
    return LongTailClassifier(
        loss="ce",
        hidden_layer_sizes=HIDDEN,
        dropout=0.0,  # the hand loop's network has none (the default is 0.5)
        max_grad_norm=None,  # nor does it clip gradients (the default bound is 10)
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
HAND_LOOP_STANDARDIZED = "hand-written PyTorch loop, standardizing each batch"
STANDARDIZED = (
    "LongTailClassifier(loss='ce', dropout=0, max_grad_norm=None), "
    "standardize=True (default)"
)
CONTENDERS = {
    HAND_LOOP: fit_hand_loop,
    "LongTailClassifier(loss='ce', dropout=0, max_grad_norm=None, "
    "standardize=False)": fit_long_tail,
    HAND_LOOP_STANDARDIZED: fit_hand_loop_standardized,
    STANDARDIZED: fit_long_tail_standardized,
    "skorch NeuralNetClassifier (stock)": fit_skorch,
    "sklearn MLPClassifier(solver='sgd')": fit_sklearn_mlp,
}


# --------------------------------------------------------------------------- #
# Image head to head: LongTailImageClassifier against a hand loop
# --------------------------------------------------------------------------- #


def _image_network(architecture, n_classes, in_channels):
    """The estimator's network class for ``architecture``, freshly initialized."""
    if architecture == "resnet32":
        return resnet32(n_classes, in_channels)
    return SmallCNN(n_classes, in_channels)


def fit_image_hand_loop(images, y, architecture, epochs, seed, device):
    """What ``LongTailImageClassifier(loss="ce")`` does, written by hand.

    Tensors on the device, randperm batches, per-batch augmentation on the
    device (the estimator's ``RandomCropFlip``), per-channel standardization,
    SGD with momentum and weight decay, a cosine learning rate stepped per
    epoch, ``loss.item()`` every step (skorch records it).
    """
    torch.manual_seed(seed)
    features = torch.as_tensor(images, device=device)
    targets = torch.as_tensor(y, dtype=torch.int64, device=device)
    mean = features.mean(dim=(0, 2, 3), keepdim=True)
    scale = features.std(dim=(0, 2, 3), keepdim=True, correction=0)
    model = _image_network(architecture, int(y.max()) + 1, images.shape[1])
    model = model.to(device)
    augment = RandomCropFlip(IMAGE_CROP_PADDING, horizontal_flip=False).to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=IMAGE_LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda epoch: 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
    )
    criterion = nn.CrossEntropyLoss()
    n_images = features.shape[0]
    model.train()
    augment.train()
    for _ in range(epochs):
        order = torch.randperm(n_images, device=device)
        for start in range(0, n_images, BATCH_SIZE):
            rows = order[start : start + BATCH_SIZE]
            batch = (augment(features[rows]) - mean) / scale
            loss = criterion(model(batch), targets[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss.item()
        schedule.step()
    return model


def _image_estimator(architecture, epochs, seed, device):
    """LongTailImageClassifier with every training parameter set explicitly."""
    return LongTailImageClassifier(
        loss="ce",
        reweight_schedule=None,
        architecture=architecture,
        image_shape=None,  # X is (N, 1, 28, 28)
        augment=True,
        crop_padding=IMAGE_CROP_PADDING,
        horizontal_flip=False,
        mixed_precision=False,
        channels_last=False,  # plain NCHW float32 in both contenders
        max_epochs=epochs,
        batch_size=BATCH_SIZE,
        optimizer="sgd",
        lr=IMAGE_LR,
        momentum=MOMENTUM,
        weight_decay=WEIGHT_DECAY,
        max_grad_norm=None,  # the hand loop does not clip gradients
        mixup=None,  # nor mix its batches
        lr_schedule="cosine",
        warmup_epochs=0,
        validation_fraction=None,
        posthoc_tau=0.0,
        tau_norm=0.0,
        device=device,
        random_state=seed,
        verbose=0,
        progress_bar=False,
        warm_start=False,
    )


def fit_image_estimator(images, y, architecture, epochs, seed, device):
    return _image_estimator(architecture, epochs, seed, device).fit(images, y)


IMAGE_HAND_LOOP = "hand-written PyTorch loop (same network and augmentation)"
IMAGE_CONTENDERS = {
    IMAGE_HAND_LOOP: fit_image_hand_loop,
    "LongTailImageClassifier(loss='ce')": fit_image_estimator,
}


def _image_sizes(quick, device):
    """``{architecture: (images, epochs)}`` of the image head to head."""
    if quick:
        return {"cnn": (128, 1), "resnet32": (64, 1)}
    if device == "cuda":
        return {"cnn": (10_240, 2), "resnet32": (10_240, 2)}
    return {"cnn": (2_560, 2), "resnet32": (1_280, 2)}


def _image_part(args, log, device, architecture, images, y, epochs):
    """Head to head of one architecture on ``images`` (N, 1, 28, 28)."""
    _wait(args, log)
    warm = min(BATCH_SIZE, images.shape[0])  # lazy imports, kernel selection
    for fit in IMAGE_CONTENDERS.values():
        fit(images[:warm], y[:warm], architecture, 1, 0, device)
    times, loads = _interleaved(
        IMAGE_CONTENDERS,
        lambda name, repeat: IMAGE_CONTENDERS[name](
            images, y, architecture, epochs, repeat, device
        ),
        args,
        log,
        device,
        label=f"{architecture}: ",
    )
    steps = epochs * math.ceil(images.shape[0] / BATCH_SIZE)
    return {
        "architecture": architecture,
        "n_images": images.shape[0],
        "image_shape": list(images.shape[1:]),
        "epochs": epochs,
        "steps": steps,
        "repeats": args.repeats,
        "load_average_per_repeat": loads,
        "results": _summary(times, IMAGE_HAND_LOOP, steps),
    }


def image_head_to_head(args, log, device=None):
    device = device or args.device
    sizes = _image_sizes(args.quick, device)
    n_max = max(n for n, _ in sizes.values())
    flat, labels, source = _fashion_images(n_max)
    images = flat.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE)
    parts = [
        _image_part(args, log, device, arch, images[:n], labels[:n], epochs)
        for arch, (n, epochs) in sizes.items()
    ]
    return {"device": device, "data": source, "architectures": parts}


def _hand_predict_proba(module, images, device):
    """Float32 softmax of ``module`` in batches of 256, in inference mode."""
    module.eval()
    outputs = []
    with torch.inference_mode():
        for first in range(0, images.shape[0], IMAGE_PREDICT_BATCH):
            batch = torch.as_tensor(images[first : first + IMAGE_PREDICT_BATCH])
            outputs.append(torch.softmax(module(batch.to(device)), dim=1).cpu())
    return torch.cat(outputs).numpy()


def image_predict(args, log, device=None):
    """Fit a CNN here, then time and measure predict_proba in a fresh process."""
    device = device or args.device
    n_fit = 128 if args.quick else 2_560
    n_predict = 256 if args.quick else 5_000
    flat, y, source = _fashion_images(max(n_fit, n_predict))
    images = flat.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE)
    model = _image_estimator("cnn", 1, 0, device)
    start = time.perf_counter()
    model.fit(images[:n_fit], y[:n_fit])
    fit_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        model_path, images_path = Path(folder) / "model.pkl", Path(folder) / "X.npy"
        with open(model_path, "wb") as file:
            pickle.dump(model, file)
        np.save(images_path, images[:n_predict])
        point = {
            "kind": "image_predict",
            "n": n_predict,
            "repeats": max(1, args.repeats),
            # Warm-up on a slice (one batch of the hand loop unless --quick).
            "warm": 64 if args.quick else IMAGE_PREDICT_BATCH,
            "model": str(model_path),
            "images": str(images_path),
            "device": device,
        }
        result = measure_point(point, args, log)
    for key in ("model", "images"):
        result.pop(key, None)
    return {
        **result,
        "data": source,
        "architecture": "cnn",
        "n_fit": n_fit,
        "fit_epochs": 1,
        "fit_s": fit_s,
    }


# --------------------------------------------------------------------------- #
# GridSearchCV(n_jobs=2) against n_jobs=1
# --------------------------------------------------------------------------- #


def _torch_threads():
    return torch.get_num_threads()


def grid_search(args, log):
    from joblib import Parallel, delayed

    quick = args.quick
    n_samples = 2_000 if quick else 20_000
    epochs = 1 if quick else 3
    cv = 2 if quick else 3
    grid = (
        {"lr": [0.05, 0.1]}
        if quick
        else {"lr": [0.05, 0.1], "weight_decay": [2e-4, 1e-3]}
    )
    X, y = make_data(n_samples, 10)
    estimator = _long_tail_classifier(epochs, 0, args.device, True)

    def search(n_jobs, rows=n_samples):
        GridSearchCV(
            estimator, grid, cv=cv, n_jobs=n_jobs, refit=False, error_score="raise"
        ).fit(X[:rows], y[:rows])

    _wait(args, log)
    # Warm-up: starts the two loky workers (imports) and runs lazy imports.
    start = time.perf_counter()
    search(2, 512)
    startup = time.perf_counter() - start
    worker_threads = Parallel(n_jobs=2)(delayed(_torch_threads)() for _ in range(2))
    labels = {1: "GridSearchCV(n_jobs=1)", 2: "GridSearchCV(n_jobs=2)"}
    runs = {label: n_jobs for n_jobs, label in labels.items()}
    times, loads = _interleaved(
        runs, lambda name, repeat: search(runs[name]), args, log, args.device, "grid: "
    )
    n_fits = cv * math.prod(len(values) for values in grid.values())
    return {
        "device": args.device,
        "n_samples": n_samples,
        "n_features": N_FEATURES,
        "epochs": epochs,
        "cv": cv,
        "grid": grid,
        "n_fits": n_fits,
        "refit": False,
        "repeats": args.repeats,
        "first_n_jobs_2_call_s": startup,
        "torch_threads_main": torch.get_num_threads(),
        "torch_threads_workers": worker_threads,
        "load_average_per_repeat": loads,
        "results": _summary(times, labels[1], key="ratio_to_n_jobs_1"),
    }


# --------------------------------------------------------------------------- #
# GPU: the head-to-heads again on device="cuda"
# --------------------------------------------------------------------------- #


def gpu_section(args, log):
    if not torch.cuda.is_available():
        return {"measured": False, "reason": "torch.cuda.is_available() is False"}
    if args.device == "cuda":  # every section above already ran on the GPU
        return {"measured": True, "same_as_main": True}
    log("GPU section: the head-to-heads on device='cuda'")
    try:  # a GPU failure must not lose the CPU results
        return {
            "measured": True,
            "same_as_main": False,
            "tabular": head_to_head(args, log, "cuda"),
            "image": image_head_to_head(args, log, "cuda"),
            "image_predict": image_predict(args, log, "cuda"),
        }
    except Exception as exc:  # reported in the tables
        log(f"GPU section failed:\n{traceback.format_exc()}")
        return {"measured": False, "reason": f"failed: {type(exc).__name__}: {exc}"}


def _interleaved(contenders, run, args, log, device, label="", repeats=None):
    """Time ``run(contender, repeat)`` for each contender, ``repeats`` times.

    ``repeats`` defaults to ``--repeats``.

    The order rotates each repeat; each repeat first waits for a quiet machine.
    Returns ``({name: [seconds, ...]}, [load average before each repeat])``.
    """
    times = {name: [] for name in contenders}
    loads = []
    names = list(contenders)
    for repeat in range(args.repeats if repeats is None else repeats):
        load, timed_out = _wait(args, log)
        loads.append(round(load, 2) if not timed_out else f"{load:.2f} (high)")
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:  # interleaved, rotating order
            start = time.perf_counter()
            run(name, repeat)
            if device == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
        log(
            f"{label}repeat {repeat}: "
            + ", ".join(f"{n.split('(')[0]} {t[-1]:.2f}s" for n, t in times.items())
        )
    return times, loads


def paired_ratios(values, reference):
    """Median and quartiles of ``values[i] / reference[i]`` over the repeats.

    Each repeat times every contender within seconds of each other, so the
    ratio of one repeat cancels the machine's speed at that moment; a shared
    CPU's speed drifts by 10-40% over minutes (one epoch took 0.6 to 1.0 s
    within a single fit), which moves a ratio of medians by several percent.
    """
    ratios = [value / base for value, base in zip(values, reference, strict=True)]
    if len(ratios) < 2:
        return ratios[0], [ratios[0], ratios[0]]
    quartiles = statistics.quantiles(ratios, n=4)
    return statistics.median(ratios), [quartiles[0], quartiles[2]]


def _summary(times, reference, steps=None, key="ratio_to_hand_loop"):
    """Median, range and ratios (as ``key``) to ``reference`` of the times.

    ``key`` is the ratio of the medians; ``"paired_" + key`` the median of the
    repeats' own ratios (see :func:`paired_ratios`), with its quartiles.
    """
    base = statistics.median(times[reference])
    results = []
    for name, values in times.items():
        median = statistics.median(values)
        row = {
            "contender": name,
            "median_s": median,
            "min_s": min(values),
            "max_s": max(values),
            "times_s": values,
        }
        if steps:
            row["us_per_step"] = 1e6 * median / steps
        row[key] = median / base
        paired, quartiles = paired_ratios(values, times[reference])
        row["paired_" + key] = paired
        row["paired_" + key + "_quartiles"] = quartiles
        results.append(row)
    return results


def _paired_cell(row, key="ratio_to_hand_loop"):
    """``1.03x (1.01-1.06)``: the paired ratio and its quartiles ("" if absent)."""
    if "paired_" + key not in row:  # results written before paired ratios
        return ""
    low, high = row["paired_" + key + "_quartiles"]
    return f"{row['paired_' + key]:.2f}x ({low:.2f}-{high:.2f})"


def head_to_head(args, log, device=None):
    device = device or args.device
    n_samples = 4000 if args.quick else 50_000
    epochs = 1 if args.quick else args.epochs
    X, y = make_data(n_samples, 10)
    # Two threads on a busy 2-core machine can be ~100x slower (spinning
    # OpenMP/OpenBLAS workers): even the warm-up waits for a quiet machine.
    _wait(args, log)
    # One small warm-up fit each (lazy imports, allocator, kernel selection).
    for fit in CONTENDERS.values():
        fit(X[:1024], y[:1024], 1, 0, device)
    repeats = args.tabular_repeats or args.repeats
    times, loads = _interleaved(
        CONTENDERS,
        lambda name, repeat: CONTENDERS[name](X, y, epochs, repeat, device),
        args,
        log,
        device,
        repeats=repeats,
    )
    steps = epochs * math.ceil(n_samples / BATCH_SIZE)
    return {
        "device": device,
        "n_samples": n_samples,
        "n_features": N_FEATURES,
        "n_classes": 10,
        "epochs": epochs,
        "steps": steps,
        "repeats": repeats,
        "load_average_per_repeat": loads,
        "results": _summary(times, HAND_LOOP, steps),
    }


# --------------------------------------------------------------------------- #
# Scaling points, each run in a fresh subprocess (``--_point``)
# --------------------------------------------------------------------------- #


def _status_mb(field):
    """A ``Vm*`` line of /proc/self/status in MiB; ``None`` off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _peak_rss_mb():
    """Peak resident memory of this process (MiB): VmHWM, else ru_maxrss.

    Not ru_maxrss where VmHWM exists: on Linux, ru_maxrss of a process started
    by ``subprocess`` is at least the parent's peak when it called exec (the
    kernel keeps the peak of the memory image exec replaced), so every point
    would read at least the parent's peak.
    """
    peak = _status_mb("VmHWM")
    if peak is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB
    return peak


def _rss_mb():
    """Current resident memory (MiB): VmRSS, else the peak."""
    current = _status_mb("VmRSS")
    return _peak_rss_mb() if current is None else current


def _memory_mark():
    """``(current RSS MiB, reset)``, resetting the peak to the current RSS.

    Writing 5 to /proc/self/clear_refs resets VmHWM (Linux >= 4.0). Where that
    fails (``reset`` False), later peaks include earlier ones, so increases
    measured from this mark can only be overstated.
    """
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        reset = True
    except OSError:
        reset = False
    return _rss_mb(), reset


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
    _memory_mark()  # peaks from here on are this point's
    if kind == "predict" and point["n_fit"] > point["n"]:
        raise ValueError("n_fit must not exceed n")
    if kind in ("rows", "classes", "predict"):
        X, y = make_data(point["n"], point.get("n_classes", 10))
        out["data_mb"] = X.nbytes / 2**20
        out["rss_before_fit_mb"] = _rss_mb()
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
        out["rss_before_fit_mb"] = _rss_mb()
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
        out["rss_before_fit_mb"] = _rss_mb()
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
    elif kind == "fit_memory":
        X, y = make_data(point["n"], 10)
        out["data_mb"] = X.nbytes / 2**20
        params = {"max_epochs": 1, "device": device, "random_state": 0}
        # Warm-up on a slice: lazy imports and allocator pools are not the fit's.
        LongTailClassifier(**params).fit(X[:1024], y[:1024])
        out["rss_after_data_mb"], out["peak_reset"] = _memory_mark()
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        model = LongTailClassifier(**params).fit(X, y)
        out["fit_s"] = time.perf_counter() - start
        out["peak_fit_mb"] = _peak_rss_mb()
        out["fit_increase_mb"] = out["peak_fit_mb"] - out["rss_after_data_mb"]
        out["increase_per_data"] = out["fit_increase_mb"] / out["data_mb"]
        out["params"] = {k: repr(v) for k, v in model.get_params().items()}
    elif kind == "image_predict":
        images = np.load(point["images"])
        out["data_mb"] = images.nbytes / 2**20
        with open(point["model"], "rb") as file:
            model = pickle.load(file)
        module = model.net_.module_  # the same fitted module for both
        warm = images[: point["warm"]]
        model.predict_proba(warm)
        _hand_predict_proba(module, warm, device)
        # Peak memory of one predict_proba over all images, from a fresh mark.
        out["rss_before_predict_mb"], out["peak_reset"] = _memory_mark()
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            cuda_before = torch.cuda.memory_allocated()
        start = time.perf_counter()
        proba = model.predict_proba(images)
        out["first_predict_proba_s"] = time.perf_counter() - start
        out["peak_predict_mb"] = _peak_rss_mb()
        out["predict_increase_mb"] = (
            out["peak_predict_mb"] - out["rss_before_predict_mb"]
        )
        if device == "cuda":
            out["predict_cuda_increase_mb"] = (
                torch.cuda.max_memory_allocated() - cuda_before
            ) / 2**20
        out["proba_mb"] = proba.nbytes / 2**20
        # Then the times: interleaved repeats, alternating order, medians.
        runs = {
            "predict_proba": lambda: model.predict_proba(images),
            "hand": lambda: _hand_predict_proba(module, images, device),
        }
        times = {name: [] for name in runs}
        for repeat in range(point["repeats"]):
            names = list(runs) if repeat % 2 == 0 else list(runs)[::-1]
            for name in names:
                start = time.perf_counter()
                outputs = runs[name]()
                times[name].append(time.perf_counter() - start)
                if name == "hand":
                    reference = outputs
        out["max_abs_diff"] = float(np.abs(proba - reference).max())
        out["times_s"] = times
        out["predict_proba_s"] = statistics.median(times["predict_proba"])
        out["hand_s"] = statistics.median(times["hand"])
        out["ratio"] = out["predict_proba_s"] / out["hand_s"]
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


def _run_points(points):
    """Child side: run the points in order; a failing point reports its error."""
    results = []
    for point in points:
        try:
            results.append(run_point(point))
        except Exception as exc:  # reported in the tables
            traceback.print_exc()
            results.append({**point, "error": f"{type(exc).__name__}: {exc}"})
    return results


def _measure(points, args, log):
    """Run ``points`` in one fresh interpreter, after waiting for a quiet machine."""
    load, timed_out = _wait(args, log)
    command = [sys.executable, __file__, "--_point", json.dumps(points)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    stderr = completed.stderr.strip()
    if completed.returncode != 0:
        log(f"points {points} failed:\n{stderr[-2000:]}")
        error = stderr.splitlines()[-1] if stderr else f"exit {completed.returncode}"
        return [{**point, "error": error} for point in points]
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    for point, result in zip(points, results, strict=True):
        if "error" in result:
            log(f"point {point} failed:\n{stderr[-2000:]}")
            continue
        result["load_average"] = round(load, 2)
        result["load_high"] = timed_out
        log(f"{point['kind']} n={point['n']}: " + _short(result))
    return results


def measure_point(point, args, log):
    """Run one point in a fresh interpreter."""
    return _measure([point], args, log)[0]


def measure_points(points, args, log):
    """One fresh interpreter per point; with --quick, one for all (start-up
    costs ~3 s of CPU per interpreter, most of the smoke test's budget)."""
    if args.quick:
        return _measure(points, args, log)
    return [measure_point(point, args, log) for point in points]


def _short(result):
    keys = (
        "fit_s",
        "peak_rss_mb",
        "rows_per_s",
        "images_per_s",
        "loss_share",
        "fit_increase_mb",
        "increase_per_data",
        "predict_proba_s",
        "hand_s",
        "ratio",
        "predict_increase_mb",
    )
    return ", ".join(f"{k} {result[k]:.3g}" for k in keys if k in result)


def scaling(args, log):
    quick = args.quick
    device = args.device
    points = {
        "rows": [],
        "fit_memory": [],
        "classes": [],
        "cnn": [],
        "predict": [],
        "resnet32": [],
    }
    for n in (2_000,) if quick else (10_000, 100_000, 1_000_000):
        points["rows"].append({"kind": "rows", "n": n, "device": device})
    for n in (20_000,) if quick else (100_000, 300_000, 1_000_000):
        points["fit_memory"].append({"kind": "fit_memory", "n": n, "device": device})
    n_class_rows = 5_000 if quick else 100_000
    for c in (100,) if quick else (10, 100, 1000):
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
    flat = [(name, point) for name, group in points.items() for point in group]
    results = measure_points([point for _, point in flat], args, log)
    out = {name: [] for name in points}
    for (name, _), result in zip(flat, results, strict=True):
        out[name].append(result)
    return out


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
        "ratio of medians",
        "paired ratio (quartiles)",
    ]
    rows = [
        [
            r["contender"],
            fmt(r["median_s"], 2),
            fmt(r["min_s"], 2),
            fmt(r["max_s"], 2),
            fmt(r["us_per_step"], 0),
            f"{r['ratio_to_hand_loop']:.2f}x",
            _paired_cell(r),
        ]
        for r in h2h["results"]
    ]
    return markdown_table(header, rows)


def like_for_like_text(h2h):
    """The standardized estimator against the hand loop doing the same work."""
    times = {r["contender"]: r["times_s"] for r in h2h["results"]}
    if HAND_LOOP_STANDARDIZED not in times or STANDARDIZED not in times:
        return ""
    default, hand = times[STANDARDIZED], times[HAND_LOOP_STANDARDIZED]
    paired, (low, high) = paired_ratios(default, hand)
    return (
        "Like for like, the default (standardizing) estimator against the hand "
        "loop that also standardizes each batch: "
        f"{statistics.median(default) / statistics.median(hand):.2f}x (ratio of "
        f"medians), {paired:.2f}x paired (quartiles {low:.2f}-{high:.2f})."
    )


def _load(r):
    return fmt(r.get("load_average"), 2) + (" (high)" if r.get("load_high") else "")


def _met(ok):
    return "yes" if ok else "**no**"


def fit_memory_table(group):
    return _rows(
        group,
        [
            ("rows", lambda r: f"{r['n']:,}"),
            ("data MiB", lambda r: fmt(r["data_mb"], 0)),
            ("RSS with data MiB", lambda r: fmt(r["rss_after_data_mb"], 0)),
            ("peak RSS in fit MiB", lambda r: fmt(r["peak_fit_mb"], 0)),
            ("increase MiB", lambda r: fmt(r["fit_increase_mb"], 0)),
            ("increase / data", lambda r: f"{r['increase_per_data']:.2f}x"),
            (
                f"<= {FIT_MEMORY_TARGET:g}x",
                lambda r: _met(r["increase_per_data"] <= FIT_MEMORY_TARGET),
            ),
            ("fit s", lambda r: fmt(r["fit_s"], 2)),
            ("load avg", _load),
        ],
    )


def image_head_to_head_table(image):
    header = [
        "network",
        "images x epochs (steps)",
        "contender",
        "median s",
        "min s",
        "max s",
        "ms / step",
        "ratio of medians",
        "paired ratio (quartiles)",
    ]
    rows = []
    for part in image["architectures"]:
        for r in part["results"]:
            rows.append(
                [
                    part["architecture"],
                    f"{part['n_images']:,} x {part['epochs']} ({part['steps']})",
                    r["contender"],
                    fmt(r["median_s"], 2),
                    fmt(r["min_s"], 2),
                    fmt(r["max_s"], 2),
                    fmt(r["us_per_step"] / 1e3, 1),
                    f"{r['ratio_to_hand_loop']:.2f}x",
                    _paired_cell(r),
                ]
            )
    return markdown_table(header, rows)


def image_predict_table(r):
    if "error" in r:
        return f"failed: {r['error']}"
    increase = r["predict_increase_mb"]
    header = [
        "images",
        "predict_proba s",
        "hand float32 loop s",
        "ratio",
        f"<= {PREDICT_TIME_TARGET:g}x",
        "peak RSS increase MiB",
        f"<= +{PREDICT_MEMORY_TARGET_MB / 1024:g} GiB",
        "RSS before MiB",
        "probabilities MiB",
        "max abs diff",
        "load avg",
    ]
    row = [
        f"{r['n']:,}",
        fmt(r["predict_proba_s"], 3),
        fmt(r["hand_s"], 3),
        f"{r['ratio']:.2f}x",
        _met(r["ratio"] <= PREDICT_TIME_TARGET),
        fmt(increase, 0),
        _met(increase <= PREDICT_MEMORY_TARGET_MB),
        fmt(r["rss_before_predict_mb"], 0),
        fmt(r["proba_mb"], 2),
        f"{r['max_abs_diff']:.1e}",
        _load(r),
    ]
    if "predict_cuda_increase_mb" in r:
        header.insert(7, "peak CUDA increase MiB")
        row.insert(7, fmt(r["predict_cuda_increase_mb"], 0))
    return markdown_table(header, [row])


def image_predict_text(r):
    if "error" in r:
        return image_predict_table(r)
    return "\n".join(
        [
            f"A CNN fitted for {r['fit_epochs']} epoch on {r['n_fit']:,} {r['data']} "
            "images in the benchmark process and pickled; then, in a fresh "
            f"process, `predict_proba` on {r['n']:,} images against a hand loop "
            "on the same module "
            f"(`clf.net_.module_`): `module.eval()`, `torch.inference_mode()`, "
            f"batches of {IMAGE_PREDICT_BATCH}, float32, softmax. Times: median "
            f"of {len(r['times_s']['hand'])} interleaved repeats after a warm-up. "
            "Peak RSS increase: the process's peak (VmHWM, reset just before) "
            "during one `predict_proba` over all images, minus its RSS before "
            "it"
            + (
                ""
                if r.get("peak_reset", True)
                else " (peak not resettable here: an upper bound)"
            )
            + ". Max abs diff: largest difference between the two outputs.",
            "",
            image_predict_table(r),
        ]
    )


def grid_search_table(grid):
    header = ["search", "median s", "min s", "max s", "ratio to n_jobs=1"]
    rows = [
        [
            r["contender"],
            fmt(r["median_s"], 2),
            fmt(r["min_s"], 2),
            fmt(r["max_s"], 2),
            f"{r['ratio_to_n_jobs_1']:.2f}x",
        ]
        for r in grid["results"]
    ]
    return markdown_table(header, rows)


def grid_search_text(grid):
    grid_text = ", ".join(f"{k}={v}" for k, v in grid["grid"].items())
    return "\n".join(
        [
            f"### GridSearchCV: n_jobs=2 against n_jobs=1 ({grid['n_samples']:,} x "
            f"{grid['n_features']} rows, LongTailClassifier(loss='ce', "
            f"max_epochs={grid['epochs']}), grid {grid_text}, cv={grid['cv']}: "
            f"{grid['n_fits']} fits, refit=False)",
            "",
            f"Median of {grid['repeats']} interleaved repeats after a warm-up "
            "search that starts the loky workers (that first n_jobs=2 call took "
            f"{grid['first_n_jobs_2_call_s']:.1f} s). torch threads: "
            f"{grid['torch_threads_main']} in the main process (n_jobs=1), "
            f"{grid['torch_threads_workers']} in the workers (joblib limits them "
            "to cores / n_jobs). Load average before each repeat: "
            f"{grid['load_average_per_repeat']}.",
            "",
            grid_search_table(grid),
        ]
    )


def image_head_to_head_text(image):
    sizes = "; ".join(
        f"{p['architecture']}: {p['n_images']:,} images x {p['epochs']} epochs, "
        f"load before each repeat {p['load_average_per_repeat']}"
        for p in image["architectures"]
    )
    repeats = image["architectures"][0]["repeats"] if image["architectures"] else 0
    return "\n".join(
        [
            f"Data: {image['data']}, 28x28x1. Both contenders: the same network "
            "class (`SmallCNN` / `resnet32`), on-device `RandomCropFlip(padding="
            f"{IMAGE_CROP_PADDING}, horizontal_flip=False)` per batch, "
            f"per-channel standardization, SGD (lr {IMAGE_LR}, momentum "
            f"{MOMENTUM}, weight decay {WEIGHT_DECAY}), cosine learning rate per "
            f"epoch without warm-up, batch {BATCH_SIZE}, cross-entropy, NCHW "
            "float32 (`channels_last=False`, `mixed_precision=False`); every "
            "training parameter of the estimator is set explicitly. Median of "
            f"{repeats} interleaved repeats (order rotated) after a warm-up fit "
            f"each. {sizes}.",
            "",
            image_head_to_head_table(image),
        ]
    )


def gpu_text(gpu, env):
    parts = ["### GPU (device='cuda')", ""]
    if not gpu["measured"]:
        reason = gpu["reason"]
        if reason.startswith("failed"):
            parts.append(f"not measured: the GPU run {reason}")
        else:
            parts.append(f"not measured: no GPU ({reason}).")
        return "\n".join(parts)
    if gpu["same_as_main"]:
        parts.append(
            f"Every section above ran on device='cuda' ({env['gpu']}); see them."
        )
        return "\n".join(parts)
    tabular = gpu["tabular"]
    parts += [
        f"GPU: {env['gpu']}.",
        "",
        f"#### Tabular head to head ({tabular['n_samples']:,} rows, "
        f"{tabular['epochs']} epochs, {tabular['steps']} steps; "
        "MLPClassifier runs on the CPU)",
        "",
        head_to_head_table(tabular),
        "",
        "#### Image head to head",
        "",
        image_head_to_head_text(gpu["image"]),
        "",
        "#### Image predict_proba against a hand float32 loop",
        "",
        image_predict_text(gpu["image_predict"]),
    ]
    return "\n".join(parts)


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
        "#### Fit memory against the data size (LongTailClassifier defaults, "
        "max_epochs=1, 64 float32 features, 10 classes)",
        "",
        "Increase = peak RSS during `fit` minus the RSS once the data is loaded "
        "(after a warm-up fit on 1,024 rows, so that lazy imports do not count); "
        f"data = the float32 X. Target: <= {FIT_MEMORY_TARGET:g}x the data.",
        "",
        fit_memory_table(scale["fit_memory"]),
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


def plot(h2h, scale, extra, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(16, 8))
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

    ax = axes[0, 2]
    parts = extra["image"]["architectures"]
    width = 0.8 / max(1, len(IMAGE_CONTENDERS))
    for k, name in enumerate(IMAGE_CONTENDERS):
        values = [
            next(r["us_per_step"] / 1e3 for r in p["results"] if r["contender"] == name)
            for p in parts
        ]
        label = "hand loop" if name == IMAGE_HAND_LOOP else name
        ax.bar([i + k * width for i in range(len(parts))], values, width, label=label)
    ax.set_xticks(
        [i + width / 2 for i in range(len(parts))],
        [f"{p['architecture']}\n{p['n_images']:,} x {p['epochs']} ep." for p in parts],
    )
    ax.set_ylabel("median ms per training step")
    ax.legend(fontsize=8)
    ax.set_title("image fit: estimator vs hand loop")

    ax = axes[1, 2]
    memory = ok(scale["fit_memory"])
    ax.semilogx(
        [r["n"] for r in memory], [r["increase_per_data"] for r in memory], "o-"
    )
    ax.axhline(FIT_MEMORY_TARGET, color="tab:red", ls="--", label="target")
    ax.set_xlabel("rows x 64 float32 features (1 epoch)")
    ax.set_ylabel("fit peak RSS increase / data size")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.set_title("LongTailClassifier: fit memory")
    for axis in axes.flat:
        axis.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out_dir, env, h2h, scale, extra):
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
        f"{h2h['load_average_per_repeat']}. The paired ratio is the median of "
        "each repeat's own ratio to the hand loop timed in that repeat; it "
        "cancels the drift of a shared machine's speed, which the ratio of "
        "medians keeps. The targets are read on the paired ratio.",
        "",
        head_to_head_table(h2h),
        "",
        like_for_like_text(h2h),
        "",
        "### Image head to head: LongTailImageClassifier against a hand-written loop",
        "",
        image_head_to_head_text(extra["image"]),
        "",
        "### Image predict_proba against a hand float32 loop (targets: <= "
        f"{PREDICT_TIME_TARGET:g}x the time, <= +{PREDICT_MEMORY_TARGET_MB / 1024:g}"
        " GiB peak memory)",
        "",
        image_predict_text(extra["image_predict"]),
        "",
        "### Scaling (each point in a fresh process; peak RSS is its own VmHWM)"
        if not env["quick"]
        else "### Scaling (--quick: all points share one process, so only the "
        "code paths are checked; peak RSS is the VmHWM reset before each point)",
        "",
        scaling_tables(scale),
        "",
        grid_search_text(extra["grid_search"]),
        "",
        gpu_text(extra["gpu"], env),
        "",
        "![speed plots](speed.png)",
        "",
    ]
    text = "\n".join(parts)
    plot(h2h, scale, extra, out_dir / "speed.png")
    (out_dir / "speed.md").write_text(text)
    write_json(
        out_dir / "speed.json",
        {
            "environment": env,
            "head_to_head": h2h,
            "image_head_to_head": extra["image"],
            "image_predict": extra["image_predict"],
            "scaling": scale,
            "grid_search": extra["grid_search"],
            "gpu": extra["gpu"],
        },
    )
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke test")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument(
        "--tabular-repeats",
        type=int,
        default=None,
        help="repeats of the tabular head-to-head (default --repeats): its "
        "differences of a few percent are below the fit-to-fit spread of a "
        "shared CPU (10-15%%), so its median needs more repeats",
    )
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
        args.tabular_repeats = None
        if args.threads is None:
            args.threads = 1
    if args.threads:
        torch.set_num_threads(args.threads)
    if args._point is not None:
        payload = json.loads(args._point)
        points = payload if isinstance(payload, list) else [payload]
        print(json.dumps(_run_points(points), default=str))
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
        log(f"{r['contender']}: {r['median_s']:.2f} s, paired {_paired_cell(r)}")
    extra = {"image": image_head_to_head(args, log)}
    for part in extra["image"]["architectures"]:
        for r in part["results"]:
            log(
                f"{part['architecture']} {r['contender']}: {r['median_s']:.2f} s, "
                f"{r['ratio_to_hand_loop']:.2f}x"
            )
    extra["image_predict"] = image_predict(args, log)
    scale = scaling(args, log)
    extra["grid_search"] = grid_search(args, log)
    extra["gpu"] = gpu_section(args, log)
    env["wall_time_s"] = round(time.perf_counter() - start, 1)
    env["load_average_end"] = load_average()
    text = write_report(out_dir, env, h2h, scale, extra)
    if not args.quick:
        update_docs({"speed": text})
    log(f"wrote {out_dir}/speed.{{md,json,png}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
