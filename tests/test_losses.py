"""Tests of sklearn_lt.losses against computations written out by hand."""

import copy
import inspect
import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sklearn_lt.losses import (
    LOSSES,
    BalancedSoftmaxLoss,
    CrossEntropyLoss,
    FocalLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    SigmoidCrossEntropyLoss,
    SigmoidFocalLoss,
    VSLoss,
    loss_parameters,
    make_loss,
)

COUNTS = [100.0, 40.0, 10.0, 3.0, 1.0]
N_CLASSES = len(COUNTS)
NAMES = sorted(LOSSES)
COUNT_LOSSES = ["balanced_softmax", "ldam", "logit_adjusted", "vs"]
COUNT_BUFFERS = {
    "balanced_softmax": {"log_prior"},
    "ce": set(),
    "focal": set(),
    "ldam": {"margins"},
    "logit_adjusted": {"log_prior"},
    "sigmoid": set(),
    "sigmoid_focal": set(),
    "vs": {"logit_scale", "logit_offset"},
}


def build(name, counts=COUNTS, **params):
    """A loss from the registry, given the class counts when it takes them."""
    if "class_counts" in loss_parameters(name):
        params["class_counts"] = counts
    return LOSSES[name](**params)


def random_batch(n_samples=7, n_classes=N_CLASSES, *, seed=0, scale=3.0, device="cpu"):
    generator = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(n_samples, n_classes, generator=generator)
    target = torch.randint(0, n_classes, (n_samples,), generator=generator)
    # Make sure every class appears, so weights of every class matter.
    target[: min(n_samples, n_classes)] = torch.arange(min(n_samples, n_classes))
    return (
        logits.to(device=device, dtype=torch.float64),
        target.to(device),
    )


# --- Independent reference computations -------------------------------------


def log_softmax_by_hand(z):
    shift = z.max(dim=1, keepdim=True).values
    return z - shift - torch.log(torch.exp(z - shift).sum(dim=1, keepdim=True))


def pick(matrix, target):
    return matrix[torch.arange(matrix.shape[0], device=matrix.device), target]


def ce_ref(z, y):
    return -pick(log_softmax_by_hand(z), y)


def focal_ref(z, y, gamma):
    log_p = pick(log_softmax_by_hand(z), y)
    return (1.0 - torch.exp(log_p)) ** gamma * -log_p


def counts_tensor(counts, like):
    return torch.tensor(counts, dtype=torch.float64, device=like.device)


def ldam_margins_ref(counts, max_margin):
    n = np.asarray(counts, dtype=np.float64)
    delta = 1.0 / n**0.25
    return delta * (max_margin / delta.max())


def ldam_ref(z, y, counts, max_margin=0.5, scale=30.0):
    delta = torch.tensor(ldam_margins_ref(counts, max_margin), device=z.device)
    adjusted = z.clone()
    rows = torch.arange(z.shape[0], device=z.device)
    adjusted[rows, y] = z[rows, y] - delta[y]
    return ce_ref(scale * adjusted, y)


def la_ref(z, y, counts, tau=1.0):
    n = counts_tensor(counts, z)
    return ce_ref(z + tau * torch.log(n / n.sum()), y)


def balanced_softmax_ref(z, y, counts):
    return ce_ref(z + torch.log(counts_tensor(counts, z)), y)


def vs_ref(z, y, counts, gamma=0.05, tau=1.0):
    n = counts_tensor(counts, z)
    delta = (n / n.max()) ** gamma
    return ce_ref(delta * z + tau * torch.log(n / n.sum()), y)


def sigmoid_focal_ref(z, y, gamma):
    t = torch.zeros_like(z)
    t[torch.arange(z.shape[0], device=z.device), y] = 1.0
    p = 1.0 / (1.0 + torch.exp(-z))
    p_t = t * p + (1.0 - t) * (1.0 - p)
    return ((1.0 - p_t) ** gamma * -torch.log(p_t)).sum(dim=1)


def sigmoid_ce_ref(z, y):
    t = torch.zeros_like(z)
    t[torch.arange(z.shape[0], device=z.device), y] = 1.0
    p = 1.0 / (1.0 + torch.exp(-z))
    return -(t * torch.log(p) + (1.0 - t) * torch.log(1.0 - p)).sum(dim=1)


# (name, constructor parameters, reference of the per-example loss)
REFERENCE_CASES = [
    ("ce", {}, ce_ref),
    ("focal", {"gamma": 1.0}, lambda z, y: focal_ref(z, y, 1.0)),
    ("focal", {"gamma": 2.0}, lambda z, y: focal_ref(z, y, 2.0)),
    ("focal", {"gamma": 0.5}, lambda z, y: focal_ref(z, y, 0.5)),
    ("ldam", {}, lambda z, y: ldam_ref(z, y, COUNTS)),
    (
        "ldam",
        {"max_margin": 0.3, "scale": 10.0},
        lambda z, y: ldam_ref(z, y, COUNTS, 0.3, 10.0),
    ),
    ("logit_adjusted", {}, lambda z, y: la_ref(z, y, COUNTS)),
    ("logit_adjusted", {"tau": 1.7}, lambda z, y: la_ref(z, y, COUNTS, 1.7)),
    ("balanced_softmax", {}, lambda z, y: balanced_softmax_ref(z, y, COUNTS)),
    ("vs", {}, lambda z, y: vs_ref(z, y, COUNTS)),
    ("vs", {"gamma": 0.8, "tau": 0.5}, lambda z, y: vs_ref(z, y, COUNTS, 0.8, 0.5)),
    ("sigmoid", {}, sigmoid_ce_ref),
    ("sigmoid_focal", {"gamma": 1.0}, lambda z, y: sigmoid_focal_ref(z, y, 1.0)),
    ("sigmoid_focal", {"gamma": 2.0}, lambda z, y: sigmoid_focal_ref(z, y, 2.0)),
    ("sigmoid_focal", {"gamma": 0.5}, lambda z, y: sigmoid_focal_ref(z, y, 0.5)),
]


def test_reference_cases_cover_every_loss():
    assert {name for name, _, _ in REFERENCE_CASES} == set(LOSSES)


@pytest.mark.parametrize(
    ("name", "params", "reference"),
    REFERENCE_CASES,
    ids=[f"{name}-{params}" for name, params, _ in REFERENCE_CASES],
)
def test_loss_matches_reference(name, params, reference, device):
    logits, target = random_batch(device=device)
    if name == "ldam":
        logits = torch.tanh(logits)  # cosine logits
    expected = reference(logits, target)

    per_example = build(name, reduction="none", **params).to(device)(logits, target)
    mean = build(name, **params).to(device)(logits, target)
    total = build(name, reduction="sum", **params).to(device)(logits, target)

    assert per_example.shape == (logits.shape[0],)
    torch.testing.assert_close(per_example, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(mean, expected.mean(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(total, expected.sum(), rtol=1e-5, atol=1e-6)


def test_ce_matches_torch():
    logits, target = random_batch()
    torch.testing.assert_close(
        CrossEntropyLoss()(logits, target), F.cross_entropy(logits, target)
    )


def test_docstring_values_by_hand():
    # CE of [2, 0] for class 0 is log(1 + e^-2).
    value = CrossEntropyLoss()(torch.tensor([[2.0, 0.0]]), torch.tensor([0]))
    assert value.item() == pytest.approx(math.log1p(math.exp(-2.0)), rel=1e-6)
    # LA with uniform logits: -log(pi_y).
    value = LogitAdjustedLoss([90, 10])(torch.zeros(1, 2), torch.tensor([1]))
    assert value.item() == pytest.approx(-math.log(0.1), rel=1e-6)
    # Sigmoid CE of zero logits: C * log 2.
    value = SigmoidCrossEntropyLoss()(torch.zeros(1, 3), torch.tensor([0]))
    assert value.item() == pytest.approx(3 * math.log(2.0), rel=1e-6)


# --- LDAM ---------------------------------------------------------------------


def test_ldam_margins_formula():
    loss = LDAMLoss(COUNTS, max_margin=0.4)
    margins = loss.margins.double().numpy()
    np.testing.assert_allclose(margins, ldam_margins_ref(COUNTS, 0.4), rtol=1e-6)
    assert margins.max() == pytest.approx(0.4)
    assert np.argmax(margins) == np.argmin(COUNTS)
    # Delta_j * n_j^(1/4) is the same constant K for every class.
    k = margins * np.asarray(COUNTS) ** 0.25
    np.testing.assert_allclose(k, k[0], rtol=1e-6)
    # Rarer classes get larger margins.
    assert np.all(np.diff(margins) > 0)


def test_ldam_subtracts_margin_before_scaling():
    logits, target = random_batch()
    logits = torch.tanh(logits)
    scale = 30.0
    loss = LDAMLoss(COUNTS, max_margin=0.5, scale=scale, reduction="none")
    margins = torch.tensor(ldam_margins_ref(COUNTS, 0.5))
    wrong = ce_ref(scale * logits, target) - scale * margins[target]
    actual = loss(logits, target)
    torch.testing.assert_close(
        actual, ldam_ref(logits, target, COUNTS, 0.5, scale), rtol=1e-5, atol=1e-6
    )
    assert (actual - wrong).abs().max() > 1e-2
    # LDAM only penalizes more than CE: the margin lowers the true logit.
    assert torch.all(actual >= ce_ref(scale * logits, target) - 1e-9)


def test_ldam_changes_only_true_class_logit():
    # With the true class far ahead, the margin still costs something; with the
    # true class's logit the only one moved, the loss is CE(s * (z - m e_y)).
    logits = torch.tensor([[0.2, 0.1, 0.0]], dtype=torch.float64)
    target = torch.tensor([2])
    loss = LDAMLoss([1, 1, 1], max_margin=0.5, scale=1.0)
    expected = ce_ref(torch.tensor([[0.2, 0.1, -0.5]], dtype=torch.float64), target)
    torch.testing.assert_close(loss(logits, target), expected[0])


# --- Special cases ------------------------------------------------------------


def _outputs(first, second, logits, target):
    return first(logits, target), second(logits, target)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            lambda: LDAMLoss(COUNTS, max_margin=0.0, scale=1.0, reduction="none"),
            lambda: CrossEntropyLoss(reduction="none"),
        ),
        (
            lambda: LogitAdjustedLoss(COUNTS, tau=0.0, reduction="none"),
            lambda: CrossEntropyLoss(reduction="none"),
        ),
        (
            lambda: VSLoss(COUNTS, gamma=0.0, tau=1.0, reduction="none"),
            lambda: LogitAdjustedLoss(COUNTS, tau=1.0, reduction="none"),
        ),
        (
            lambda: VSLoss(COUNTS, gamma=0.0, tau=0.6, reduction="none"),
            lambda: LogitAdjustedLoss(COUNTS, tau=0.6, reduction="none"),
        ),
        (
            lambda: VSLoss(COUNTS, gamma=0.0, tau=0.0, reduction="none"),
            lambda: CrossEntropyLoss(reduction="none"),
        ),
        (
            lambda: BalancedSoftmaxLoss(COUNTS, reduction="none"),
            lambda: LogitAdjustedLoss(COUNTS, tau=1.0, reduction="none"),
        ),
        (
            lambda: FocalLoss(gamma=0.0, reduction="none"),
            lambda: CrossEntropyLoss(reduction="none"),
        ),
        (
            lambda: SigmoidFocalLoss(gamma=0.0, reduction="none"),
            lambda: SigmoidCrossEntropyLoss(reduction="none"),
        ),
    ],
    ids=[
        "ldam-m0-s1=ce",
        "la-tau0=ce",
        "vs-gamma0=la",
        "vs-gamma0-tau0.6=la-tau0.6",
        "vs-gamma0-tau0=ce",
        "balanced_softmax=la-tau1",
        "focal-gamma0=ce",
        "sigmoid_focal-gamma0=sigmoid",
    ],
)
def test_special_cases(first, second, device):
    logits, target = random_batch(device=device)
    a, b = _outputs(first().to(device), second().to(device), logits, target)
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_special_cases_are_not_trivial():
    # The parameters that the special cases switch off do change the loss.
    logits, target = random_batch()
    ce = CrossEntropyLoss(reduction="none")(logits, target)
    for loss in [
        LDAMLoss(COUNTS, max_margin=0.5, scale=1.0, reduction="none"),
        LogitAdjustedLoss(COUNTS, tau=0.5, reduction="none"),
        VSLoss(COUNTS, gamma=0.3, tau=0.0, reduction="none"),
        FocalLoss(gamma=0.5, reduction="none"),
    ]:
        assert (loss(logits, target) - ce).abs().max() > 1e-3, loss


def test_vs_buffers_formula():
    loss = VSLoss(COUNTS, gamma=0.4, tau=0.7)
    n = np.asarray(COUNTS)
    np.testing.assert_allclose(loss.logit_scale.numpy(), (n / n.max()) ** 0.4, 1e-6)
    np.testing.assert_allclose(
        loss.logit_offset.numpy(), 0.7 * np.log(n / n.sum()), rtol=1e-6
    )


def test_logit_adjusted_log_prior():
    loss = LogitAdjustedLoss(COUNTS)
    n = np.asarray(COUNTS)
    np.testing.assert_allclose(loss.log_prior.numpy(), np.log(n / n.sum()), 1e-6)


@pytest.mark.parametrize("name", COUNT_LOSSES)
def test_count_losses_invariant_to_scaling_counts(name):
    # pi_j, n_j / n_max and the normalized LDAM margins depend on the counts only
    # up to a common factor, and so does the loss; fractional (weighted) counts
    # are accepted by check_class_counts.
    logits, target = random_batch()
    logits = torch.tanh(logits)
    counts = np.array([30.0, 10.0, 6.0, 3.0, 1.0])
    reference = build(name, counts=counts, reduction="none")(logits, target)
    for factor in [1e-2, 0.1, 7.0]:
        scaled = build(name, counts=counts * factor, reduction="none")
        torch.testing.assert_close(
            scaled(logits, target), reference, msg=f"counts scaled by {factor}"
        )


# --- Weighting convention -----------------------------------------------------


def test_weighted_mean_matches_torch_cross_entropy():
    logits, target = random_batch(n_samples=20)
    weight = torch.tensor([0.1, 0.5, 1.0, 2.0, 4.0])
    torch.testing.assert_close(
        CrossEntropyLoss(weight=weight)(logits, target),
        F.cross_entropy(logits, target, weight=weight.double()),
    )
    torch.testing.assert_close(
        CrossEntropyLoss(weight=weight, reduction="sum")(logits, target),
        F.cross_entropy(logits, target, weight=weight.double(), reduction="sum"),
    )
    torch.testing.assert_close(
        CrossEntropyLoss(weight=weight, reduction="none")(logits, target),
        F.cross_entropy(logits, target, weight=weight.double(), reduction="none"),
    )


@pytest.mark.parametrize("name", NAMES)
def test_weighted_reductions(name, device):
    logits, target = random_batch(n_samples=12, device=device)
    weight = torch.tensor([0.1, 0.5, 1.0, 2.0, 4.0])
    sample_weight = torch.linspace(0.2, 3.0, 12, dtype=torch.float64, device=device)
    unweighted = build(name, reduction="none").to(device)(logits, target)
    w = weight.double().to(device)[target]

    def run(reduction, **kwargs):
        loss = build(name, weight=weight, reduction=reduction).to(device)
        return loss(logits, target, **kwargs)

    torch.testing.assert_close(run("none"), w * unweighted)
    torch.testing.assert_close(run("sum"), (w * unweighted).sum())
    torch.testing.assert_close(run("mean"), (w * unweighted).sum() / w.sum())
    # Sample weights multiply the class weights.
    ws = w * sample_weight
    torch.testing.assert_close(
        run("none", sample_weight=sample_weight), ws * unweighted
    )
    torch.testing.assert_close(
        run("mean", sample_weight=sample_weight), (ws * unweighted).sum() / ws.sum()
    )
    torch.testing.assert_close(
        run("sum", sample_weight=sample_weight), (ws * unweighted).sum()
    )
    # Sample weights alone.
    alone = build(name).to(device)(logits, target, sample_weight=sample_weight)
    torch.testing.assert_close(
        alone, (sample_weight * unweighted).sum() / sample_weight.sum()
    )
    # The weighted mean is not the plain mean.
    assert not torch.isclose(run("mean"), unweighted.mean())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_reduction_shapes(name, reduction):
    logits, target = random_batch(n_samples=6)
    unweighted = build(name, reduction="none")(logits, target)
    out = build(name, reduction=reduction)(logits, target)
    if reduction == "none":
        assert out.shape == (6,)
        assert torch.all(unweighted >= 0)
        assert torch.any(unweighted > 0)
    elif reduction == "sum":
        assert out.shape == ()
        torch.testing.assert_close(out, unweighted.sum())
    else:
        assert out.shape == ()
        torch.testing.assert_close(out, unweighted.mean())
    assert out.dtype == torch.float64


@pytest.mark.parametrize("name", NAMES)
def test_all_zero_weights_give_zero_not_nan(name):
    logits, target = random_batch(n_samples=4)
    logits.requires_grad_(True)
    target = torch.tensor([0, 1, 1, 0])
    weight = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0])
    for loss, kwargs in [
        (build(name, weight=weight), {}),
        (build(name), {"sample_weight": torch.zeros(4)}),
        (build(name, weight=torch.ones(N_CLASSES)), {"sample_weight": torch.zeros(4)}),
    ]:
        value = loss(logits, target, **kwargs)
        assert value.item() == 0.0
        (grad,) = torch.autograd.grad(value, logits)
        assert torch.all(grad == 0)
    # An empty batch has a mean of zero, too.
    empty = build(name)(torch.zeros(0, N_CLASSES), torch.zeros(0, dtype=torch.long))
    assert empty.item() == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_weight_buffer_changed_in_place(name):
    logits, target = random_batch(n_samples=10)
    loss = build(name, weight=torch.ones(N_CLASSES))
    buffer = loss.weight
    before = loss(logits, target)
    torch.testing.assert_close(before, build(name)(logits, target))
    new_weight = torch.tensor([0.2, 0.3, 1.0, 3.0, 5.0])
    with torch.no_grad():
        loss.weight.copy_(new_weight)
    after = loss(logits, target)
    assert loss.weight is buffer
    assert not torch.isclose(before, after)
    torch.testing.assert_close(after, build(name, weight=new_weight)(logits, target))


def test_weight_argument_is_copied():
    weight = torch.ones(N_CLASSES)
    loss = CrossEntropyLoss(weight=weight)
    with torch.no_grad():
        loss.weight.mul_(2.0)
    assert torch.all(weight == 1.0)


# --- Buffers, devices, pickling ---------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_count_tensors_are_buffers(name, device):
    loss = build(name, weight=torch.ones(N_CLASSES))
    expected = COUNT_BUFFERS[name] | {"weight"}
    assert set(loss.state_dict()) == expected
    assert {key for key, _ in loss.named_buffers()} == expected
    assert not list(loss.parameters())

    moved = loss.to(device)
    for key in expected:
        assert getattr(moved, key).device.type == device.type

    doubled = build(name, weight=torch.ones(N_CLASSES)).double()
    for key in expected:
        assert getattr(doubled, key).dtype == torch.float64

    # A state dict restores the buffers into a loss built from other counts.
    other = build(name, counts=[1.0, 2.0, 3.0, 4.0, 5.0], weight=torch.zeros(5))
    other.load_state_dict(build(name, weight=torch.ones(N_CLASSES)).state_dict())
    logits, target = random_batch()
    torch.testing.assert_close(other(logits, target), build(name)(logits, target))


@pytest.mark.parametrize("name", NAMES)
def test_pickle_and_deepcopy(name):
    logits, target = random_batch()
    loss = build(name, weight=torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    expected = loss(logits, target)
    restored = pickle.loads(pickle.dumps(loss))
    copied = copy.deepcopy(loss)
    assert type(restored) is type(loss)
    torch.testing.assert_close(restored(logits, target), expected)
    torch.testing.assert_close(copied(logits, target), expected)
    # The copy owns its buffers.
    with torch.no_grad():
        copied.weight.fill_(1.0)
    torch.testing.assert_close(loss(logits, target), expected)
    assert not torch.isclose(copied(logits, target), expected)


def test_double_loss_in_float64_matches_float32():
    logits, target = random_batch()
    for name in NAMES:
        single = build(name, weight=torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
        double = copy.deepcopy(single).double()
        torch.testing.assert_close(
            double(logits, target), single(logits, target), rtol=1e-6, atol=1e-6
        )


# --- Gradients ----------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_gradcheck(name, weighted, reduction):
    logits, target = random_batch(n_samples=5, scale=1.0)
    logits = torch.tanh(logits).requires_grad_(True)
    params = {"reduction": reduction}
    if name in ("focal", "sigmoid_focal"):
        params["gamma"] = 1.5
    kwargs = {}
    if weighted:
        params["weight"] = torch.tensor([0.5, 1.0, 1.5, 2.0, 3.0])
        kwargs["sample_weight"] = torch.tensor(
            [1.0, 0.5, 2.0, 0.0, 1.5], dtype=torch.float64
        )
    loss = build(name, **params)
    assert torch.autograd.gradcheck(
        lambda z: loss(z, target, **kwargs), (logits,), eps=1e-6, atol=1e-5
    )


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_reference_gradient(name):
    # Autograd through the library and through the hand-written formula agree.
    params, reference = next((p, r) for n, p, r in REFERENCE_CASES if n == name)
    logits, target = random_batch(scale=1.0)
    logits = torch.tanh(logits)
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    build(name, reduction="sum", **params)(a, target).backward()
    reference(b, target).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6)


# --- Numerical robustness -----------------------------------------------------


def _assert_finite_loss_and_grad(loss, logits, target, **kwargs):
    logits = logits.detach().clone().requires_grad_(True)
    value = loss(logits, target, **kwargs)
    assert torch.isfinite(value).all(), value
    (grad,) = torch.autograd.grad(value.sum(), logits)
    assert torch.isfinite(grad).all(), grad
    return value


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_logits(name, dtype, device):
    logits = torch.tensor(
        [
            [1e4, -1e4, 0.0, 1e4, -1e4],
            [-1e4, 1e4, -1e4, -1e4, -1e4],
            [1e4, 1e4, 1e4, 1e4, 1e4],
            [-1e4, -1e4, -1e4, -1e4, -1e4],
            [0.0, 0.0, 0.0, 0.0, 1e4],
        ],
        dtype=dtype,
        device=device,
    )
    for target in [torch.tensor([0, 1, 2, 3, 4]), torch.tensor([1, 0, 4, 2, 0])]:
        for gamma_params in [{}, {"gamma": 0.5}] if "focal" in name else [{}]:
            loss = build(name, **gamma_params).to(device)
            value = _assert_finite_loss_and_grad(loss, logits, target.to(device))
            assert value.item() >= 0.0


@pytest.mark.parametrize("name", NAMES)
def test_many_classes_wide_counts(name):
    n_classes = 1000
    counts = np.round(np.logspace(0, 4, n_classes))
    assert counts.min() == 1 and counts.max() == 10000
    generator = torch.Generator().manual_seed(1)
    logits = 5.0 * torch.randn(64, n_classes, generator=generator)
    target = torch.randint(0, n_classes, (64,), generator=generator)
    target[0], target[1] = 0, n_classes - 1
    weight = torch.rand(n_classes, generator=generator)
    loss = build(name, counts=counts, weight=weight)
    _assert_finite_loss_and_grad(loss, logits, target)
    _assert_finite_loss_and_grad(loss, torch.tanh(logits), target)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_logits_are_upcast(name, dtype):
    # 6e4 fits in float16, but LDAM's scale of 30 would overflow it.
    logits = torch.tensor(
        [[6e4, -6e4, 0.0, 1.0, 2.0], [0.5, 0.25, -0.5, 1.0, -1.0]], dtype=dtype
    )
    target = torch.tensor([1, 3])
    loss = build(name)
    value = _assert_finite_loss_and_grad(loss, logits, target)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, loss(logits.float(), target))


@pytest.mark.parametrize("name", NAMES)
def test_autocast_bfloat16_on_cpu(name):
    torch.manual_seed(0)
    layer = nn.Linear(8, N_CLASSES)
    with torch.no_grad():
        layer.weight.mul_(1e3)
    inputs = torch.randn(6, 8)
    target = torch.tensor([0, 1, 2, 3, 4, 0])
    loss = build(name)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = layer(inputs)
        value = loss(logits, target)
    assert logits.dtype == torch.bfloat16
    assert value.dtype == torch.float32
    assert torch.isfinite(value)
    value.backward()
    assert torch.isfinite(layer.weight.grad).all()
    torch.testing.assert_close(value, loss(logits.detach().float(), target))


# --- Zero-count classes -------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_zero_count_classes(name):
    counts = [100.0, 0.0, 10.0, 0.0, 1.0]
    loss = build(name, counts=counts, weight=torch.ones(N_CLASSES))
    for _, buffer in loss.named_buffers():
        assert torch.isfinite(buffer).all()
    if name == "ldam":
        margins = loss.margins
        assert margins[1].item() == pytest.approx(0.5)
        assert margins[3].item() == pytest.approx(0.5)
        assert margins.max().item() == pytest.approx(0.5)
    if name in ("logit_adjusted", "balanced_softmax"):
        assert loss.log_prior[1] == loss.log_prior.min()
        assert loss.log_prior[1] < loss.log_prior[0]
    if name == "vs":
        assert torch.all(loss.logit_scale > 0)
        assert loss.logit_scale[1] == loss.logit_scale.min()
        assert loss.logit_offset[1] == loss.logit_offset.min()
    logits, _ = random_batch(n_samples=5)
    target = torch.tensor([0, 1, 2, 3, 4])
    _assert_finite_loss_and_grad(loss, logits, target)
    _assert_finite_loss_and_grad(loss, torch.tanh(logits), target)


# --- Bad arguments ------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: LDAMLoss([-1, 2, 3]), "class_counts"),
        (lambda: LogitAdjustedLoss([np.nan, 2, 3]), "class_counts"),
        (lambda: VSLoss([1, np.inf]), "class_counts"),
        (lambda: BalancedSoftmaxLoss([[1, 2], [3, 4]]), "class_counts"),
        (lambda: LDAMLoss([0, 0, 0]), "class_counts"),
        (lambda: LogitAdjustedLoss([]), "class_counts"),
        (lambda: VSLoss(["a", "b"]), "class_counts"),
        (lambda: LDAMLoss([10, 1], max_margin=-0.1), "max_margin"),
        (lambda: LDAMLoss([10, 1], max_margin=float("nan")), "max_margin"),
        (lambda: LDAMLoss([10, 1], scale=0.0), "scale"),
        (lambda: LDAMLoss([10, 1], scale=-1.0), "scale"),
        (lambda: LDAMLoss([10, 1], scale=float("inf")), "scale"),
        (lambda: LogitAdjustedLoss([10, 1], tau=-1.0), "tau"),
        (lambda: VSLoss([10, 1], tau=-0.5), "tau"),
        (lambda: VSLoss([10, 1], gamma=-0.5), "gamma"),
        (lambda: FocalLoss(gamma=-1.0), "gamma"),
        (lambda: FocalLoss(gamma=True), "gamma"),
        (lambda: FocalLoss(gamma="2"), "gamma"),
        (lambda: SigmoidFocalLoss(gamma=-0.1), "gamma"),
        (lambda: SigmoidFocalLoss(gamma=float("inf")), "gamma"),
        (lambda: CrossEntropyLoss(weight=torch.ones(2, 2)), "weight"),
        (lambda: CrossEntropyLoss(weight=torch.tensor([1.0, -1.0])), "weight"),
        (lambda: CrossEntropyLoss(weight=torch.tensor([1.0, np.nan])), "weight"),
        (lambda: LDAMLoss([10, 1], weight=torch.ones(3)), "weight"),
        (lambda: VSLoss([10, 1], weight=torch.ones(3)), "weight"),
    ],
)
def test_bad_constructor_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("name", NAMES)
def test_bad_reduction(name):
    with pytest.raises(ValueError, match="reduction"):
        build(name, reduction="average")


FORWARD_ERRORS = [
    # (description, logits, target, kwargs, match)
    ("float targets", None, torch.tensor([0.0, 1.0, 2.0]), {}, "target"),
    ("bool targets", None, torch.tensor([True, False, True]), {}, "target"),
    ("2-D targets", None, torch.tensor([[0], [1], [2]]), {}, "target"),
    ("short targets", None, torch.tensor([0, 1]), {}, "target"),
    ("negative targets", None, torch.tensor([0, -1, 2]), {}, "target"),
    ("targets >= C", None, torch.tensor([0, 1, N_CLASSES]), {}, "target"),
    ("list targets", None, [0, 1, 2], {}, "target"),
    ("1-D logits", torch.zeros(N_CLASSES), torch.tensor([0]), {}, "logits"),
    ("3-D logits", torch.zeros(3, N_CLASSES, 1), torch.tensor([0, 1, 2]), {}, "logits"),
    ("integer logits", torch.zeros(3, N_CLASSES, dtype=torch.long), None, {}, "logits"),
    ("numpy logits", np.zeros((3, N_CLASSES)), None, {}, "logits"),
    (
        "sample_weight shape",
        None,
        None,
        {"sample_weight": torch.ones(4)},
        "sample_weight",
    ),
    (
        "2-D sample_weight",
        None,
        None,
        {"sample_weight": torch.ones(3, 1)},
        "sample_weight",
    ),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("logits", "target", "kwargs", "match"),
    [case[1:] for case in FORWARD_ERRORS],
    ids=[case[0] for case in FORWARD_ERRORS],
)
def test_bad_forward_arguments(name, logits, target, kwargs, match):
    logits = torch.zeros(3, N_CLASSES) if logits is None else logits
    target = torch.tensor([0, 1, 2]) if target is None else target
    with pytest.raises(ValueError, match=match):
        build(name)(logits, target, **kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_weight_length_must_match_logits(name):
    loss = build(name, weight=torch.ones(N_CLASSES))
    with pytest.raises(ValueError, match=r"weight|logits"):
        loss(torch.zeros(2, N_CLASSES + 1), torch.tensor([0, 1]))


@pytest.mark.parametrize("name", COUNT_LOSSES)
def test_logits_columns_must_match_class_counts(name):
    loss = build(name)
    with pytest.raises(ValueError, match="logits"):
        loss(torch.zeros(2, N_CLASSES - 1), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="logits"):
        loss(torch.zeros(2, N_CLASSES + 2), torch.tensor([0, 1]))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.uint8])
def test_integer_target_dtypes_accepted(name, dtype):
    logits, target = random_batch()
    loss = build(name)
    torch.testing.assert_close(loss(logits, target.to(dtype)), loss(logits, target))


# --- Registry and make_loss ---------------------------------------------------


def test_registry_names():
    assert set(LOSSES) == {
        "ce",
        "focal",
        "ldam",
        "logit_adjusted",
        "balanced_softmax",
        "vs",
        "sigmoid",
        "sigmoid_focal",
    }
    assert LOSSES["ldam"].cosine_head
    assert not any(LOSSES[n].cosine_head for n in NAMES if n != "ldam")
    assert {n for n in NAMES if LOSSES[n].activation == "sigmoid"} == {
        "sigmoid",
        "sigmoid_focal",
    }
    assert {n for n in NAMES if LOSSES[n].activation == "softmax"} == set(NAMES) - {
        "sigmoid",
        "sigmoid_focal",
    }


# --- The link: what the classifiers ask the loss --------------------------------


SIGMOID_LOSSES = {"sigmoid", "sigmoid_focal"}


@pytest.mark.parametrize("name", NAMES)
def test_prediction_log_scores_are_the_link_of_the_loss(name):
    loss = build(name)
    outputs = torch.tensor([[0.3, -1.2, 2.0, 0.0, -0.4]], dtype=torch.float64)
    logits = loss.prediction_logits(outputs)
    expected = F.logsigmoid(logits) if name in SIGMOID_LOSSES else logits
    torch.testing.assert_close(loss.prediction_log_scores(outputs), expected)
    if name == "ldam":
        torch.testing.assert_close(logits, loss.scale * outputs)


#: The power of the training prior that each loss's raw outputs correspond to.
OUTPUT_PRIOR_POWER = {
    "ce": 1.0,
    "focal": 1.0,
    "ldam": 1.0,
    "sigmoid": 1.0,
    "sigmoid_focal": 1.0,
    "logit_adjusted": 0.0,  # tau=1: uniform
    "balanced_softmax": 0.0,
    "vs": 0.0,  # tau=1 (the scaling is ignored)
}


@pytest.mark.parametrize("name", NAMES)
def test_output_log_prior_is_the_prior_the_raw_outputs_target(name):
    log_prior = torch.log(torch.tensor(COUNTS, dtype=torch.float64) / sum(COUNTS))
    output = build(name).output_log_prior(log_prior)
    assert output.dtype == torch.float64
    expected = OUTPUT_PRIOR_POWER[name] * log_prior
    torch.testing.assert_close(output, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("tau", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("loss_class", [LogitAdjustedLoss, VSLoss])
def test_prior_adjusted_outputs_target_the_prior_to_the_power_one_minus_tau(
    loss_class, tau
):
    log_prior = torch.log(torch.tensor(COUNTS, dtype=torch.float64) / sum(COUNTS))
    loss = loss_class(COUNTS, tau=tau)
    expected = (1 - tau) * log_prior
    torch.testing.assert_close(
        loss.output_log_prior(log_prior), expected, atol=1e-6, rtol=0
    )
    # What the loss adds to the raw logits in training (for zero logits, its
    # shift) takes them from the prior they target to the training prior.
    outputs = torch.zeros(1, N_CLASSES, dtype=torch.float64)
    shift = loss._adjusted_logits(outputs, torch.zeros(1, dtype=torch.long))[0]
    torch.testing.assert_close(
        shift, log_prior - loss.output_log_prior(log_prior), atol=1e-6, rtol=0
    )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n_classes", [2, 3, 10])
def test_initialize_head(name, n_classes):
    torch.manual_seed(0)
    head = nn.Linear(4, n_classes)
    weight, bias = head.weight.detach().clone(), head.bias.detach().clone()
    build(name).initialize_head(head, n_classes)
    torch.testing.assert_close(head.weight, weight)  # never touched
    if name in SIGMOID_LOSSES:
        # Every class starts at probability 1 / C: sigmoid(-log(C - 1)).
        torch.testing.assert_close(
            torch.sigmoid(head.bias), torch.full((n_classes,), 1.0 / n_classes)
        )
    else:
        torch.testing.assert_close(head.bias, bias)


def test_initialize_head_without_bias():
    head = nn.Linear(4, 3, bias=False)
    SigmoidFocalLoss().initialize_head(head, 3)
    assert head.bias is None


@pytest.mark.parametrize("name", NAMES)
def test_head_bias_options(name):
    options = build(name).head_bias_options()
    assert options == ({"weight_decay": 0.0} if name in SIGMOID_LOSSES else {})


@pytest.mark.parametrize("name", NAMES)
def test_loss_parameters_match_signature(name):
    signature = inspect.signature(LOSSES[name].__init__)
    expected = set(signature.parameters) - {"self"}
    assert loss_parameters(name) == expected
    assert loss_parameters(LOSSES[name]) == expected
    assert {"weight", "reduction"} <= expected
    assert ("class_counts" in expected) == (name in COUNT_LOSSES)


def test_loss_parameters_values():
    assert loss_parameters("ldam") == {
        "class_counts",
        "max_margin",
        "scale",
        "weight",
        "reduction",
    }
    assert loss_parameters("vs") == {
        "class_counts",
        "gamma",
        "tau",
        "weight",
        "reduction",
    }
    assert loss_parameters("ce") == {"weight", "reduction"}


@pytest.mark.parametrize("name", NAMES)
def test_make_loss_builds_registry_class(name):
    loss = make_loss(name, COUNTS, reduction="sum")
    assert type(loss) is LOSSES[name]
    assert loss.reduction == "sum"
    logits, target = random_batch()
    torch.testing.assert_close(
        loss(logits, target), build(name, reduction="sum")(logits, target)
    )


def test_make_loss_passes_parameters():
    loss = make_loss("ldam", [100, 10], max_margin=0.3, scale=10.0)
    assert loss.max_margin == 0.3 and loss.scale == 10.0
    assert loss.margins.max().item() == pytest.approx(0.3)
    loss = make_loss("vs", class_counts=[100, 10], gamma=0.5, tau=0.25)
    assert (loss.gamma, loss.tau) == (0.5, 0.25)
    loss = make_loss("focal", gamma=2.0)
    assert loss.gamma == 2.0
    # Losses without class_counts ignore it.
    assert make_loss("ce", [100, 10]).weight is None


def test_make_loss_errors():
    with pytest.raises(ValueError, match="not_a_loss"):
        make_loss("not_a_loss")
    with pytest.raises(ValueError, match="margin"):
        make_loss("focal", margin=0.5)
    with pytest.raises(ValueError, match="gamma"):
        make_loss("ldam", [10, 1], gamma=2.0)
    with pytest.raises(ValueError, match="loss"):
        make_loss(CrossEntropyLoss())  # an instance, not a class
    with pytest.raises(ValueError, match="loss"):
        make_loss(dict)
    for name in COUNT_LOSSES:
        with pytest.raises(ValueError, match="class_counts"):
            make_loss(name)


class _CustomLoss(nn.Module):
    def __init__(self, class_counts, alpha=1.0):
        super().__init__()
        self.class_counts = class_counts
        self.alpha = alpha

    def forward(self, logits, target):
        return self.alpha * F.cross_entropy(logits, target)


class _CustomLossNoCounts(nn.Module):
    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, logits, target):
        return self.alpha * F.cross_entropy(logits, target)


def test_make_loss_accepts_custom_module_class():
    assert loss_parameters(_CustomLoss) == {"class_counts", "alpha"}
    loss = make_loss(_CustomLoss, [3, 1], alpha=2.0)
    assert isinstance(loss, _CustomLoss)
    assert loss.class_counts == [3, 1] and loss.alpha == 2.0
    loss = make_loss(_CustomLossNoCounts, [3, 1], alpha=0.5)
    assert isinstance(loss, _CustomLossNoCounts) and loss.alpha == 0.5
    with pytest.raises(ValueError, match="beta"):
        make_loss(_CustomLossNoCounts, beta=1.0)
    with pytest.raises(ValueError, match="class_counts"):
        make_loss(_CustomLoss)


# --- Property test ------------------------------------------------------------


@st.composite
def loss_problems(draw):
    n_classes = draw(st.integers(2, 6))
    n_samples = draw(st.integers(1, 6))
    finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
    logits = draw(
        st.lists(
            st.lists(finite, min_size=n_classes, max_size=n_classes),
            min_size=n_samples,
            max_size=n_samples,
        )
    )
    count = st.one_of(st.integers(1, 10**6), st.floats(1e-6, 1e9))
    counts = draw(st.lists(count, min_size=n_classes, max_size=n_classes))
    target = draw(
        st.lists(st.integers(0, n_classes - 1), min_size=n_samples, max_size=n_samples)
    )
    name = draw(st.sampled_from(NAMES))
    params = {}
    if name in ("focal", "sigmoid_focal"):
        params["gamma"] = draw(st.floats(0.0, 5.0))
    elif name == "ldam":
        params["max_margin"] = draw(st.floats(0.0, 1.0))
        params["scale"] = draw(st.floats(0.1, 64.0))
    elif name == "logit_adjusted":
        params["tau"] = draw(st.floats(0.0, 3.0))
    elif name == "vs":
        params["gamma"] = draw(st.floats(0.0, 1.0))
        params["tau"] = draw(st.floats(0.0, 3.0))
    if draw(st.booleans()):
        params["weight"] = torch.tensor(
            draw(st.lists(st.floats(0.0, 10.0), min_size=n_classes, max_size=n_classes))
        )
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    return (
        name,
        params,
        reduction,
        counts,
        torch.tensor(logits, dtype=torch.float64),
        torch.tensor(target),
    )


@settings(max_examples=60, deadline=None)
@given(loss_problems())
def test_property_finite_loss_and_gradient(problem):
    name, params, reduction, counts, logits, target = problem
    loss = build(name, counts=counts, reduction=reduction, **params)
    value = _assert_finite_loss_and_grad(loss, logits, target)
    assert torch.all(value >= 0)
    # The same in float32.
    _assert_finite_loss_and_grad(loss, logits.float(), target)
