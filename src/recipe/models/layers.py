"""Small building blocks shared by the architectures: activations, norms, weight init and shape checks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, get_args

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
# The choices as types: the config check (recipe.validation.checks) reads them from the constructors' signatures.
Activation = Literal["relu", "gelu", "silu", "tanh", "sigmoid", "leaky_relu"]
Norm = Literal["batch", "group", "layer", "none"]
Init = Literal["kaiming", "xavier", "default"]
NORMS = get_args(Norm)
INITS = get_args(Init)
BATCH_NORM_BY_DIMS: dict[int, type[nn.Module]] = {0: nn.BatchNorm1d, 1: nn.BatchNorm1d, 2: nn.BatchNorm2d}
CONVS: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d}


def activation(name: str) -> nn.Module:
    """An activation module by name."""
    if name not in ACTIVATIONS:
        raise config_error("model.activation", name, f"choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def check_norm(kind: str) -> None:
    """Raise a ``ConfigError`` unless ``kind`` names a norm."""
    if kind not in NORMS:
        raise config_error("model.norm", kind, f"choose one of {list(NORMS)}")


def norm(kind: str, channels: int, spatial_dims: int = 0, groups: int = 32) -> nn.Module:
    """A normalization layer over ``channels`` features, followed by ``spatial_dims`` (0, 1 or 2) spatial axes.

    Args:
        kind: ``batch`` (per channel over the batch), ``group`` (``groups`` channel groups per sample, fewer when
            ``channels`` is not divisible), ``layer`` (every feature of a sample; GroupNorm with one group on
            feature maps), or ``none``.
        channels: number of channels (or features when ``spatial_dims`` is 0).
        spatial_dims: 0 for ``(N, C)`` inputs, 1 for ``(N, C, L)``, 2 for ``(N, C, H, W)``.
        groups: the most groups ``group`` uses (the recipe's 32).
    """
    check_norm(kind)
    if kind == "batch":
        return BATCH_NORM_BY_DIMS[spatial_dims](channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(groups, channels), channels)
    if kind == "layer":
        return nn.LayerNorm(channels) if spatial_dims == 0 else nn.GroupNorm(1, channels)
    return nn.Identity()


def conv_blocks(
    in_channels: int, widths: Sequence[int], kernel_size: int, norm_kind: str, activation_name: str, spatial_dims: int
) -> nn.Sequential:
    """Conv-Norm-Activation blocks of the given output ``widths``, 'same' padding; no conv bias when a norm follows."""
    layers: list[nn.Module] = []
    for out in widths:
        layers += [
            CONVS[spatial_dims](in_channels, out, kernel_size, padding=kernel_size // 2, bias=norm_kind == "none"),
            norm(norm_kind, out, spatial_dims),
            activation(activation_name),
        ]
        in_channels = out
    return nn.Sequential(*layers)


def init_weights(model: nn.Module, scheme: str, nonlinearity: str = "relu") -> None:
    """Re-initialize every Linear and Conv weight of ``model`` (biases to zero); norms keep scale 1, shift 0.

    Args:
        model: the network, initialized in place.
        scheme: ``kaiming`` (He: std = sqrt(2 / fan_in), for the ReLU family), ``xavier`` (Glorot:
            std = sqrt(2 / (fan_in + fan_out)), for tanh and sigmoid) or ``default`` (PyTorch's own, untouched).
        nonlinearity: the activation's name, for Kaiming's gain (``leaky_relu`` keeps its own; others use ReLU's).
    """
    if scheme not in INITS:
        raise config_error("model.init", scheme, f"choose one of {list(INITS)}")
    if scheme == "default":
        return
    gain_of = "leaky_relu" if nonlinearity == "leaky_relu" else "relu"
    for module in model.modules():
        if not isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            continue
        if scheme == "kaiming":
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity=gain_of)
        else:
            nn.init.xavier_normal_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def check_input_shape(model: str, input_shape: Sequence[int], ndims: Sequence[int], expected: str) -> tuple[int, ...]:
    """``input_shape`` as a tuple, or a ``ConfigError`` naming the data's shape and the shape ``model`` takes.

    Args:
        model: the model's config name, for the message.
        input_shape: shape of one sample, from the data module.
        ndims: the numbers of dimensions the model accepts.
        expected: the accepted shapes in words, e.g. ``(channels, length) or (channels, height, width)``.
    """
    shape = tuple(int(d) for d in input_shape)
    if len(shape) not in ndims or any(d < 1 for d in shape):
        raise config_error("model", model, f"takes inputs of shape {expected}, but the data gives {shape}")
    return shape
