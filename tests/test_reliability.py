"""Reliability on messy data and in long, automated runs (issue 8).

Nothing may crash obscurely, hang, silently produce NaN models, or change what
the caller owns (inputs, global random state). Each test names the guarantee it
checks and fails without it. Persistence and pickling are in
``tests/test_persistence.py``.
"""

import copy
import math
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback
from torch import nn

from sklearn_lt import LongTailClassifier, LongTailImageClassifier
from sklearn_lt._device_data import DeviceDataset, TensorBatchIterator
from sklearn_lt._training import NonFiniteLossError, TrainingInterruptedWarning
from sklearn_lt.losses import LOSSES, loss_parameters, make_loss
from sklearn_lt.modules import Standardized
from sklearn_lt.weights import effective_number_weights

KINDS = ["tabular", "image"]
SCHEDULES = [None, "reweight", "resample", "drw", "drs"]
COUNT_LOSSES = sorted(
    name for name in LOSSES if "class_counts" in loss_parameters(name)
)


def _make(kind, **params):
    """A small, fast estimator: an MLP, or the small CNN on 4x4 (or 8x8) images."""
    base = {"max_epochs": 2, "batch_size": 16, "random_state": 0, "device": "cpu"}
    base.update(params)
    if kind == "tabular":
        base.setdefault("hidden_layer_sizes", (8,))
        return LongTailClassifier(**base)
    base.setdefault("horizontal_flip", False)
    return LongTailImageClassifier(architecture="cnn", **base)


def _data(n_samples=60, n_features=16, n_classes=3, seed=0):
    """Shifted Gaussian blobs, balanced classes 0..n_classes-1, float64."""
    rng = np.random.RandomState(seed)
    y = np.arange(n_samples) % n_classes
    X = rng.normal(size=(n_samples, n_features)) + 1.5 * y[:, None]
    return X, y


def _all_finite(module):
    return all(torch.isfinite(t).all() for t in module.state_dict().values())


# =====================================================================================
# Bad-input battery, for both estimators
# =====================================================================================


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("case", "error", "pattern"),
    [
        ("nan_X", ValueError, "NaN"),
        ("inf_X", ValueError, "infinity"),
        ("nan_y", ValueError, "NaN"),
        ("empty_X", ValueError, r"0 sample\(s\)"),
        ("one_sample", ValueError, "at least 2 classes"),
        ("one_class", ValueError, "at least 2 classes"),
        ("string_objects", ValueError, "could not convert string to float"),
        ("complex", ValueError, "Complex data not supported"),
        ("multioutput_y", ValueError, "1d array"),
        ("continuous_y", ValueError, "continuous"),
        ("length_mismatch", ValueError, r"inconsistent numbers of samples.*60.*59"),
    ],
)
def test_bad_training_data_raises_a_clear_error(kind, case, error, pattern):
    X, y = _data()
    if case == "nan_X":
        X[3, 1] = np.nan
    elif case == "inf_X":
        X[0, 0] = np.inf
    elif case == "nan_y":
        y = y.astype(float)
        y[4] = np.nan
    elif case == "empty_X":
        X, y = X[:0], y[:0]
    elif case == "one_sample":
        X, y = X[:1], y[:1]
    elif case == "one_class":
        y = np.zeros_like(y)
    elif case == "string_objects":
        X = X.astype(object)
        X[2, 3] = "not a number"
    elif case == "complex":
        X = X.astype(complex)
    elif case == "multioutput_y":
        y = np.c_[y, y]
    elif case == "continuous_y":
        y = np.linspace(0.0, 1.0, y.size)
    elif case == "length_mismatch":
        y = y[:-1]
    with pytest.raises(error, match=pattern):
        _make(kind).fit(X, y)


@pytest.mark.parametrize("kind", KINDS)
def test_bad_prediction_data_raises_a_clear_error(kind):
    X, y = _data()
    clf = _make(kind)
    with pytest.raises(NotFittedError):
        clf.predict(X)
    clf.fit(X, y)
    with pytest.raises(ValueError, match=r"X has 5 features.*expecting 16 features"):
        clf.predict(X[:, :5])
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.predict_proba(X_nan)
    if kind == "image":  # LongTailClassifier accepts sparse X (test_sparse*)
        with pytest.raises(TypeError, match=r"[Ss]parse.*dense|toarray"):
            clf.predict(sp.csr_matrix(X))
    X_strings = X.astype(object)
    X_strings[0, 0] = "abc"
    with pytest.raises(ValueError, match="could not convert string to float"):
        clf.predict(X_strings)
    if kind == "image":
        with pytest.raises(ValueError, match="images of shape"):
            clf.predict(X.reshape(60, 1, 2, 8))


@pytest.mark.parametrize("kind", KINDS)
def test_a_class_with_a_single_example_fits_and_predicts(kind):
    X, y = _data()
    y[7] = 9  # class 9 has one example (taken from class 1)
    # With a validation split, the counts are those of the training rows; the
    # singleton stays in training.
    for params, counts in (
        ({}, [20, 19, 20, 1]),
        ({"validation_fraction": 0.25}, [15, 14, 15, 1]),
    ):
        clf = _make(kind, **params).fit(X, y)
        np.testing.assert_array_equal(clf.classes_, [0, 1, 2, 9])
        np.testing.assert_array_equal(clf.class_counts_, counts)
        proba = clf.predict_proba(X)
        assert np.isfinite(proba).all()
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        assert set(clf.predict(X)) <= {0, 1, 2, 9}


def _labels(kind):
    y = np.arange(60) % 3
    if kind == "str":
        return np.array(["cat", "dog", "emu"])[y]
    if kind == "bool":
        return y == 1
    if kind == "categorical":
        return pd.Series(pd.Categorical(np.array(["lo", "mid", "hi"])[y]))
    if kind == "negative_int":
        return y - 5
    return y * 2.0  # float labels (integral values; 0.5 would be continuous)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("labels", "dtype_kinds"),
    [
        ("str", "U"),
        ("bool", "b"),
        ("categorical", "OU"),
        ("negative_int", "i"),
        ("float", "f"),
    ],
)
def test_predict_returns_the_original_labels(kind, labels, dtype_kinds):
    X, _ = _data()
    y = _labels(labels)
    clf = _make(kind).fit(X, y)
    predicted = clf.predict(X)
    assert predicted.dtype.kind in dtype_kinds
    assert clf.classes_.dtype.kind in dtype_kinds
    assert set(np.unique(predicted)) <= set(np.unique(np.asarray(y)))
    np.testing.assert_array_equal(clf.classes_, np.unique(np.asarray(y)))
    assert 0.0 <= clf.score(X, y) <= 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_score_with_labels_unseen_in_fit_is_accuracy(kind):
    X, y = _data()
    clf = _make(kind).fit(X, y)
    predicted = clf.predict(X)
    # Unseen labels cannot be predicted: they count as errors, nothing breaks.
    y_unseen = np.where(y == 2, 42, y)
    assert clf.score(X, y_unseen) == pytest.approx(accuracy_score(y_unseen, predicted))
    assert clf.score(X, y + 100) == 0.0
    np.testing.assert_array_equal(clf.predict(X), predicted)


@pytest.mark.parametrize("kind", KINDS)
def test_numeric_object_arrays_work_like_floats(kind):
    X, y = _data()
    expected = _make(kind).fit(X, y).predict_proba(X)
    clf = _make(kind).fit(X.astype(object), y)
    np.testing.assert_array_equal(clf.predict_proba(X.astype(object)), expected)


def _layouts(X):
    wide = np.repeat(X, 2, axis=1)
    read_only = X.copy()
    read_only.setflags(write=False)
    read_only32 = X.astype(np.float32)
    read_only32.setflags(write=False)
    return {
        "strided": wide[:, ::2],
        "fortran": np.asfortranarray(X),
        "read_only": read_only,
        "read_only_float32": read_only32,
        "fortran_float32": np.asfortranarray(X.astype(np.float32)),
    }


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "layout",
    ["strided", "fortran", "read_only", "read_only_float32", "fortran_float32"],
)
def test_unusual_memory_layouts_work_and_are_not_modified(kind, layout):
    X, y = _data()
    expected = _make(kind).fit(X.astype(np.float32), y).predict_proba(X)
    X_layout = _layouts(X)[layout]
    before = X_layout.copy()
    with warnings.catch_warnings():
        # torch warns (once per process) when it wraps a read-only array; that
        # warning is checked in a fresh interpreter below.
        warnings.filterwarnings("ignore", message="The given NumPy array is not")
        clf = _make(kind).fit(X_layout, y)
        proba = clf.predict_proba(X_layout)
    np.testing.assert_array_equal(X_layout, before)
    np.testing.assert_allclose(proba, expected, rtol=1e-6, atol=1e-9)


def test_read_only_float32_input_gives_no_warning():
    """joblib hands read-only memmaps to GridSearchCV workers: no warning noise.

    torch warns only once per process about non-writable arrays, so this runs
    in a fresh interpreter with every warning turned into an error: prediction
    first, then fitting (once prediction is quiet, fitting is checked too).
    """
    script = textwrap.dedent(
        """
        import warnings
        import numpy as np
        from sklearn_lt import LongTailClassifier

        rng = np.random.RandomState(0)
        X = rng.normal(size=(40, 4)).astype(np.float32)
        y = np.arange(40) % 2
        read_only = X.copy()
        read_only.setflags(write=False)
        clf = LongTailClassifier(max_epochs=1, hidden_layer_sizes=(4,),
                                 random_state=0, device="cpu")
        clf.fit(X, y)
        warnings.simplefilter("error")
        for stage, call in [("predict_proba", lambda: clf.predict_proba(read_only)),
                            ("fit", lambda: clf.fit(read_only, y))]:
            try:
                call()
            except Warning as warning:
                raise SystemExit(f"{stage} on a read-only array: {warning!r}")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("magnitude", [1e30, -1e30])
def test_huge_values_give_finite_predictions(kind, magnitude):
    X, y = _data()
    params = {"standardize": True} if kind == "tabular" else {}
    clf = _make(kind, **params).fit(X * magnitude, y)
    proba = clf.predict_proba(X * magnitude)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # One column of huge values among ordinary ones.
    X_mixed = X.copy()
    X_mixed[:, 0] *= magnitude
    proba = _make(kind, **params).fit(X_mixed, y).predict_proba(X_mixed)
    assert np.isfinite(proba).all()


@pytest.mark.parametrize("kind", KINDS)
def test_a_thousand_classes_with_one_or_two_examples(kind):
    rng = np.random.RandomState(0)
    y = np.r_[np.repeat(np.arange(500), 2), np.arange(500, 1000)]  # x2 and x1
    X = rng.normal(size=(y.size, 16))
    clf = _make(kind, max_epochs=2, batch_size=128)
    with warnings.catch_warnings():
        # scikit-learn's own hint that so many classes may be a regression target.
        warnings.filterwarnings("ignore", message="The number of unique classes")
        clf.fit(X, y)
    assert clf.classes_.size == 1000
    predicted = clf.predict(X[:50])
    assert np.isin(predicted, np.arange(1000)).all()
    assert np.isfinite(clf.predict_proba(X[:50])).all()


# =====================================================================================
# Property-based: losses and weights never produce inf or NaN
# =====================================================================================


def _loss_value_and_gradient(name, logits, target, counts, **params):
    kwargs = {k: v for k, v in params.items() if k in loss_parameters(name)}
    needs_counts = "class_counts" in loss_parameters(name)
    loss = make_loss(name, counts if needs_counts else None, **kwargs).double()
    z = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    value = loss(z, torch.as_tensor(target, dtype=torch.int64))
    value.backward()
    return value, z.grad


@st.composite
def _loss_problems(draw, min_count=1):
    n_classes = draw(st.integers(2, 6))
    n_samples = draw(st.integers(1, 8))
    logit = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
    logits = np.array(
        draw(
            st.lists(
                st.lists(logit, min_size=n_classes, max_size=n_classes),
                min_size=n_samples,
                max_size=n_samples,
            )
        ),
        dtype=np.float64,
    )
    target = draw(
        st.lists(st.integers(0, n_classes - 1), min_size=n_samples, max_size=n_samples)
    )
    counts = draw(
        st.lists(
            st.integers(min_count, 10**6), min_size=n_classes, max_size=n_classes
        ).filter(lambda c: any(v > 0 for v in c))
    )
    gamma = draw(st.floats(0.0, 5.0))
    return logits, target, counts, gamma


@settings(deadline=None, max_examples=60)
@given(problem=_loss_problems())
def test_every_loss_is_finite_with_finite_gradients(problem):
    logits, target, counts, gamma = problem
    for name in LOSSES:
        value, grad = _loss_value_and_gradient(
            name, logits, target, counts, gamma=gamma
        )
        assert torch.isfinite(value), (name, value)
        assert torch.isfinite(grad).all(), (name, grad)


@settings(deadline=None, max_examples=40)
@given(problem=_loss_problems(min_count=0), beta=st.floats(0.0, 0.9999))
def test_losses_with_zero_counts_and_class_balanced_weights_are_finite(problem, beta):
    logits, target, counts, gamma = problem
    weight = torch.as_tensor(effective_number_weights(counts, beta))
    for name in LOSSES:
        value, grad = _loss_value_and_gradient(
            name, logits, target, counts, gamma=gamma, weight=weight
        )
        assert torch.isfinite(value), (name, counts, value)
        assert torch.isfinite(grad).all(), (name, counts, grad)


_beta = st.floats(0.0, 1.0, exclude_max=True)


def _check_weights(weights, n_classes):
    assert weights.shape == (n_classes,)
    assert np.isfinite(weights).all(), weights
    assert (weights >= 0).all(), weights
    assert weights.sum() == pytest.approx(n_classes, rel=1e-9)


@settings(deadline=None, max_examples=200)
@given(
    counts=st.lists(st.integers(0, 10**12), min_size=1, max_size=12).filter(any),
    beta=_beta,
)
def test_effective_number_weights_are_finite_and_sum_to_n_classes(counts, beta):
    _check_weights(effective_number_weights(counts, beta), len(counts))


@settings(deadline=None, max_examples=200)
@given(
    counts=st.lists(st.floats(0.0, 1e6), min_size=1, max_size=12).filter(any),
    beta=_beta,
)
@example(counts=[1e-320, 1.0, 0.0], beta=0.5)  # a tiny (subnormal) positive count
def test_effective_number_weights_of_fractional_counts(counts, beta):
    """Counts may be fractional (weighted counts), as check_class_counts documents."""
    _check_weights(effective_number_weights(counts, beta), len(counts))


# =====================================================================================
# Numerical safety
# =====================================================================================

_AUTOCAST_LOSSES = ["ldam", "vs", "logit_adjusted", "balanced_softmax", "focal"]


@pytest.mark.parametrize("name", _AUTOCAST_LOSSES)
@pytest.mark.parametrize("magnitude", [10.0, 1e4, 1e30])
def test_losses_are_finite_under_bfloat16_autocast(name, magnitude):
    generator = torch.Generator().manual_seed(0)
    counts = [1000, 100, 10, 1]
    loss = make_loss(name, counts if name in COUNT_LOSSES else None)
    head = nn.Linear(8, 4)
    inputs = torch.randn(32, 8, generator=generator) * magnitude
    target = torch.arange(32) % 4
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = head(inputs)
        assert logits.dtype == torch.bfloat16
        value = loss(logits, target)
    assert value.dtype == torch.float32
    assert torch.isfinite(value)
    value.backward()
    assert torch.isfinite(head.weight.grad).all()
    assert torch.isfinite(head.bias.grad).all()
    # bfloat16 logits handed over directly, with extreme values of both signs.
    direct = (torch.randn(32, 4, generator=generator) * magnitude).bfloat16()
    direct.requires_grad_(True)
    value = loss(direct, target)
    value.backward()
    assert torch.isfinite(value)
    assert torch.isfinite(direct.grad.float()).all()


@pytest.mark.parametrize("name", COUNT_LOSSES)
def test_zero_count_classes_in_a_fixed_class_list(name):
    counts = [0, 50, 0, 5, 0]
    loss = make_loss(name, counts)
    for buffer_name, buffer in loss.named_buffers():
        assert torch.isfinite(buffer).all(), buffer_name
    logits = torch.randn(10, 5, dtype=torch.float64) * 20
    logits.requires_grad_(True)
    target = torch.arange(10) % 5  # zero-count classes as targets too
    for weight in (None, torch.as_tensor(effective_number_weights(counts, 0.999))):
        criterion = make_loss(name, counts, weight=weight).double()
        for reduction in ("mean", "sum", "none"):
            criterion.reduction = reduction
            value = criterion(logits, target)
            assert torch.isfinite(value).all()
            (grad,) = torch.autograd.grad(value.sum(), logits)
            assert torch.isfinite(grad).all()
    # A batch made only of zero-weight examples has a finite (zero) mean loss.
    weighted = make_loss(name, counts, weight=effective_number_weights(counts, 0.9))
    only_empty = weighted(torch.randn(4, 5), torch.tensor([0, 2, 4, 0]))
    assert torch.isfinite(only_empty)


class _InfAfter(nn.Module):
    """A linear model whose training outputs become infinite after some batches."""

    def __init__(self, n_features, n_classes, after=6):
        super().__init__()
        self.head = nn.Linear(n_features, n_classes)
        self.after = after
        self.calls = 0

    def forward(self, X):
        out = self.head(X)
        if self.training:
            self.calls += 1
            if self.calls > self.after:
                out = out * math.inf
        return out


def test_non_finite_loss_names_the_epoch():
    X, y = _data(n_features=4)
    # 60 examples, batches of 16: 4 batches an epoch, batch 7 is in epoch 2.
    clf = LongTailClassifier(
        module=_InfAfter, batch_size=16, max_epochs=5, random_state=0, device="cpu"
    )
    with pytest.raises(NonFiniteLossError, match=r"became (nan|inf) in epoch 2\b"):
        clf.fit(X, y)


def test_exploding_learning_rate_raises_non_finite_loss_error():
    X, y = _data(n_features=4)
    clf = LongTailClassifier(
        loss="ce",
        lr=1e10,
        max_grad_norm=None,  # unbounded steps: this tests the detection
        standardize=False,
        warmup_epochs=0,
        max_epochs=4,
        hidden_layer_sizes=(8,),
        random_state=0,
        device="cpu",
    )
    with pytest.raises(NonFiniteLossError, match=r"in epoch \d+.*[Ll]ower the") as info:
        clf.fit(X * 1e20, y)
    assert isinstance(info.value, ValueError)  # GridSearchCV's error_score handles it


def test_divergence_in_the_last_update_is_not_a_silent_nan_model():
    """The loss of the last epoch was finite, but its last step broke the weights."""
    X, y = _data(n_features=4)
    clf = LongTailClassifier(
        loss="ce",
        lr=1e10,
        max_grad_norm=None,  # unbounded steps: this tests the detection
        standardize=False,
        warmup_epochs=0,
        lr_schedule="constant",
        max_epochs=1,
        batch_size=60,  # a single update
        hidden_layer_sizes=(8,),
        random_state=0,
        device="cpu",
    )
    # The epoch's loss was finite, so only the check of the weights catches it:
    # a clear error, and no fitted (NaN) model left behind.
    with pytest.raises(
        NonFiniteLossError, match=r"weights became non-finite in epoch 1\b"
    ):
        clf.fit(X * 1e30, y)
    assert not hasattr(clf, "net_")
    with pytest.raises(NotFittedError):
        clf.predict_proba(X * 1e30)


class _Steep(nn.Module):
    """A linear model with outputs scaled up 10^4: huge gradients from the start."""

    def __init__(self, n_features, n_classes):
        super().__init__()
        self.head = nn.Linear(n_features, n_classes)
        self.initial = [p.detach().clone() for p in self.parameters()]

    def forward(self, X):
        return 1e4 * self.head(X)


def _one_plain_step(**params):
    """The size of the single SGD update (no momentum, decay or warm-up)."""
    X, y = _data(n_features=4)
    clf = LongTailClassifier(
        module=_Steep,
        loss="ce",
        batch_size=60,  # one step
        max_epochs=1,
        lr=0.1,
        lr_schedule="constant",
        warmup_epochs=0,
        momentum=0.0,
        weight_decay=0.0,
        random_state=0,
        device="cpu",
        **params,
    ).fit(X, y)
    network = clf.net_.module_.network
    return math.sqrt(
        sum(
            float(((p.detach() - p0) ** 2).sum())
            for p, p0 in zip(network.parameters(), network.initial, strict=True)
        )
    )


def test_max_grad_norm_bounds_each_update():
    # The update is lr times the gradient: at most lr * max_grad_norm with the
    # bound, and far larger without it.
    assert _one_plain_step(max_grad_norm=1.0) == pytest.approx(0.1, rel=1e-3)
    assert _one_plain_step() == pytest.approx(0.1 * 10.0, rel=1e-3)  # the default
    assert _one_plain_step(max_grad_norm=None) > 100


def test_warm_start_uses_the_current_max_grad_norm():
    X, y = _data(n_features=4)
    clf = LongTailClassifier(warm_start=True, max_epochs=1, random_state=0)
    clf.fit(X, y)
    clf.set_params(max_grad_norm=None).fit(X, y)
    assert dict(clf.net_.callbacks_)["gradient_clipping"].max_norm is None


@pytest.mark.parametrize("warm", [False, True])
def test_a_failed_fit_leaves_no_nan_model_behind(warm):
    """After NonFiniteLossError, predict must not silently return NaN."""
    X, y = _data(n_features=4)
    clf = LongTailClassifier(
        module=_InfAfter,
        module_params={"after": 10**9 if warm else 6},
        batch_size=16,
        max_epochs=2,
        warm_start=warm,
        random_state=0,
        device="cpu",
    )
    if warm:
        clf.fit(X, y)
        before = clf.predict_proba(X)
        clf.net_.module_.network.after = 0  # the next fit diverges
    with pytest.raises(NonFiniteLossError):
        clf.fit(X, y)
    if not warm:
        # A failed cold fit leaves the estimator unfitted.
        assert not hasattr(clf, "net_")
        with pytest.raises(NotFittedError):
            clf.predict_proba(X)
        return
    # A failed warm fit returns to the model it started from.
    assert len(clf.history_) == 2
    assert _all_finite(clf.net_.module_)
    np.testing.assert_array_equal(clf.predict_proba(X), before)


@pytest.mark.parametrize(
    "params",
    [
        {"loss": "logit_adjusted"},
        {"loss": "ldam", "reweight_schedule": "drw", "deferral_start": 0.5},
        {"loss": "balanced_softmax"},
        {"loss": "vs"},
        {"loss": "focal", "reweight_schedule": "reweight"},
        {"loss": "sigmoid_focal", "reweight_schedule": "reweight"},
        {"loss": "ce", "reweight_schedule": "resample"},
    ],
)
def test_a_class_with_zero_sample_weight_gives_finite_predictions(params):
    X, y = _data(n_features=4)
    sample_weight = np.where(y == 2, 0.0, 1.0)
    clf = _make("tabular", max_epochs=3, **params)
    clf.fit(X, y, sample_weight=sample_weight)
    assert _all_finite(clf.net_.module_)
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.isfinite(clf.history_[:, "train_loss"]).all()


def test_all_zero_sample_weights_do_not_give_nan():
    X, y = _data(n_features=4)
    clf = _make("tabular")
    # Rejected with a clear error before training (scikit-learn's sample_weight
    # validation, from scikit-learn 1.9 on).
    with pytest.raises(ValueError, match="at least one non-zero"):
        clf.fit(X, y, sample_weight=np.zeros(60))
    assert not hasattr(clf, "net_")


# =====================================================================================
# Determinism
# =====================================================================================


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_same_random_state_gives_bitwise_identical_probabilities(kind, schedule):
    X, y = _data(n_samples=40, n_features=64)  # 8x8 images: augmentation is on
    params = {
        "max_epochs": 3,
        "reweight_schedule": schedule,
        "deferral_start": 0.5,
        "random_state": 7,
    }
    if kind == "image":
        params.update(augment=True, horizontal_flip=True)
    first = _make(kind, **params).fit(X, y).predict_proba(X)
    second = _make(kind, **params).fit(X, y).predict_proba(X)
    assert np.array_equal(first, second)
    other = _make(kind, **{**params, "random_state": 8}).fit(X, y).predict_proba(X)
    assert not np.array_equal(first, other)


def test_grid_search_results_do_not_depend_on_n_jobs():
    X, y = _data(n_samples=80, n_features=6)
    grid = {"loss": ["ce", "ldam"], "lr": [0.05, 0.2]}

    def search(n_jobs):
        estimator = _make("tabular", max_epochs=3)
        return GridSearchCV(estimator, grid, cv=2, n_jobs=n_jobs).fit(X, y)

    serial, parallel = search(1), search(2)
    # The serial fits run in this process, with one torch thread (conftest.py);
    # the loky workers are other processes, whose float32 kernels may block
    # and reduce differently (thread count, instruction set dispatch). Their
    # weights then agree to round-off rather than bit for bit, and a test
    # example lying on a decision boundary could flip. Allow at most one
    # flipped prediction per test fold: an accuracy difference of at most
    # 1 / fold size in each split. Seeding that depended on the process would
    # change the models, and many predictions, not one.
    fold_size = X.shape[0] // 2
    for k in range(2):
        np.testing.assert_allclose(
            serial.cv_results_[f"split{k}_test_score"],
            parallel.cv_results_[f"split{k}_test_score"],
            rtol=0,
            atol=1 / fold_size + 1e-12,
        )
    assert serial.best_params_ == parallel.best_params_
    # Both searches refit the best candidate here, in this process: same model.
    np.testing.assert_array_equal(
        serial.best_estimator_.predict_proba(X),
        parallel.best_estimator_.predict_proba(X),
    )


def _np_states_equal(a, b):
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("random_state", [None, 0])
def test_fit_and_predict_leave_global_random_states_alone(kind, random_state):
    X, y = _data(n_samples=40, n_features=64)
    params = {
        "random_state": random_state,
        "reweight_schedule": "drs",
        "validation_fraction": 0.25,
    }
    if kind == "image":
        params.update(augment=True, horizontal_flip=True)
    np.random.seed(1234)  # noqa: NPY002 (the global state is under test)
    torch.manual_seed(1234)
    numpy_state = np.random.get_state()  # noqa: NPY002
    torch_state = torch.get_rng_state()
    clf = _make(kind, **params).fit(X, y)
    clf.predict_proba(X)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert _np_states_equal(np.random.get_state(), numpy_state)  # noqa: NPY002


# =====================================================================================
# Resume: warm start and interrupted fits
# =====================================================================================


def test_warm_start_continues_with_the_same_optimizer():
    X, y = _data(n_features=4)
    clf = _make("tabular", max_epochs=3, warm_start=True).fit(X, y)
    net, optimizer = clf.net_, clf.net_.optimizer_
    momentum = {
        id(p): optimizer.state[p]["momentum_buffer"].clone()
        for group in optimizer.param_groups
        for p in group["params"]
    }
    clf.fit(X, y)
    assert clf.net_ is net
    assert clf.net_.optimizer_ is optimizer
    assert len(clf.history_) == 6
    assert clf.history_[:, "epoch"] == [1, 2, 3, 4, 5, 6]
    # The momentum buffers were updated. (That they carried on rather than
    # restarting from zero is checked exactly in test_classifiers.py,
    # test_warm_start_continues_the_optimizer_momentum.)
    for group in optimizer.param_groups:
        for p in group["params"]:
            assert not torch.equal(
                optimizer.state[p]["momentum_buffer"], momentum[id(p)]
            )


class _Interrupt(Callback):
    """Raise KeyboardInterrupt in a training batch of a given (1-based) epoch.

    Keeps a copy of the network's weights at the start of training and at the
    end of every completed epoch, keyed by the number of completed epochs.
    """

    def __init__(self, epoch, batch=2):
        self.epoch = epoch
        self.batch = batch

    def initialize(self):
        self.states_ = {}
        self.batches_ = 0
        return self

    def _remember(self, net):
        self.states_[len(net.history)] = copy.deepcopy(net.module_.state_dict())

    def on_train_begin(self, net, **kwargs):
        self._remember(net)

    def on_epoch_begin(self, net, **kwargs):
        self.batches_ = 0

    def on_batch_end(self, net, training=False, **kwargs):
        if not training:
            return
        self.batches_ += 1
        if len(net.history) == self.epoch and self.batches_ == self.batch:
            raise KeyboardInterrupt

    def on_epoch_end(self, net, **kwargs):
        self._remember(net)


def _with_interrupt(clf, monkeypatch, callback):
    build = clf._callbacks
    monkeypatch.setattr(
        clf, "_callbacks", lambda *args: [*build(*args), ("interrupt", callback)]
    )
    return clf


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("interrupt_epoch", [1, 3])
def test_interrupted_fit_keeps_the_last_completed_epoch(
    kind, interrupt_epoch, monkeypatch
):
    X, y = _data()
    callback = _Interrupt(interrupt_epoch)
    clf = _with_interrupt(_make(kind, max_epochs=5), monkeypatch, callback)
    with pytest.warns(TrainingInterruptedWarning, match="interrupted"):
        returned = clf.fit(X, y)
    assert returned is clf
    completed = interrupt_epoch - 1
    assert len(clf.history_) == completed
    assert [row["epoch"] for row in clf.history_] == list(range(1, completed + 1))
    expected = callback.states_[completed]
    state = clf.net_.module_.state_dict()
    assert state.keys() == expected.keys()
    for name, tensor in state.items():
        assert torch.equal(tensor, expected[name]), name
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    assert clf.predict(X).shape == (60,)


def test_interrupted_warm_start_keeps_the_last_completed_epoch(monkeypatch):
    X, y = _data(n_features=4)
    callback = _Interrupt(epoch=5)
    clf = _with_interrupt(
        _make("tabular", max_epochs=3, warm_start=True), monkeypatch, callback
    )
    clf.fit(X, y)  # epochs 1-3
    with pytest.warns(TrainingInterruptedWarning):
        clf.fit(X, y)  # epoch 4 completes, epoch 5 is interrupted
    assert clf.history_[:, "epoch"] == [1, 2, 3, 4]
    expected = callback.states_[4]
    for name, tensor in clf.net_.module_.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    # The next fit continues from there.
    callback.epoch = None
    clf.fit(X, y)
    assert clf.history_[:, "epoch"] == [1, 2, 3, 4, 5, 6, 7]


def test_interrupting_the_first_stage_skips_the_second(monkeypatch):
    # A user's interrupt ends fit: no second stage on a half-trained network,
    # and a warm fit does not keep the head fitted to the old features.
    X, y = _data(n_features=4)
    clf = _make("tabular", max_epochs=3, classifier_retraining="crt", warm_start=True)
    clf.fit(X, y)
    assert hasattr(clf, "retrained_head_")
    clf.net_.callbacks_.append(("interrupt", _Interrupt(epoch=5).initialize()))
    retrain = pytest.fail  # the second stage must not run
    monkeypatch.setattr("sklearn_lt.classifiers._base.retrain_classifier", retrain)
    with pytest.warns(TrainingInterruptedWarning, match="second stage.*not run"):
        clf.fit(X, y)
    assert clf.history_[:, "epoch"] == [1, 2, 3, 4]
    assert not hasattr(clf, "retrained_head_")
    assert not hasattr(clf, "retraining_history_")
    assert np.isfinite(clf.predict_proba(X)).all()


def test_interrupting_the_second_stage_keeps_the_first(monkeypatch):
    X, y = _data(n_features=4)
    clf = _make("tabular", max_epochs=2, classifier_retraining="lws", warm_start=True)
    clf.fit(X, y)
    before = clf.predict_proba(X)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("sklearn_lt.classifiers._retraining._train_head", interrupted)
    with pytest.warns(TrainingInterruptedWarning, match="second stage"):
        returned = clf.fit(X, y)
    assert returned is clf and len(clf.history_) == 4
    assert not hasattr(clf, "retrained_head_")
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all() and not np.allclose(proba, before)


@pytest.mark.parametrize("interrupt_epoch", [1, 3])
def test_interrupted_fit_with_early_stopping(interrupt_epoch, monkeypatch):
    """With a validation set (and EarlyStopping's best-weights restore) too."""
    X, y = _data(n_features=4)
    callback = _Interrupt(interrupt_epoch)
    clf = _with_interrupt(
        _make("tabular", max_epochs=5, validation_fraction=0.25), monkeypatch, callback
    )
    with pytest.warns(TrainingInterruptedWarning):
        clf.fit(X, y)
    assert len(clf.history_) == interrupt_epoch - 1
    assert np.isfinite(clf.predict_proba(X)).all()


def test_early_stopping_is_not_an_interruption():
    rng = np.random.RandomState(0)
    y = np.repeat([0, 1, 2], 20)
    X = 8.0 * np.eye(3)[y] + 0.3 * rng.normal(size=(60, 3))  # separable
    clf = _make("tabular", max_epochs=50, validation_fraction=0.2, n_iter_no_change=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(X, y)
    interrupted = [
        w for w in caught if issubclass(w.category, TrainingInterruptedWarning)
    ]
    assert interrupted == []
    assert len(clf.history_) < 50  # it did stop early


# =====================================================================================
# Memory: one copy of the training data, batched prediction
# =====================================================================================


def test_train_and_validation_sets_share_one_copy_of_X(monkeypatch):
    datasets, iterated = [], []
    dataset_init = DeviceDataset.__init__
    iterator_init = TensorBatchIterator.__init__

    def spy_dataset(self, *args, **kwargs):
        dataset_init(self, *args, **kwargs)
        datasets.append(self)

    def spy_iterator(self, dataset, *args, **kwargs):
        iterator_init(self, dataset, *args, **kwargs)
        iterated.append(dataset)

    monkeypatch.setattr(DeviceDataset, "__init__", spy_dataset)
    monkeypatch.setattr(TensorBatchIterator, "__init__", spy_iterator)
    X, y = _data(n_samples=200, n_features=8)
    clf = _make("tabular", validation_fraction=0.2, max_epochs=2)
    clf.fit(X, y)

    used = list({id(d): d for d in iterated}.values())
    assert len(used) == 2, "expected one training and one validation dataset"
    pointers = {d.X.untyped_storage().data_ptr() for d in [*datasets, *used]}
    assert len(pointers) == 1, "train and validation data hold separate copies of X"
    storage = datasets[0].X.untyped_storage()
    assert storage.nbytes() == X.size * 4  # one float32 copy, not a concatenation
    # The two sets are disjoint views that together cover every row once.
    rows = torch.cat([d.rows for d in used]).sort().values
    assert torch.equal(rows.cpu(), torch.arange(200))


@pytest.mark.parametrize(
    ("kind", "n_rows"),
    [("tabular", 20000), ("image", 3000), ("tabular", 5)],
)
def test_prediction_runs_in_batches(kind, n_rows, monkeypatch):
    X, y = _data(n_features=16)
    clf = _make(kind).fit(X, y)
    seen = []
    forward = Standardized.forward

    def spy(self, inputs):
        if not self.training:
            seen.append(inputs.shape[0])
        return forward(self, inputs)

    monkeypatch.setattr(Standardized, "forward", spy)
    X_large = np.random.RandomState(1).normal(size=(n_rows, 16))
    proba = clf.predict_proba(X_large)
    assert proba.shape == (n_rows, 3)
    # Every batch has the same shape (the last one padded): bounded memory, and
    # a row's output does not depend on the rows predicted with it.
    limit = clf._prediction_batch_rows()
    assert set(seen) == {limit}
    assert len(seen) == math.ceil(n_rows / limit)
    np.testing.assert_array_equal(clf.predict_proba(X_large[-3:]), proba[-3:])
