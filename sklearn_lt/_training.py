"""skorch plumbing shared by the classifiers: the net and its monitoring callbacks.

Private: users see the estimators in :mod:`sklearn_lt.classifiers`, which build
these objects in ``fit``.
"""

import math

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback

__all__ = [
    "BalancedAccuracyScoring",
    "FiniteLossCheck",
    "LongTailNet",
    "NonFiniteLossError",
]


class NonFiniteLossError(FloatingPointError, ValueError):
    """Raised when the training loss becomes NaN or infinite."""


class LongTailNet(NeuralNet):
    """A skorch net whose targets may carry per-example weights.

    Batches come from :class:`sklearn_lt.samplers.TensorBatchIterator`; a target is
    either the class-index tensor or the pair ``(classes, sample_weight)``, which is
    handed to the criterion's ``sample_weight`` argument.
    """

    def _set_training(self, training=True):
        # skorch sets the mode before every batch; walking every submodule each
        # time is measurable for small networks, so only switch when it changes.
        if self.module_.training != training or self.criterion_.training != training:
            super()._set_training(training)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if isinstance(y_true, tuple | list):
            target, sample_weight = y_true
            return self.criterion_(y_pred, target, sample_weight=sample_weight)
        return self.criterion_(y_pred, y_true)


def _targets(batch):
    target = batch[1]
    return target[0] if isinstance(target, tuple | list) else target


class BalancedAccuracyScoring(Callback):
    """Record the validation balanced accuracy of each epoch.

    Uses the predictions skorch already computes for the validation loss, so it
    costs no extra forward pass. The epoch's history row gets
    ``valid_balanced_accuracy``: the mean recall over classes present in the
    validation set.

    Parameters
    ----------
    n_classes : int
        Number of classes.
    """

    def __init__(self, n_classes):
        self.n_classes = n_classes

    def on_epoch_begin(self, net, **kwargs):
        self.correct_ = None
        self.support_ = None

    def on_batch_end(self, net, batch, training, y_pred=None, **kwargs):
        if training or y_pred is None:
            return
        target = _targets(batch)
        hits = (y_pred.argmax(dim=1) == target).to(torch.float64)
        correct = torch.bincount(target, weights=hits, minlength=self.n_classes)
        support = torch.bincount(target, minlength=self.n_classes)
        if self.correct_ is None:
            self.correct_, self.support_ = correct, support
        else:
            self.correct_ += correct
            self.support_ += support

    def on_epoch_end(self, net, **kwargs):
        if self.support_ is None:
            return
        present = self.support_ > 0
        recall = self.correct_[present] / self.support_[present]
        net.history.record("valid_balanced_accuracy", recall.mean().item())


class FiniteLossCheck(Callback):
    """Stop training with a clear error as soon as an epoch's loss is not finite."""

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        for key in ("train_loss", "valid_loss"):
            value = row.get(key)
            if value is not None and not math.isfinite(value):
                raise NonFiniteLossError(
                    f"The {key.replace('_', ' ')} became {value} in epoch "
                    f"{row['epoch']}; the model is not usable. Lower the learning "
                    f"rate (lr={net.lr}), standardize the features, or, for "
                    "margin losses with a large scale, use the cosine head "
                    "(NormedLinear) and a smaller scale."
                )
