"""Tests of sklearn_lt.augmentation.RandomCropFlip."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from sklearn_lt.augmentation import RandomCropFlip


def _images(n_images=64, channels=3, height=8, width=8, device="cpu", seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n_images, channels, height, width, generator=generator)
    return images.to(device)


def _shifted(images, dy, dx):
    """``images`` moved down by ``dy`` and right by ``dx``, with zero fill."""
    height, width = images.shape[-2:]
    pad = max(abs(dy), abs(dx))
    padded = F.pad(images, (pad, pad, pad, pad))
    top, left = pad - dy, pad - dx
    return padded[..., top : top + height, left : left + width]


def test_shifted_helper():
    image = torch.arange(9.0).view(1, 1, 3, 3)
    expected = torch.tensor([[[[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 3.0, 4.0]]]])
    assert torch.equal(_shifted(image, 1, 1), expected)
    assert torch.equal(_shifted(image, 0, 0), image)


# --- eval mode and shapes ---------------------------------------------------------


def test_eval_mode_is_identity(device):
    images = _images(device=device)
    augment = RandomCropFlip(padding=4, horizontal_flip=True).eval()
    out = augment(images)
    assert out is images
    # Not even malformed input is touched outside training.
    flat = images[:, 0]
    assert augment(flat) is flat


@pytest.mark.parametrize("padding", [0, 1, 3, 10])
@pytest.mark.parametrize("shape", [(5, 1, 8, 8), (3, 3, 7, 12), (2, 2, 1, 9)])
def test_train_mode_keeps_shape_dtype_device(device, padding, shape):
    images = torch.rand(*shape, device=device)
    augment = RandomCropFlip(padding=padding)
    assert augment.training
    out = augment(images)
    assert out.shape == images.shape
    assert out.dtype == images.dtype
    assert out.device == images.device


def test_no_padding_no_flip_is_identity_in_training(device):
    images = _images(device=device)
    out = RandomCropFlip(padding=0, horizontal_flip=False)(images)
    assert torch.equal(out, images)


def test_extra_repr():
    assert repr(RandomCropFlip(2, False)) == (
        "RandomCropFlip(padding=2, horizontal_flip=False)"
    )


# --- flips ------------------------------------------------------------------------


def test_flip_only_gives_input_or_mirror(device):
    images = _images(n_images=256, device=device)
    torch.manual_seed(0)
    out = RandomCropFlip(padding=0, horizontal_flip=True)(images)
    same = (out == images).flatten(1).all(dim=1)
    mirrored = (out == images.flip(3)).flatten(1).all(dim=1)
    # Random images are never symmetric, so exactly one of the two holds.
    assert not (same & mirrored).any()
    assert (same | mirrored).all()
    assert same.any() and mirrored.any()


def test_flip_probability_is_one_half(device):
    n_images = 4096
    images = _images(n_images=n_images, channels=1, device=device)
    torch.manual_seed(1)
    out = RandomCropFlip(padding=0, horizontal_flip=True)(images)
    mirrored = (out == images.flip(3)).flatten(1).all(dim=1)
    # Standard deviation of the fraction is 0.5 / 64 ~ 0.008.
    assert abs(mirrored.float().mean().item() - 0.5) < 0.05


def test_flip_is_the_same_for_all_channels(device):
    images = _images(n_images=256, channels=3, device=device)
    torch.manual_seed(2)
    out = RandomCropFlip(padding=0, horizontal_flip=True)(images)
    mirrored = (out == images.flip(3)).all(dim=(2, 3))  # (N, C)
    assert (mirrored.all(dim=1) | ~mirrored.any(dim=1)).all()


# --- crops ------------------------------------------------------------------------


@pytest.mark.parametrize("padding", [1, 2, 3])
def test_crop_moves_a_bright_pixel_by_at_most_padding(device, padding):
    n_images, size, row, col = 4096, 16, 8, 5
    images = torch.zeros(n_images, 1, size, size, device=device)
    images[:, 0, row, col] = 7.0
    torch.manual_seed(3)
    out = RandomCropFlip(padding=padding, horizontal_flip=False)(images)
    # The pixel is at least `padding` away from every border: it always stays.
    torch.testing.assert_close(out.sum(dim=(1, 2, 3)), images.sum(dim=(1, 2, 3)))
    assert ((out != 0).sum(dim=(1, 2, 3)) == 1).all()
    flat = out.flatten(1).argmax(dim=1)
    new_row, new_col = flat // size, flat % size
    dy, dx = new_row - row, new_col - col
    assert dy.abs().max() <= padding and dx.abs().max() <= padding
    # Every shift in [-padding, padding]^2 occurs (a uniform offset).
    shifts = set(zip(dy.tolist(), dx.tolist(), strict=True))
    assert shifts == set(itertools.product(range(-padding, padding + 1), repeat=2))


def test_crop_can_push_a_border_pixel_out(device):
    # A pixel on the border leaves the image when shifted outwards (zero fill).
    n_images, padding = 2048, 2
    images = torch.zeros(n_images, 1, 8, 8, device=device)
    images[:, 0, 0, 0] = 1.0
    torch.manual_seed(4)
    out = RandomCropFlip(padding=padding, horizontal_flip=False)(images)
    sums = out.sum(dim=(1, 2, 3))
    assert set(sums.unique().tolist()) == {0.0, 1.0}
    kept = sums == 1
    flat = out[kept].flatten(1).argmax(dim=1)
    assert (flat // 8).max() <= padding and (flat % 8).max() <= padding
    # Kept with probability (padding + 1)^2 / (2 * padding + 1)^2 = 9 / 25.
    assert abs(kept.float().mean().item() - 9 / 25) < 0.05


@pytest.mark.parametrize("padding", [1, 2])
def test_crop_is_a_zero_filled_translation(device, padding):
    images = _images(n_images=512, channels=3, height=6, width=9, device=device)
    torch.manual_seed(5)
    out = RandomCropFlip(padding=padding, horizontal_flip=False)(images)
    offsets = range(-padding, padding + 1)
    matches = torch.stack(
        [
            (out == _shifted(images, dy, dx)).flatten(1).all(dim=1)
            for dy, dx in itertools.product(offsets, offsets)
        ]
    )  # (n_shifts, N): all channels of an image move together
    assert (matches.sum(dim=0) == 1).all()
    assert matches.any(dim=1).all()


def test_crop_and_flip_together(device):
    padding = 2
    images = _images(n_images=512, channels=2, height=8, width=8, device=device)
    torch.manual_seed(6)
    out = RandomCropFlip(padding=padding, horizontal_flip=True)(images)
    offsets = range(-padding, padding + 1)
    candidates = [
        _shifted(source, dy, dx)
        for source in (images, images.flip(3))
        for dy, dx in itertools.product(offsets, offsets)
    ]
    matches = torch.stack(
        [(out == candidate).flatten(1).all(dim=1) for candidate in candidates]
    )
    assert matches.any(dim=0).all()
    n_shifts = len(offsets) ** 2
    flipped = matches[n_shifts:].any(dim=0)
    assert 0.4 < flipped.float().mean().item() < 0.6


def test_large_padding_can_blank_the_image(device):
    images = torch.ones(1024, 1, 4, 4, device=device)
    torch.manual_seed(7)
    out = RandomCropFlip(padding=8, horizontal_flip=False)(images)
    assert out.shape == images.shape
    sums = out.sum(dim=(1, 2, 3))
    # Offsets 0 or 16 in a direction (probability 1 - (15/17)^2 ~ 0.22) blank it.
    assert (sums == 0).any() and (sums > 0).any() and sums.max() <= 16


# --- randomness -------------------------------------------------------------------


def test_deterministic_under_manual_seed(device):
    images = _images(n_images=128, device=device)
    augment = RandomCropFlip(padding=2)
    torch.manual_seed(123)
    first = augment(images)
    torch.manual_seed(123)
    second = augment(images)
    torch.manual_seed(124)
    third = augment(images)
    assert torch.equal(first, second)
    assert not torch.equal(first, third)


def test_successive_calls_differ(device):
    images = _images(n_images=128, device=device)
    augment = RandomCropFlip(padding=2)
    torch.manual_seed(0)
    assert not torch.equal(augment(images), augment(images))


def test_large_batch_is_augmented_per_image(device):
    # Whole-batch tensor indexing: a big batch works and each image gets its own
    # crop and flip (4096 images, 25 shifts x 2 flips).
    padding = 2
    n_images = 4096
    images = torch.zeros(n_images, 3, 12, 12, device=device)
    # Column 2 moves to 0..4, its mirror (column 9) to 7..11: no overlap.
    images[:, :, 5, 2] = 1.0
    torch.manual_seed(8)
    out = RandomCropFlip(padding=padding, horizontal_flip=True)(images)
    assert out.shape == (n_images, 3, 12, 12)
    positions = out[:, 0].flatten(1).argmax(dim=1)
    assert torch.equal(out[:, 1], out[:, 0]) and torch.equal(out[:, 2], out[:, 0])
    # 5 rows x (5 unflipped + 5 flipped columns) = 50 distinct positions.
    assert positions.unique().numel() == 50


def test_channels_last_input(device):
    images = _images(n_images=64, device=device)
    torch.manual_seed(9)
    expected = RandomCropFlip(padding=2)(images)
    torch.manual_seed(9)
    out = RandomCropFlip(padding=2)(
        images.contiguous(memory_format=torch.channels_last)
    )
    assert torch.equal(out, expected)


# --- validation -------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(8, 8), (4, 8, 8), (2, 1, 1, 8, 8)])
def test_wrong_number_of_dimensions_raises(shape):
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        RandomCropFlip()(torch.zeros(shape))


@pytest.mark.parametrize("padding", [-1, -4])
def test_negative_padding_raises(padding):
    with pytest.raises(ValueError, match="padding"):
        RandomCropFlip(padding=padding)


def test_defaults():
    augment = RandomCropFlip()
    assert augment.padding == 4
    assert augment.horizontal_flip is True
    assert list(augment.parameters()) == []
