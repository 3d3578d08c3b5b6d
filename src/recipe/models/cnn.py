"""A convolutional network of Conv-Norm-Activation blocks for 1-D signals or 2-D images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from recipe.errors import config_error, require_fraction, require_positive_int
from recipe.models.layers import Activation, Init, Norm, check_input_shape, check_norm, conv_blocks, init_weights

POOLS: dict[str, dict[int, type[nn.Module]]] = {
    "max": {1: nn.MaxPool1d, 2: nn.MaxPool2d},
    "avg": {1: nn.AvgPool1d, 2: nn.AvgPool2d},
}


class CNN(nn.Module):
    """Stages of Conv-Norm-Activation blocks, pooling between stages, global average pooling, dropout, Linear.

    Conv1d for ``(channels, length)`` inputs, Conv2d for ``(channels, height, width)``. A conv followed by a norm
    has no bias (the norm's shift replaces it).

    Args:
        input_shape: shape of one sample, from the data module.
        num_classes: number of classes, from the data module.
        channels: output width of each stage.
        blocks_per_stage: Conv-Norm-Activation blocks in each stage.
        kernel_size: conv kernel size ('same' padding, so only pooling shrinks the signal).
        pool: ``max``, ``avg`` or ``none``: halves the spatial size between stages.
        norm: ``batch``, ``group``, ``layer`` or ``none`` after each conv.
        activation: name of the activation.
        dropout: dropout probability before the head.
        init: ``kaiming``, ``xavier`` or ``default`` (see ``layers.init_weights``).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (32, 64, 128),
        blocks_per_stage: int = 1,
        kernel_size: int = 3,
        pool: Literal["max", "avg", "none"] = "max",
        norm: Norm = "batch",
        activation: Activation = "relu",
        dropout: float = 0.1,
        init: Init = "kaiming",
    ) -> None:
        super().__init__()
        shape = check_input_shape(
            "cnn",
            input_shape,
            (2, 3),
            "(channels, length) or (channels, height, width) (digits: data.as_image=true)",
        )
        if not channels or any(c < 1 for c in channels):
            raise config_error("model.channels", list(channels), "a non-empty list of positive widths")
        require_positive_int("model.blocks_per_stage", blocks_per_stage)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise config_error("model.kernel_size", kernel_size, "must be a positive odd number ('same' padding)")
        if pool not in (*POOLS, "none"):
            raise config_error("model.pool", pool, f"choose one of {[*POOLS, 'none']}")
        require_fraction("model.dropout", dropout)
        check_norm(norm)
        dims = len(shape) - 1
        layers: list[nn.Module] = []
        width = shape[0]
        for stage, out in enumerate(channels):
            if stage > 0 and pool != "none":
                layers.append(POOLS[pool][dims](2, ceil_mode=True))
            layers.append(conv_blocks(width, [out] * blocks_per_stage, kernel_size, norm, activation, dims))
            width = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, num_classes))
        self.dims = dims
        init_weights(self, init, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        return self.head(features.mean(dim=tuple(range(2, 2 + self.dims))))
