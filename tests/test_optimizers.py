"""Tests of sklearn_lt.classifiers._optimizers: the ``optimizer`` option."""

import pytest
import torch
from torch import nn

from sklearn_lt._sam import SAM
from sklearn_lt.classifiers._optimizers import (
    OPTIMIZERS,
    apply_optimizer_options,
    head_optimizer,
    optimizer_options,
)
from sklearn_lt.losses import CrossEntropyLoss, SigmoidCrossEntropyLoss

SETTINGS = {"momentum": 0.9, "weight_decay": 1e-3, "sam_rho": 0.1}


class _Network(nn.Module):
    """Names its parameters as the estimators' networks do (``network.head``)."""

    def __init__(self):
        super().__init__()
        self.network = nn.Module()
        self.network.body = nn.Linear(3, 4)
        self.network.head = nn.Linear(4, 2)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("sgd", {"weight_decay": 1e-3, "momentum": 0.9}),
        ("sam", {"weight_decay": 1e-3, "momentum": 0.9, "rho": 0.1}),
        ("adam", {"weight_decay": 1e-3}),
        ("adamw", {"weight_decay": 1e-3}),
    ],
)
def test_optimizer_options_build_each_optimizer(name, expected):
    options = optimizer_options(name, criterion=CrossEntropyLoss(), **SETTINGS)
    assert options == expected
    optimizer = OPTIMIZERS[name](_Network().parameters(), lr=0.1, **options)
    assert {key: optimizer.param_groups[0][key] for key in expected} == expected


def test_optimizer_options_give_the_head_bias_its_group():
    counts = torch.tensor([8.0, 2.0])
    options = optimizer_options(
        "sgd", criterion=SigmoidCrossEntropyLoss(counts), **SETTINGS
    )
    assert options["param_groups"] == [("network.head.bias", {"weight_decay": 0.0})]


def _sgd_with_bias_group(module):
    bias = module.network.head.bias
    rest = [p for p in module.parameters() if p is not bias]
    return torch.optim.SGD(
        [{"params": [bias], "weight_decay": 0.0}, {"params": rest}],
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-4,
    )


class _Wrapped(nn.Module):
    """Prefixes the parameter names with ``module.``, as DDP does."""

    def __init__(self, module):
        super().__init__()
        self.module = module


@pytest.mark.parametrize("wrapped", [False, True])
def test_apply_optimizer_options_updates_every_group_and_the_named_one(wrapped):
    network = _Network()
    optimizer = _sgd_with_bias_group(network)
    module = _Wrapped(network) if wrapped else network
    options = {
        "momentum": 0.5,
        "weight_decay": 0.2,
        "param_groups": [("network.head.bias", {"weight_decay": 0.0})],
    }
    apply_optimizer_options(optimizer, module, 0.01, options)
    bias_group, rest_group = optimizer.param_groups
    assert (bias_group["lr"], bias_group["initial_lr"]) == (0.01, 0.01)
    assert (rest_group["lr"], rest_group["initial_lr"]) == (0.01, 0.01)
    assert bias_group["momentum"] == rest_group["momentum"] == 0.5
    assert (bias_group["weight_decay"], rest_group["weight_decay"]) == (0.0, 0.2)
    assert "param_groups" in options  # the caller's dict is left as it was


def test_apply_optimizer_options_ignores_a_pattern_that_names_nothing():
    # A custom network without ``network.head.bias`` has one group: the
    # bias options must not reach the other parameters.
    module = nn.Sequential(nn.Linear(3, 2))
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1, weight_decay=1e-4)
    options = {
        "weight_decay": 0.2,
        "param_groups": [("network.head.bias", {"weight_decay": 0.0})],
    }
    apply_optimizer_options(optimizer, module, 0.05, options)
    assert optimizer.param_groups[0]["weight_decay"] == 0.2


@pytest.mark.parametrize(
    "name, expected",
    [("sgd", "SGD"), ("sam", "SGD"), ("adam", "Adam"), ("adamw", "AdamW")],
)
def test_head_optimizer_follows_the_first_stage_family(name, expected):
    head = nn.Linear(4, 3)
    optimizer = head_optimizer(
        name, head.parameters(), lr=0.2, momentum=0.8, weight_decay=1e-3
    )
    assert type(optimizer).__name__ == expected
    assert not isinstance(optimizer, SAM)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["weight_decay"]) == (0.2, 1e-3)
    if expected == "SGD":
        assert group["momentum"] == 0.8
