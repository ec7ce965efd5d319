"""Tests of sklearn_lt.modules."""

import copy
import pickle

import pytest
import torch
from torch import nn

from sklearn_lt.modules import (
    MLP,
    CifarResNet,
    NormedLinear,
    SmallCNN,
    Standardized,
    resnet32,
)
from sklearn_lt.modules import _BasicBlock as BasicBlock

# --- NormedLinear -------------------------------------------------------------


def test_normed_linear_is_cosine_similarity():
    torch.manual_seed(0)
    layer = NormedLinear(6, 4)
    x = 10.0 * torch.randn(9, 6)
    out = layer(x)
    w = layer.weight.detach()
    expected = torch.empty(9, 4)
    for i in range(9):
        for j in range(4):
            expected[i, j] = torch.dot(x[i], w[j]) / (x[i].norm() * w[j].norm())
    assert out.shape == (9, 4)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    assert out.abs().max() <= 1.0 + 1e-6


def test_normed_linear_bounds_and_scale_invariance():
    torch.manual_seed(1)
    layer = NormedLinear(5, 3)
    x = torch.randn(50, 5)
    out = layer(x)
    assert out.min() >= -1.0 - 1e-6 and out.max() <= 1.0 + 1e-6
    # Scaling the input or a class direction does not change cosine logits.
    torch.testing.assert_close(layer(1e3 * x), out)
    with torch.no_grad():
        layer.weight[0].mul_(7.0)
    torch.testing.assert_close(layer(x), out)
    # The input along a class direction gives cosine 1 for that class.
    direction = layer.weight.detach()[2:3]
    assert layer(direction)[0, 2].item() == pytest.approx(1.0, abs=1e-6)
    assert layer(-direction)[0, 2].item() == pytest.approx(-1.0, abs=1e-6)


def test_normed_linear_zero_input_is_finite():
    layer = NormedLinear(4, 3)
    x = torch.zeros(2, 4, requires_grad=True)
    out = layer(x)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.zeros(2, 3))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.isfinite(layer.weight.grad).all()


def test_normed_linear_attributes():
    layer = NormedLinear(4, 3)
    assert layer.bias is None
    assert layer.weight.shape == (3, 4)
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    assert "in_features=4" in repr(layer) and "out_features=3" in repr(layer)
    # Trainable: a gradient step changes the weight.
    layer(torch.randn(3, 4)).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


# --- MLP ----------------------------------------------------------------------


@pytest.mark.parametrize("hidden", [(), (7,), (16, 8), (5, 5, 5)])
def test_mlp_shapes(hidden):
    net = MLP(n_features=6, n_classes=3, hidden_layer_sizes=hidden)
    out = net(torch.randn(11, 6))
    assert out.shape == (11, 3)
    linears = [m for m in net.body if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == list(hidden)
    assert isinstance(net.head, nn.Linear)
    assert net.head.in_features == (hidden[-1] if hidden else 6)
    assert net.head.out_features == 3


def test_mlp_default_hidden_layers():
    net = MLP(n_features=4, n_classes=2)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (4, 256),
        (256, 256),
        (256, 2),
    ]


def test_mlp_without_hidden_layers_is_linear():
    torch.manual_seed(0)
    net = MLP(n_features=5, n_classes=3, hidden_layer_sizes=())
    assert len(net.body) == 0
    x = torch.randn(8, 5)
    expected = x @ net.head.weight.T + net.head.bias
    torch.testing.assert_close(net(x), expected)
    # Linear in its input.
    torch.testing.assert_close(net(2 * x) - net(x), net(x) - net(0 * x))


def test_mlp_cosine_head():
    net = MLP(n_features=5, n_classes=4, hidden_layer_sizes=(8,), cosine_head=True)
    assert isinstance(net.head, NormedLinear)
    out = net(torch.randn(10, 5))
    assert out.shape == (10, 4)
    assert out.abs().max() <= 1.0 + 1e-6
    linear_net = MLP(n_features=5, n_classes=4, hidden_layer_sizes=(8,))
    assert not isinstance(linear_net.head, NormedLinear)


def test_mlp_dropout():
    net = MLP(n_features=5, n_classes=2, hidden_layer_sizes=(32, 32), dropout=0.5)
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == 2
    assert not any(isinstance(m, nn.Dropout) for m in MLP(5, 2, (32, 32)).modules())
    x = torch.randn(4, 5)
    net.eval()
    torch.testing.assert_close(net(x), net(x))
    net.train()
    torch.manual_seed(0)
    first = net(x)
    torch.manual_seed(1)
    assert not torch.allclose(first, net(x))


def test_mlp_pickles():
    net = MLP(n_features=3, n_classes=2, hidden_layer_sizes=(4,), cosine_head=True)
    x = torch.randn(5, 3)
    torch.testing.assert_close(pickle.loads(pickle.dumps(net))(x), net(x))
    torch.testing.assert_close(copy.deepcopy(net)(x), net(x))


# --- Standardized -------------------------------------------------------------


def test_standardized_applies_mean_and_scale():
    mean = torch.tensor([1.0, -2.0, 3.0])
    scale = torch.tensor([2.0, 0.5, 4.0])
    inner = MLP(n_features=3, n_classes=2, hidden_layer_sizes=(4,))
    model = Standardized(inner, mean, scale)
    x = torch.randn(6, 3)
    torch.testing.assert_close(model(x), inner((x - mean) / scale))
    identity = Standardized(nn.Identity(), mean, scale)
    torch.testing.assert_close(
        identity(torch.tensor([[3.0, -1.0, 7.0]])), torch.tensor([[1.0, 2.0, 1.0]])
    )


def test_standardized_without_statistics_is_identity():
    inner = MLP(n_features=3, n_classes=2, hidden_layer_sizes=(4,))
    model = Standardized(inner)
    x = torch.randn(6, 3)
    torch.testing.assert_close(model(x), inner(x))
    assert model.mean is None and model.scale is None


def test_standardized_statistics_are_buffers():
    mean = torch.zeros(1, 3, 1, 1)
    scale = torch.ones(1, 3, 1, 1)
    model = Standardized(nn.Identity(), mean, scale)
    assert {"mean", "scale"} <= set(model.state_dict())
    assert not list(model.parameters())
    doubled = copy.deepcopy(model).double()
    assert doubled.mean.dtype == torch.float64
    assert doubled.scale.dtype == torch.float64
    # Per-channel statistics broadcast over images.
    images = torch.randn(2, 3, 4, 4)
    model = Standardized(nn.Identity(), mean + 1.0, 2.0 * scale)
    torch.testing.assert_close(model(images), (images - 1.0) / 2.0)
    restored = pickle.loads(pickle.dumps(model))
    torch.testing.assert_close(restored(images), model(images))


# --- Convolutional networks ---------------------------------------------------


@pytest.mark.parametrize(("in_channels", "size"), [(1, 28), (1, 8), (3, 32), (3, 9)])
def test_small_cnn_shapes(in_channels, size):
    net = SmallCNN(n_classes=7, in_channels=in_channels, width=8)
    out = net(torch.randn(3, in_channels, size, size))
    assert out.shape == (3, 7)
    assert isinstance(net.head, nn.Linear)
    assert net.head.in_features == 32


def test_small_cnn_cosine_head_and_eval():
    net = SmallCNN(n_classes=4, width=8, cosine_head=True)
    assert isinstance(net.head, NormedLinear)
    net.eval()
    out = net(torch.randn(1, 1, 8, 8))  # a single example works in eval mode
    assert out.shape == (1, 4)
    assert out.abs().max() <= 1.0 + 1e-6


def test_small_cnn_default_width():
    net = SmallCNN(n_classes=10)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64, 128]
    assert net.head.in_features == 128


@pytest.mark.parametrize("cosine_head", [False, True])
def test_cifar_resnet_shapes(cosine_head):
    net = CifarResNet(n_classes=10, n_blocks=1, cosine_head=cosine_head)
    out = net(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert isinstance(net.head, NormedLinear if cosine_head else nn.Linear)
    assert len(net.blocks) == 3
    assert [b.conv2.out_channels for b in net.blocks] == [16, 32, 64]
    assert [b.stride for b in net.blocks] == [1, 2, 2]
    # Other input sizes and channel counts.
    gray = CifarResNet(n_classes=3, n_blocks=1, in_channels=1)
    assert gray(torch.randn(2, 1, 28, 28)).shape == (2, 3)


def test_cifar_resnet_depth():
    for n_blocks in (1, 2):
        net = CifarResNet(n_classes=5, n_blocks=n_blocks)
        convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
        linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
        assert len(convs) + len(linears) == 6 * n_blocks + 2
        assert len(net.blocks) == 3 * n_blocks


def test_resnet32_structure():
    net = resnet32(n_classes=10)
    assert isinstance(net, CifarResNet)
    blocks = list(net.blocks)
    assert len(blocks) == 15
    stages = [blocks[0:5], blocks[5:10], blocks[10:15]]
    for stage, channels in zip(stages, (16, 32, 64), strict=True):
        assert all(isinstance(b, BasicBlock) for b in stage)
        assert all(b.conv1.out_channels == channels for b in stage)
        assert all(b.conv2.out_channels == channels for b in stage)
    assert [b.stride for b in blocks] == [1] * 5 + [2] + [1] * 4 + [2] + [1] * 4
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) + 1 == 32
    assert net.head.in_features == 64 and net.head.out_features == 10
    assert sum(p.numel() for p in net.parameters()) == 464154
    net.eval()
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    cosine = resnet32(n_classes=100, in_channels=1, cosine_head=True)
    assert isinstance(cosine.head, NormedLinear)
    assert cosine.stem[0].in_channels == 1


def test_option_a_shortcut():
    block = BasicBlock(16, 32, stride=2)
    # Option A has no parameters in the shortcut: only the two convs and BNs.
    assert {name.split(".")[0] for name, _ in block.named_parameters()} == {
        "conv1",
        "bn1",
        "conv2",
        "bn2",
    }
    x = torch.randn(2, 16, 32, 32)
    shortcut = block.shortcut(x)
    assert shortcut.shape == (2, 32, 16, 16)
    # Subsampled input in the middle channels, zeros padded on both sides.
    torch.testing.assert_close(shortcut[:, 8:24], x[:, :, ::2, ::2])
    assert torch.all(shortcut[:, :8] == 0) and torch.all(shortcut[:, 24:] == 0)
    assert block(x).shape == (2, 32, 16, 16)
    # Same shape: identity shortcut.
    identity = BasicBlock(16, 16, stride=1)
    assert identity.shortcut(x) is x
    assert identity(x).shape == x.shape


@pytest.mark.parametrize(
    "make",
    [
        lambda c: MLP(n_features=4, n_classes=c, hidden_layer_sizes=(3,)),
        lambda c: SmallCNN(n_classes=c, width=4),
        lambda c: CifarResNet(n_classes=c, n_blocks=1),
        lambda c: resnet32(n_classes=c),
        lambda c: MLP(n_features=4, n_classes=c, cosine_head=True),
        lambda c: SmallCNN(n_classes=c, cosine_head=True),
        lambda c: CifarResNet(n_classes=c, n_blocks=1, cosine_head=True),
    ],
    ids=["mlp", "cnn", "resnet", "resnet32", "mlp-cos", "cnn-cos", "resnet-cos"],
)
def test_every_network_has_head(make):
    net = make(6)
    assert hasattr(net, "head")
    assert isinstance(net.head, nn.Linear | NormedLinear)
    assert net.head.out_features == 6
    # The head is the network's last layer: replacing it changes the output size.
    in_features = net.head.in_features
    net.head = nn.Linear(in_features, 2)
    x = torch.randn(2, 4) if isinstance(net, MLP) else None
    if x is None:
        channels = 3 if isinstance(net, CifarResNet) else 1
        x = torch.randn(2, channels, 8, 8)
    assert net(x).shape == (2, 2)


def test_networks_train_one_step():
    # Gradients reach the first layer of each network.
    torch.manual_seed(0)
    for net, x in [
        (MLP(4, 3, (5,)), torch.randn(6, 4)),
        (SmallCNN(3, width=4), torch.randn(6, 1, 8, 8)),
        (CifarResNet(3, n_blocks=1), torch.randn(6, 3, 8, 8)),
    ]:
        loss = net(x).logsumexp(dim=1).mean()
        loss.backward()
        first = next(p for p in net.parameters() if p.ndim > 1)
        assert first.grad is not None
        assert torch.isfinite(first.grad).all() and first.grad.abs().sum() > 0


def test_small_cnn_accepts_one_pixel_high_images():
    # Tabular rows seen as 1 x d images: pooling rounds up instead of failing.
    net = SmallCNN(n_classes=3, width=4)
    assert net(torch.randn(5, 1, 1, 3)).shape == (5, 3)


def test_normed_linear_zero_row_has_zero_output_and_gradient():
    layer = NormedLinear(4, 3)
    x = torch.zeros(2, 4, requires_grad=True)
    x.data[1] = torch.tensor([1.0, 2.0, 0.0, 0.0])
    out = layer(x)
    out.sum().backward()
    assert torch.equal(out[0], torch.zeros(3))
    assert torch.equal(x.grad[0], torch.zeros(4))
    assert torch.isfinite(x.grad).all()
    assert x.grad[1].abs().sum() > 0
