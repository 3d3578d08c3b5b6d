"""A multilayer perceptron: Linear, optional norm, activation and dropout per hidden layer."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from recipe.errors import config_error, require_fraction
from recipe.models.layers import Activation, Init, Norm, check_norm, init_weights
from recipe.models.layers import activation as make_activation
from recipe.models.layers import norm as make_norm


class MLP(nn.Module):
    """Flattens the input and classifies it.

    Args:
        input_shape: shape of one sample, from the data module.
        num_classes: number of classes, from the data module.
        hidden_sizes: width of each hidden layer.
        norm: ``batch``, ``group``, ``layer`` or ``none`` after each hidden Linear (whose bias is then dropped:
            the norm's shift replaces it).
        dropout: dropout probability after each hidden activation.
        activation: name of the activation (``relu``, ``gelu``, ``silu``, ``tanh``, ...).
        init: ``kaiming``, ``xavier`` or ``default`` (see ``layers.init_weights``).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden_sizes: Sequence[int] = (256, 256),
        norm: Norm = "batch",
        dropout: float = 0.1,
        activation: Activation = "relu",
        init: Init = "kaiming",
    ) -> None:
        super().__init__()
        require_fraction("model.dropout", dropout)
        if any(h < 1 for h in hidden_sizes):
            raise config_error("model.hidden_sizes", list(hidden_sizes), "every width must be a positive integer")
        check_norm(norm)
        self.input_shape = tuple(input_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(self.input_shape)
        for hidden in hidden_sizes:
            layers += [
                nn.Linear(width, hidden, bias=norm == "none"),
                make_norm(norm, hidden),
                make_activation(activation),
                nn.Dropout(dropout),
            ]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)
        init_weights(self, init, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
