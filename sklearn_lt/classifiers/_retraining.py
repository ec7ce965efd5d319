r"""The decoupled second stage: re-training the classifier on a frozen backbone.

After the main training, ``classifier_retraining`` fits a new last layer on the
features of the frozen network (Kang et al., 2020; Wang et al., MARC):

- ``"crt"`` (classifier re-training): a re-initialized linear layer, trained
  with class-balanced sampling;
- ``"lws"`` (learnable weight scaling): the trained head's logits times one
  learned scale per class, :math:`f_j z_j`, with class-balanced sampling;
- ``"marc"`` (margin calibration): :math:`\omega_j z_j + \beta_j \lVert w_j
  \rVert`, with instance-balanced sampling and class weights
  :math:`\propto \pi_j^{-1.2}`.

The frozen network runs once, in evaluation mode (batch normalization with its
running statistics, no dropout, no augmentation), over the training rows; the
second stage trains on those cached features and logits with plain softmax
cross-entropy, cosine learning rate to zero. The stage-1 network (``net_``) is
never modified: the new head is a separate module, ``retrained_head_``, that
prediction applies to the features and logits of the stage-1 network.

Private: the classifiers call :func:`retrain_classifier` from ``fit`` and
:func:`retrained_log_scores` from their predict methods.
"""

import math

import numpy as np
import torch
from skorch.history import History
from torch import nn

from .._device_data import ClassWeightedSampler
from .._training import NonFiniteLossError
from ..losses import CrossEntropyLoss
from ..modules import NormedLinear
from ..schedules import auto_epochs
from ..weights import class_priors
from ._inference import batched_outputs
from ._optimizers import head_optimizer
from ._statistics import output_log_prior, target_log_prior

__all__ = [
    "RETRAINING_METHODS",
    "LearnableWeightScaling",
    "MarginCalibration",
    "RetrainedLinear",
    "check_retraining_options",
    "make_retrained_head",
    "retrain_classifier",
    "retrained_log_scores",
    "retrained_method",
    "retraining_class_weights",
    "retraining_epochs",
    "retraining_output_log_prior",
]

#: The paper's epochs of each method: cRT 10 and LWS 5 (Kang et al.'s
#: ImageNet-LT configurations), MARC 80 (its CIFAR-LT runs: 2,000 steps of 512
#: examples on 12,406 images).
_PAPER_EPOCHS = {"crt": 10, "lws": 5, "marc": 80}
RETRAINING_METHODS = tuple(_PAPER_EPOCHS)
#: ``retraining_epochs="auto"`` trains at least this many optimizer steps
#: (about what the papers' epochs give on CIFAR-10-LT with batches of 128) ...
_AUTO_STEPS = 1000
#: ... and at most this many epochs.
_AUTO_MAX_EPOCHS = 200
#: MARC's class weights are pi_j ** -_MARC_EXPONENT (its official CIFAR runs).
_MARC_EXPONENT = 1.2


# ----------------------------------------------------------------- the heads
class RetrainedLinear(nn.Linear):
    """cRT's classifier: a freshly initialized linear layer on the features.

    Called as ``head(features, logits)``; the stage-1 ``logits`` are ignored.
    An ``nn.Linear``, so ``tau_norm`` rescales it at prediction time.
    """

    def forward(self, features, logits=None):
        return super().forward(features)


class LearnableWeightScaling(nn.Module):
    r"""LWS: the stage-1 logits times one learned scale per class.

    .. math:: \tilde z_j = f_j z_j, \quad f_j = 1 \text{ at the start.}

    For a linear head :math:`z_j = w_j^\top x + b_j`, this is Kang et al.'s
    :math:`f_j (w_j^\top x + b_j)`.

    Parameters
    ----------
    n_classes : int
        Number of classes.
    """

    def __init__(self, n_classes):
        super().__init__()
        self.scales = nn.Parameter(torch.ones(n_classes))

    def forward(self, features, logits):
        return logits * self.scales


class MarginCalibration(nn.Module):
    r"""MARC: a per-class affine calibration of the stage-1 logits.

    .. math::

        \tilde z_j = \omega_j z_j + \beta_j \lVert w_j \rVert_2,
        \quad \omega_j = 1,\ \beta_j = 0 \text{ at the start,}

    with :math:`\lVert w_j \rVert_2` the norm of class ``j``'s weight vector in
    the stage-1 head (1 for a cosine head, whose class vectors are
    normalized).

    Parameters
    ----------
    weight_norms : Tensor of shape (n_classes,)
        :math:`\lVert w_j \rVert_2`, kept as a buffer.
    """

    def __init__(self, weight_norms):
        super().__init__()
        n_classes = weight_norms.shape[0]
        self.omega = nn.Parameter(torch.ones(n_classes))
        self.beta = nn.Parameter(torch.zeros(n_classes))
        self.register_buffer(
            "weight_norms", torch.as_tensor(weight_norms, dtype=torch.float32)
        )

    def forward(self, features, logits):
        return self.omega * logits + self.beta * self.weight_norms


def _stage_one_head(module):
    """The ``head`` of the network inside ``Standardized`` (or a wrapper of it)."""
    for candidate in (module, getattr(module, "module", None)):
        head = getattr(getattr(candidate, "network", None), "head", None)
        if isinstance(head, nn.Module):
            return head
    raise ValueError(
        "classifier_retraining needs a network whose last layer is a module "
        "named `head` (the built-in networks have one); the custom `module` "
        "has none."
    )


def _head_weight_norms(head, n_classes):
    """Norm of each class vector that the stage-1 head applies."""
    if isinstance(head, NormedLinear):
        return torch.ones(n_classes)
    weight = getattr(head, "weight", None)
    if not torch.is_tensor(weight) or tuple(weight.shape[:1]) != (n_classes,):
        raise ValueError(
            "classifier_retraining='marc' needs the network's `head` to have a "
            f"`weight` of shape (n_classes={n_classes}, n_features)."
        )
    return weight.detach().float().reshape(n_classes, -1).norm(dim=1).cpu()


def make_retrained_head(method, n_features, n_classes, weight_norms=None):
    """A new second-stage head of ``method``, at its initial state."""
    if method == "crt":
        return RetrainedLinear(n_features, n_classes)
    if method == "lws":
        return LearnableWeightScaling(n_classes)
    return MarginCalibration(
        torch.ones(n_classes) if weight_norms is None else weight_norms
    )


class _RetrainedNetwork(nn.Module):
    """The frozen stage-1 network followed by the second-stage head.

    Its ``head`` is the second-stage head, so ``tau_norm`` rescales cRT's
    linear layer. Used at prediction time only.
    """

    def __init__(self, module, head, link):
        super().__init__()
        self.stage_one = module
        self.head = head
        self.link = link
        # Mirror the stage-1 mode: batched_outputs restores this one's.
        self.train(module.training)

    def forward(self, X):
        features, logits = _features_and_logits(self.stage_one, X, self.link)
        return self.head(features, logits)


def _features_and_logits(module, X, link):
    """The input of the stage-1 head and the stage-1 prediction logits."""
    captured = []
    hook = _stage_one_head(module).register_forward_hook(
        lambda layer, inputs, output: captured.append(inputs[0])
    )
    try:
        outputs = module(X)
    finally:
        hook.remove()
    features = captured[-1].reshape(outputs.shape[0], -1)
    return features.float(), link(outputs.float())


def _link(criterion):
    """Stage-1 network outputs to logits (LDAM multiplies its cosines by s)."""
    return getattr(criterion, "prediction_logits", _identity)


def _identity(outputs):
    return outputs


# --------------------------------------------------------------- the options
def retraining_epochs(method, retraining_epochs, n_samples, batch_size):
    """Epochs of the second stage; ``"auto"``: the paper's, at least 1,000 steps.

    ``"auto"`` takes the paper's epochs of ``method`` (cRT 10, LWS 5, MARC
    80), or more on small data sets, so that the stage takes at least 1,000
    optimizer steps, and at most 200 epochs (more than the paper's only).
    """
    if retraining_epochs != "auto":
        return int(retraining_epochs)
    paper = _PAPER_EPOCHS[method]
    return auto_epochs(
        n_samples,
        batch_size,
        target_steps=_AUTO_STEPS,
        epoch_bounds=(paper, max(paper, _AUTO_MAX_EPOCHS)),
    )


def retraining_class_weights(method, class_counts):
    """Per-class weights of the second stage, float64 array of shape (C,).

    cRT and LWS: sampling weights ``1 / n_j`` (class-balanced sampling: each
    class drawn equally often; 0 for a class without examples). MARC: loss
    weights ``pi_j ** -1.2``, normalized to sum to C.
    """
    counts = np.asarray(class_counts, dtype=np.float64)
    if method == "marc":
        weights = class_priors(counts) ** -_MARC_EXPONENT
        return weights * (counts.size / weights.sum())
    return np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)


def check_retraining_options(method, posthoc_tau, tau_norm):
    """Refuse the prediction options that contradict a second stage."""
    if method is None:
        return
    if posthoc_tau:
        raise ValueError(
            f"posthoc_tau={posthoc_tau} adjusts logits trained on the training "
            f"prior, but classifier_retraining={method!r} re-trains the "
            "classifier on re-balanced data: adjusting again double-counts the "
            "prior. Use posthoc_tau=0, or prediction_prior to target another "
            "prior."
        )
    if tau_norm and method != "crt":
        raise ValueError(
            f"tau_norm={tau_norm} rescales a re-trained linear head; "
            f"classifier_retraining={method!r} already re-calibrates the class "
            "norms of the trained head. Use tau_norm=0, or "
            "classifier_retraining='crt'."
        )


# -------------------------------------------------------------- the training
def _cached_features(estimator, train_data):
    """Features and stage-1 logits of the training rows, computed once."""
    module = estimator.net_.module_
    link = _link(estimator.net_.criterion_)
    rows = estimator._prediction_batch_rows()
    was_training = module.training
    module.eval()
    features, logits = [], []
    try:
        with torch.no_grad():
            for start in range(0, len(train_data), rows):
                X, _ = train_data.batch(slice(start, start + rows))
                batch_features, batch_logits = _features_and_logits(module, X, link)
                features.append(batch_features)
                logits.append(batch_logits)
    finally:
        module.train(was_training)
    return torch.cat(features), torch.cat(logits)


def _train_head(head, data, sampler, class_weight, optimizer, epochs, batch_size):
    """Mini-batch training of ``head`` on cached ``(features, logits, y, w)``.

    Cosine learning rate from the optimizer's rate to zero over ``epochs``
    (per epoch, as Kang et al.). Returns one history row per epoch.
    """
    features, logits, y, sample_weight = data
    criterion = CrossEntropyLoss(weight=class_weight).to(features.device)
    criterion.validate_targets = False
    base_rates = [group["lr"] for group in optimizer.param_groups]
    n_samples = y.shape[0]
    history = History()
    for epoch in range(epochs):
        factor = 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
        for group, rate in zip(optimizer.param_groups, base_rates, strict=True):
            group["lr"] = rate * factor
        order = sampler.epoch_indices()
        total = features.new_zeros(())
        for start in range(0, n_samples, batch_size):
            index = order[start : start + batch_size]
            outputs = head(features[index], logits[index])
            weights = None if sample_weight is None else sample_weight[index]
            loss = criterion(outputs, y[index], sample_weight=weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total = total + loss.detach() * index.shape[0]
        train_loss = (total / n_samples).item()
        if not math.isfinite(train_loss):
            raise NonFiniteLossError(
                f"The classifier re-training loss became {train_loss} in epoch "
                f"{epoch + 1}; lower the learning rate (lr={base_rates[0]})."
            )
        history.append(
            {"epoch": epoch + 1, "train_loss": train_loss, "lr": base_rates[0] * factor}
        )
    return history


def drop_retrained_head(estimator):
    """Remove a second stage's fitted attributes (predict uses stage one)."""
    for name in ("retrained_head_", "retraining_epochs_", "retraining_history_"):
        if hasattr(estimator, name):
            delattr(estimator, name)


def retrain_classifier(estimator, train_data, seed):
    """Fit the second-stage head of ``estimator.classifier_retraining``.

    Sets ``retrained_head_``, ``retraining_epochs_`` and
    ``retraining_history_``; with ``classifier_retraining=None``, removes
    them (a warm fit that turns the second stage off).
    """
    method = estimator.classifier_retraining
    if method is None:
        drop_retrained_head(estimator)
        return
    n_classes = estimator.classes_.size
    stage_one_head = _stage_one_head(estimator.net_.module_)
    norms = _head_weight_norms(stage_one_head, n_classes) if method == "marc" else None
    features, logits = _cached_features(estimator, train_data)
    torch.manual_seed(seed)
    head = make_retrained_head(method, features.shape[1], n_classes, norms)
    head = head.to(features.device)
    weights = torch.as_tensor(
        retraining_class_weights(method, estimator.class_counts_),
        dtype=torch.float32,
        device=features.device,
    )
    sampler = ClassWeightedSampler(train_data.y, seed=seed)
    if method != "marc":
        sampler.set_class_weights(weights)
    epochs = retraining_epochs(
        method, estimator.retraining_epochs, len(train_data), estimator.batch_size
    )
    data = (features, logits, train_data.y, train_data.sample_weight)
    history = _train_head(
        head,
        data,
        sampler,
        weights if method == "marc" else None,
        head_optimizer(
            estimator.optimizer,
            head.parameters(),
            lr=estimator.lr,
            momentum=estimator.momentum,
            weight_decay=estimator.weight_decay,
        ),
        epochs,
        estimator.batch_size,
    )
    head.requires_grad_(False)
    estimator.retrained_head_ = head
    estimator.retraining_epochs_ = epochs
    estimator.retraining_history_ = history


# ------------------------------------------------------------- the prediction
def retrained_method(head):
    """The method name of a second-stage head."""
    if isinstance(head, RetrainedLinear):
        return "crt"
    return "lws" if isinstance(head, LearnableWeightScaling) else "marc"


def retraining_output_log_prior(method, class_counts):
    """Log of the prior the second-stage logits are calibrated to (float64).

    Softmax cross-entropy estimates the posterior under the prior it was
    trained on: the training prior times the class weights (sampling or loss):
    uniform for cRT and LWS, ``pi ** (1 - 1.2)`` for MARC.
    """
    return output_log_prior(
        None, class_counts, retraining_class_weights(method, class_counts)
    )


def retrained_log_scores(estimator, X):
    """Prediction scores (float64 tensor) of an estimator with a second stage.

    The second-stage outputs are softmax cross-entropy logits, whatever the
    stage-1 loss; ``prediction_prior`` moves them from the prior they are
    calibrated to (:func:`retraining_output_log_prior`) to its own.
    """
    head = estimator.retrained_head_
    method = retrained_method(head)
    check_retraining_options(method, estimator.posthoc_tau, estimator.tau_norm)
    network = _RetrainedNetwork(
        estimator.net_.module_, head, _link(estimator.net_.criterion_)
    )
    scores = batched_outputs(
        network,
        X,
        estimator._prediction_batch_rows(),
        estimator.classes_.size,
        estimator.tau_norm,
    )
    if estimator.prediction_prior is None:
        return scores
    counts = estimator.class_counts_
    target = target_log_prior(estimator.prediction_prior, counts)
    return scores + (target - retraining_output_log_prior(method, counts))
