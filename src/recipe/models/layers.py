"""Small building blocks shared by the architectures."""

from __future__ import annotations

from torch import nn

from recipe.errors import config_error

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
}


def activation(name: str) -> nn.Module:
    """An activation module by name."""
    if name not in ACTIVATIONS:
        raise config_error("model.activation", name, f"choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()
