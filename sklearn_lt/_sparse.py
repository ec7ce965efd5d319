"""Sparse inputs: rows kept on the device in CSR form, batches as CSR tensors.

Private machinery for sparse ``X`` (TF-IDF and other bag-of-features data,
whose dense form would not fit in memory). The training set is moved to the
device once as three CSR arrays (:class:`SparseRows`); a mini-batch gathers
its rows with a few vectorized index operations and reaches the network as a
:func:`torch.sparse_csr_tensor`, which ``nn.Linear`` multiplies with a sparse
kernel. Nothing here builds the dense matrix. :func:`column_scale` computes the
per-feature standard deviation that standardizes wide sparse inputs (scale
only, without centering, so zeros stay zeros), and :func:`divide_columns`,
:func:`row_norms` and :func:`scale_rows` are the few operations the networks
need on a sparse batch.
"""

import warnings

import numpy as np
import torch

__all__ = [
    "SparseRows",
    "canonical_csr",
    "column_scale",
    "csr_tensor",
    "divide_columns",
    "is_sparse_tensor",
    "row_norms",
    "scale_rows",
]

#: Nonzeros per chunk when the column scale is accumulated: float64
#: temporaries of 8 MiB, whatever the number of nonzeros.
_CHUNK_NONZEROS = 2**20


def is_sparse_tensor(X):
    """Whether ``X`` is a torch tensor with a sparse layout (CSR, COO...)."""
    return isinstance(X, torch.Tensor) and X.layout != torch.strided


def csr_tensor(crow_indices, col_indices, values, shape):
    """A :func:`torch.sparse_csr_tensor` from valid CSR parts, without warnings.

    torch warns that its CSR support is in beta, and that invariant checks
    are off: the parts come from a canonical scipy matrix (sorted, unique
    column indices per row), so they are valid by construction.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support")
        return torch.sparse_csr_tensor(
            crow_indices,
            col_indices,
            values,
            size=tuple(shape),
            check_invariants=False,
        )


def canonical_csr(X):
    """``X`` as a CSR matrix with sorted, unique column indices in each row.

    torch's CSR kernels require that form; scipy matrices may hold duplicate
    or unsorted entries. The input is never modified (a copy is made when it
    is not canonical).

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from sklearn_lt._sparse import canonical_csr
    >>> X = sp.csr_matrix((np.array([1.0, 2.0, 3.0]), np.array([1, 0, 1]),
    ...                    np.array([0, 3])), shape=(1, 2))
    >>> canonical_csr(X).toarray()
    array([[2., 4.]])
    """
    X = X.tocsr()
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    return X


def column_scale(X, sample_weight=None):
    r"""Per-feature standard deviation of sparse ``X``, without densifying it.

    .. math::

        \mu_j = \frac{\sum_i w_i x_{ij}}{\sum_i w_i}, \qquad
        \sigma_j^2 = \frac{\sum_i w_i (x_{ij} - \mu_j)^2}{\sum_i w_i}

    (a weight of ``k`` counts as ``k`` copies of the row). The implicit zeros
    contribute :math:`\mu_j^2` each, so the sum runs over the nonzeros only,
    in float64, plus that term: no cancellation of :math:`E[x^2] - \mu^2`.
    A feature of (near) zero spread gets scale 1, as for dense inputs.

    Parameters
    ----------
    X : scipy sparse matrix or array of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,), default=None

    Returns
    -------
    scale : ndarray of shape (n_features,), dtype float32

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from sklearn_lt._sparse import column_scale
    >>> X = np.array([[0.0, 2.0], [4.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    >>> X.std(axis=0)
    array([1.73205081, 1.        ])
    >>> column_scale(sp.csr_matrix(X))
    array([1.7320508, 1.       ], dtype=float32)
    """
    X = canonical_csr(X)
    n_rows, n_features = X.shape
    weights = (
        np.ones(n_rows)
        if sample_weight is None
        else np.asarray(sample_weight, dtype=np.float64)
    )
    total = float(weights.sum())
    # Weight of each stored entry: the weight of its row.
    entry_weight = np.repeat(weights, np.diff(X.indptr))
    columns, data = X.indices, X.data
    mean = np.bincount(
        columns, weights=entry_weight * data, minlength=n_features
    ) / max(total, np.finfo(np.float64).tiny)
    squares = np.zeros(n_features)
    stored_weight = np.zeros(n_features)
    for start in range(0, data.size, _CHUNK_NONZEROS):
        part = slice(start, start + _CHUNK_NONZEROS)
        cols, w = columns[part], entry_weight[part]
        deviation = data[part].astype(np.float64) - mean[cols]
        squares += np.bincount(cols, weights=w * deviation**2, minlength=n_features)
        stored_weight += np.bincount(cols, weights=w, minlength=n_features)
    # Rows without an entry in column j hold zeros: (0 - mean)^2 each. Their
    # weight is a difference of float64 sums: below its rounding error it is
    # zero (a fully stored constant column must get no spread).
    missing = total - stored_weight
    missing[missing <= 1e-9 * total] = 0.0
    squares += missing * mean**2
    scale = np.sqrt(squares / max(total, np.finfo(np.float64).tiny))
    scale[~(scale > 1e-12 * np.maximum(np.abs(mean), 1.0))] = 1.0
    return scale.astype(np.float32)


def divide_columns(X, divisors):
    """Sparse CSR tensor ``X`` with column ``j`` divided by ``divisors[j]``.

    Only the stored values change: the sparsity pattern is kept, and each
    value is the one ``X.to_dense() / divisors`` would hold.
    """
    X = X.to_sparse_csr()
    columns = X.col_indices()
    values = X.values() / divisors.to(X.values().dtype)[columns]
    return csr_tensor(X.crow_indices(), columns, values, X.shape)


def row_norms(X):
    """Euclidean norm of each row of a sparse CSR tensor, shape (n_rows, 1)."""
    X = X.to_sparse_csr()
    crow = X.crow_indices()
    rows = torch.repeat_interleave(
        torch.arange(X.shape[0], device=crow.device),
        crow[1:] - crow[:-1],
        output_size=X.values().shape[0],
    )
    squares = torch.zeros(X.shape[0], dtype=X.values().dtype, device=crow.device)
    squares.index_add_(0, rows, X.values() ** 2)
    return squares.sqrt().unsqueeze(1)


def scale_rows(X, factors):
    """Sparse CSR tensor ``X`` with row ``i`` multiplied by ``factors[i]``."""
    X = X.to_sparse_csr()
    crow = X.crow_indices()
    per_entry = torch.repeat_interleave(
        factors.reshape(-1).to(X.values().dtype),
        crow[1:] - crow[:-1],
        output_size=X.values().shape[0],
    )
    return csr_tensor(crow, X.col_indices(), X.values() * per_entry, X.shape)


class SparseRows:
    """A sparse matrix held on a device as CSR tensors; indexing gathers rows.

    Stands where :class:`~sklearn_lt._device_data.DeviceDataset` holds a dense
    tensor: ``rows[index]`` (an index tensor or a slice) returns those rows as
    a sparse CSR tensor, with a handful of vectorized operations (no loop over
    rows, nothing densified).

    Parameters
    ----------
    crow_indices : Tensor of shape (n_rows + 1,), dtype int64
        Row pointers.
    col_indices : Tensor of shape (nnz,), dtype int64
        Column of each stored value, sorted and unique within each row.
    values : Tensor of shape (nnz,)
        Stored values.
    n_features : int
        Number of columns.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> import torch
    >>> from sklearn_lt._sparse import SparseRows
    >>> X = sp.csr_matrix(np.array([[1, 0], [0, 2], [3, 0]], dtype=np.float32))
    >>> rows = SparseRows.from_scipy(X, device="cpu")
    >>> rows[torch.tensor([2, 0])].to_dense()
    tensor([[3., 0.],
            [1., 0.]])
    """

    def __init__(self, crow_indices, col_indices, values, n_features):
        self.crow_indices = crow_indices
        self.col_indices = col_indices
        self.values = values
        self.shape = (crow_indices.shape[0] - 1, int(n_features))

    @classmethod
    def from_scipy(cls, X, device):
        """Move a scipy sparse matrix (any format) to ``device`` as CSR tensors."""
        X = canonical_csr(X)
        device = torch.device(device)
        with warnings.catch_warnings():
            # Read-only inputs (joblib memmaps) are only read.
            warnings.filterwarnings(
                "ignore", message="The given NumPy array is not writable"
            )
            return cls(
                torch.as_tensor(X.indptr.astype(np.int64), device=device),
                torch.as_tensor(X.indices.astype(np.int64), device=device),
                torch.as_tensor(X.data, device=device),
                X.shape[1],
            )

    @property
    def device(self):
        return self.values.device

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self._slice(index)
        return self._gather(torch.as_tensor(index, device=self.device).reshape(-1))

    def _slice(self, index):
        start, stop, step = index.indices(self.shape[0])
        if step != 1:
            return self._gather(torch.arange(start, stop, step, device=self.device))
        stop = max(start, stop)
        crow = self.crow_indices[start : stop + 1]
        first, last = (int(v) for v in crow[[0, -1]].tolist())
        return csr_tensor(
            crow - first,
            self.col_indices[first:last],
            self.values[first:last],
            (stop - start, self.shape[1]),
        )

    def _gather(self, rows):
        starts = self.crow_indices[rows]
        lengths = self.crow_indices[rows + 1] - starts
        crow = torch.cat([lengths.new_zeros(1), torch.cumsum(lengths, dim=0)])
        nnz = int(crow[-1])
        # Position of each gathered entry in the stored arrays: its batch
        # position plus how far its row starts from where the batch puts it.
        shift = torch.repeat_interleave(starts - crow[:-1], lengths, output_size=nnz)
        positions = torch.arange(nnz, device=self.device) + shift
        return csr_tensor(
            crow,
            self.col_indices[positions],
            self.values[positions],
            (rows.shape[0], self.shape[1]),
        )
