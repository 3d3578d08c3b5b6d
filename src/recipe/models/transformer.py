"""A small pre-norm transformer encoder over the tokens of a signal, a feature vector or an image."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from recipe.errors import config_error, require_fraction, require_positive_int
from recipe.models.layers import CONVS, Activation, Init, Norm, check_input_shape, check_norm, conv_blocks, init_weights
from recipe.models.layers import activation as make_activation
from recipe.models.layers import norm as make_norm

TOKEN_NORMS = ("layer", "none")  # batch and group norms normalize channels of (N, C, ...) maps, not tokens
POOLINGS = ("cls", "mean")


class Transformer(nn.Module):
    """Optional conv stem, patch embedding, learned positions, pre-norm encoder layers, a final norm, pooling, a head.

    Tokens: ``(features,)`` inputs are ``features`` tokens of 1 value; ``(channels, length)`` inputs are ``length``
    tokens of ``channels`` values; ``(channels, height, width)`` inputs are pixels. ``patch_size`` groups that many
    consecutive positions (a ``patch_size`` x ``patch_size`` square for images) into one token, embedded by a conv
    of stride ``patch_size`` (ViT's linear patch projection). Each layer is torch's ``TransformerEncoderLayer``
    with ``norm_first=True``: ``x + Attention(Norm(x))``, then ``x + MLP(Norm(x))``, dropout in both branches.
    A conv stem (Conv-Norm-Activation blocks before the patch embedding, Xiao et al. 2021, "Early convolutions help
    transformers see better") gives the tokens local, shift-tolerant features, which small datasets cannot teach
    attention alone.

    Args:
        input_shape: shape of one sample, from the data module.
        num_classes: number of classes, from the data module.
        dim: token width.
        depth: number of encoder layers.
        heads: attention heads; must divide ``dim``.
        mlp_ratio: hidden width of each layer's MLP as a multiple of ``dim``.
        dropout: dropout on the embedded tokens, the attention weights and both residual branches.
        patch_size: positions per token along each spatial axis; must divide every spatial size.
        pool: ``cls`` (a learned class token, read out after the last layer) or ``mean`` (average of the tokens).
        norm: ``layer`` (LayerNorm before attention, before the MLP and before the head) or ``none``.
        activation: the MLP's activation (``gelu``, ``relu``, ...).
        stem_channels: widths of the stem's Conv-Norm-Activation blocks ('same' padding); empty: no stem.
        stem_kernel: kernel size of the stem's convs (odd).
        stem_norm: ``batch``, ``group``, ``layer`` or ``none`` after each stem conv.
        init: ``kaiming``, ``xavier`` or ``default`` for every Linear and conv (see ``layers.init_weights``); the
            attention's input projection keeps torch's Xavier init.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        dim: int = 64,
        depth: int = 3,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        dropout: float = 0.1,
        patch_size: int = 1,
        pool: Literal["cls", "mean"] = "cls",
        norm: Norm = "layer",
        activation: Activation = "gelu",
        stem_channels: Sequence[int] = (),
        stem_kernel: int = 3,
        stem_norm: Norm = "batch",
        init: Init = "xavier",
    ) -> None:
        super().__init__()
        shape = check_input_shape(
            "transformer", input_shape, (1, 2, 3), "(features,), (channels, length) or (channels, height, width)"
        )
        if len(shape) == 1:
            shape = (1, *shape)  # a feature vector is a 1-channel signal: one token per feature
        for key, value in (("dim", dim), ("depth", depth), ("heads", heads), ("patch_size", patch_size)):
            require_positive_int(f"model.{key}", value)
        if dim % heads:
            raise config_error("model.heads", heads, f"must divide model.dim={dim}")
        if any(size % patch_size for size in shape[1:]):
            raise config_error("model.patch_size", patch_size, f"must divide the input's spatial sizes {shape[1:]}")
        if not mlp_ratio > 0:
            raise config_error("model.mlp_ratio", mlp_ratio, "must be > 0")
        require_fraction("model.dropout", dropout)
        if pool not in POOLINGS:
            raise config_error("model.pool", pool, f"choose one of {list(POOLINGS)}")
        if any(c < 1 for c in stem_channels):
            raise config_error("model.stem_channels", list(stem_channels), "a list of positive widths")
        if stem_kernel < 1 or stem_kernel % 2 == 0:
            raise config_error("model.stem_kernel", stem_kernel, "must be a positive odd number ('same' padding)")
        check_norm(stem_norm)
        check_norm(norm)
        if norm not in TOKEN_NORMS:
            raise config_error("model.norm", norm, f"the transformer takes one of {list(TOKEN_NORMS)}")
        self.input_shape, self.pool = tuple(int(d) for d in input_shape), pool
        spatial_dims = len(shape) - 1
        self.stem = conv_blocks(shape[0], stem_channels, stem_kernel, stem_norm, activation, spatial_dims)
        width = stem_channels[-1] if stem_channels else shape[0]
        self.embed = CONVS[spatial_dims](width, dim, patch_size, stride=patch_size)
        tokens = math.prod(size // patch_size for size in shape[1:]) + (pool == "cls")
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if pool == "cls" else None
        self.pos_embed = nn.Parameter(nn.init.trunc_normal_(torch.empty(1, tokens, dim), std=0.02))
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.Sequential(
            *(self._layer(dim, heads, mlp_ratio, dropout, norm, activation) for _ in range(depth))
        )
        self.norm = make_norm(norm, dim)
        self.head = nn.Linear(dim, num_classes)
        init_weights(self, init, activation)

    @staticmethod
    def _layer(dim: int, heads: int, mlp_ratio: float, dropout: float, norm: str, activation: str) -> nn.Module:
        layer = nn.TransformerEncoderLayer(
            dim,
            heads,
            dim_feedforward=max(1, round(dim * mlp_ratio)),
            dropout=dropout,
            activation=make_activation(activation),
            batch_first=True,
            norm_first=True,
        )
        if norm == "none":
            layer.norm1, layer.norm2 = make_norm(norm, dim), make_norm(norm, dim)
            # torch's inference fast path fuses both LayerNorms; this is the flag that keeps it off without them
            layer.activation_relu_or_gelu = 0
        return layer

    def no_weight_decay(self) -> list[str]:
        """Parameters that weight decay must not pull to zero: the positions and the class token."""
        return ["pos_embed", "cls_token"] if self.cls_token is not None else ["pos_embed"]

    def layer_id(self, name: str) -> int:
        """The block of parameter ``name``, BEiT's numbering for layer-wise LR decay: the stem, patch embedding,
        positions and class token 0, encoder layer ``i`` ``i + 1``, the final norm and the head ``depth + 1``."""
        if name.startswith("layers."):
            return int(name.split(".")[1]) + 1
        if name.startswith(("norm.", "head.")):
            return len(self.layers) + 1
        return 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 2:
            x = x.unsqueeze(1)
        tokens = self.embed(self.stem(x)).flatten(2).transpose(1, 2)  # (batch, tokens, dim)
        if self.cls_token is not None:
            tokens = torch.cat([self.cls_token.expand(len(tokens), -1, -1), tokens], dim=1)
        tokens = self.norm(self.layers(self.dropout(tokens + self.pos_embed)))
        return self.head(tokens[:, 0] if self.pool == "cls" else tokens.mean(dim=1))
