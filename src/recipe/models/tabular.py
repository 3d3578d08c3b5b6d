"""TabM for tables: an ensemble of MLPs that share most of their weights, from its authors' ``tabm`` package."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import rtdl_num_embeddings
import tabm
import torch
from torch import nn

from recipe.errors import config_error, require_fraction, require_positive_int

Embeddings = Literal["none", "periodic"]


class TabM(nn.Module):
    """TabM (Gorishniy et al., ICLR 2025, "TabM: Advancing Tabular Deep Learning with Parameter-Efficient
    Ensembling"): ``k`` MLPs that share their linear layers and differ by per-member scalings, trained in one pass.
    The ensemble is built by ``tabm.TabM.make``; this module only fits it to the template's contract.

    The net's output is the ensemble's prediction: for a regression (``num_classes == 1``) the members' mean, for
    classification the log of their mean probabilities, which the classifier's cross-entropy takes as logits (it
    is already log-normalized). The loss is thus the ensemble's, where TabM's paper averages the members' losses:
    the task modules see one prediction per row.

    Args:
        input_shape: shape of one sample (flattened), from the data module.
        num_classes: classes, or 1 (the value) for regression.
        k: members of the ensemble.
        n_blocks: hidden layers of each member.
        d_block: width of each hidden layer.
        dropout: dropout after each hidden layer.
        embeddings: ``none`` feeds the features as they are; ``periodic`` embeds each one with
            ``rtdl_num_embeddings.PeriodicEmbeddings`` (sines and cosines of learned frequencies) first.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        k: int = 16,
        n_blocks: int = 2,
        d_block: int = 128,
        dropout: float = 0.1,
        embeddings: Embeddings = "none",
    ) -> None:
        super().__init__()
        for key, value in (("k", k), ("n_blocks", n_blocks), ("d_block", d_block)):
            require_positive_int(f"model.{key}", value)
        require_fraction("model.dropout", dropout)
        if embeddings not in ("none", "periodic"):
            raise config_error("model.embeddings", embeddings, "one of none, periodic")
        features = math.prod(input_shape)
        embed = rtdl_num_embeddings.PeriodicEmbeddings(features, lite=False) if embeddings == "periodic" else None
        self.ensemble = tabm.TabM.make(
            n_num_features=features, d_out=num_classes, num_embeddings=embed,
            k=k, n_blocks=n_blocks, d_block=d_block, dropout=dropout,
        )  # fmt: skip
        self.regression = num_classes == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ensemble(x_num=x.flatten(1))  # (batch, k, outputs)
        if self.regression:
            return out.mean(1)
        return torch.logsumexp(out.log_softmax(-1), dim=1) - math.log(out.shape[1])
