"""skorch plumbing shared by the classifiers: the net and its monitoring callbacks.

Private: users see the estimators in :mod:`sklearn_lt.classifiers`, which build
these objects in ``fit``.
"""

import contextlib
import math

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping
from skorch.dataset import unpack_data
from skorch.hf import AccelerateMixin
from skorch.utils import TeeGenerator

from ._imbsam import imbsam_train_step
from ._mixing import MixedTargets, mixed_loss
from ._sam import SAM, SameRandomDraws, frozen_running_statistics
from .modules import tau_normalize_head

__all__ = [
    "AcceleratedLongTailNet",
    "BalancedAccuracyScoring",
    "FiniteLossCheck",
    "GradientNormClipping",
    "LongTailNet",
    "NonFiniteLossError",
    "PredefinedSplit",
    "SafeEarlyStopping",
    "TrainingInterruptedWarning",
    "clip_gradient_norm",
    "prediction_scores",
    "sample_attention_loss",
]


def prediction_scores(criterion, outputs, offset=None):
    """Scores whose argmax is the prediction, from the network's raw outputs.

    The criterion's link turns outputs into scores
    (``criterion.prediction_log_scores``: LDAM rescales cosines, a sigmoid
    loss takes log-sigmoids), and ``offset`` (post-hoc logit adjustment,
    ``-tau * log prior``) is added. A loss from elsewhere that has no link
    keeps its outputs, or its ``prediction_logits`` if it has them. The
    classifiers' ``predict`` and the validation scoring of early stopping both
    use this function, so epochs are selected on what ``predict`` returns.

    Parameters
    ----------
    criterion : torch.nn.Module
        The training loss.
    outputs : Tensor of shape (n_samples, n_classes)
        Network outputs.
    offset : Tensor of shape (n_classes,), default=None
        Added to every row.

    Returns
    -------
    scores : Tensor of shape (n_samples, n_classes)
    """
    link = getattr(criterion, "prediction_log_scores", None)
    if link is None:
        link = getattr(criterion, "prediction_logits", _identity)
    scores = link(outputs)
    if offset is not None:
        scores = scores + offset.to(scores.device, scores.dtype)
    return scores


def _identity(outputs):
    return outputs


def sample_attention_loss(criterion, outputs, target, sample_weight, temperature):
    r"""The loss of a batch under attentional weighting (ABSGD, Qi et al.).

    Each example's weight is multiplied by its attention

    .. math::

        p_i = \frac{e^{\ell_i / \lambda}}{\sum_k e^{\ell_k / \lambda}},

    a softmax over the batch of its per-example loss :math:`\ell_i` (as the
    criterion returns it with ``reduction="none"``: with its class weight, as
    in the official code), detached from the graph. The result keeps the
    package's weighted mean, :math:`\sum_i p_i w_i l_i / \sum_i p_i w_i` with
    :math:`w_i` the class weight times ``sample_weight`` and :math:`l_i` the
    unweighted loss, so a batch-level scale of the attention cancels: the
    official code's running normalizer (a per-batch step-size factor there)
    has no role, and the softmax is the overflow-free form of
    :math:`e^{\ell_i / \lambda}`. A large ``temperature`` gives the plain
    weighted mean; a small one concentrates on the hardest examples.

    Parameters
    ----------
    criterion : torch.nn.Module
        A loss with a ``reduction`` attribute (and optionally a class
        ``weight``); it is evaluated with ``reduction="none"``.
    outputs : Tensor of shape (n_samples, n_classes)
    target : Tensor of shape (n_samples,)
    sample_weight : Tensor of shape (n_samples,) or None
    temperature : float
        :math:`\lambda > 0`.

    Returns
    -------
    loss : Tensor (scalar)
    """
    reduction = criterion.reduction
    criterion.reduction = "none"
    try:
        losses = criterion(outputs, target)
    finally:
        criterion.reduction = reduction
    attention = torch.softmax(losses.detach() / temperature, dim=0)
    class_weight = getattr(criterion, "weight", None)
    weights = attention
    if class_weight is not None:
        weights = weights * class_weight.to(losses.dtype)[target]
    if sample_weight is not None:
        sample_weight = sample_weight.to(losses.dtype)
        attention = attention * sample_weight
        weights = weights * sample_weight
    tiny = torch.finfo(losses.dtype).tiny
    return (attention * losses).sum() / weights.sum().clamp_min(tiny)


class NonFiniteLossError(FloatingPointError, ValueError):
    """Raised when the training loss becomes NaN or infinite."""


class TrainingInterruptedWarning(UserWarning):
    """Training was interrupted; the model keeps its last completed epoch."""


_PER_BATCH_EVENTS = frozenset({"on_batch_begin", "on_batch_end", "on_grad_computed"})


def _unwrapped(module):
    """The module inside a distributed (DDP) wrapper, or ``module``."""
    if isinstance(module, torch.nn.parallel.DistributedDataParallel):
        return module.module
    return module


def _augmentation(module):
    """The training augmentation of a :class:`~sklearn_lt.modules.Standardized`."""
    return getattr(_unwrapped(module), "augmentation", None)


@contextlib.contextmanager
def _augmentation_off(module):
    """Run a step on a batch that was augmented before it was mixed."""
    inner = _unwrapped(module)
    augmentation = inner.augmentation
    inner.augmentation = None
    try:
        yield
    finally:
        inner.augmentation = augmentation


def _batch_listeners(callbacks):
    """``{event: [callbacks that override it]}`` for the per-batch events."""
    return {
        event: [
            callback
            for _, callback in callbacks
            if getattr(type(callback), event, None) is not getattr(Callback, event)
        ]
        for event in _PER_BATCH_EVENTS
    }


def _direct_step_clipping(net):
    """The clipping callbacks of a step that may skip skorch's closure, or None.

    skorch's ``train_step`` wraps each step in a closure for the optimizer and
    walks every parameter to notify ``on_grad_computed``. For a plain step (one
    optimizer, no SAM, no subclass hook of skorch's step, and no gradient
    listener but :class:`GradientNormClipping`) the net can make the same
    update directly (:meth:`LongTailNet._direct_train_step`).
    """
    listeners = net._batch_listeners["on_grad_computed"]
    if (
        len(net._optimizers) != 1
        or isinstance(net.optimizer_, SAM)
        or not all(isinstance(c, GradientNormClipping) for c in listeners)
        or type(net).on_grad_computed is not NeuralNet.on_grad_computed
        or type(net).train_step_single is not NeuralNet.train_step_single
        or type(net)._step_optimizer is not NeuralNet._step_optimizer
        or type(net)._zero_grad_optimizer is not NeuralNet._zero_grad_optimizer
    ):
        return None
    return listeners


def _parameter_device(module):
    parameter = next(module.parameters(), None)
    return None if parameter is None else parameter.device


class LongTailNet(NeuralNet):
    """A skorch net whose targets may carry per-example weights.

    Batches come from :class:`sklearn_lt._device_data.TensorBatchIterator`; a target is
    either the class-index tensor or the pair ``(classes, sample_weight)``, which is
    handed to the criterion's ``sample_weight`` argument.

    ``sample_attention`` (a temperature, or ``None``) weights the training
    examples of each batch by :func:`sample_attention_loss` (ABSGD); the
    validation loss stays the plain weighted mean.

    ``sam_tail_classes`` (a boolean mask of the classes, or ``None``) makes
    each :class:`SAM` step an ImbSAM step
    (:func:`sklearn_lt._imbsam.imbsam_train_step`): the ascent from the
    tail classes' loss only.

    ``mixing`` (a :class:`sklearn_lt._mixing.BatchMixing`, or ``None``) mixes
    each training batch before its step (Mixup, CutMix, CMO); the loss of a
    mixed batch is :func:`sklearn_lt._mixing.mixed_loss` of the loss of its
    two sets of targets. Validation batches are not mixed.

    An interrupted fit (``KeyboardInterrupt``) restores the network's weights at
    the end of the last completed epoch, drops the unfinished epoch from the
    history and sets ``interrupted_after_epoch_`` (``None`` when training was
    not interrupted), so the estimator stays usable and can say so. (skorch
    alone keeps the weights of the last mini-batch.)
    """

    def __init__(
        self,
        *args,
        sample_attention=None,
        mixing=None,
        sam_tail_classes=None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.sample_attention = sample_attention
        self.mixing = mixing
        self.sam_tail_classes = sam_tail_classes

    def on_train_begin(self, net, X=None, **kwargs):
        super().on_train_begin(net, X=X, **kwargs)
        self._batch_listeners = _batch_listeners(self.callbacks_)
        self._module_device = _parameter_device(self.module_)
        self._direct_clipping = _direct_step_clipping(self)
        self._learnable = [p for _, p in self.get_all_learnable_params()]
        self.interrupted_after_epoch_ = None
        self._remember_completed_epoch()
        if getattr(self, "mixing", None) is not None:
            self.mixing.start(X)

    def on_epoch_begin(self, net, **kwargs):
        super().on_epoch_begin(net, **kwargs)
        if getattr(self, "mixing", None) is not None:
            self.mixing.next_epoch()

    def on_epoch_end(self, net, **kwargs):
        super().on_epoch_end(net, **kwargs)
        self._remember_completed_epoch()

    def _remember_completed_epoch(self):
        self._completed_epochs = len(self.history)
        self._completed_state = {
            name: tensor.detach().clone()
            for name, tensor in self.module_.state_dict().items()
        }

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            # skorch's EarlyStopping also stops training with KeyboardInterrupt,
            # from the end of a completed epoch: only a mid-epoch stop is a user
            # interrupt that needs the last completed epoch back.
            if self._completed_epochs != len(self.history):
                self._restore_completed_epoch()
            raise
        finally:
            self._completed_state = None
            if getattr(self, "mixing", None) is not None:
                self.mixing.release()

    def _restore_completed_epoch(self):
        self.module_.load_state_dict(self._completed_state)
        del self.history[self._completed_epochs :]
        self.interrupted_after_epoch_ = self.history[-1]["epoch"] if self.history else 0

    def notify(self, method_name, **cb_kwargs):
        # Per-batch events go only to the callbacks that override them (found
        # once per fit, in on_train_begin): skorch calls every callback's
        # (mostly empty) method three times a batch, a measurable share of a
        # small network's step.
        if method_name not in _PER_BATCH_EVENTS:
            return super().notify(method_name, **cb_kwargs)
        getattr(self, method_name)(self, **cb_kwargs)
        listeners = getattr(self, "_batch_listeners", None)
        if listeners is None:  # outside fit (a direct call of train_step)
            listeners = _batch_listeners(self.callbacks_)
        for callback in listeners[method_name]:
            getattr(callback, method_name)(self, **cb_kwargs)
        return None

    def infer(self, x, **fit_params):
        # The batches of TensorBatchIterator are tensors on the module's
        # device already: skip skorch's conversion and its type checks.
        if (
            not fit_params
            and torch.is_tensor(x)
            and x.device == getattr(self, "_module_device", None)
        ):
            return self.module_(x)
        return super().infer(x, **fit_params)

    def _set_training(self, training=True):
        # skorch sets the mode before every batch; walking every submodule each
        # time is measurable for small networks, so only switch when it changes.
        if self.module_.training != training or self.criterion_.training != training:
            super()._set_training(training)

    def train_step(self, batch, **fit_params):
        """One optimizer step; two forward-backward passes with :class:`SAM`.

        The second pass of a SAM step sees the same batch as the first: the
        same targets and weights, the same criterion (with its current
        re-weighting), and the same random draws (dropout, augmentation).
        Batch normalization updates its running statistics in the first pass
        only, from the weights being trained, so they take one update per
        step as without SAM. The step reports the first pass's loss. With
        ``mixing``, the batch is mixed once, before both passes; a mixed
        batch is mixed from augmented images (the module's augmentation runs
        on each source batch first, as in the CMO and CutMix papers' data
        pipelines), and the module does not augment it again.
        """
        mixing = getattr(self, "mixing", None)
        if mixing is None:
            return self._step(batch, **fit_params)
        augmentation = _augmentation(self.module_)
        batch = mixing.mix(batch, augment=augmentation)
        if augmentation is None or not isinstance(batch[1], MixedTargets):
            return self._step(batch, **fit_params)
        with _augmentation_off(self.module_):
            return self._step(batch, **fit_params)

    def _step(self, batch, **fit_params):
        if not fit_params and getattr(self, "_direct_clipping", None) is not None:
            return self._direct_train_step(batch)
        if not isinstance(self.optimizer_, SAM):
            return super().train_step(batch, **fit_params)
        tail = getattr(self, "sam_tail_classes", None)
        if tail is not None:
            return imbsam_train_step(self, batch, tail, **fit_params)
        steps = []
        device = next(self.module_.parameters()).device
        replay = SameRandomDraws(device)

        def closure():
            self._zero_grad_optimizer()
            freeze = (
                frozen_running_statistics(self.module_)
                if steps
                else contextlib.nullcontext()
            )
            with replay, freeze:
                steps.append(self.train_step_single(batch, **fit_params))
            self.notify(
                "on_grad_computed",
                named_parameters=TeeGenerator(self.get_all_learnable_params()),
                batch=batch,
                training=True,
            )
            return steps[-1]["loss"]

        self.optimizer_.step(closure)
        return steps[0]

    def _direct_train_step(self, batch):
        # skorch's step (zero the gradients, train_step_single, notify
        # on_grad_computed, optimizer step) without the closure, the step
        # accumulator and the parameter walk: the same update, a few
        # function calls fewer per step (see _direct_step_clipping).
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        self.optimizer_.zero_grad()
        y_pred = self.infer(Xi)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        loss.backward()
        for callback in self._direct_clipping:
            callback.clip(self._learnable)
        self.optimizer_.step()
        return {"loss": loss, "y_pred": y_pred}

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if isinstance(y_true, MixedTargets):
            # Each term with its own hard targets and per-example weights.
            return mixed_loss(
                lambda outputs, target: self.get_loss(outputs, target, X, training),
                y_pred,
                y_true,
            )
        temperature = getattr(self, "sample_attention", None)
        if training and temperature is not None:
            target, sample_weight = (
                y_true if isinstance(y_true, tuple | list) else (y_true, None)
            )
            return sample_attention_loss(
                self.criterion_, y_pred, target, sample_weight, temperature
            )
        if isinstance(y_true, tuple | list):
            target, sample_weight = y_true
            return self.criterion_(y_pred, target, sample_weight=sample_weight)
        return self.criterion_(y_pred, y_true)


class AcceleratedLongTailNet(AccelerateMixin, LongTailNet):
    """:class:`LongTailNet` trained through a Hugging Face ``accelerate.Accelerator``.

    skorch's :class:`~skorch.hf.AccelerateMixin` prepares the network and
    optimizer (DDP wrapping, mixed precision, gradient accumulation); the
    classifiers shard the training batches over the processes. The loss is only
    moved to the accelerator's device: it has no trainable parameters (DDP
    refuses to wrap it) and schedules change its buffers in place.
    """

    def _initialize_accelerator(self):
        criteria, self._criteria = self._criteria, []
        try:
            super()._initialize_accelerator()
        finally:
            self._criteria = criteria
        for name in criteria:
            criterion = getattr(self, name + "_")
            if isinstance(criterion, torch.nn.Module):
                criterion.to(self.accelerator.device)
        return self


def _targets(batch):
    target = batch[1]
    return target[0] if isinstance(target, tuple | list) else target


class BalancedAccuracyScoring(Callback):
    """Record the validation balanced accuracy of each epoch.

    Uses the outputs skorch already computes for the validation loss, so it
    costs no extra forward pass, and scores them as ``predict`` would:
    through :func:`prediction_scores` with the post-hoc ``offset``, and with
    the tau-normalized head when ``tau_norm`` is set. The epoch's history row
    gets ``valid_balanced_accuracy``: the mean recall over classes present in
    the validation set.

    Parameters
    ----------
    n_classes : int
        Number of classes.
    offset : Tensor of shape (n_classes,), default=None
        Post-hoc logit adjustment added to the scores.
    tau_norm : float, default=0.0
        Tau-normalization power of the head during validation (0: off).
    """

    def __init__(self, n_classes, offset=None, tau_norm=0.0):
        self.n_classes = n_classes
        self.offset = offset
        self.tau_norm = tau_norm

    def on_epoch_begin(self, net, **kwargs):
        self.correct_ = None
        self.support_ = None
        self._hook = None

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if not training and self.tau_norm and self._hook is None:
            self._hook = tau_normalize_head(net.module_, self.tau_norm)

    def on_batch_end(self, net, batch, training, y_pred=None, **kwargs):
        if training or y_pred is None:
            return
        target = _targets(batch)
        criterion = getattr(net, "criterion_", None)
        scores = prediction_scores(criterion, y_pred, self.offset)
        hits = (scores.argmax(dim=1) == target).to(torch.float64)
        correct = torch.bincount(target, weights=hits, minlength=self.n_classes)
        support = torch.bincount(target, minlength=self.n_classes)
        if self.correct_ is None:
            self.correct_, self.support_ = correct, support
        else:
            self.correct_ += correct
            self.support_ += support

    def on_epoch_end(self, net, **kwargs):
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if self.support_ is None:
            return
        present = self.support_ > 0
        recall = self.correct_[present] / self.support_[present]
        net.history.record("valid_balanced_accuracy", recall.mean().item())


def clip_gradient_norm(gradients, max_norm):
    """Rescale ``gradients`` in place: a total L2 norm of at most ``max_norm``.

    The total norm is that of all the gradients together, as in
    :func:`torch.nn.utils.clip_grad_norm_`. On the CPU the gradients are
    rescaled only when the norm is above the bound (the comparison is free
    there), so a step below it is left exactly as it was; on an accelerator
    they are multiplied by ``min(1, max_norm / norm)`` on every step, which
    needs no device synchronisation.

    Parameters
    ----------
    gradients : list of Tensor
        Dense gradients on one device.
    max_norm : float
        The bound, > 0.

    Returns
    -------
    norm : Tensor or None
        The total norm before rescaling (``None`` without gradients).

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt._training import clip_gradient_norm
    >>> gradients = [torch.tensor([3.0]), torch.tensor([4.0])]
    >>> norm = clip_gradient_norm(gradients, 1.0)
    >>> round(float(norm), 4), [round(float(g), 4) for g in gradients]
    (5.0, [0.6, 0.8])
    """
    if not gradients:
        return None
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(gradients)))
    factor = max_norm / (norm + 1e-6)
    if norm.device.type == "cpu":
        if factor < 1:
            torch._foreach_mul_(gradients, factor)
    else:
        torch._foreach_mul_(gradients, factor.clamp(max=1.0))
    return norm


class GradientNormClipping(Callback):
    """Bound the total norm of the gradients of each step (``max_grad_norm``).

    Acts after every backward pass (``on_grad_computed``), before the
    optimizer's update, through :func:`clip_gradient_norm`. A rare example
    far outside the others (a feature dozens of standard deviations out) can
    otherwise give one step a gradient thousands of times the usual one and
    send training to a non-finite loss. ``max_norm=None`` does nothing.

    Parameters
    ----------
    max_norm : float or None
        The bound on the total gradient norm.
    """

    def __init__(self, max_norm=None):
        self.max_norm = max_norm

    def on_grad_computed(self, net, named_parameters, **kwargs):
        self.clip(parameter for _, parameter in named_parameters)

    def clip(self, parameters):
        """Bound the total norm of the gradients of ``parameters`` (in place)."""
        if self.max_norm is None:
            return
        gradients = [p.grad for p in parameters if p.grad is not None]
        clip_gradient_norm(gradients, self.max_norm)


class FiniteLossCheck(Callback):
    """Stop training with a clear error as soon as an epoch goes non-finite.

    Checks the epoch's losses and, since the last update of an epoch comes
    after its last loss, the network's parameters.
    """

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        for key in ("train_loss", "valid_loss"):
            value = row.get(key)
            if value is not None and not math.isfinite(value):
                self._fail(net, f"The {key.replace('_', ' ')} became {value}")
        module = getattr(net, "module_", None)
        if module is not None:
            finite = [p.isfinite().all() for p in module.parameters()]
            if finite and not bool(torch.stack(finite).all()):
                self._fail(net, "The network's weights became non-finite")

    @staticmethod
    def _fail(net, what):
        raise NonFiniteLossError(
            f"{what} in epoch {net.history[-1]['epoch']}; the model is not "
            f"usable. Lower the learning rate (lr={net.lr}) or max_grad_norm, "
            "standardize the features, or, for margin losses with a large "
            "scale, use the cosine head (NormedLinear) and a smaller scale."
        )


class SafeEarlyStopping(EarlyStopping):
    """skorch's early stopping, from a first eligible epoch on.

    Epochs before ``first_epoch`` (0-based) are neither candidates for the best
    epoch nor counted towards the patience: training cannot stop, or return to
    weights, before the deferred re-balancing and the last learning-rate decay
    have acted. Tolerates a fit interrupted in its first epoch. With an
    accelerator, the best weights are kept from the unwrapped network, which
    is the one restored at the end of training.

    Parameters
    ----------
    first_epoch : int, default=0
        First 0-based epoch that early stopping considers.
    monitor, patience, threshold, threshold_mode, lower_is_better, sink, load_best
        As in :class:`skorch.callbacks.EarlyStopping`.
    """

    def __init__(
        self,
        first_epoch=0,
        monitor="valid_loss",
        patience=5,
        threshold=1e-4,
        threshold_mode="rel",
        lower_is_better=True,
        sink=print,
        load_best=False,
    ):
        super().__init__(
            monitor=monitor,
            patience=patience,
            threshold=threshold,
            threshold_mode=threshold_mode,
            lower_is_better=lower_is_better,
            sink=sink,
            load_best=load_best,
        )
        self.first_epoch = first_epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) - 1 < self.first_epoch:
            return
        accelerator = getattr(net, "accelerator", None)
        if accelerator is None:
            return super().on_epoch_end(net, **kwargs)
        wrapped = net.module_
        net.module_ = accelerator.unwrap_model(wrapped)
        try:
            return super().on_epoch_end(net, **kwargs)
        finally:
            net.module_ = wrapped

    def on_train_end(self, net, **kwargs):
        if len(net.history) == 0:
            return
        super().on_train_end(net, **kwargs)


class PredefinedSplit:
    """skorch ``train_split`` returning a fixed validation set (picklable)."""

    def __init__(self, valid_data):
        self.valid_data = valid_data

    def __call__(self, dataset, y=None, **kwargs):
        return dataset, self.valid_data
