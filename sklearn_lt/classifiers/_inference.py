"""Batched float32 inference whose results do not depend on the batch."""

import torch

from .._device_data import as_tensor
from ..modules import tau_normalize_head

__all__ = ["batched_outputs", "module_device"]


def module_device(module):
    """The device of a module's first parameter or buffer (CPU without any)."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


def batched_outputs(module, X, rows, n_classes, tau_norm=0.0):
    """Raw outputs of ``module`` for ``X`` as a float64 tensor (computed in float32).

    The trained float32 network runs on batches of one fixed shape, ``rows``:
    the last batch is padded with zero rows. Matrix and convolution kernels are
    chosen by shape, so with one shape a row's output does not depend on the
    rows predicted with it (scikit-learn's subset- and order-invariance checks
    in ``test_common.py``), and memory is bounded by the batch, whatever the
    number of rows. ``tau_norm > 0`` uses the tau-normalized head.
    """
    device = module_device(module)
    was_training = module.training
    module.eval()
    hook = tau_normalize_head(module, tau_norm) if tau_norm else None
    outputs = []
    try:
        with torch.inference_mode():
            for start in range(0, X.shape[0], rows):
                batch = as_tensor(X[start : start + rows], device)
                n_rows = batch.shape[0]
                if n_rows < rows:
                    padding = batch.new_zeros((rows - n_rows, *batch.shape[1:]))
                    batch = torch.cat([batch, padding])
                outputs.append(module(batch)[:n_rows].to(torch.float64).cpu())
    finally:
        if hook is not None:
            hook.remove()
        module.train(was_training)
    if not outputs:
        return torch.zeros((0, n_classes), dtype=torch.float64)
    return torch.cat(outputs)
