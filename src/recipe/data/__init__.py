"""Data modules holding their splits as in-memory tensors."""

from recipe.data.arrays import ArrayDataModule, Splits
from recipe.data.digits import DigitsDataModule

__all__ = ["ArrayDataModule", "DigitsDataModule", "Splits"]
