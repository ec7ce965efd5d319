"""Tests of sklearn_lt.schedules."""

import math
import pickle

import numpy as np
import pytest
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.history import History

from sklearn_lt._device_data import (
    ClassWeightedSampler,
    DeviceDataset,
    TensorBatchIterator,
)
from sklearn_lt.losses import CrossEntropyLoss, LDAMLoss
from sklearn_lt.modules import MLP
from sklearn_lt.schedules import (
    REWEIGHT_SCHEDULES,
    Rebalancing,
    WarmupCosineDecay,
    WarmupStepDecay,
    deferral_epoch,
)

CLASS_WEIGHTS = [0.25, 0.75, 2.0]

# --- Learning-rate schedules --------------------------------------------------


def test_warmup_step_decay_values():
    schedule = WarmupStepDecay(5, milestones=(160, 180), factors=(0.01, 0.0001))
    expected = {
        0: 0.2,
        1: 0.4,
        3: 0.8,
        4: 1.0,
        5: 1.0,
        100: 1.0,
        159: 1.0,
        160: 0.01,
        179: 0.01,
        180: 0.0001,
        199: 0.0001,
        250: 0.0001,
    }
    for epoch, value in expected.items():
        assert schedule(epoch) == pytest.approx(value), epoch


def test_warmup_step_decay_for_training():
    schedule = WarmupStepDecay.for_training(max_epochs=200, warmup_epochs=5)
    assert schedule.milestones == (160, 180)
    assert schedule.factors == (0.01, 0.0001)
    assert [schedule(e) for e in (0, 4, 100, 160, 180)] == [0.2, 1.0, 1.0, 0.01, 0.0001]
    short = WarmupStepDecay.for_training(max_epochs=10, warmup_epochs=2)
    assert short.milestones == (8, 9)
    assert [short(e) for e in range(10)] == [0.5, 1, 1, 1, 1, 1, 1, 1, 0.01, 0.0001]
    one = WarmupStepDecay.for_training(
        max_epochs=100, warmup_epochs=0, decay_starts=(0.5,)
    )
    assert one.milestones == (50,) and one.factors == (0.01,)
    assert one(0) == 1.0 and one(49) == 1.0 and one(50) == 0.01


def test_warmup_step_decay_without_warmup_or_milestones():
    schedule = WarmupStepDecay()
    assert [schedule(e) for e in (0, 1, 1000)] == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="milestones"):
        WarmupStepDecay(0, milestones=(10, 20), factors=(0.1,))


def test_warmup_cosine_decay_values():
    schedule = WarmupCosineDecay(max_epochs=10, warmup_epochs=2)
    assert schedule(0) == pytest.approx(0.5)
    assert schedule(1) == pytest.approx(1.0)
    assert schedule(2) == pytest.approx(1.0)
    assert schedule(6) == pytest.approx(0.5)
    assert schedule(9) == pytest.approx(0.5 * (1 + math.cos(math.pi * 7 / 8)))
    assert schedule(9) == pytest.approx(0.038, abs=1e-3)
    assert schedule(10) == pytest.approx(0.0)
    assert schedule(15) == pytest.approx(0.0)
    values = [schedule(e) for e in range(2, 11)]
    assert values == sorted(values, reverse=True)
    plain = WarmupCosineDecay(max_epochs=4)
    assert [round(plain(e), 6) for e in range(5)] == [
        1.0,
        round(0.5 * (1 + math.cos(math.pi / 4)), 6),
        0.5,
        round(0.5 * (1 + math.cos(3 * math.pi / 4)), 6),
        0.0,
    ]


def test_schedules_drive_lambda_lr_and_pickle():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    schedule = pickle.loads(pickle.dumps(WarmupStepDecay.for_training(10, 2)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    np.testing.assert_allclose(
        rates, [0.05, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.001, 0.00001]
    )
    cosine = pickle.loads(pickle.dumps(WarmupCosineDecay(10, 2)))
    assert cosine(6) == pytest.approx(0.5)


def test_deferral_epoch():
    assert deferral_epoch(200, 0.8) == 160
    assert deferral_epoch(30, 0.8) == 24
    assert deferral_epoch(100, 0.0) == 0
    assert deferral_epoch(100, 1.0) == 100
    assert isinstance(deferral_epoch(7, 0.3), int)


def test_reweight_schedules_registry():
    assert REWEIGHT_SCHEDULES == {
        "reweight": ("reweight", False),
        "resample": ("resample", False),
        "drw": ("reweight", True),
        "drs": ("resample", True),
    }


# --- Rebalancing with a stand-in net ----------------------------------------


class _FakeNet:
    """The parts of a skorch net that Rebalancing uses."""

    def __init__(self, criterion):
        self.history = History()
        self.criterion_ = criterion


def _run_epochs(callback, net, n_epochs):
    states = []
    for _ in range(n_epochs):
        net.history.new_epoch()  # as skorch does before the callbacks
        callback.on_epoch_begin(net)
        weight = net.criterion_.weight
        states.append(None if weight is None else weight.clone())
    return states


def test_rebalancing_reweight_deferred():
    criterion = CrossEntropyLoss(weight=torch.full((3,), 5.0))
    buffer = criterion.weight
    pointer = buffer.data_ptr()
    net = _FakeNet(criterion)
    callback = Rebalancing(CLASS_WEIGHTS, start_epoch=2).initialize()
    states = _run_epochs(callback, net, 5)
    for epoch in (0, 1):
        torch.testing.assert_close(states[epoch], torch.ones(3))
    for epoch in (2, 3, 4):
        torch.testing.assert_close(states[epoch], torch.tensor(CLASS_WEIGHTS))
    assert net.history[:, "rebalancing"] == [False, False, True, True, True]
    assert criterion.weight is buffer
    assert criterion.weight.data_ptr() == pointer
    assert dict(criterion.named_buffers())["weight"] is buffer


def test_rebalancing_changes_the_loss():
    criterion = LDAMLoss([100, 10, 1], weight=torch.ones(3))
    net = _FakeNet(criterion)
    callback = Rebalancing(CLASS_WEIGHTS, start_epoch=1).initialize()
    logits = torch.tensor([[0.5, 0.1, -0.2], [0.1, 0.3, 0.0], [0.0, 0.2, 0.4]])
    target = torch.tensor([0, 1, 2])
    values = []
    for _ in range(2):
        net.history.new_epoch()
        callback.on_epoch_begin(net)
        values.append(criterion(logits, target))
    unweighted = LDAMLoss([100, 10, 1])(logits, target)
    weighted = LDAMLoss([100, 10, 1], weight=torch.tensor(CLASS_WEIGHTS))
    torch.testing.assert_close(values[0], unweighted)
    torch.testing.assert_close(values[1], weighted(logits, target))
    assert not torch.isclose(values[0], values[1])


def test_rebalancing_from_epoch_zero():
    net = _FakeNet(CrossEntropyLoss(weight=torch.ones(3)))
    callback = Rebalancing(np.array(CLASS_WEIGHTS)).initialize()
    states = _run_epochs(callback, net, 2)
    for state in states:
        torch.testing.assert_close(state, torch.tensor(CLASS_WEIGHTS))
    assert net.history[:, "rebalancing"] == [True, True]


def test_rebalancing_resumes_from_history():
    # A continued fit (warm start) keeps counting epochs from the history.
    net = _FakeNet(CrossEntropyLoss(weight=torch.ones(3)))
    callback = Rebalancing(CLASS_WEIGHTS, start_epoch=3).initialize()
    _run_epochs(callback, net, 2)
    torch.testing.assert_close(net.criterion_.weight, torch.ones(3))
    states = _run_epochs(callback, net, 2)
    torch.testing.assert_close(states[0], torch.ones(3))
    torch.testing.assert_close(states[1], torch.tensor(CLASS_WEIGHTS))
    assert net.history[:, "rebalancing"] == [False, False, False, True]


def test_rebalancing_follows_weight_dtype():
    criterion = CrossEntropyLoss(weight=torch.ones(3)).double()
    net = _FakeNet(criterion)
    Rebalancing(CLASS_WEIGHTS).initialize().on_epoch_begin(
        _advance(net),
    )
    assert criterion.weight.dtype == torch.float64
    torch.testing.assert_close(
        criterion.weight, torch.tensor(CLASS_WEIGHTS, dtype=torch.float64)
    )


def _advance(net):
    net.history.new_epoch()
    return net


def test_rebalancing_resample():
    targets = torch.tensor([0] * 20 + [1] * 5 + [2])
    sampler = ClassWeightedSampler(targets, seed=0)
    criterion = CrossEntropyLoss(weight=torch.ones(3))
    net = _FakeNet(criterion)
    callback = Rebalancing(
        CLASS_WEIGHTS, start_epoch=2, method="resample", sampler=sampler
    ).initialize()
    seen = []
    for _ in range(4):
        net.history.new_epoch()
        callback.on_epoch_begin(net)
        seen.append(sampler.class_weights)
    assert seen[0] is None and seen[1] is None
    for weights in seen[2:]:
        torch.testing.assert_close(weights, torch.tensor(CLASS_WEIGHTS))
    assert net.history[:, "rebalancing"] == [False, False, True, True]
    # Re-sampling leaves the criterion's weights alone.
    torch.testing.assert_close(criterion.weight, torch.ones(3))


def test_rebalancing_arguments_stay_as_given():
    weights = [1.0, 2.0]
    sampler = ClassWeightedSampler(torch.tensor([0, 1]))
    callback = Rebalancing(weights, start_epoch=4, method="resample", sampler=sampler)
    params = callback.get_params()
    assert params["class_weights"] is weights
    assert params["start_epoch"] == 4
    assert params["method"] == "resample"
    assert params["sampler"] is sampler
    assert not hasattr(callback, "class_weights_")
    callback.initialize()
    assert callback.class_weights is weights
    assert callback.class_weights_.dtype == torch.float32
    assert repr(callback) == "<Rebalancing(method='resample', start_epoch=4)>"


def test_rebalancing_resample_needs_the_sampler_of_the_net():
    X, y = _toy_problem()
    sampler = ClassWeightedSampler(y, seed=0)
    other = ClassWeightedSampler(y, seed=0)
    callback = Rebalancing(CLASS_WEIGHTS, method="resample", sampler=other)
    net = _net([("rebalancing", callback)], max_epochs=1, sampler=sampler)
    with pytest.raises(ValueError, match="another"):
        net.fit(DeviceDataset(X, y), y=None)


def test_rebalancing_errors():
    with pytest.raises(ValueError, match="method"):
        Rebalancing(CLASS_WEIGHTS, method="oversample").initialize()
    with pytest.raises(ValueError, match="sampler"):
        Rebalancing(CLASS_WEIGHTS, method="resample").initialize()
    net = _advance(_FakeNet(CrossEntropyLoss()))
    with pytest.raises(ValueError, match="weight"):
        Rebalancing(CLASS_WEIGHTS).initialize().on_epoch_begin(net)


# --- Rebalancing inside a real skorch net -----------------------------------


class _Probe(Callback):
    """Records optimizer identity, criterion weight and momentum per epoch."""

    def initialize(self):
        self.begin_ = []
        self.end_ = []
        self.batch_targets_ = []
        return self

    def _momentum(self, net):
        state = net.optimizer_.state
        return [
            state[p]["momentum_buffer"].clone()
            for p in net.module_.parameters()
            if p in state and "momentum_buffer" in state[p]
        ]

    def on_epoch_begin(self, net, **kwargs):
        self.begin_.append(
            {
                "optimizer": net.optimizer_,
                "weight": net.criterion_.weight,
                "weight_value": net.criterion_.weight.clone(),
                "momentum": self._momentum(net),
            }
        )
        self.batch_targets_.append([])

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.batch_targets_[-1].append(batch[1].clone())

    def on_epoch_end(self, net, **kwargs):
        self.end_.append({"momentum": self._momentum(net)})


def _toy_problem(counts=(60, 15, 5), seed=0):
    generator = torch.Generator().manual_seed(seed)
    y = torch.cat([torch.full((n,), k) for k, n in enumerate(counts)])
    X = torch.randn(len(y), 4, generator=generator) + y[:, None].float()
    return X, y


def _net(callbacks, max_epochs, sampler=None):
    return NeuralNet(
        module=MLP,
        module__n_features=4,
        module__n_classes=3,
        module__hidden_layer_sizes=(8,),
        criterion=CrossEntropyLoss,
        criterion__weight=torch.ones(3),
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        lr=0.05,
        max_epochs=max_epochs,
        batch_size=16,
        train_split=None,
        iterator_train=TensorBatchIterator,
        iterator_train__sampler=sampler,
        iterator_valid=TensorBatchIterator,
        callbacks=callbacks,
        verbose=0,
    )


def test_rebalancing_in_skorch_keeps_optimizer_and_momentum():
    torch.manual_seed(0)
    X, y = _toy_problem()
    targets = y.clone()
    sampler = ClassWeightedSampler(targets, seed=0)
    probe = _Probe()
    start = 2
    net = _net(
        [
            ("rebalancing", Rebalancing(CLASS_WEIGHTS, start_epoch=start)),
            ("probe", probe),
        ],
        max_epochs=4,
        sampler=sampler,
    )
    net.fit(DeviceDataset(X, y), y=None)

    assert net.history[:, "rebalancing"] == [False, False, True, True]
    assert all(np.isfinite(net.history[:, "train_loss"]))
    # Weights: ones before the start epoch, class weights from it on, one tensor.
    for epoch, record in enumerate(probe.begin_):
        expected = torch.tensor(CLASS_WEIGHTS) if epoch >= start else torch.ones(3)
        torch.testing.assert_close(record["weight_value"], expected)
        assert record["weight"] is net.criterion_.weight
    # The optimizer is never rebuilt.
    assert all(record["optimizer"] is net.optimizer_ for record in probe.begin_)
    # Momentum survives the switch: the buffers at the start of the switch epoch
    # are those left by the previous epoch, and they are not zero.
    before = probe.end_[start - 1]["momentum"]
    after = probe.begin_[start]["momentum"]
    assert len(before) == len(list(net.module_.parameters())) > 0
    for a, b in zip(before, after, strict=True):
        torch.testing.assert_close(a, b)
    assert any(b.abs().sum() > 0 for b in before)
    # By contrast, skorch's set_params on the criterion rebuilds the optimizer,
    # which is what the in-place update avoids.
    optimizer = net.optimizer_
    net.set_params(criterion__weight=torch.ones(3))
    assert net.optimizer_ is not optimizer


def test_rebalancing_resample_in_skorch():
    torch.manual_seed(0)
    counts = (60, 15, 5)
    X, y = _toy_problem(counts)
    sampler = ClassWeightedSampler(y, seed=0)
    balanced = [1.0 / n for n in counts]
    probe = _Probe()
    callback = Rebalancing(balanced, start_epoch=1, method="resample", sampler=sampler)
    net = _net(
        [("rebalancing", callback), ("probe", probe)], max_epochs=4, sampler=sampler
    )
    net.fit(DeviceDataset(X, y), y=None)
    assert net.history[:, "rebalancing"] == [False, True, True, True]
    per_epoch = [
        torch.bincount(torch.cat(batches), minlength=3)
        for batches in probe.batch_targets_
    ]
    # Epoch 0 is a permutation of the data; later epochs are class-balanced.
    assert per_epoch[0].tolist() == list(counts)
    resampled = torch.stack(per_epoch[1:]).sum(dim=0)
    assert resampled.sum() == 3 * sum(counts)
    # 240 draws, each class with probability 1/3: 80 expected, sd about 7.3.
    assert torch.all((resampled - 80).abs() < 30), resampled
    # The criterion weight stays at ones under re-sampling.
    torch.testing.assert_close(net.criterion_.weight, torch.ones(3))


# --- Gaps found by mutation testing (benchmarks/README.md) ----------------------------


def test_step_decay_for_short_runs_and_its_defaults():
    assert WarmupStepDecay.for_training(6, warmup_epochs=1).milestones == (5,)
    assert WarmupStepDecay.for_training(200).warmup_epochs == 5
    assert WarmupStepDecay(milestones=[0], factors=[0.1])(0) == 0.1
