"""A learnable random classification task of any size and shape: class prototypes plus Gaussian noise."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recipe.data.arrays import ArrayDataModule, Splits
from recipe.errors import config_error, require_positive_int


class SyntheticDataModule(ArrayDataModule):
    """Samples ``prototype[y] + noise * N(0, 1)`` with uniform labels ``y``, of any size and shape.

    Every feature of a prototype is drawn from N(0, 1), so with ``noise`` around 1 the classes overlap per feature
    but separate over many features: a model learns it, and accuracy rises with the number of features.

    Args:
        n_train: training samples.
        n_val: validation samples.
        n_test: test samples.
        input_shape: shape of one sample, e.g. ``[64]``, ``[1, 40]`` or ``[3, 32, 32]``.
        num_classes: number of classes (at least 2).
        noise: standard deviation of the Gaussian noise added to each sample's prototype.
        **kwargs: see ``ArrayDataModule``; ``seed`` draws the prototypes, the labels and the noise.
    """

    def __init__(
        self,
        n_train: int = 1000,
        n_val: int = 200,
        n_test: int = 200,
        input_shape: Sequence[int] = (64,),
        num_classes: int = 10,
        noise: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        for key, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
            require_positive_int(f"data.{key}", value)
        shape = tuple(input_shape)
        if not shape or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
            raise config_error("data.input_shape", list(shape), "a non-empty list of positive sizes")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise config_error("data.num_classes", num_classes, "must be an integer >= 2")
        if not noise >= 0:
            raise config_error("data.noise", noise, "must be >= 0")
        self.n_train, self.n_val, self.n_test = n_train, n_val, n_test
        self.shape, self.classes, self.noise = shape, num_classes, float(noise)

    @property
    def num_classes(self) -> int:
        """The configured number of classes, even when a small split happens to miss the last one."""
        return self.classes

    def load_splits(self) -> Splits:
        rng = np.random.default_rng(self.seed)
        n = self.n_train + self.n_val + self.n_test
        prototypes = rng.standard_normal((self.classes, *self.shape), dtype=np.float32)
        y = rng.integers(0, self.classes, n)
        x = prototypes[y] + self.noise * rng.standard_normal((n, *self.shape), dtype=np.float32)
        train, val = self.n_train, self.n_train + self.n_val
        return Splits(x[:train], y[:train], x[train:val], y[train:val], x[val:], y[val:])
