"""Batch augmentations applied to training batches only, on the device the batch lives on."""

from __future__ import annotations

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
            raise config_error("data.augment.spatial_dims", self.spatial_dims, f"too many for a batch of shape {tuple(x.shape)}")
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
