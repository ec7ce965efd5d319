"""Batched float32 inference whose results do not depend on the batch."""

import scipy.sparse as sp
import torch

from .._device_data import as_tensor
from .._sparse import SparseRows
from ..modules import tau_normalize_head

__all__ = ["batched_outputs", "module_device"]

#: Rows per prediction batch of sparse inputs that stay sparse: the memory of
#: a batch is its nonzeros and its activations, not ``rows * n_features``.
SPARSE_BATCH_ROWS = 1024


def module_device(module):
    """The device of a module's first parameter or buffer (CPU without any)."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


def _keeps_sparsity(module):
    """Whether ``module`` takes sparse batches as they are (nothing to center)."""
    return getattr(module, "mean", None) is None


def _batches(X, rows, device):
    """Batches of ``rows`` rows of ``X`` on ``device``, the last one padded.

    Dense ``X`` is padded with zero rows; sparse ``X`` becomes sparse CSR
    batches (padded with empty rows), kept on the host until each batch is
    needed, as the dense path does.
    """
    n_rows = X.shape[0]
    for start in range(0, n_rows, rows):
        stop = min(start + rows, n_rows)
        if sp.issparse(X):
            part = X[start:stop]
            if stop - start < rows:
                empty = sp.csr_matrix((rows - stop + start, X.shape[1]), dtype=X.dtype)
                part = sp.vstack([part, empty], format="csr")
            batch = SparseRows.from_scipy(part, device)[:]
        else:
            batch = as_tensor(X[start:stop], device)
            if stop - start < rows:
                padding = batch.new_zeros((rows - stop + start, *batch.shape[1:]))
                batch = torch.cat([batch, padding])
        yield batch, stop - start


def batched_outputs(module, X, rows, n_classes, tau_norm=0.0):
    """Raw outputs of ``module`` for ``X`` as a float64 tensor (computed in float32).

    The trained float32 network runs on batches of one fixed shape, ``rows``:
    the last batch is padded with zero rows. Matrix and convolution kernels are
    chosen by shape, so with one shape a row's output does not depend on the
    rows predicted with it (scikit-learn's subset- and order-invariance checks
    in ``test_common.py``), and memory is bounded by the batch, whatever the
    number of rows. ``tau_norm > 0`` uses the tau-normalized head.

    A sparse ``X`` (scipy, canonical CSR) reaches a network trained on sparse
    data as sparse CSR batches of ``SPARSE_BATCH_ROWS`` rows; a network that
    centers its inputs (trained on dense data) gets dense batches of ``rows``
    rows, one at a time.
    """
    device = module_device(module)
    if sp.issparse(X) and _keeps_sparsity(module):
        rows = SPARSE_BATCH_ROWS
    was_training = module.training
    module.eval()
    hook = tau_normalize_head(module, tau_norm) if tau_norm else None
    outputs = []
    try:
        with torch.inference_mode():
            for batch, n_rows in _batches(X, rows, device):
                outputs.append(module(batch)[:n_rows].to(torch.float64).cpu())
    finally:
        if hook is not None:
            hook.remove()
        module.train(was_training)
    if not outputs:
        return torch.zeros((0, n_classes), dtype=torch.float64)
    return torch.cat(outputs)
