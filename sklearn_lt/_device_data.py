"""Training data held on the device: tensors, batches, sampling order, holdout.

Private machinery of the classifiers' ``fit``. skorch's default path wraps
arrays in a ``Dataset`` and a per-example ``DataLoader`` that collates every
batch in Python, which dominates the run time of small networks. Here the whole
training set is moved to the device once and a batch is one index-select:
:class:`TensorBatchIterator` slices :class:`DeviceDataset` tensors, and
:class:`ClassWeightedSampler` decides the order (a permutation, or a
class-balanced draw with :func:`torch.multinomial` computed on the device).
:func:`stratified_holdout` splits off the validation rows, and
:func:`resolve_device` and :func:`as_tensor` put data on the device.
"""

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import Dataset

from ._sparse import SparseRows

__all__ = [
    "ClassWeightedSampler",
    "DeviceDataset",
    "TensorBatchIterator",
    "as_tensor",
    "resolve_device",
    "stratified_holdout",
]


def resolve_device(device):
    """The torch device of a ``device`` parameter: ``"auto"`` is CUDA when present.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"``, or anything :class:`torch.device` accepts.

    Returns
    -------
    device : torch.device

    Raises
    ------
    ValueError
        For a malformed device, or CUDA when it is not available.
    """
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


def as_tensor(array, device):
    """``torch.as_tensor`` without its warning for read-only arrays.

    Read-only inputs are common (joblib memmaps in parallel searches); the
    tensors made from them are only read.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="The given NumPy array is not writable"
        )
        return torch.as_tensor(array, device=device)


def _take(data, index):
    """``data[index]``; an index tensor gathers rows with ``index_select``.

    ``torch.index_select`` gathers the rows of a tensor without the Python
    dispatch of advanced indexing (3 against 13 microseconds for a batch of
    128 rows on a CPU): a measurable share of a small network's step.
    """
    if (
        torch.is_tensor(data)
        and torch.is_tensor(index)
        and index.ndim == 1
        and index.dtype in (torch.int64, torch.int32)
    ):
        return torch.index_select(data, 0, index)
    return data[index]


class DeviceDataset(Dataset):
    """Features, integer targets and optional sample weights held as tensors.

    Parameters
    ----------
    X : Tensor of shape (n_rows, ...) or SparseRows
        Inputs, already on the training device; sparse inputs as
        :class:`~sklearn_lt._sparse.SparseRows`, whose batches are sparse CSR
        tensors.
    y : Tensor of shape (n_samples,), dtype int64
        Encoded class indices on the same device, one per example.
    sample_weight : Tensor of shape (n_samples,), default=None
        Optional per-example weights on the same device.
    rows : Tensor of shape (n_samples,), default=None
        Rows of ``X`` that make up this dataset (a view without copying ``X``);
        ``None`` uses every row.

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt._device_data import DeviceDataset
    >>> data = DeviceDataset(torch.zeros(4, 2), torch.tensor([0, 1, 1, 0]))
    >>> len(data), len(data.subset(torch.tensor([0, 2])))
    (4, 2)
    """

    def __init__(self, X, y, sample_weight=None, rows=None):
        n_rows = X.shape[0] if rows is None else rows.shape[0]
        if n_rows != y.shape[0]:
            raise ValueError(f"X has {n_rows} rows but y has {y.shape[0]} entries.")
        if sample_weight is not None and sample_weight.shape != y.shape:
            raise ValueError(
                f"sample_weight must have shape {tuple(y.shape)}; got "
                f"{tuple(sample_weight.shape)}."
            )
        self.X = X
        self.y = y
        self.sample_weight = sample_weight
        self.rows = rows

    def __len__(self):
        return self.y.shape[0]

    def __getitem__(self, index):
        return self.batch(index)

    def batch(self, index):
        """Return ``(X[index], target)`` for an index tensor or slice.

        ``target`` is ``y[index]``, or the pair ``(y[index], sample_weight[index])``
        when the dataset has sample weights.
        """
        target = _take(self.y, index)
        if self.sample_weight is not None:
            target = (target, _take(self.sample_weight, index))
        rows = index if self.rows is None else _take(self.rows, index)
        return _take(self.X, rows), target

    def subset(self, index):
        """The examples ``index`` (an index tensor), sharing ``X`` without a copy."""
        rows = index if self.rows is None else self.rows[index]
        weight = None if self.sample_weight is None else self.sample_weight[index]
        return DeviceDataset(self.X, self.y[index], weight, rows=rows)

    def split(self, train_index, valid_index):
        """Training and validation subsets from row-index arrays.

        ``train_index=None`` keeps every example for training, without a
        validation set: ``(self, None)``.
        """
        if train_index is None:
            return self, None
        device = self.y.device
        return (
            self.subset(torch.as_tensor(train_index, device=device)),
            self.subset(torch.as_tensor(valid_index, device=device)),
        )

    @classmethod
    def from_arrays(cls, X, y, sample_weight=None, *, device):
        """Move arrays to ``device`` once: inputs, int64 targets, weights.

        A scipy sparse ``X`` stays sparse (:class:`~sklearn_lt._sparse.SparseRows`).
        """
        return cls(
            SparseRows.from_scipy(X, device)
            if sp.issparse(X)
            else as_tensor(X, device),
            torch.as_tensor(y, dtype=torch.int64, device=device),
            None
            if sample_weight is None
            else torch.as_tensor(sample_weight, device=device),
        )


class ClassWeightedSampler:
    """Order in which training examples are visited in one epoch.

    Without class weights an epoch is a random permutation (each example once).
    With class weights ``w``, an epoch draws ``n_samples`` examples with
    replacement, example ``i`` with probability proportional to ``w[y_i]``: with
    class-balanced weights every class is drawn about equally often (class-balanced
    re-sampling, "CB RS"). The weights can be changed between epochs with
    :meth:`set_class_weights`, which is how deferred re-sampling (DRS) starts.

    Parameters
    ----------
    targets : Tensor of shape (n_samples,), dtype int64
        Encoded class of each training example, on the training device.
    seed : int, default=0
        Seed of the sampler's own :class:`torch.Generator` (on the targets'
        device); global random state is never used.

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt._device_data import ClassWeightedSampler
    >>> sampler = ClassWeightedSampler(torch.tensor([0, 0, 0, 1]), seed=0)
    >>> sorted(sampler.epoch_indices().tolist())
    [0, 1, 2, 3]
    >>> sampler.set_class_weights(torch.tensor([0.0, 1.0]))
    >>> sampler.epoch_indices().tolist()
    [3, 3, 3, 3]
    """

    def __init__(self, targets, seed=0):
        self.reset(targets, seed)

    def reset(self, targets, seed=0):
        """Draw from new ``targets`` with a new seed, without class weights.

        The state of a new sampler: a classifier that continues training
        (``warm_start``) points the sampler its net and callbacks share to the
        new training targets.
        """
        self.targets = targets
        self.class_weights = None
        self.generator = torch.Generator(device=targets.device)
        self.generator.manual_seed(int(seed))

    def release(self):
        """Drop the targets (kept: the class weights), e.g. before pickling."""
        self.targets = self.targets.new_empty(0)

    def set_class_weights(self, class_weights):
        """Sample proportionally to ``class_weights[y]``; ``None`` for a permutation."""
        if class_weights is not None:
            class_weights = torch.as_tensor(
                class_weights, dtype=torch.float32, device=self.targets.device
            )
            n_classes = int(self.targets.max()) + 1 if self.targets.numel() else 0
            if class_weights.ndim != 1 or class_weights.numel() < n_classes:
                raise ValueError(
                    f"class_weights must have one entry per class ({n_classes}); "
                    f"got shape {tuple(class_weights.shape)}."
                )
            if not bool((class_weights[self.targets] > 0).any()):
                raise ValueError("class_weights give every training example weight 0.")
        self.class_weights = class_weights

    def epoch_indices(self):
        """Indices of one epoch, a tensor of length ``n_samples`` on the device."""
        n_samples = self.targets.shape[0]
        if self.class_weights is None:
            return torch.randperm(
                n_samples, generator=self.generator, device=self.targets.device
            )
        probabilities = self.class_weights[self.targets]
        return torch.multinomial(
            probabilities, n_samples, replacement=True, generator=self.generator
        )


class TensorBatchIterator:
    """skorch iterator over a :class:`DeviceDataset`, one index-select per batch.

    Used as skorch's ``iterator_train`` and ``iterator_valid``: skorch calls it
    with the dataset and ``batch_size`` (plus ``iterator_train__*`` parameters)
    at the start of every epoch.

    Parameters
    ----------
    dataset : DeviceDataset
        The tensors to iterate over.
    batch_size : int
        Examples per batch.
    sampler : ClassWeightedSampler, default=None
        Decides the visiting order; ``None`` visits the rows in order with
        contiguous slices (validation and prediction).
    shard : tuple of int (index, count), default=(0, 1)
        For data-parallel training over ``count`` processes: this process takes
        every ``count``-th batch, starting at ``index``. The processes' samplers
        share a seed, so together they visit each batch of an epoch once; the
        first batches are repeated so that every process takes the same number
        of steps.

    Notes
    -----
    A training epoch never ends with a batch of a single example (it would break
    batch normalization): such a lone last example is folded into the previous
    batch.

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt._device_data import DeviceDataset, TensorBatchIterator
    >>> data = DeviceDataset(torch.arange(10.0).reshape(5, 2), torch.arange(5))
    >>> [len(X) for X, y in TensorBatchIterator(data, batch_size=2)]
    [2, 2, 1]
    """

    def __init__(self, dataset, batch_size, sampler=None, shard=(0, 1)):
        if not isinstance(dataset, DeviceDataset):
            raise TypeError(
                f"TensorBatchIterator needs a DeviceDataset; got {type(dataset)}."
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.sampler = sampler
        index, count = shard
        if not 0 <= index < count:
            raise ValueError(
                f"shard must be (index, count) with 0 <= index < count; got {shard}."
            )
        self.shard = (int(index), int(count))

    def _bounds(self):
        n_samples = len(self.dataset)
        starts = list(range(0, n_samples, self.batch_size))
        if self.sampler is not None and len(starts) > 1 and n_samples - starts[-1] == 1:
            starts.pop()
        ends = [*starts[1:], n_samples]
        bounds = list(zip(starts, ends, strict=True))
        index, count = self.shard
        if count > 1:
            # Every process must take the same number of steps (DDP synchronizes
            # each one): repeat the epoch's first batches up to a multiple of
            # count, as torch's DistributedSampler pads its indices.
            bounds += bounds[: -len(bounds) % count]
        return bounds[index::count]

    def __len__(self):
        return len(self._bounds())

    def __iter__(self):
        if self.sampler is None:
            for start, end in self._bounds():
                yield self.dataset.batch(slice(start, end))
            return
        order = self.sampler.epoch_indices()
        for start, end in self._bounds():
            yield self.dataset.batch(order[start:end])


def stratified_holdout(y, fraction, random_state):
    """Indices of a stratified train/validation split that keeps rare classes.

    Each class with ``n >= 2`` examples sends ``round(fraction * n)`` of them to
    validation, at least one and at most ``n - 1``; a class with a single example
    stays in training (scikit-learn's stratified splitters refuse such classes).

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Encoded class labels.
    fraction : float
        Fraction in ``(0, 1)`` of each class held out.
    random_state : numpy.random.RandomState
        Source of randomness.

    Returns
    -------
    train_index, valid_index : ndarray of int
        Sorted row indices.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lt._device_data import stratified_holdout
    >>> y = np.array([0] * 8 + [1] * 2 + [2])
    >>> train, valid = stratified_holdout(y, 0.25, np.random.RandomState(0))
    >>> np.bincount(y[valid], minlength=3).tolist()
    [2, 1, 0]
    """
    valid_parts = []
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        if rows.size < 2:
            continue
        n_valid = min(max(round(fraction * rows.size), 1), rows.size - 1)
        valid_parts.append(random_state.choice(rows, size=n_valid, replace=False))
    valid_index = (
        np.sort(np.concatenate(valid_parts)) if valid_parts else np.array([], int)
    )
    train_mask = np.ones(y.shape[0], dtype=bool)
    train_mask[valid_index] = False
    return np.flatnonzero(train_mask), valid_index
