"""The estimators' ``optimizer`` option: torch optimizers and their settings.

One place maps ``optimizer="sgd" | "sam" | "adam" | "adamw"`` and the flat
estimator parameters (``lr``, ``momentum``, ``weight_decay``, ``sam_rho``) to
a torch optimizer: for the first stage's skorch net, for a warm start that
continues it, and for the second stage's head.
"""

import fnmatch

import torch

from .._sam import SAM

__all__ = [
    "OPTIMIZERS",
    "apply_optimizer_options",
    "head_optimizer",
    "optimizer_options",
]

#: The classes behind the estimators' ``optimizer`` option.
OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "sam": SAM,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}

#: The parameter that a loss's ``head_bias_options`` apply to.
HEAD_BIAS = "network.head.bias"


def optimizer_options(name, *, momentum, weight_decay, sam_rho, criterion):
    """Keyword arguments of ``OPTIMIZERS[name]`` (``lr`` aside).

    ``param_groups`` (skorch's ``[(pattern, options)]``) gives the head's
    bias the options of ``criterion.head_bias_options()`` when the loss has
    any (a loss from elsewhere that does not say leaves the bias with the
    other parameters).

    Examples
    --------
    >>> from sklearn_lt.classifiers._optimizers import optimizer_options
    >>> optimizer_options(
    ...     "sam", momentum=0.9, weight_decay=2e-4, sam_rho=0.05, criterion=None
    ... )
    {'weight_decay': 0.0002, 'momentum': 0.9, 'rho': 0.05}
    """
    options = {"weight_decay": weight_decay}
    if name in ("sgd", "sam"):
        options["momentum"] = momentum
    if name == "sam":
        options["rho"] = sam_rho
    bias_options = getattr(criterion, "head_bias_options", dict)()
    if bias_options:
        options["param_groups"] = [(HEAD_BIAS, bias_options)]
    return options


def apply_optimizer_options(optimizer, module, lr, options):
    """Set ``lr`` and ``options`` on every parameter group of a built optimizer.

    A warm start keeps the optimizer (its momentum buffers carry on) but takes
    the estimator's current settings. The learning-rate schedule multiplies
    each group's ``initial_lr``, so that is set with ``lr``. The groups of
    ``options["param_groups"]`` get their own options on top, found by the
    names of ``module``'s parameters.

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.classifiers._optimizers import apply_optimizer_options
    >>> module = torch.nn.Linear(2, 2)
    >>> optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    >>> apply_optimizer_options(optimizer, module, 0.01, {"momentum": 0.5})
    >>> optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["momentum"]
    (0.01, 0.5)
    """
    options = dict(options)
    named_groups = options.pop("param_groups", [])
    groups = optimizer.param_groups
    for group in groups:
        group.update(options, lr=lr, initial_lr=lr)
    # A module wrapped for distributed training (DDP) prefixes its parameter
    # names with "module."; skorch matched the patterns before wrapping.
    parameters = {
        name.removeprefix("module."): parameter
        for name, parameter in module.named_parameters()
    }
    for pattern, overrides in named_groups:
        named = {
            id(parameter)
            for name, parameter in parameters.items()
            if fnmatch.fnmatchcase(name, pattern)
        }
        for group in groups:
            if named and named.issuperset(id(p) for p in group["params"]):
                group.update(overrides)


def head_optimizer(name, parameters, *, lr, momentum, weight_decay):
    """The optimizer of a second-stage head: the first stage's family.

    ``"sam"`` trains the head with plain SGD.

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.classifiers._optimizers import head_optimizer
    >>> head = torch.nn.Linear(4, 3)
    >>> type(head_optimizer("sam", head.parameters(), lr=0.1, momentum=0.9,
    ...                     weight_decay=0.0)).__name__
    'SGD'
    """
    if name in ("sgd", "sam"):
        return torch.optim.SGD(
            parameters, lr=lr, momentum=momentum, weight_decay=weight_decay
        )
    return OPTIMIZERS[name](parameters, lr=lr, weight_decay=weight_decay)
