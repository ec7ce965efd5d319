"""Tests of sklearn_lt._mixing (Mixup, CutMix, CMO) and the ``mixup`` parameter."""

import math
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.datasets import make_classification
from torch import nn

from sklearn_lt import LongTailClassifier, LongTailImageClassifier
from sklearn_lt._device_data import DeviceDataset
from sklearn_lt._mixing import (
    BatchMixing,
    MixedTargets,
    cmo_epochs,
    cutmix_box,
    paste_box,
)
from sklearn_lt._training import LongTailNet
from sklearn_lt.losses import (
    LOSSES,
    CrossEntropyLoss,
    LDAMLoss,
    LogitAdjustedLoss,
)
from sklearn_lt.persistence import load_model, save_model
from sklearn_lt.schedules import REWEIGHT_SCHEDULES

# --- helpers ---------------------------------------------------------------------


def _images(n=12, shape=(2, 6, 7), n_classes=3, seed=0, weights=False, device="cpu"):
    """Continuous random images (no two pixels equal) in a DeviceDataset."""
    generator = torch.Generator().manual_seed(seed)
    X = torch.rand(n, *shape, generator=generator)
    y = torch.arange(n) % n_classes
    w = torch.rand(n, generator=generator) + 0.5 if weights else None
    return DeviceDataset(
        X.to(device), y.to(device), None if w is None else w.to(device)
    )


def _started(method, data, **params):
    mixing = BatchMixing(method, **params)
    mixing.start(data)
    mixing.next_epoch()
    return mixing


def _source_rows(mixed_region, source_region):
    """For each mixed image, the row of ``source`` its region was copied from."""
    equal = (mixed_region.unsqueeze(1) == source_region.unsqueeze(0)).flatten(2)
    matches = equal.all(dim=2)
    assert bool((matches.sum(dim=1) == 1).all()), "each region has one source"
    return matches.int().argmax(dim=1)


def _pasted_mask(mixed, background):
    """Pixels (H, W) where any image or channel differs from the background."""
    return (mixed != background).any(dim=1).any(dim=0)


def _assert_rectangle(mask):
    rows = torch.nonzero(mask.any(dim=1)).flatten()
    cols = torch.nonzero(mask.any(dim=0)).flatten()
    top, bottom = int(rows.min()), int(rows.max()) + 1
    left, right = int(cols.min()), int(cols.max()) + 1
    box = torch.zeros_like(mask)
    box[top:bottom, left:right] = True
    assert torch.equal(mask, box)
    return top, bottom, left, right


# --- cmo_epochs ------------------------------------------------------------------


@pytest.mark.parametrize(
    "n_epochs, expected",
    [(200, (4, 196)), (100, (2, 98)), (50, (1, 49)), (8, (1, 7)), (2, (1, 1))],
)
def test_cmo_epochs_leave_two_percent_at_each_end(n_epochs, expected):
    assert cmo_epochs(n_epochs) == expected


def test_cmo_epochs_never_mix_with_one_epoch():
    first, stop = cmo_epochs(1)
    assert not any(first <= epoch < stop for epoch in range(1))


# --- the CutMix box --------------------------------------------------------------


@pytest.mark.parametrize("height, width", [(8, 8), (6, 11), (1, 9), (32, 32)])
def test_cutmix_box_lambda_is_one_minus_the_area_ratio(height, width):
    random_state = np.random.RandomState(0)
    for lam in np.linspace(0.0, 1.0, 41):
        box, mixed_lam = cutmix_box(height, width, lam, random_state)
        top, bottom, left, right = box
        assert 0 <= top <= bottom <= height
        assert 0 <= left <= right <= width
        area = (bottom - top) * (right - left)
        assert mixed_lam == 1.0 - area / (height * width)
        # The clipped box is at most the drawn size, rounded to whole pixels.
        ratio = math.sqrt(1.0 - lam)
        assert bottom - top <= round(ratio * height)
        assert right - left <= round(ratio * width)


def test_cutmix_box_away_from_the_edges_has_the_drawn_size():
    random_state = np.random.RandomState(3)
    sizes = set()
    for _ in range(400):
        box, mixed_lam = cutmix_box(40, 40, 0.75, random_state)
        top, bottom, left, right = box
        if min(top, left) > 0 and max(bottom, right) < 40:
            sizes.add((bottom - top, right - left))
            assert mixed_lam == 0.75  # a 20 x 20 box in 40 x 40
    assert sizes == {(20, 20)}


def test_cutmix_box_centres_are_uniform_over_the_image():
    random_state = np.random.RandomState(0)
    centres = []
    for _ in range(4000):
        (top, _, left, _), _ = cutmix_box(10, 10, 1.0, random_state)
        centres.append((top, left))  # an empty box sits at its centre
    rows, cols = np.array(centres).T
    # 400 expected per row; binomial sd sqrt(4000 * 0.1 * 0.9) = 19: 5 sd.
    for values in (rows, cols):
        assert np.all(np.abs(np.bincount(values, minlength=10) - 400) < 5 * 19)


def test_paste_box_copies_the_region_and_keeps_the_rest():
    background = torch.rand(3, 2, 5, 6)
    foreground = torch.rand(3, 2, 5, 6)
    before = background.clone(), foreground.clone()
    mixed = paste_box(background, foreground, (1, 4, 2, 6))
    inside = torch.zeros(5, 6, dtype=torch.bool)
    inside[1:4, 2:6] = True
    assert torch.equal(mixed[:, :, inside], foreground[:, :, inside])
    assert torch.equal(mixed[:, :, ~inside], background[:, :, ~inside])
    assert torch.equal(background, before[0]) and torch.equal(foreground, before[1])


# --- BatchMixing -------------------------------------------------------------------


def test_mixup_batch_is_the_convex_combination_with_a_permutation(device):
    data = _images(weights=True, device=device)
    mixing = _started("mixup", data, alpha=1.0, seed=1)
    X, (y, w) = data.batch(torch.arange(12, device=device))
    mixed, targets = mixing.mix((X, (y, w)))
    lam = targets.lam
    assert 0.0 < lam < 1.0
    assert torch.equal(targets.first[0], y) and torch.equal(targets.first[1], w)
    # Recover the partner of each example from the mixed images.
    partner = (mixed - lam * X) / (1.0 - lam)
    distances = (partner.flatten(1).unsqueeze(1) - X.flatten(1).unsqueeze(0)).abs()
    source = distances.amax(dim=2).argmin(dim=1)
    assert sorted(source.tolist()) == list(range(12))  # a permutation
    torch.testing.assert_close(mixed, lam * X + (1 - lam) * X[source])
    assert torch.equal(targets.second[0], y[source])
    assert torch.equal(targets.second[1], w[source])


def test_mixup_mixes_tabular_rows():
    data = DeviceDataset(torch.randn(10, 4), torch.arange(10) % 2)
    mixing = _started("mixup", data, seed=0)
    X, y = data.batch(torch.arange(10))
    mixed, targets = mixing.mix((X, y))
    assert mixed.shape == X.shape and not torch.equal(mixed, X)
    assert isinstance(targets, MixedTargets)


def test_cutmix_batch_pastes_a_box_from_the_permuted_batch(device):
    data = _images(n=16, weights=True, device=device)
    mixing = _started("cutmix", data, seed=2)
    for _ in range(5):
        X, (y, w) = data.batch(torch.arange(16, device=device))
        mixed, targets = mixing.mix((X, (y, w)))
        mask = _pasted_mask(mixed, X)
        if not mask.any():
            assert targets.lam == 1.0
            continue
        top, bottom, left, right = _assert_rectangle(mask)
        area = (bottom - top) * (right - left)
        assert targets.lam == 1.0 - area / (6 * 7)
        source = _source_rows(
            mixed[:, :, top:bottom, left:right], X[:, :, top:bottom, left:right]
        )
        assert sorted(source.tolist()) == list(range(16))
        assert torch.equal(mixed[:, :, ~mask], X[:, :, ~mask])
        assert torch.equal(targets.second[0], y[source])
        assert torch.equal(targets.second[1], w[source])
        assert torch.equal(targets.first[0], y)


def _cmo_data(device="cpu"):
    # Class sizes 300, 60, 12, 3 (imbalance ratio 100).
    y = torch.repeat_interleave(torch.arange(4), torch.tensor([300, 60, 12, 3]))
    X = torch.rand(y.numel(), 1, 5, 5)
    return DeviceDataset(X.to(device), y.to(device))


def test_cmo_foreground_draw_is_class_balanced(device):
    data = _cmo_data(device)
    mixing = _started("cmo", data, seed=0)
    n_draws = 40_000
    index = mixing.balanced_indices(n_draws)
    counts = torch.bincount(data.y[index], minlength=4).cpu().numpy()
    # Each draw's class is uniform over 4 classes: counts are Binomial(N, 1/4)
    # with sd sqrt(N * 3/16) = 87; 5 sd (433, about 4% of N/4) bounds a false
    # failure to 6e-7 per class. The training class shares are 80/16/3/1%.
    assert np.all(np.abs(counts - n_draws / 4) < 5 * math.sqrt(n_draws * 3 / 16))
    # Within a class, every example is equally likely: the 3 tail examples.
    tail = index[data.y[index] == 3]
    tail_counts = torch.bincount(tail - 372, minlength=3).cpu().numpy()
    n_tail = tail.numel()
    sd = math.sqrt(n_tail * (1 / 3) * (2 / 3))
    assert np.all(np.abs(tail_counts - n_tail / 3) < 5 * sd)


def test_cmo_pastes_class_balanced_foreground_on_the_batch(device):
    data = _cmo_data(device)
    mixing = _started("cmo", data, n_epochs=100, seed=0)
    mixing.next_epoch()  # epoch 1 of 100: outside CMO's epochs (0, 1 are off)
    mixing.next_epoch()  # epoch 2: inside
    mixed_batches, second_labels = 0, []
    for _ in range(200):
        order = torch.randperm(data.y.numel(), device=device)[:32]
        X, y = data.batch(order)
        result = mixing.mix((X, y))
        if result[0] is X:
            continue
        mixed, targets = result
        mixed_batches += 1
        assert torch.equal(targets.first, y)
        mask = _pasted_mask(mixed, X)
        if not mask.any():
            assert targets.lam == 1.0
            continue
        top, bottom, left, right = _assert_rectangle(mask)
        assert targets.lam == 1.0 - (bottom - top) * (right - left) / 25
        assert torch.equal(mixed[:, :, ~mask], X[:, :, ~mask])
        # The pasted pixels come from rows of the training data (not the batch),
        # whose labels are the second targets.
        source = _source_rows(
            mixed[:, :, top:bottom, left:right],
            data.X[:, :, top:bottom, left:right],
        )
        assert torch.equal(targets.second, data.y[source])
        second_labels.append(targets.second)
    # Half of 200 batches with sd sqrt(200 / 4) = 7.1: 5 sd.
    assert abs(mixed_batches - 100) < 5 * 7.1
    labels = torch.cat(second_labels)
    # The foreground's tail share is about 1/4, against 1% of the training rows.
    assert 0.15 < float((labels == 3).double().mean()) < 0.35


def test_cmo_is_off_outside_its_epochs():
    data = _cmo_data()
    mixing = BatchMixing("cmo", n_epochs=10, seed=0)
    mixing.start(data)
    X, y = data.batch(torch.arange(32))
    first, stop = cmo_epochs(10)
    mixed_epochs = set()
    for epoch in range(10):
        mixing.next_epoch()
        for _ in range(20):
            if mixing.mix((X, y))[0] is not X:
                mixed_epochs.add(epoch)
    assert mixed_epochs == set(range(first, stop)) == set(range(1, 9))


def test_mixing_leaves_batches_alone_when_off_or_not_started():
    data = _images()
    batch = data.batch(torch.arange(4))
    assert BatchMixing(None).mix(batch) is batch
    assert BatchMixing("mixup").mix(batch) is batch  # not started
    mixing = _started("mixup", data)
    mixing.release()
    assert mixing.mix(batch) is batch


@pytest.mark.parametrize("method", ["mixup", "cutmix", "cmo"])
def test_mixing_is_reproducible_from_its_seed(method):
    data = _cmo_data()

    def draws(seed):
        mixing = BatchMixing(method, n_epochs=10, seed=seed)
        mixing.start(data)
        mixing.next_epoch()
        mixing.next_epoch()
        out = []
        for _ in range(6):
            X, y = data.batch(torch.arange(0, 375, 12))
            out.append(mixing.mix((X, y))[0])
        return torch.stack(out)

    assert torch.equal(draws(5), draws(5))
    assert not torch.equal(draws(5), draws(6))


@pytest.mark.parametrize("method", ["cutmix", "cmo"])
def test_image_methods_refuse_tabular_input(method):
    mixing = BatchMixing(method)
    with pytest.raises(ValueError, match="images"):
        mixing.start(DeviceDataset(torch.zeros(4, 3), torch.tensor([0, 1, 0, 1])))


# --- the mixed loss ----------------------------------------------------------------


def _net(criterion, **params):
    return LongTailNet(
        module=nn.Linear(3, 4), criterion=criterion, train_split=None, **params
    ).initialize()


def _weighted_ce(logits, target, weight, class_weight):
    """Weighted mean of cross-entropies, in numpy float64."""
    z = logits.astype(np.float64)
    top = z.max(axis=1, keepdims=True)
    log_p = z - top - np.log(np.exp(z - top).sum(axis=1, keepdims=True))
    losses = -log_p[np.arange(len(target)), target]
    w = weight * class_weight[target]
    return float((w * losses).sum() / w.sum()), losses


def _case(seed=0, n=9):
    rng = np.random.RandomState(seed)
    logits = rng.randn(n, 4).astype(np.float32)
    a, b = rng.randint(0, 4, n), rng.randint(0, 4, n)
    wa, wb = rng.rand(n) + 0.2, rng.rand(n) + 0.2
    return logits, a, b, wa, wb


def _targets(a, b, wa=None, wb=None, lam=0.3):
    def pair(y, w):
        y = torch.as_tensor(y)
        return y if w is None else (y, torch.as_tensor(w, dtype=torch.float32))

    return MixedTargets(pair(a, wa), pair(b, wb), lam)


def test_mixed_loss_is_the_lambda_mix_of_the_two_hard_losses():
    logits, a, b, _, _ = _case()
    net = _net(CrossEntropyLoss())
    loss = net.get_loss(torch.as_tensor(logits), _targets(a, b), training=True)
    ones = np.ones(len(a))
    expected = 0.3 * _weighted_ce(logits, a, ones, np.ones(4))[0]
    expected += 0.7 * _weighted_ce(logits, b, ones, np.ones(4))[0]
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_mixed_loss_keeps_each_terms_class_and_sample_weights():
    logits, a, b, wa, wb = _case(1)
    class_weight = np.array([0.5, 1.0, 2.0, 4.0])
    net = _net(CrossEntropyLoss(weight=torch.tensor(class_weight)))
    loss = net.get_loss(
        torch.as_tensor(logits), _targets(a, b, wa, wb, lam=0.65), training=True
    )
    expected = 0.65 * _weighted_ce(logits, a, wa, class_weight)[0]
    expected += 0.35 * _weighted_ce(logits, b, wb, class_weight)[0]
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_mixed_ldam_loss_applies_each_targets_margin_in_its_own_term():
    counts = [100, 30, 8, 2]
    logits, a, b, wa, wb = _case(2)
    cosines = np.tanh(logits)  # LDAM's outputs are cosines
    criterion = LDAMLoss(counts, max_margin=0.5, scale=10.0)
    net = _net(criterion)
    loss = net.get_loss(
        torch.as_tensor(cosines), _targets(a, b, wa, wb, lam=0.4), training=True
    )
    margins = np.power(counts, -0.25)
    margins = 0.5 * margins / margins.max()

    def ldam(target, weight):
        z = cosines.astype(np.float64).copy()
        z[np.arange(len(target)), target] -= margins[target]
        return _weighted_ce(10.0 * z, target, weight, np.ones(4))[0]

    expected = 0.4 * ldam(a, wa) + 0.6 * ldam(b, wb)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_mixed_logit_adjusted_loss_adds_the_prior_in_both_terms():
    counts = np.array([100, 30, 8, 2])
    logits, a, b, _, _ = _case(3)
    net = _net(LogitAdjustedLoss(counts, tau=1.0))
    loss = net.get_loss(torch.as_tensor(logits), _targets(a, b, lam=0.2))
    adjusted = logits + np.log(counts / counts.sum())
    ones = np.ones(len(a))
    expected = 0.2 * _weighted_ce(adjusted, a, ones, np.ones(4))[0]
    expected += 0.8 * _weighted_ce(adjusted, b, ones, np.ones(4))[0]
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_mixed_loss_with_sample_attention_weights_each_term_by_its_own_losses():
    logits, a, b, wa, wb = _case(4)
    class_weight = np.array([1.0, 2.0, 0.5, 1.5])
    temperature = 0.7
    criterion = CrossEntropyLoss(weight=torch.tensor(class_weight))
    net = _net(criterion, sample_attention=temperature)
    loss = net.get_loss(
        torch.as_tensor(logits), _targets(a, b, wa, wb, lam=0.55), training=True
    )

    def attended(target, weight):
        _, losses = _weighted_ce(logits, target, weight, class_weight)
        scores = class_weight[target] * losses / temperature
        p = np.exp(scores - scores.max())
        p /= p.sum()
        w = weight * class_weight[target]
        return (p * w * losses).sum() / (p * w).sum()

    expected = 0.55 * attended(a, wa) + 0.45 * attended(b, wb)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_mixed_loss_gradient_is_the_lambda_mix_of_the_gradients():
    logits, a, b, _, _ = _case(5)
    net = _net(CrossEntropyLoss())
    z = torch.as_tensor(logits, dtype=torch.float64).requires_grad_()
    net.get_loss(z, _targets(a, b, lam=0.25)).backward()
    expected = 0.25 * (torch.softmax(z, 1) - nn.functional.one_hot(torch.tensor(a), 4))
    expected += 0.75 * (torch.softmax(z, 1) - nn.functional.one_hot(torch.tensor(b), 4))
    torch.testing.assert_close(z.grad, expected.detach() / len(a))


# --- the classifiers ---------------------------------------------------------------


def _tabular(n=90, seed=0):
    X, y = make_classification(
        n, 6, n_informative=4, n_classes=3, weights=[0.6, 0.3, 0.1],
        random_state=seed,
    )  # fmt: skip
    return X.astype(np.float32), y


def _small_images(n=60, seed=0):
    rng = np.random.RandomState(seed)
    y = np.repeat([0, 1, 2], [36, 16, 8])[:n]
    X = rng.rand(len(y), 1, 6, 6).astype(np.float32)
    X[np.arange(len(y)), 0, y, y] += 2.0  # a learnable pixel per class
    return X, y


FAST_TABULAR = {"max_epochs": 3, "batch_size": 16, "random_state": 0}
FAST_IMAGES = {
    "architecture": "cnn",
    "max_epochs": 3,
    "batch_size": 16,
    "random_state": 0,
}


class _CountingMixing(BatchMixing):
    """Counts the batches it is given and those it mixes."""

    calls = 0
    mixed = 0

    def mix(self, batch, augment=None):
        out = super().mix(batch, augment)
        type(self).calls += 1
        type(self).mixed += isinstance(out[1], MixedTargets)
        return out


@pytest.fixture
def counting(monkeypatch):
    _CountingMixing.calls = _CountingMixing.mixed = 0
    monkeypatch.setattr("sklearn_lt.classifiers._base.BatchMixing", _CountingMixing)
    return _CountingMixing


def _fit(method, loss, schedule=None, **params):
    images = params.pop("images", False)
    if method in (None, "mixup") and not images:
        X, y = _tabular()
        clf = LongTailClassifier(
            mixup=method, loss=loss, reweight_schedule=schedule,
            **{**FAST_TABULAR, **params},
        )  # fmt: skip
    else:
        X, y = _small_images()
        clf = LongTailImageClassifier(
            mixup=method, loss=loss, reweight_schedule=schedule,
            **{**FAST_IMAGES, **params},
        )  # fmt: skip
    return clf.fit(X, y), X, y


def _check_fitted(clf, X):
    assert np.isfinite(clf.history_[:, "train_loss"]).all()
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("method", ["mixup", "cutmix", "cmo"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_loss_trains_with_every_mixing(counting, loss, method):
    clf, X, _ = _fit(method, loss, images=method != "mixup")
    _check_fitted(clf, X)
    assert counting.mixed > 0


@pytest.mark.parametrize("method", ["mixup", "cutmix", "cmo"])
@pytest.mark.parametrize("schedule", sorted(REWEIGHT_SCHEDULES))
def test_every_schedule_trains_with_every_mixing(counting, schedule, method):
    clf, X, _ = _fit(method, "ce", schedule, images=method != "mixup")
    _check_fitted(clf, X)
    assert counting.mixed > 0


def test_mixing_with_sample_weight_sam_and_attention(counting):
    X, y = _tabular()
    weight = np.random.RandomState(0).rand(len(y)) + 0.1
    clf = LongTailClassifier(
        mixup="mixup", optimizer="sam", sample_attention=2.0, **FAST_TABULAR
    ).fit(X, y, sample_weight=weight)
    _check_fitted(clf, X)
    # SAM's two passes share one mixed batch: one mix per step.
    steps = sum(len(row["batches"]) for row in clf.history_)
    assert counting.calls == counting.mixed == steps


@pytest.mark.parametrize("method", [None, "mixup", "cutmix", "cmo"])
def test_validation_and_prediction_are_never_mixed(counting, method):
    X, y = _small_images(seed=1)
    clf = LongTailImageClassifier(
        mixup=method, validation_fraction=0.25, **FAST_IMAGES
    ).fit(X, y)
    train_batches = sum(
        sum("train_loss" in batch for batch in row["batches"]) for row in clf.history_
    )
    assert counting.calls == train_batches  # one call per training step
    calls = counting.calls
    proba = clf.predict_proba(X)
    assert counting.calls == calls
    # A prediction does not depend on the other rows of its batch.
    single = np.vstack([clf.predict_proba(X[i : i + 1]) for i in range(5)])
    np.testing.assert_allclose(single, proba[:5], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["mixup", "cutmix", "cmo"])
def test_mixing_fits_are_reproducible_with_random_state(method):
    images = method != "mixup"
    first, X, _ = _fit(method, "ce", images=images, max_epochs=4)
    second, _, _ = _fit(method, "ce", images=images, max_epochs=4)
    other, _, _ = _fit(method, "ce", images=images, max_epochs=4, random_state=1)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    plain, _, _ = (
        _fit(None, "ce", images=True, max_epochs=4)
        if images
        else _fit(None, "ce", max_epochs=4)
    )
    assert not np.allclose(first.predict_proba(X), other.predict_proba(X))
    # Mixing changes what is learned.
    assert not np.allclose(first.predict_proba(X), plain.predict_proba(X))


@pytest.mark.parametrize("method", ["cutmix", "cmo"])
def test_image_mixing_with_the_tabular_classifier_raises(method):
    X, y = _tabular()
    clf = LongTailClassifier(mixup=method, **FAST_TABULAR)
    with pytest.raises(ValueError, match="LongTailImageClassifier"):
        clf.fit(X, y)
    assert not hasattr(clf, "classes_")


@pytest.mark.parametrize(
    "params", [{"mixup": "manifold"}, {"mixup_alpha": 0.0}, {"mixup_alpha": -1.0}]
)
def test_invalid_mixing_parameters_raise(params):
    X, y = _tabular()
    with pytest.raises(ValueError):
        LongTailClassifier(**params, **FAST_TABULAR).fit(X, y)


def test_mixup_alpha_sets_the_beta_distribution():
    data = _images()
    lams = {}
    for alpha in (0.2, 5.0):
        mixing = _started("mixup", data, alpha=alpha, seed=0)
        batch = data.batch(torch.arange(12))
        lams[alpha] = np.array([mixing.mix(batch)[1].lam for _ in range(400)])
    # Beta(a, a) has variance 1 / (4 (2a + 1)): 0.179 for 0.2 and 0.023 for 5.
    assert lams[0.2].var() == pytest.approx(1 / (4 * 1.4), rel=0.2)
    assert lams[5.0].var() == pytest.approx(1 / (4 * 11), rel=0.2)


def test_warm_start_follows_the_new_mixing_parameters(counting):
    X, y = _small_images()
    clf = LongTailImageClassifier(warm_start=True, **FAST_IMAGES).fit(X, y)
    assert counting.mixed == 0
    clf.set_params(mixup="cutmix", mixup_alpha=0.5, max_epochs=2)
    clf.fit(X, y)
    assert counting.mixed > 0
    assert clf.net_.mixing.method == "cutmix" and clf.net_.mixing.alpha == 0.5
    assert clf.net_.mixing.n_epochs == 2


def test_default_image_fit_mixes_with_cmo_and_a_warm_fit_follows_mixup(counting):
    X, y = _small_images()
    X = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))  # 8 x 8: "auto" mixes
    params = {key: value for key, value in FAST_IMAGES.items() if key != "max_epochs"}
    clf = LongTailImageClassifier(max_epochs=10, warm_start=True, **params)
    clf.fit(X, y)
    assert clf.mixup_ == "cmo" and counting.mixed > 0
    mixed = counting.mixed
    clf.set_params(mixup=None, max_epochs=2).fit(X, y)
    assert clf.mixup_ is None and counting.mixed == mixed


def test_saved_and_loaded_model_keeps_the_resolved_mixing(tmp_path):
    X, y = _small_images()
    X = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))
    clf = LongTailImageClassifier(**FAST_IMAGES).fit(X, y)
    path = tmp_path / "model"
    save_model(clf, path)
    loaded = load_model(path)
    assert loaded.mixup == "auto" and loaded.mixup_ == "cmo"


def test_fitted_model_does_not_keep_the_training_data():
    clf, X, _ = _fit("cmo", "ce", images=True)
    mixing = clf.net_.mixing
    assert mixing._data is None and mixing._balanced_weights is None
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))


def test_saved_and_loaded_model_keeps_its_mixing_parameters(tmp_path):
    clf, X, _ = _fit("cmo", "ldam", "drw", images=True, mixup_alpha=0.4)
    path = tmp_path / "model"
    save_model(clf, path)
    loaded = load_model(path)
    assert loaded.get_params()["mixup"] == "cmo"
    assert loaded.get_params()["mixup_alpha"] == 0.4
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X))


def test_mixing_refuses_sparse_input_with_a_clear_error():
    X, y = make_classification(n_samples=60, n_features=6, random_state=0)
    with pytest.raises(ValueError, match="cannot mix sparse input"):
        LongTailClassifier(mixup="mixup", max_epochs=1).fit(sp.csr_matrix(X), y)


# --- Augmentation before mixing -------------------------------------------------------


def _flip(images):
    """A deterministic augmentation that does not commute with pasting a box."""
    return torch.flip(images, dims=(3,))


@pytest.mark.parametrize("method", ["mixup", "cutmix", "cmo"])
def test_mix_augments_each_source_before_mixing(method):
    # The same random draws on pre-flipped data: mixing flipped sources, not
    # flipping the mixture (which would move CutMix's box and its label share).
    data = _images()
    flipped = DeviceDataset(_flip(data.X), data.y)
    mixing = _started(method, data, seed=3)
    twin = _started(method, flipped, seed=3)
    mixing._epoch = twin._epoch = cmo_epochs(1)[0]  # inside CMO's epochs
    rows = torch.arange(8)
    for _ in range(4):  # CMO mixes about every other batch
        X, targets = mixing.mix(data.batch(rows), augment=_flip)
        X_twin, targets_twin = twin.mix(flipped.batch(rows))
        if not isinstance(targets, MixedTargets):  # unmixed: not augmented here
            assert not isinstance(targets_twin, MixedTargets)
            assert torch.equal(X, data.X[rows])
            continue
        assert torch.equal(X, X_twin)
        assert targets.lam == targets_twin.lam


class _CountingFlip(nn.Module):
    calls = 0

    def forward(self, images):
        type(self).calls += 1
        return _flip(images)


@pytest.mark.parametrize("method", ["cutmix", "cmo"])
def test_a_mixed_batch_is_augmented_once_per_source(counting, method, monkeypatch):
    # CutMix: the batch once (its partner is a permutation of it), and the
    # network does not augment the mixture again; CMO: the batch and its
    # class-balanced partner; an unmixed batch once, in the network.
    _CountingFlip.calls = 0
    monkeypatch.setattr(
        LongTailImageClassifier, "_training_augmentation", lambda self: _CountingFlip()
    )
    clf, _, _ = _fit(method, "ce", images=True, max_epochs=60)
    batches = sum(clf.history_[:, "train_batch_count"])
    assert counting.calls == batches and counting.mixed > 0
    per_mixed_batch = 2 if method == "cmo" else 1
    expected = batches + (per_mixed_batch - 1) * counting.mixed
    assert _CountingFlip.calls == expected
