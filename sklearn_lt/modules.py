"""PyTorch networks used by the classifiers.

Every network here takes ``n_classes`` and ``cosine_head`` and exposes its last
layer as ``head``, so the classifiers can swap in a cosine head for LDAM and set
the output bias for sigmoid losses without knowing the architecture.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._sparse import divide_columns, is_sparse_tensor, row_norms, scale_rows

__all__ = [
    "MLP",
    "CifarResNet",
    "NormedLinear",
    "SmallCNN",
    "Standardized",
    "resnet32",
    "tau_normalize_head",
]


def tau_normalize_head(module, power):
    r"""Make the last layer tau-normalized for the next forward passes.

    The ``head`` (an ``nn.Linear``) computes :math:`x^\top w_j /
    \lVert w_j \rVert^{\tau}` with **no bias**, the tau-normalized classifier
    of Kang et al. (2020), until the returned hook is removed.

    Parameters
    ----------
    module : torch.nn.Module
        A network with an ``nn.Linear`` named ``head``, or a wrapper with a
        ``network`` attribute holding one.
    power : float
        :math:`\tau`; 0 only drops the bias, 1 gives unit-norm class vectors.

    Returns
    -------
    handle : torch.utils.hooks.RemovableHandle
        Call ``handle.remove()`` to restore the plain head.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sklearn_lt.modules import tau_normalize_head
    >>> net = nn.Module()
    >>> net.head = nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = net.head.weight.copy_(torch.tensor([[3.0, 4.0], [0.0, 1.0]]))
    >>> handle = tau_normalize_head(net, 1.0)
    >>> net.head(torch.tensor([[1.0, 1.0]]))
    tensor([[1.4000, 1.0000]], grad_fn=<MmBackward0>)
    >>> handle.remove()
    """
    network = getattr(module, "network", module)
    head = getattr(network, "head", None)
    if not isinstance(head, nn.Linear):
        raise ValueError(
            "tau_norm needs a network whose last layer is an nn.Linear named `head`."
        )

    def rescaled(layer, inputs, output):
        norms = layer.weight.norm(dim=1).clamp_min(1e-12)
        return inputs[0] @ (layer.weight / norms.pow(power).unsqueeze(1)).T

    return head.register_forward_hook(rescaled)


class NormedLinear(nn.Module):
    r"""Cosine classifier layer: ``normalize(x) @ normalize(W).T``.

    .. math::

        z_j = \frac{x^\top w_j}{\lVert x \rVert\,\lVert w_j \rVert} \in [-1, 1]

    LDAM's scale ``s`` and margins are defined for these logits (Cao et al., 2019).

    Parameters
    ----------
    in_features : int
        Size of each input.
    out_features : int
        Number of classes.

    Attributes
    ----------
    weight : Parameter of shape (out_features, in_features)
        One direction per class.
    bias : None
        Cosine logits have no bias (kept for code that inspects ``head.bias``).

    Notes
    -----
    An input row of (near) zero norm, such as a feature vector zeroed by ReLU,
    has no direction: its logits are 0 and it passes no gradient, instead of
    the ``1/eps`` gradient of :func:`torch.nn.functional.normalize`.

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.modules import NormedLinear
    >>> layer = NormedLinear(4, 3)
    >>> logits = layer(torch.randn(5, 4))
    >>> logits.shape, bool(logits.abs().max() <= 1.0)
    (torch.Size([5, 3]), True)
    """

    def __init__(self, in_features, out_features):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = None
        # Unit-norm class directions from the start (the forward pass normalizes
        # anyway; the norm sets the effective step size of the first updates).
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        with torch.no_grad():
            self.weight.div_(self.weight.norm(dim=1, keepdim=True).clamp_min(1e-12))

    def forward(self, x):
        return F.linear(_unit_rows(x), _unit_rows(self.weight))

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}"


def _unit_rows(matrix, eps=1e-6):
    """Rows scaled to unit norm; rows of (near) zero norm give zeros, gradient 0.

    ``F.normalize`` divides a zero row by ``eps``, so its gradient is ``1/eps``
    and one dead feature vector can blow up training; the cosine of a zero
    vector is undefined, so it contributes nothing here instead.
    """
    if is_sparse_tensor(matrix):  # a sparse input row: rescale its stored values
        norms = row_norms(matrix)
        return scale_rows(matrix, torch.where(norms > eps, 1.0 / norms, 0.0))
    norms = matrix.norm(dim=1, keepdim=True)
    nonzero = norms > eps
    return torch.where(nonzero, matrix / torch.where(nonzero, norms, 1.0), 0.0)


def _head(in_features, n_classes, cosine_head):
    if cosine_head:
        return NormedLinear(in_features, n_classes)
    return nn.Linear(in_features, n_classes)


class MLP(nn.Module):
    """Multi-layer perceptron for tabular data: (Linear, ReLU, Dropout) blocks, a head.

    Parameters
    ----------
    n_features : int
        Number of input features.
    n_classes : int
        Number of outputs.
    hidden_layer_sizes : tuple of int, default=(256, 256)
        Width of each hidden layer; ``()`` gives a linear model.
    dropout : float, default=0.0
        Dropout probability after each hidden layer.
    cosine_head : bool, default=False
        Use :class:`NormedLinear` as the last layer (for LDAM).

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.modules import MLP
    >>> net = MLP(n_features=8, n_classes=3, hidden_layer_sizes=(16,))
    >>> net(torch.randn(2, 8)).shape
    torch.Size([2, 3])
    """

    def __init__(
        self,
        n_features,
        n_classes,
        hidden_layer_sizes=(256, 256),
        dropout=0.0,
        cosine_head=False,
    ):
        super().__init__()
        layers = []
        width = n_features
        for size in hidden_layer_sizes:
            layers += [nn.Linear(width, size), nn.ReLU(inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        self.body = nn.Sequential(*layers)
        self.head = _head(width, n_classes, cosine_head)

    def forward(self, X):
        return self.head(self.body(X))


class Standardized(nn.Module):
    """Standardize (and, in training, augment) inputs, then run a network.

    Parameters
    ----------
    network : nn.Module
        The network to run on standardized inputs.
    mean, scale : Tensor or None
        Broadcastable to the input (per feature, or per channel for images);
        ``None`` leaves the input unchanged; ``mean=None`` with a ``scale``
        only divides by the scale. Kept as buffers, so they follow
        ``.to(device)`` and pickling.
    augmentation : nn.Module, default=None
        Applied to raw training batches only (``self.training``), before
        standardization; see :mod:`sklearn_lt.augmentation`.
    mixed_precision : bool, default=False
        Run the training forward pass on CUDA under bfloat16 autocast (losses
        upcast their input to float32). Prediction stays in full precision.
    channels_last : bool, default=False
        Give 4-D inputs the channels-last memory layout (faster convolutions on
        recent GPUs); the network should be converted the same way.

    Notes
    -----
    A sparse input (a torch sparse CSR tensor) stays sparse when there is no
    ``mean``: its stored values are divided by the scale of their column and
    the network receives the sparse tensor (``nn.Linear`` multiplies it with
    a sparse kernel). Centering would fill in every zero, so with a ``mean``
    a sparse batch is made dense first.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sklearn_lt.modules import Standardized
    >>> model = Standardized(nn.Identity(), torch.tensor([1.0]), torch.tensor([2.0]))
    >>> model(torch.tensor([[3.0]]))
    tensor([[1.]])
    """

    def __init__(
        self,
        network,
        mean=None,
        scale=None,
        augmentation=None,
        mixed_precision=False,
        channels_last=False,
    ):
        super().__init__()
        self.network = network
        self.augmentation = augmentation
        self.mixed_precision = mixed_precision
        self.channels_last = channels_last
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)

    def forward(self, X):
        if self.training and self.augmentation is not None:
            X = self.augmentation(X)
        if is_sparse_tensor(X) and self.mean is not None:
            X = X.to_dense()  # centering fills the zeros in
        if self.mean is not None:
            X = (X - self.mean) / self.scale
        elif self.scale is not None:
            X = divide_columns(X, self.scale) if is_sparse_tensor(X) else X / self.scale
        if self.channels_last and X.ndim == 4:
            X = X.contiguous(memory_format=torch.channels_last)
        if self.mixed_precision and self.training and X.is_cuda:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return self.network(X)
        # A disabled autocast context still costs a few calls per batch.
        return self.network(X)


class SmallCNN(nn.Module):
    """A fast convolutional network for small images (digits, Fashion-MNIST).

    Two stages of two (conv3x3-BN-ReLU) blocks, each followed by 2x2 max-pooling,
    a last block, global average pooling and a head. Pooling rounds up, so any
    image size, even 1xW, works.

    Parameters
    ----------
    n_classes : int
        Number of outputs.
    in_channels : int, default=1
        Channels of the input images.
    width : int, default=32
        Channels of the first stage (then twice and four times as many).
    cosine_head : bool, default=False
        Use :class:`NormedLinear` as the last layer (for LDAM).

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.modules import SmallCNN
    >>> SmallCNN(n_classes=10)(torch.randn(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, n_classes, in_channels=1, width=32, cosine_head=False):
        super().__init__()

        def block(cin, cout):
            return [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]

        self.body = nn.Sequential(
            *block(in_channels, width),
            *block(width, width),
            nn.MaxPool2d(2, ceil_mode=True),
            *block(width, 2 * width),
            *block(2 * width, 2 * width),
            nn.MaxPool2d(2, ceil_mode=True),
            *block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = _head(4 * width, n_classes, cosine_head)

    def forward(self, X):
        return self.head(self.body(X))


class _BasicBlock(nn.Module):
    """3x3-3x3 residual block with the parameter-free "option A" shortcut."""

    def __init__(self, in_channels, channels, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.stride = stride
        self.pad = channels - in_channels

    def shortcut(self, x):
        if self.stride == 1 and self.pad == 0:
            return x
        x = x[:, :, :: self.stride, :: self.stride]
        half = self.pad // 2
        return F.pad(x, (0, 0, 0, 0, half, self.pad - half))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """The CIFAR ResNet of He et al. (2016) used in the long-tail papers.

    Three stages of ``n_blocks`` basic blocks with 16, 32 and 64 channels,
    option-A (subsample and zero-pad) shortcuts, global average pooling and a
    head. ``n_blocks=5`` is ResNet-32.

    Parameters
    ----------
    n_classes : int
        Number of outputs.
    n_blocks : int, default=5
        Basic blocks per stage; depth is ``6 * n_blocks + 2``.
    in_channels : int, default=3
        Channels of the input images.
    cosine_head : bool, default=False
        Use :class:`NormedLinear` as the last layer (LDAM, as in Cao et al.).

    References
    ----------
    .. [1] K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image
       Recognition", CVPR 2016.

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.modules import CifarResNet
    >>> CifarResNet(n_classes=10, n_blocks=1)(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, n_classes, n_blocks=5, in_channels=3, cosine_head=False):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
        )
        blocks = []
        width = 16
        for stage, channels in enumerate((16, 32, 64)):
            for index in range(n_blocks):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(_BasicBlock(width, channels, stride))
                width = channels
        self.blocks = nn.Sequential(*blocks)
        self.head = _head(64, n_classes, cosine_head)
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(module.weight)

    def forward(self, X):
        features = self.blocks(self.stem(X))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(features, 1), 1))


def resnet32(n_classes, in_channels=3, cosine_head=False):
    """ResNet-32 for 32x32 images (3 stages of 5 basic blocks).

    Parameters
    ----------
    n_classes : int
        Number of outputs.
    in_channels : int, default=3
        Channels of the input images.
    cosine_head : bool, default=False
        Use :class:`NormedLinear` as the last layer.

    Returns
    -------
    network : CifarResNet

    Examples
    --------
    >>> from sklearn_lt.modules import resnet32
    >>> net = resnet32(n_classes=10)
    >>> sum(p.numel() for p in net.parameters())
    464154
    """
    return CifarResNet(n_classes, 5, in_channels, cosine_head)
