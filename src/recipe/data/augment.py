"""Batch augmentations applied to training batches only, on the device the batch lives on."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from recipe.errors import config_error


class RandomShift(nn.Module):
    """Translate each sample by a random whole number of steps in ``[-max_shift, max_shift]``, filling with zeros.

    Shifts the last ``spatial_dims`` axes independently: a 1-D signal along its length, an image along height and
    width. Written by hand because torchvision's ``RandomAffine`` takes one shift per batch and 2-D images only.

    Args:
        max_shift: the largest shift in steps (signal samples or pixels); 0 leaves batches unchanged.
        spatial_dims: how many trailing axes to shift: 1 for signals, 2 for images.
    """

    def __init__(self, max_shift: int = 0, spatial_dims: int = 1) -> None:
        super().__init__()
        if max_shift < 0:
            raise config_error("data.augment.max_shift", max_shift, "must be >= 0")
        if spatial_dims not in (1, 2):
            raise config_error("data.augment.spatial_dims", spatial_dims, "1 (signals) or 2 (images)")
        self.max_shift, self.spatial_dims = max_shift, spatial_dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.max_shift == 0:
            return x
        if x.ndim < self.spatial_dims + 1:
            raise config_error(
                "data.augment.spatial_dims", self.spatial_dims, f"too many for a batch of shape {tuple(x.shape)}"
            )
        for axis in range(x.ndim - self.spatial_dims, x.ndim):
            x = self._shift_axis(x, axis)
        return x

    def _shift_axis(self, x: torch.Tensor, axis: int) -> torch.Tensor:
        k, size = self.max_shift, x.shape[axis]
        moved = x.movedim(axis, -1)
        padded = F.pad(moved, (k, k))
        offsets = torch.randint(0, 2 * k + 1, (x.shape[0],), device=x.device)
        index = offsets.view(-1, *[1] * (moved.ndim - 1)) + torch.arange(size, device=x.device)
        return padded.gather(-1, index.expand_as(moved)).movedim(-1, axis)


class RandomResizedCropFlip(nn.Module):
    """Per image: a random crop of ``scale`` of its area and ``ratio`` aspect, resized back to the full size, a
    random translation by up to ``translate`` of its size, and a horizontal flip with probability ``flip``.

    One affine resampling (``affine_grid`` + ``grid_sample``) per batch, on the batch's device. Written by hand
    because torchvision, whose transforms do this per image, cannot be installed beside the CPU torch wheel here.

    Args:
        scale: range of the crop's area, as a fraction of the image's.
        ratio: range of the crop's aspect ratio (width / height).
        translate: largest shift, as a fraction of the width and height.
        flip: probability of a horizontal flip.
    """

    def __init__(
        self,
        scale: tuple[float, float] = (0.8, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        translate: float = 0.0,
        flip: float = 0.5,
    ) -> None:
        super().__init__()
        if not 0 < scale[0] <= scale[1] <= 1:
            raise config_error("data.augment.scale", list(scale), "[low, high] with 0 < low <= high <= 1")
        if not 0 < ratio[0] <= ratio[1]:
            raise config_error("data.augment.ratio", list(ratio), "[low, high] with 0 < low <= high")
        if not 0 <= translate < 1:
            raise config_error("data.augment.translate", translate, "must be in [0, 1)")
        if not 0 <= flip <= 1:
            raise config_error("data.augment.flip", flip, "a probability in [0, 1]")
        self.scale, self.ratio, self.translate, self.flip = tuple(scale), tuple(ratio), translate, flip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise config_error("data.augment", type(self).__name__, f"takes image batches, got shape {tuple(x.shape)}")
        n = x.shape[0]
        uniform = lambda low, high: torch.empty(n, device=x.device).uniform_(low, high)  # noqa: E731
        area = uniform(*self.scale)
        aspect = torch.exp(uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
        width, height = (area * aspect).sqrt().clamp(max=1), (area / aspect).sqrt().clamp(max=1)
        # The crop's centre lies where the crop stays inside the image, then moves by the translation.
        cx = uniform(-1, 1) * (1 - width) + uniform(-1, 1) * 2 * self.translate
        cy = uniform(-1, 1) * (1 - height) + uniform(-1, 1) * 2 * self.translate
        sign = torch.where(torch.rand(n, device=x.device) < self.flip, -1.0, 1.0)
        theta = torch.zeros(n, 2, 3, device=x.device)
        theta[:, 0, 0], theta[:, 0, 2] = width * sign, cx
        theta[:, 1, 1], theta[:, 1, 2] = height, cy
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
