"""scikit-learn's bundled 8x8 digits (1797 images, 10 classes): no download needed."""

from __future__ import annotations

from sklearn.datasets import load_digits

from recipe.data.arrays import ArrayDataModule, Splits, check_fractions, stratified_splits


class DigitsDataModule(ArrayDataModule):
    """Digits as 64 features or as 1x8x8 images, split train / val / test by class, standardized with train statistics.

    Args:
        val_fraction: share of all samples held out for validation.
        test_fraction: share of all samples held out for test.
        as_image: samples of shape ``(1, 8, 8)`` (for the CNN) instead of ``(64,)``.
        **kwargs: see ``ArrayDataModule``.
    """

    def __init__(
        self, val_fraction: float = 0.15, test_fraction: float = 0.15, as_image: bool = False, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        check_fractions(val_fraction, test_fraction)
        self.val_fraction, self.test_fraction, self.as_image = val_fraction, test_fraction, as_image

    def load_splits(self) -> Splits:
        x, y = load_digits(return_X_y=True)
        if self.as_image:
            x = x.reshape(-1, 1, 8, 8)
        return stratified_splits(x, y, self.val_fraction, self.test_fraction, self.seed)
