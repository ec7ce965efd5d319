"""The ``sklearn-lt demo`` command: four answers to a long tail, side by side.

:func:`run_demo` trains the same network four ways on a long-tailed data set
with a balanced test set, and reports balanced accuracy, accuracy on the head,
middle and tail classes, and fit time:

- ERM: plain cross-entropy, ``loss="ce"``;
- LDAM-DRW: ``loss="ldam", reweight_schedule="drw"`` (Cao et al., 2019);
- LA loss: the logit-adjusted loss, ``loss="logit_adjusted"`` (Menon et al., 2021);
- SMOTE + ERM: imbalanced-learn's SMOTE over-sampling in a pipeline before the
  cross-entropy network.

It also draws the accuracy of every class against its number of training
examples (:class:`~sklearn_lt.plotting.ClassAccuracyDisplay`) into a PNG file.
The command line is in :mod:`sklearn_lt.__main__`.
"""

import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["DATASETS", "METHODS", "run_demo"]

#: Data sets accepted by :func:`run_demo`.
DATASETS = ("digits", "fashion-mnist")

#: The compared methods, as (name, classifier parameters, SMOTE first?).
METHODS = (
    ("ERM", {"loss": "ce"}, False),
    ("LDAM-DRW", {"loss": "ldam", "reweight_schedule": "drw"}, False),
    ("LA loss", {"loss": "logit_adjusted"}, False),
    ("SMOTE + ERM", {"loss": "ce"}, True),
)

# Per data set: default imbalance ratio, network, epochs (full, quick).
_DEFAULTS = {
    "digits": {"imbalance_ratio": 50.0, "model": "cnn", "epochs": (30, 10)},
    "fashion-mnist": {"imbalance_ratio": 100.0, "model": "mlp", "epochs": (10, 3)},
}
_GROUPS_NOTE = (
    "head / middle / tail: thirds of the classes by training count "
    '(sklearn_lt.metrics.shot_accuracy, groups="quantile"); the usual '
    "many (>100) / medium / few (<20) thresholds would leave some groups "
    "(nearly) empty here"
)


def _load(dataset, imbalance_ratio, seed, data_home, quick):
    from .datasets import load_digits_lt, load_fashion_mnist_lt, make_long_tailed

    if dataset == "digits":
        data = load_digits_lt(imbalance_ratio=imbalance_ratio, random_state=seed)
        description = "digits-LT (scikit-learn's 8x8 digits)"
    else:
        data = load_fashion_mnist_lt(
            data_home, imbalance_ratio=imbalance_ratio, random_state=seed
        )
        description = "Fashion-MNIST-LT (28x28 images)"
        if quick:
            # A balanced subset of the 10,000 test images: 200 per class.
            data.X_test, data.y_test = make_long_tailed(
                data.X_test,
                data.y_test,
                imbalance_ratio=1,
                n_max=200,
                random_state=seed,
            )
    return data, description


def _classifier(model, image_shape, epochs, seed, device, params):
    from .classifiers import LongTailClassifier, LongTailImageClassifier

    common = {"max_epochs": epochs, "random_state": seed, "device": device}
    if model == "cnn":
        return LongTailImageClassifier(
            architecture="cnn",
            image_shape=image_shape,
            horizontal_flip=False,
            **common,
            **params,
        )
    return LongTailClassifier(**common, **params)


def _estimator(model, data, epochs, seed, device, params, smote):
    clf = _classifier(model, data.image_shape, epochs, seed, device, params)
    if not smote:
        return clf
    from imblearn.over_sampling import SMOTE
    from imblearn.pipeline import make_pipeline

    # SMOTE interpolates between a tail example and one of its k nearest
    # neighbours of the same class, so k must stay below the smallest count.
    k_neighbors = min(5, int(data.class_counts.min()) - 1)
    smote_step = SMOTE(k_neighbors=k_neighbors, random_state=seed)
    if model == "cnn":
        # Pixels share one scale; per-pixel scaling would distort the images.
        return make_pipeline(smote_step, clf)
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), smote_step, clf)


def _resolve_device(device):
    # The estimators' own rule, so the demo reports the device they will use.
    from ._device_data import resolve_device

    return resolve_device(device)


@contextlib.contextmanager
def _torch_threads(n_threads):
    import torch

    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _format_table(rows, group_names):
    header = ["method", "parameters", "balanced acc.", *group_names, "fit time"]
    lines = [
        [
            row["method"],
            row["parameters"],
            f"{row['balanced_accuracy']:.3f}",
            *(f"{row[name]:.3f}" for name in group_names),
            f"{row['fit_time']:.1f} s",
        ]
        for row in rows
    ]
    widths = [
        max(len(str(c)) for c in column) for column in zip(header, *lines, strict=True)
    ]

    def fmt(cells):
        left = [str(c).ljust(w) for c, w in zip(cells[:2], widths[:2], strict=True)]
        right = [str(c).rjust(w) for c, w in zip(cells[2:], widths[2:], strict=True)]
        return "  ".join(left + right).rstrip()

    rule = "-" * len(fmt(header))
    return "\n".join([fmt(header), rule, *(fmt(cells) for cells in lines)])


def _describe_groups(class_counts, group_names):
    from ._shot_groups import assign_groups

    group_of = assign_groups(class_counts, groups="quantile", many=100, few=20)
    parts = []
    for name in group_names:
        members = np.flatnonzero(group_of == name)
        counts = class_counts[members]
        parts.append(
            f"{name}: classes {', '.join(map(str, members))} "
            f"({counts.max()}-{counts.min()} training examples)"
        )
    return "; ".join(parts)


def _plot(path, results, data, title, say):
    """Write the per-class accuracy of every method to ``path``; False if skipped."""
    try:
        from matplotlib.figure import Figure

        from .plotting import ClassAccuracyDisplay
    except ImportError:
        say(
            "matplotlib is not installed: skipping the per-class accuracy plot "
            "(pip install matplotlib)."
        )
        return False
    fig = Figure(figsize=(9, 5.5), layout="constrained")
    ax = fig.subplots()
    for row in results:
        ClassAccuracyDisplay.from_predictions(
            data.y_test,
            row["y_pred"],
            y_train=data.y_train,
            groups="quantile",
            name=row["method"],
            ax=ax,
        )
    ax.set_xlabel("class, from head (most training examples) to tail")
    ax.set_title(title, fontsize="medium", pad=48)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return True


def _resolve_output(output, dataset):
    name = f"per_class_accuracy_{dataset.replace('-', '_')}.png"
    if output is None:
        return Path("sklearn_lt_demo") / name
    path = Path(os.fspath(output)).expanduser()
    if path.suffix.lower() == ".png":
        return path
    if path.suffix and not path.is_dir():
        raise ValueError(
            f"output must be a .png file or a directory; got {os.fspath(output)!r}."
        )
    return path / name


def run_demo(
    *,
    dataset="digits",
    imbalance_ratio=None,
    epochs=None,
    seed=0,
    device="auto",
    quick=False,
    model=None,
    output=None,
    plot=True,
    data_home=None,
    n_threads=1,
    verbose=True,
    file=None,
):
    """Compare ERM, LDAM-DRW, the logit-adjusted loss and SMOTE on a long tail.

    Each method trains the same network with the same seed on a long-tailed
    training split and is evaluated on a balanced test split. The classes are
    grouped into thirds by training count (head, middle, tail; see
    :func:`~sklearn_lt.metrics.shot_accuracy` with ``groups="quantile"``).

    Parameters
    ----------
    dataset : {"digits", "fashion-mnist"}, default="digits"
        ``"digits"``: :func:`~sklearn_lt.datasets.load_digits_lt` (bundled with
        scikit-learn). ``"fashion-mnist"``:
        :func:`~sklearn_lt.datasets.load_fashion_mnist_lt`, which needs the
        Fashion-MNIST files (see ``data_home``).
    imbalance_ratio : float, default=None
        Head-to-tail ratio of the training class sizes. None means 50 for digits
        (124 down to 2 training images) and 100 for Fashion-MNIST.
    epochs : int, default=None
        Training epochs of every method. None means 30 for digits and 10 for
        Fashion-MNIST (10 and 3 with ``quick``).
    seed : int, default=0
        Seeds the data split, the network initialization and SMOTE.
    device : str, default="auto"
        Training device: ``"auto"`` (CUDA when available), ``"cpu"``,
        ``"cuda"``, ``"cuda:1"``...
    quick : bool, default=False
        Fewer epochs (and, for Fashion-MNIST, 200 test images per class), for a
        smoke test.
    model : {"cnn", "mlp"}, default=None
        :class:`~sklearn_lt.LongTailImageClassifier` with
        ``architecture="cnn"``, or :class:`~sklearn_lt.LongTailClassifier`'s
        MLP on the flattened pixels. None means ``"cnn"`` for digits and
        ``"mlp"`` for Fashion-MNIST (a CNN on Fashion-MNIST takes minutes per
        epoch on a CPU; pass ``model="cnn"`` with a GPU).
    output : str or path-like, default=None
        Where to write the plot: a ``.png`` path, or a directory (created if
        needed) that receives ``per_class_accuracy_<dataset>.png``. None means
        the directory ``sklearn_lt_demo`` in the current directory.
    plot : bool, default=True
        Write the plot. Skipped, with a message, when matplotlib is missing.
    data_home : str or path-like, default=None
        Directory of the Fashion-MNIST files; see
        :func:`~sklearn_lt.datasets.load_fashion_mnist`.
    n_threads : int or None, default=1
        PyTorch CPU threads while training (restored afterwards). The networks
        are small, so one thread is as fast as several and does not slow down
        on a busy machine. None keeps PyTorch's setting.
    verbose : bool, default=True
        Print the progress, the table and where the plot went.
    file : file-like, default=None
        Where to print; None means ``sys.stdout``.

    Returns
    -------
    results : list of dict
        One dict per method, in the order ERM, LDAM-DRW, LA loss, SMOTE + ERM,
        with keys ``"method"``, ``"parameters"`` (the estimator settings, as
        text), ``"balanced_accuracy"``, ``"head"``, ``"middle"``, ``"tail"``
        (mean per-class accuracy of each group) and ``"fit_time"`` (seconds).

    Raises
    ------
    ValueError
        For an unknown data set or model, or an unavailable device.
    FileNotFoundError
        For ``dataset="fashion-mnist"`` when its files are missing; the
        message says how to install them.

    Examples
    --------
    >>> from sklearn_lt.demo import run_demo
    >>> results = run_demo(quick=True, epochs=1, plot=False, verbose=False)
    >>> [row["method"] for row in results]
    ['ERM', 'LDAM-DRW', 'LA loss', 'SMOTE + ERM']
    >>> sorted(results[0])
    ['balanced_accuracy', 'fit_time', 'head', 'method', 'middle', 'parameters', 'tail']
    """
    from sklearn.metrics import balanced_accuracy_score

    from .metrics import shot_accuracy

    if dataset not in DATASETS:
        raise ValueError(
            f"Unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}."
        )
    defaults = _DEFAULTS[dataset]
    model = defaults["model"] if model is None else model
    if model not in ("cnn", "mlp"):
        raise ValueError(f"model must be 'cnn' or 'mlp'; got {model!r}.")
    if imbalance_ratio is None:
        imbalance_ratio = defaults["imbalance_ratio"]
    if epochs is None:
        epochs = defaults["epochs"][1 if quick else 0]
    resolved_device = _resolve_device(device)
    path = _resolve_output(output, dataset) if plot else None
    out = sys.stdout if file is None else file

    def say(message=""):
        if verbose:
            print(message, file=out, flush=True)

    data, description = _load(dataset, imbalance_ratio, seed, data_home, quick)
    counts = data.class_counts
    if counts.min() < 2:
        raise ValueError(
            f"imbalance_ratio={imbalance_ratio:g} leaves a class with "
            f"{counts.min()} training example(s); SMOTE needs at least 2. Use a "
            f"smaller ratio (at most {counts.max() / 2:g})."
        )
    network = (
        "LongTailImageClassifier(architecture='cnn')"
        if model == "cnn"
        else "LongTailClassifier (MLP 256-256)"
    )
    say(f"sklearn_lt demo: {description}, imbalance ratio {imbalance_ratio:g}")
    say(
        f"  training: {counts.sum()} examples, per class {counts.tolist()}; "
        f"test: {len(data.y_test)} examples, balanced"
    )
    say(f"  network: {network}, {epochs} epochs, seed {seed}, device {resolved_device}")
    group_names = ("head", "middle", "tail")
    say(f"  groups: {_describe_groups(counts, group_names)}")
    say()

    results = []
    with _torch_threads(n_threads if resolved_device.type == "cpu" else None):
        for name, params, smote in METHODS:
            estimator = _estimator(
                model, data, epochs, seed, str(resolved_device), params, smote
            )
            start = time.perf_counter()
            estimator.fit(data.X_train, data.y_train)
            fit_time = time.perf_counter() - start
            y_pred = estimator.predict(data.X_test)
            scores = shot_accuracy(
                data.y_test, y_pred, y_train=data.y_train, groups="quantile"
            )
            settings = ", ".join(f"{k}={v!r}" for k, v in params.items())
            if smote:
                settings = (
                    f"SMOTE(k_neighbors={estimator[-2].k_neighbors}) + {settings}"
                )
            row = {
                "method": name,
                "parameters": settings,
                "balanced_accuracy": balanced_accuracy_score(data.y_test, y_pred),
                **{group: scores[group] for group in group_names},
                "fit_time": fit_time,
                "y_pred": y_pred,
            }
            results.append(row)
            say(
                f"  fitted {name:<12} balanced accuracy "
                f"{row['balanced_accuracy']:.3f} in {fit_time:.1f} s"
            )
    say()
    say(_format_table(results, group_names))
    say(f"({_GROUPS_NOTE}.)")

    if path is not None:
        title = (
            f"{description}, imbalance ratio {imbalance_ratio:g}: per-class test "
            f"accuracy ({epochs} epochs, seed {seed})"
        )
        if _plot(path, results, data, title, say):
            say(f"Per-class accuracy plot written to {path}")
    return [{k: v for k, v in row.items() if k != "y_pred"} for row in results]
