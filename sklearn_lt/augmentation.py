"""Batch-wise image augmentation on the training device.

The long-tail papers train CIFAR networks with pad-and-random-crop and random
horizontal flips. Here both are done on a whole ``(N, C, H, W)`` batch at once
with tensor indexing, on whatever device the batch lives, with no per-image
Python work. Random numbers come from torch's generator for that device, which
the classifiers seed (and isolate from the caller's state) in ``fit``.
"""

import torch
from torch import nn

__all__ = ["RandomCropFlip"]


class RandomCropFlip(nn.Module):
    """Zero-pad, crop back to size at a random offset, and randomly flip.

    Active only in training mode; in eval mode the input is returned unchanged.

    Parameters
    ----------
    padding : int, default=4
        Pixels of zero padding on each side before cropping (4 for 32x32 CIFAR
        images in the papers); 0 disables cropping.
    horizontal_flip : bool, default=True
        Flip each image left-right with probability 1/2. Turn it off for data
        whose meaning changes when mirrored (digits, text).

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.augmentation import RandomCropFlip
    >>> augment = RandomCropFlip(padding=2)
    >>> images = torch.ones(8, 3, 16, 16)
    >>> augment(images).shape
    torch.Size([8, 3, 16, 16])
    >>> torch.equal(augment.eval()(images), images)
    True
    """

    def __init__(self, padding=4, horizontal_flip=True):
        super().__init__()
        if int(padding) < 0:
            raise ValueError(f"padding must be >= 0; got {padding!r}.")
        self.padding = int(padding)
        self.horizontal_flip = bool(horizontal_flip)

    def forward(self, images):
        if not self.training:
            return images
        if images.ndim != 4:
            raise ValueError(
                f"RandomCropFlip needs (N, C, H, W) images; got shape "
                f"{tuple(images.shape)}."
            )
        n_images, _, height, width = images.shape
        device = images.device
        if self.padding:
            pad = self.padding
            padded = nn.functional.pad(images, (pad, pad, pad, pad))
            top = torch.randint(0, 2 * pad + 1, (n_images, 1), device=device)
            left = torch.randint(0, 2 * pad + 1, (n_images, 1), device=device)
            rows = (top + torch.arange(height, device=device)).unsqueeze(2)
            cols = (left + torch.arange(width, device=device)).unsqueeze(1)
            batch = torch.arange(n_images, device=device).view(-1, 1, 1)
            # Advanced indexing on dims 0, 2, 3 gives (N, H, W, C).
            images = padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)
        if self.horizontal_flip:
            flip = torch.rand(n_images, device=device) < 0.5
            images = torch.where(flip.view(-1, 1, 1, 1), images.flip(3), images)
        return images

    def extra_repr(self):
        return f"padding={self.padding}, horizontal_flip={self.horizontal_flip}"
