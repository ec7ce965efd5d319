"""What every loss shares: input checks, the class-weight buffer, the reduction.

Private: :class:`_ClassificationLoss` is the base of every loss of
:mod:`sklearn_lt.losses`; it also says how the classifiers use the loss (its
link from network outputs to prediction scores, the head it needs).
"""

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from ..weights import class_priors

_REDUCTIONS = ("mean", "sum", "none")
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _check_real(value, name, *, low=None, high=None, low_inclusive=True):
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"{name} must be a real number; got {value!r}.")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value!r}.")
    if low is not None and (value < low or (value == low and not low_inclusive)):
        bound = ">=" if low_inclusive else ">"
        raise ValueError(f"{name} must be {bound} {low}; got {value!r}.")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}; got {value!r}.")
    return value


def _prior_tensor(class_counts):
    """Class priors as a float64 tensor, by the package's one zero-count rule.

    :func:`sklearn_lt.weights.class_priors`: a zero count counts as the
    smallest positive one, which keeps every derived quantity finite and
    invariant to rescaling all counts.
    """
    return torch.as_tensor(class_priors(class_counts), dtype=torch.float64)


class _ClassificationLoss(nn.Module):
    """Shared input checks, per-class weight buffer and weighted reduction.

    Subclasses implement ``_per_example(logits, target)`` returning the unweighted
    loss of each example, shape ``(N,)``.

    The loss also owns its link, which the classifiers ask for instead of
    testing the loss's type: :meth:`initialize_head` and
    :meth:`head_bias_options` prepare the network's last layer, and
    :meth:`prediction_log_scores` turns network outputs into the scores that
    predictions and probabilities come from. The defaults are those of a
    softmax loss; a loss with another link overrides them.
    """

    #: The link from logits to probabilities ("softmax" or "sigmoid"); the
    #: methods below implement it.
    activation = "softmax"
    #: Whether the loss expects cosine logits from a normalized linear head.
    cosine_head = False
    #: Whether the loss already trains with the class prior (logit adjustment):
    #: its raw outputs target balanced error, and post-hoc adjustment on top of
    #: it would count the prior twice.
    prior_adjusted = False
    #: Check that targets lie in ``[0, C)`` (one device sync per call). The
    #: classifiers, which encode the targets themselves, turn it off.
    validate_targets = True

    def __init__(self, *, weight=None, reduction="mean", n_classes=None):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"reduction must be one of {_REDUCTIONS}; got {reduction!r}."
            )
        self.reduction = reduction
        self.n_classes = n_classes
        if weight is not None:
            weight = torch.as_tensor(weight, dtype=torch.float32).clone()
            if weight.ndim != 1:
                raise ValueError(
                    f"weight must be a 1-D tensor of shape (n_classes,); "
                    f"got shape {tuple(weight.shape)}."
                )
            if n_classes is not None and weight.numel() != n_classes:
                raise ValueError(
                    f"weight has {weight.numel()} entries but class_counts has "
                    f"{n_classes} classes."
                )
            if not torch.isfinite(weight).all() or (weight < 0).any():
                raise ValueError("weight must be finite and non-negative.")
        self.register_buffer("weight", weight)

    def prediction_logits(self, outputs):
        """Logits of the trained model from the network's outputs.

        The identity, except for losses that train on rescaled outputs (LDAM
        multiplies cosine outputs by ``scale``), so that probabilities at
        prediction time match the model the loss trained. Works on tensors and
        arrays.
        """
        return outputs

    def prediction_log_scores(self, outputs):
        """Scores whose softmax is the predicted probability, from network outputs.

        The prediction logits (:meth:`prediction_logits`) for a softmax loss;
        a sigmoid loss returns their log-sigmoids. The classifiers' ``predict``,
        ``predict_proba`` and validation scoring all start from these scores.

        Parameters
        ----------
        outputs : Tensor of shape (n_samples, n_classes)
            Network outputs.

        Returns
        -------
        scores : Tensor of shape (n_samples, n_classes)
        """
        return self.prediction_logits(outputs)

    def output_log_prior(self, log_prior):
        r"""The log class prior that the prediction scores are calibrated to.

        A loss trained on data with class prior :math:`\pi` estimates a
        posterior, and its prediction scores (:meth:`prediction_log_scores`)
        are that posterior under some prior :math:`r` (up to a constant per
        row). Knowing :math:`r`, the classifiers' ``prediction_prior`` moves
        the scores to any target prior :math:`q`: ``scores - log r + log q``.
        The default, for a loss without a prior term (cross-entropy, focal,
        LDAM, the sigmoid losses), is the training prior itself; a loss that
        trains on logits shifted by :math:`\tau \log \pi` subtracts its shift.
        For losses that are not proper scoring rules (focal, LDAM's margins)
        the calibration is approximate.

        Parameters
        ----------
        log_prior : Tensor of shape (n_classes,)
            Log of the training class prior (float64).

        Returns
        -------
        log_prior : Tensor of shape (n_classes,)
            Log of :math:`r`, up to an additive constant.
        """
        return log_prior

    def initialize_head(self, head, n_classes):
        """Initialize the network's last layer before training.

        Called once on a new network with its ``head`` (the last linear
        layer). The default keeps PyTorch's initialization.

        Parameters
        ----------
        head : torch.nn.Module
            The last layer, typically with ``weight`` and ``bias``.
        n_classes : int
            Number of classes.
        """

    def head_bias_options(self):
        """Optimizer options of the head's bias, e.g. ``{"weight_decay": 0.0}``.

        Returns
        -------
        options : dict
            Options of the bias's parameter group; empty (the default) keeps
            the bias in the group of every other parameter.
        """
        return {}

    def _check_inputs(self, logits, target):
        if not torch.is_tensor(logits) or not logits.is_floating_point():
            raise ValueError("logits must be a floating point tensor of shape (N, C).")
        if logits.ndim != 2:
            raise ValueError(
                f"logits must have shape (N, C); got shape {tuple(logits.shape)}."
            )
        n_classes = logits.shape[1]
        if self.n_classes is not None and n_classes != self.n_classes:
            raise ValueError(
                f"logits have {n_classes} columns but the loss was built for "
                f"{self.n_classes} classes."
            )
        if not torch.is_tensor(target) or target.dtype not in (
            torch.int64,
            torch.int32,
            torch.int16,
            torch.int8,
            torch.uint8,
        ):
            raise ValueError(
                "target must be an integer tensor of class indices; got "
                f"{getattr(target, 'dtype', type(target))}."
            )
        if target.shape != logits.shape[:1]:
            raise ValueError(
                f"target must have shape ({logits.shape[0]},) to match logits; "
                f"got shape {tuple(target.shape)}."
            )
        if self.validate_targets and target.numel():
            low, high = torch.aminmax(target)  # one kernel, one device sync
            if low < 0 or high >= n_classes:
                raise ValueError(f"target values must lie in [0, {n_classes}).")
        if self.weight is not None and self.weight.numel() != n_classes:
            raise ValueError(
                f"weight has {self.weight.numel()} entries but logits have "
                f"{n_classes} classes."
            )
        if logits.dtype in _LOW_PRECISION:
            logits = logits.float()
        return logits, target.long()

    def forward(self, logits, target, sample_weight=None):
        """Compute the loss.

        Parameters
        ----------
        logits : Tensor of shape (N, C)
            Unnormalized scores.
        target : Tensor of shape (N,)
            Class indices in ``[0, C)``.
        sample_weight : Tensor of shape (N,), default=None
            Optional non-negative weight of each example.

        Returns
        -------
        loss : Tensor
            A scalar, or shape ``(N,)`` when ``reduction="none"``.
        """
        logits, target = self._check_inputs(logits, target)
        losses = self._per_example(logits, target)
        weights = None
        if self.weight is not None:
            weights = self.weight.to(losses.dtype)[target]
        if sample_weight is not None:
            sample_weight = torch.as_tensor(sample_weight, device=losses.device)
            if sample_weight.shape != target.shape:
                raise ValueError(
                    f"sample_weight must have shape {tuple(target.shape)}; got "
                    f"{tuple(sample_weight.shape)}."
                )
            sample_weight = sample_weight.to(losses.dtype)
            weights = sample_weight if weights is None else weights * sample_weight
        return _reduce(losses, weights, self.reduction)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


def _reduce(losses, weights, reduction):
    if weights is not None:
        losses = losses * weights
    if reduction == "none":
        return losses
    total = losses.sum()
    if reduction == "sum":
        return total
    if weights is None:
        return total / max(losses.numel(), 1)
    return total / weights.sum().clamp_min(torch.finfo(losses.dtype).tiny)


class _SoftmaxCrossEntropy(_ClassificationLoss):
    """Softmax cross-entropy on adjusted logits, the base of CE, LDAM, LA and VS.

    Subclasses implement ``_adjusted_logits(logits, target)``. Without sample
    weights the loss is one fused :func:`torch.nn.functional.cross_entropy` call,
    with the same weighting convention as the generic path.
    """

    def _adjusted_logits(self, logits, target):
        return logits

    def _per_example(self, logits, target):
        adjusted = self._adjusted_logits(logits, target)
        return F.cross_entropy(adjusted, target, reduction="none")

    def forward(self, logits, target, sample_weight=None):
        if (
            sample_weight is not None
            or self.reduction == "none"
            or not getattr(target, "numel", lambda: 0)()
        ):
            return super().forward(logits, target, sample_weight)
        logits, target = self._check_inputs(logits, target)
        adjusted = self._adjusted_logits(logits, target)
        if self.weight is None:
            return F.cross_entropy(adjusted, target, reduction=self.reduction)
        weight = self.weight.to(adjusted.dtype)
        total = F.cross_entropy(adjusted, target, weight=weight, reduction="sum")
        if self.reduction == "sum":
            return total
        tiny = torch.finfo(adjusted.dtype).tiny
        return total / weight[target].sum().clamp_min(tiny)

    forward.__doc__ = _ClassificationLoss.forward.__doc__
