"""Tests of sklearn_lt._sam (sharpness-aware minimization) and optimizer="sam"."""

import os
import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from torch import nn

from sklearn_lt import LongTailClassifier, LongTailImageClassifier
from sklearn_lt._sam import SAM, SameRandomDraws, frozen_running_statistics
from sklearn_lt._training import LongTailNet
from sklearn_lt.losses import CrossEntropyLoss
from sklearn_lt.persistence import load_model, save_model

# L(w) = 0.5 w^T A w over w = (u, v): two parameters, so the ascent direction
# needs one norm over both.
A = np.array([[3.0, 0.5, 0.2], [0.5, 2.0, -0.3], [0.2, -0.3, 1.0]])
W0 = np.array([1.0, -2.0, 0.5])


def _quadratic_params():
    u = nn.Parameter(torch.tensor(W0[:2]))
    v = nn.Parameter(torch.tensor(W0[2:]))
    return u, v


def _closure(optimizer, u, v):
    a = torch.tensor(A)

    def closure():
        optimizer.zero_grad()
        w = torch.cat([u, v])
        loss = 0.5 * w @ a @ w
        loss.backward()
        return loss

    return closure


def _hand_sam(w, buf, rho, lr, momentum, weight_decay):
    """One SAM step by hand: ascent, gradient there, SGD-momentum update at w."""
    g = A @ w
    eps = rho * g / np.linalg.norm(g)
    g_sam = A @ (w + eps) + weight_decay * w
    buf = g_sam if buf is None else momentum * buf + g_sam
    return w - lr * buf, buf


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_sam_steps_on_a_quadratic_match_a_hand_computation(momentum, weight_decay):
    u, v = _quadratic_params()
    rho, lr = 0.3, 0.05
    optimizer = SAM(
        [u, v], rho=rho, lr=lr, momentum=momentum, weight_decay=weight_decay
    )
    closure = _closure(optimizer, u, v)
    w, buf = W0, None
    for _ in range(3):
        loss = optimizer.step(closure)
        # The reported loss is the one at the weights before the step.
        np.testing.assert_allclose(loss.item(), 0.5 * w @ A @ w)
        w, buf = _hand_sam(w, buf, rho, lr, momentum, weight_decay)
        np.testing.assert_allclose(torch.cat([u, v]).detach().numpy(), w)


def test_sam_with_zero_radius_is_sgd():
    u, v = _quadratic_params()
    sam = SAM([u, v], rho=0.0, lr=0.1, momentum=0.9, weight_decay=0.01)
    p, q = _quadratic_params()
    sgd = torch.optim.SGD([p, q], lr=0.1, momentum=0.9, weight_decay=0.01)
    for _ in range(3):
        sam.step(_closure(sam, u, v))
        sgd.step(_closure(sgd, p, q))
    torch.testing.assert_close(torch.cat([u, v]), torch.cat([p, q]))


def test_sam_first_and_second_step_restore_the_weights():
    u, v = _quadratic_params()
    optimizer = SAM([u, v], rho=0.5, lr=0.0)
    _closure(optimizer, u, v)()
    optimizer.first_step()
    moved = torch.cat([u, v]).detach().numpy()
    g = A @ W0
    np.testing.assert_allclose(moved, W0 + 0.5 * g / np.linalg.norm(g))
    _closure(optimizer, u, v)()
    optimizer.second_step()  # lr=0: back to the start exactly
    np.testing.assert_allclose(torch.cat([u, v]).detach().numpy(), W0)


def test_sam_zero_gradient_does_not_move_the_weights():
    w = nn.Parameter(torch.ones(3))
    optimizer = SAM([w], rho=0.5, lr=0.1)
    w.grad = torch.zeros(3)
    optimizer.first_step()
    torch.testing.assert_close(w.detach(), torch.ones(3))


def test_sam_needs_a_closure_and_a_non_negative_radius():
    w = nn.Parameter(torch.ones(3))
    with pytest.raises(ValueError, match="closure"):
        SAM([w], lr=0.1).step()
    with pytest.raises(ValueError, match="rho"):
        SAM([w], rho=-1.0, lr=0.1)


def test_sam_state_dict_is_sgd_state_dict_and_round_trips():
    u, v = _quadratic_params()
    optimizer = SAM([u, v], rho=0.2, lr=0.1, momentum=0.9)
    optimizer.step(_closure(optimizer, u, v))
    state = optimizer.state_dict()
    assert set(state["state"][0]) == {"momentum_buffer"}
    assert state["param_groups"][0]["rho"] == 0.2
    p, q = _quadratic_params()
    other = SAM([p, q], rho=0.2, lr=0.1, momentum=0.9)
    other.load_state_dict(state)
    torch.testing.assert_close(
        other.state[p]["momentum_buffer"], optimizer.state[u]["momentum_buffer"]
    )
    copied = pickle.loads(pickle.dumps(optimizer))
    assert copied._perturbation == []


def test_frozen_running_statistics_keeps_buffers_and_normalizes_by_batch():
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(4).train()
    x = torch.randn(16, 4) * 3 + 1
    before = {k: b.clone() for k, b in bn.state_dict().items()}
    with frozen_running_statistics(nn.Sequential(bn)):
        out = bn(x)
    for key, value in bn.state_dict().items():
        torch.testing.assert_close(value, before[key])
    assert bn.track_running_stats
    expected = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + bn.eps)
    torch.testing.assert_close(out, expected)
    bn(x)
    assert int(bn.num_batches_tracked) == 1


def test_same_random_draws_replays_the_first_block():
    torch.manual_seed(0)
    replay = SameRandomDraws()
    with replay:
        first = torch.rand(5)
    after_one = torch.get_rng_state()
    with replay:
        second = torch.rand(5)
    torch.testing.assert_close(first, second)
    torch.testing.assert_close(torch.get_rng_state(), after_one)


class _BatchNormNet(nn.Module):
    def __init__(self, dropout=0.5):
        super().__init__()
        self.bn = nn.BatchNorm1d(3)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(3, 2)

    def forward(self, X):
        return self.head(self.dropout(self.bn(X)))


def _net(optimizer, criterion=nn.CrossEntropyLoss, **params):
    return LongTailNet(
        module=_BatchNormNet,
        criterion=criterion,
        optimizer=optimizer,
        lr=0.1,
        train_split=None,
        max_epochs=1,
        **params,
    ).initialize()


def test_net_sam_step_with_zero_radius_is_the_sgd_step():
    # Dropout draws the same masks in both passes, and batch normalization
    # updates its statistics once: at rho=0 the step is exactly SGD's.
    torch.manual_seed(0)
    X, y = torch.randn(8, 3), torch.tensor([0, 1] * 4)
    nets = [_net(torch.optim.SGD), _net(SAM, optimizer__rho=0.0)]
    nets[1].module_.load_state_dict(nets[0].module_.state_dict())
    steps = []
    for net in nets:
        torch.manual_seed(1)
        steps.append(net.train_step((X, y)))
        assert int(net.module_.bn.num_batches_tracked) == 1
    torch.testing.assert_close(steps[0]["loss"], steps[1]["loss"])
    for a, b in zip(
        nets[0].module_.state_dict().values(),
        nets[1].module_.state_dict().values(),
        strict=True,
    ):
        torch.testing.assert_close(a, b)


def test_net_sam_step_with_sample_weight_matches_a_hand_sam_step():
    torch.manual_seed(0)
    X, y = torch.randn(8, 3), torch.tensor([0, 1] * 4)
    weights = torch.tensor([1.0, 0.0, 2.0, 1.0, 0.5, 0.0, 1.0, 3.0])
    class_weight = torch.tensor([1.0, 4.0])
    net = _net(
        SAM,
        optimizer__rho=0.5,
        optimizer__momentum=0.9,
        criterion=CrossEntropyLoss(weight=class_weight),
        module__dropout=0.0,
    )
    start = {k: v.clone() for k, v in net.module_.named_parameters()}

    def loss_at(params):
        out = torch.func.functional_call(net.module_, params, (X,))
        return CrossEntropyLoss(weight=class_weight)(out, y, sample_weight=weights)

    params = {k: v.clone().requires_grad_() for k, v in start.items()}
    first = loss_at(params)
    grads = torch.autograd.grad(first, list(params.values()))
    norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
    moved = {
        k: (v + 0.5 * g / norm).detach().requires_grad_()
        for (k, v), g in zip(params.items(), grads, strict=True)
    }
    sam_grads = torch.autograd.grad(loss_at(moved), list(moved.values()))

    step = net.train_step((X, (y, weights)))
    torch.testing.assert_close(step["loss"], first.detach())
    for (name, value), g in zip(start.items(), sam_grads, strict=True):
        torch.testing.assert_close(
            net.module_.get_parameter(name).detach(), value - 0.1 * g
        )


# ------------------------------------------------------------- estimators
X_LT, Y_LT = make_classification(
    n_samples=240,
    n_classes=3,
    n_informative=4,
    weights=[0.75, 0.18, 0.07],
    random_state=0,
)


@pytest.mark.parametrize(
    ("loss", "schedule"),
    [
        ("ce", None),
        ("ce", "drw"),
        ("ldam", "drw"),
        ("logit_adjusted", "resample"),
        ("sigmoid_focal", "reweight"),
        ("vs", "drs"),
    ],
)
def test_classifier_with_sam_fits_and_predicts(loss, schedule):
    weights = np.random.RandomState(0).uniform(0.5, 2.0, size=Y_LT.size)
    clf = LongTailClassifier(
        loss=loss,
        reweight_schedule=schedule,
        deferral_start=0.5,
        optimizer="sam",
        sam_rho=0.05,
        max_epochs=3,
        random_state=0,
    ).fit(X_LT, Y_LT, sample_weight=weights)
    assert isinstance(clf.net_.optimizer_, SAM)
    assert clf.predict(X_LT).shape == Y_LT.shape
    assert np.isfinite(clf.predict_proba(X_LT)).all()


def test_classifier_sam_with_zero_radius_equals_sgd():
    params = {"loss": "ldam", "reweight_schedule": "drw", "max_epochs": 4}
    sam = LongTailClassifier(optimizer="sam", sam_rho=0.0, random_state=0, **params)
    sgd = LongTailClassifier(optimizer="sgd", random_state=0, **params)
    np.testing.assert_allclose(
        sam.fit(X_LT, Y_LT).predict_proba(X_LT),
        sgd.fit(X_LT, Y_LT).predict_proba(X_LT),
    )
    moved = LongTailClassifier(optimizer="sam", sam_rho=0.5, random_state=0, **params)
    assert not np.allclose(
        moved.fit(X_LT, Y_LT).predict_proba(X_LT), sgd.predict_proba(X_LT)
    )


def test_image_classifier_with_sam_updates_batch_norm_once_per_step():
    rng = np.random.RandomState(0)
    X = rng.rand(60, 1, 8, 8).astype(np.float32)
    y = np.repeat([0, 1, 2], [40, 15, 5])
    clf = LongTailImageClassifier(
        architecture="cnn",
        optimizer="sam",
        max_epochs=2,
        batch_size=16,
        random_state=0,
    ).fit(X, y)
    bn = next(m for m in clf.net_.module_.modules() if isinstance(m, nn.BatchNorm2d))
    steps = sum(len(row["batches"]) for row in clf.history_)
    assert int(bn.num_batches_tracked) == steps


def test_sam_model_saves_loads_and_warm_starts(tmp_path):
    clf = LongTailClassifier(
        optimizer="sam", sam_rho=0.1, max_epochs=2, random_state=0
    ).fit(X_LT, Y_LT)
    path = os.fspath(tmp_path / "sam.pt")
    save_model(clf, path)
    loaded = load_model(path)
    assert isinstance(loaded.net_.optimizer_, SAM)
    assert loaded.net_.optimizer_.param_groups[0]["rho"] == 0.1
    np.testing.assert_array_equal(loaded.predict_proba(X_LT), clf.predict_proba(X_LT))
    for estimator in (clf, loaded):
        estimator.set_params(warm_start=True, max_epochs=1).fit(X_LT, Y_LT)
    np.testing.assert_allclose(
        loaded.predict_proba(X_LT), clf.predict_proba(X_LT), atol=1e-6
    )


class _Accelerator:
    device = "cpu"

    def prepare(self, *objects):
        return objects

    def backward(self, loss):
        loss.backward()


def test_sam_refuses_an_accelerator():
    clf = LongTailClassifier(optimizer="sam", accelerator=_Accelerator())
    with pytest.raises(ValueError, match="accelerator"):
        clf.fit(X_LT, Y_LT)
