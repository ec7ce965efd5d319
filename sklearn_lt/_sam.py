"""Sharpness-aware minimization (SAM) on top of SGD with momentum.

Private: the classifiers use it through ``optimizer="sam"`` and ``sam_rho``;
:class:`sklearn_lt._training.LongTailNet` drives its two passes.
"""

import contextlib

import torch
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["SAM", "SameRandomDraws", "frozen_running_statistics"]


class SAM(torch.optim.SGD):
    r"""SGD (with momentum and weight decay) at a sharpness-aware gradient.

    One step of SAM (Foret et al., 2021), as used for long-tailed data by
    Rangwani et al. (2022):

    .. math::

        \epsilon = \rho \, g / \lVert g \rVert_2, \quad g = \nabla L(w); \qquad
        w \leftarrow \mathrm{SGD}(w, \nabla L(w + \epsilon))

    with one global norm over all parameters. :meth:`first_step` moves the
    weights to :math:`w + \epsilon` (it keeps :math:`\epsilon`, one tensor per
    parameter, and nothing else), :meth:`second_step` moves them back and
    takes the SGD step with the gradient computed there. :meth:`step` runs both
    passes with a closure that zeroes the gradients, computes the loss on the
    same batch and calls ``backward``.

    The state (momentum buffers) and ``state_dict`` are those of
    :class:`torch.optim.SGD`; ``rho`` is one more entry of each parameter group.

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups, as for :class:`torch.optim.SGD`.
    rho : float, default=0.05
        Radius of the ascent step; 0 is plain SGD.
    **sgd_params
        ``lr``, ``momentum``, ``weight_decay``... of :class:`torch.optim.SGD`.

    References
    ----------
    .. [1] P. Foret et al., "Sharpness-Aware Minimization for Efficiently
       Improving Generalization", ICLR 2021.
    .. [2] H. Rangwani et al., "Escaping Saddle Points for Effective
       Generalization on Class-Imbalanced Data", NeurIPS 2022.
    """

    def __init__(self, params, rho=0.05, **sgd_params):
        if not rho >= 0.0:
            raise ValueError(f"rho must be non-negative; got {rho!r}.")
        super().__init__(params, **sgd_params)
        for group in self.param_groups:
            group.setdefault("rho", rho)
        self._perturbation = []

    @torch.no_grad()
    def first_step(self):
        """Move the weights to ``w + rho * g / ||g||`` (the gradients ``g`` are set)."""
        grads = [
            p.grad
            for group in self.param_groups
            for p in group["params"]
            if p.grad is not None
        ]
        self._perturbation = []
        if not grads:
            return
        norm = torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(g) for g in grads])
        )
        for group in self.param_groups:
            # A zero gradient gives a zero perturbation (0 * finite), without a
            # host synchronization to test for it.
            scale = group["rho"] / norm.clamp_min(1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                eps = p.grad * scale.to(p.grad.dtype)
                p.add_(eps)
                self._perturbation.append((p, eps))

    @torch.no_grad()
    def second_step(self):
        """Move the weights back and take the SGD step with the current gradients."""
        for p, eps in self._perturbation:
            p.sub_(eps)
        self._perturbation = []
        super().step()

    def step(self, closure=None):
        """One SAM step: two forward-backward passes of ``closure``, one update.

        Parameters
        ----------
        closure : callable
            Zeroes the gradients, computes the loss on the same batch, calls
            ``backward`` and returns the loss.

        Returns
        -------
        loss : Tensor
            The loss at the weights before the step (the first pass).
        """
        if closure is None:
            raise ValueError(
                "SAM needs a closure that re-evaluates the loss (it computes two "
                "gradients per step); call step(closure), or first_step and "
                "second_step around your own second pass."
            )
        with torch.enable_grad():
            loss = closure()
        self.first_step()
        with torch.enable_grad():
            closure()
        self.second_step()
        return loss

    def __setstate__(self, state):
        super().__setstate__(state)
        self._perturbation = []


@contextlib.contextmanager
def frozen_running_statistics(module):
    """Batch normalization keeps its running statistics inside the block.

    Training-mode layers still normalize with the batch statistics; only the
    running mean, variance and batch count are left unchanged (no copies).
    """
    layers = [
        layer
        for layer in module.modules()
        if isinstance(layer, _BatchNorm) and layer.track_running_stats
    ]
    for layer in layers:
        layer.track_running_stats = False
    try:
        yield
    finally:
        for layer in layers:
            layer.track_running_stats = True


class SameRandomDraws:
    """A context manager whose later blocks replay the first block's random draws.

    Keeps the global random states of the CPU and of ``device`` (when it is a
    CUDA device) at the start of the first block, and restores them at the
    start of each later block: dropout masks and on-device augmentation are
    the same in both passes of a SAM step, and the random stream after the
    step is the one a single pass leaves.
    """

    def __init__(self, device=None):
        self.cuda = device is not None and torch.device(device).type == "cuda"
        self.device = device
        self._states = None

    def __enter__(self):
        if self._states is None:
            self._states = (
                torch.get_rng_state(),
                torch.cuda.get_rng_state(self.device) if self.cuda else None,
            )
        else:
            cpu, cuda = self._states
            torch.set_rng_state(cpu)
            if self.cuda:
                torch.cuda.set_rng_state(cuda, self.device)
        return self

    def __exit__(self, *exc_info):
        return False
