"""Softmax losses: cross-entropy, focal, LDAM, logit-adjusted, balanced softmax, VS."""

import torch
import torch.nn.functional as F

from ._base import (
    _check_real,
    _ClassificationLoss,
    _prior_tensor,
    _SoftmaxCrossEntropy,
)

__all__ = [
    "BalancedSoftmaxLoss",
    "CrossEntropyLoss",
    "FocalLoss",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "VSLoss",
]


class CrossEntropyLoss(_SoftmaxCrossEntropy):
    r"""Softmax cross-entropy (empirical risk minimization, ERM).

    .. math::

        \ell(z, y) = -\log \frac{e^{z_y}}{\sum_j e^{z_j}}

    Parameters
    ----------
    weight : Tensor of shape (n_classes,), default=None
        Per-class weights (see the module's weighting convention).
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-example losses are combined.

    See Also
    --------
    FocalLoss : Down-weights well-classified examples.

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.losses import CrossEntropyLoss
    >>> loss = CrossEntropyLoss()
    >>> round(loss(torch.tensor([[2.0, 0.0]]), torch.tensor([0])).item(), 4)
    0.1269
    """

    def __init__(self, weight=None, reduction="mean"):
        super().__init__(weight=weight, reduction=reduction)


class FocalLoss(_ClassificationLoss):
    r"""Softmax focal loss (Lin et al., 2017).

    .. math::

        \ell(z, y) = -(1 - p_y)^\gamma \log p_y, \qquad p = \mathrm{softmax}(z)

    Parameters
    ----------
    gamma : float, default=1.0
        Focusing parameter, ``>= 0``; ``gamma=0`` is cross-entropy. LDAM-DRW's
        CIFAR runs use 1.
    weight : Tensor of shape (n_classes,), default=None
        Per-class weights; class-balanced weights give the "CB Focal" loss.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-example losses are combined.

    Notes
    -----
    :math:`1 - p_y` is computed as ``-expm1(log p_y)`` and floored at the
    smallest positive float, so gradients stay finite for ``gamma < 1`` and for
    confidently classified examples.

    References
    ----------
    .. [1] T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollar, "Focal Loss for
       Dense Object Detection", ICCV 2017.

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.losses import FocalLoss
    >>> logits, target = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
    >>> round(FocalLoss(gamma=0.0)(logits, target).item(), 4)  # cross-entropy
    0.1269
    >>> round(FocalLoss(gamma=2.0)(logits, target).item(), 4)
    0.0018
    """

    def __init__(self, gamma=1.0, weight=None, reduction="mean"):
        super().__init__(weight=weight, reduction=reduction)
        self.gamma = _check_real(gamma, "gamma", low=0.0)

    def _per_example(self, logits, target):
        ce = F.cross_entropy(logits, target, reduction="none")
        if self.gamma == 0.0:
            return ce
        one_minus_p = (-torch.expm1(-ce)).clamp_min(torch.finfo(ce.dtype).tiny)
        return one_minus_p.pow(self.gamma) * ce

    def extra_repr(self):
        return f"gamma={self.gamma}, {super().extra_repr()}"


class LDAMLoss(_SoftmaxCrossEntropy):
    r"""Label-distribution-aware margin (LDAM) loss (Cao et al., 2019).

    The true-class logit is lowered by a class-dependent margin before a scaled
    softmax cross-entropy:

    .. math::

        \ell(z, y) = \mathrm{CE}\big(s\,(z - \Delta_y e_y),\, y\big), \qquad
        \Delta_j = \frac{K}{n_j^{1/4}},

    with :math:`K` chosen so that :math:`\max_j \Delta_j` equals ``max_margin``.
    Rare classes get larger margins.

    Parameters
    ----------
    class_counts : array-like of shape (n_classes,)
        Training examples per class.
    max_margin : float, default=0.5
        Margin of the rarest class (0.5 on CIFAR, 0.3 on iNaturalist), ``>= 0``.
    scale : float, default=30.0
        Logit scale :math:`s`, ``> 0``.
    weight : Tensor of shape (n_classes,), default=None
        Per-class weights; deferred re-weighting (DRW) sets them during training.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-example losses are combined.

    Attributes
    ----------
    margins : Tensor of shape (n_classes,)
        The margins :math:`\Delta_j` (a buffer).

    Notes
    -----
    LDAM is designed for cosine logits in ``[-1, 1]``
    (:class:`sklearn_lt.modules.NormedLinear`); with raw logits the scale of 30
    makes training diverge. The classifiers add that head automatically
    (``cosine_head = True``). A class with zero examples gets ``max_margin``.
    The trained model's logits are ``scale`` times the cosine outputs
    (:meth:`prediction_logits`), which the classifiers use for probabilities.

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga, T. Ma, "Learning Imbalanced
       Datasets with Label-Distribution-Aware Margin Loss", NeurIPS 2019.

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.losses import LDAMLoss
    >>> loss = LDAMLoss(class_counts=[1000, 100, 10], max_margin=0.5)
    >>> loss.margins
    tensor([0.1581, 0.2812, 0.5000])
    >>> logits = torch.tensor([[0.9, 0.1, -0.2], [0.1, 0.2, 0.6]])
    >>> round(loss(logits, torch.tensor([0, 2])).item(), 4)
    1.5475
    """

    cosine_head = True

    def __init__(
        self, class_counts, max_margin=0.5, scale=30.0, weight=None, reduction="mean"
    ):
        priors = _prior_tensor(class_counts)
        super().__init__(weight=weight, reduction=reduction, n_classes=priors.numel())
        self.max_margin = _check_real(max_margin, "max_margin", low=0.0)
        self.scale = _check_real(scale, "scale", low=0.0, low_inclusive=False)
        inverse_root = priors.pow(-0.25)
        margins = inverse_root * (self.max_margin / inverse_root.max())
        self.register_buffer("margins", margins.float())

    def prediction_logits(self, outputs):
        return self.scale * outputs

    def _adjusted_logits(self, logits, target):
        margin = self.margins.to(logits.dtype)[target].unsqueeze(1)
        # z - Delta_y e_y: the margin is subtracted from the true-class logit only.
        adjusted = torch.scatter_add(logits, 1, target.unsqueeze(1), -margin)
        return self.scale * adjusted

    def extra_repr(self):
        return (
            f"max_margin={self.max_margin}, scale={self.scale}, {super().extra_repr()}"
        )


class LogitAdjustedLoss(_SoftmaxCrossEntropy):
    r"""Logit-adjusted softmax cross-entropy (Menon et al., 2021).

    .. math::

        \ell(z, y) = \mathrm{CE}(z + \tau \log \pi,\, y), \qquad
        \pi_j = \frac{n_j}{\sum_k n_k}

    Train with this loss and predict with the raw logits :math:`z`: the
    adjustment is already built into the training objective, so do not also
    apply post-hoc adjustment (Menon et al., section 5.3).

    Parameters
    ----------
    class_counts : array-like of shape (n_classes,)
        Training examples per class.
    tau : float, default=1.0
        Temperature of the adjustment, ``>= 0``; ``tau=0`` is cross-entropy.
    weight : Tensor of shape (n_classes,), default=None
        Per-class weights.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-example losses are combined.

    Attributes
    ----------
    log_prior : Tensor of shape (n_classes,)
        :math:`\log \pi_j`, zero counts treated as the rarest class (a buffer).

    References
    ----------
    .. [1] A. K. Menon, S. Jayasumana, A. S. Rawat, H. Jain, A. Veit, S. Kumar,
       "Long-tail learning via logit adjustment", ICLR 2021.

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.losses import LogitAdjustedLoss
    >>> loss = LogitAdjustedLoss(class_counts=[90, 10], tau=1.0)
    >>> logits = torch.tensor([[0.0, 0.0]])
    >>> round(loss(logits, torch.tensor([1])).item(), 4)  # -log(0.1)
    2.3026
    """

    def __init__(self, class_counts, tau=1.0, weight=None, reduction="mean"):
        priors = _prior_tensor(class_counts)
        super().__init__(weight=weight, reduction=reduction, n_classes=priors.numel())
        self.tau = _check_real(tau, "tau", low=0.0)
        log_prior = torch.log(priors)
        self.register_buffer("log_prior", log_prior.float())

    @property
    def prior_adjusted(self):
        return self.tau > 0

    def output_log_prior(self, log_prior):
        r"""``log pi - tau log pi``: ``(1 - tau) log pi``, uniform for ``tau=1``.

        The raw logits plus :math:`\tau \log \pi` estimate the posterior
        under the training prior, so the raw logits alone are calibrated to
        the prior :math:`\pi^{1 - \tau}`.
        """
        return log_prior - self.tau * self.log_prior.to(log_prior)

    def _adjusted_logits(self, logits, target):
        return logits + self.tau * self.log_prior.to(logits.dtype)

    def extra_repr(self):
        return f"tau={self.tau}, {super().extra_repr()}"


class BalancedSoftmaxLoss(LogitAdjustedLoss):
    r"""Balanced softmax cross-entropy (Ren et al., 2020).

    .. math::

        \ell(z, y) = \mathrm{CE}(z + \log n,\, y),

    identical to :class:`LogitAdjustedLoss` with ``tau=1`` (adding
    :math:`\log n` or :math:`\log \pi` differs by a constant per example, which
    softmax ignores).

    Parameters
    ----------
    class_counts : array-like of shape (n_classes,)
        Training examples per class.
    weight : Tensor of shape (n_classes,), default=None
        Per-class weights.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-example losses are combined.

    References
    ----------
    .. [1] J. Ren, C. Yu, S. Sheng, X. Ma, H. Zhao, S. Yi, H. Li, "Balanced
       Meta-Softmax for Long-Tailed Visual Recognition", NeurIPS 2020.

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.losses import BalancedSoftmaxLoss
    >>> loss = BalancedSoftmaxLoss(class_counts=[90, 10])
    >>> round(loss(torch.tensor([[0.0, 0.0]]), torch.tensor([1])).item(), 4)
    2.3026
    """

    def __init__(self, class_counts, weight=None, reduction="mean"):
        super().__init__(class_counts, tau=1.0, weight=weight, reduction=reduction)

    def extra_repr(self):
        return _ClassificationLoss.extra_repr(self)


class VSLoss(_SoftmaxCrossEntropy):
    r"""Vector-scaling (VS) loss (Kini et al., 2021).

    .. math::

        \ell(z, y) = \mathrm{CE}(\Delta \odot z + \iota,\, y), \qquad
        \Delta_j = \left(\frac{n_j}{n_{\max}}\right)^{\gamma}, \quad
        \iota_j = \tau \log \pi_j

    ``gamma=0`` gives the logit-adjusted loss; ``tau=0`` gives the CDT loss.

    Parameters
    ----------
    class_counts : array-like of shape (n_classes,)
        Training examples per class.
    gamma : float, default=0.05
        Exponent of the multiplicative scaling, ``>= 0``. Kini et al. use 0.2
        to 0.3 on CIFAR-10 with 200 epochs; with 100 classes and a shorter
        budget, 0.3 collapses (33% balanced accuracy on the benchmark's
        100-class set, against 72% for 0.05 and the logit-adjusted loss) since
        the tail's logits get gradients scaled by :math:`\Delta_j`. 0.05 is
        the safe default; tune it upwards with a search.
    tau : float, default=1.0
        Temperature of the additive (logit-adjustment) term, ``>= 0``.
    weight : Tensor of shape (n_classes,), default=None
        Per-class weights.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-example losses are combined.

    Attributes
    ----------
    logit_scale : Tensor of shape (n_classes,)
        :math:`\Delta_j` (a buffer).
    logit_offset : Tensor of shape (n_classes,)
        :math:`\iota_j` (a buffer).

    References
    ----------
    .. [1] G. R. Kini, O. Paraskevas, S. Oymak, C. Thrampoulidis, "Label-Imbalanced
       and Group-Sensitive Classification under Overparameterization",
       NeurIPS 2021.

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.losses import VSLoss
    >>> loss = VSLoss(class_counts=[100, 10], gamma=0.3, tau=1.0)
    >>> loss.logit_scale
    tensor([1.0000, 0.5012])
    >>> round(loss(torch.tensor([[1.0, 1.0]]), torch.tensor([1])).item(), 4)
    2.8604
    """

    def __init__(
        self, class_counts, gamma=0.05, tau=1.0, weight=None, reduction="mean"
    ):
        priors = _prior_tensor(class_counts)
        super().__init__(weight=weight, reduction=reduction, n_classes=priors.numel())
        self.gamma = _check_real(gamma, "gamma", low=0.0)
        self.tau = _check_real(tau, "tau", low=0.0)
        logit_scale = (priors / priors.max()).pow(self.gamma)
        logit_offset = self.tau * torch.log(priors)
        self.register_buffer("logit_scale", logit_scale.float())
        self.register_buffer("logit_offset", logit_offset.float())

    @property
    def prior_adjusted(self):
        return self.tau > 0 or self.gamma > 0

    def output_log_prior(self, log_prior):
        r"""``(1 - tau) log pi``, as :meth:`LogitAdjustedLoss.output_log_prior`.

        An approximation when ``gamma > 0``: the loss trains on
        :math:`\Delta \odot z + \iota`, and the multiplicative scaling
        :math:`\Delta` of the raw logits :math:`z` is not an additive prior
        term, so it is ignored (exact for ``gamma=0``).
        """
        return log_prior - self.logit_offset.to(log_prior)

    def _adjusted_logits(self, logits, target):
        scale = self.logit_scale.to(logits.dtype)
        return torch.addcmul(self.logit_offset.to(logits.dtype), logits, scale)

    def extra_repr(self):
        return f"gamma={self.gamma}, tau={self.tau}, {super().extra_repr()}"
