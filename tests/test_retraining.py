"""Tests of the decoupled second stage, ``classifier_retraining`` (cRT, LWS, MARC)."""

import os
import pickle

import numpy as np
import pytest
import torch
from scipy.special import log_softmax
from sklearn.datasets import make_classification
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from torch import nn

from sklearn_lt import LongTailClassifier, LongTailImageClassifier
from sklearn_lt._training import NonFiniteLossError
from sklearn_lt.classifiers import _retraining
from sklearn_lt.classifiers._retraining import (
    LearnableWeightScaling,
    MarginCalibration,
    RetrainedLinear,
    retraining_class_weights,
    retraining_epochs,
)
from sklearn_lt.datasets import make_long_tailed_classification
from sklearn_lt.losses import LOSSES
from sklearn_lt.persistence import load_model, save_model
from sklearn_lt.schedules import REWEIGHT_SCHEDULES

METHODS = ["crt", "lws", "marc"]
FAST = {
    "max_epochs": 3,
    "retraining_epochs": 3,
    "hidden_layer_sizes": (8,),
    "batch_size": 16,
    "random_state": 0,
}


def _data(n_samples=120, n_classes=3, weights=(0.7, 0.2, 0.1), seed=0):
    return make_classification(
        n_samples=n_samples,
        n_features=5,
        n_informative=3,
        n_redundant=0,
        n_classes=n_classes,
        weights=list(weights),
        random_state=seed,
    )


def _state(clf):
    return {k: v.clone() for k, v in clf.net_.module_.state_dict().items()}


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _features_and_outputs(clf, X):
    """Penultimate features and raw outputs of the stage-1 MLP, by hand (float64)."""
    module = clf.net_.module_
    standardized = (X - module.mean.numpy()) / module.scale.numpy()
    with torch.no_grad():
        body = module.network.body.eval()
        features = body(torch.as_tensor(standardized, dtype=torch.float32))
    features = features.double().numpy()
    head = module.network.head
    W = head.weight.detach().double().numpy()
    if isinstance(head, nn.Linear):
        outputs = features @ W.T + head.bias.detach().double().numpy()
    else:  # cosine head
        unit = features / np.linalg.norm(features, axis=1, keepdims=True)
        outputs = unit @ (W / np.linalg.norm(W, axis=1, keepdims=True)).T
    return features, outputs, W


def _fitted_stage_one_norms(clf):
    head = clf.net_.module_.network.head
    if isinstance(head, nn.Linear):
        return np.linalg.norm(head.weight.detach().double().numpy(), axis=1)
    return np.ones(clf.classes_.size)


# ------------------------------------------------------------------ options
def test_marc_class_weights_are_prior_to_the_minus_1_2_summing_to_c():
    counts = np.array([500.0, 50.0, 5.0, 1.0])
    pi = counts / counts.sum()
    expected = pi**-1.2 / np.sum(pi**-1.2) * 4
    weights = retraining_class_weights("marc", counts)
    np.testing.assert_allclose(weights, expected)
    assert weights.sum() == pytest.approx(4.0)


@pytest.mark.parametrize("method", ["crt", "lws"])
def test_class_balanced_sampling_weights_are_inverse_counts(method):
    weights = retraining_class_weights(method, np.array([100.0, 10.0, 0.0, 2.0]))
    np.testing.assert_allclose(weights, [0.01, 0.1, 0.0, 0.5])


@pytest.mark.parametrize(
    ("method", "n_samples", "expected"),
    [
        ("crt", 12406, 11),  # 97 steps per epoch: 11 epochs reach 1,000 steps
        ("lws", 12406, 11),
        ("marc", 12406, 80),  # the paper's 80 epochs are already more
        ("crt", 10**6, 10),  # the paper's epochs on large data
        ("lws", 10**6, 5),
        ("crt", 300, 200),  # small data: capped at 200 epochs
    ],
)
def test_auto_retraining_epochs(method, n_samples, expected):
    assert retraining_epochs(method, "auto", n_samples, 128) == expected
    assert retraining_epochs(method, 7, n_samples, 128) == 7


def test_options_that_count_the_prior_twice_are_refused():
    X, y = _data()
    with pytest.raises(ValueError, match=r"posthoc_tau=1\.0 adjusts logits"):
        LongTailClassifier(
            loss="ce", posthoc_tau=1.0, classifier_retraining="crt", **FAST
        ).fit(X, y)
    for method in ("lws", "marc"):
        with pytest.raises(ValueError, match=r"tau_norm=1\.0 rescales"):
            LongTailClassifier(tau_norm=1.0, classifier_retraining=method, **FAST).fit(
                X, y
            )
    # Changed after fitting: refused at prediction time.
    clf = LongTailClassifier(loss="ce", classifier_retraining="lws", **FAST).fit(X, y)
    clf.set_params(posthoc_tau=0.5)
    with pytest.raises(ValueError, match="double-counts the prior"):
        clf.predict(X)
    clf.set_params(posthoc_tau=0.0, tau_norm=1.0)
    with pytest.raises(ValueError, match="classifier_retraining='crt'"):
        clf.predict(X)


def test_invalid_parameters():
    X, y = _data()
    with pytest.raises(ValueError, match="classifier_retraining"):
        LongTailClassifier(classifier_retraining="tau", **FAST).fit(X, y)
    with pytest.raises(ValueError, match="retraining_epochs"):
        LongTailClassifier(
            classifier_retraining="crt", **{**FAST, "retraining_epochs": 0}
        ).fit(X, y)


class _NoHead(nn.Module):
    def __init__(self, n_features, n_classes):
        super().__init__()
        self.linear = nn.Linear(n_features, n_classes)

    def forward(self, X):
        return self.linear(X)


def test_a_network_without_head_is_refused():
    X, y = _data()
    clf = LongTailClassifier(module=_NoHead, classifier_retraining="crt", **FAST)
    with pytest.raises(ValueError, match="named `head`"):
        clf.fit(X, y)


# ------------------------------------------------------------------ the maths
@pytest.mark.parametrize("loss", ["ce", "ldam"])
def test_marc_logits_match_an_independent_numpy_computation(loss):
    X, y = _data()
    clf = LongTailClassifier(loss=loss, classifier_retraining="marc", **FAST)
    clf.fit(X, y)
    head = clf.retrained_head_
    assert isinstance(head, MarginCalibration)
    omega = head.omega.detach().double().numpy()
    beta = head.beta.detach().double().numpy()
    assert not np.allclose(omega, 1.0) and not np.allclose(beta, 0.0)  # trained
    _, outputs, _ = _features_and_outputs(clf, X)
    logits = outputs * (clf.scale if loss == "ldam" else 1.0)
    norms = _fitted_stage_one_norms(clf)
    calibrated = omega * logits + beta * norms
    np.testing.assert_allclose(
        clf.predict_log_proba(X), log_softmax(calibrated, axis=1), atol=1e-4
    )
    # prediction_prior moves from the prior pi * pi**-1.2 that MARC's
    # weighted cross-entropy targets.
    pi = clf.class_counts_ / clf.class_counts_.sum()
    clf.set_params(prediction_prior="balanced")
    np.testing.assert_allclose(
        clf.predict_log_proba(X),
        log_softmax(calibrated - np.log(pi * pi**-1.2), axis=1),
        atol=1e-4,
    )


def test_lws_learns_only_the_scales():
    X, y = _data()
    plain = LongTailClassifier(loss="ce", **FAST).fit(X, y)
    lws = LongTailClassifier(loss="ce", classifier_retraining="lws", **FAST)
    lws.fit(X, y)
    # Backbone and stage-1 head: bitwise those of the same fit without stage 2.
    _assert_same_state(_state(plain), _state(lws))
    head = lws.retrained_head_
    assert isinstance(head, LearnableWeightScaling)
    assert [name for name, _ in head.named_parameters()] == ["scales"]
    scales = head.scales.detach().double().numpy()
    assert not np.allclose(scales, 1.0)
    _, outputs, _ = _features_and_outputs(lws, X)
    np.testing.assert_allclose(
        lws.predict_log_proba(X), log_softmax(outputs * scales, axis=1), atol=1e-4
    )


def test_crt_reinitializes_the_head_and_freezes_the_backbone():
    X, y = _data()
    plain = LongTailClassifier(loss="ce", **FAST).fit(X, y)
    crt = LongTailClassifier(loss="ce", classifier_retraining="crt", **FAST)
    crt.fit(X, y)
    _assert_same_state(_state(plain), _state(crt))
    head = crt.retrained_head_
    assert isinstance(head, RetrainedLinear)
    stage_one = crt.net_.module_.network.head.weight.detach()
    assert head.weight.shape == stage_one.shape
    assert not torch.allclose(head.weight, stage_one, atol=1e-2)
    features, _, _ = _features_and_outputs(crt, X)
    W = head.weight.detach().double().numpy()
    b = head.bias.detach().double().numpy()
    np.testing.assert_allclose(
        crt.predict_log_proba(X), log_softmax(features @ W.T + b, axis=1), atol=1e-4
    )
    # tau_norm applies to the re-trained head: no bias, rows over their norm.
    crt.set_params(tau_norm=1.0)
    normalized = W / np.linalg.norm(W, axis=1, keepdims=True)
    np.testing.assert_allclose(
        crt.predict_log_proba(X),
        log_softmax(features @ normalized.T, axis=1),
        atol=1e-4,
    )


def test_crt_starts_from_a_fresh_layer_not_the_trained_head(monkeypatch):
    X, y = _data()
    seen = {}
    original = _retraining._train_head

    def spy(head, *args):
        seen["initial"] = head.weight.detach().clone()
        return original(head, *args)

    monkeypatch.setattr(_retraining, "_train_head", spy)
    clf = LongTailClassifier(loss="ce", classifier_retraining="crt", **FAST)
    clf.fit(X, y)
    initial = seen["initial"]
    trained = clf.net_.module_.network.head.weight.detach()
    # PyTorch's default initialization, |w| <= 1/sqrt(d), not the trained head.
    assert initial.abs().max() <= 1 / np.sqrt(initial.shape[1])
    assert not torch.allclose(initial, trained, atol=1e-3)
    assert not torch.equal(initial, clf.retrained_head_.weight)  # then trained


@pytest.mark.parametrize("method", METHODS)
def test_the_second_stage_samples_as_the_method_says(method, monkeypatch):
    X, y = _data(n_samples=400, weights=(0.8, 0.15, 0.05))
    seen = {}
    original = _retraining._train_head

    def spy(head, data, sampler, class_weight, *args):
        seen["sampler"], seen["class_weight"], seen["n"] = (
            sampler,
            class_weight,
            len(data[2]),
        )
        return original(head, data, sampler, class_weight, *args)

    monkeypatch.setattr(_retraining, "_train_head", spy)
    clf = LongTailClassifier(classifier_retraining=method, **FAST).fit(X, y)
    sampler = seen["sampler"]
    sampler.targets = torch.as_tensor(np.searchsorted(clf.classes_, y))
    drawn = torch.cat([sampler.epoch_indices() for _ in range(50)])
    frequencies = np.bincount(sampler.targets[drawn].numpy(), minlength=3) / len(drawn)
    if method == "marc":  # instance-balanced, with pi**-1.2 loss weights
        np.testing.assert_allclose(frequencies, clf.class_counts_ / 400, atol=0.02)
        np.testing.assert_allclose(
            seen["class_weight"].numpy(),
            retraining_class_weights("marc", clf.class_counts_),
            rtol=1e-6,
        )
    else:  # class-balanced sampling, no loss weights
        np.testing.assert_allclose(frequencies, 1 / 3, atol=0.02)
        assert seen["class_weight"] is None


def test_validation_rows_stay_out_of_the_second_stage(monkeypatch):
    X, y = _data(n_samples=200)
    seen = {}
    original = _retraining._train_head

    def spy(head, data, *args):
        seen["y"] = data[2].clone()
        return original(head, data, *args)

    monkeypatch.setattr(_retraining, "_train_head", spy)
    clf = LongTailClassifier(
        classifier_retraining="crt", validation_fraction=0.25, **FAST
    ).fit(X, y)
    assert len(seen["y"]) == clf.class_counts_.sum() < len(y)
    np.testing.assert_array_equal(
        np.bincount(seen["y"].numpy()), clf.class_counts_.astype(int)
    )


def test_sample_weight_multiplies_the_second_stage_loss():
    # One full batch per epoch: weight 2 on a row is that row twice.
    rng = np.random.RandomState(0)
    features = torch.as_tensor(rng.randn(30, 4), dtype=torch.float32)
    logits = torch.as_tensor(rng.randn(30, 3), dtype=torch.float32)
    y = torch.as_tensor(rng.randint(0, 3, 30))
    weight = torch.as_tensor(rng.randint(0, 3, 30), dtype=torch.float32)
    repeat = weight.to(torch.int64)
    class_weight = torch.tensor([0.5, 1.0, 2.0])
    results = []
    for data in (
        (features, logits, y, weight),
        (
            features.repeat_interleave(repeat, 0),
            logits.repeat_interleave(repeat, 0),
            y.repeat_interleave(repeat),
            None,
        ),
    ):
        torch.manual_seed(0)
        head = MarginCalibration(torch.tensor([1.0, 2.0, 3.0]))
        optimizer = torch.optim.SGD(head.parameters(), lr=0.5, momentum=0.9)
        sampler = _retraining.ClassWeightedSampler(data[2], seed=0)
        _retraining._train_head(head, data, sampler, class_weight, optimizer, 5, 100)
        results.append(torch.cat([head.omega, head.beta]).detach())
    torch.testing.assert_close(results[0], results[1], rtol=1e-5, atol=1e-6)


def test_train_head_reduces_the_weighted_cross_entropy():
    rng = np.random.RandomState(0)
    features = torch.as_tensor(rng.randn(200, 6), dtype=torch.float32)
    y = torch.as_tensor(rng.randint(0, 3, 200))
    features[torch.arange(200), y] += 2.0
    head = RetrainedLinear(6, 3)
    optimizer = torch.optim.SGD(head.parameters(), lr=0.1, momentum=0.9)
    sampler = _retraining.ClassWeightedSampler(y, seed=0)
    data = (features, torch.zeros(200, 3), y, None)
    history = _retraining._train_head(head, data, sampler, None, optimizer, 10, 32)
    assert len(history) == 10
    assert history[-1]["train_loss"] < 0.6 * history[0]["train_loss"]
    assert history[0]["lr"] == pytest.approx(0.1)
    assert history[-1]["lr"] == pytest.approx(0.1 * 0.5 * (1 + np.cos(np.pi * 0.9)))


# --------------------------------------------------------------- estimators
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_loss_runs_with_every_method(loss, method):
    X, y = _data()
    clf = LongTailClassifier(loss=loss, classifier_retraining=method, **FAST)
    proba = clf.fit(X, y).predict_proba(X)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert clf.retraining_epochs_ == 3
    assert len(clf.retraining_history_) == 3
    assert len(clf.history_) == 3  # stage 1 keeps its own history


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("schedule", sorted(REWEIGHT_SCHEDULES))
def test_every_schedule_runs_with_every_method(schedule, method):
    X, y = _data()
    clf = LongTailClassifier(
        loss="ldam", reweight_schedule=schedule, classifier_retraining=method, **FAST
    )
    clf.set_params(deferral_start=0.5)
    proba = clf.fit(X, y).predict_proba(X)
    assert np.isfinite(proba).all()


@pytest.mark.parametrize("method", METHODS)
def test_prediction_prior_is_relative_to_the_second_stage_prior(method):
    X, y = _data()
    clf = LongTailClassifier(loss="ce", classifier_retraining=method, **FAST)
    raw = clf.fit(X, y).predict_log_proba(X)
    pi = clf.class_counts_ / clf.class_counts_.sum()
    stage_two_prior = pi * retraining_class_weights(method, clf.class_counts_)
    for prior, target in [
        ("train", pi),
        ("balanced", np.ones(3)),
        ([0.2, 0.3, 0.5], np.array([0.2, 0.3, 0.5])),
    ]:
        clf.set_params(prediction_prior=prior)
        expected = log_softmax(raw + np.log(target) - np.log(stage_two_prior), axis=1)
        np.testing.assert_allclose(clf.predict_log_proba(X), expected, atol=1e-6)


def test_crt_improves_balanced_accuracy_over_erm():
    # A clearly long-tailed problem (rho=100, tail classes of 10 examples):
    # ERM's linear head favours the head classes; re-training it on the same
    # features with class-balanced sampling recovers the tail. The gain was
    # 14 to 28 points on each of the seeds 0-7; three are checked.
    gains = []
    for seed in range(3):
        X, y = make_long_tailed_classification(
            n_classes=5,
            n_features=10,
            imbalance_ratio=100,
            n_max=1000,
            class_sep=1.0,
            random_state=seed,
        )
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.5, stratify=y, random_state=seed
        )
        params = {
            "loss": "ce",
            "max_epochs": 20,
            "hidden_layer_sizes": (32,),
            "random_state": seed,
        }
        scores = []
        for method in (None, "crt"):
            clf = LongTailClassifier(classifier_retraining=method, **params)
            clf.fit(X_train, y_train)
            scores.append(balanced_accuracy_score(y_test, clf.predict(X_test)))
        gains.append(scores[1] - scores[0])
    assert np.mean(gains) > 0.08, gains
    assert min(gains) > 0.03, gains


def test_random_state_pickle_and_save_model(tmp_path):
    X, y = _data()
    for method in METHODS:
        params = {**FAST, "classifier_retraining": method}
        a = LongTailClassifier(**params).fit(X, y)
        b = LongTailClassifier(**params).fit(X, y)
        np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
        assert list(a.retraining_history_) == list(b.retraining_history_)
        restored = pickle.loads(pickle.dumps(a))
        np.testing.assert_array_equal(restored.predict_proba(X), a.predict_proba(X))
        path = os.path.join(tmp_path, f"{method}.pt")
        save_model(a, path)
        loaded = load_model(path)
        np.testing.assert_array_equal(loaded.predict_proba(X), a.predict_proba(X))
        assert list(loaded.retraining_history_) == list(a.retraining_history_)
        assert loaded.retraining_epochs_ == a.retraining_epochs_


def test_warm_start_continues_stage_one_and_redoes_stage_two():
    X, y = _data()
    clf = LongTailClassifier(classifier_retraining="marc", warm_start=True, **FAST).fit(
        X, y
    )
    first_head = clf.retrained_head_
    before = _state(clf)
    clf.fit(X, y)
    assert len(clf.history_) == 6  # stage 1 continued
    assert len(clf.retraining_history_) == 3  # stage 2 redone from scratch
    assert clf.retrained_head_ is not first_head
    assert not torch.equal(
        before["network.head.weight"], _state(clf)["network.head.weight"]
    )
    # A warm fit without the second stage predicts with the stage-1 head.
    clf.set_params(classifier_retraining=None)
    clf.fit(X, y)
    assert not hasattr(clf, "retrained_head_")
    assert not hasattr(clf, "retraining_history_")
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0)


def test_sample_weight_reaches_the_second_stage():
    X, y = _data()
    weight = np.ones(len(y))
    weight[y == 2] = 0.0  # class 2 never seen: its count is 0
    clf = LongTailClassifier(classifier_retraining="crt", **FAST)
    clf.fit(X, y, sample_weight=weight)
    assert clf.class_counts_[2] == 0
    assert np.isfinite(clf.predict_proba(X)).all()


@pytest.mark.parametrize("method", METHODS)
def test_image_classifier(method):
    rng = np.random.RandomState(0)
    X = rng.rand(60, 1, 8, 8).astype(np.float32)
    y = np.repeat([0, 1, 2], [40, 15, 5])
    X[y == 1, :, :4] += 1.0
    X[y == 2, :, 4:] += 1.0
    clf = LongTailImageClassifier(
        architecture="cnn",
        classifier_retraining=method,
        max_epochs=2,
        retraining_epochs=2,
        batch_size=16,
        random_state=0,
    ).fit(X, y)
    assert clf.predict(X).shape == (60,)
    assert len(clf.retraining_history_) == 2


def test_a_non_finite_second_stage_leaves_the_estimator_unfitted(monkeypatch):
    def explosive(name, parameters, **options):
        return torch.optim.SGD(parameters, lr=1e38)

    monkeypatch.setattr(_retraining, "head_optimizer", explosive)
    X, y = _data()
    clf = LongTailClassifier(loss="ce", classifier_retraining="crt", **FAST)
    with pytest.raises(NonFiniteLossError, match="re-training loss"):
        clf.fit(X, y)
    assert not hasattr(clf, "net_") and not hasattr(clf, "retrained_head_")


@pytest.mark.parametrize("method", METHODS)
def test_training_through_an_accelerator_gives_the_same_model(method):
    accelerate = pytest.importorskip("accelerate")
    X, y = _data()
    params = {**FAST, "classifier_retraining": method, "device": "cpu"}
    plain = LongTailClassifier(**params).fit(X, y)
    accelerated = LongTailClassifier(
        **params, accelerator=accelerate.Accelerator(cpu=True)
    ).fit(X, y)
    np.testing.assert_array_equal(accelerated.predict_proba(X), plain.predict_proba(X))
