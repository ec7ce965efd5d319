r"""Imbalanced SAM (ImbSAM): the sharpness-aware ascent on the tail classes only.

Private: the classifiers use it through ``optimizer="sam"`` with
``sam_tail_only=True``; :class:`sklearn_lt._training.LongTailNet` calls
:func:`imbsam_train_step` for each step.

A step (Zhou et al., ImbSAM, ICCV 2023) splits the batch loss into a head and
a tail part and takes the SGD step (of :class:`sklearn_lt._sam.SAM`) with

.. math::

    \nabla L_{head}(w) + \nabla L_{tail}(w + \epsilon), \qquad
    \epsilon = \rho \, g / \lVert g \rVert_2, \quad g = \nabla L_{tail}(w).

The tail classes are those with fewer than :data:`TAIL_THRESHOLD` training
examples. Both parts keep the package's weighted mean over the whole batch:
with :math:`w_i` the class weight times ``sample_weight`` and :math:`l_i` the
unweighted loss of example :math:`i`,

.. math::

    L_{head} = \frac{\sum_{i \in head} w_i l_i}{\sum_i w_i}, \qquad
    L_{tail} = F \, \frac{\sum_{i \in tail} w_i l_i}{\sum_i w_i},

so that with :math:`F = 1` they sum to the plain batch loss; the reference
code uses :math:`F =` :data:`TAIL_FACTOR` (its head and tail sums over the
batch size, the tail one doubled). With ``sample_attention`` the attention of
each example multiplies its weight, as in
:func:`sklearn_lt._training.sample_attention_loss`.
"""

import torch
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator

from ._mixing import MixedTargets, mixed_loss
from ._sam import SameRandomDraws, frozen_running_statistics

__all__ = [
    "TAIL_FACTOR",
    "TAIL_THRESHOLD",
    "check_tail_only",
    "imbsam_train_step",
    "split_loss",
    "tail_classes",
]

#: A class is a tail class when it has fewer training examples than this
#: (weighted counts with ``sample_weight``), as in the ImbSAM reference code.
TAIL_THRESHOLD = 20

#: Factor of the tail loss, as in the ImbSAM reference code.
TAIL_FACTOR = 2.0


def check_tail_only(estimator, criterion):
    """Refuse ``sam_tail_only=True`` where ImbSAM cannot run."""
    if not estimator.sam_tail_only:
        return
    if estimator.optimizer != "sam":
        raise ValueError(
            "sam_tail_only=True is the ImbSAM variant of SAM: it needs "
            f"optimizer='sam'; got optimizer={estimator.optimizer!r}. Set "
            "optimizer='sam', or sam_tail_only=False."
        )
    if not hasattr(criterion, "reduction"):
        raise ValueError(
            "sam_tail_only=True needs per-example losses: a loss with a "
            f"`reduction` attribute; {type(criterion).__name__} has none."
        )


def tail_classes(estimator, device):
    """The boolean mask of tail classes, or ``None`` without ``sam_tail_only``.

    Parameters
    ----------
    estimator : fitted classifier
        Reads ``sam_tail_only``, ``optimizer`` and ``class_counts_``.
    device : torch.device

    Returns
    -------
    mask : Tensor of shape (n_classes,), dtype bool, or None
    """
    if not (estimator.sam_tail_only and estimator.optimizer == "sam"):
        return None
    counts = torch.as_tensor(estimator.class_counts_, dtype=torch.float64)
    return (counts < TAIL_THRESHOLD).to(device)


def split_loss(criterion, outputs, target, sample_weight, tail, temperature=None):
    """The head and tail parts of a batch's weighted-mean loss.

    Parameters
    ----------
    criterion : torch.nn.Module
        A loss with a ``reduction`` attribute (and optionally a class
        ``weight``); it is evaluated once, with ``reduction="none"``.
    outputs : Tensor of shape (n_samples, n_classes)
    target : Tensor of shape (n_samples,)
    sample_weight : Tensor of shape (n_samples,) or None
    tail : Tensor of shape (n_classes,), dtype bool
        The tail classes.
    temperature : float or None, default=None
        ``sample_attention``'s temperature.

    Returns
    -------
    head, tail : Tensor (scalar)
        Unscaled parts (:data:`TAIL_FACTOR` is not applied); their sum is
        the criterion's weighted mean (or the attention-weighted loss).
    """
    reduction = criterion.reduction
    criterion.reduction = "none"
    try:
        losses = criterion(outputs, target)  # class weight included
    finally:
        criterion.reduction = reduction
    scale = torch.ones_like(losses)
    if temperature is not None:
        scale = torch.softmax(losses.detach() / temperature, dim=0)
    if sample_weight is not None:
        scale = scale * sample_weight.to(losses.dtype)
    weights = scale
    class_weight = getattr(criterion, "weight", None)
    if class_weight is not None:
        weights = weights * class_weight.to(losses.dtype)[target]
    total = weights.sum().clamp_min(torch.finfo(losses.dtype).tiny)
    terms = scale * losses
    is_tail = tail[target]
    tail_part = torch.where(is_tail, terms, 0.0).sum() / total
    head_part = torch.where(is_tail, 0.0, terms).sum() / total
    return head_part, tail_part


def _parts(net, y_pred, y_true, tail):
    """Head and (scaled) tail loss of a batch, mixed targets included."""
    if isinstance(y_true, MixedTargets):
        heads = []
        tails = mixed_loss(
            lambda outputs, target: _collect(heads, _parts(net, outputs, target, tail)),
            y_pred,
            y_true,
        )
        lam = y_true.lam
        return lam * heads[0] + (1.0 - lam) * heads[1], tails
    target, sample_weight = (
        y_true if isinstance(y_true, tuple | list) else (y_true, None)
    )
    head, tail_part = split_loss(
        net.criterion_,
        y_pred,
        target,
        sample_weight,
        tail,
        getattr(net, "sample_attention", None),
    )
    return head, TAIL_FACTOR * tail_part


def _collect(heads, parts):
    heads.append(parts[0])
    return parts[1]


def _pass(net, batch, tail, fit_params):
    X, y = unpack_data(batch)
    y_pred = net.infer(X, **fit_params)
    head, tail_loss = _parts(net, y_pred, y, tail)
    return y_pred, head, tail_loss


def imbsam_train_step(net, batch, tail, **fit_params):
    """One ImbSAM step of ``net`` (whose optimizer is a :class:`~sklearn_lt._sam.SAM`).

    :meth:`SAM.step <sklearn_lt._sam.SAM.step>` runs two passes. Pass 1 at
    ``w``: the head gradient is kept and the tail gradient sets the ascent;
    pass 2 at ``w + eps``: the tail gradient there, to which the kept head
    gradient is added; the SGD step at ``w`` uses the sum. A batch without
    tail examples has a zero tail gradient, hence no ascent: the step is the
    plain SGD step. As with SAM, both passes draw the same random numbers and
    batch normalization updates its running statistics in the first pass
    only. ``on_grad_computed`` is notified after each pass.

    Returns
    -------
    step : dict
        ``loss``: the batch's loss at ``w`` (head plus unscaled tail: the
        plain loss), and ``y_pred``.
    """
    optimizer = net.optimizer_
    params = [p for group in optimizer.param_groups for p in group["params"]]
    device = params[0].device if params else None
    replay = SameRandomDraws(device)
    first = {}

    def closure():
        net._zero_grad_optimizer()
        if not first:
            with replay:
                y_pred, head, tail_loss = _pass(net, batch, tail, fit_params)
            first.update(y_pred=y_pred, head=head.detach(), tail=tail_loss.detach())
            first["head_grads"] = torch.autograd.grad(
                head, params, retain_graph=True, allow_unused=True
            )
            tail_loss.backward()
        else:
            with replay, frozen_running_statistics(net.module_):
                _, _, tail_loss = _pass(net, batch, tail, fit_params)
            tail_loss.backward()
            _add_gradients(params, first["head_grads"])
        net.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(net.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        return tail_loss

    net._set_training(True)
    optimizer.step(closure)
    loss = first["head"] + first["tail"] / TAIL_FACTOR
    return {"loss": loss, "y_pred": first["y_pred"]}


@torch.no_grad()
def _add_gradients(params, grads):
    for p, g in zip(params, grads, strict=True):
        if g is None:
            continue
        if p.grad is None:
            p.grad = g.clone()
        else:
            p.grad.add_(g)
