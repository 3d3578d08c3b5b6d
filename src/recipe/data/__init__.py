"""Data modules: splits held as in-memory tensors (arrays, tables), or image folders."""

from recipe.data.arrays import ArrayDataModule, Splits
from recipe.data.augment import RandomResizedCropFlip, RandomShift
from recipe.data.digits import DigitsDataModule
from recipe.data.image_folder import ImageFolderDataModule
from recipe.data.mnist1d import MNIST1DDataModule
from recipe.data.npz import NpzDataModule
from recipe.data.synthetic import SyntheticDataModule
from recipe.data.table import TableDataModule

__all__ = [
    "ArrayDataModule",
    "DigitsDataModule",
    "ImageFolderDataModule",
    "MNIST1DDataModule",
    "NpzDataModule",
    "RandomResizedCropFlip",
    "RandomShift",
    "Splits",
    "SyntheticDataModule",
    "TableDataModule",
]
