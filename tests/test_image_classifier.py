"""Tests of sklearn_lt.classifiers.LongTailImageClassifier."""

import copy
import functools
import os
import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import balanced_accuracy_score
from torch import nn

from sklearn_lt import LongTailImageClassifier
from sklearn_lt.augmentation import RandomCropFlip
from sklearn_lt.datasets import load_digits_lt, load_fashion_mnist_lt
from sklearn_lt.losses import LOSSES
from sklearn_lt.modules import CifarResNet, NormedLinear, SmallCNN
from sklearn_lt.modules import _BasicBlock as BasicBlock

FASHION_MNIST_HOME = "/usr/share/datasets/fashion-mnist"

# One epoch of the small CNN: enough to exercise the code paths.
FAST = {
    "architecture": "cnn",
    "max_epochs": 1,
    "batch_size": 32,
    "random_state": 0,
}


@functools.cache
def _digits(n_samples=200):
    """The first ``n_samples`` digits, flattened (N, 64) like ``load_digits``."""
    X, y = load_digits(return_X_y=True)
    return X[:n_samples], y[:n_samples]


def _random_images(n_samples, shape, n_classes=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(0, 1, size=(n_samples, *shape)).astype(np.float32)
    y = np.arange(n_samples) % n_classes
    return X, y


def _module(clf):
    """The trained ``Standardized`` wrapper of a fitted classifier."""
    return clf.net_.module_


def _assert_probabilities(proba, n_samples, n_classes):
    assert proba.shape == (n_samples, n_classes)
    assert np.isfinite(proba).all()
    assert (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


# --- input shapes -----------------------------------------------------------------


def test_flat_input_with_image_shape():
    X, y = _digits()
    clf = LongTailImageClassifier(image_shape=(1, 8, 8), **FAST).fit(X, y)
    assert clf.image_shape_ == (1, 8, 8)
    assert clf.n_features_in_ == 64
    assert clf.image_shape == (1, 8, 8)  # the parameter is left as given
    assert clf.predict(X[:7]).shape == (7,)
    _assert_probabilities(clf.predict_proba(X[:7]), 7, 10)


def test_image_shape_may_be_a_list():
    X, y = _digits()
    clf = LongTailImageClassifier(image_shape=[1, 8, 8], **FAST).fit(X, y)
    assert clf.image_shape_ == (1, 8, 8)


def test_three_dimensional_input_is_one_channel():
    X, y = _digits()
    images = X.reshape(-1, 8, 8)
    clf = LongTailImageClassifier(**FAST).fit(images, y)
    assert clf.image_shape_ == (1, 8, 8)
    assert clf.n_features_in_ == 64
    assert clf.image_shape is None
    proba = clf.predict_proba(images[:20])
    _assert_probabilities(proba, 20, 10)
    # The same images, flattened or with an explicit channel, predict the same.
    np.testing.assert_array_equal(clf.predict_proba(X[:20]), proba)
    np.testing.assert_array_equal(clf.predict_proba(images[:20, None]), proba)


def test_three_dimensional_nested_list_is_accepted():
    # A nested list has no `ndim`: its dimensions must be read from the array it
    # converts to, not from the object, or it would be taken for 2-D data and
    # rejected ("Found array with dim 3").
    X, y = _digits(60)
    images = X.reshape(-1, 8, 8)
    clf = LongTailImageClassifier(**FAST).fit(images.tolist(), y)
    assert clf.image_shape_ == (1, 8, 8)
    np.testing.assert_array_equal(
        clf.predict_proba(images.tolist()), clf.predict_proba(images)
    )


def test_four_dimensional_input_keeps_channels():
    X, y = _random_images(30, (3, 8, 10))
    clf = LongTailImageClassifier(**FAST).fit(X, y)
    assert clf.image_shape_ == (3, 8, 10)
    assert clf.n_features_in_ == 3 * 8 * 10
    first_conv = next(
        m for m in _module(clf).network.modules() if isinstance(m, nn.Conv2d)
    )
    assert first_conv.in_channels == 3
    proba = clf.predict_proba(X)
    _assert_probabilities(proba, 30, 3)
    np.testing.assert_array_equal(clf.predict_proba(X.reshape(30, -1)), proba)


def test_torch_tensor_input():
    X, y = _digits(60)
    images = torch.as_tensor(X.reshape(-1, 1, 8, 8), dtype=torch.float32)
    clf = LongTailImageClassifier(**FAST).fit(images, y)
    assert clf.image_shape_ == (1, 8, 8)
    assert clf.predict(images).shape == (60,)


@pytest.mark.parametrize(
    "bad_shape",
    [(64, 1), (1, 4, 16), (1, 2, 32), (2, 8, 4), (4, 4, 4)],
    ids=str,
)
def test_predict_with_other_image_shape_raises(bad_shape):
    X, y = _digits(60)
    clf = LongTailImageClassifier(**FAST).fit(X.reshape(-1, 1, 8, 8), y)
    other = X.reshape(-1, *bad_shape)
    with pytest.raises(ValueError, match=r"shape"):
        clf.predict(other)


def test_predict_with_other_number_of_features_raises():
    X, y = _digits(60)
    clf = LongTailImageClassifier(image_shape=(1, 8, 8), **FAST).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :49])
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :49].reshape(-1, 7, 7))


def test_five_dimensional_input_raises():
    X, y = _digits(60)
    with pytest.raises(ValueError, match="dimensions"):
        LongTailImageClassifier(**FAST).fit(X.reshape(-1, 1, 1, 8, 8), y)


@pytest.mark.parametrize(
    "image_shape",
    [
        (1, 7, 7),
        (3, 8, 8),
        (8, 8),
        (1, 8, 8, 1),
        # Every dimension must be a positive integer, checked before the
        # product: otherwise these would reach `reshape` (a numpy error not
        # naming image_shape) or be truncated by `int` ((1.5, 8, 8) would pass
        # as (1, 8, 8)).
        (1, -8, -8),
        (2, -4, -8),
        (1.5, 8, 8),
    ],
    ids=str,
)
def test_image_shape_not_matching_features_raises(image_shape):
    X, y = _digits(60)
    with pytest.raises(ValueError, match="image_shape"):
        LongTailImageClassifier(image_shape=image_shape, **FAST).fit(X, y)


def test_image_shape_conflicting_with_four_dimensional_input_raises():
    # An explicit image_shape must agree with the shape of 3-D/4-D X: ignoring it
    # would train channel-last data (N, 8, 8, 3) declared as (3, 8, 8) on
    # 8-channel 8 x 3 images.
    X, y = _random_images(30, (8, 8, 3))
    clf = LongTailImageClassifier(image_shape=(3, 8, 8), **FAST)
    with pytest.raises(ValueError, match="image_shape"):
        clf.fit(X, y)


@pytest.mark.parametrize(
    "n_features, expected",
    [
        (784, (1, 28, 28)),
        (64, (1, 8, 8)),
        (3 * 32 * 32, (3, 32, 32)),
        (3 * 5 * 5, (3, 5, 5)),
        (10, (1, 1, 10)),
        (50, (1, 1, 50)),
    ],
)
def test_image_shape_none_guesses(n_features, expected):
    X, y = _random_images(12, (n_features,))
    clf = LongTailImageClassifier(**FAST).fit(X, y)
    assert clf.image_shape_ == expected
    assert clf.n_features_in_ == n_features
    assert _module(clf).mean.shape == (1, expected[0], 1, 1)


# --- augmentation -----------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, augmented",
    [((1, 8, 8), True), ((3, 12, 9), True), ((1, 7, 7), False), ((1, 1, 20), False)],
    ids=str,
)
def test_auto_augmentation_for_images_of_at_least_8x8(shape, augmented):
    X, y = _random_images(12, shape)
    clf = LongTailImageClassifier(**FAST).fit(X, y)
    augmentation = _module(clf).augmentation
    if augmented:
        assert isinstance(augmentation, RandomCropFlip)
    else:
        assert augmentation is None


@pytest.mark.parametrize(
    "shape, mixing",
    [((1, 8, 8), "cmo"), ((3, 12, 9), "cmo"), ((1, 7, 7), None), ((1, 1, 20), None)],
    ids=str,
)
def test_auto_mixing_is_cmo_for_images_of_at_least_8x8(shape, mixing):
    X, y = _random_images(12, shape)
    clf = LongTailImageClassifier(**FAST)
    assert clf.mixup == "auto"
    clf.fit(X, y)
    assert clf.mixup_ == mixing
    assert clf.net_.mixing.method == mixing
    assert clf.get_params()["mixup"] == "auto"  # the parameter is left alone


@pytest.mark.parametrize("mixup", [None, "cutmix"])
def test_explicit_mixup_overrides_the_auto_rule(mixup):
    X, y = _random_images(12, (1, 8, 8))
    clf = LongTailImageClassifier(mixup=mixup, **FAST).fit(X, y)
    assert clf.mixup_ == clf.net_.mixing.method == mixup


def test_auto_augmentation_is_off_for_flat_tabular_rows():
    X, y = _random_images(12, (10,))
    clf = LongTailImageClassifier(**FAST).fit(X, y)
    assert clf.image_shape_ == (1, 1, 10)
    assert _module(clf).augmentation is None


def test_augment_false_gives_no_augmentation():
    X, y = _random_images(12, (1, 32, 32))
    clf = LongTailImageClassifier(augment=False, **FAST).fit(X, y)
    assert _module(clf).augmentation is None


def test_augment_true_forces_augmentation():
    X, y = _random_images(12, (1, 4, 4))
    clf = LongTailImageClassifier(augment=True, **FAST).fit(X, y)
    assert isinstance(_module(clf).augmentation, RandomCropFlip)
    assert _module(clf).augmentation.padding == 1


@pytest.mark.parametrize(
    "size, padding", [(32, 4), (8, 1), (16, 2), (24, 3), (28, 4), (9, 1)]
)
def test_auto_crop_padding_is_an_eighth_of_the_side(size, padding):
    X, y = _random_images(12, (1, size, size))
    clf = LongTailImageClassifier(**FAST).fit(X, y)
    assert _module(clf).augmentation.padding == padding


def test_auto_crop_padding_uses_the_shorter_side():
    # "auto" padding is an eighth of the shorter side, the side that also
    # decides "auto" augmentation. From the height alone, tall images (64 x 8)
    # would get 8 pixels of padding on an 8-pixel-wide image, and the crop
    # offsets 0 and 16 would leave a blank image (2 / 17 of training images).
    X, y = _random_images(12, (1, 64, 8))
    clf = LongTailImageClassifier(**FAST).fit(X, y)
    augmentation = _module(clf).augmentation
    assert augmentation.padding < 8
    assert augmentation.padding == 1


@pytest.mark.parametrize("crop_padding", [0, 3])
def test_explicit_crop_padding(crop_padding):
    X, y = _random_images(12, (1, 32, 32))
    clf = LongTailImageClassifier(crop_padding=crop_padding, **FAST).fit(X, y)
    assert _module(clf).augmentation.padding == crop_padding


@pytest.mark.parametrize("horizontal_flip", [True, False])
def test_horizontal_flip_reaches_the_module(horizontal_flip):
    X, y = _random_images(12, (1, 8, 8))
    clf = LongTailImageClassifier(horizontal_flip=horizontal_flip, **FAST).fit(X, y)
    assert _module(clf).augmentation.horizontal_flip is horizontal_flip


def _network_proba(clf, images, augmentation=None):
    """Softmax of the trained network on ``images``, computed outside the estimator.

    The standardization is applied by hand and the augmentation only when given;
    the network runs in eval mode (batch-norm running statistics), in float64,
    while the estimator runs float32: comparisons use a float32 tolerance.
    """
    module = _module(clf)
    network = copy.deepcopy(module.network).double().eval()
    inputs = torch.as_tensor(images, dtype=torch.float32)
    if augmentation is not None:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            inputs = augmentation.train()(inputs)
    inputs = (inputs.double() - module.mean.double()) / module.scale.double()
    with torch.no_grad():
        return torch.softmax(network(inputs), dim=1).numpy()


def test_augmentation_is_not_used_for_prediction():
    X, y = _digits(60)
    clf = LongTailImageClassifier(
        image_shape=(1, 8, 8),
        loss="ce",
        crop_padding=2,
        horizontal_flip=True,
        lr=0.05,
        lr_schedule="constant",
        warmup_epochs=0,
        **{**FAST, "max_epochs": 3},
    ).fit(X, y)
    augmentation = _module(clf).augmentation
    assert isinstance(augmentation, RandomCropFlip)
    images = X.reshape(-1, 1, 8, 8)
    proba = clf.predict_proba(X)
    # predict_proba is the network on the un-augmented images...
    # (float32 network against a float64 copy: agreement to ~1e-7, tolerance 1e-5)
    np.testing.assert_allclose(proba, _network_proba(clf, images), rtol=0, atol=1e-5)
    # ... which differs from the network on augmented ones: the check is not void.
    augmented = _network_proba(clf, images, copy.deepcopy(augmentation))
    assert np.abs(augmented - proba).max() > 1e-4
    # Repeated calls agree exactly: nothing random at prediction time.
    np.testing.assert_array_equal(clf.predict_proba(X), proba)


# --- normalization ----------------------------------------------------------------


def test_per_channel_normalization_is_learned_in_fit():
    rng = np.random.RandomState(0)
    n_samples, shape = 40, (3, 6, 8)
    centres = np.array([0.0, 10.0, -5.0]).reshape(1, 3, 1, 1)
    spreads = np.array([1.0, 4.0, 0.25]).reshape(1, 3, 1, 1)
    X = (centres + spreads * rng.standard_normal((n_samples, *shape))).astype(
        np.float32
    )
    y = np.arange(n_samples) % 2
    clf = LongTailImageClassifier(**FAST).fit(X, y)
    module = _module(clf)
    assert module.mean.shape == (1, 3, 1, 1)
    assert module.scale.shape == (1, 3, 1, 1)
    np.testing.assert_allclose(
        module.mean.numpy().ravel(), X.mean(axis=(0, 2, 3), dtype=np.float64), 1e-5
    )
    np.testing.assert_allclose(
        module.scale.numpy().ravel(), X.std(axis=(0, 2, 3), dtype=np.float64), 1e-5
    )
    # The statistics are buffers: they are saved with the model.
    buffers = dict(module.named_buffers())
    assert "mean" in buffers and "scale" in buffers


def test_constant_channel_gets_unit_scale():
    X, y = _random_images(20, (2, 8, 8))
    X[:, 1] = 3.0
    clf = LongTailImageClassifier(**FAST).fit(X, y)
    scale = _module(clf).scale.numpy().ravel()
    assert scale[1] == 1.0
    assert _module(clf).mean.numpy().ravel()[1] == pytest.approx(3.0)
    _assert_probabilities(clf.predict_proba(X), 20, 3)


# --- networks ---------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ["cnn", "resnet32"])
@pytest.mark.parametrize("loss, head_type", [("ldam", NormedLinear), ("ce", nn.Linear)])
def test_ldam_gets_a_cosine_head(architecture, loss, head_type):
    X, y = _random_images(16, (1, 8, 8))
    clf = LongTailImageClassifier(
        **{**FAST, "architecture": architecture, "loss": loss}
    ).fit(X, y)
    head = _module(clf).network.head
    assert type(head) is head_type
    assert head.out_features == 3


def test_architecture_cnn_is_small_cnn():
    X, y = _random_images(16, (2, 8, 8))
    clf = LongTailImageClassifier(**FAST).fit(X, y)
    network = _module(clf).network
    assert isinstance(network, SmallCNN)
    assert network.body[0].in_channels == 2


def test_resnet32_smoke():
    # The papers' architecture: ResNet-32, 3 stages x 5 basic blocks.
    X, y = _random_images(24, (3, 8, 8), n_classes=4)
    clf = LongTailImageClassifier(
        architecture="resnet32",
        loss="ldam",
        reweight_schedule="drw",
        max_epochs=2,
        batch_size=8,
        random_state=0,
    )
    clf.fit(X, y)
    network = _module(clf).network
    assert isinstance(network, CifarResNet)
    assert network.stem[0].in_channels == 3
    blocks = list(network.blocks)
    assert len(blocks) == 15
    assert all(isinstance(block, BasicBlock) for block in blocks)
    widths = [block.conv2.out_channels for block in blocks]
    assert widths == [16] * 5 + [32] * 5 + [64] * 5
    strides = [block.stride for block in blocks]
    assert strides == [1] * 5 + [2] + [1] * 4 + [2] + [1] * 4
    assert isinstance(network.head, NormedLinear)
    assert len(clf.history_) == 2
    assert np.isfinite(clf.history_[:, "train_loss"]).all()
    _assert_probabilities(clf.predict_proba(X), 24, 4)


class _TinyImageNet(nn.Module):
    """A custom network: records the arguments it was built with."""

    def __init__(self, n_classes, in_channels, width=4):
        super().__init__()
        self.n_classes = n_classes
        self.in_channels = in_channels
        self.width = width
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(width, n_classes)

    def forward(self, X):
        assert X.ndim == 4
        return self.head(self.body(X))


def test_custom_module_receives_n_classes_and_in_channels():
    X, y = _random_images(24, (2, 8, 8), n_classes=4)
    clf = LongTailImageClassifier(
        module=_TinyImageNet, module_params={"width": 5}, **FAST
    ).fit(X, y)
    network = _module(clf).network
    assert isinstance(network, _TinyImageNet)
    assert (network.n_classes, network.in_channels, network.width) == (4, 2, 5)
    # architecture is not used when a module is given.
    assert not any(isinstance(m, SmallCNN) for m in _module(clf).modules())
    _assert_probabilities(clf.predict_proba(X), 24, 4)


def test_custom_module_params_override_inferred_arguments():
    X, y = _random_images(24, (2, 8, 8), n_classes=4)
    clf = LongTailImageClassifier(
        module=_TinyImageNet, module_params={"n_classes": 4, "width": 3}, **FAST
    ).fit(X, y)
    assert _module(clf).network.width == 3


# --- losses and accuracy ----------------------------------------------------------


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_loss_fits_on_digits(loss):
    X, y = _digits(200)
    clf = LongTailImageClassifier(
        loss=loss,
        image_shape=(1, 8, 8),
        horizontal_flip=False,
        **{**FAST, "max_epochs": 2},
    ).fit(X, y)
    assert len(clf.history_) == 2
    assert np.isfinite(clf.history_[:, "train_loss"]).all()
    assert isinstance(clf.net_.criterion_, LOSSES[loss])
    proba = clf.predict_proba(X[:50])
    _assert_probabilities(proba, 50, 10)
    np.testing.assert_array_equal(
        clf.predict(X[:50]), clf.classes_[proba.argmax(axis=1)]
    )


def test_ldam_drw_learns_long_tailed_digits():
    data = load_digits_lt(imbalance_ratio=10, random_state=0)
    clf = LongTailImageClassifier(
        architecture="cnn",
        loss="ldam",
        reweight_schedule="drw",
        horizontal_flip=False,
        max_epochs=15,
        batch_size=32,
        random_state=0,
    ).fit(data.X_train, data.y_train)
    assert clf.image_shape_ == (1, 8, 8)
    np.testing.assert_array_equal(clf.class_counts_, data.class_counts)
    assert clf.class_counts_[0] >= 10 * clf.class_counts_[-1] - 1
    # Measured 0.95-0.96 over seeds; a conservative threshold.
    score = balanced_accuracy_score(data.y_test, clf.predict(data.X_test))
    assert score > 0.85


# --- speed options, pickling, devices ---------------------------------------------


def test_mixed_precision_and_channels_last_are_no_ops_on_cpu():
    X, y = _digits(120)
    common = {"image_shape": (1, 8, 8), "device": "cpu", **FAST, "max_epochs": 2}
    plain = LongTailImageClassifier(
        mixed_precision=False, channels_last=False, **common
    ).fit(X, y)
    fast = LongTailImageClassifier(
        mixed_precision=True, channels_last=True, **common
    ).fit(X, y)
    assert _module(fast).mixed_precision is True
    assert _module(fast).channels_last is True
    assert _module(plain).mixed_precision is False
    assert _module(plain).channels_last is False
    np.testing.assert_allclose(
        fast.predict_proba(X), plain.predict_proba(X), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(fast.predict(X), plain.predict(X))
    for name, parameter in _module(fast).named_parameters():
        assert parameter.dtype == torch.float32, name


def test_channels_last_is_on_by_default():
    clf = LongTailImageClassifier()
    assert clf.channels_last is True
    assert clf.mixed_precision is False


def test_pickle_round_trip_on_cpu():
    X, y = _digits(100)
    clf = LongTailImageClassifier(
        image_shape=(1, 8, 8), device="cpu", loss="ldam", **FAST
    ).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    assert restored.image_shape_ == (1, 8, 8)
    assert isinstance(_module(restored).augmentation, RandomCropFlip)
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(restored.predict(X.reshape(-1, 8, 8)), clf.predict(X))
    with pytest.raises(ValueError, match="shape"):
        restored.predict(X.reshape(-1, 4, 16))


def test_seeded_fits_are_reproducible():
    X, y = _digits(100)
    first = LongTailImageClassifier(image_shape=(1, 8, 8), **FAST).fit(X, y)
    second = LongTailImageClassifier(image_shape=(1, 8, 8), **FAST).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_cuda_mixed_precision_channels_last():
    X, y = _digits(200)
    clf = LongTailImageClassifier(
        image_shape=(1, 8, 8),
        device="cuda",
        mixed_precision=True,
        channels_last=True,
        horizontal_flip=False,
        **{**FAST, "max_epochs": 2},
    ).fit(X, y)
    assert clf.device_.type == "cuda"
    assert np.isfinite(clf.history_[:, "train_loss"]).all()
    proba = clf.predict_proba(X)
    _assert_probabilities(proba, 200, 10)

    module = _module(clf)
    convolution_weights = [p for p in module.parameters() if p.ndim == 4]
    assert convolution_weights
    for weight in convolution_weights:
        assert weight.is_cuda
        assert weight.is_contiguous(memory_format=torch.channels_last)

    # The training forward pass runs under bfloat16 autocast (and the loss
    # copes with its output); prediction stays in float32.
    batch = torch.as_tensor(X[:32].reshape(-1, 1, 8, 8), device="cuda").float()
    targets = torch.as_tensor(y[:32], device="cuda")
    was_training = module.training
    try:
        module.train()
        logits = module(batch)
        assert logits.dtype == torch.bfloat16
        loss = clf.net_.criterion_(logits, targets)
        assert loss.dtype == torch.float32
        assert torch.isfinite(loss)
        loss.backward()
        for parameter in module.parameters():
            assert parameter.grad is None or torch.isfinite(parameter.grad).all()
        module.eval()
        with torch.no_grad():
            assert module(batch).dtype == torch.float32
    finally:
        module.train(was_training)
        module.zero_grad(set_to_none=True)


@pytest.mark.skipif(
    not os.path.isdir(FASHION_MNIST_HOME), reason="Fashion-MNIST is not installed"
)
def test_fashion_mnist_lt_cnn():
    data = load_fashion_mnist_lt(FASHION_MNIST_HOME, imbalance_ratio=100)
    rng = np.random.RandomState(0)
    train = rng.choice(data.y_train.size, 2000, replace=False)
    test = rng.choice(data.y_test.size, 500, replace=False)
    X_train, y_train = data.X_train[train], data.y_train[train]
    clf = LongTailImageClassifier(architecture="cnn", max_epochs=1, random_state=0)
    clf.fit(X_train, y_train)
    assert clf.image_shape_ == (1, 28, 28)
    assert _module(clf).augmentation.padding == 4
    proba = clf.predict_proba(data.X_test[test])
    _assert_probabilities(proba, 500, clf.classes_.size)
    assert np.isfinite(clf.history_[:, "train_loss"]).all()


@pytest.mark.parametrize(
    ("shape", "n_images", "expected"),
    [
        ((3, 32, 32), 10_000, CifarResNet),
        ((3, 32, 32), 9_999, SmallCNN),
        ((1, 28, 28), 20_000, SmallCNN),
        ((1, 8, 8), 100, SmallCNN),
    ],
)
def test_auto_architecture_follows_image_and_data_size(shape, n_images, expected):
    clf = LongTailImageClassifier()
    clf.image_shape_ = shape
    clf.class_counts_ = np.array([n_images - n_images // 2, n_images // 2])
    assert isinstance(clf._build_network(int(np.prod(shape)), 2, False), expected)


@pytest.mark.parametrize(
    ("shape", "flips"),
    [((3, 32, 32), True), ((3, 16, 16), False), ((1, 32, 32), False)],
)
def test_auto_flips_only_large_colour_images(shape, flips):
    clf = LongTailImageClassifier()
    clf.image_shape_ = shape
    assert clf._training_augmentation().horizontal_flip is flips
    clf.set_params(horizontal_flip=True)
    assert clf._training_augmentation().horizontal_flip is True
