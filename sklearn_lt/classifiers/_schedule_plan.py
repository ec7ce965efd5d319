"""The epoch plan of one fit: re-balancing start, learning-rate shape, stopping.

Pure functions of the estimator's parameters and the resolved number of epochs
(``max_epochs_``), used by :class:`~sklearn_lt.classifiers._base.BaseLongTailClassifier`
to build its skorch callbacks.
"""

import torch
from skorch.callbacks import LRScheduler

from ..schedules import (
    REWEIGHT_SCHEDULES,
    WarmupCosineDecay,
    WarmupStepDecay,
    deferral_epoch,
    warmup_length,
)

__all__ = [
    "first_early_stopping_epoch",
    "lr_multiplier",
    "lr_scheduler",
    "rebalancing_method",
    "rebalancing_start",
]


def rebalancing_method(reweight_schedule):
    """``"reweight"`` (the loss's class weights), ``"resample"`` or ``None``."""
    if reweight_schedule is None:
        return None
    method, _ = REWEIGHT_SCHEDULES[reweight_schedule]
    return method


def rebalancing_start(reweight_schedule, max_epochs, deferral_start):
    """Epoch at which re-balancing starts, or ``None`` without a schedule."""
    if reweight_schedule is None:
        return None
    _, deferred = REWEIGHT_SCHEDULES[reweight_schedule]
    return deferral_epoch(max_epochs, deferral_start) if deferred else 0


def lr_multiplier(lr_schedule, max_epochs, warmup):
    """The learning-rate shape over ``max_epochs`` epochs after ``warmup``."""
    if lr_schedule == "step":
        return WarmupStepDecay.for_training(max_epochs, warmup)
    if lr_schedule == "cosine":
        return WarmupCosineDecay(max_epochs, warmup)
    return WarmupStepDecay(warmup)


def lr_scheduler(lr_schedule, max_epochs, warmup_epochs):
    """The skorch callback that applies the learning-rate shape every epoch."""
    multiplier = lr_multiplier(
        lr_schedule, max_epochs, warmup_length(max_epochs, warmup_epochs)
    )
    return LRScheduler(
        policy=torch.optim.lr_scheduler.LambdaLR,
        lr_lambda=multiplier,
        step_every="epoch",
        event_name="lr",
    )


def first_early_stopping_epoch(lr_schedule, max_epochs, warmup_epochs, start):
    """No early stop, or return to weights, before re-balancing and decays.

    ``start`` is the re-balancing epoch (or ``None``); with the step schedule,
    the last learning-rate milestone counts too.
    """
    warmup = warmup_length(max_epochs, warmup_epochs)
    candidates = [warmup, start or 0]
    if lr_schedule == "step":
        candidates.extend(WarmupStepDecay.for_training(max_epochs, warmup).milestones)
    return min(max(candidates), max_epochs - 1)
