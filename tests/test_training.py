"""Tests of sklearn_lt._training: the skorch net and its monitoring callbacks."""

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score
from skorch.callbacks import Callback
from skorch.history import History
from torch import nn

from sklearn_lt._device_data import DeviceDataset, TensorBatchIterator
from sklearn_lt._training import (
    BalancedAccuracyScoring,
    FiniteLossCheck,
    GradientNormClipping,
    LongTailNet,
    NonFiniteLossError,
    PredefinedSplit,
    clip_gradient_norm,
    sample_attention_loss,
)
from sklearn_lt.losses import CrossEntropyLoss, FocalLoss


def _initialized_net(criterion, n_features=3, n_classes=4):
    net = LongTailNet(
        module=nn.Linear(n_features, n_classes),
        criterion=criterion,
        train_split=None,
        max_epochs=1,
    )
    return net.initialize()


def _batch(n=10, n_classes=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, n_classes, generator=generator)
    target = torch.randint(0, n_classes, (n,), generator=generator)
    weight = torch.rand(n, generator=generator) * 2
    return logits, target, weight


# --- LongTailNet.get_loss -------------------------------------------------------


def test_get_loss_without_sample_weight_is_the_criterion_mean():
    net = _initialized_net(CrossEntropyLoss())
    logits, target, _ = _batch()
    loss = net.get_loss(logits, target)
    assert loss.ndim == 0
    torch.testing.assert_close(loss, F.cross_entropy(logits, target))


@pytest.mark.parametrize("container", [tuple, list])
def test_get_loss_with_sample_weight_is_the_weighted_mean(container):
    net = _initialized_net(CrossEntropyLoss())
    logits, target, weight = _batch()
    loss = net.get_loss(logits, container((target, weight)))
    per_example = F.cross_entropy(logits, target, reduction="none")
    expected = (weight * per_example).sum() / weight.sum()
    torch.testing.assert_close(loss, expected)
    # The weights matter: the unweighted mean is a different number.
    assert not torch.allclose(loss, per_example.mean())


def test_get_loss_zero_sample_weight_drops_examples():
    net = _initialized_net(FocalLoss(gamma=2.0))
    logits, target, _ = _batch(n=6)
    weight = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    weighted = net.get_loss(logits, (target, weight))
    kept = net.get_loss(logits[:3], target[:3])
    torch.testing.assert_close(weighted, kept)


def test_get_loss_multiplies_class_and_sample_weights():
    class_weight = torch.tensor([0.5, 1.0, 2.0, 3.0])
    net = _initialized_net(CrossEntropyLoss(weight=class_weight))
    logits, target, weight = _batch(seed=3)
    loss = net.get_loss(logits, (target, weight))
    per_example = F.cross_entropy(logits, target, reduction="none")
    w = class_weight[target] * weight
    torch.testing.assert_close(loss, (w * per_example).sum() / w.sum())


def test_get_loss_sample_weights_reach_training():
    """A net fitted on a weighted DeviceDataset records the weighted loss."""
    torch.manual_seed(0)
    X = torch.randn(8, 3)
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    weight = torch.tensor([1.0, 0.0, 2.0, 0.5, 3.0, 1.0, 0.0, 1.0])
    module = nn.Linear(3, 4)
    net = LongTailNet(
        module=module,
        criterion=CrossEntropyLoss(),
        optimizer=torch.optim.SGD,
        lr=0.0,
        batch_size=8,
        max_epochs=1,
        train_split=None,
        iterator_train=TensorBatchIterator,
        iterator_valid=TensorBatchIterator,
    )
    net.fit(DeviceDataset(X, y, weight), None)
    with torch.no_grad():
        per_example = F.cross_entropy(module(X), y, reduction="none")
    expected = ((weight * per_example).sum() / weight.sum()).item()
    assert net.history[-1, "train_loss"] == pytest.approx(expected, rel=1e-5)
    assert net.history[-1, "train_loss"] != pytest.approx(per_example.mean().item())


# --- BalancedAccuracyScoring ----------------------------------------------------


def _fake_net():
    history = History()
    history.new_epoch()
    history.record("epoch", 1)
    return SimpleNamespace(history=history, lr=0.1)


def _sklearn_balanced_accuracy(y_true, y_pred):
    with warnings.catch_warnings():
        # y_pred may contain classes absent from y_true; sklearn warns and
        # ignores them, which is also what the callback does.
        warnings.simplefilter("ignore")
        return balanced_accuracy_score(y_true, y_pred)


@pytest.mark.parametrize("weighted_targets", [False, True])
def test_balanced_accuracy_from_batches_matches_sklearn(weighted_targets):
    rng = np.random.RandomState(0)
    n_classes = 5
    # Class 4 never appears in the validation targets but is predicted.
    y_true = rng.choice(4, size=57, p=[0.6, 0.25, 0.1, 0.05])
    logits = torch.as_tensor(rng.normal(size=(57, n_classes)))
    logits[torch.arange(57), torch.as_tensor(y_true)] += 1.0
    y_pred = logits.argmax(dim=1).numpy()
    assert (y_pred == 4).any() and (y_pred != y_true).any()

    callback = BalancedAccuracyScoring(n_classes)
    net = _fake_net()
    callback.on_epoch_begin(net)
    # A training batch with all-wrong predictions is ignored.
    wrong = torch.zeros(5, n_classes)
    wrong[:, 4] = 10.0
    callback.on_batch_end(
        net,
        batch=(torch.zeros(5, 2), torch.zeros(5, dtype=torch.int64)),
        training=True,
        y_pred=wrong,
    )
    for start in range(0, 57, 10):  # uneven batches
        target = torch.as_tensor(y_true[start : start + 10])
        if weighted_targets:
            target = (target, torch.rand(target.shape[0]))
        callback.on_batch_end(
            net,
            batch=(None, target),
            training=False,
            y_pred=logits[start : start + 10],
        )
    callback.on_epoch_end(net)
    recorded = net.history[-1, "valid_balanced_accuracy"]
    assert recorded == pytest.approx(_sklearn_balanced_accuracy(y_true, y_pred))
    assert isinstance(recorded, float)


def test_balanced_accuracy_resets_every_epoch():
    callback = BalancedAccuracyScoring(2)
    target = torch.tensor([0, 0, 1, 1])
    all_right = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    all_class_0 = torch.tensor([[1.0, 0.0]] * 4)
    net = _fake_net()
    for y_pred, expected in ((all_right, 1.0), (all_class_0, 0.5)):
        net.history.new_epoch()
        callback.on_epoch_begin(net)
        callback.on_batch_end(net, batch=(None, target), training=False, y_pred=y_pred)
        callback.on_epoch_end(net)
        assert net.history[-1, "valid_balanced_accuracy"] == pytest.approx(expected)


def test_balanced_accuracy_records_nothing_without_validation_batches():
    callback = BalancedAccuracyScoring(3)
    net = _fake_net()
    callback.on_epoch_begin(net)
    callback.on_batch_end(
        net,
        batch=(None, torch.tensor([0, 1])),
        training=True,
        y_pred=torch.zeros(2, 3),
    )
    callback.on_epoch_end(net)
    assert "valid_balanced_accuracy" not in net.history[-1]


def test_balanced_accuracy_in_a_fitted_net_matches_sklearn():
    """End to end: a net with lr=0 keeps its weights, so we can recompute."""
    torch.manual_seed(0)
    X = torch.randn(40, 3)
    y = torch.randint(0, 3, (40,))
    X_valid = torch.randn(23, 3)
    y_valid = torch.tensor([0] * 15 + [1] * 6 + [2] * 2)
    module = nn.Linear(3, 3)
    net = LongTailNet(
        module=module,
        criterion=CrossEntropyLoss(),
        optimizer=torch.optim.SGD,
        lr=0.0,
        batch_size=5,  # several validation batches
        max_epochs=2,
        train_split=PredefinedSplit(DeviceDataset(X_valid, y_valid)),
        iterator_train=TensorBatchIterator,
        iterator_valid=TensorBatchIterator,
        callbacks=[("balanced_accuracy", BalancedAccuracyScoring(3))],
    )
    net.fit(DeviceDataset(X, y), None)
    with torch.no_grad():
        y_pred = module(X_valid).argmax(dim=1).numpy()
    expected = _sklearn_balanced_accuracy(y_valid.numpy(), y_pred)
    assert net.history[:, "valid_balanced_accuracy"] == pytest.approx(
        [expected, expected]
    )


# --- FiniteLossCheck ------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "pattern"),
    [
        ("train_loss", math.nan, r"train loss became nan in epoch 3\b"),
        ("train_loss", math.inf, r"train loss became inf in epoch 3\b"),
        ("valid_loss", -math.inf, r"valid loss became -inf in epoch 3\b"),
    ],
)
def test_finite_loss_check_names_the_epoch(key, value, pattern):
    net = _fake_net()
    for epoch in (2, 3):
        net.history.new_epoch()
        net.history.record("epoch", epoch)
        net.history.record("train_loss", 0.5)
    net.history.record(key, value)
    with pytest.raises(NonFiniteLossError, match=pattern) as info:
        FiniteLossCheck().on_epoch_end(net)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, FloatingPointError)
    assert "lr=0.1" in str(info.value)


def test_finite_loss_check_accepts_finite_losses():
    net = _fake_net()
    net.history.record("train_loss", 1e30)
    net.history.record("valid_loss", 0.0)
    FiniteLossCheck().on_epoch_end(net)  # no error
    net.history.new_epoch()
    net.history.record("epoch", 2)  # a row without losses is not an error
    FiniteLossCheck().on_epoch_end(net)


class _NaNAfter(nn.Module):
    """Outputs finite logits for ``n_finite`` forward passes, NaN afterwards."""

    def __init__(self, n_finite):
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.n_finite = n_finite
        self.calls = 0

    def forward(self, X):
        self.calls += 1
        out = self.linear(X)
        return out if self.calls <= self.n_finite else out * math.nan


def test_finite_loss_check_stops_a_net_in_the_right_epoch():
    torch.manual_seed(0)
    X, y = torch.randn(8, 3), torch.tensor([0, 1] * 4)
    net = LongTailNet(
        module=_NaNAfter(n_finite=2),  # one batch per epoch: epochs 1-2 are fine
        criterion=CrossEntropyLoss(),
        lr=0.01,
        batch_size=8,
        max_epochs=5,
        train_split=None,
        iterator_train=TensorBatchIterator,
        iterator_valid=TensorBatchIterator,
        callbacks=[("finite_loss", FiniteLossCheck())],
    )
    with pytest.raises(NonFiniteLossError, match=r"in epoch 3\b"):
        net.fit(DeviceDataset(X, y), None)
    assert len(net.history) == 3


# ------------------------------------------------- sample attention (ABSGD)
def _attention_case(seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(12, 3, generator=generator, dtype=torch.float64)
    target = torch.randint(0, 3, (12,), generator=generator)
    sample_weight = torch.rand(12, generator=generator, dtype=torch.float64)
    class_weight = torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64)
    return logits, target, sample_weight, class_weight


@pytest.mark.parametrize("temperature", [0.1, 1.0, 5.0])
def test_sample_attention_loss_matches_an_independent_computation(temperature):
    logits, target, sample_weight, class_weight = _attention_case()
    criterion = FocalLoss(gamma=2.0, weight=class_weight)
    loss = sample_attention_loss(criterion, logits, target, sample_weight, temperature)
    # By hand, in numpy: focal losses, class-weighted losses in the exponent.
    z = logits.numpy()
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    log_p_y = log_p[np.arange(12), target.numpy()]
    plain = -((1 - np.exp(log_p_y)) ** 2) * log_p_y
    c = class_weight.numpy()[target.numpy()]
    s = sample_weight.numpy()
    e = np.exp(c * plain / temperature)
    p = e / e.sum()
    expected = (p * c * s * plain).sum() / (p * c * s).sum()
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-10)
    assert criterion.reduction == "mean"  # restored


def test_sample_attention_gradient_treats_the_attention_as_constant():
    logits, target, sample_weight, class_weight = _attention_case(1)
    criterion = CrossEntropyLoss(weight=class_weight)
    logits.requires_grad_()
    loss = sample_attention_loss(criterion, logits, target, sample_weight, 0.5)
    (grad,) = torch.autograd.grad(loss, logits)
    with torch.no_grad():
        per_example = CrossEntropyLoss(weight=class_weight, reduction="none")(
            logits, target
        )
        attention = torch.softmax(per_example / 0.5, dim=0)
    expected = criterion(logits, target, sample_weight=attention * sample_weight)
    (expected_grad,) = torch.autograd.grad(expected, logits)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(grad, expected_grad)


def test_sample_attention_with_a_large_temperature_is_the_weighted_mean():
    logits, target, sample_weight, class_weight = _attention_case(2)
    criterion = CrossEntropyLoss(weight=class_weight)
    loss = sample_attention_loss(criterion, logits, target, sample_weight, 1e12)
    expected = criterion(logits, target, sample_weight=sample_weight)
    torch.testing.assert_close(loss, expected)


def test_sample_attention_survives_large_losses():
    logits = torch.tensor([[300.0, -300.0], [0.0, 0.0]])
    target = torch.tensor([1, 0])
    loss = sample_attention_loss(CrossEntropyLoss(), logits, target, None, 0.01)
    torch.testing.assert_close(loss, torch.tensor(600.0))


def test_net_applies_sample_attention_to_training_loss_only():
    logits, target, sample_weight, _ = _attention_case(3)
    net = _initialized_net(CrossEntropyLoss())
    net.sample_attention = 0.5
    plain = net.criterion_(logits, target, sample_weight=sample_weight)
    attended = sample_attention_loss(net.criterion_, logits, target, sample_weight, 0.5)
    y_true = (target, sample_weight)
    torch.testing.assert_close(net.get_loss(logits, y_true, training=True), attended)
    torch.testing.assert_close(net.get_loss(logits, y_true, training=False), plain)
    net.sample_attention = None
    torch.testing.assert_close(net.get_loss(logits, y_true, training=True), plain)


# --- gradient-norm clipping -------------------------------------------------------


def _gradients(scale, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [scale * torch.randn(shape, generator=generator) for shape in [(5, 3), (3,)]]


def _total_norm(gradients):
    return float(torch.sqrt(sum((g.double() ** 2).sum() for g in gradients)))


def test_clip_gradient_norm_rescales_to_the_bound_like_torch():
    gradients = _gradients(100.0)
    norm = clip_gradient_norm(gradients, 2.0)
    parameters = [nn.Parameter(torch.zeros_like(g)) for g in gradients]
    for parameter, gradient in zip(parameters, _gradients(100.0), strict=True):
        parameter.grad = gradient
    expected = torch.nn.utils.clip_grad_norm_(parameters, 2.0)
    for parameter, clipped in zip(parameters, gradients, strict=True):
        torch.testing.assert_close(parameter.grad, clipped)
    assert float(norm) == pytest.approx(_total_norm(_gradients(100.0)), rel=1e-5)
    assert _total_norm(gradients) == pytest.approx(2.0, rel=1e-5)
    # Same direction: a positive multiple of the original gradients.
    for clipped, original in zip(gradients, _gradients(100.0), strict=True):
        torch.testing.assert_close(clipped, original * (2.0 / float(norm)))
    assert float(expected) == pytest.approx(float(norm), rel=1e-5)


def test_clip_gradient_norm_leaves_small_gradients_untouched():
    gradients = _gradients(0.01)
    clip_gradient_norm(gradients, 10.0)
    # On the CPU a step below the bound is not multiplied at all: bit for bit.
    for clipped, original in zip(gradients, _gradients(0.01), strict=True):
        assert torch.equal(clipped, original)
    assert clip_gradient_norm([], 1.0) is None


def test_gradient_norm_clipping_callback_bounds_each_step():
    module = nn.Linear(3, 2)
    for parameter in module.parameters():
        parameter.grad = torch.full_like(parameter, 50.0)
    named = list(module.named_parameters())
    GradientNormClipping(None).on_grad_computed(None, named_parameters=named)
    assert _total_norm([p.grad for p in module.parameters()]) > 100
    GradientNormClipping(1.5).on_grad_computed(None, named_parameters=named)
    assert _total_norm([p.grad for p in module.parameters()]) == pytest.approx(1.5)


def test_per_batch_events_reach_only_the_callbacks_that_override_them():
    class Counting(Callback):
        calls = 0

        def on_batch_end(self, net, **kwargs):
            type(self).calls += 1

    class Silent(Callback):
        pass

    X = torch.randn(40, 3)
    y = torch.randint(0, 4, (40,))
    net = LongTailNet(
        module=nn.Linear(3, 4),
        criterion=CrossEntropyLoss,
        train_split=None,
        max_epochs=2,
        batch_size=10,
        iterator_train=TensorBatchIterator,
        callbacks=[("counting", Counting()), ("silent", Silent())],
    )
    net.fit(DeviceDataset(X, y), None)
    assert Counting.calls == 8  # 4 batches, 2 epochs
    listeners = net._batch_listeners
    assert [type(c) for c in listeners["on_batch_end"]].count(Counting) == 1
    assert not any(isinstance(c, Silent) for event in listeners.values() for c in event)
    # Batches on the module's device skip skorch's conversion: the same output.
    torch.testing.assert_close(net.infer(X[:5]), net.module_(X[:5]))
    assert net.infer(X[:5].numpy()).shape == (5, 4)  # other inputs: skorch's path


def _plain_net(callbacks=(), max_norm=0.05, net_class=LongTailNet):
    torch.manual_seed(0)
    return net_class(
        module=nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 4)),
        criterion=CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        lr=0.5,
        train_split=None,
        max_epochs=2,
        batch_size=10,
        iterator_train=TensorBatchIterator,
        callbacks=[("clip", GradientNormClipping(max_norm)), *callbacks],
    )


@pytest.mark.parametrize("max_norm", [0.05, None])  # 0.05 binds on every step
def test_direct_step_makes_skorchs_update(max_norm):
    class SkorchPath(LongTailNet):
        # Any override of skorch's step hooks sends the net through skorch's
        # closure path: the reference.
        def train_step_single(self, batch, **fit_params):
            return super().train_step_single(batch, **fit_params)

    X = torch.randn(40, 3, generator=torch.Generator().manual_seed(1))
    y = torch.arange(40) % 4
    direct = _plain_net(max_norm=max_norm)
    direct.fit(DeviceDataset(X, y), None)
    assert direct._direct_clipping is not None  # the direct path was taken
    reference = _plain_net(max_norm=max_norm, net_class=SkorchPath)
    reference.fit(DeviceDataset(X, y), None)
    assert reference._direct_clipping is None
    # The same operations in the same order on the same CPU: bit for bit.
    for a, b in zip(
        direct.module_.parameters(), reference.module_.parameters(), strict=True
    ):
        assert torch.equal(a, b)
    assert direct.history[:, "train_loss"] == reference.history[:, "train_loss"]


def test_a_gradient_listener_keeps_skorchs_step():
    class Listener(Callback):
        norms = []

        def on_grad_computed(self, net, named_parameters, **kwargs):
            grads = [p.grad for _, p in named_parameters if p.grad is not None]
            type(self).norms.append(
                float(torch.stack([g.norm() for g in grads]).norm())
            )

    X = torch.randn(40, 3)
    y = torch.arange(40) % 4
    net = _plain_net(callbacks=[("listener", Listener())])
    net.fit(DeviceDataset(X, y), None)
    assert net._direct_clipping is None
    assert len(Listener.norms) == 8  # every step reached the user's callback
    # It sits after the clipping callback, so it sees bounded gradients.
    assert max(Listener.norms) == pytest.approx(0.05, rel=1e-4)
