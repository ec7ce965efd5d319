r"""Losses for long-tailed classification.

Every loss is an :class:`torch.nn.Module` called as ``loss(logits, target)`` with
``logits`` of shape ``(N, C)`` (floating point) and ``target`` of shape ``(N,)``
(integer class indices in ``[0, C)``). Each accepts:

- ``weight``: an optional per-class weight tensor of shape ``(C,)``, stored as a
  buffer so that a schedule (:mod:`sklearn_lt.schedules`) can change it in place
  during training without touching the optimizer;
- ``reduction``: ``"mean"``, ``"sum"`` or ``"none"``;
- an optional ``sample_weight`` of shape ``(N,)`` in ``forward``.

Weighting convention
--------------------
Each example gets the weight :math:`w_i = \text{weight}[y_i] \cdot
\text{sample\_weight}_i` (one when neither is given). ``"none"`` returns
:math:`w_i \ell_i`, ``"sum"`` returns :math:`\sum_i w_i \ell_i` and ``"mean"``
returns

.. math::

    \frac{\sum_i w_i \ell_i}{\sum_i w_i},

the convention of :func:`torch.nn.functional.cross_entropy` with ``weight``, used
for every loss here (the official class-balanced TensorFlow code divides by
:math:`N` instead). A batch whose weights are all zero has a mean loss of zero.

Losses that depend on the class counts :math:`n_j` (LDAM, logit-adjusted,
balanced softmax, VS) take ``class_counts`` and keep what they derive from it as
buffers. A class with a count of zero (possible when the class list is fixed in
advance) is treated as if it were as rare as the rarest observed class: it gets
the largest LDAM margin, the smallest VS scale and the smallest log-prior, so no
value is ever infinite.

Logits in float16 or bfloat16 (mixed precision) are cast to float32 before the
loss is computed.
"""

import inspect

from torch import nn

from ._sigmoid import SigmoidCrossEntropyLoss, SigmoidFocalLoss
from ._softmax import (
    BalancedSoftmaxLoss,
    CrossEntropyLoss,
    FocalLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    VSLoss,
)

__all__ = [
    "LOSSES",
    "BalancedSoftmaxLoss",
    "CrossEntropyLoss",
    "FocalLoss",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "SigmoidCrossEntropyLoss",
    "SigmoidFocalLoss",
    "VSLoss",
    "loss_parameters",
    "make_loss",
]

#: Registry of loss names accepted by :func:`make_loss` and the classifiers.
LOSSES = {
    "ce": CrossEntropyLoss,
    "focal": FocalLoss,
    "ldam": LDAMLoss,
    "logit_adjusted": LogitAdjustedLoss,
    "balanced_softmax": BalancedSoftmaxLoss,
    "vs": VSLoss,
    "sigmoid": SigmoidCrossEntropyLoss,
    "sigmoid_focal": SigmoidFocalLoss,
}


def loss_parameters(loss):
    """Names of the constructor parameters of a loss class or registry name.

    Parameters
    ----------
    loss : str or type
        A name of :data:`LOSSES` or a loss class.

    Returns
    -------
    names : frozenset of str

    Examples
    --------
    >>> from sklearn_lt.losses import loss_parameters
    >>> sorted(loss_parameters("ldam"))
    ['class_counts', 'max_margin', 'reduction', 'scale', 'weight']
    """
    loss_class = _resolve(loss)
    signature = inspect.signature(loss_class.__init__)
    return frozenset(
        name
        for name, parameter in signature.parameters.items()
        if name != "self"
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    )


def _resolve(loss):
    if isinstance(loss, str):
        try:
            return LOSSES[loss]
        except KeyError:
            raise ValueError(
                f"Unknown loss {loss!r}; choose one of {sorted(LOSSES)} or pass an "
                "nn.Module class."
            ) from None
    if isinstance(loss, type) and issubclass(loss, nn.Module):
        return loss
    raise ValueError(
        f"loss must be one of {sorted(LOSSES)} or an nn.Module class; got {loss!r}."
    )


def make_loss(loss, class_counts=None, **params):
    """Build a loss from its registry name (or class) and the class counts.

    Parameters
    ----------
    loss : str or type
        One of ``"ce"``, ``"focal"``, ``"ldam"``, ``"logit_adjusted"``,
        ``"balanced_softmax"``, ``"vs"``, ``"sigmoid"``, ``"sigmoid_focal"``, or
        an :class:`torch.nn.Module` subclass.
    class_counts : array-like of shape (n_classes,), default=None
        Passed to losses whose constructor takes ``class_counts``; required for
        those.
    **params
        Constructor parameters of the loss (e.g. ``max_margin=0.3``).

    Returns
    -------
    criterion : torch.nn.Module

    Raises
    ------
    ValueError
        If the name is unknown, a parameter is not accepted by the loss, or
        ``class_counts`` is missing for a loss that needs it.

    Examples
    --------
    >>> from sklearn_lt.losses import make_loss
    >>> make_loss("ldam", [100, 10], max_margin=0.3)
    LDAMLoss(max_margin=0.3, scale=30.0, reduction='mean')
    >>> make_loss("focal", gamma=2.0)
    FocalLoss(gamma=2.0, reduction='mean')
    """
    loss_class = _resolve(loss)
    accepted = loss_parameters(loss_class)
    unknown = set(params) - accepted
    if unknown:
        raise ValueError(
            f"{loss_class.__name__} does not accept {sorted(unknown)}; its "
            f"parameters are {sorted(accepted - {'class_counts'})}."
        )
    if "class_counts" in accepted:
        if class_counts is None:
            raise ValueError(f"{loss_class.__name__} needs class_counts.")
        params["class_counts"] = class_counts
    return loss_class(**params)
