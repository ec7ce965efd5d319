"""The training recipe of the classifiers: budget, schedules, early stopping, counts.

Each test here failed on the code before its fix (the "silent wrong results"
of the out-of-the-box accuracy review).
"""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.utils._param_validation import InvalidParameterError
from torch import nn

from sklearn_lt import LongTailClassifier
from sklearn_lt._device_data import stratified_holdout
from sklearn_lt._training import BalancedAccuracyScoring
from sklearn_lt.modules import NormedLinear
from sklearn_lt.schedules import WarmupStepDecay, auto_epochs, warmup_length

SMALL = {"hidden_layer_sizes": (8,), "batch_size": 16, "random_state": 0}


def _data(n_samples=80, weights=None, seed=0):
    return make_classification(
        n_samples=n_samples,
        n_features=4,
        n_informative=3,
        n_redundant=0,
        n_classes=3,
        weights=weights,
        random_state=seed,
    )


# --- Training budget ------------------------------------------------------------------


def test_auto_epochs_counts_optimizer_steps():
    # ~4000 steps, between 20 and 200 epochs.
    assert auto_epochs(300, 128) == 200  # 3 steps per epoch: capped
    assert auto_epochs(12_800, 128) == 40  # 100 steps per epoch
    assert auto_epochs(10**6, 128) == 20  # large data: the floor
    assert auto_epochs(10**6, 128, target_steps=10, epoch_bounds=(1, 5)) == 1


def test_auto_budget_is_resolved_per_fit_and_integers_stay_exact():
    X, y = _data(n_samples=160)
    clf = LongTailClassifier(**SMALL).fit(X, y)
    assert clf.max_epochs == "auto"
    assert clf.max_epochs_ == auto_epochs(160, 16) == len(clf.history_)
    exact = LongTailClassifier(max_epochs=7, **SMALL).fit(X, y)
    assert exact.max_epochs_ == 7 == len(exact.history_)


# --- Short runs -----------------------------------------------------------------------


def test_warmup_takes_at_most_a_quarter_of_training():
    assert warmup_length(200, 5) == 5
    assert warmup_length(5, 5) == 1
    assert warmup_length(2, 5) == 0


@pytest.mark.parametrize(
    ("max_epochs", "expected"),
    [
        # 1 warm-up epoch at 1/1, full rate, x0.01 at epoch 4.
        (5, [1.0, 1.0, 1.0, 1.0, 0.01]),
        # Both decays fit, one epoch apart; never straight to x0.0001.
        (6, [1.0, 1.0, 1.0, 1.0, 1.0, 0.01]),
        (10, [0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.01, 0.0001]),
    ],
)
def test_short_step_schedules_still_warm_up_and_decay(max_epochs, expected):
    X, y = _data()
    clf = LongTailClassifier(
        max_epochs=max_epochs, lr=0.1, lr_schedule="step", **SMALL
    ).fit(X, y)
    np.testing.assert_allclose(clf.history_[:, "lr"], 0.1 * np.array(expected))


def test_short_cosine_schedule_warms_up_then_decays():
    X, y = _data()
    clf = LongTailClassifier(max_epochs=4, lr=0.1, **SMALL).fit(X, y)
    assert clf.lr_schedule == "cosine"
    lr = clf.history_[:, "lr"]
    # 1 warm-up epoch (a quarter of 4), then the full rate, decaying.
    assert lr[0] == pytest.approx(0.1) and lr[1] == pytest.approx(0.1)
    assert np.all(np.diff(lr[1:]) < 0) and lr[-1] > 0


def test_warm_start_runs_a_new_cycle_of_the_schedule():
    X, y = _data()
    clf = LongTailClassifier(max_epochs=4, lr=0.1, warm_start=True, **SMALL)
    clf.fit(X, y).set_params(max_epochs=3).fit(X, y)
    lr = clf.history_[:, "lr"]
    assert len(lr) == 7
    # The cosine ended below the full rate; the warm fit starts over at it.
    assert lr[3] < 0.05
    np.testing.assert_allclose(lr[4:], [0.1, 0.075, 0.025])


def test_step_milestones_stay_inside_training():
    assert WarmupStepDecay.for_training(200, 5).milestones == (160, 180)
    assert WarmupStepDecay.for_training(3, 0).milestones == (2,)
    assert WarmupStepDecay.for_training(1, 0).milestones == ()


# --- Early stopping -------------------------------------------------------------------


def test_early_stopping_waits_for_the_deferred_phase_and_the_last_decay():
    X, y = _data(n_samples=200, weights=[0.7, 0.2, 0.1])
    clf = LongTailClassifier(
        loss="ldam",
        reweight_schedule="drw",
        lr_schedule="step",
        max_epochs=40,
        validation_fraction=0.3,
        n_iter_no_change=2,
        **SMALL,
    ).fit(X, y)
    # Re-weighting starts at epoch 32 (0.8 x 40); the last decay at epoch 36.
    assert len(clf.history_) >= 36 + 2
    assert any(clf.history_[:, "rebalancing"])
    assert clf.history_[-1, "lr"] == pytest.approx(clf.lr * 1e-4)


def test_validation_scores_what_predict_returns():
    # Outputs favour class 0; the post-hoc offset moves both rows to class 1.
    net = type("Net", (), {"history": None})()
    records = {}
    net.history = type("H", (), {"record": lambda self, k, v: records.update({k: v})})()
    outputs = torch.tensor([[1.0, 0.5], [1.0, 0.8]])
    target = torch.tensor([1, 1])
    for offset, expected in ((None, 0.0), (torch.tensor([0.0, 1.0]), 1.0)):
        scoring = BalancedAccuracyScoring(2, offset=offset)
        scoring.on_epoch_begin(net)
        scoring.on_batch_end(net, (None, target), training=False, y_pred=outputs)
        scoring.on_epoch_end(net)
        assert records["valid_balanced_accuracy"] == expected


def test_early_stopping_with_posthoc_tau_selects_on_adjusted_predictions():
    X, y = _data(n_samples=200, weights=[0.8, 0.15, 0.05])
    params = {
        "loss": "ce",
        "validation_fraction": 0.3,
        "max_epochs": 12,
        "lr_schedule": "constant",
        "warmup_epochs": 0,
        **SMALL,
    }
    clf = LongTailClassifier(posthoc_tau=1.0, **params).fit(X, y)
    # Re-score the validation rows from the stored split with predict().
    seeds = np.random.RandomState(0).randint(0, 2**31 - 1, size=3)
    _, valid = stratified_holdout(y, 0.3, np.random.RandomState(seeds[1]))
    best = int(np.argmax(clf.history_[:, "valid_balanced_accuracy"]))
    from sklearn.metrics import balanced_accuracy_score

    assert balanced_accuracy_score(y[valid], clf.predict(X[valid])) == pytest.approx(
        clf.history_[best, "valid_balanced_accuracy"]
    )


# --- Class counts ---------------------------------------------------------------------


def test_class_counts_are_weighted_by_sample_weight():
    X, y = _data()
    sample_weight = np.where(y == 0, 3.0, 1.0)
    clf = LongTailClassifier(max_epochs=1, **SMALL).fit(X, y, sample_weight)
    expected = np.bincount(y) * np.array([3.0, 1.0, 1.0])
    np.testing.assert_allclose(clf.class_counts_, expected)
    log_prior = np.log(expected / expected.sum())
    np.testing.assert_allclose(
        clf.net_.criterion_.log_prior.numpy(), log_prior, rtol=1e-6
    )


def test_input_statistics_are_weighted_like_repeated_rows():
    X, y = _data()
    weights = np.arange(80) % 3  # 0, 1 and 2 copies
    weighted = LongTailClassifier(max_epochs=1, **SMALL).fit(X, y, weights)
    X_rep, y_rep = np.repeat(X, weights, axis=0), np.repeat(y, weights)
    repeated = LongTailClassifier(max_epochs=1, **SMALL).fit(X_rep, y_rep)
    for name in ("mean", "scale"):
        np.testing.assert_allclose(
            getattr(weighted.net_.module_, name).numpy(),
            getattr(repeated.net_.module_, name).numpy(),
            rtol=1e-6,
        )
    np.testing.assert_allclose(weighted.class_counts_, repeated.class_counts_)


def test_all_zero_sample_weight_is_refused():
    X, y = _data()
    with pytest.raises(ValueError, match="at least one non-zero"):
        LongTailClassifier(max_epochs=1).fit(X, y, np.zeros(len(y)))


def test_counts_and_statistics_come_from_the_training_rows_only():
    X, y = _data(n_samples=120)
    X = X + np.arange(120)[:, None] * 0.1  # rows differ in mean
    clf = LongTailClassifier(max_epochs=1, validation_fraction=0.25, **SMALL)
    clf.fit(X, y)
    seeds = np.random.RandomState(0).randint(0, 2**31 - 1, size=3)
    train, _ = stratified_holdout(y, 0.25, np.random.RandomState(seeds[1]))
    np.testing.assert_array_equal(clf.class_counts_, np.bincount(y[train]))
    mean = clf.net_.module_.mean.numpy()
    np.testing.assert_allclose(mean, X[train].mean(axis=0), rtol=1e-5, atol=1e-5)


# --- Losses and heads -----------------------------------------------------------------


class _PlainHead(nn.Module):
    def __init__(self, n_features, n_classes):
        super().__init__()
        self.head = nn.Linear(n_features, n_classes)

    def forward(self, X):
        return self.head(X)


def test_ldam_refuses_a_module_without_a_cosine_head():
    X, y = _data()
    clf = LongTailClassifier(loss="ldam", module=_PlainHead, max_epochs=1)
    with pytest.raises(ValueError, match="cosine"):
        clf.fit(X, y)


def test_posthoc_tau_must_be_non_negative():
    X, y = _data()
    with pytest.raises(InvalidParameterError, match="posthoc_tau"):
        LongTailClassifier(posthoc_tau=-1.0, max_epochs=1).fit(X, y)


@pytest.mark.parametrize("loss", ["logit_adjusted", "balanced_softmax", "vs"])
def test_posthoc_tau_refuses_to_adjust_a_prior_aware_loss_twice(loss):
    X, y = _data()
    with pytest.raises(ValueError, match="double-counts"):
        LongTailClassifier(loss=loss, posthoc_tau=1.0, max_epochs=1).fit(X, y)
    clf = LongTailClassifier(loss=loss, max_epochs=1, **SMALL).fit(X, y)
    clf.set_params(posthoc_tau=1.0)
    with pytest.raises(ValueError, match="double-counts"):
        clf.predict(X)
    # Plain CE, and LA with tau=0 (which is CE), take it.
    LongTailClassifier(loss="ce", posthoc_tau=1.0, max_epochs=1).fit(X, y).predict(X)


def test_tau_norm_drops_the_bias():
    X, y = _data()
    clf = LongTailClassifier(loss="ce", max_epochs=2, **SMALL).fit(X, y)
    with torch.no_grad():
        clf.net_.module_.network.head.bias.add_(100.0 * torch.tensor([1.0, 0, 0]))
    assert (clf.predict(X) == 0).all()  # the bias decides
    clf.set_params(tau_norm=1.0)
    assert not (clf.predict(X) == 0).all()  # ignored by the tau-normalized head


def test_normed_linear_starts_with_unit_class_vectors():
    torch.manual_seed(0)
    norms = NormedLinear(64, 10).weight.norm(dim=1)
    torch.testing.assert_close(norms, torch.ones(10))
