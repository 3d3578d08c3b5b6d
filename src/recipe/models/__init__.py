"""Architectures: plain ``nn.Module``s taking ``input_shape`` and ``num_classes`` from the data."""

from recipe.models.cnn import CNN
from recipe.models.mlp import MLP
from recipe.models.tabular import TabM
from recipe.models.transformer import Transformer

__all__ = ["CNN", "MLP", "TabM", "Transformer"]
