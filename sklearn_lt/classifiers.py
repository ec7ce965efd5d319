"""scikit-learn classifiers trained with skorch on long-tail objectives.

:class:`LongTailClassifier` is a plain scikit-learn estimator. Its ``fit``
validates the data, counts the classes of ``y``, builds the loss, schedule and
network from those counts, and trains a skorch net that it keeps as ``net_``.
Every fit, and so every cross-validation fold and every resampled pipeline,
gets its own margins, priors and weights.
"""

import copy
import inspect
import math
import numbers
import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)
from skorch.callbacks import LRScheduler, ProgressBar
from torch import nn

from ._compat import (
    HasMethods,
    Interval,
    StrOptions,
    _check_sample_weight,
    _fit_context,
    validate_data,
)
from ._training import (
    AcceleratedLongTailNet,
    BalancedAccuracyScoring,
    FiniteLossCheck,
    LongTailNet,
    NonFiniteLossError,
    SafeEarlyStopping,
    TrainingInterruptedWarning,
)
from .augmentation import RandomCropFlip
from .losses import LOSSES, loss_parameters, make_loss
from .modules import MLP, SmallCNN, Standardized, resnet32
from .samplers import (
    ClassWeightedSampler,
    DeviceDataset,
    TensorBatchIterator,
    stratified_holdout,
)
from .schedules import (
    REWEIGHT_SCHEDULES,
    Rebalancing,
    WarmupCosineDecay,
    WarmupStepDecay,
    deferral_epoch,
)
from .weights import effective_number_weights

__all__ = ["BaseLongTailClassifier", "LongTailClassifier", "LongTailImageClassifier"]

_OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}
_LOSS_HYPERPARAMETERS = ("max_margin", "scale", "tau", "gamma")
_PREDICT_BATCH_SIZE = 8192


def _resolve_device(device):
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device must be 'auto' or a torch device such as 'cpu' or 'cuda:0'; "
            f"got {device!r}."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available; use "
            "device='auto' or 'cpu'."
        )
    return resolved


def _accepts(callable_, name):
    try:
        parameters = inspect.signature(callable_).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(
        p.kind is p.VAR_KEYWORD for p in parameters.values()
    )


def _as_tensor(array, device):
    """``torch.as_tensor`` without its warning for read-only arrays.

    Read-only inputs are common (joblib memmaps in parallel searches); the
    tensors made from them are only read.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="The given NumPy array is not writable"
        )
        return torch.as_tensor(array, device=device)


def _discard(*args, **kwargs):
    """A print sink that prints nothing."""


def _random_state(random_state):
    """A RandomState for this fit; ``None`` draws fresh entropy, not global state."""
    if random_state is None:
        return np.random.RandomState(np.random.default_rng().integers(2**32 - 1))
    return check_random_state(random_state)


def _log_prior(class_counts):
    """Log class priors, zero counts treated as the rarest class (never -inf)."""
    counts = np.asarray(class_counts, dtype=np.float64)
    safe = np.where(counts > 0, counts, counts[counts > 0].min())
    return np.log(safe / counts.sum())


class BaseLongTailClassifier(ClassifierMixin, BaseEstimator, metaclass=ABCMeta):
    """Validation, label encoding, seeding and skorch training shared by classifiers.

    Subclasses add parameters through ``_parameter_constraints`` and implement
    :meth:`_build_network` (and optionally the other ``_``-prefixed hooks).
    Not meant to be instantiated directly.
    """

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
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "optimizer": [StrOptions(set(_OPTIMIZERS))],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "lr_schedule": [StrOptions({"step", "cosine", "constant"})],
        "warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "posthoc_tau": [Interval(Real, None, None, closed="neither")],
        "tau_norm": [Interval(Real, 0, None, closed="left")],
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
        lr_schedule,
        warmup_epochs,
        validation_fraction,
        n_iter_no_change,
        posthoc_tau,
        tau_norm,
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
        self.lr_schedule = lr_schedule
        self.warmup_epochs = warmup_epochs
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.posthoc_tau = posthoc_tau
        self.tau_norm = tau_norm
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
            self, X, reset=reset, dtype=np.float32, ensure_min_samples=1
        )

    def _input_statistics(self, X):
        """Mean and scale that standardize the network input, or ``(None, None)``."""
        mean = X.mean(axis=0, dtype=np.float64)
        scale = X.std(axis=0, dtype=np.float64)
        scale[~(scale > 1e-12 * np.maximum(np.abs(mean), 1.0))] = 1.0
        return mean.astype(np.float32), scale.astype(np.float32)

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
        X : array-like of shape (n_samples, n_features)
            Training data; cast to float32.
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
        warm = self.warm_start and hasattr(self, "net_")
        X = self._validate_features(X, reset=not warm)
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
        # A fit that fails with a non-finite loss must not leave a NaN model:
        # a warm fit returns to the model it started from, a cold one to unfitted.
        fitted_before = copy.deepcopy(self._fitted_attributes()) if warm else {}
        try:
            self._fit_encoded(X, encoder, y_encoded, sample_weight, warm)
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

    def _fit_encoded(self, X, encoder, y_encoded, sample_weight, warm):
        self.classes_ = encoder.classes_
        n_classes = self.classes_.size
        self.class_counts_ = np.bincount(y_encoded, minlength=n_classes)
        self.device_ = (
            _resolve_device(self.device)
            if self.accelerator is None
            else torch.device(self.accelerator.device)
        )

        seeds = _random_state(self.random_state).randint(0, 2**31 - 1, size=3)
        fork_devices = [self.device_] if self.device_.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(int(seeds[0]))
            train_data, valid_data = self._device_datasets(
                X, y_encoded, sample_weight, np.random.RandomState(seeds[1])
            )
            if warm:
                self._continue_training(train_data, valid_data, int(seeds[2]))
            else:
                self._start_training(X, train_data, valid_data, int(seeds[2]))
        self.history_ = self.net_.history

    def _device_datasets(self, X, y_encoded, sample_weight, random_state):
        features = _as_tensor(X, self.device_)
        targets = torch.as_tensor(y_encoded, dtype=torch.int64, device=self.device_)
        weights = (
            None
            if sample_weight is None
            else torch.as_tensor(sample_weight, device=self.device_)
        )
        data = DeviceDataset(features, targets, weights)
        if self.validation_fraction is None:
            return data, None
        train_index, valid_index = stratified_holdout(
            y_encoded, self.validation_fraction, random_state
        )
        if valid_index.size == 0:
            raise ValueError(
                "validation_fraction leaves no validation examples: every class "
                "has a single example. Use validation_fraction=None."
            )
        to_index = lambda rows: torch.as_tensor(rows, device=self.device_)  # noqa: E731
        return data.subset(to_index(train_index)), data.subset(to_index(valid_index))

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
        if "weight" in accepted:
            params["weight"] = torch.ones(self.classes_.size)
        elif self.reweight_schedule in ("reweight", "drw"):
            raise ValueError(
                f"reweight_schedule={self.reweight_schedule!r} needs a loss that "
                f"accepts a `weight` argument; {loss_class.__name__} does not."
            )
        return make_loss(loss_class, self.class_counts_, **params)

    def _make_module(self, X, n_features, criterion):
        n_classes = self.classes_.size
        cosine_head = bool(getattr(criterion, "cosine_head", False))
        if self.module is None:
            network = self._build_network(n_features, n_classes, cosine_head)
        else:
            params = dict(self.module_params or {})
            candidates = {
                "n_features": n_features,
                "n_classes": n_classes,
                "cosine_head": cosine_head,
            }
            if X.ndim == 4:
                candidates["in_channels"] = X.shape[1]
            for name, value in candidates.items():
                if name not in params and _accepts(self.module, name):
                    params[name] = value
            network = self.module(**params)
            if not isinstance(network, nn.Module):
                raise TypeError(
                    f"module must build a torch.nn.Module; {self.module!r} returned "
                    f"{type(network).__name__}."
                )
        if getattr(criterion, "activation", "softmax") == "sigmoid":
            head = getattr(network, "head", None)
            if getattr(head, "bias", None) is not None:
                with torch.no_grad():
                    head.bias.fill_(-np.log(n_classes - 1))
        mean, scale = self._input_statistics(X)
        as_tensor = lambda a: None if a is None else torch.as_tensor(a)  # noqa: E731
        return Standardized(
            network,
            as_tensor(mean),
            as_tensor(scale),
            augmentation=self._training_augmentation(),
            **self._network_options(),
        )

    def _callbacks(self, sampler):
        callbacks = [("lr_schedule", self._lr_callback())]
        if self.reweight_schedule is not None:
            method, deferred = REWEIGHT_SCHEDULES[self.reweight_schedule]
            start = (
                deferral_epoch(self.max_epochs, self.deferral_start) if deferred else 0
            )
            weights = effective_number_weights(self.class_counts_, self.beta)
            callbacks.append(
                ("rebalancing", Rebalancing(weights, start, method, sampler))
            )
        if self.validation_fraction is not None:
            callbacks += [
                ("balanced_accuracy", BalancedAccuracyScoring(self.classes_.size)),
                (
                    "early_stopping",
                    SafeEarlyStopping(
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
        callbacks.append(("finite_loss", FiniteLossCheck()))
        if self.progress_bar:
            callbacks.append(("progress_bar", ProgressBar()))
        return callbacks

    def _print_sink(self, message):
        if self.verbose:
            print(message)

    def _lr_callback(self):
        if self.lr_schedule == "step":
            multiplier = WarmupStepDecay.for_training(
                self.max_epochs, self.warmup_epochs
            )
        elif self.lr_schedule == "cosine":
            multiplier = WarmupCosineDecay(self.max_epochs, self.warmup_epochs)
        else:
            multiplier = WarmupStepDecay(self.warmup_epochs)
        return LRScheduler(
            policy=torch.optim.lr_scheduler.LambdaLR,
            lr_lambda=multiplier,
            step_every="epoch",
            event_name="lr",
        )

    def _optimizer_params(self, criterion):
        params = {"weight_decay": self.weight_decay}
        if self.optimizer == "sgd":
            params["momentum"] = self.momentum
        if getattr(criterion, "activation", "softmax") == "sigmoid":
            params["param_groups"] = [("network.head.bias", {"weight_decay": 0.0})]
        return {f"optimizer__{key}": value for key, value in params.items()}

    def _new_net(self, X):
        """Build (but do not train) the skorch net for data shaped like ``X``.

        Needs the fitted ``classes_``, ``class_counts_``, ``n_features_in_`` and
        ``device_``; ``X`` provides the input statistics and shape.
        """
        criterion = self._make_criterion()
        module = self._make_module(X, self.n_features_in_, criterion)
        if getattr(module, "channels_last", False) and self.device_.type == "cuda":
            module = module.to(memory_format=torch.channels_last)
        # Replaced by a sampler over the training targets in every fit.
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
            optimizer=_OPTIMIZERS[self.optimizer],
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train=TensorBatchIterator,
            iterator_train__sampler=sampler,
            iterator_valid=TensorBatchIterator,
            train_split=None,
            callbacks=self._callbacks(sampler),
            predict_nonlinearity=None,
            verbose=int(self.verbose),
            **placement,
            **self._optimizer_params(criterion),
        )

    def _start_training(self, X, train_data, valid_data, sampler_seed):
        self.net_ = self._new_net(X)
        self._train(train_data, valid_data, sampler_seed, partial=False)

    def _continue_training(self, train_data, valid_data, sampler_seed):
        # The network, optimizer and schedules carry on; the number of further
        # epochs comes from the current parameters, and the margins, priors and
        # class weights from this fit's class counts (changed in place).
        net = self.net_
        net.max_epochs = self.max_epochs
        fresh = self._make_criterion()
        with torch.no_grad():
            for name, buffer in fresh.named_buffers():
                if name != "weight":
                    net.criterion_.get_buffer(name).copy_(buffer)
        rebalancing = dict(net.callbacks_).get("rebalancing")
        if rebalancing is not None:
            rebalancing.class_weights = effective_number_weights(
                self.class_counts_, self.beta
            )
            rebalancing.initialize()
        self._train(train_data, valid_data, sampler_seed, partial=True)

    def _train(self, train_data, valid_data, sampler_seed, partial):
        net = self.net_
        if train_data.sample_weight is not None and not _accepts(
            net.criterion.forward, "sample_weight"
        ):
            raise ValueError(
                f"sample_weight was given but {type(net.criterion).__name__}.forward "
                "does not accept a sample_weight argument."
            )
        sampler = ClassWeightedSampler(train_data.y, seed=sampler_seed)
        net.iterator_train__sampler = sampler
        if net.initialized_:
            rebalancing = dict(net.callbacks_).get("rebalancing")
        else:
            rebalancing = dict(net.callbacks).get("rebalancing")
        if rebalancing is not None:
            rebalancing.sampler = sampler
        net.train_split = None if valid_data is None else _Predefined(valid_data)
        try:
            if partial:
                net.partial_fit(train_data, None)
            else:
                net.fit(train_data, None)
        finally:
            # Do not keep (and pickle) the validation set or the training
            # targets with the model.
            net.train_split = None
            sampler.targets = sampler.targets.new_empty(0)
        if net.interrupted_after_epoch_ is not None:
            completed = net.interrupted_after_epoch_
            warnings.warn(
                "Training was interrupted; the model keeps the weights of the last "
                f"completed epoch ({completed}"
                + (", i.e. its initial weights" if not completed else "")
                + "). Fit again, with warm_start=True to continue training.",
                TrainingInterruptedWarning,
                stacklevel=6,  # the caller of fit
            )

    # --------------------------------------------------------------- predict
    def _prepare_inference(self, X):
        check_is_fitted(self)
        return self._validate_features(X, reset=False)

    def _module_device(self):
        module = self.net_.module_
        for tensor in (*module.parameters(), *module.buffers()):
            return tensor.device
        return torch.device("cpu")

    def _inference_module(self):
        """A network for prediction, and its device: float64 on CPU.

        On CPU, float32 matrix kernels change with the batch shape, so a row's
        output would depend on the other rows predicted with it; a float64 copy
        makes predictions independent of batching. GPUs keep the float32 network.
        """
        module = self.net_.module_
        device = self._module_device()
        if device.type == "cpu":
            module = copy.deepcopy(module).double()
        return module, device

    def _logits(self, X):
        """Raw network outputs for ``X``, computed in batches, as float64 numpy."""
        module, device = self._inference_module()
        dtype = torch.float64 if device.type == "cpu" else torch.float32
        was_training = module.training
        module.eval()
        hook = _attach_tau_norm(module, self.tau_norm) if self.tau_norm else None
        outputs = []
        try:
            with torch.inference_mode():
                for start in range(0, X.shape[0], _PREDICT_BATCH_SIZE):
                    batch = _as_tensor(
                        X[start : start + _PREDICT_BATCH_SIZE], device
                    ).to(dtype)
                    outputs.append(module(batch).to(torch.float64).cpu())
        finally:
            if hook is not None:
                hook.remove()
            module.train(was_training)
        if not outputs:
            return np.zeros((0, self.classes_.size))
        return torch.cat(outputs).numpy()

    def _log_proba(self, X):
        """Log-probabilities (float64) after the optional post-hoc adjustment."""
        logits = self._logits(self._prepare_inference(X))
        criterion = self.net_.criterion_
        if hasattr(criterion, "prediction_logits"):
            logits = criterion.prediction_logits(logits)
        activation = getattr(criterion, "activation", "softmax")
        if activation == "sigmoid":
            logits = -np.logaddexp(0.0, -logits)
        if self.posthoc_tau:
            logits = logits - self.posthoc_tau * _log_prior(self.class_counts_)
        return logits - _logsumexp(logits)

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        return self._log_proba(X)

    def predict_proba(self, X):
        """Class probabilities.

        A softmax of the logits (a normalized sigmoid for the sigmoid losses),
        adjusted by ``posthoc_tau`` when it is non-zero.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes), dtype float64
            Rows sum to one; columns follow ``classes_``.
        """
        proba = np.exp(self._log_proba(X))
        return proba / proba.sum(axis=1, keepdims=True)

    def decision_function(self, X):
        """Confidence scores whose argmax is the prediction.

        The network's logits (minus ``posthoc_tau * log prior`` when set); for
        the sigmoid losses, normalized log-probabilities. Binary problems return
        the score of ``classes_[1]`` minus that of ``classes_[0]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

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
        X : array-like of shape (n_samples, n_features)
            Input data.

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


class _Predefined:
    """skorch ``train_split`` returning a fixed validation set (picklable)."""

    def __init__(self, valid_data):
        self.valid_data = valid_data

    def __call__(self, dataset, y=None, **kwargs):
        return dataset, self.valid_data


def _logsumexp(values):
    peak = values.max(axis=1, keepdims=True)
    return peak + np.log(np.exp(values - peak).sum(axis=1, keepdims=True))


def _attach_tau_norm(module, power):
    """Make the head use ``W / ||W||^power`` for the next forward passes."""
    network = getattr(module, "network", module)
    head = getattr(network, "head", None)
    if not isinstance(head, nn.Linear):
        raise ValueError(
            "tau_norm needs a network whose last layer is an nn.Linear named `head`."
        )

    def rescaled(layer, inputs, output):
        norms = layer.weight.norm(dim=1).clamp_min(1e-12)
        weight = layer.weight / norms.pow(power).unsqueeze(1)
        return nn.functional.linear(inputs[0], weight, layer.bias)

    return head.register_forward_hook(rescaled)


class LongTailClassifier(BaseLongTailClassifier):
    r"""Neural-network classifier for long-tailed tabular data.

    A multi-layer perceptron (or any ``torch.nn.Module``) trained with skorch on
    the losses and re-balancing schedules of the long-tail literature. Class
    counts are taken from the ``y`` of each ``fit``, so every cross-validation
    fold and every resampled pipeline gets its own margins, priors and weights.

    Parameters
    ----------
    loss : str or type, default="logit_adjusted"
        Training objective: ``"ce"``, ``"focal"``, ``"ldam"``,
        ``"logit_adjusted"``, ``"balanced_softmax"``, ``"vs"``, ``"sigmoid"``,
        ``"sigmoid_focal"`` (see :mod:`sklearn_lt.losses`), or a loss class; a
        class whose constructor takes ``class_counts`` receives them. LDAM gets a
        cosine (:class:`~sklearn_lt.modules.NormedLinear`) head automatically.
    reweight_schedule : {"reweight", "resample", "drw", "drs"} or None, default=None
        Class re-balancing over training: class-balanced weights or
        class-balanced sampling from the first epoch (``"reweight"``,
        ``"resample"``), or from ``deferral_start`` on (deferred re-weighting
        ``"drw"``, deferred re-sampling ``"drs"``). ``None`` trains on the data
        as given.
    deferral_start : float, default=0.8
        Fraction of ``max_epochs`` before the deferred schedules switch on
        (0.8 is epoch 160 of 200, as in Cao et al.).
    beta : float, default=0.9999
        Effective-number hyperparameter of the class-balanced weights used by
        every schedule (:func:`~sklearn_lt.weights.effective_number_weights`).
    max_margin : float, default=0.5
        Largest LDAM margin (read by ``"ldam"``).
    scale : float, default=30.0
        LDAM logit scale (read by ``"ldam"``).
    tau : float, default=1.0
        Logit-adjustment temperature (read by ``"logit_adjusted"`` and ``"vs"``).
    gamma : float or None, default=None
        Focusing parameter of ``"focal"`` and ``"sigmoid_focal"`` (their default
        is 1.0) and scaling exponent of ``"vs"`` (default 0.3); ``None`` keeps the
        loss's default.
    hidden_layer_sizes : tuple of int, default=(256, 256)
        Hidden widths of the default MLP.
    module : type or callable, default=None
        A ``torch.nn.Module`` class (or factory) replacing the MLP. It is called
        with ``module_params`` plus ``n_features``, ``n_classes`` and
        ``cosine_head`` for those its signature accepts. A last layer named
        ``head`` lets the sigmoid losses set its bias and ``tau_norm`` rescale it.
    module_params : dict, default=None
        Keyword arguments of ``module``.
    max_epochs : int, default=30
        Training epochs.
    batch_size : int, default=128
        Mini-batch size.
    optimizer : {"sgd", "adam", "adamw"}, default="sgd"
        SGD with momentum as in the papers, or Adam/AdamW.
    lr : float, default=0.05
        Base learning rate.
    momentum : float, default=0.9
        SGD momentum.
    weight_decay : float, default=2e-4
        L2 penalty (the papers' value).
    lr_schedule : {"step", "cosine", "constant"}, default="step"
        After ``warmup_epochs`` of linear warm-up: step decay (x0.01 at 80% and
        x0.0001 at 90% of training, the papers' schedule), cosine decay, or a
        constant rate.
    warmup_epochs : int, default=5
        Epochs of linear learning-rate warm-up ("essential for re-weighting",
        Cao et al.).
    standardize : bool, default=True
        Standardize features with the training mean and standard deviation
        inside the network (stored with the model).
    validation_fraction : float or None, default=None
        Fraction of each class held out for early stopping on balanced accuracy;
        the best epoch's weights are restored. Classes with a single example stay
        in training.
    n_iter_no_change : int, default=10
        Patience of early stopping, in epochs.
    posthoc_tau : float, default=0.0
        Post-hoc logit adjustment applied at prediction time:
        ``argmax_j z_j - posthoc_tau * log pi_j`` (Menon et al., eq. 9). Meant
        for models trained without a prior-aware loss; it can be changed after
        fitting with ``set_params`` without refitting.
    tau_norm : float, default=0.0
        Prediction-time tau-normalization of the last layer (Kang et al., 2020):
        class weight vectors are divided by their norm to this power.
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    accelerator : accelerate.Accelerator or None, default=None
        Train through Hugging Face Accelerate (skorch's ``AccelerateMixin``):
        multi-GPU data parallelism when launched with ``accelerate launch``
        (each process takes every ``num_processes``-th batch; set
        ``random_state`` so that all processes draw the same batches), mixed
        precision, gradient accumulation. The accelerator then places the data
        and ``device`` is ignored. Such models cannot be pickled (skorch's
        limitation); save them with :func:`~sklearn_lt.save_model`.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialization, shuffling and the validation split. The
        caller's global NumPy and torch random states are left untouched.
    verbose : int, default=0
        1 prints skorch's epoch table.
    progress_bar : bool, default=False
        Show a per-batch progress bar (tqdm).
    warm_start : bool, default=False
        Continue training the fitted network for ``max_epochs`` more epochs on
        the next ``fit``, with the same optimizer state; the learning-rate and
        re-balancing schedules continue from their position (they count epochs
        from the first fit). Classes and features must stay the same.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    class_counts_ : ndarray of shape (n_classes,)
        Number of examples of each class in the ``y`` of the last fit.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when ``X`` is a DataFrame with string column names.
    net_ : skorch.NeuralNet
        The trained skorch net; ``net_.module_`` is the network.
    history_ : skorch.History
        One row per epoch: ``train_loss``, ``lr``, ``rebalancing``,
        ``valid_loss`` and ``valid_balanced_accuracy`` when validating.
    device_ : torch.device
        Device used for training.

    See Also
    --------
    LongTailImageClassifier : The same estimator with image networks.
    sklearn_lt.posthoc.LogitAdjustedClassifier : Post-hoc adjustment of any
        classifier.

    Notes
    -----
    Each method of the papers is one parameter setting:

    ==============  ==========================================================
    Method          Parameters
    ==============  ==========================================================
    ERM             ``loss="ce"``
    Focal           ``loss="focal", gamma=1``
    LDAM            ``loss="ldam"``
    CB RW           ``loss="ce", reweight_schedule="reweight"``
    CB RS           ``loss="ce", reweight_schedule="resample"``
    CB Focal        ``loss="focal", reweight_schedule="reweight"`` (softmax) or
                    ``loss="sigmoid_focal", reweight_schedule="reweight"``
    ERM-DRW         ``loss="ce", reweight_schedule="drw"``
    ERM-DRS         ``loss="ce", reweight_schedule="drs"``
    LDAM-DRW        ``loss="ldam", reweight_schedule="drw"``
    LA loss         ``loss="logit_adjusted"``
    LA post-hoc     ``loss="ce", posthoc_tau=1``
    Balanced SM     ``loss="balanced_softmax"``
    VS              ``loss="vs"``
    ==============  ==========================================================

    References
    ----------
    .. [1] K. Cao et al., "Learning Imbalanced Datasets with
       Label-Distribution-Aware Margin Loss", NeurIPS 2019.
    .. [2] Y. Cui et al., "Class-Balanced Loss Based on Effective Number of
       Samples", CVPR 2019.
    .. [3] A. K. Menon et al., "Long-tail learning via logit adjustment",
       ICLR 2021.
    .. [4] B. Kang et al., "Decoupling Representation and Classifier for
       Long-Tailed Recognition", ICLR 2020.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn_lt import LongTailClassifier
    >>> X, y = make_classification(n_samples=400, n_classes=3, n_informative=4,
    ...                            weights=[0.8, 0.15, 0.05], random_state=0)
    >>> clf = LongTailClassifier(loss="ldam", reweight_schedule="drw",
    ...                          max_epochs=10, random_state=0).fit(X, y)
    >>> clf.class_counts_
    array([319,  61,  20])
    >>> clf.predict(X[:5]).shape
    (5,)
    """

    _parameter_constraints: dict = {
        **BaseLongTailClassifier._parameter_constraints,
        "hidden_layer_sizes": ["array-like"],
        "standardize": ["boolean"],
    }

    def __init__(
        self,
        *,
        loss="logit_adjusted",
        reweight_schedule=None,
        deferral_start=0.8,
        beta=0.9999,
        max_margin=0.5,
        scale=30.0,
        tau=1.0,
        gamma=None,
        hidden_layer_sizes=(256, 256),
        module=None,
        module_params=None,
        max_epochs=30,
        batch_size=128,
        optimizer="sgd",
        lr=0.05,
        momentum=0.9,
        weight_decay=2e-4,
        lr_schedule="step",
        warmup_epochs=5,
        standardize=True,
        validation_fraction=None,
        n_iter_no_change=10,
        posthoc_tau=0.0,
        tau_norm=0.0,
        device="auto",
        accelerator=None,
        random_state=None,
        verbose=0,
        progress_bar=False,
        warm_start=False,
    ):
        super().__init__(
            loss=loss,
            reweight_schedule=reweight_schedule,
            deferral_start=deferral_start,
            beta=beta,
            max_margin=max_margin,
            scale=scale,
            tau=tau,
            gamma=gamma,
            module=module,
            module_params=module_params,
            max_epochs=max_epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            lr_schedule=lr_schedule,
            warmup_epochs=warmup_epochs,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            posthoc_tau=posthoc_tau,
            tau_norm=tau_norm,
            device=device,
            accelerator=accelerator,
            random_state=random_state,
            verbose=verbose,
            progress_bar=progress_bar,
            warm_start=warm_start,
        )
        self.hidden_layer_sizes = hidden_layer_sizes
        self.standardize = standardize

    def _build_network(self, n_features, n_classes, cosine_head):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral):
            sizes = (sizes,)
        sizes = tuple(sizes)
        if not all(isinstance(s, numbers.Integral) and s > 0 for s in sizes):
            raise ValueError(
                "hidden_layer_sizes must be a tuple of positive integers; got "
                f"{self.hidden_layer_sizes!r}."
            )
        return MLP(n_features, n_classes, sizes, cosine_head=cosine_head)

    def _input_statistics(self, X):
        if not self.standardize:
            return None, None
        return super()._input_statistics(X)


def _image_shape_for(n_features):
    """Guess ``(C, H, W)`` for flattened images: square gray, square RGB, or 1 x d.

    Squares smaller than 4 x 4 are not taken for images.
    """
    for channels in (1, 3):
        side = math.isqrt(n_features // channels)
        if side >= 4 and channels * side * side == n_features:
            return channels, side, side
    return 1, 1, n_features


class LongTailImageClassifier(BaseLongTailClassifier):
    r"""Convolutional classifier for long-tailed image data.

    The same estimator as :class:`LongTailClassifier` (``loss=``,
    ``reweight_schedule=``, ``beta``, ``max_margin``, ``tau``, ``device``, ...)
    with an image network: the CIFAR ResNet-32 of the long-tail papers or a
    small fast CNN. Training batches are augmented on the training device with
    pad-and-random-crop and horizontal flips, as in the papers.

    Parameters
    ----------
    loss : str or type, default="logit_adjusted"
        Training objective; see :class:`LongTailClassifier`.
    reweight_schedule : {"reweight", "resample", "drw", "drs"} or None, \
            default=None
        Class re-balancing over training; see :class:`LongTailClassifier`.
    deferral_start : float, default=0.8
        Fraction of ``max_epochs`` before deferred schedules switch on.
    beta : float, default=0.9999
        Effective-number hyperparameter of the class-balanced weights.
    max_margin : float, default=0.5
        Largest LDAM margin.
    scale : float, default=30.0
        LDAM logit scale.
    tau : float, default=1.0
        Logit-adjustment temperature (``"logit_adjusted"``, ``"vs"``).
    gamma : float or None, default=None
        Focal / VS exponent; ``None`` keeps the loss's default.
    architecture : {"resnet32", "cnn"}, default="resnet32"
        ``"resnet32"``: 3 stages of 5 basic blocks with 16/32/64 channels and
        option-A shortcuts (He et al.; the papers' CIFAR network). ``"cnn"``: a
        small, fast CNN for small images (:class:`~sklearn_lt.modules.SmallCNN`).
        LDAM gets a cosine head in both.
    image_shape : tuple of int (C, H, W) or None, default=None
        Shape of one image when ``X`` is 2-D (flattened images, as
        ``load_digits`` or OpenML return them). ``None`` guesses: square
        grayscale, square RGB (channel-first), else a 1 x n_features image.
        3-D ``(N, H, W)`` and 4-D ``(N, C, H, W)`` arrays carry their own shape.
    module : type or callable, default=None
        A ``torch.nn.Module`` class replacing the architecture; called with
        ``module_params`` plus ``n_classes``, ``in_channels``, ``cosine_head``
        and ``n_features`` for those its signature accepts. Its input is
        ``(N, C, H, W)``.
    module_params : dict, default=None
        Keyword arguments of ``module``.
    augment : bool or "auto", default="auto"
        Augment training batches with random crops (and flips). "auto"
        augments images of at least 8 x 8 pixels and leaves other inputs
        (such as tabular rows seen as 1 x d images) alone.
    crop_padding : int or "auto", default="auto"
        Padding of the random crop; "auto" is ``round(min(H, W) / 8)``, at
        least 1 (4 for 32x32).
    horizontal_flip : bool, default=True
        Random left-right flips; turn off for digits and text.
    mixed_precision : bool, default=False
        bfloat16 autocast for the training forward pass on CUDA.
    channels_last : bool, default=True
        Channels-last memory layout on CUDA (faster convolutions).
    max_epochs : int, default=30
        Training epochs (the papers train 200).
    batch_size : int, default=128
        Mini-batch size.
    optimizer : {"sgd", "adam", "adamw"}, default="sgd"
        Optimizer.
    lr : float, default=0.1
        Base learning rate (the papers' value).
    momentum : float, default=0.9
        SGD momentum.
    weight_decay : float, default=2e-4
        L2 penalty.
    lr_schedule : {"step", "cosine", "constant"}, default="step"
        Shape after warm-up; see :class:`LongTailClassifier`.
    warmup_epochs : int, default=5
        Epochs of linear learning-rate warm-up.
    validation_fraction : float or None, default=None
        Held-out fraction for early stopping on balanced accuracy.
    n_iter_no_change : int, default=10
        Early-stopping patience.
    posthoc_tau : float, default=0.0
        Prediction-time logit adjustment.
    tau_norm : float, default=0.0
        Prediction-time tau-normalization of the last layer.
    device : str, default="auto"
        Training device.
    accelerator : accelerate.Accelerator or None, default=None
        Train through Hugging Face Accelerate; see :class:`LongTailClassifier`.
    random_state : int, RandomState instance or None, default=None
        Seed for initialization, shuffling, augmentation and splits.
    verbose : int, default=0
        1 prints skorch's epoch table.
    progress_bar : bool, default=False
        Per-batch progress bar.
    warm_start : bool, default=False
        Continue training on the next ``fit``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    class_counts_ : ndarray of shape (n_classes,)
        Examples of each class in the ``y`` of the last fit.
    image_shape_ : tuple of int
        ``(C, H, W)`` of the training images.
    n_features_in_ : int
        ``C * H * W``.
    net_ : skorch.NeuralNet
        The trained skorch net.
    history_ : skorch.History
        One row per epoch.
    device_ : torch.device
        Device used for training.

    See Also
    --------
    LongTailClassifier : The tabular version.

    Notes
    -----
    Inputs are standardized per channel with statistics computed in ``fit``.
    On CUDA, ``mixed_precision=True`` and ``channels_last=True`` are the fast
    settings; all batches are slices of tensors already on the device.

    Examples
    --------
    >>> from sklearn_lt import LongTailImageClassifier
    >>> from sklearn_lt.datasets import load_digits_lt
    >>> data = load_digits_lt(imbalance_ratio=10, random_state=0)
    >>> clf = LongTailImageClassifier(architecture="cnn", image_shape=(1, 8, 8),
    ...                               horizontal_flip=False, max_epochs=2,
    ...                               random_state=0)
    >>> clf.fit(data.X_train, data.y_train).image_shape_
    (1, 8, 8)
    >>> clf.predict(data.X_test[:3]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        **BaseLongTailClassifier._parameter_constraints,
        "architecture": [StrOptions({"resnet32", "cnn"})],
        "image_shape": [tuple, list, None],
        "augment": ["boolean", StrOptions({"auto"})],
        "crop_padding": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "horizontal_flip": ["boolean"],
        "mixed_precision": ["boolean"],
        "channels_last": ["boolean"],
    }

    def __init__(
        self,
        *,
        loss="logit_adjusted",
        reweight_schedule=None,
        deferral_start=0.8,
        beta=0.9999,
        max_margin=0.5,
        scale=30.0,
        tau=1.0,
        gamma=None,
        architecture="resnet32",
        image_shape=None,
        module=None,
        module_params=None,
        augment="auto",
        crop_padding="auto",
        horizontal_flip=True,
        mixed_precision=False,
        channels_last=True,
        max_epochs=30,
        batch_size=128,
        optimizer="sgd",
        lr=0.1,
        momentum=0.9,
        weight_decay=2e-4,
        lr_schedule="step",
        warmup_epochs=5,
        validation_fraction=None,
        n_iter_no_change=10,
        posthoc_tau=0.0,
        tau_norm=0.0,
        device="auto",
        accelerator=None,
        random_state=None,
        verbose=0,
        progress_bar=False,
        warm_start=False,
    ):
        super().__init__(
            loss=loss,
            reweight_schedule=reweight_schedule,
            deferral_start=deferral_start,
            beta=beta,
            max_margin=max_margin,
            scale=scale,
            tau=tau,
            gamma=gamma,
            module=module,
            module_params=module_params,
            max_epochs=max_epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            lr_schedule=lr_schedule,
            warmup_epochs=warmup_epochs,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            posthoc_tau=posthoc_tau,
            tau_norm=tau_norm,
            device=device,
            accelerator=accelerator,
            random_state=random_state,
            verbose=verbose,
            progress_bar=progress_bar,
            warm_start=warm_start,
        )
        self.architecture = architecture
        self.image_shape = image_shape
        self.augment = augment
        self.crop_padding = crop_padding
        self.horizontal_flip = horizontal_flip
        self.mixed_precision = mixed_precision
        self.channels_last = channels_last

    def _validate_features(self, X, *, reset):
        if not hasattr(X, "ndim") and not hasattr(X, "shape"):
            X = np.asarray(X)  # nested lists of images
        if X.ndim <= 2:
            flat = validate_data(self, X, reset=reset, dtype=np.float32)
            shape = self._declared_image_shape(flat.shape[1], reset=reset)
        else:
            X = np.asarray(X)
            if X.ndim not in (3, 4):
                raise ValueError(
                    "X must be 2-D (flattened images), 3-D (N, H, W) or 4-D "
                    f"(N, C, H, W); got {X.ndim} dimensions."
                )
            shape = (1, *X.shape[1:]) if X.ndim == 3 else tuple(X.shape[1:])
            declared = self.image_shape
            if reset and declared is not None and tuple(declared) != shape:
                raise ValueError(
                    f"image_shape={self.image_shape!r} does not match the "
                    f"images of X, of shape {shape}; X must be (N, C, H, W) "
                    "(channels first) or (N, H, W). Leave image_shape=None "
                    "for 3-D and 4-D X."
                )
            flat = validate_data(
                self, X.reshape(X.shape[0], -1), reset=reset, dtype=np.float32
            )
            if reset:
                self.image_shape_ = shape
            elif shape != self.image_shape_:
                raise ValueError(
                    f"X has images of shape {shape}, but {type(self).__name__} was "
                    f"fitted on images of shape {self.image_shape_}."
                )
        return flat.reshape(flat.shape[0], *shape)

    def _declared_image_shape(self, n_features, *, reset):
        if not reset:
            return self.image_shape_
        if self.image_shape is None:
            shape = _image_shape_for(n_features)
        else:
            shape = tuple(self.image_shape)
            if (
                len(shape) != 3
                or not all(isinstance(d, numbers.Integral) and d > 0 for d in shape)
                or int(np.prod(shape)) != n_features
            ):
                raise ValueError(
                    f"image_shape={self.image_shape!r} must be (C, H, W) positive "
                    f"integers with C * H * W equal to the {n_features} features "
                    "of X."
                )
        self.image_shape_ = shape
        return shape

    def _input_statistics(self, X):
        mean = X.mean(axis=(0, 2, 3), dtype=np.float64)
        scale = X.std(axis=(0, 2, 3), dtype=np.float64)
        scale[~(scale > 1e-12 * np.maximum(np.abs(mean), 1.0))] = 1.0
        as_channels = lambda v: v.astype(np.float32).reshape(1, -1, 1, 1)  # noqa: E731
        return as_channels(mean), as_channels(scale)

    def _training_augmentation(self):
        _, height, width = self.image_shape_
        if self.augment == "auto":
            if min(height, width) < 8:
                return None
        elif not self.augment:
            return None
        padding = (
            max(1, round(min(height, width) / 8))
            if self.crop_padding == "auto"
            else self.crop_padding
        )
        return RandomCropFlip(padding, self.horizontal_flip)

    def _network_options(self):
        return {
            "mixed_precision": self.mixed_precision,
            "channels_last": self.channels_last,
        }

    def _build_network(self, n_features, n_classes, cosine_head):
        in_channels = self.image_shape_[0]
        if self.architecture == "resnet32":
            return resnet32(n_classes, in_channels, cosine_head)
        return SmallCNN(n_classes, in_channels, cosine_head=cosine_head)
