"""Statistics of the training data (sklearn_lt.classifiers._statistics)."""

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_lt.classifiers import _statistics
from sklearn_lt.classifiers._statistics import indicator_columns, moments


def test_indicator_columns_of_dense_data():
    X = np.array(
        [
            [0.0, 1.0, 0.0, 0.0, 1.0],
            [1.0, 1.0, 2.0, 0.0, 1.0 + 1e-7],
            [0.0, 1.0, 1.0, 0.0, 0.0],
        ]
    )
    # Constant 0 or 1 columns count as indicators; 2 or 1 + 1e-7 do not.
    np.testing.assert_array_equal(
        indicator_columns(X), [True, True, False, True, False]
    )


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_indicator_columns_of_sparse_data(fmt):
    X = np.array(
        [
            [0.0, 1.0, 0.0, 0.0, 1.0],
            [1.0, 1.0, 2.0, 0.0, 1.0 + 1e-7],
            [0.0, 1.0, 1.0, 0.0, 0.0],
        ]
    )
    sparse = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    sparse.data[sparse.data == 2.0] = 0.0  # a stored zero is a zero
    expected = [True, True, True, True, False]
    np.testing.assert_array_equal(indicator_columns(sparse), expected)
    np.testing.assert_array_equal(indicator_columns(sparse.toarray()), expected)


def test_indicator_columns_reads_every_chunk(monkeypatch):
    monkeypatch.setattr(_statistics, "_CHUNK_VALUES", 6)  # 2 rows per chunk
    X = np.zeros((9, 3), dtype=np.float32)
    X[::2, 0] = 1.0
    X[8, 1] = 3.0  # only in the last chunk
    np.testing.assert_array_equal(indicator_columns(X), [True, False, True])
    X[0, :] = 0.5  # no candidate left after the first chunk
    np.testing.assert_array_equal(indicator_columns(X), [False, False, False])


@pytest.mark.parametrize("weighted", [False, True])
def test_moments_in_chunks_match_numpy(weighted, monkeypatch):
    monkeypatch.setattr(_statistics, "_CHUNK_VALUES", 8)
    rng = np.random.RandomState(0)
    X = (rng.normal(size=(13, 4)) * 3 + 100).astype(np.float32)
    weights = rng.uniform(0.1, 2.0, size=13) if weighted else None
    mean, std = moments(X, (0,), weights)
    expected = np.average(X.astype(np.float64), axis=0, weights=weights)
    spread = np.average((X - expected) ** 2, axis=0, weights=weights)
    np.testing.assert_allclose(mean, expected, rtol=1e-12)
    np.testing.assert_allclose(std, np.sqrt(spread), rtol=1e-9)


@pytest.mark.parametrize("weighted", [False, True])
def test_moments_of_sparse_data_are_those_of_its_dense_form(weighted, monkeypatch):
    monkeypatch.setattr(_statistics, "_CHUNK_VALUES", 8)  # 2 rows per chunk
    rng = np.random.RandomState(0)
    X = sp.random(13, 4, density=0.4, format="csr", random_state=rng) * 5
    weights = rng.uniform(0.1, 2.0, size=13) if weighted else None
    for sparse_mean, dense_mean in zip(
        moments(X, (0,), weights), moments(X.toarray(), (0,), weights), strict=True
    ):
        np.testing.assert_allclose(sparse_mean, dense_mean, rtol=1e-12)
