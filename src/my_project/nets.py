"""Nets of your own. A net is a plain ``nn.Module`` whose constructor takes ``input_shape`` (one sample's shape)
and ``num_classes`` (its outputs: the classes, or 1 for regression) from the data, plus any knobs of yours, which
its yaml in ``conf/model/`` lists (``conf/model/my_net.yaml``). ``forward`` returns logits."""

from __future__ import annotations

import math

import torch
from torch import nn


class MyNet(nn.Module):
    """A one-hidden-layer perceptron: flatten, Linear, ReLU, Linear. Replace it with your own architecture.

    Args:
        input_shape: the shape of one sample, e.g. ``(64,)`` or ``(1, 8, 8)``; given by the data module.
        num_classes: outputs of the last layer; given by the data module.
        hidden: width of the hidden layer.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(input_shape), hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
