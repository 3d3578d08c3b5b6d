"""Data modules holding their splits as in-memory tensors."""

from recipe.data.arrays import ArrayDataModule, Splits
from recipe.data.augment import RandomShift
from recipe.data.digits import DigitsDataModule
from recipe.data.mnist1d import MNIST1DDataModule

__all__ = ["ArrayDataModule", "DigitsDataModule", "MNIST1DDataModule", "RandomShift", "Splits"]
