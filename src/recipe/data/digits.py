"""scikit-learn's bundled 8x8 digits (1797 images, 10 classes): no download needed."""

from __future__ import annotations

from sklearn.datasets import load_digits

from recipe.data.arrays import ArrayDataModule, Splits, stratified_splits
from recipe.errors import config_error


class DigitsDataModule(ArrayDataModule):
    """Digits as 64 features, split train / val / test by class, standardized with train statistics.

    Args:
        val_fraction: share of all samples held out for validation.
        test_fraction: share of all samples held out for test.
        **kwargs: see ``ArrayDataModule``.
    """

    def __init__(self, val_fraction: float = 0.15, test_fraction: float = 0.15, **kwargs) -> None:
        super().__init__(**kwargs)
        for key, value in (("data.val_fraction", val_fraction), ("data.test_fraction", test_fraction)):
            if not 0 < value < 1:
                raise config_error(key, value, "must be in (0, 1)")
        if val_fraction + test_fraction >= 1:
            raise config_error("data.val_fraction", val_fraction, f"plus data.test_fraction={test_fraction} must be < 1")
        self.val_fraction, self.test_fraction = val_fraction, test_fraction

    def load_splits(self) -> Splits:
        x, y = load_digits(return_X_y=True)
        return stratified_splits(x, y, self.val_fraction, self.test_fraction, self.seed)
