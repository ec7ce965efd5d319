"""One-vs-all sigmoid losses: sigmoid cross-entropy and sigmoid focal loss."""

import math

import torch
import torch.nn.functional as F

from ._base import _check_real, _ClassificationLoss

__all__ = ["SigmoidCrossEntropyLoss", "SigmoidFocalLoss"]


class SigmoidFocalLoss(_ClassificationLoss):
    r"""One-vs-all sigmoid focal loss, the "CB Focal" base loss of Cui et al. (2019).

    With :math:`t_j = 1` for the true class and 0 otherwise, and
    :math:`p_{t,j} = \sigma(z_j)` if :math:`t_j = 1` else :math:`1 - \sigma(z_j)`,

    .. math::

        \ell(z, y) = \sum_j -(1 - p_{t,j})^\gamma \log p_{t,j}.

    Parameters
    ----------
    gamma : float, default=1.0
        Focusing parameter, ``>= 0``; ``gamma=0`` is the sigmoid cross-entropy
        (:class:`SigmoidCrossEntropyLoss`). Cui et al. search ``{0.5, 1, 2}``.
    weight : Tensor of shape (n_classes,), default=None
        Per-class weights, applied per example by its true class.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-example losses are combined.

    Notes
    -----
    The modulating factor is computed as
    :math:`\exp(-\gamma t z - \gamma \log(1 + e^{-z}))` with a stable softplus,
    so gradients stay finite for any ``gamma`` (the official code's form). The
    loss initializes the last bias to :math:`-\log(C - 1)`
    (:meth:`initialize_head`), exempts it from weight decay
    (:meth:`head_bias_options`), and turns logits into probabilities with a
    sigmoid (:meth:`prediction_log_scores`).

    References
    ----------
    .. [1] Y. Cui, M. Jia, T.-Y. Lin, Y. Song, S. Belongie, "Class-Balanced Loss
       Based on Effective Number of Samples", CVPR 2019.

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.losses import SigmoidFocalLoss
    >>> loss = SigmoidFocalLoss(gamma=2.0)
    >>> round(loss(torch.tensor([[3.0, -3.0]]), torch.tensor([0])).item(), 5)
    0.00022
    """

    activation = "sigmoid"

    def __init__(self, gamma=1.0, weight=None, reduction="mean"):
        super().__init__(weight=weight, reduction=reduction)
        self.gamma = _check_real(gamma, "gamma", low=0.0)

    def prediction_log_scores(self, outputs):
        """Log-sigmoids of the prediction logits: each class's own probability.

        Their softmax (the classifiers' ``predict_proba``) is the normalized
        sigmoid.
        """
        return F.logsigmoid(self.prediction_logits(outputs))

    def initialize_head(self, head, n_classes):
        """Set the head's bias to :math:`-\\log(C - 1)` (Cui et al., 2019).

        Every class then starts with probability :math:`1/C`, so the
        :math:`C - 1` negative terms do not swamp the loss in the first steps.
        """
        bias = getattr(head, "bias", None)
        if bias is not None:
            with torch.no_grad():
                bias.fill_(-math.log(n_classes - 1))

    def head_bias_options(self):
        """No weight decay on the head's bias: it holds the class prior."""
        return {"weight_decay": 0.0}

    def _per_example(self, logits, target):
        one_hot = F.one_hot(target, logits.shape[1]).to(logits.dtype)
        bce = F.binary_cross_entropy_with_logits(logits, one_hot, reduction="none")
        if self.gamma != 0.0:
            modulator = torch.exp(
                -self.gamma * one_hot * logits - self.gamma * F.softplus(-logits)
            )
            bce = modulator * bce
        return bce.sum(dim=1)

    def extra_repr(self):
        return f"gamma={self.gamma}, {super().extra_repr()}"


class SigmoidCrossEntropyLoss(SigmoidFocalLoss):
    r"""One-vs-all sigmoid cross-entropy, the "CB sigmoid" base loss of Cui et al.

    .. math::

        \ell(z, y) = -\sum_j \big[t_j \log \sigma(z_j)
        + (1 - t_j) \log(1 - \sigma(z_j))\big]

    Parameters
    ----------
    weight : Tensor of shape (n_classes,), default=None
        Per-class weights.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-example losses are combined.

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.losses import SigmoidCrossEntropyLoss
    >>> loss = SigmoidCrossEntropyLoss()
    >>> round(loss(torch.tensor([[0.0, 0.0]]), torch.tensor([0])).item(), 4)
    1.3863
    """

    def __init__(self, weight=None, reduction="mean"):
        super().__init__(gamma=0.0, weight=weight, reduction=reduction)

    def extra_repr(self):
        return _ClassificationLoss.extra_repr(self)
