r"""Mixing augmentation of training batches: Mixup, CutMix and CMO.

Private machinery of the classifiers' ``mixup`` parameter. A mixed batch is
built on the training device, a whole batch at a time, from one draw of
:math:`\lambda \sim \mathrm{Beta}(\alpha, \alpha)` per batch:

* ``"mixup"`` (Zhang et al. 2018; MiSLAS stage 1):
  :math:`x = \lambda x_i + (1 - \lambda) x_{\pi(i)}` with :math:`\pi` a random
  permutation of the batch.
* ``"cutmix"`` (Yun et al. 2019): a box of sides
  :math:`\sqrt{1 - \lambda}\,H` and :math:`\sqrt{1 - \lambda}\,W` (rounded to
  whole pixels) at a uniform centre, clipped to the image, is pasted from
  :math:`x_{\pi(i)}` into :math:`x_i`; :math:`\lambda` becomes one minus the
  pasted area over the image area.
* ``"cmo"`` (Park et al. 2022, "The Majority Can Help the Minority"): as
  CutMix, but the pasted images come from a second batch drawn with
  per-example weight :math:`1 / n_{y}` (class-balanced), and only with
  probability 1/2 per batch, in the epochs of :func:`cmo_epochs`.

The loss of a mixed batch is :math:`\lambda L(\text{out}, y_a) + (1 - \lambda)
L(\text{out}, y_b)` (:func:`mixed_loss`): each term evaluates the training loss
with its own hard targets and per-example weights, so margins (LDAM), priors
(logit adjustment, balanced softmax, VS), class weights, ``sample_weight`` and
ABSGD's attention all apply within their own term.
"""

import math

import numpy as np
import torch

__all__ = [
    "MIXING_METHODS",
    "BatchMixing",
    "MixedTargets",
    "check_mixing_input",
    "cmo_epochs",
    "cutmix_box",
    "mixed_loss",
    "paste_box",
    "take_targets",
]

#: The values of the classifiers' ``mixup`` parameter (besides ``None``).
MIXING_METHODS = ("mixup", "cutmix", "cmo")
_IMAGE_METHODS = ("cutmix", "cmo")
#: CMO mixes a batch with this probability (Park et al.: ``mixup_prob=0.5``).
CMO_PROBABILITY = 0.5
#: CMO is off in this fraction of the epochs at each end of training (the
#: official code: 4 of 200 epochs at the start, 3 or 4 at the end).
CMO_OFF_FRACTION = 0.02


def check_mixing_input(method, ndim, sparse=False):
    """Raise a ValueError when ``method`` cannot mix inputs of ``ndim`` dimensions.

    Parameters
    ----------
    method : {"mixup", "cutmix", "cmo"} or None
        The mixing method.
    ndim : int
        Dimensions of the network input (2 for tables, 4 for images).
    sparse : bool, default=False
        Whether the input is a scipy sparse matrix (not mixed).

    Raises
    ------
    ValueError
        For CutMix or CMO on anything but ``(N, C, H, W)`` images, and for
        any mixing of sparse input.
    """
    if method is not None and sparse:
        raise ValueError(
            f"mixup={method!r} cannot mix sparse input: a blend of two sparse "
            "rows is much denser than either. Use mixup=None with sparse X, or "
            "densify X (X.toarray()) if it fits in memory."
        )
    if method in _IMAGE_METHODS and ndim != 4:
        raise ValueError(
            f"mixup={method!r} pastes image patches and needs (N, C, H, W) "
            f"images; the network input has {ndim} dimensions. Use "
            "LongTailImageClassifier for images, or mixup='mixup' (which mixes "
            "any input)."
        )


def cmo_epochs(n_epochs):
    """The 0-based epochs ``[first, stop)`` in which CMO mixes batches.

    CMO is off in the first and the last ``ceil(0.02 * n_epochs)`` epochs (at
    least one at each end): the official code mixes in epochs 4 to 196 of 200,
    so that the network starts, and ends, on the real images.

    Parameters
    ----------
    n_epochs : int
        Epochs of the fit.

    Returns
    -------
    first, stop : int
        CMO mixes in epochs ``first <= epoch < stop`` (none when ``stop <= first``).

    Examples
    --------
    >>> from sklearn_lt._mixing import cmo_epochs
    >>> cmo_epochs(200), cmo_epochs(30), cmo_epochs(2)
    ((4, 196), (1, 29), (1, 1))
    """
    off = max(1, math.ceil(CMO_OFF_FRACTION * n_epochs - 1e-9))
    return off, max(off, n_epochs - off)


def cutmix_box(height, width, lam, random_state):
    r"""A CutMix box for a mixing weight ``lam``, and the weight it really gives.

    The box has sides ``round(sqrt(1 - lam) * height)`` and
    ``round(sqrt(1 - lam) * width)``, a centre drawn uniformly among the pixels,
    and is clipped to the image. The returned weight of the background is
    ``1 - box area / image area``, exact for the clipped, whole-pixel box.

    Parameters
    ----------
    height, width : int
        Image size.
    lam : float
        Drawn weight of the background, in ``[0, 1]``.
    random_state : numpy.random.RandomState
        Draws the centre.

    Returns
    -------
    box : tuple of int (top, bottom, left, right)
        Rows ``top:bottom`` and columns ``left:right`` are pasted.
    lam : float
        The background's share of the pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lt._mixing import cutmix_box
    >>> box, lam = cutmix_box(8, 8, 0.75, np.random.RandomState(0))
    >>> box, lam  # a 4 x 4 box, clipped at the right edge to 4 x 3
    ((2, 6, 5, 8), 0.8125)
    """
    ratio = math.sqrt(max(0.0, 1.0 - float(lam)))
    box_height, box_width = round(ratio * height), round(ratio * width)
    centre_row = int(random_state.randint(height))
    centre_col = int(random_state.randint(width))
    top = min(max(centre_row - box_height // 2, 0), height)
    bottom = min(max(centre_row - box_height // 2 + box_height, 0), height)
    left = min(max(centre_col - box_width // 2, 0), width)
    right = min(max(centre_col - box_width // 2 + box_width, 0), width)
    area = (bottom - top) * (right - left)
    return (top, bottom, left, right), 1.0 - area / (height * width)


def paste_box(background, foreground, box):
    """Images of ``background`` with the ``box`` region of ``foreground``.

    Parameters
    ----------
    background, foreground : Tensor of shape (N, C, H, W)
    box : tuple of int (top, bottom, left, right)

    Returns
    -------
    mixed : Tensor of shape (N, C, H, W)
        A new tensor; the inputs are not changed.
    """
    top, bottom, left, right = box
    mixed = background.clone()
    mixed[:, :, top:bottom, left:right] = foreground[:, :, top:bottom, left:right]
    return mixed


def take_targets(target, index):
    """Targets (a class tensor or a ``(classes, sample_weight)`` pair) at ``index``."""
    if isinstance(target, tuple | list):
        return tuple(part[index] for part in target)
    return target[index]


class MixedTargets:
    """Targets of a mixed batch: two sets of hard targets and a weight.

    The loss of the batch is ``lam * L(first) + (1 - lam) * L(second)``
    (:func:`mixed_loss`).

    Parameters
    ----------
    first, second : Tensor or tuple of Tensor
        Class indices, or ``(classes, sample_weight)`` pairs, of the two mixed
        batches (background and foreground).
    lam : float
        Weight of ``first``.
    """

    __slots__ = ("first", "lam", "second")

    def __init__(self, first, second, lam):
        self.first = first
        self.second = second
        self.lam = float(lam)

    def __repr__(self):
        return f"MixedTargets(lam={self.lam:.4f})"


def mixed_loss(loss, outputs, targets):
    """``lam * loss(outputs, first) + (1 - lam) * loss(outputs, second)``.

    Parameters
    ----------
    loss : callable
        ``loss(outputs, target)`` returns the scalar loss of hard targets
        (with their per-example weights, when ``target`` is a pair).
    outputs : Tensor of shape (n_samples, n_classes)
    targets : MixedTargets

    Returns
    -------
    loss : Tensor (scalar)
    """
    lam = targets.lam
    return lam * loss(outputs, targets.first) + (1.0 - lam) * loss(
        outputs, targets.second
    )


class BatchMixing:
    """Mixes the training batches of a :class:`~sklearn_lt._training.LongTailNet`.

    The net holds it as its ``mixing``: it calls :meth:`start` with the
    training dataset at the start of training (CMO draws its class-balanced
    batches from it), :meth:`next_epoch` at the start of each epoch, and
    :meth:`mix` on each training batch, before the forward pass (once per
    step with SAM, whose two passes see the same mixed batch). Validation and
    prediction batches are never mixed.

    Parameters
    ----------
    method : {"mixup", "cutmix", "cmo"} or None, default=None
        ``None`` leaves batches unchanged.
    alpha : float, default=1.0
        Both parameters of the Beta distribution of the mixing weight.
    n_epochs : int, default=1
        Epochs of the fit, for CMO's active epochs (:func:`cmo_epochs`).
    seed : int, default=0
        Seeds the scalar draws (weights, box centres, CMO's coin, on the CPU)
        and the permutations and class-balanced draws (on the data's device).

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt._device_data import DeviceDataset
    >>> from sklearn_lt._mixing import BatchMixing
    >>> data = DeviceDataset(torch.rand(6, 1, 4, 4), torch.tensor([0, 0, 0, 0, 1, 1]))
    >>> mixing = BatchMixing("cutmix", seed=0)
    >>> mixing.start(data)
    >>> X, targets = mixing.mix(data.batch(torch.arange(6)))
    >>> X.shape, 0.0 <= targets.lam <= 1.0
    (torch.Size([6, 1, 4, 4]), True)
    """

    def __init__(self, method=None, alpha=1.0, n_epochs=1, seed=0):
        self.method = method
        self.alpha = alpha
        self.n_epochs = n_epochs
        self.seed = seed
        self.release()

    @classmethod
    def for_estimator(cls, estimator, sampler):
        """The mixing of a fitted classifier's ``mixup_`` and ``mixup_alpha``.

        Seeded from the seed of the classifier's training ``sampler`` (a
        :class:`~sklearn_lt._device_data.ClassWeightedSampler`), which comes
        from ``random_state``.
        """
        return cls(
            estimator.mixup_,
            estimator.mixup_alpha,
            estimator.max_epochs_,
            sampler.generator.initial_seed(),
        )

    def start(self, data):
        """Start a fit on ``data`` (a :class:`~sklearn_lt._device_data.DeviceDataset`).

        Resets the epoch count and the random streams.
        """
        self.release()
        if self.method is None:
            return
        check_mixing_input(self.method, data.X.ndim)
        self._data = data
        self._random_state = np.random.RandomState(int(self.seed) % 2**32)
        targets = data.y
        self._generator = torch.Generator(device=targets.device)
        self._generator.manual_seed(int(self._random_state.randint(2**31 - 1)))
        if self.method == "cmo":
            counts = torch.bincount(targets).to(torch.float64)
            self._balanced_weights = (1.0 / counts)[targets]

    def next_epoch(self):
        """Count an epoch (CMO mixes in the epochs of :func:`cmo_epochs`)."""
        self._epoch += 1

    def release(self):
        """Drop the training data and random streams, e.g. before pickling."""
        self._data = None
        self._balanced_weights = None
        self._random_state = None
        self._generator = None
        self._epoch = -1

    def balanced_indices(self, n_samples):
        """Indices of ``n_samples`` examples drawn with probability ~ 1 / n_class.

        Needs a fit started with ``method="cmo"``.
        """
        return torch.multinomial(
            self._balanced_weights,
            n_samples,
            replacement=True,
            generator=self._generator,
        )

    def mix(self, batch, augment=None):
        """The batch ``(X, target)`` mixed, ``(X_mixed, MixedTargets)``, or as is.

        Unchanged when the method is ``None``, outside a started fit, and for
        CMO outside its epochs or when its coin says so. ``augment`` (a
        callable on a batch of inputs, or ``None``) is applied to each source
        batch before they are mixed, only when they are: a batch returned as
        is has not been augmented.
        """
        if self.method is None or self._data is None:
            return batch
        X, target = batch
        if self.method == "cmo":
            first, stop = cmo_epochs(self.n_epochs)
            coin = self._random_state.random_sample()
            if not first <= self._epoch < stop or coin >= CMO_PROBABILITY:
                return batch
            other_X, other_target = self._data.batch(self.balanced_indices(X.shape[0]))
            if augment is not None:
                X, other_X = augment(X), augment(other_X)
        else:
            if augment is not None:
                X = augment(X)
            order = torch.randperm(
                X.shape[0], device=X.device, generator=self._generator
            )
            other_X, other_target = X[order], take_targets(target, order)
        lam = float(self._random_state.beta(self.alpha, self.alpha))
        if self.method == "mixup":
            mixed = torch.lerp(other_X, X, lam)
        else:
            box, lam = cutmix_box(X.shape[2], X.shape[3], lam, self._random_state)
            mixed = paste_box(X, other_X, box)
        return mixed, MixedTargets(target, other_target, lam)
