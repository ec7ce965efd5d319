"""Tests of sklearn_lt.classifiers.LongTailClassifier."""

import copy
import pickle
import warnings

import accelerate
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import make_pipeline
from scipy.special import log_softmax, softmax
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from torch import nn

from sklearn_lt import LongTailClassifier, effective_number_weights
from sklearn_lt._device_data import ClassWeightedSampler, stratified_holdout
from sklearn_lt._training import LongTailNet, NonFiniteLossError
from sklearn_lt.classifiers import _tabular
from sklearn_lt.losses import LOSSES, CrossEntropyLoss, LDAMLoss, make_loss
from sklearn_lt.losses._base import _ClassificationLoss
from sklearn_lt.modules import NormedLinear
from sklearn_lt.schedules import Rebalancing

SCHEDULES = [None, "reweight", "resample", "drw", "drs"]

# A few epochs of a small network: enough to exercise the code paths.
FAST = {
    "max_epochs": 3,
    "hidden_layer_sizes": (8,),
    "batch_size": 16,
    "random_state": 0,
}
# Enough training at a constant rate to fit easy data (without dropout, so
# that the training loss measures the fit).
TRAINED = {
    "max_epochs": 15,
    "hidden_layer_sizes": (16,),
    "dropout": 0.0,
    "batch_size": 16,
    "lr": 0.1,
    "warmup_epochs": 0,
    "lr_schedule": "constant",
    "random_state": 0,
}


def _data(n_samples=60, n_classes=3, weights=None, class_sep=1.0, seed=0):
    return make_classification(
        n_samples=n_samples,
        n_features=4,
        n_informative=3,
        n_redundant=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        weights=weights,
        class_sep=class_sep,
        random_state=seed,
    )


def _separable(counts=(20, 20, 20), n_features=3, seed=0):
    """Well-separated Gaussian blobs, one per class (class k along axis k)."""
    rng = np.random.RandomState(seed)
    X = np.vstack(
        [
            8.0 * np.eye(len(counts), n_features)[k]
            + 0.5 * rng.normal(size=(n, n_features))
            for k, n in enumerate(counts)
        ]
    )
    return X, np.repeat(np.arange(len(counts)), counts)


def _imbalanced():
    return _data(n_samples=200, weights=[0.8, 0.15, 0.05])


def _fit_posthoc_model():
    X, y = _imbalanced()
    clf = LongTailClassifier(
        loss="ce", **{**TRAINED, "max_epochs": 20, "batch_size": 32}
    ).fit(X, y)
    return clf, X, y


def _hand_logits(clf, X, normalize_head=None):
    """Logits of ``clf.net_.module_`` computed outside the estimator (float64 out).

    The network runs in float32, as in the estimator, but on one batch of all
    rows rather than the estimator's fixed-shape batches: the kernels may
    differ, so comparisons with the estimator use a float32 tolerance (1e-6).
    """
    module = copy.deepcopy(clf.net_.module_).eval()
    if normalize_head is not None:
        head = module.network.head
        with torch.no_grad():
            head.weight /= head.weight.norm(dim=1, keepdim=True) ** normalize_head
            head.bias.zero_()  # the tau-normalized classifier has no bias
    inputs = torch.as_tensor(np.asarray(X, dtype=np.float32))
    with torch.no_grad():
        return module(inputs).double().numpy()


def _np_state_equal(a, b):
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]


# --- Custom modules and losses --------------------------------------------------------


class _TwoLayer(nn.Module):
    def __init__(self, n_features, n_classes, hidden=4):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_features, hidden), nn.Tanh())
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, X):
        return self.head(self.body(X))


# Full-batch SGD at a constant rate on a fixed network (no dropout, no batch
# statistics): training is a deterministic function of the data set, whatever the
# order of the examples, so different routes to the same gradients can be compared
# to float32 round-off. Every training parameter is set, none left to a default.
FULL_BATCH = {
    "loss": "ce",
    "module": _TwoLayer,
    "module_params": {"hidden": 8},
    "standardize": False,
    "optimizer": "sgd",
    "lr": 0.1,
    "momentum": 0.9,
    "weight_decay": 1e-3,
    "lr_schedule": "constant",
    "warmup_epochs": 0,
    "reweight_schedule": None,
    "validation_fraction": None,
    "batch_size": 1000,
    "random_state": 0,
    "device": "cpu",
}


class _Headless(nn.Module):
    def __init__(self, n_features, n_classes):
        super().__init__()
        self.linear = nn.Linear(n_features, n_classes)

    def forward(self, X):
        return self.linear(X)


class _NaNModule(_Headless):
    def forward(self, X):
        return self.linear(X) * float("nan")


def _not_a_module(n_features, n_classes):
    return "not a module"


class _CountAwareLoss(nn.Module):
    """A user loss taking class_counts (a logit-adjusted CE)."""

    def __init__(self, class_counts, weight=None):
        super().__init__()
        self.class_counts = np.array(class_counts)
        counts = torch.as_tensor(self.class_counts, dtype=torch.float32)
        self.register_buffer("log_prior", torch.log(counts / counts.sum()))
        self.register_buffer("weight", weight)

    def forward(self, logits, target, sample_weight=None):
        losses = F.cross_entropy(logits + self.log_prior, target, reduction="none")
        weights = (
            torch.ones_like(losses) if self.weight is None else self.weight[target]
        )
        if sample_weight is not None:
            weights = weights * sample_weight
        return (weights * losses).sum() / weights.sum()


class _NoSampleWeightLoss(nn.Module):
    def __init__(self, weight=None):
        super().__init__()
        self.register_buffer("weight", weight)

    def forward(self, logits, target):
        return F.cross_entropy(logits, target, weight=self.weight)


class _NoWeightLoss(nn.Module):
    def forward(self, logits, target, sample_weight=None):
        return F.cross_entropy(logits, target)


class _RecordingLoss(CrossEntropyLoss):
    """Cross-entropy that records which classes it saw in training and evaluation."""

    def __init__(self, weight=None, reduction="mean"):
        super().__init__(weight=weight, reduction=reduction)
        self.train_targets = set()
        self.valid_targets = set()

    def forward(self, logits, target, sample_weight=None):
        seen = self.train_targets if self.training else self.valid_targets
        seen.update(target.tolist())
        return super().forward(logits, target, sample_weight)


class _TemperedLoss(_ClassificationLoss):
    """A new loss in one class: tempered cross-entropy with its own head and link.

    It initializes the head's bias, freezes it through the bias's optimizer
    options, and predicts from the outputs divided by its temperature: the
    classifier learns all three from the loss alone.
    """

    def __init__(self, class_counts, temperature=2.0, weight=None, reduction="mean"):
        super().__init__(
            weight=weight, reduction=reduction, n_classes=len(class_counts)
        )
        self.temperature = temperature

    def _per_example(self, logits, target):
        return F.cross_entropy(logits / self.temperature, target, reduction="none")

    def prediction_log_scores(self, outputs):
        return outputs / self.temperature

    def initialize_head(self, head, n_classes):
        with torch.no_grad():
            head.bias.fill_(0.5)

    def head_bias_options(self):
        return {"lr": 0.0, "weight_decay": 0.0}


# --- fit / predict / attributes -------------------------------------------------------


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["zeta", "alpha", "mid"]),
        np.array([30, 10, 20]),
        np.array([-1, -7, 0]),
        np.array([-1, 2**40, 5], dtype=np.int64),
        np.array([True, False]),
        np.array(["yes", "no"], dtype=object),
    ],
    ids=["str", "int", "negative", "int64", "bool", "object"],
)
def test_predict_returns_original_labels(labels):
    X, y_index = _separable(counts=(20,) * labels.size)
    y = labels[y_index]
    clf = LongTailClassifier(loss="ce", **TRAINED).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, np.sort(labels))
    pred = clf.predict(X)
    assert pred.dtype == clf.classes_.dtype
    assert set(pred) <= set(labels)
    assert accuracy_score(y, pred) >= 0.95
    # Columns of predict_proba follow classes_.
    proba = clf.predict_proba(X)
    column = np.searchsorted(clf.classes_, y)
    assert np.mean(proba.argmax(axis=1) == column) >= 0.95
    np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])


def test_predict_proba_log_proba_and_score():
    X, y = _data(class_sep=0.5)
    clf = LongTailClassifier(**FAST).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float64 and proba.shape == (60, 3)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    log_proba = clf.predict_log_proba(X)
    assert log_proba.dtype == np.float64 and np.all(np.isfinite(log_proba))
    np.testing.assert_allclose(np.exp(log_proba), proba, rtol=1e-10, atol=1e-14)
    assert clf.score(X, y) == pytest.approx(accuracy_score(y, clf.predict(X)))


def test_log_proba_stays_finite_for_confident_predictions():
    X, y = _separable()
    clf = LongTailClassifier(loss="ce", **{**TRAINED, "max_epochs": 40}).fit(X, y)
    far = X * 20  # far beyond the training data: extremely confident logits
    log_proba = clf.predict_log_proba(far)
    assert np.all(np.isfinite(log_proba))
    assert np.all(log_proba <= 0)


def test_decision_function_binary():
    X, y = _data(n_classes=2, class_sep=0.5)
    clf = LongTailClassifier(**FAST).fit(X, y)
    scores = clf.decision_function(X)
    assert scores.shape == (60,)
    np.testing.assert_array_equal(
        clf.predict(X), clf.classes_[(scores > 0).astype(int)]
    )
    log_proba = clf.predict_log_proba(X)
    np.testing.assert_allclose(scores, log_proba[:, 1] - log_proba[:, 0], atol=1e-12)


@pytest.mark.parametrize("loss", ["ce", "sigmoid"])
def test_decision_function_multiclass(loss):
    X, y = _data(class_sep=0.5)
    clf = LongTailClassifier(loss=loss, posthoc_tau=0.5, **FAST).fit(X, y)
    scores = clf.decision_function(X)
    assert scores.shape == (60, 3)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[scores.argmax(axis=1)])


def test_fitted_attributes():
    X, y = _data(n_samples=50, weights=[0.6, 0.3, 0.1])
    clf = LongTailClassifier(**FAST)
    before = set(vars(clf))
    assert clf.fit(X, y) is clf
    assert all(name.endswith("_") for name in set(vars(clf)) - before)
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.n_features_in_ == 4
    assert not hasattr(clf, "feature_names_in_")
    np.testing.assert_array_equal(clf.class_counts_, np.bincount(y))
    assert clf.class_counts_.sum() == 50
    assert len(clf.history_) == FAST["max_epochs"]
    assert clf.history_[:, "epoch"] == [1, 2, 3]
    assert all(np.isfinite(clf.history_[:, "train_loss"]))
    assert len(clf.history_[:, "lr"]) == 3
    assert clf.history_ is clf.net_.history


def test_dataframe_input_sets_feature_names():
    X, y = _data()
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = LongTailClassifier(**FAST).fit(frame, pd.Series(y, name="target"))
    np.testing.assert_array_equal(clf.feature_names_in_, ["a", "b", "c", "d"])
    with pytest.warns(UserWarning, match="feature names"):
        from_array = clf.predict(X)
    np.testing.assert_array_equal(clf.predict(frame), from_array)
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(frame[["d", "c", "b", "a"]])


def _as_float64(X, y):
    return X.astype(np.float64), y


def _as_float32(X, y):
    return X.astype(np.float32), y


def _as_int(X, y):
    return X.astype(np.int64), y.astype(np.int32)


def _as_fortran(X, y):
    return np.asfortranarray(X.astype(np.float64)), y


def _as_lists(X, y):
    return X.tolist(), y.tolist()


def _as_pandas(X, y):
    return pd.DataFrame(X), pd.Series(y)


@pytest.mark.parametrize(
    "convert",
    [_as_float64, _as_float32, _as_int, _as_fortran, _as_lists, _as_pandas],
    ids=["float64", "float32", "int", "fortran", "lists", "pandas"],
)
def test_input_types_give_identical_models(convert):
    # Integer-valued data is represented exactly in every type, and every input
    # (Fortran-ordered, pandas, lists) is converted to the same C-contiguous
    # float32 array before it reaches the network: one code path, so the
    # comparison can be bit for bit on any CPU.
    X, y = _data(class_sep=0.5)
    X = np.round(3 * X)
    reference = LongTailClassifier(**FAST).fit(X.astype(np.float32), y)
    X_conv, y_conv = convert(X, y)
    clf = LongTailClassifier(**FAST).fit(X_conv, y_conv)
    np.testing.assert_array_equal(
        clf.predict_proba(X_conv), reference.predict_proba(X.astype(np.float32))
    )
    np.testing.assert_array_equal(clf.predict(X_conv), reference.predict(X))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_inputs_are_not_mutated(dtype):
    X, y = _data()
    X = X.astype(dtype)
    y = np.array(["a", "b", "c"])[y]
    sample_weight = np.linspace(0.1, 2.0, 60).astype(dtype)
    copies = X.copy(), y.copy(), sample_weight.copy()
    clf = LongTailClassifier(validation_fraction=0.2, **FAST)
    clf.fit(X, y, sample_weight=sample_weight)
    clf.predict_proba(X)
    for original, kept in zip((X, y, sample_weight), copies, strict=True):
        np.testing.assert_array_equal(original, kept)
        assert original.dtype == kept.dtype


def test_fitted_model_does_not_alias_the_training_array():
    X, y = _data()
    X = X.astype(np.float32)  # no conversion needed: the easiest array to alias
    clf = LongTailClassifier(**FAST).fit(X, y)
    X_test = X.copy()
    expected = clf.predict_proba(X_test)
    X[:] = 1e6
    np.testing.assert_array_equal(clf.predict_proba(X_test), expected)


def test_fit_does_not_modify_parameters():
    module_params = {"hidden": 8}
    clf = LongTailClassifier(
        module=_TwoLayer,
        module_params=module_params,
        loss="focal",
        reweight_schedule="drw",
        validation_fraction=0.2,
        **FAST,
    )
    before = clf.get_params(deep=False)
    snapshot = copy.deepcopy(before)
    clf.fit(*_data())
    after = clf.get_params(deep=False)
    assert after.keys() == before.keys()
    for name, value in before.items():
        assert after[name] is value, name
    assert clf.module_params is module_params
    assert module_params == {"hidden": 8}
    assert after == snapshot
    assert clf.net_.module_.network.body[0].out_features == 8


def test_fit_does_not_modify_list_hidden_layer_sizes():
    sizes = [8, 4]
    clf = LongTailClassifier(**{**FAST, "hidden_layer_sizes": sizes}).fit(*_data())
    assert clf.hidden_layer_sizes is sizes and sizes == [8, 4]
    body = clf.net_.module_.network.body
    assert [layer.out_features for layer in body if isinstance(layer, nn.Linear)] == [
        8,
        4,
    ]


# --- Losses x schedules ---------------------------------------------------------------


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_loss_and_schedule_fits(loss, schedule):
    X, y = _data(n_samples=40, weights=[0.6, 0.3, 0.1])
    clf = LongTailClassifier(loss=loss, reweight_schedule=schedule, **FAST).fit(X, y)
    assert isinstance(clf.net_.criterion_, LOSSES[loss])
    proba = clf.predict_proba(X)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(np.isfinite(clf.decision_function(X)))
    assert set(clf.predict(X)) <= set(clf.classes_)
    assert all(np.isfinite(clf.history_[:, "train_loss"]))
    # Only a schedule that re-weights the loss gives it a weight buffer; the
    # others train on its unweighted path.
    reweights = schedule in ("reweight", "drw")
    assert (getattr(clf.net_.criterion_, "weight", None) is not None) == reweights
    if schedule is None:
        assert "rebalancing" not in clf.history_[-1]
    else:
        # deferral_start=0.8 of 3 epochs switches at epoch index round(2.4) = 2.
        expected = [True] * 3 if schedule in ("reweight", "resample") else [0, 0, 1]
        assert clf.history_[:, "rebalancing"] == [bool(e) for e in expected]


@pytest.mark.parametrize(
    ("loss", "params"),
    [
        ("logit_adjusted", {"tau": 0.3}),
        ("vs", {"tau": 0.3, "gamma": 0.6}),
        ("ldam", {"max_margin": 0.2, "scale": 7.0}),
        ("focal", {"gamma": 2.5}),
        ("sigmoid_focal", {"gamma": 2.5}),
    ],
    ids=[
        "logit_adjusted-tau",
        "vs-tau-gamma",
        "ldam-margin-scale",
        "focal-gamma",
        "sigmoid_focal-gamma",
    ],
)
def test_loss_hyperparameters_reach_the_loss(loss, params):
    """The estimator's tau, scale, gamma and max_margin are the loss's, not defaults.

    Every value differs from the loss's own default, so a parameter that is not
    passed on leaves a different attribute and different count-derived buffers
    (VS's logit scale and offset, LDAM's margins).
    """
    X, y = _data(n_samples=40, weights=[0.6, 0.3, 0.1])
    clf = LongTailClassifier(
        loss=loss,
        max_epochs=1,
        lr=1e-3,
        lr_schedule="constant",
        warmup_epochs=0,
        hidden_layer_sizes=(4,),
        batch_size=16,
        random_state=0,
        device="cpu",
        **params,
    ).fit(X, y)
    criterion = clf.net_.criterion_
    for name, value in params.items():
        assert getattr(criterion, name) == value, name
    expected = make_loss(loss, clf.class_counts_, **params)
    expected_buffers = dict(expected.named_buffers())
    for name, buffer in criterion.named_buffers():
        if name != "weight":
            torch.testing.assert_close(buffer, expected_buffers[name], msg=name)


def test_ldam_gets_a_cosine_head():
    X, y = _data()
    ldam = LongTailClassifier(loss="ldam", **FAST).fit(X, y)
    assert isinstance(ldam.net_.module_.network.head, NormedLinear)
    logits = _hand_logits(ldam, X)
    assert np.all(np.abs(logits) <= 1 + 1e-9)
    ce = LongTailClassifier(loss="ce", **FAST).fit(X, y)
    assert type(ce.net_.module_.network.head) is nn.Linear


def test_ldam_predict_proba_uses_the_trained_scale():
    """LDAM trains softmax(scale * cosine); its probabilities must use the scale.

    On perfectly separated data, with a near-zero training loss, the model is
    confident; a softmax of raw cosine logits in [-1, 1] cannot be (its largest
    probability with 3 classes is e / (e + 2 / e) ~ 0.79).
    """
    X, y = _separable()
    clf = LongTailClassifier(loss="ldam", **TRAINED).fit(X, y)
    assert accuracy_score(y, clf.predict(X)) == 1.0
    assert clf.history_[-1, "train_loss"] < 0.05
    proba = clf.predict_proba(X)
    assert proba.max(axis=1).mean() > 0.9
    expected = softmax(clf.scale * _hand_logits(clf, X), axis=1)
    # float32 kernels of two batch shapes, amplified by the scale of 30.
    np.testing.assert_allclose(proba, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("n_classes", [2, 3, 5])
@pytest.mark.parametrize("loss", ["sigmoid", "sigmoid_focal"])
def test_sigmoid_losses_initialize_head_bias(loss, n_classes):
    X, y = _separable(counts=(6,) * n_classes, n_features=5)
    # One epoch at a negligible rate: the bias stays at its initial value.
    clf = LongTailClassifier(
        loss=loss, max_epochs=1, lr=1e-12, hidden_layer_sizes=(8,), random_state=0
    ).fit(X, y)
    bias = clf.net_.module_.network.head.bias.detach().numpy()
    np.testing.assert_allclose(bias, -np.log(n_classes - 1), atol=1e-6)


@pytest.mark.parametrize("loss", ["sigmoid", "sigmoid_focal"])
def test_sigmoid_head_bias_is_not_weight_decayed(loss):
    X, y = _data()
    clf = LongTailClassifier(loss=loss, weight_decay=0.01, **FAST).fit(X, y)
    head_bias = clf.net_.module_.network.head.bias
    groups = clf.net_.optimizer_.param_groups
    with_bias = [g for g in groups if any(p is head_bias for p in g["params"])]
    assert len(with_bias) == 1 and with_bias[0]["weight_decay"] == 0.0
    others = [g for g in groups if g is not with_bias[0]]
    assert others and all(g["weight_decay"] == 0.01 for g in others)
    n_params = sum(len(g["params"]) for g in groups)
    assert n_params == len(list(clf.net_.module_.parameters()))


def test_softmax_losses_weight_decay_everything():
    clf = LongTailClassifier(loss="ce", weight_decay=0.01, **FAST).fit(*_data())
    assert all(g["weight_decay"] == 0.01 for g in clf.net_.optimizer_.param_groups)


def test_sigmoid_loss_with_a_headless_module():
    X, y = _data()
    clf = LongTailClassifier(loss="sigmoid", module=_Headless, **FAST).fit(X, y)
    assert np.all(np.isfinite(clf.predict_proba(X)))


def test_a_new_loss_class_is_trained_through_its_own_link():
    X, y = _data()
    assert isinstance(make_loss(_TemperedLoss, [3, 2, 1]), _TemperedLoss)
    clf = LongTailClassifier(
        loss=_TemperedLoss, reweight_schedule="drw", weight_decay=0.01, **FAST
    ).fit(X, y)
    criterion = clf.net_.criterion_
    assert isinstance(criterion, _TemperedLoss) and criterion.temperature == 2.0
    # Its head initialization and bias options: the bias never moved.
    head_bias = clf.net_.module_.network.head.bias
    np.testing.assert_array_equal(head_bias.detach().numpy(), 0.5)
    groups = clf.net_.optimizer_.param_groups
    (bias_group,) = [g for g in groups if any(p is head_bias for p in g["params"])]
    assert bias_group["lr"] == 0.0 and bias_group["weight_decay"] == 0.0
    # Its link: probabilities are the softmax of the tempered outputs.
    expected = softmax(_hand_logits(clf, X) / 2.0, axis=1)
    np.testing.assert_allclose(clf.predict_proba(X), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(
        clf.predict(X), clf.classes_[np.argmax(expected, axis=1)]
    )


# --- Schedules ------------------------------------------------------------------------


@pytest.fixture
def rebalancing_spy(monkeypatch):
    """Record, at each epoch, the optimizer and the state Rebalancing set."""
    records = []
    original = Rebalancing.on_epoch_begin

    def spy(self, net, **kwargs):
        original(self, net, **kwargs)
        sampler_weights = self.sampler.class_weights if self.sampler else None
        records.append(
            {
                "optimizer": net.optimizer_,
                "criterion_weight": None
                if net.criterion_.weight is None
                else net.criterion_.weight.detach().clone(),
                "sampler_weights": None
                if sampler_weights is None
                else sampler_weights.clone(),
            }
        )

    monkeypatch.setattr(Rebalancing, "on_epoch_begin", spy)
    return records


def test_drw_switches_weights_in_place_and_keeps_the_optimizer(rebalancing_spy):
    X, y = _data(n_samples=48, weights=[0.6, 0.3, 0.1])
    clf = LongTailClassifier(
        loss="ldam",
        reweight_schedule="drw",
        deferral_start=0.5,
        beta=0.99,
        optimizer="adam",
        lr=0.01,
        max_epochs=4,
        batch_size=16,
        hidden_layer_sizes=(8,),
        random_state=0,
    ).fit(X, y)
    assert clf.history_[:, "rebalancing"] == [False, False, True, True]
    cb_weights = effective_number_weights(clf.class_counts_, 0.99)
    assert not np.allclose(cb_weights, 1.0)
    np.testing.assert_allclose(
        clf.net_.criterion_.weight.numpy(), cb_weights, rtol=1e-6
    )
    # The weights during each epoch, as set in place.
    assert len(rebalancing_spy) == 4
    for record, active in zip(rebalancing_spy, [0, 0, 1, 1], strict=True):
        expected = cb_weights if active else np.ones(3)
        np.testing.assert_allclose(record["criterion_weight"], expected, rtol=1e-6)
    # One optimizer for the whole fit: its state counts every step.
    assert all(r["optimizer"] is clf.net_.optimizer_ for r in rebalancing_spy)
    steps_per_epoch = 3
    for state in clf.net_.optimizer_.state.values():
        assert int(state["step"]) == 4 * steps_per_epoch


def test_drw_keeps_sgd_momentum(rebalancing_spy):
    X, y = _data(n_samples=48, weights=[0.6, 0.3, 0.1])
    clf = LongTailClassifier(
        loss="ce",
        reweight_schedule="drw",
        deferral_start=0.5,
        **{**FAST, "max_epochs": 4},
    ).fit(X, y)
    assert clf.history_[:, "rebalancing"] == [False, False, True, True]
    optimizer = clf.net_.optimizer_
    assert len(rebalancing_spy) == 4
    assert all(r["optimizer"] is optimizer for r in rebalancing_spy)
    params = list(clf.net_.module_.parameters())
    assert all("momentum_buffer" in optimizer.state[p] for p in params)


def test_reweight_is_active_from_the_first_epoch(rebalancing_spy):
    X, y = _data(weights=[0.6, 0.3, 0.1])
    clf = LongTailClassifier(
        loss="ce", reweight_schedule="reweight", beta=0.99, **FAST
    ).fit(X, y)
    assert clf.history_[:, "rebalancing"] == [True, True, True]
    cb_weights = effective_number_weights(clf.class_counts_, 0.99)
    for record in rebalancing_spy:
        np.testing.assert_allclose(record["criterion_weight"], cb_weights, rtol=1e-6)
    np.testing.assert_allclose(clf.net_.criterion_.weight, cb_weights, rtol=1e-6)


@pytest.mark.parametrize(
    ("schedule", "active"),
    [("resample", [True] * 4), ("drs", [False, False, True, True])],
)
def test_resampling_schedules_set_the_sampler(schedule, active, rebalancing_spy):
    X, y = _data(weights=[0.6, 0.3, 0.1])
    clf = LongTailClassifier(
        loss="ce",
        reweight_schedule=schedule,
        deferral_start=0.5,
        beta=0.99,
        max_epochs=4,
        hidden_layer_sizes=(8,),
        batch_size=16,
        random_state=0,
    ).fit(X, y)
    assert clf.history_[:, "rebalancing"] == active
    sampler = clf.net_.iterator_train__sampler
    assert isinstance(sampler, ClassWeightedSampler)
    cb_weights = effective_number_weights(clf.class_counts_, 0.99)
    np.testing.assert_allclose(sampler.class_weights.numpy(), cb_weights, rtol=1e-6)
    for record, on in zip(rebalancing_spy, active, strict=True):
        if on:
            np.testing.assert_allclose(record["sampler_weights"], cb_weights, rtol=1e-6)
        else:
            assert record["sampler_weights"] is None
        # Re-sampling leaves the loss unweighted: it has no class weights.
        assert record["criterion_weight"] is None


def test_no_schedule_leaves_sampler_and_loss_alone():
    clf = LongTailClassifier(loss="ce", **FAST).fit(*_data(weights=[0.6, 0.3, 0.1]))
    assert clf.net_.iterator_train__sampler.class_weights is None
    assert clf.net_.criterion_.weight is None
    assert "rebalancing" not in dict(clf.net_.callbacks_)


# --- Class counts per fit -------------------------------------------------------------


def test_cross_validation_counts_each_training_fold():
    X, y = _data(n_samples=61, weights=[0.6, 0.3, 0.1])
    result = cross_validate(
        LongTailClassifier(**FAST),
        X,
        y,
        cv=3,
        return_estimator=True,
        return_indices=True,
        error_score="raise",
    )
    counts = [est.class_counts_.tolist() for est in result["estimator"]]
    for est, train in zip(result["estimator"], result["indices"]["train"], strict=True):
        np.testing.assert_array_equal(est.class_counts_, np.bincount(y[train]))
        # The loss was built from this fold's counts too.
        prior = est.net_.criterion_.log_prior.numpy()
        np.testing.assert_allclose(
            prior, np.log(np.bincount(y[train]) / train.size), rtol=1e-5
        )
    assert len({tuple(c) for c in counts}) > 1  # folds really differ


def test_imblearn_pipeline_counts_after_smote():
    X, y = _data(n_samples=60, weights=[0.6, 0.3, 0.1])
    pipe = make_pipeline(
        StandardScaler(),
        SMOTE(k_neighbors=2, random_state=0),
        LongTailClassifier(loss="ldam", **FAST),
    ).fit(X, y)
    clf = pipe[-1]
    n_max = np.bincount(y).max()
    np.testing.assert_array_equal(clf.class_counts_, [n_max] * 3)
    assert not np.array_equal(clf.class_counts_, np.bincount(y))
    # Balanced counts give equal LDAM margins.
    np.testing.assert_allclose(clf.net_.criterion_.margins.numpy(), 0.5, rtol=1e-6)
    assert set(pipe.predict(X)) <= {0, 1, 2}


def test_grid_search_over_an_imblearn_pipeline_with_string_labels():
    X, y_index = _data(n_samples=90, weights=[0.6, 0.25, 0.15])
    names = np.array(["common", "medium", "rare"])
    y = names[y_index]
    pipe = make_pipeline(
        SMOTE(k_neighbors=2, random_state=0),
        LongTailClassifier(
            loss="ldam",
            reweight_schedule="drw",
            max_epochs=4,
            hidden_layer_sizes=(8,),
            random_state=0,
        ),
    )
    grid = GridSearchCV(
        pipe,
        {
            "longtailclassifier__beta": [0.9, 0.999],
            "longtailclassifier__max_margin": [0.3, 0.5],
        },
        scoring="balanced_accuracy",
        n_jobs=2,
        cv=2,
        error_score="raise",
    ).fit(X, y)
    scores = grid.cv_results_["mean_test_score"]
    assert len(scores) == 4 and np.all(np.isfinite(scores))
    pred = grid.best_estimator_.predict(X)
    assert pred.dtype.kind in "UO" and set(pred) <= set(names)
    best = grid.best_estimator_[-1]
    assert best.max_margin == grid.best_params_["longtailclassifier__max_margin"]
    assert best.net_.criterion_.max_margin == best.max_margin
    assert grid.score(X, y) == pytest.approx(balanced_accuracy_score(y, pred))


# --- clone, pickle, copy, determinism -------------------------------------------------


def test_clone():
    X, y = _data()
    clf = LongTailClassifier(loss="vs", module_params=None, **FAST).fit(X, y)
    cloned = clone(clf)
    assert not hasattr(cloned, "net_") and not hasattr(cloned, "classes_")
    assert cloned.get_params() == clf.get_params()
    np.testing.assert_array_equal(
        cloned.fit(X, y).predict_proba(X), clf.predict_proba(X)
    )


@pytest.mark.parametrize(
    "params",
    [
        {"loss": "ldam", "reweight_schedule": "drw"},
        {"loss": "sigmoid_focal", "reweight_schedule": "drs"},
        {"loss": "ce", "validation_fraction": 0.25, "progress_bar": False},
    ],
)
def test_pickle_round_trip(params):
    X, y = _data()
    clf = LongTailClassifier(**params, **FAST).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(restored.predict(X), clf.predict(X))
    np.testing.assert_array_equal(restored.class_counts_, clf.class_counts_)
    assert len(restored.history_) == len(clf.history_)
    assert restored.get_params() == clf.get_params()
    # Twice over: the restored model pickles too.
    again = pickle.loads(pickle.dumps(restored))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


def test_pickle_unfitted():
    clf = LongTailClassifier(loss="ldam", module=_TwoLayer, module_params={"hidden": 3})
    restored = pickle.loads(pickle.dumps(clf))
    assert restored.get_params()["module_params"] == {"hidden": 3}
    assert not hasattr(restored, "net_")


def test_deepcopy_is_independent():
    X, y = _data()
    clf = LongTailClassifier(**FAST).fit(X, y)
    copied = copy.deepcopy(clf)
    np.testing.assert_array_equal(copied.predict_proba(X), clf.predict_proba(X))
    assert copied.net_ is not clf.net_
    with torch.no_grad():
        copied.net_.module_.network.head.weight.mul_(-1.0)
    assert not np.array_equal(copied.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize(
    "params",
    [
        {"loss": "ce"},
        {"loss": "ldam", "reweight_schedule": "drs", "validation_fraction": 0.25},
    ],
)
def test_same_random_state_is_bitwise_reproducible(params):
    X, y = _data(weights=[0.6, 0.3, 0.1])
    first = LongTailClassifier(**params, **FAST).fit(X, y)
    second = LongTailClassifier(**params, **FAST).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    assert first.history_[:, "train_loss"] == second.history_[:, "train_loss"]
    # Refitting the same object reproduces it as well.
    proba = first.predict_proba(X)
    np.testing.assert_array_equal(first.fit(X, y).predict_proba(X), proba)
    other = LongTailClassifier(**params, **{**FAST, "random_state": 1}).fit(X, y)
    assert not np.array_equal(other.predict_proba(X), proba)


def test_random_state_none_draws_fresh_seeds():
    X, y = _data()
    params = {**FAST, "random_state": None}
    first = LongTailClassifier(**params).fit(X, y).predict_proba(X)
    second = LongTailClassifier(**params).fit(X, y).predict_proba(X)
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("random_state", [None, 0, "instance"])
@pytest.mark.parametrize(
    "params",
    [{}, {"reweight_schedule": "resample", "validation_fraction": 0.3}],
)
def test_global_random_states_are_untouched(random_state, params):
    if random_state == "instance":
        random_state = np.random.RandomState(0)
    X, y = _data()
    np.random.seed(123)  # noqa: NPY002 (the global state is under test)
    torch.manual_seed(123)
    torch_state = torch.get_rng_state()
    numpy_state = np.random.get_state()  # noqa: NPY002
    clf = LongTailClassifier(**params, **{**FAST, "random_state": random_state})
    clf.fit(X, y)
    clf.predict_proba(X)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert _np_state_equal(np.random.get_state(), numpy_state)  # noqa: NPY002


# --- Post-hoc adjustment and tau-normalization ----------------------------------------


def test_posthoc_tau_without_refitting():
    clf, X, _ = _fit_posthoc_model()
    net = clf.net_
    plain = clf.predict(X)
    clf.set_params(posthoc_tau=1.0)
    adjusted = clf.predict(X)
    assert clf.net_ is net
    assert np.any(adjusted != plain)
    log_prior = np.log(clf.class_counts_ / clf.class_counts_.sum())
    by_hand = log_softmax(_hand_logits(clf, X), axis=1) - 1.0 * log_prior
    np.testing.assert_array_equal(adjusted, clf.classes_[by_hand.argmax(axis=1)])
    np.testing.assert_allclose(
        clf.predict_proba(X), softmax(by_hand, axis=1), atol=1e-6
    )
    # The adjustment favors rare classes.
    rare = clf.class_counts_.argmin()
    assert np.sum(adjusted == rare) > np.sum(plain == rare)
    clf.set_params(posthoc_tau=0.0)
    np.testing.assert_array_equal(clf.predict(X), plain)


def test_tau_norm_matches_normalized_head():
    clf, X, _ = _fit_posthoc_model()
    weight_before = clf.net_.module_.network.head.weight.detach().clone()
    plain = clf.predict(X)
    clf.set_params(tau_norm=1.0)
    normalized = clf.predict(X)
    assert np.any(normalized != plain)
    by_hand = _hand_logits(clf, X, normalize_head=1.0)
    np.testing.assert_array_equal(normalized, clf.classes_[by_hand.argmax(axis=1)])
    np.testing.assert_allclose(
        clf.predict_proba(X), softmax(by_hand, axis=1), atol=1e-6
    )
    # Prediction-time only: the trained weights are unchanged.
    torch.testing.assert_close(
        clf.net_.module_.network.head.weight.detach(), weight_before, rtol=0, atol=0
    )
    clf.set_params(tau_norm=0.0)
    np.testing.assert_array_equal(clf.predict(X), plain)


@pytest.mark.parametrize(
    "params",
    [{"loss": "ldam"}, {"loss": "ce", "module": _Headless}],
    ids=["cosine-head", "no-head"],
)
def test_tau_norm_needs_a_linear_head(params):
    X, y = _data()
    with pytest.raises(ValueError, match="tau_norm"):
        LongTailClassifier(tau_norm=1.0, **params, **FAST).fit(X, y).predict(X)


# --- Learning-rate schedules ----------------------------------------------------------


def _lr_history(lr_schedule, max_epochs=20, warmup_epochs=2, lr=0.1):
    X, y = _data(n_samples=30)
    clf = LongTailClassifier(
        loss="ce",
        lr=lr,
        lr_schedule=lr_schedule,
        warmup_epochs=warmup_epochs,
        max_epochs=max_epochs,
        reweight_schedule=None,
        validation_fraction=None,
        optimizer="sgd",
        momentum=0.9,
        hidden_layer_sizes=(4,),
        batch_size=32,
        random_state=0,
        device="cpu",
    ).fit(X, y)
    # The rate used in each epoch (skorch records it before stepping).
    return np.asarray(clf.history_[:, "lr"])


def test_step_lr_schedule_decays_at_80_and_90_percent_of_training():
    lrs = _lr_history("step", max_epochs=20, warmup_epochs=2, lr=0.1)
    # Linear warm-up over 2 epochs, the full rate, then x0.01 from epoch 16 and
    # x0.0001 from epoch 18 (0-based): 80% and 90% of 20 epochs.
    expected = [0.05, 0.1] + [0.1] * 14 + [1e-3] * 2 + [1e-5] * 2
    np.testing.assert_allclose(lrs, expected, rtol=1e-9)


def test_cosine_lr_schedule_decays_from_the_full_rate_after_warm_up():
    lrs = _lr_history("cosine", max_epochs=20, warmup_epochs=2, lr=0.1)
    assert len(lrs) == 20
    np.testing.assert_allclose(lrs[:2], [0.05, 0.1], rtol=1e-9)
    # The first epoch after warm-up runs at the full rate, then the rate falls
    # in every epoch (not in steps), to under 1% of it in the last epoch.
    assert lrs[2] == pytest.approx(0.1, rel=1e-9)
    assert np.all(np.diff(lrs[2:]) < 0)
    assert 0 < lrs[-1] < 0.01 * 0.1


def test_constant_lr_schedule_keeps_the_rate_after_warm_up():
    lrs = _lr_history("constant", max_epochs=20, warmup_epochs=2, lr=0.1)
    np.testing.assert_allclose(lrs, [0.05] + [0.1] * 19, rtol=1e-9)


# --- Validation split and early stopping ----------------------------------------------


def test_validation_fraction_records_balanced_accuracy():
    X, y = _data(n_samples=60, weights=[0.6, 0.3, 0.1], class_sep=0.5)
    clf = LongTailClassifier(
        validation_fraction=0.3, n_iter_no_change=3, **{**FAST, "max_epochs": 8}
    ).fit(X, y)
    accuracies = clf.history_[:, "valid_balanced_accuracy"]
    assert len(accuracies) == len(clf.history_)
    assert all(0.0 <= a <= 1.0 for a in accuracies)
    assert all(np.isfinite(clf.history_[:, "valid_loss"]))
    assert clf.net_.train_split is None
    # The best epoch's weights are restored: recompute the validation split.
    seeds = check_random_state(0).randint(0, 2**31 - 1, size=3)
    _, valid = stratified_holdout(y, 0.3, np.random.RandomState(seeds[1]))
    score = balanced_accuracy_score(y[valid], clf.predict(X[valid]))
    assert score == pytest.approx(max(accuracies))


def test_single_example_class_stays_in_training():
    X, y = _data(n_samples=40, n_classes=2)
    X = np.vstack([X, np.full((1, 4), 3.0)])
    y = np.append(y, 2)
    clf = LongTailClassifier(loss=_RecordingLoss, validation_fraction=0.3, **FAST)
    clf.fit(X, y)
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.class_counts_.tolist()[2] == 1
    assert 2 in clf.net_.criterion_.train_targets
    assert 2 not in clf.net_.criterion_.valid_targets
    assert {0, 1} <= clf.net_.criterion_.valid_targets


def test_validation_fraction_needs_a_class_with_two_examples():
    X = np.array([[0.0, 1.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="validation_fraction"):
        LongTailClassifier(validation_fraction=0.5, **FAST).fit(X, [0, 1])


def test_early_stopping_stops_when_accuracy_plateaus():
    X, y = _separable()
    clf = LongTailClassifier(
        validation_fraction=0.25,
        n_iter_no_change=2,
        max_epochs=50,
        lr_schedule="constant",
        warmup_epochs=0,
        hidden_layer_sizes=(8,),
        batch_size=16,
        random_state=0,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(X, y)
    # Stopping early is the plan, not an interruption worth a warning.
    assert [str(w.message) for w in caught] == []
    accuracies = clf.history_[:, "valid_balanced_accuracy"]
    assert len(accuracies) < 50
    # Training stops once the best epoch is n_iter_no_change epochs old.
    best_epoch = int(np.argmax(accuracies)) + 1
    assert len(accuracies) == best_epoch + 2
    assert clf.net_.train_split is None


@pytest.fixture
def epoch_end_states(monkeypatch):
    """The network's weights at the end of every epoch, in order."""
    states = []
    original = LongTailNet.on_epoch_end

    def spy(self, net, **kwargs):
        original(self, net, **kwargs)
        states.append(copy.deepcopy(net.module_.state_dict()))

    monkeypatch.setattr(LongTailNet, "on_epoch_end", spy)
    return states


def _same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_early_stopping_restores_the_best_epoch(epoch_end_states):
    # A noisy problem at a high constant rate: the validation score peaks in
    # epoch 2 and is clearly lower in every later epoch. A constant rate and no
    # re-balancing leave no schedule phase that could delay early stopping.
    X, y = _data(n_samples=120, weights=[0.6, 0.3, 0.1], class_sep=0.8, seed=2)
    clf = LongTailClassifier(
        loss="ce",
        module=_TwoLayer,
        module_params={"hidden": 16},
        optimizer="sgd",
        lr=1.0,
        momentum=0.9,
        weight_decay=0.0,
        lr_schedule="constant",
        warmup_epochs=0,
        reweight_schedule=None,
        max_epochs=40,
        batch_size=16,
        validation_fraction=0.3,
        n_iter_no_change=5,
        random_state=0,
        device="cpu",
    ).fit(X, y)
    accuracies = np.asarray(clf.history_[:, "valid_balanced_accuracy"])
    best = int(np.argmax(accuracies))
    assert len(epoch_end_states) == len(accuracies)
    # The premise: an early best epoch, clearly better than the last ones.
    assert best < len(accuracies) - 1
    assert accuracies[best + 1 :].max() < accuracies[best] - 0.02
    assert not _same_state(epoch_end_states[best], epoch_end_states[-1])
    # The model keeps the best epoch's weights, not the last epoch's.
    restored = clf.net_.module_.state_dict()
    assert _same_state(restored, epoch_end_states[best])
    seeds = check_random_state(0).randint(0, 2**31 - 1, size=3)
    _, valid = stratified_holdout(y, 0.3, np.random.RandomState(seeds[1]))
    score = balanced_accuracy_score(y[valid], clf.predict(X[valid]))
    assert score == pytest.approx(accuracies[best])


def test_no_validation_data_is_kept_after_fit():
    X, y = _data()
    clf = LongTailClassifier(validation_fraction=0.3, **FAST).fit(X, y)
    assert clf.net_.train_split is None
    assert "valid_balanced_accuracy" in clf.history_[-1]


# --- Sample weights -------------------------------------------------------------------


def test_zero_weight_class_is_down_weighted():
    X, y = _data(class_sep=0.5)
    params = {**TRAINED, "max_epochs": 10}
    plain = LongTailClassifier(loss="ce", **params).fit(X, y)
    sample_weight = np.where(y == 2, 0.0, 1.0)
    weighted = LongTailClassifier(loss="ce", **params).fit(X, y, sample_weight)
    # Class sizes are weighted: class 2 weighs nothing.
    expected_counts = np.where(np.arange(3) == 2, 0, plain.class_counts_)
    np.testing.assert_array_equal(weighted.class_counts_, expected_counts)
    p_plain = plain.predict_proba(X)[:, 2].mean()
    p_weighted = weighted.predict_proba(X)[:, 2].mean()
    assert p_weighted < 0.5 * p_plain
    assert np.sum(weighted.predict(X) == 2) < np.sum(plain.predict(X) == 2)


def test_unit_sample_weights_change_nothing():
    X, y = _data()
    plain = LongTailClassifier(**FAST).fit(X, y)
    weighted = LongTailClassifier(**FAST).fit(X, y, sample_weight=np.ones(60))
    np.testing.assert_allclose(
        weighted.predict_proba(X), plain.predict_proba(X), rtol=0, atol=1e-6
    )


def test_integer_sample_weights_equal_repeated_examples():
    """Weighting an example by k is training on k copies of it.

    Full-batch training sees the same loss either way: the weighted mean
    sum(w * l) / sum(w) of the weighted set is the plain mean over the
    repeated set. Weights 1, 2 and 3 (not 0/1) make any other function of the
    weights (a square root, a normalization per batch...) train another model.
    """
    X, y = _data(n_samples=60, class_sep=0.5)
    weights = check_random_state(0).randint(1, 4, size=60)
    assert set(weights) == {1, 2, 3}
    params = {**FULL_BATCH, "max_epochs": 30}
    weighted = LongTailClassifier(**params).fit(X, y, sample_weight=weights)
    repeated = LongTailClassifier(**params).fit(
        np.repeat(X, weights, axis=0), np.repeat(y, weights)
    )
    unweighted = LongTailClassifier(**params).fit(X, y)
    np.testing.assert_allclose(
        weighted.history_[:, "train_loss"],
        repeated.history_[:, "train_loss"],
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        weighted.predict_proba(X), repeated.predict_proba(X), rtol=0, atol=1e-6
    )
    # The weights matter at this tolerance: ignoring them is far off.
    assert np.abs(unweighted.predict_proba(X) - repeated.predict_proba(X)).max() > 1e-2


def test_sample_weight_errors():
    X, y = _data()
    clf = LongTailClassifier(**FAST)
    with pytest.raises(ValueError, match=r"[Nn]egative"):
        clf.fit(X, y, sample_weight=np.r_[-1.0, np.ones(59)])
    with pytest.raises(ValueError, match="sample_weight"):
        clf.fit(X, y, sample_weight=np.ones(59))
    with pytest.raises(ValueError, match="does not accept a sample_weight"):
        LongTailClassifier(loss=_NoSampleWeightLoss, **FAST).fit(
            X, y, sample_weight=np.ones(60)
        )
    # Without sample weights that loss is fine.
    LongTailClassifier(loss=_NoSampleWeightLoss, **FAST).fit(X, y)


# --- Custom modules and losses --------------------------------------------------------


def test_custom_module_class_with_params():
    X, y = _data()
    params = {"hidden": 8}
    clf = LongTailClassifier(module=_TwoLayer, module_params=params, **FAST).fit(X, y)
    network = clf.net_.module_.network
    assert isinstance(network, _TwoLayer)
    assert network.body[0].in_features == 4 and network.body[0].out_features == 8
    assert network.head.out_features == 3
    assert params == {"hidden": 8}
    assert clf.predict(X).shape == (60,)


def test_custom_module_factory():
    X, y = _data()

    def factory(n_features, n_classes, cosine_head):
        assert cosine_head is True
        return nn.Sequential(nn.Linear(n_features, 5), NormedLinear(5, n_classes))

    clf = LongTailClassifier(loss="ldam", module=factory, **FAST).fit(X, y)
    assert isinstance(clf.net_.module_.network, nn.Sequential)
    assert np.all(np.isfinite(clf.predict_proba(X)))


def test_module_must_build_a_torch_module():
    X, y = _data()
    with pytest.raises(TypeError, match=r"nn\.Module"):
        LongTailClassifier(module=_not_a_module, **FAST).fit(X, y)


@pytest.mark.parametrize("schedule", [None, "drw"])
def test_custom_loss_receives_class_counts(schedule):
    X, y = _data(weights=[0.6, 0.3, 0.1])
    clf = LongTailClassifier(
        loss=_CountAwareLoss, reweight_schedule=schedule, beta=0.99, **FAST
    ).fit(X, y, sample_weight=np.ones(60))
    criterion = clf.net_.criterion_
    assert isinstance(criterion, _CountAwareLoss)
    np.testing.assert_array_equal(criterion.class_counts, clf.class_counts_)
    if schedule is None:
        assert criterion.weight is None  # nothing re-weights it
    else:
        expected = effective_number_weights(clf.class_counts_, 0.99)
        np.testing.assert_allclose(criterion.weight.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("schedule", ["drw", "reweight"])
def test_custom_loss_without_weight_rejects_reweighting(schedule):
    X, y = _data()
    with pytest.raises(ValueError, match="weight"):
        LongTailClassifier(loss=_NoWeightLoss, reweight_schedule=schedule, **FAST).fit(
            X, y
        )
    # Re-sampling does not need loss weights.
    clf = LongTailClassifier(loss=_NoWeightLoss, reweight_schedule="drs", **FAST)
    assert clf.fit(X, y).predict(X).shape == (60,)


# --- Errors ---------------------------------------------------------------------------


def test_bad_data_raise():
    X, y = _data()
    clf = LongTailClassifier(**FAST)
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.fit(X_nan, y)
    X_inf = X.copy()
    X_inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        clf.fit(X_inf, y)
    with pytest.raises(ValueError, match="0 sample"):
        clf.fit(np.empty((0, 4)), np.empty(0))
    with pytest.raises(ValueError, match="class"):
        clf.fit(X[:1], y[:1])
    with pytest.raises(ValueError, match="2 classes"):
        clf.fit(X, np.zeros(60))
    with pytest.raises(ValueError, match="continuous"):
        clf.fit(X, np.linspace(0, 1, 60))
    with pytest.raises(ValueError, match=r"60.*59"):
        clf.fit(X, y[:-1])


def test_failed_refit_leaves_the_fitted_model_consistent():
    """X/y length mismatch must be caught before the fitted state changes."""
    X, y = _data()
    clf = LongTailClassifier(**FAST).fit(X, y)
    proba = clf.predict_proba(X)
    with pytest.raises(ValueError, match=r"60.*59"):
        clf.fit(X, (y % 2)[:-1])
    # classes_ and class_counts_ still describe the network that predicts.
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    np.testing.assert_array_equal(clf.class_counts_, np.bincount(y))
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    np.testing.assert_array_equal(clf.predict(X), proba.argmax(axis=1))


def test_predict_errors():
    X, y = _data()
    clf = LongTailClassifier(**FAST)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        clf.predict(X)
    clf.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :3])
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.predict_proba(X_nan)


# ----------------------------------------------------------------- sparse input
# A linear bag-of-features problem: 3 long-tailed classes, each marked by its
# own 10 of 60 features; about 12% of the entries are stored.
def _sparse_data(n_samples=240, seed=0):
    rng = np.random.RandomState(seed)
    y = rng.choice(3, size=n_samples, p=[0.7, 0.2, 0.1])
    present = rng.uniform(size=(n_samples, 60)) < 0.08
    for k in range(3):
        present[y == k, 10 * k : 10 * k + 10] |= (
            rng.uniform(size=((y == k).sum(), 10)) < 0.3
        )
    X = np.where(present, rng.uniform(0.5, 2.0, size=present.shape), 0.0)
    return sp.csr_matrix(X), y


@pytest.fixture
def wide_sparse(monkeypatch):
    """Every sparse input counts as wide (TF-IDF-like): scaled, not centered.

    The real bound (4,096 features) needs matrices too large for fast tests.
    """
    monkeypatch.setattr(_tabular, "SPARSE_CENTERING_MAX_FEATURES", 0)


# Sparse and dense fits see the same inputs up to rounding and take the same
# steps (same seed, same batches), but the sparse and dense matrix kernels sum
# each row's products in another order: float32 rounding (~1e-7 relative)
# compounds over the 3 x 15 optimizer steps of SPARSE_FAST, to about 1e-5 in
# the probabilities.
# Without dropout: 8 hidden units and 3 epochs leave little to drop.
SPARSE_FAST = {**FAST, "batch_size": 48, "device": "cpu", "dropout": 0.0}
SPARSE_RTOL, SPARSE_ATOL = 1e-4, 1e-5


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.usefixtures("wide_sparse")
def test_sparse_fit_matches_the_dense_fit_of_the_scaled_data(weighted):
    # A wide sparse fit divides the features by their (weighted) standard
    # deviation without centering: the same model as a dense fit on X / std
    # without standardization.
    X, y = _sparse_data()
    weights = np.random.RandomState(1).uniform(0.2, 3.0, size=y.size)
    weights = weights if weighted else None
    dense = X.toarray()
    mean = np.average(dense, axis=0, weights=weights)
    std = np.sqrt(np.average((dense - mean) ** 2, axis=0, weights=weights))
    sparse_fit = LongTailClassifier(**SPARSE_FAST).fit(X, y, sample_weight=weights)
    dense_fit = LongTailClassifier(standardize=False, **SPARSE_FAST).fit(
        (dense / std).astype(np.float32), y, sample_weight=weights
    )
    np.testing.assert_allclose(sparse_fit.net_.module_.scale.numpy(), std, rtol=1e-5)
    assert sparse_fit.net_.module_.mean is None  # not centered
    np.testing.assert_allclose(
        sparse_fit.history_[:, "train_loss"],
        dense_fit.history_[:, "train_loss"],
        rtol=SPARSE_RTOL,
    )
    np.testing.assert_allclose(
        sparse_fit.predict_proba(X),
        dense_fit.predict_proba(dense / std),
        rtol=SPARSE_RTOL,
        atol=SPARSE_ATOL,
    )


@pytest.mark.parametrize(
    "params",
    [
        {"loss": "ldam", "reweight_schedule": "drw", "hidden_layer_sizes": ()},
        {"loss": "ce", "reweight_schedule": "resample", "posthoc_tau": 1.0},
        {"loss": "sigmoid_focal", "optimizer": "sam", "sample_attention": 5.0},
        {"validation_fraction": 0.25, "n_iter_no_change": 2, "tau_norm": 1.0},
    ],
)
def test_sparse_fit_matches_the_dense_fit_without_standardization(params):
    # Every loss, schedule and head takes sparse batches: with
    # standardize=False both fits train on the same values.
    X, y = _sparse_data()
    params = {**SPARSE_FAST, "standardize": False, **params}
    sparse_fit = LongTailClassifier(**params).fit(X, y)
    dense_fit = LongTailClassifier(**params).fit(X.toarray(), y)
    np.testing.assert_allclose(
        sparse_fit.predict_proba(X),
        dense_fit.predict_proba(X.toarray()),
        rtol=SPARSE_RTOL,
        atol=SPARSE_ATOL,
    )
    # A model predicts either kind of input.
    np.testing.assert_allclose(
        sparse_fit.predict_proba(X.toarray()),
        sparse_fit.predict_proba(X),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_loss_trains_on_sparse_input(loss):
    X, y = _sparse_data()
    clf = LongTailClassifier(loss=loss, **SPARSE_FAST).fit(X, y)
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


@pytest.mark.usefixtures("wide_sparse")
def test_sparse_fit_and_predict_never_densify_x(monkeypatch):
    X, y = _sparse_data()

    def refuse(*args, **kwargs):
        raise AssertionError("a sparse matrix was densified")

    for cls in (sp.csr_matrix, sp.csr_array, sp.coo_matrix, sp.csc_matrix):
        for name in ("toarray", "todense"):
            monkeypatch.setattr(cls, name, refuse)
    monkeypatch.setattr(torch.Tensor, "to_dense", refuse)
    clf = LongTailClassifier(validation_fraction=0.25, **SPARSE_FAST)
    clf.fit(X.tocoo(), y, sample_weight=np.ones(y.size))
    clf.set_params(warm_start=True, max_epochs=1).fit(X.tocsc(), y)
    clf.predict(X), clf.predict_proba(sp.csr_array(X)), clf.decision_function(X)
    assert clf.score(X, y) > 0.8


def test_sparse_formats_and_index_types_give_the_same_model():
    X, y = _sparse_data()
    reference = LongTailClassifier(**SPARSE_FAST).fit(X, y).predict_proba(X)
    int64 = X.copy()
    int64.indices = int64.indices.astype(np.int64)
    int64.indptr = int64.indptr.astype(np.int64)
    # The same matrix with the column indices of each row in reverse order.
    unsorted = X.copy()
    for row in range(X.shape[0]):
        part = slice(X.indptr[row], X.indptr[row + 1])
        unsorted.indices[part] = X.indices[part][::-1]
        unsorted.data[part] = X.data[part][::-1]
    unsorted.has_sorted_indices = False
    assert (unsorted != X).nnz == 0
    for variant in (
        X.tocsc(),
        X.tocoo(),
        sp.csr_array(X),
        sp.lil_array(X),
        int64,
        unsorted,
    ):
        proba = LongTailClassifier(**SPARSE_FAST).fit(variant, y).predict_proba(X)
        np.testing.assert_array_equal(proba, reference)
        np.testing.assert_array_equal(
            LongTailClassifier(**SPARSE_FAST).fit(X, y).predict_proba(variant),
            reference,
        )


@pytest.mark.usefixtures("wide_sparse")
def test_sparse_predictions_do_not_depend_on_the_batch(monkeypatch):
    X, y = _sparse_data()
    clf = LongTailClassifier(**SPARSE_FAST).fit(X, y)
    monkeypatch.setattr("sklearn_lt.classifiers._inference.SPARSE_BATCH_ROWS", 64)
    seen = []
    forward = clf.net_.module_.forward

    def spy(inputs):
        seen.append(inputs.shape[0])
        return forward(inputs)

    monkeypatch.setattr(clf.net_.module_, "forward", spy)
    proba = clf.predict_proba(X)
    assert set(seen) == {64} and len(seen) == 4  # 240 rows, last batch padded
    rows = np.random.RandomState(0).permutation(X.shape[0])[:37]
    np.testing.assert_array_equal(clf.predict_proba(X[rows]), proba[rows])
    for row in (0, 239):
        np.testing.assert_array_equal(clf.predict_proba(X[[row]]), proba[[row]])


def test_dense_model_predicts_sparse_input_batch_by_batch():
    X, y = _sparse_data()
    clf = LongTailClassifier(**SPARSE_FAST).fit(X.toarray(), y)
    np.testing.assert_allclose(
        clf.predict_proba(X), clf.predict_proba(X.toarray()), rtol=1e-6, atol=1e-7
    )


def test_image_classifier_refuses_sparse_input():
    from sklearn_lt import LongTailImageClassifier

    X, y = _sparse_data()
    clf = LongTailImageClassifier(max_epochs=1, device="cpu")
    with pytest.raises(TypeError, match=r"Sparse data was passed.*dense data"):
        clf.fit(X, y)
    assert not clf.__sklearn_tags__().input_tags.sparse
    assert LongTailClassifier().__sklearn_tags__().input_tags.sparse


@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        ({"loss": "nope"}, "'loss' parameter"),
        ({"loss": int}, "loss"),
        ({"beta": 1.0}, "'beta' parameter"),
        ({"beta": -0.1}, "'beta' parameter"),
        ({"reweight_schedule": "x"}, "'reweight_schedule' parameter"),
        ({"deferral_start": 1.5}, "'deferral_start' parameter"),
        ({"max_epochs": 0}, "'max_epochs' parameter"),
        ({"lr": 0.0}, "'lr' parameter"),
        ({"optimizer": "rmsprop"}, "'optimizer' parameter"),
        ({"validation_fraction": 1.0}, "'validation_fraction' parameter"),
        ({"hidden_layer_sizes": (8, 0)}, "hidden_layer_sizes"),
        ({"device": "nonsense"}, "device must be 'auto' or a torch device"),
        ({"device": 3.5}, "'device' parameter"),
    ],
)
def test_invalid_parameters(params, pattern):
    X, y = _data()
    with pytest.raises(ValueError, match=pattern):
        LongTailClassifier(**{**FAST, **params}).fit(X, y)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda")])
def test_cuda_without_cuda_is_a_clear_error(device):
    X, y = _data()
    with pytest.raises(ValueError, match="CUDA is not available"):
        LongTailClassifier(device=device, **FAST).fit(X, y)


# --- Non-finite training --------------------------------------------------------------


def test_diverging_training_raises_non_finite_loss_error():
    X, y = _data()
    clf = LongTailClassifier(
        loss="ce",
        lr=1e6,
        max_grad_norm=None,  # unbounded steps: this tests the detection
        standardize=False,
        warmup_epochs=0,
        **FAST,
    )
    with pytest.raises(NonFiniteLossError, match=r"in epoch \d+") as info:
        clf.fit(X * 1e6, y)
    assert isinstance(info.value, ValueError)


def test_nan_module_raises_in_epoch_one():
    X, y = _data()
    with pytest.raises(NonFiniteLossError, match=r"train loss became nan in epoch 1\b"):
        LongTailClassifier(module=_NaNModule, **FAST).fit(X, y)


# --- warm_start -----------------------------------------------------------------------


def test_warm_start_continues_training():
    X, y = _data()
    clf = LongTailClassifier(warm_start=True, **FAST).fit(X, y)
    net, module = clf.net_, clf.net_.module_
    weights = [p.detach().clone() for p in module.parameters()]
    assert len(clf.history_) == 3
    clf.fit(X, y)
    assert clf.net_ is net and clf.net_.module_ is module
    assert len(clf.history_) == 6
    assert clf.history_[:, "epoch"] == [1, 2, 3, 4, 5, 6]
    assert any(
        not torch.equal(a, b) for a, b in zip(weights, module.parameters(), strict=True)
    )


def test_warm_start_continues_the_optimizer_momentum():
    """3 epochs, then 2 more with warm_start, are the same as 5 epochs at once.

    Full-batch training at a constant rate with no dropout does the same updates
    whichever order the sampler draws, so the only thing a warm start could
    lose is the optimizer's state: the SGD momentum buffers must carry on.
    """
    X, y = _data(n_samples=60, class_sep=0.5)
    warm = LongTailClassifier(**FULL_BATCH, max_epochs=3, warm_start=True).fit(X, y)
    warm.set_params(max_epochs=2).fit(X, y)
    once = LongTailClassifier(**FULL_BATCH, max_epochs=5).fit(X, y)
    assert len(warm.history_) == len(once.history_) == 5
    np.testing.assert_allclose(
        warm.history_[:, "train_loss"], once.history_[:, "train_loss"], rtol=1e-5
    )
    warm_parameters = list(warm.net_.module_.parameters())
    once_parameters = list(once.net_.module_.parameters())
    for p_warm, p_once in zip(warm_parameters, once_parameters, strict=True):
        torch.testing.assert_close(p_warm, p_once, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(
            warm.net_.optimizer_.state[p_warm]["momentum_buffer"],
            once.net_.optimizer_.state[p_once]["momentum_buffer"],
            rtol=1e-5,
            atol=1e-6,
        )
    np.testing.assert_allclose(
        warm.predict_proba(X), once.predict_proba(X), rtol=0, atol=1e-6
    )


def test_without_warm_start_fit_starts_over():
    X, y = _data()
    clf = LongTailClassifier(**FAST).fit(X, y)
    net = clf.net_
    clf.fit(X, y)
    assert clf.net_ is not net
    assert len(clf.history_) == 3


def test_warm_start_schedule_continues():
    X, y = _data(weights=[0.6, 0.3, 0.1])
    clf = LongTailClassifier(
        reweight_schedule="drw",
        deferral_start=0.5,
        warm_start=True,
        **{**FAST, "max_epochs": 4},
    ).fit(X, y)
    clf.fit(X, y)
    assert clf.history_[:, "rebalancing"] == [False, False] + [True] * 6


def test_warm_start_trains_for_the_current_max_epochs():
    X, y = _data()
    clf = LongTailClassifier(warm_start=True, **FAST).fit(X, y)
    clf.set_params(max_epochs=2)
    clf.fit(X, y)
    assert len(clf.history_) == 3 + 2


def test_warm_start_applies_the_current_optimizer_options():
    # set_params between warm fits reaches the optimizer, as in a new model:
    # the rate (through the schedule's initial_lr), weight decay and
    # momentum; the sigmoid loss's head bias keeps its own weight decay of 0.
    X, y = _data()
    params = {**FAST, "lr_schedule": "constant", "warmup_epochs": 0}
    clf = LongTailClassifier(loss="sigmoid", warm_start=True, **params).fit(X, y)
    optimizer = clf.net_.optimizer_
    clf.set_params(lr=0.002, weight_decay=0.1, momentum=0.5).fit(X, y)
    assert clf.net_.optimizer_ is optimizer
    np.testing.assert_allclose(clf.history_[:, "lr"], [0.05] * 3 + [0.002] * 3)
    bias = clf.net_.module_.network.head.bias
    for group in optimizer.param_groups:
        assert (group["lr"], group["initial_lr"], group["momentum"]) == (
            0.002,
            0.002,
            0.5,
        )
        is_bias = any(p is bias for p in group["params"])
        assert group["weight_decay"] == (0.0 if is_bias else 0.1)
    assert len(optimizer.param_groups) == 2


def test_warm_start_rejects_a_new_optimizer():
    X, y = _data()
    clf = LongTailClassifier(warm_start=True, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="warm_start=False"):
        clf.set_params(optimizer="adam").fit(X, y)
    assert len(clf.history_) == 3


def test_warm_start_rejects_new_classes_and_features():
    X, y = _data()
    clf = LongTailClassifier(warm_start=True, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="same classes"):
        clf.fit(X, np.where(y == 2, 5, y))
    with pytest.raises(ValueError, match="features"):
        clf.fit(X[:, :3], y)
    assert len(clf.history_) == 3


def test_warm_start_checks_sample_weight_support():
    X, y = _data()
    clf = LongTailClassifier(loss=_NoSampleWeightLoss, warm_start=True, **FAST)
    clf.fit(X, y)
    with pytest.raises(ValueError, match="does not accept a sample_weight"):
        clf.fit(X, y, sample_weight=np.ones(60))


# --- Devices --------------------------------------------------------------------------


def test_explicit_cpu_device():
    X, y = _data()
    for device in ("cpu", torch.device("cpu")):
        clf = LongTailClassifier(device=device, **FAST).fit(X, y)
        assert clf.device_ == torch.device("cpu")
        assert all(p.device.type == "cpu" for p in clf.net_.module_.parameters())


def test_auto_device():
    clf = LongTailClassifier(device="auto", **FAST).fit(*_data())
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert clf.device_.type == expected
    assert clf.device == "auto"


def test_fit_predict_on_every_device(device):
    X, y = _separable()
    clf = LongTailClassifier(loss="ldam", device=device, **TRAINED).fit(X, y)
    assert clf.device_.type == device.type
    assert all(p.device.type == device.type for p in clf.net_.module_.parameters())
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert accuracy_score(y, clf.predict(X)) == 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
class TestCUDA:
    def test_fit_and_predict_on_cuda(self):
        X, y = _data(weights=[0.6, 0.3, 0.1])
        clf = LongTailClassifier(
            loss="ldam", reweight_schedule="drw", device="cuda", **FAST
        ).fit(X, y)
        assert clf.device_.type == "cuda"
        assert all(p.is_cuda for p in clf.net_.module_.parameters())
        assert clf.net_.criterion_.weight.is_cuda
        proba = clf.predict_proba(X)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
        np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(1)])

    def test_cuda_is_reproducible_and_leaves_rng_alone(self):
        X, y = _data()
        cuda_state = torch.cuda.get_rng_state()
        cpu_state = torch.get_rng_state()
        first = LongTailClassifier(device="cuda", **FAST).fit(X, y)
        second = LongTailClassifier(device="cuda", **FAST).fit(X, y)
        np.testing.assert_allclose(
            first.predict_proba(X), second.predict_proba(X), atol=1e-6
        )
        assert torch.equal(torch.cuda.get_rng_state(), cuda_state)
        assert torch.equal(torch.get_rng_state(), cpu_state)

    def test_pickle_on_cuda(self):
        X, y = _data()
        clf = LongTailClassifier(device="cuda", validation_fraction=0.2, **FAST)
        clf.fit(X, y)
        restored = pickle.loads(pickle.dumps(clf))
        np.testing.assert_allclose(
            restored.predict_proba(X), clf.predict_proba(X), atol=1e-6
        )

    def test_sample_weight_and_resampling_on_cuda(self):
        X, y = _data(weights=[0.6, 0.3, 0.1])
        clf = LongTailClassifier(
            reweight_schedule="resample", device="cuda", **FAST
        ).fit(X, y, sample_weight=np.linspace(0.5, 1.5, 60))
        assert np.all(np.isfinite(clf.predict_proba(X)))


# --- Output ---------------------------------------------------------------------------


def test_verbose_prints_the_epoch_table(capsys):
    X, y = _data()
    LongTailClassifier(verbose=1, **FAST).fit(X, y)
    out = capsys.readouterr().out
    assert "epoch" in out and "train_loss" in out
    assert len([line for line in out.splitlines() if line.strip()[:1].isdigit()]) == 3


def test_verbose_reports_early_stopping(capsys):
    X, y = _separable()
    LongTailClassifier(
        verbose=1,
        validation_fraction=0.25,
        n_iter_no_change=2,
        max_epochs=50,
        hidden_layer_sizes=(8,),
        random_state=0,
    ).fit(X, y)
    out = capsys.readouterr().out
    assert "valid_balanced_accuracy" in out
    assert "Stopping" in out


def test_silent_by_default(capsys):
    X, y = _separable()
    LongTailClassifier(
        validation_fraction=0.25,
        n_iter_no_change=2,
        max_epochs=50,
        hidden_layer_sizes=(8,),
        random_state=0,
    ).fit(X, y)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_progress_bar(capsys):
    X, y = _data()
    clf = LongTailClassifier(progress_bar=True, **FAST).fit(X, y)
    assert len(clf.history_) == 3
    assert "%|" in capsys.readouterr().err
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict(X), clf.predict(X))


def test_warm_start_uses_the_class_counts_of_each_fit():
    X, y = _data()
    clf = LongTailClassifier(
        loss="ldam", reweight_schedule="drw", warm_start=True, **FAST
    ).fit(X, y)
    keep = np.r_[np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:3]]
    clf.fit(X[keep], y[keep])
    counts = np.bincount(y[keep])
    np.testing.assert_array_equal(clf.class_counts_, counts)
    expected = LDAMLoss(counts, max_margin=clf.max_margin).margins
    torch.testing.assert_close(clf.net_.criterion_.margins, expected)
    rebalancing = dict(clf.net_.callbacks_)["rebalancing"]
    np.testing.assert_allclose(
        rebalancing.class_weights_.numpy(),
        effective_number_weights(counts, clf.beta),
        rtol=1e-6,
    )


@pytest.mark.parametrize("schedule", ["resample", "drs"])
def test_resampling_draws_with_the_sampler_of_the_net(schedule, tmp_path):
    """One sampler per net, shared by its iterator and its re-balancing."""
    from sklearn_lt import load_model, save_model

    X, y = _data(weights=[0.6, 0.3, 0.1])
    clf = LongTailClassifier(reweight_schedule=schedule, warm_start=True, **FAST).fit(
        X, y
    )
    sampler = clf.net_.iterator_train__sampler
    rebalancing = dict(clf.net_.callbacks_)["rebalancing"]
    assert rebalancing.sampler is sampler
    assert sampler.targets.numel() == 0  # not kept with the model
    # A warm start draws from the new rows with the same sampler.
    keep = np.r_[np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:3]]
    clf.fit(X[keep], y[keep])
    assert clf.net_.iterator_train__sampler is sampler
    assert dict(clf.net_.callbacks_)["rebalancing"].sampler is sampler
    np.testing.assert_allclose(
        sampler.class_weights.numpy(),
        effective_number_weights(np.bincount(y[keep]), clf.beta),
        rtol=1e-6,
    )
    # So does a model read back from a file, and one unpickled.
    save_model(clf, tmp_path / "model.pt")
    for loaded in (load_model(tmp_path / "model.pt"), pickle.loads(pickle.dumps(clf))):
        loaded.fit(X, y)
        shared = loaded.net_.iterator_train__sampler
        assert dict(loaded.net_.callbacks_)["rebalancing"].sampler is shared
        assert len(loaded.history_) == len(clf.history_) + FAST["max_epochs"]


def test_accelerator_trains_through_accelerate(tmp_path):
    from sklearn_lt import load_model, save_model
    from sklearn_lt._training import AcceleratedLongTailNet

    X, y = _data()
    clf = LongTailClassifier(
        accelerator=accelerate.Accelerator(cpu=True),
        loss="ldam",
        reweight_schedule="drw",
        **FAST,
    ).fit(X, y)
    assert isinstance(clf.net_, AcceleratedLongTailNet)
    assert clf.device_.type == "cpu"
    proba = clf.predict_proba(X)
    assert np.all(np.isfinite(proba))
    # Accelerated nets do not pickle; the safe format stores them.
    save_model(clf, tmp_path / "model.pt")
    np.testing.assert_array_equal(
        load_model(tmp_path / "model.pt").predict_proba(X), proba
    )
    assert clone(clf).accelerator is not None


# ------------------------------------------------- sample attention (ABSGD)
def _attention_data():
    return make_classification(
        n_samples=240,
        n_classes=3,
        n_informative=4,
        weights=[0.75, 0.18, 0.07],
        random_state=0,
    )


@pytest.mark.parametrize(
    ("loss", "schedule", "optimizer"),
    [
        ("ce", None, "sgd"),
        ("ldam", "drw", "sgd"),
        ("logit_adjusted", "resample", "adam"),
        ("sigmoid_focal", "reweight", "sam"),
    ],
)
def test_sample_attention_fits_with_losses_schedules_optimizers(
    loss, schedule, optimizer
):
    X, y = _attention_data()
    weights = np.random.RandomState(0).uniform(0.5, 2.0, size=y.size)
    clf = LongTailClassifier(
        loss=loss,
        reweight_schedule=schedule,
        deferral_start=0.5,
        optimizer=optimizer,
        sample_attention=1.0,
        max_epochs=3,
        random_state=0,
    ).fit(X, y, sample_weight=weights)
    assert clf.net_.sample_attention == 1.0
    assert np.isfinite(clf.predict_proba(X)).all()
    assert np.isfinite([row["train_loss"] for row in clf.history_]).all()


def test_sample_attention_none_is_unchanged_and_large_is_close_to_it():
    X, y = _attention_data()
    params = {"loss": "ce", "reweight_schedule": "drw", "max_epochs": 3}
    plain = LongTailClassifier(random_state=0, **params).fit(X, y)
    assert plain.net_.sample_attention is None
    flat = LongTailClassifier(sample_attention=1e9, random_state=0, **params)
    np.testing.assert_allclose(
        flat.fit(X, y).predict_proba(X), plain.predict_proba(X), atol=1e-4
    )
    sharp = LongTailClassifier(sample_attention=0.1, random_state=0, **params)
    assert not np.allclose(sharp.fit(X, y).predict_proba(X), plain.predict_proba(X))


def test_sample_attention_follows_set_params_on_warm_start():
    X, y = _attention_data()
    clf = LongTailClassifier(max_epochs=2, random_state=0, warm_start=True).fit(X, y)
    clf.set_params(sample_attention=0.5).fit(X, y)
    assert clf.net_.sample_attention == 0.5


def test_sample_attention_needs_a_loss_with_reduction():
    class NoReduction(nn.Module):
        def forward(self, logits, target):
            return F.cross_entropy(logits, target)

    X, y = _attention_data()
    clf = LongTailClassifier(loss=NoReduction, sample_attention=1.0, max_epochs=1)
    with pytest.raises(ValueError, match="reduction"):
        clf.fit(X, y)


# --- Standardization of indicator columns ---------------------------------------------


def _one_hot_data(n_samples=200, seed=0):
    """A numeric column, then a one-hot categorical column with a rare level."""
    rng = np.random.RandomState(seed)
    y = rng.choice(3, size=n_samples, p=[0.6, 0.3, 0.1])
    numeric = rng.normal(loc=5.0, scale=3.0, size=(n_samples, 1)) + y[:, None]
    level = rng.choice(3, size=n_samples, p=[0.7, 0.28, 0.02])
    level[:2] = 2  # the rare level is present
    return np.hstack([numeric, np.eye(3)[level]]), y


@pytest.mark.parametrize("weighted", [False, True])
def test_standardization_centers_indicator_columns_without_scaling(weighted):
    X, y = _one_hot_data()
    weights = np.random.RandomState(1).uniform(0.5, 2.0, size=y.size)
    weights = weights if weighted else None
    clf = LongTailClassifier(**FAST).fit(X, y, sample_weight=weights)
    mean = np.average(X, axis=0, weights=weights)
    std = np.sqrt(np.average((X - mean) ** 2, axis=0, weights=weights))
    module = clf.net_.module_
    np.testing.assert_allclose(module.mean.numpy(), mean, rtol=1e-5)
    # The numeric column is scaled; the one-hot columns keep their 0/1 scale,
    # where dividing by their std would have sent the rare level to ~7.
    np.testing.assert_allclose(module.scale.numpy(), [std[0], 1.0, 1.0, 1.0], rtol=1e-5)
    assert (X[:, 3] - mean[3]).max() / std[3] > 5
    # A value other than 0 or 1 makes a column an ordinary feature again.
    X_other = X.copy()
    X_other[0, 1] = 0.5
    other = LongTailClassifier(**FAST).fit(X_other, y)
    assert other.net_.module_.scale.numpy()[1] == pytest.approx(
        X_other[:, 1].std(), rel=1e-5
    )


@pytest.mark.usefixtures("wide_sparse")
def test_sparse_indicator_columns_keep_their_scale():
    # Wide sparse data is scaled but not centered; its one-hot columns, as a
    # ColumnTransformer with a sparse OneHotEncoder hands them over, keep
    # their 0/1 values (scaled, the rare level would reach ~7).
    X, y = _one_hot_data()
    X[:, 0] = np.abs(X[:, 0])
    clf = LongTailClassifier(**FAST).fit(sp.csr_matrix(X), y)
    assert clf.net_.module_.mean is None
    np.testing.assert_allclose(
        clf.net_.module_.scale.numpy(), [X[:, 0].std(), 1.0, 1.0, 1.0], rtol=1e-5
    )
    X[0, 1] = 0.5  # no longer an indicator: scaled as any other column
    other = LongTailClassifier(**FAST).fit(sp.csr_matrix(X), y)
    assert other.net_.module_.scale.numpy()[1] == pytest.approx(X[:, 1].std(), rel=1e-5)


@pytest.mark.parametrize("weighted", [False, True])
def test_narrow_sparse_input_gives_the_model_of_its_dense_form(weighted):
    # One-hot output of a ColumnTransformer arrives sparse or dense depending
    # on its density: with few columns, both give the same standardization
    # (numeric columns centered and scaled, indicators centered) and model.
    X, y = _one_hot_data()
    weights = np.random.RandomState(1).uniform(0.5, 2.0, size=y.size)
    weights = weights if weighted else None
    params = {**SPARSE_FAST, "max_epochs": 3}
    sparse_fit = LongTailClassifier(**params).fit(
        sp.csr_matrix(X), y, sample_weight=weights
    )
    dense_fit = LongTailClassifier(**params).fit(X, y, sample_weight=weights)
    for name in ("mean", "scale"):
        np.testing.assert_allclose(
            getattr(sparse_fit.net_.module_, name).numpy(),
            getattr(dense_fit.net_.module_, name).numpy(),
            rtol=1e-6,
        )
    np.testing.assert_array_equal(sparse_fit.net_.module_.scale.numpy()[1:], 1.0)
    np.testing.assert_allclose(
        sparse_fit.predict_proba(sp.csr_matrix(X)),
        dense_fit.predict_proba(X),
        rtol=SPARSE_RTOL,
        atol=SPARSE_ATOL,
    )


@pytest.mark.parametrize("n_features, centered", [(4096, True), (4097, False)])
def test_sparse_input_is_centered_up_to_the_width_bound(n_features, centered):
    assert _tabular.SPARSE_CENTERING_MAX_FEATURES == 4096
    rng = np.random.RandomState(0)
    y = np.repeat([0, 1], 10)
    X = sp.random(20, n_features, density=0.01, format="csr", random_state=rng)
    X[np.arange(20), y] = 1.0  # the class is in the first two columns
    clf = LongTailClassifier(**{**SPARSE_FAST, "max_epochs": 1}).fit(X, y)
    assert (clf.net_.module_.mean is not None) is centered
    assert clf.predict(X).shape == (20,)
