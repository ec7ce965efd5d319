"""LongTailImageClassifier: the estimator for images (ResNet-32 or a small CNN)."""

import math
import numbers
from numbers import Integral

import numpy as np

from .._compat import Interval, StrOptions, validate_data
from .._mixing import MIXING_METHODS
from ..augmentation import RandomCropFlip
from ..modules import SmallCNN, resnet32
from ._base import BaseLongTailClassifier

__all__ = ["LongTailImageClassifier"]

#: ``architecture="auto"`` picks ResNet-32 for images at least this large ...
_RESNET_MIN_SIDE = 32
#: ... when there are at least this many training images; the CNN otherwise.
_RESNET_MIN_IMAGES = 10_000
#: ``horizontal_flip="auto"`` flips colour images at least this large.
_FLIP_MIN_SIDE = 32
#: ``augment="auto"`` and ``mixup="auto"`` act on images at least this large;
#: smaller inputs (such as tabular rows seen as 1 x d images) are left alone.
_AUGMENT_MIN_SIDE = 8


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
    pad-and-random-crop and horizontal flips, as in the papers, and mixed with
    CMO (tail objects pasted onto head images) for images of at least 8 x 8.

    Parameters
    ----------
    loss : str or type, default="logit_adjusted"
        Training objective; see :class:`LongTailClassifier`.
    reweight_schedule : {"reweight", "resample", "drw", "drs"} or None, default=None
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
    architecture : {"auto", "resnet32", "cnn"}, default="auto"
        ``"resnet32"``: 3 stages of 5 basic blocks with 16/32/64 channels and
        option-A shortcuts (He et al.; the papers' CIFAR network). ``"cnn"``: a
        small, fast CNN for small images (:class:`~sklearn_lt.modules.SmallCNN`).
        ``"auto"`` takes ResNet-32 for images of at least 32 x 32 pixels with
        at least 10,000 training images (CIFAR-sized problems, where the papers
        use it), and the CNN otherwise: on small images or few examples it is
        as accurate or better and several times faster. LDAM gets a cosine
        head in both.
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
    horizontal_flip : bool or "auto", default="auto"
        Random left-right flips. ``"auto"`` flips colour (3-channel) images of
        at least 32 x 32 pixels, natural photographs as in CIFAR, and never
        grayscale or small images, where mirroring can change the class (digits,
        letters, symbols). Set ``True`` for mirror-invariant grayscale data.
    mixed_precision : bool, default=False
        bfloat16 autocast for the training forward pass on CUDA.
    channels_last : bool, default=True
        Channels-last memory layout on CUDA (faster convolutions).
    max_epochs : int or "auto", default="auto"
        Training epochs. ``"auto"`` trains about 1,000 optimizer steps, at
        least 20 and at most 200 epochs
        (:func:`~sklearn_lt.schedules.auto_epochs`); an integer is exactly that
        many epochs (the papers train 200).
    batch_size : int, default=128
        Mini-batch size.
    optimizer : {"sgd", "sam", "adam", "adamw"}, default="sgd"
        Optimizer; ``"sam"`` is sharpness-aware minimization on top of SGD with
        momentum (see :class:`LongTailClassifier`; it doubles the step time).
    lr : float, default=0.1
        Base learning rate (the papers' value).
    momentum : float, default=0.9
        SGD momentum.
    weight_decay : float, default=2e-4
        L2 penalty.
    max_grad_norm : float or None, default=None
        Bound on the total L2 norm of each step's gradients; see
        :class:`LongTailClassifier`, whose default is 10. Pixels are bounded,
        so no image lies dozens of standard deviations from the others (the
        cause of the runaway steps the bound stops on tabular data), and no
        image run of the benchmarks diverged. With a bound of 10 the
        logit-adjusted default never reached it on digits-LT, while LDAM
        (scale 30) did on 1.2% of its steps; LDAM and LDAM-DRW then scored
        +3.8 and +2.2 points on digits-LT ρ=100 but -1.8 and -2.1 on
        Fashion-MNIST-LT ρ=100 (one seed each), and LDAM-DRW lost its lead
        over LDAM on digits.
    sam_rho : float, default=0.05
        Radius of SAM's ascent step; see :class:`LongTailClassifier`
        (Rangwani et al. use 0.5 with CE-DRW and 0.8 with LDAM-DRW on
        CIFAR-10-LT).
    sam_tail_only : bool, default=False
        ImbSAM: SAM's ascent from the loss of the tail classes (fewer than 20
        training examples) only, with that loss doubled; needs
        ``optimizer="sam"``. See :class:`LongTailClassifier`.
    sample_attention : float or None, default=None
        Temperature of ABSGD's attentional weighting of the examples of each
        batch; see :class:`LongTailClassifier`. ``None``: off.
    mixup : {"auto", "mixup", "cutmix", "cmo"} or None, default="auto"
        Mixing augmentation of the training batches, on the training device,
        with one ``lam ~ Beta(mixup_alpha, mixup_alpha)`` per batch and the
        loss ``lam * L(out, y_a) + (1 - lam) * L(out, y_b)`` (each term with
        its own hard targets and weights; see :class:`LongTailClassifier`).
        ``"mixup"``: the images are averaged with the batch in a random
        order. ``"cutmix"`` (Yun et al., 2019): a box of sides
        ``sqrt(1 - lam)`` times the image's, at a uniform centre and clipped,
        is pasted from the batch in a random order; ``lam`` becomes one minus
        the box's share of the pixels. ``"cmo"`` (Park et al., 2022): as
        CutMix, but the pasted images come from a second batch drawn with
        probability proportional to ``1 / n_class`` (class-balanced), so tail
        objects are pasted on head backgrounds; only for half of the batches,
        and not in the first and last ``ceil(0.02 * max_epochs)`` epochs (the
        paper's 4 of 200). Each source batch is cropped and flipped first,
        then mixed, as in the papers' data pipelines (so CutMix's ``lam``
        is the pasted box's exact share of the image). Validation and
        prediction are never mixed. Cost: CMO indexes a second batch; none of
        them adds forward passes. ``"auto"``: CMO for images of at least
        8 x 8 pixels (the rule of ``augment="auto"``), ``None`` for smaller
        inputs. On the image sets of the accuracy benchmark, CMO raised the
        default loss's balanced accuracy on 4 of 5 (+4.1 points on digits-LT
        ρ=100, +1.6 on Fashion-MNIST-LT ρ=100, -0.4 on its step ρ=10) and
        let the deferred re-weighting of ``reweight_schedule="drw"`` act on
        small image sets, which a network otherwise fits to a zero training
        loss before the deferred phase; it added no measurable fit time.
        ``None`` trains on the cropped (and flipped) images only.
    mixup_alpha : float, default=1.0
        Both parameters of the Beta distribution of the mixing weight.
    lr_schedule : {"cosine", "step", "constant"}, default="cosine"
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
    prediction_prior : {"train", "balanced"}, array-like or None, default=None
        The class prior that ``predict_proba`` and ``predict`` target;
        ``None`` keeps the raw outputs (uniform prior for the default loss).
        See :class:`LongTailClassifier` for the prior each loss's raw outputs
        correspond to.
    classifier_retraining : {"crt", "lws", "marc"} or None, default=None
        A second stage that re-trains the classifier on the frozen network:
        cRT, LWS or MARC; see :class:`LongTailClassifier`. The features are
        computed once, in evaluation mode (batch normalization with its
        running statistics, no augmentation). ``None``: a single stage.
    retraining_epochs : int or "auto", default="auto"
        Epochs of the second stage; ``"auto"``: the paper's (cRT 10, LWS 5,
        MARC 80), or up to 200 to take at least 1,000 steps.
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
        Continue training on the next ``fit`` (a second stage is redone), as
        in :class:`LongTailClassifier`: the optimizer state carries on, with
        the current ``lr``, ``momentum``, ``weight_decay`` and ``sam_rho``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    class_counts_ : ndarray of shape (n_classes,)
        Examples of each class in the ``y`` of the last fit.
    image_shape_ : tuple of int
        ``(C, H, W)`` of the training images.
    mixup_ : {"mixup", "cutmix", "cmo"} or None
        The mixing of the training batches, with ``mixup="auto"`` resolved.
    n_features_in_ : int
        ``C * H * W``.
    net_ : skorch.NeuralNet
        The trained skorch net.
    history_ : skorch.History
        One row per epoch.
    device_ : torch.device
        Device used for training.
    retrained_head_ : torch.nn.Module
        The second-stage head (with ``classifier_retraining`` only).
    retraining_epochs_ : int
        Epochs of the second stage (with ``classifier_retraining`` only).
    retraining_history_ : skorch.History
        One row per second-stage epoch (with ``classifier_retraining`` only).

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

    # A convolutional step costs 10-50 MLP steps; on Fashion-MNIST-LT (1,236
    # images), 2,000 steps gained 0.2 points over 1,000 for twice the time
    # (docs/user_guide/schedules.rst).
    _auto_steps = 1000

    _parameter_constraints: dict = {
        **BaseLongTailClassifier._parameter_constraints,
        "architecture": [StrOptions({"auto", "resnet32", "cnn"})],
        "image_shape": [tuple, list, None],
        "augment": ["boolean", StrOptions({"auto"})],
        "crop_padding": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "horizontal_flip": ["boolean", StrOptions({"auto"})],
        "mixup": [StrOptions({*MIXING_METHODS, "auto"}), None],
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
        architecture="auto",
        image_shape=None,
        module=None,
        module_params=None,
        augment="auto",
        crop_padding="auto",
        horizontal_flip="auto",
        mixed_precision=False,
        channels_last=True,
        max_epochs="auto",
        batch_size=128,
        optimizer="sgd",
        lr=0.1,
        momentum=0.9,
        weight_decay=2e-4,
        max_grad_norm=None,
        sam_rho=0.05,
        sam_tail_only=False,
        sample_attention=None,
        mixup="auto",
        mixup_alpha=1.0,
        lr_schedule="cosine",
        warmup_epochs=5,
        validation_fraction=None,
        n_iter_no_change=10,
        posthoc_tau=0.0,
        tau_norm=0.0,
        prediction_prior=None,
        classifier_retraining=None,
        retraining_epochs="auto",
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
            max_grad_norm=max_grad_norm,
            sam_rho=sam_rho,
            sam_tail_only=sam_tail_only,
            sample_attention=sample_attention,
            mixup=mixup,
            mixup_alpha=mixup_alpha,
            lr_schedule=lr_schedule,
            warmup_epochs=warmup_epochs,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            posthoc_tau=posthoc_tau,
            tau_norm=tau_norm,
            prediction_prior=prediction_prior,
            classifier_retraining=classifier_retraining,
            retraining_epochs=retraining_epochs,
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
            flat = validate_data(self, X, reset=reset, dtype=np.float32, order="C")
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
                self,
                X.reshape(X.shape[0], -1),
                reset=reset,
                dtype=np.float32,
                order="C",
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

    def _training_augmentation(self):
        _, height, width = self.image_shape_
        augment = (
            self._large_enough_to_augment() if self.augment == "auto" else self.augment
        )
        if not augment:
            return None
        padding = (
            max(1, round(min(height, width) / 8))
            if self.crop_padding == "auto"
            else self.crop_padding
        )
        flip = self.horizontal_flip
        if flip == "auto":
            channels, height, width = self.image_shape_
            flip = channels == 3 and min(height, width) >= _FLIP_MIN_SIDE
        return RandomCropFlip(padding, flip)

    def _mixing_method(self):
        if self.mixup != "auto":
            return self.mixup
        return "cmo" if self._large_enough_to_augment() else None

    def _large_enough_to_augment(self):
        # The rule of augment="auto" and mixup="auto": real images, not
        # tabular rows seen as 1 x d images.
        _, height, width = self.image_shape_
        return min(height, width) >= _AUGMENT_MIN_SIDE

    def _prediction_batch_rows(self):
        # Convolutional activations are tens of channels per pixel: batches of
        # about 2**17 pixels (128 images of 32 x 32) keep prediction memory in
        # the tens of MiB.
        _, height, width = self.image_shape_
        return int(min(512, max(16, 2**17 // (height * width))))

    def _network_options(self):
        return {
            "mixed_precision": self.mixed_precision,
            "channels_last": self.channels_last,
        }

    def _build_network(self, n_features, n_classes, cosine_head):
        in_channels = self.image_shape_[0]
        if self._architecture() == "resnet32":
            return resnet32(n_classes, in_channels, cosine_head)
        return SmallCNN(n_classes, in_channels, cosine_head=cosine_head)

    def _architecture(self):
        if self.architecture != "auto":
            return self.architecture
        _, height, width = self.image_shape_
        large = min(height, width) >= _RESNET_MIN_SIDE
        many = self.class_counts_.sum() >= _RESNET_MIN_IMAGES
        return "resnet32" if large and many else "cnn"
