"""Tests of sklearn_lt._sparse: sparse rows on the device and their operations."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from sklearn_lt._device_data import DeviceDataset, TensorBatchIterator
from sklearn_lt._sparse import (
    SparseRows,
    canonical_csr,
    column_scale,
    divide_columns,
    is_sparse_tensor,
    row_norms,
    scale_rows,
)
from sklearn_lt.modules import NormedLinear, Standardized


def _random_dense(n_rows=40, n_features=12, density=0.2, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-3, 7, size=(n_rows, n_features)).astype(np.float32)
    X[rng.uniform(size=X.shape) > density] = 0
    X[3] = 0  # an empty row
    return X


def _random_csr(**kwargs):
    return sp.csr_matrix(_random_dense(**kwargs))


@pytest.mark.parametrize(
    "index",
    [
        torch.tensor([5, 0, 3, 3, 39, 17]),  # unordered, repeated, an empty row
        torch.tensor([3]),
        torch.tensor([], dtype=torch.int64),
        torch.arange(40),
    ],
)
def test_gathered_rows_equal_the_scipy_rows(index):
    X = _random_csr()
    rows = SparseRows.from_scipy(X, device="cpu")
    batch = rows[index]
    assert batch.layout == torch.sparse_csr
    np.testing.assert_array_equal(batch.to_dense().numpy(), X[index.numpy()].toarray())


@pytest.mark.parametrize(
    "index", [slice(0, 40), slice(2, 9), slice(3, 4), slice(7, 7), slice(1, 30, 4)]
)
def test_sliced_rows_equal_the_scipy_rows(index):
    X = _random_csr()
    batch = SparseRows.from_scipy(X, device="cpu")[index]
    np.testing.assert_array_equal(batch.to_dense().numpy(), X[index].toarray())


def test_sparse_rows_make_batches_of_a_device_dataset():
    X = _random_csr(n_rows=10)
    data = DeviceDataset.from_arrays(X, np.arange(10) % 2, device="cpu")
    assert isinstance(data.X, SparseRows)
    subset = data.subset(torch.tensor([9, 1, 4]))
    batches = list(TensorBatchIterator(subset, batch_size=2))
    assert [b[0].shape for b in batches] == [(2, 12), (1, 12)]
    dense = torch.cat([b[0].to_dense() for b in batches]).numpy()
    np.testing.assert_array_equal(dense, X[[9, 1, 4]].toarray())


def test_canonical_csr_sums_duplicates_without_changing_the_input():
    data, cols, ptr = np.array([1.0, 2.0, 3.0]), np.array([2, 0, 2]), [0, 3, 3]
    X = sp.csr_matrix((data, cols, ptr), shape=(2, 3))
    canonical = canonical_csr(X)
    np.testing.assert_array_equal(canonical.indices, [0, 2])
    np.testing.assert_array_equal(canonical.toarray(), [[2.0, 0.0, 4.0], [0] * 3])
    np.testing.assert_array_equal(X.indices, [2, 0, 2])  # the caller's matrix
    assert canonical_csr(canonical) is canonical  # no copy when canonical
    coo = canonical_csr(sp.coo_array(X.toarray()))
    assert coo.format == "csr"


def _weighted_std(X, weights):
    """Weighted population std of each column, computed densely in float64."""
    X = np.asarray(X, dtype=np.float64)
    mean = np.average(X, axis=0, weights=weights)
    return np.sqrt(np.average((X - mean) ** 2, axis=0, weights=weights))


@pytest.mark.parametrize("weighted", [False, True])
def test_column_scale_is_the_weighted_standard_deviation(weighted, monkeypatch):
    X = _random_dense(n_rows=50, n_features=9, density=0.3)
    X[:, 4] = 0  # an empty column
    X[:, 6] = 2.5  # a constant column (fully stored)
    X = sp.csr_matrix(X)
    rng = np.random.RandomState(0)
    weights = rng.uniform(0, 3, size=50) if weighted else None
    dense = X.toarray()
    expected = _weighted_std(dense, weights)
    expected[[4, 6]] = 1.0  # no spread: scale 1, as for dense inputs
    # Chunks of 7 nonzeros: the accumulation over chunks is exercised too.
    monkeypatch.setattr("sklearn_lt._sparse._CHUNK_NONZEROS", 7)
    scale = column_scale(X, weights)
    assert scale.dtype == np.float32
    np.testing.assert_allclose(scale, expected, rtol=1e-6)


def test_column_scale_weights_count_as_repeated_rows():
    X = _random_csr(n_rows=20, n_features=6, density=0.4)
    weights = np.arange(20) % 3
    repeated = sp.vstack([X[[i]] for i in range(20) for _ in range(weights[i])])
    np.testing.assert_allclose(
        column_scale(X, weights), column_scale(repeated), rtol=1e-6
    )


def test_sparse_batch_operations_match_their_dense_versions():
    X = _random_csr()
    rows = SparseRows.from_scipy(X, device="cpu")[torch.arange(40)]
    dense = torch.as_tensor(X.toarray())
    divisors = torch.linspace(0.5, 3.0, 12)
    np.testing.assert_array_equal(
        divide_columns(rows, divisors).to_dense(), dense / divisors
    )
    np.testing.assert_allclose(
        row_norms(rows), dense.norm(dim=1, keepdim=True), rtol=1e-6
    )
    factors = torch.linspace(-1.0, 2.0, 40)
    np.testing.assert_allclose(
        scale_rows(rows, factors).to_dense(), dense * factors[:, None], rtol=1e-6
    )
    assert is_sparse_tensor(rows) and not is_sparse_tensor(dense)


def test_linear_layers_on_sparse_batches_match_dense_ones():
    # The forward pass and the weight gradient of nn.Linear and of the cosine
    # head on a sparse CSR batch equal those on the dense batch (float32
    # sums in another order: 1e-5 relative).
    X = _random_csr()
    rows = SparseRows.from_scipy(X, device="cpu")[torch.arange(40)]
    dense = torch.as_tensor(X.toarray())
    for layer in (nn.Linear(12, 5), NormedLinear(12, 5)):
        out_sparse = layer(rows)
        (grad_sparse,) = torch.autograd.grad(out_sparse.square().sum(), layer.weight)
        out_dense = layer(dense)
        (grad_dense,) = torch.autograd.grad(out_dense.square().sum(), layer.weight)
        np.testing.assert_allclose(
            out_sparse.detach(), out_dense.detach(), rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(grad_sparse, grad_dense, rtol=1e-5, atol=1e-5)
    # Row 3 is empty: the cosine head gives it zero logits, not NaN.
    assert torch.equal(NormedLinear(12, 5)(rows)[3], torch.zeros(5))


def test_standardized_scales_sparse_batches_without_centering():
    X = _random_csr()
    rows = SparseRows.from_scipy(X, device="cpu")[torch.arange(40)]
    dense = torch.as_tensor(X.toarray())
    scale = torch.linspace(0.5, 3.0, 12)
    seen = []

    class Record(nn.Module):
        def forward(self, X):
            seen.append(X)
            return X.to_dense()

    scaled = Standardized(Record(), None, scale)(rows)
    assert is_sparse_tensor(seen[-1])  # the network gets the sparse batch
    np.testing.assert_array_equal(scaled, dense / scale)
    np.testing.assert_array_equal(Standardized(Record(), None, scale)(dense), scaled)
    # A model that centers (fitted on dense data) densifies one batch.
    mean = torch.linspace(-1.0, 1.0, 12)
    centered = Standardized(Record(), mean, scale)(rows)
    assert not is_sparse_tensor(seen[-1])
    np.testing.assert_array_equal(centered, (dense - mean) / scale)


def test_read_only_sparse_input_is_used_without_warnings():
    # Parallel searches hand estimators read-only (memmapped) arrays.
    X = _random_csr()
    for part in (X.data, X.indices, X.indptr):
        part.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = SparseRows.from_scipy(X, device="cpu")
    np.testing.assert_array_equal(rows[:].to_dense().numpy(), X.toarray())
