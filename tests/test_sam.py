"""Tests of sklearn_lt._sam (sharpness-aware minimization) and optimizer="sam"."""

import os
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification
from torch import nn

from sklearn_lt import LongTailClassifier, LongTailImageClassifier
from sklearn_lt._imbsam import TAIL_THRESHOLD, split_loss
from sklearn_lt._sam import SAM, SameRandomDraws, frozen_running_statistics
from sklearn_lt._training import LongTailNet, sample_attention_loss
from sklearn_lt.losses import LOSSES, CrossEntropyLoss, make_loss
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


# ------------------------------------------------------------------ ImbSAM
class _Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(3, 3)

    def forward(self, X):
        return self.head(X)


def _imbsam_net(rho, tail, criterion):
    return LongTailNet(
        module=_Linear,
        criterion=criterion,
        optimizer=SAM,
        optimizer__rho=rho,
        lr=0.1,
        train_split=None,
        max_epochs=1,
        sam_tail_classes=tail,
    ).initialize()


def _hand_parts(module, params, X, y, weights, class_weight, tail):
    """Head and doubled tail loss, from per-example cross-entropies."""
    logits = torch.func.functional_call(module, params, (X,))
    losses = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    w = class_weight[y] * weights
    is_tail = tail[y]
    head = (w * losses * ~is_tail).sum() / w.sum()
    return head, 2.0 * (w * losses * is_tail).sum() / w.sum()


@pytest.mark.parametrize("sample_weights", [False, True])
def test_imbsam_step_matches_a_hand_computation(sample_weights):
    # grad L_head(w) + grad L_tail(w + rho g_tail / ||g_tail||), one SGD step.
    torch.manual_seed(0)
    X = torch.randn(8, 3)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 0])
    weights = torch.tensor([1.0, 0.0, 2.0, 1.0, 0.5, 3.0, 1.0, 0.2])
    if not sample_weights:
        weights = torch.ones(8)
    class_weight = torch.tensor([1.0, 2.0, 4.0])
    tail = torch.tensor([False, True, True])
    net = _imbsam_net(0.5, tail, CrossEntropyLoss(weight=class_weight))
    start = {k: v.detach().clone() for k, v in net.module_.named_parameters()}
    names = list(start)

    def grads(params, part):
        params = {k: v.clone().requires_grad_() for k, v in params.items()}
        parts = _hand_parts(net.module_, params, X, y, weights, class_weight, tail)
        return torch.autograd.grad(parts[part], list(params.values())), parts

    g_head, (head, tail_loss) = grads(start, 0)
    g_tail, _ = grads(start, 1)
    norm = torch.sqrt(sum((g**2).sum() for g in g_tail))
    moved = {k: start[k] + 0.5 * g / norm for k, g in zip(names, g_tail, strict=True)}
    g_moved, _ = grads(moved, 1)

    target = (y, weights) if sample_weights else y
    step = net.train_step((X, target))
    # The reported loss is the plain weighted-mean loss at w.
    plain = CrossEntropyLoss(weight=class_weight)(
        torch.func.functional_call(net.module_, start, (X,)), y, sample_weight=weights
    )
    torch.testing.assert_close(step["loss"], plain.detach())
    torch.testing.assert_close(step["loss"], (head + tail_loss / 2).detach())
    for name, gh, gt in zip(names, g_head, g_moved, strict=True):
        torch.testing.assert_close(
            net.module_.get_parameter(name).detach(), start[name] - 0.1 * (gh + gt)
        )


def test_imbsam_step_without_tail_examples_is_the_sgd_step():
    torch.manual_seed(0)
    X, y = torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 1, 0])
    tail = torch.tensor([False, False, True])
    imbsam = _imbsam_net(0.8, tail, CrossEntropyLoss())
    sgd = LongTailNet(
        module=_Linear,
        criterion=CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        lr=0.1,
        train_split=None,
        max_epochs=1,
    ).initialize()
    sgd.module_.load_state_dict(imbsam.module_.state_dict())
    steps = [net.train_step((X, y)) for net in (imbsam, sgd)]
    torch.testing.assert_close(steps[0]["loss"], steps[1]["loss"])
    for a, b in zip(imbsam.module_.parameters(), sgd.module_.parameters(), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_imbsam_split_loss_adds_up_to_the_plain_loss(name):
    torch.manual_seed(0)
    logits, y = torch.randn(10, 3), torch.tensor([0, 1, 2, 0, 0, 1, 2, 0, 0, 1])
    weights = torch.rand(10)
    criterion = make_loss(name, [50.0, 15.0, 5.0], weight=torch.tensor([1.0, 2, 3]))
    tail = torch.tensor([False, True, True])
    head, tail_part = split_loss(criterion, logits, y, weights, tail)
    torch.testing.assert_close(
        head + tail_part, criterion(logits, y, sample_weight=weights)
    )
    assert criterion.reduction == "mean"
    # Under attention, the parts add up to ABSGD's loss.
    head, tail_part = split_loss(criterion, logits, y, weights, tail, 0.5)
    torch.testing.assert_close(
        head + tail_part, sample_attention_loss(criterion, logits, y, weights, 0.5)
    )


def test_imbsam_tail_classes_and_validation():
    assert TAIL_THRESHOLD == 20
    clf = LongTailClassifier(optimizer="sam", sam_tail_only=True, max_epochs=1)
    clf.fit(X_LT, Y_LT)
    counts = np.bincount(Y_LT)
    np.testing.assert_array_equal(
        clf.net_.sam_tail_classes.cpu().numpy(), counts < TAIL_THRESHOLD
    )
    assert clf.net_.sam_tail_classes.any()
    plain = LongTailClassifier(optimizer="sam", max_epochs=1).fit(X_LT, Y_LT)
    assert plain.net_.sam_tail_classes is None
    for optimizer in ("sgd", "adam", "adamw"):
        with pytest.raises(ValueError, match=r"sam_tail_only=True .* optimizer='sam'"):
            LongTailClassifier(optimizer=optimizer, sam_tail_only=True).fit(X_LT, Y_LT)


@pytest.mark.parametrize(
    ("loss", "schedule"),
    [
        ("ce", None),
        ("focal", "reweight"),
        ("ldam", "drw"),
        ("logit_adjusted", "resample"),
        ("balanced_softmax", "drs"),
        ("vs", "drw"),
        ("sigmoid", None),
        ("sigmoid_focal", "reweight"),
    ],
)
def test_classifier_with_imbsam_fits_and_predicts(loss, schedule):
    weights = np.random.RandomState(0).uniform(0.5, 2.0, size=Y_LT.size)
    clf = LongTailClassifier(
        loss=loss,
        reweight_schedule=schedule,
        deferral_start=0.5,
        optimizer="sam",
        sam_rho=0.5,
        sam_tail_only=True,
        max_epochs=3,
        random_state=0,
    ).fit(X_LT, Y_LT, sample_weight=weights)
    assert np.isfinite(clf.predict_proba(X_LT)).all()
    plain = clone(clf).set_params(sam_tail_only=False).fit(X_LT, Y_LT, weights)
    assert not np.allclose(clf.predict_proba(X_LT), plain.predict_proba(X_LT))


def test_image_classifier_with_imbsam_mixup_and_attention():
    rng = np.random.RandomState(0)
    X = rng.rand(60, 1, 8, 8).astype(np.float32)
    y = np.repeat([0, 1, 2], [40, 15, 5])
    clf = LongTailImageClassifier(
        architecture="cnn",
        optimizer="sam",
        sam_tail_only=True,
        mixup="cutmix",
        sample_attention=2.0,
        max_epochs=2,
        batch_size=16,
        random_state=0,
    ).fit(X, y)
    bn = next(m for m in clf.net_.module_.modules() if isinstance(m, nn.BatchNorm2d))
    steps = sum(len(row["batches"]) for row in clf.history_)
    assert int(bn.num_batches_tracked) == steps
    assert np.isfinite(clf.predict_proba(X)).all()


def test_imbsam_model_saves_loads_with_its_tail_classes(tmp_path):
    clf = LongTailClassifier(
        optimizer="sam", sam_tail_only=True, max_epochs=1, random_state=0
    ).fit(X_LT, Y_LT)
    path = os.fspath(tmp_path / "imbsam.pt")
    save_model(clf, path)
    loaded = load_model(path)
    assert loaded.sam_tail_only
    torch.testing.assert_close(loaded.net_.sam_tail_classes, clf.net_.sam_tail_classes)
    np.testing.assert_array_equal(loaded.predict_proba(X_LT), clf.predict_proba(X_LT))
