"""Data modules holding their splits as in-memory tensors."""

from recipe.data.arrays import ArrayDataModule, Splits
from recipe.data.augment import RandomShift
from recipe.data.digits import DigitsDataModule
from recipe.data.mnist1d import MNIST1DDataModule
from recipe.data.npz import NpzDataModule
from recipe.data.synthetic import SyntheticDataModule

__all__ = [
    "ArrayDataModule",
    "DigitsDataModule",
    "MNIST1DDataModule",
    "NpzDataModule",
    "RandomShift",
    "Splits",
    "SyntheticDataModule",
]
