"""Training schedules: class re-balancing over epochs, and learning-rate shapes.

:class:`Rebalancing` is a skorch callback that switches class-balanced weights
(re-weighting) or class-balanced sampling (re-sampling) on at a given epoch.
Starting at epoch 0 gives the "Reweight" and "Resample" rules of Cao et al.
(2019); starting late gives deferred re-weighting (DRW) and deferred re-sampling
(DRS). The callback changes the criterion's ``weight`` buffer *in place* (or the
sampler's class weights): the optimizer, its momentum buffers and the network
are untouched, unlike ``net.set_params(criterion__weight=...)`` which
re-initializes skorch's criterion and optimizer.

:class:`WarmupStepDecay` and :class:`WarmupCosineDecay` are picklable learning
rate multipliers for :class:`torch.optim.lr_scheduler.LambdaLR`.
"""

import math

import numpy as np
import torch
from skorch.callbacks import Callback

__all__ = [
    "AUTO_EPOCH_BOUNDS",
    "AUTO_TARGET_STEPS",
    "MAX_WARMUP_FRACTION",
    "REWEIGHT_SCHEDULES",
    "Rebalancing",
    "RestartedSchedule",
    "WarmupCosineDecay",
    "WarmupStepDecay",
    "auto_epochs",
    "deferral_epoch",
    "warmup_length",
]

#: ``max_epochs="auto"``: about this many optimizer steps ...
AUTO_TARGET_STEPS = 4000
#: ... within these bounds on the number of epochs.
AUTO_EPOCH_BOUNDS = (20, 200)
#: Warm-up never takes more than this fraction of training.
MAX_WARMUP_FRACTION = 0.25

#: Names accepted by ``reweight_schedule``: (method, deferred).
REWEIGHT_SCHEDULES = {
    "reweight": ("reweight", False),
    "resample": ("resample", False),
    "drw": ("reweight", True),
    "drs": ("resample", True),
}


def deferral_epoch(max_epochs, deferral_start):
    """0-based epoch at which a deferred schedule switches re-balancing on.

    Parameters
    ----------
    max_epochs : int
        Length of training.
    deferral_start : float
        Fraction of ``max_epochs`` in ``[0, 1]`` trained before the switch.

    Returns
    -------
    epoch : int

    Examples
    --------
    >>> from sklearn_lt.schedules import deferral_epoch
    >>> deferral_epoch(200, 0.8)  # epoch 160 of 200, as in Cao et al.
    160
    """
    return round(max_epochs * deferral_start)


def auto_epochs(
    n_samples,
    batch_size,
    target_steps=AUTO_TARGET_STEPS,
    epoch_bounds=AUTO_EPOCH_BOUNDS,
):
    """Epochs of ``max_epochs="auto"``: a budget of optimizer steps, not epochs.

    ``ceil(target_steps / steps_per_epoch)`` epochs, clipped to
    ``epoch_bounds``: small data sets get enough steps to train, large ones
    stop paying for small data's needs after ``epoch_bounds[0]`` epochs.

    Parameters
    ----------
    n_samples : int
        Training examples per epoch.
    batch_size : int
        Mini-batch size.
    target_steps : int, default=4000
        Optimizer steps aimed for.
    epoch_bounds : (int, int), default=(20, 200)
        Fewest and most epochs.

    Returns
    -------
    epochs : int

    Examples
    --------
    >>> from sklearn_lt.schedules import auto_epochs
    >>> auto_epochs(300, 128), auto_epochs(20_000, 128), auto_epochs(10**6, 128)
    (200, 26, 20)
    """
    steps_per_epoch = max(1, math.ceil(n_samples / batch_size))
    low, high = epoch_bounds
    return int(min(max(math.ceil(target_steps / steps_per_epoch), low), high))


def warmup_length(max_epochs, warmup_epochs):
    """Warm-up epochs actually used: at most a quarter of training.

    A 5-epoch warm-up is the papers' choice for 200 epochs; in a 5-epoch run it
    would leave no epoch at the full rate, so short runs warm up for
    ``floor(max_epochs / 4)`` epochs instead.

    Examples
    --------
    >>> from sklearn_lt.schedules import warmup_length
    >>> warmup_length(200, 5), warmup_length(10, 5), warmup_length(3, 5)
    (5, 2, 0)
    """
    return min(int(warmup_epochs), int(max_epochs * MAX_WARMUP_FRACTION))


class Rebalancing(Callback):
    """Switch class re-balancing on at a given epoch (skorch callback).

    Parameters
    ----------
    class_weights : array-like of shape (n_classes,)
        Weights used once re-balancing is active, typically
        :func:`sklearn_lt.weights.effective_number_weights`.
    start_epoch : int, default=0
        0-based epoch from which the weights apply. Before it, the criterion's
        weights are ones (re-weighting) or the sampler draws a plain permutation
        (re-sampling).
    method : {"reweight", "resample"}, default="reweight"
        Change the criterion's ``weight`` buffer, or the sampler's class weights.
    sampler : ClassWeightedSampler, default=None
        Required for ``method="resample"``: the sampler the net draws its
        training batches with (``iterator_train__sampler``), whose class weights
        the callback sets.

    Notes
    -----
    The state is set at the start of every epoch from the epoch number kept in
    ``net.history``, so continuing a fit (``warm_start``) resumes at the right
    place. Each epoch's row in the history records ``rebalancing`` (whether the
    weights applied during that epoch). At the start of training, re-sampling
    checks that the net draws its batches with ``sampler``.

    Examples
    --------
    >>> from sklearn_lt.schedules import Rebalancing
    >>> Rebalancing([0.5, 1.5], start_epoch=160)
    <Rebalancing(method='reweight', start_epoch=160)>
    """

    def __init__(self, class_weights, start_epoch=0, method="reweight", sampler=None):
        self.class_weights = class_weights
        self.start_epoch = start_epoch
        self.method = method
        self.sampler = sampler

    def initialize(self):
        if self.method not in ("reweight", "resample"):
            raise ValueError(
                f"method must be 'reweight' or 'resample'; got {self.method!r}."
            )
        if self.method == "resample" and self.sampler is None:
            raise ValueError("method='resample' needs a sampler.")
        self.class_weights_ = torch.as_tensor(
            np.asarray(self.class_weights), dtype=torch.float32
        )
        return self

    def on_train_begin(self, net, **kwargs):
        if self.method == "resample":
            used = getattr(net, "iterator_train__sampler", None)
            if used is not self.sampler:
                raise ValueError(
                    "method='resample' sets the class weights of its sampler, but "
                    "the net draws its training batches with another one "
                    f"(iterator_train__sampler={used!r}); give both the same "
                    "sampler."
                )

    def on_epoch_begin(self, net, **kwargs):
        epoch_index = len(net.history) - 1
        active = epoch_index >= self.start_epoch
        if self.method == "reweight":
            weight = net.criterion_.weight
            if weight is None:
                raise ValueError(
                    "Re-weighting needs a criterion built with a weight tensor."
                )
            with torch.no_grad():
                if active:
                    weight.copy_(self.class_weights_.to(weight.device, weight.dtype))
                else:
                    weight.fill_(1.0)
        else:
            self.sampler.set_class_weights(self.class_weights_ if active else None)
        net.history.record("rebalancing", active)

    def __repr__(self):
        return f"<Rebalancing(method={self.method!r}, start_epoch={self.start_epoch})>"


class WarmupStepDecay:
    """Linear warm-up, then step decay: a multiplier of the base learning rate.

    Epoch ``e < warmup_epochs`` gets ``(e + 1) / warmup_epochs``; afterwards the
    multiplier is 1, times ``factors[k]`` from epoch ``milestones[k]`` on. The
    defaults of :meth:`for_training` reproduce Cao et al.'s CIFAR schedule: 5
    warm-up epochs, x0.01 at 80% and x0.0001 at 90% of training.

    Parameters
    ----------
    warmup_epochs : int, default=0
        Epochs of linear warm-up.
    milestones : sequence of int, default=()
        0-based epochs at which the next factor starts.
    factors : sequence of float, default=()
        Multipliers, one per milestone.

    Examples
    --------
    >>> from sklearn_lt.schedules import WarmupStepDecay
    >>> schedule = WarmupStepDecay.for_training(max_epochs=200, warmup_epochs=5)
    >>> [schedule(e) for e in (0, 4, 100, 160, 180)]
    [0.2, 1.0, 1.0, 0.01, 0.0001]
    """

    def __init__(self, warmup_epochs=0, milestones=(), factors=()):
        if len(milestones) != len(factors):
            raise ValueError("milestones and factors must have the same length.")
        self.warmup_epochs = int(warmup_epochs)
        self.milestones = tuple(int(m) for m in milestones)
        self.factors = tuple(float(f) for f in factors)

    @classmethod
    def for_training(cls, max_epochs, warmup_epochs=5, decay_starts=(0.8, 0.9)):
        """The papers' schedule scaled to ``max_epochs``.

        Milestones fall after the warm-up, one epoch apart at least, and within
        training: a run too short for both decays keeps the first (x0.01), a
        run too short for any keeps the full rate after its warm-up.

        Examples
        --------
        >>> from sklearn_lt.schedules import WarmupStepDecay
        >>> WarmupStepDecay.for_training(6, warmup_epochs=1).milestones
        (5,)
        >>> WarmupStepDecay.for_training(20, warmup_epochs=2).milestones
        (16, 18)
        """
        milestones = []
        previous = warmup_epochs
        for start in decay_starts:
            milestone = max(round(max_epochs * start), previous + 1)
            if milestone >= max_epochs:
                break
            milestones.append(milestone)
            previous = milestone
        return cls(warmup_epochs, milestones, (0.01, 0.0001)[: len(milestones)])

    def __call__(self, epoch):
        if epoch < self.warmup_epochs:
            return (epoch + 1) / self.warmup_epochs
        multiplier = 1.0
        for milestone, factor in zip(self.milestones, self.factors, strict=True):
            if epoch >= milestone:
                multiplier = factor
        return multiplier


class WarmupCosineDecay:
    """Linear warm-up, then cosine decay to zero at ``max_epochs``.

    Parameters
    ----------
    max_epochs : int
        Length of training.
    warmup_epochs : int, default=0
        Epochs of linear warm-up.

    Examples
    --------
    >>> from sklearn_lt.schedules import WarmupCosineDecay
    >>> schedule = WarmupCosineDecay(max_epochs=10, warmup_epochs=2)
    >>> [round(schedule(e), 3) for e in (0, 1, 2, 6, 9)]
    [0.5, 1.0, 1.0, 0.5, 0.038]
    """

    def __init__(self, max_epochs, warmup_epochs=0):
        self.max_epochs = int(max_epochs)
        self.warmup_epochs = int(warmup_epochs)

    def __call__(self, epoch):
        if epoch < self.warmup_epochs:
            return (epoch + 1) / self.warmup_epochs
        span = max(self.max_epochs - self.warmup_epochs, 1)
        progress = (epoch - self.warmup_epochs) / span
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


class RestartedSchedule:
    """A learning-rate multiplier started again at ``first_epoch`` (warm restart).

    Epochs before ``first_epoch`` keep ``before``; from it on, epoch ``e`` gets
    ``schedule(e - first_epoch)``. The classifiers use it when ``warm_start``
    continues a fitted model: the new epochs run a whole cycle of the
    schedule (without warm-up) instead of staying at the end of the old one,
    where a cosine schedule is at zero.

    Parameters
    ----------
    schedule : callable
        Multiplier of the new cycle, e.g. :class:`WarmupCosineDecay`.
    first_epoch : int
        0-based epoch at which the new cycle starts.
    before : callable or None, default=None
        Multiplier of the earlier epochs (``None``: 1).

    Examples
    --------
    >>> from sklearn_lt.schedules import RestartedSchedule, WarmupCosineDecay
    >>> schedule = RestartedSchedule(WarmupCosineDecay(4), first_epoch=10)
    >>> [round(schedule(e), 3) for e in (10, 11, 13)]
    [1.0, 0.854, 0.146]
    """

    def __init__(self, schedule, first_epoch, before=None):
        self.schedule = schedule
        self.first_epoch = int(first_epoch)
        self.before = before

    def __call__(self, epoch):
        if epoch >= self.first_epoch:
            return self.schedule(epoch - self.first_epoch)
        return 1.0 if self.before is None else self.before(epoch)
