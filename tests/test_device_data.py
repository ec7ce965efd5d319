"""Tests of sklearn_lt._device_data."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_lt._device_data import (
    ClassWeightedSampler,
    DeviceDataset,
    TensorBatchIterator,
    stratified_holdout,
)
from sklearn_lt.weights import inverse_frequency_weights


def long_tailed_targets(counts=(200, 50, 10, 3)):
    return torch.cat(
        [torch.full((n,), label, dtype=torch.long) for label, n in enumerate(counts)]
    )


def dataset(n_samples, with_weight=False):
    X = torch.arange(2 * n_samples, dtype=torch.float32).reshape(n_samples, 2)
    y = torch.arange(n_samples) % 3
    weight = torch.linspace(0.5, 2.0, n_samples) if with_weight else None
    return DeviceDataset(X, y, weight)


# --- DeviceDataset ------------------------------------------------------------


def test_device_dataset_without_weights():
    data = dataset(5)
    assert len(data) == 5
    X, y = data[torch.tensor([4, 0])]
    torch.testing.assert_close(X, torch.tensor([[8.0, 9.0], [0.0, 1.0]]))
    torch.testing.assert_close(y, torch.tensor([1, 0]))
    X, y = data[slice(1, 3)]
    assert X.shape == (2, 2) and torch.is_tensor(y)


def test_device_dataset_with_sample_weight_yields_pairs():
    data = dataset(6, with_weight=True)
    X, target = data.batch(torch.tensor([5, 1]))
    assert isinstance(target, tuple) and len(target) == 2
    y, w = target
    torch.testing.assert_close(X, data.X[[5, 1]])
    torch.testing.assert_close(y, data.y[[5, 1]])
    torch.testing.assert_close(w, data.sample_weight[[5, 1]])
    batches = list(TensorBatchIterator(data, batch_size=4))
    for X, (y, w) in batches:
        assert X.shape[0] == y.shape[0] == w.shape[0]
    torch.testing.assert_close(
        torch.cat([w for _, (_, w) in batches]), data.sample_weight
    )


def test_device_dataset_subset():
    data = dataset(6, with_weight=True)
    sub = data.subset(torch.tensor([0, 2, 5]))
    assert isinstance(sub, DeviceDataset) and len(sub) == 3
    assert sub.X is data.X  # a view: the features are not copied
    batch_X, _ = sub.batch(slice(0, 3))
    torch.testing.assert_close(batch_X, data.X[[0, 2, 5]])
    torch.testing.assert_close(sub.y, data.y[[0, 2, 5]])
    nested = sub.subset(torch.tensor([2, 0]))
    torch.testing.assert_close(nested.batch(slice(0, 2))[0], data.X[[5, 0]])
    torch.testing.assert_close(sub.sample_weight, data.sample_weight[[0, 2, 5]])
    assert dataset(4).subset(torch.tensor([1])).sample_weight is None


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_device_dataset_batches_equal_indexing(dtype):
    # Integer index tensors take index_select, masks and slices plain
    # indexing: every kind returns exactly the rows (a copy, no arithmetic).
    X = torch.arange(5 * 3 * 2 * 2.0).reshape(5, 3, 2, 2)  # image-shaped rows
    data = DeviceDataset(X, torch.arange(5), torch.linspace(0.5, 2.5, 5))
    rows = [3, 0, 4]
    index = torch.tensor(rows, dtype=torch.int64).to(dtype)
    if dtype is torch.bool:
        index = torch.zeros(5, dtype=torch.bool)
        index[rows] = True
        rows = sorted(rows)
    batch_X, (batch_y, batch_w) = data.batch(index)
    assert torch.equal(batch_X, X[rows])
    assert torch.equal(batch_y, torch.tensor(rows))
    assert torch.equal(batch_w, data.sample_weight[rows])
    nested = data.subset(torch.tensor([4, 2, 1]))
    assert torch.equal(nested.batch(torch.tensor([2, 0]))[0], X[[1, 4]])


def test_device_dataset_shape_errors():
    with pytest.raises(ValueError, match="rows"):
        DeviceDataset(torch.zeros(3, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="sample_weight"):
        DeviceDataset(
            torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), torch.ones(2)
        )


# --- TensorBatchIterator without sampler ---------------------------------------


@pytest.mark.parametrize(
    ("n_samples", "batch_size"), [(10, 3), (10, 5), (7, 10), (9, 1)]
)
def test_iterator_covers_rows_in_order(n_samples, batch_size):
    data = dataset(n_samples)
    iterator = TensorBatchIterator(data, batch_size=batch_size)
    batches = list(iterator)
    assert len(batches) == len(iterator) == -(-n_samples // batch_size)
    X = torch.cat([X for X, _ in batches])
    y = torch.cat([y for _, y in batches])
    torch.testing.assert_close(X, data.X)
    torch.testing.assert_close(y, data.y)
    assert all(len(X) == batch_size for X, _ in batches[:-1])
    # Without a sampler a lone last example is kept as its own batch.
    if n_samples % batch_size:
        assert len(batches[-1][0]) == n_samples % batch_size


def test_iterator_requires_device_dataset():
    with pytest.raises(TypeError, match="DeviceDataset"):
        TensorBatchIterator([(0, 0)], batch_size=1)


def test_iterator_is_reiterable():
    iterator = TensorBatchIterator(dataset(5), batch_size=2)
    first = [y.tolist() for _, y in iterator]
    assert first == [y.tolist() for _, y in iterator]


# --- ClassWeightedSampler -----------------------------------------------------


def test_permutation_epochs_without_class_weights():
    targets = long_tailed_targets()
    sampler = ClassWeightedSampler(targets, seed=3)
    data = DeviceDataset(torch.arange(len(targets)).float()[:, None], targets)
    orders = []
    for _ in range(3):
        batches = list(TensorBatchIterator(data, batch_size=32, sampler=sampler))
        rows = torch.cat([X[:, 0] for X, _ in batches]).long()
        assert sorted(rows.tolist()) == list(range(len(targets)))
        orders.append(rows.tolist())
    # Epochs are shuffled, and differently each time.
    assert orders[0] != list(range(len(targets)))
    assert orders[0] != orders[1]


def test_class_balanced_sampling_is_near_uniform():
    counts = (400, 100, 25, 5)
    targets = long_tailed_targets(counts)
    sampler = ClassWeightedSampler(targets, seed=0)
    sampler.set_class_weights(torch.as_tensor(inverse_frequency_weights(counts)))
    n_epochs = 20
    drawn = torch.cat([targets[sampler.epoch_indices()] for _ in range(n_epochs)])
    total = len(targets) * n_epochs  # 10600 draws
    assert len(drawn) == total
    frequencies = torch.bincount(drawn, minlength=4).double() / total
    # Each class has probability 1/4; the standard error is about 0.0042.
    assert torch.all((frequencies - 0.25).abs() < 0.02), frequencies
    # Without weights the class frequencies stay long-tailed.
    sampler.set_class_weights(None)
    plain = torch.bincount(targets[sampler.epoch_indices()], minlength=4)
    assert plain.tolist() == list(counts)


def test_sampling_follows_class_weights():
    targets = long_tailed_targets((100, 100, 100))
    sampler = ClassWeightedSampler(targets, seed=1)
    sampler.set_class_weights([3.0, 1.0, 0.0])
    drawn = torch.cat([targets[sampler.epoch_indices()] for _ in range(20)])
    frequencies = torch.bincount(drawn, minlength=3).double() / len(drawn)
    assert frequencies[2] == 0
    assert abs(frequencies[0].item() - 0.75) < 0.03


def test_sampler_weights_with_replacement_and_docstring_case():
    sampler = ClassWeightedSampler(torch.tensor([0, 0, 0, 1]), seed=0)
    sampler.set_class_weights(torch.tensor([0.0, 1.0]))
    assert sampler.epoch_indices().tolist() == [3, 3, 3, 3]
    with pytest.raises(ValueError, match="class_weights"):
        sampler.set_class_weights(torch.tensor([0.0, 0.0]))


def test_sampler_is_deterministic_with_seed():
    targets = long_tailed_targets()

    def epochs(seed, weights):
        sampler = ClassWeightedSampler(targets, seed=seed)
        sampler.set_class_weights(weights)
        return [sampler.epoch_indices().tolist() for _ in range(3)]

    weights = [1.0, 2.0, 5.0, 20.0]
    assert epochs(7, None) == epochs(7, None)
    assert epochs(7, weights) == epochs(7, weights)
    assert epochs(7, None) != epochs(8, None)
    assert epochs(7, weights) != epochs(8, weights)


def test_sampler_ignores_global_random_state():
    targets = long_tailed_targets()
    torch.manual_seed(0)
    first = ClassWeightedSampler(targets, seed=5).epoch_indices()
    torch.manual_seed(123)
    torch.rand(10)
    second = ClassWeightedSampler(targets, seed=5).epoch_indices()
    torch.testing.assert_close(first, second)


def test_training_batches_never_have_size_one():
    targets = long_tailed_targets((6, 3, 1))  # 10 examples
    data = DeviceDataset(torch.zeros(10, 2), targets)
    sampler = ClassWeightedSampler(targets, seed=0)
    for batch_size in (3, 9):  # 10 = 3 + 3 + 3 + 1 = 9 + 1
        iterator = TensorBatchIterator(data, batch_size=batch_size, sampler=sampler)
        sizes = [len(X) for X, _ in iterator]
        assert sum(sizes) == 10
        assert min(sizes) > 1
        assert len(iterator) == len(sizes)
    iterator = TensorBatchIterator(data, batch_size=3, sampler=sampler)
    assert [len(X) for X, _ in iterator] == [3, 3, 4]


@settings(max_examples=60, deadline=None)
@given(
    n_samples=st.integers(2, 200), batch_size=st.integers(2, 64), seed=st.integers(0, 9)
)
def test_property_training_batches(n_samples, batch_size, seed):
    targets = torch.arange(n_samples) % 3
    data = DeviceDataset(torch.arange(n_samples).float()[:, None], targets)
    sampler = ClassWeightedSampler(targets, seed=seed)
    iterator = TensorBatchIterator(data, batch_size=batch_size, sampler=sampler)
    batches = [X[:, 0].long() for X, _ in iterator]
    sizes = [len(b) for b in batches]
    assert min(sizes) >= 2
    assert max(sizes) <= batch_size + 1
    assert len(sizes) == len(iterator)
    assert sorted(torch.cat(batches).tolist()) == list(range(n_samples))


# --- stratified_holdout -------------------------------------------------------


def test_stratified_holdout_keeps_rare_classes():
    y = np.array([0] * 50 + [1] * 10 + [2] * 2 + [3] * 1 + [4] * 3)
    train, valid = stratified_holdout(y, 0.2, np.random.RandomState(0))
    assert np.intersect1d(train, valid).size == 0
    np.testing.assert_array_equal(
        np.sort(np.concatenate([train, valid])), np.arange(66)
    )
    np.testing.assert_array_equal(train, np.sort(train))
    np.testing.assert_array_equal(valid, np.sort(valid))
    valid_counts = np.bincount(y[valid], minlength=5)
    train_counts = np.bincount(y[train], minlength=5)
    assert valid_counts.tolist() == [10, 2, 1, 0, 1]
    # Every class keeps at least one training example; the singleton stays.
    assert np.all(train_counts >= 1)
    assert train_counts[3] == 1


def test_stratified_holdout_docstring_case():
    y = np.array([0] * 8 + [1] * 2 + [2])
    train, valid = stratified_holdout(y, 0.25, np.random.RandomState(0))
    assert np.bincount(y[valid], minlength=3).tolist() == [2, 1, 0]
    assert len(train) == 8


def test_stratified_holdout_only_singletons():
    y = np.array([0, 1, 2])
    train, valid = stratified_holdout(y, 0.5, np.random.RandomState(0))
    np.testing.assert_array_equal(train, [0, 1, 2])
    assert valid.size == 0
    assert np.issubdtype(valid.dtype, np.integer)


def test_stratified_holdout_is_reproducible():
    y = np.repeat(np.arange(4), [40, 20, 5, 2])
    a = stratified_holdout(y, 0.3, np.random.RandomState(1))
    b = stratified_holdout(y, 0.3, np.random.RandomState(1))
    c = stratified_holdout(y, 0.3, np.random.RandomState(2))
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(1, 30), min_size=1, max_size=8),
    fraction=st.floats(0.01, 0.99),
    seed=st.integers(0, 100),
)
def test_property_stratified_holdout(counts, fraction, seed):
    y = np.repeat(np.arange(len(counts)), counts)
    np.random.RandomState(seed).shuffle(y)
    train, valid = stratified_holdout(y, fraction, np.random.RandomState(seed))
    assert np.intersect1d(train, valid).size == 0
    np.testing.assert_array_equal(
        np.sort(np.concatenate([train, valid])), np.arange(len(y))
    )
    train_counts = np.bincount(y[train], minlength=len(counts))
    valid_counts = np.bincount(y[valid], minlength=len(counts))
    for label, n in enumerate(counts):
        if n == 1:
            assert train_counts[label] == 1 and valid_counts[label] == 0
        else:
            assert 1 <= valid_counts[label] <= n - 1
            assert train_counts[label] >= 1
            assert valid_counts[label] == min(max(round(fraction * n), 1), n - 1)


def test_sharded_iterators_split_an_epoch_between_processes():
    data = DeviceDataset(torch.arange(20.0).unsqueeze(1), torch.arange(20) % 2)
    seen = []
    for index in range(3):
        sampler = ClassWeightedSampler(data.y, seed=7)  # same seed on every rank
        iterator = TensorBatchIterator(data, 4, sampler=sampler, shard=(index, 3))
        batches = [X[:, 0].long().tolist() for X, _ in iterator]
        # 5 batches padded to 6: every process takes the same number of steps.
        assert len(batches) == len(iterator) == 2
        seen += [row for batch in batches for row in batch]
    assert set(seen) == set(range(20))
    assert len(seen) == 24  # the first batch is repeated once
    with pytest.raises(ValueError, match="shard"):
        TensorBatchIterator(data, 4, shard=(3, 3))


def test_sampler_reset_is_a_new_sampler_and_release_keeps_the_weights():
    targets = long_tailed_targets()
    sampler = ClassWeightedSampler(torch.tensor([1, 0]), seed=5)
    sampler.set_class_weights(torch.tensor([1.0, 2.0]))
    sampler.epoch_indices()
    sampler.reset(targets, seed=3)
    assert sampler.class_weights is None
    fresh = ClassWeightedSampler(targets, seed=3)
    for _ in range(2):
        assert torch.equal(sampler.epoch_indices(), fresh.epoch_indices())
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0])
    sampler.set_class_weights(weights)
    sampler.release()
    assert sampler.targets.numel() == 0
    assert sampler.targets.dtype == targets.dtype
    assert torch.equal(sampler.class_weights, weights)
