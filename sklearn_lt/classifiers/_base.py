"""The shared base of the classifiers: validation, encoding, seeding, training.

:class:`BaseLongTailClassifier` validates the data, counts the classes of ``y``,
builds the loss, schedule and network from those counts, and trains a skorch net
that it keeps as ``net_``. Subclasses add parameters and the default network.
"""

import copy
import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
import torch
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)
from skorch.callbacks import ProgressBar

from .._compat import (
    HasMethods,
    Interval,
    StrOptions,
    _check_sample_weight,
    _fit_context,
    validate_data,
)
from .._device_data import (
    ClassWeightedSampler,
    DeviceDataset,
    TensorBatchIterator,
    resolve_device,
    stratified_holdout,
)
from .._imbsam import check_tail_only, tail_classes
from .._mixing import MIXING_METHODS, BatchMixing, check_mixing_input
from .._training import (
    AcceleratedLongTailNet,
    BalancedAccuracyScoring,
    FiniteLossCheck,
    GradientNormClipping,
    LongTailNet,
    NonFiniteLossError,
    PredefinedSplit,
    SafeEarlyStopping,
    TrainingInterruptedWarning,
    prediction_scores,
)
from ..losses import LOSSES, loss_parameters, make_loss
from ..modules import Standardized
from ..schedules import (
    REWEIGHT_SCHEDULES,
    Rebalancing,
    RestartedSchedule,
    auto_epochs,
)
from ..weights import effective_number_weights
from ._custom_module import accepts, build_custom_module
from ._inference import batched_outputs
from ._optimizers import OPTIMIZERS, apply_optimizer_options, optimizer_options
from ._prediction_checks import check_prediction_options
from ._retraining import (
    RETRAINING_METHODS,
    drop_retrained_head,
    retrain_classifier,
    retrained_log_scores,
)
from ._schedule_plan import (
    first_early_stopping_epoch,
    lr_multiplier,
    lr_scheduler,
    rebalancing_method,
    rebalancing_start,
)
from ._statistics import (
    class_counts,
    log_prior,
    moments,
    output_log_prior,
    target_log_prior,
)

__all__ = ["BaseLongTailClassifier"]

_LOSS_HYPERPARAMETERS = ("max_margin", "scale", "tau", "gamma")
#: Prediction batches (one fixed shape, see ``_inference.batched_outputs``) hold
#: about this many input values, with at least 16 and at most 1024 rows.
_PREDICT_BATCH_VALUES = 2**18
_PREDICT_BATCH_ROWS = (16, 1024)


def _discard(*args, **kwargs):
    """A print sink that prints nothing."""


def _random_state(random_state):
    """A RandomState for this fit; ``None`` draws fresh entropy, not global state."""
    if random_state is None:
        return np.random.RandomState(np.random.default_rng().integers(2**32 - 1))
    return check_random_state(random_state)


class BaseLongTailClassifier(ClassifierMixin, BaseEstimator, metaclass=ABCMeta):
    """Validation, label encoding, seeding and skorch training shared by classifiers.

    Subclasses add parameters through ``_parameter_constraints`` and implement
    :meth:`_build_network` (and optionally the other ``_``-prefixed hooks).
    Not meant to be instantiated directly.
    """

    #: Optimizer steps of ``max_epochs="auto"`` (see ``schedules.auto_epochs``).
    _auto_steps = 4000

    _parameter_constraints: dict = {
        "loss": [StrOptions(set(LOSSES)), type],
        "reweight_schedule": [StrOptions(set(REWEIGHT_SCHEDULES)), None],
        "deferral_start": [Interval(Real, 0, 1, closed="both")],
        "beta": [Interval(Real, 0, 1, closed="left")],
        "max_margin": [Interval(Real, 0, None, closed="left")],
        "scale": [Interval(Real, 0, None, closed="neither")],
        "tau": [Interval(Real, 0, None, closed="left")],
        "gamma": [Interval(Real, 0, None, closed="left"), None],
        "module": [type, callable, None],
        "module_params": [dict, None],
        "max_epochs": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "sam_rho": [Interval(Real, 0, None, closed="left")],
        "sam_tail_only": ["boolean"],
        "sample_attention": [Interval(Real, 0, None, closed="neither"), None],
        "mixup": [StrOptions(set(MIXING_METHODS)), None],
        "mixup_alpha": [Interval(Real, 0, None, closed="neither")],
        "lr_schedule": [StrOptions({"step", "cosine", "constant"})],
        "warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "posthoc_tau": [Interval(Real, 0, None, closed="left")],
        "tau_norm": [Interval(Real, 0, None, closed="left")],
        "prediction_prior": [StrOptions({"train", "balanced"}), "array-like", None],
        "classifier_retraining": [StrOptions(set(RETRAINING_METHODS)), None],
        "retraining_epochs": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "device": [str, torch.device],
        "accelerator": [HasMethods(["prepare", "backward"]), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "progress_bar": ["boolean"],
        "warm_start": ["boolean"],
    }

    @abstractmethod
    def __init__(
        self,
        *,
        loss,
        reweight_schedule,
        deferral_start,
        beta,
        max_margin,
        scale,
        tau,
        gamma,
        module,
        module_params,
        max_epochs,
        batch_size,
        optimizer,
        lr,
        momentum,
        weight_decay,
        max_grad_norm,
        sam_rho,
        sam_tail_only,
        sample_attention,
        mixup,
        mixup_alpha,
        lr_schedule,
        warmup_epochs,
        validation_fraction,
        n_iter_no_change,
        posthoc_tau,
        tau_norm,
        prediction_prior,
        classifier_retraining,
        retraining_epochs,
        device,
        accelerator,
        random_state,
        verbose,
        progress_bar,
        warm_start,
    ):
        self.loss = loss
        self.reweight_schedule = reweight_schedule
        self.deferral_start = deferral_start
        self.beta = beta
        self.max_margin = max_margin
        self.scale = scale
        self.tau = tau
        self.gamma = gamma
        self.module = module
        self.module_params = module_params
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.max_grad_norm = max_grad_norm
        self.sam_rho = sam_rho
        self.sam_tail_only = sam_tail_only
        self.sample_attention = sample_attention
        self.mixup = mixup
        self.mixup_alpha = mixup_alpha
        self.lr_schedule = lr_schedule
        self.warmup_epochs = warmup_epochs
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.posthoc_tau = posthoc_tau
        self.tau_norm = tau_norm
        self.prediction_prior = prediction_prior
        self.classifier_retraining = classifier_retraining
        self.retraining_epochs = retraining_epochs
        self.device = device
        self.accelerator = accelerator
        self.random_state = random_state
        self.verbose = verbose
        self.progress_bar = progress_bar
        self.warm_start = warm_start

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _build_network(self, n_features, n_classes, cosine_head):
        """Return the default network for this estimator (an ``nn.Module``)."""

    def _validate_features(self, X, *, reset):
        """Validate ``X`` and return a float32 array shaped as the network's input."""
        return validate_data(
            self, X, reset=reset, dtype=np.float32, order="C", ensure_min_samples=1
        )

    def _input_statistics(self, X, sample_weight=None):
        """Mean and scale that standardize the network input, or ``(None, None)``.

        Per feature for 2-D ``X``, per channel for images ``(N, C, H, W)``.
        """
        images = X.ndim == 4
        mean, scale = moments(X, (0, 2, 3) if images else (0,), sample_weight)
        scale[~(scale > 1e-12 * np.maximum(np.abs(mean), 1.0))] = 1.0
        shape = (1, -1, 1, 1) if images else (-1,)
        return (
            mean.astype(np.float32).reshape(shape),
            scale.astype(np.float32).reshape(shape),
        )

    def _prediction_batch_rows(self):
        """Rows per prediction batch: bounded memory whatever the number of rows."""
        low, high = _PREDICT_BATCH_ROWS
        return int(min(high, max(low, _PREDICT_BATCH_VALUES // self.n_features_in_)))

    def _training_augmentation(self):
        """A module applied to training batches only, or ``None``."""
        return None

    def _network_options(self):
        """Extra keyword arguments of :class:`~sklearn_lt.modules.Standardized`."""
        return {}

    # ------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train the network on ``(X, y)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data, cast to float32 (sparse: LongTailClassifier only).
        y : array-like of shape (n_samples,)
            Class labels (ints, strings, bools...).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative per-example weights, multiplied with the class weights
            of the re-weighting schedule.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        if self.optimizer == "sam" and self.accelerator is not None:
            raise ValueError(
                "optimizer='sam' cannot train through an accelerator: its two "
                "passes per step need an optimizer closure, which mixed precision "
                "and gradient accumulation do not support. Use optimizer='sgd', "
                "or accelerator=None."
            )
        warm = self.warm_start and hasattr(self, "net_")
        X = self._validate_features(X, reset=not warm)
        mixing = self._mixing_method()
        check_mixing_input(mixing, X.ndim, sparse=issparse(X))
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        if warm and not np.array_equal(encoder.classes_, self.classes_):
            raise ValueError(
                "warm_start=True needs the same classes as the previous fit; got "
                f"{encoder.classes_.tolist()} instead of {self.classes_.tolist()}."
            )
        if encoder.classes_.size < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 classes in y; got 1 class "
                f"({encoder.classes_[0]!r})."
            )
        y_encoded = encoder.transform(y)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float32, ensure_non_negative=True
            )
            if not sample_weight.any():
                raise ValueError(
                    "sample_weight must have at least one non-zero weight; all "
                    "weights are zero, so there is nothing to learn from."
                )
        # A fit that fails with a non-finite loss must not leave a NaN model:
        # a warm fit returns to the model it started from, a cold one to unfitted.
        fitted_before = copy.deepcopy(self._fitted_attributes()) if warm else {}
        try:
            self._fit_encoded(X, encoder, y_encoded, sample_weight, warm, mixing)
        except NonFiniteLossError:
            for name in self._fitted_attributes():
                delattr(self, name)
            for name, value in fitted_before.items():
                setattr(self, name, value)
            raise
        return self

    def _fitted_attributes(self):
        return {
            name: value
            for name, value in vars(self).items()
            if name.endswith("_") and not name.startswith("__")
        }

    def _mixing_method(self):
        """The mixing of the training batches (``mixup`` with "auto" resolved)."""
        return self.mixup

    def _fit_encoded(self, X, encoder, y_encoded, sample_weight, warm, mixing):
        self.classes_ = encoder.classes_
        self.mixup_ = mixing
        self.device_ = (
            resolve_device(self.device)
            if self.accelerator is None
            else torch.device(self.accelerator.device)
        )
        seeds = _random_state(self.random_state).randint(0, 2**31 - 1, size=4)
        train_index, valid_index = self._holdout(
            y_encoded, np.random.RandomState(seeds[1])
        )
        # Counts, epochs and input statistics come from the training rows only.
        train_rows = slice(None) if train_index is None else train_index
        self.class_counts_ = class_counts(
            y_encoded[train_rows],
            None if sample_weight is None else sample_weight[train_rows],
            self.classes_.size,
        )
        self.max_epochs_ = (
            auto_epochs(
                y_encoded[train_rows].shape[0],
                self.batch_size,
                target_steps=self._auto_steps,
            )
            if self.max_epochs == "auto"
            else int(self.max_epochs)
        )
        fork_devices = [self.device_] if self.device_.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(int(seeds[0]))
            data = DeviceDataset.from_arrays(
                X, y_encoded, sample_weight, device=self.device_
            )
            train_data, valid_data = data.split(train_index, valid_index)
            if warm:
                self._continue_training(train_data, valid_data, int(seeds[2]))
            else:
                self._start_training(X, train_data, valid_data, int(seeds[2]))
            # The second stage, on the training rows only (never validation),
            # unless the user interrupted the first.
            if self.net_.interrupted_after_epoch_ is None:
                self._second_stage(train_data, int(seeds[3]))
            else:
                drop_retrained_head(self)
        self.history_ = self.net_.history

    def _second_stage(self, train_data, seed):
        try:
            retrain_classifier(self, train_data, seed)
        except KeyboardInterrupt:
            # As in the first stage, an interrupt ends fit with a usable
            # model: the first stage's network and its own prediction rule.
            drop_retrained_head(self)
            warnings.warn(
                f"The second stage (classifier_retraining="
                f"{self.classifier_retraining!r}) was interrupted; the model "
                "predicts with the first stage's network. Fit again to run it.",
                TrainingInterruptedWarning,
                stacklevel=5,  # the caller of fit
            )

    def _holdout(self, y_encoded, random_state):
        """Training and validation row indices, or ``(None, None)``."""
        if self.validation_fraction is None:
            return None, None
        train_index, valid_index = stratified_holdout(
            y_encoded, self.validation_fraction, random_state
        )
        if valid_index.size == 0:
            raise ValueError(
                "validation_fraction leaves no validation examples: every class "
                "has a single example. Use validation_fraction=None."
            )
        return train_index, valid_index

    def _loss_class(self):
        return LOSSES[self.loss] if isinstance(self.loss, str) else self.loss

    def _make_criterion(self):
        loss_class = self._loss_class()
        accepted = loss_parameters(loss_class)
        params = {
            name: getattr(self, name)
            for name in _LOSS_HYPERPARAMETERS
            if name in accepted and getattr(self, name) is not None
        }
        reweighting = rebalancing_method(self.reweight_schedule) == "reweight"
        if "weight" in accepted and reweighting:
            # The buffer that re-weighting sets each epoch. Without it the
            # loss takes its unweighted path (fewer kernels per step).
            params["weight"] = torch.ones(self.classes_.size)
        elif reweighting:
            raise ValueError(
                f"reweight_schedule={self.reweight_schedule!r} needs a loss that "
                f"accepts a `weight` argument; {loss_class.__name__} does not."
            )
        criterion = make_loss(loss_class, self.class_counts_, **params)
        if self.sample_attention is not None and not hasattr(criterion, "reduction"):
            raise ValueError(
                "sample_attention needs per-example losses: a loss with a "
                f"`reduction` attribute; {loss_class.__name__} has none."
            )
        check_tail_only(self, criterion)
        if hasattr(criterion, "validate_targets"):
            # Targets come from our own label encoding: skip the per-batch check.
            criterion.validate_targets = False
        check_prediction_options(self, criterion, self.classifier_retraining)
        if self.prediction_prior is not None:
            target_log_prior(self.prediction_prior, self.class_counts_)
        return criterion

    def _make_module(self, X, n_features, criterion, sample_weight=None):
        n_classes = self.classes_.size
        cosine_head = bool(getattr(criterion, "cosine_head", False))
        if self.module is None:
            network = self._build_network(n_features, n_classes, cosine_head)
        else:
            network = build_custom_module(
                self.module,
                self.module_params,
                criterion,
                n_features=n_features,
                n_classes=n_classes,
                cosine_head=cosine_head,
                in_channels=X.shape[1] if X.ndim == 4 else None,
            )
        # The loss prepares the head it trains (sigmoid losses: bias -log(C-1)).
        head = getattr(network, "head", None)
        if head is not None and hasattr(criterion, "initialize_head"):
            criterion.initialize_head(head, n_classes)
        mean, scale = self._input_statistics(X, sample_weight)
        to_tensor = lambda a: None if a is None else torch.as_tensor(a)  # noqa: E731
        return Standardized(
            network,
            to_tensor(mean),
            to_tensor(scale),
            augmentation=self._training_augmentation(),
            **self._network_options(),
        )

    def _prediction_offset(self, criterion, rebalanced):
        """What predictions add to the scores (float64 tensor), or ``None``.

        ``-posthoc_tau * log prior``; or, with ``prediction_prior``, the log of
        its prior minus the log of the prior the scores target (the loss's,
        times the class weights when ``rebalanced`` at the end of training).
        """
        if self.prediction_prior is None:
            if not self.posthoc_tau:
                return None
            return torch.as_tensor(-self.posthoc_tau * log_prior(self.class_counts_))
        weights = (
            effective_number_weights(self.class_counts_, self.beta)
            if rebalanced
            else None
        )
        target = target_log_prior(self.prediction_prior, self.class_counts_)
        return target - output_log_prior(criterion, self.class_counts_, weights)

    def _callbacks(self, sampler, criterion):
        callbacks = [
            (
                "lr_schedule",
                lr_scheduler(self.lr_schedule, self.max_epochs_, self.warmup_epochs),
            )
        ]
        start = rebalancing_start(
            self.reweight_schedule, self.max_epochs_, self.deferral_start
        )
        if start is not None:
            method = rebalancing_method(self.reweight_schedule)
            weights = effective_number_weights(self.class_counts_, self.beta)
            callbacks.append(
                ("rebalancing", Rebalancing(weights, start, method, sampler))
            )
        if self.validation_fraction is not None:
            scoring = BalancedAccuracyScoring(
                self.classes_.size,
                # Early stopping keeps an epoch with the re-balancing on, if
                # it ever starts (first_early_stopping_epoch).
                self._prediction_offset(
                    criterion, start is not None and start < self.max_epochs_
                ),
                self.tau_norm,
            )
            callbacks += [
                ("balanced_accuracy", scoring),
                (
                    "early_stopping",
                    SafeEarlyStopping(
                        first_epoch=first_early_stopping_epoch(
                            self.lr_schedule,
                            self.max_epochs_,
                            self.warmup_epochs,
                            start,
                        ),
                        monitor="valid_balanced_accuracy",
                        lower_is_better=False,
                        patience=self.n_iter_no_change,
                        threshold=0.0,
                        threshold_mode="abs",
                        load_best=True,
                        sink=self._print_sink,
                    ),
                ),
            ]
        callbacks.append(
            ("gradient_clipping", GradientNormClipping(self.max_grad_norm))
        )
        callbacks.append(("finite_loss", FiniteLossCheck()))
        if self.progress_bar:
            callbacks.append(("progress_bar", ProgressBar()))
        return callbacks

    def _print_sink(self, message):
        if self.verbose:
            print(message)

    def _optimizer_options(self, criterion):
        return optimizer_options(
            self.optimizer,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            sam_rho=self.sam_rho,
            criterion=criterion,
        )

    def _new_net(self, X, sample_weight=None, sampler=None):
        """Build (but do not train) the skorch net for data shaped like ``X``.

        Needs the fitted ``classes_``, ``class_counts_``, ``n_features_in_`` and
        ``device_``; ``X`` provides the input statistics and shape. ``sampler``
        orders the training examples; the net and its re-balancing callback
        share it. ``None`` (a net rebuilt by ``load_model``) gives a sampler
        without targets, as a trained net keeps.
        """
        criterion = self._make_criterion()
        module = self._make_module(X, self.n_features_in_, criterion, sample_weight)
        if getattr(module, "channels_last", False) and self.device_.type == "cuda":
            module = module.to(memory_format=torch.channels_last)
        if sampler is None:
            sampler = ClassWeightedSampler(
                torch.zeros(0, dtype=torch.int64, device=self.device_)
            )
        net_class, placement = LongTailNet, {"device": self.device_}
        if self.accelerator is not None:
            net_class = AcceleratedLongTailNet
            placement = {
                "accelerator": self.accelerator,
                "device": None,
                "iterator_train__shard": (
                    self.accelerator.process_index,
                    self.accelerator.num_processes,
                ),
                # skorch's "auto" sink prints even when verbose=0.
                "callbacks__print_log__sink": (
                    self.accelerator.print if self.verbose else _discard
                ),
            }
        return net_class(
            module=module,
            criterion=criterion,
            optimizer=OPTIMIZERS[self.optimizer],
            lr=self.lr,
            max_epochs=self.max_epochs_,
            batch_size=self.batch_size,
            iterator_train=TensorBatchIterator,
            iterator_train__sampler=sampler,
            iterator_valid=TensorBatchIterator,
            train_split=None,
            callbacks=self._callbacks(sampler, criterion),
            sample_attention=self.sample_attention,
            sam_tail_classes=tail_classes(self, self.device_),
            mixing=BatchMixing.for_estimator(self, sampler),
            predict_nonlinearity=None,
            verbose=int(self.verbose),
            **placement,
            **{
                f"optimizer__{key}": value
                for key, value in self._optimizer_options(criterion).items()
            },
        )

    def _start_training(self, X, train_data, valid_data, sampler_seed):
        # Input statistics from the training rows (with their weights) only.
        rows = slice(None) if train_data.rows is None else train_data.rows.cpu().numpy()
        weights = train_data.sample_weight
        self.net_ = self._new_net(
            X[rows],
            None if weights is None else weights.cpu().numpy(),
            ClassWeightedSampler(train_data.y, seed=sampler_seed),
        )
        self._train(train_data, valid_data, partial=False)

    def _continue_training(self, train_data, valid_data, sampler_seed):
        # The network, optimizer and schedules carry on; the number of further
        # epochs comes from the current parameters, and the margins, priors and
        # class weights from this fit's class counts (changed in place).
        net = self.net_
        if net.optimizer is not OPTIMIZERS[self.optimizer]:
            raise ValueError(
                f"warm_start=True continues the optimizer of the previous fit "
                f"({net.optimizer.__name__}); optimizer={self.optimizer!r} needs a "
                "new model: fit with warm_start=False."
            )
        # The momentum buffers carry on, with the current settings.
        apply_optimizer_options(
            net.optimizer_,
            net.module_,
            self.lr,
            self._optimizer_options(net.criterion_),
        )
        net.max_epochs = self.max_epochs_
        net.sample_attention = self.sample_attention
        net.sam_tail_classes = tail_classes(self, self.device_)
        clipping = dict(net.callbacks_).get("gradient_clipping")
        if clipping is not None:  # absent from nets built before the option
            clipping.max_norm = self.max_grad_norm
        fresh = self._make_criterion()
        with torch.no_grad():
            for name, buffer in fresh.named_buffers():
                if name != "weight":
                    net.criterion_.get_buffer(name).copy_(buffer)
        # The sampler that the net and its re-balancing share draws from the new
        # training rows, and re-balancing uses this fit's class weights.
        net.iterator_train__sampler.reset(train_data.y, seed=sampler_seed)
        net.mixing = BatchMixing.for_estimator(self, net.iterator_train__sampler)
        rebalancing = dict(net.callbacks_).get("rebalancing")
        if rebalancing is not None:
            rebalancing.set_params(
                class_weights=effective_number_weights(self.class_counts_, self.beta)
            )
            rebalancing.initialize()
        scoring = dict(net.callbacks_).get("balanced_accuracy")
        if scoring is not None:  # scores as predict will, with this fit's prior
            end = len(net.history) + self.max_epochs_
            rebalanced = rebalancing is not None and rebalancing.start_epoch < end
            scoring.set_params(
                offset=self._prediction_offset(net.criterion_, rebalanced)
            )
        # A new cycle of the learning-rate shape over the new epochs (no
        # warm-up): the old one has ended (a cosine schedule at zero).
        lr_schedule = dict(net.callbacks_)["lr_schedule"]
        lr_schedule.lr_lambda = RestartedSchedule(
            lr_multiplier(self.lr_schedule, self.max_epochs_, warmup=0),
            first_epoch=len(net.history),
            before=lr_schedule.lr_lambda,
        )
        self._train(train_data, valid_data, partial=True)

    def _train(self, train_data, valid_data, partial):
        net = self.net_
        try:
            if train_data.sample_weight is not None and not accepts(
                net.criterion.forward, "sample_weight"
            ):
                raise ValueError(
                    f"sample_weight was given but {type(net.criterion).__name__}"
                    ".forward does not accept a sample_weight argument."
                )
            net.train_split = (
                None if valid_data is None else PredefinedSplit(valid_data)
            )
            if partial:
                net.partial_fit(train_data, None)
            else:
                net.fit(train_data, None)
        finally:
            # Keep (and pickle) neither the validation set nor the targets.
            net.train_split = None
            net.iterator_train__sampler.release()
        if net.interrupted_after_epoch_ is not None:
            completed = net.interrupted_after_epoch_
            warnings.warn(
                "Training was interrupted; the model keeps the weights of the last "
                f"completed epoch ({completed}"
                + (", i.e. its initial weights" if not completed else "")
                + "). Fit again, with warm_start=True to continue training."
                + (
                    " The second stage (classifier_retraining="
                    f"{self.classifier_retraining!r}) was not run."
                    if self.classifier_retraining is not None
                    else ""
                ),
                TrainingInterruptedWarning,
                stacklevel=6,  # the caller of fit
            )

    # --------------------------------------------------------------- predict
    def _prepare_inference(self, X):
        check_is_fitted(self)
        return self._validate_features(X, reset=False)

    def _log_proba(self, X):
        """Log-probabilities (float64) after the optional post-hoc adjustment."""
        X = self._prepare_inference(X)  # checks that the estimator is fitted
        if hasattr(self, "retrained_head_"):  # the second stage's own rule
            return torch.log_softmax(retrained_log_scores(self, X), dim=1).numpy()
        outputs = batched_outputs(
            self.net_.module_,
            X,
            self._prediction_batch_rows(),
            self.classes_.size,
            self.tau_norm,
        )
        criterion = self.net_.criterion_
        check_prediction_options(self, criterion)
        # The weights kept are those of the last (completed) epoch.
        last = self.history_[-1] if len(self.history_) else {}
        rebalanced = bool(last.get("rebalancing", False))
        offset = self._prediction_offset(criterion, rebalanced)
        scores = prediction_scores(criterion, outputs, offset)
        return torch.log_softmax(scores, dim=1).numpy()

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data (sparse: LongTailClassifier only).

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        return self._log_proba(X)

    def predict_proba(self, X):
        """Class probabilities.

        A softmax of the logits (a normalized sigmoid for the sigmoid losses),
        adjusted by ``posthoc_tau`` when it is non-zero, or moved to the class
        prior ``prediction_prior`` when it is set.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data (sparse: LongTailClassifier only).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes), dtype float64
            Rows sum to one; columns follow ``classes_``.
        """
        proba = np.exp(self._log_proba(X))
        return proba / proba.sum(axis=1, keepdims=True)

    def decision_function(self, X):
        """Confidence scores whose argmax is the prediction.

        The log-probabilities of :meth:`predict_log_proba`: the prediction
        logits (minus ``posthoc_tau * log prior``, or moved to
        ``prediction_prior``, when set) shifted so that each row's
        probabilities sum to one. Binary problems return the score of
        ``classes_[1]`` minus that of ``classes_[0]``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data (sparse: LongTailClassifier only).

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        scores = self._log_proba(X)
        if self.classes_.size == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def predict(self, X):
        """Predict class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data (sparse: LongTailClassifier only).

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_`` (the original labels, not indices).
        """
        log_proba = self._log_proba(X)
        return self.classes_[np.argmax(log_proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        tags.classifier_tags.multi_label = False
        return tags
