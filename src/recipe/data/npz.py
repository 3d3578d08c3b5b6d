"""The user's own arrays from a ``.npz`` file: ``x``, ``y`` and optionally ``x_test``, ``y_test``."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from recipe.data.arrays import ArrayDataModule, Splits, check_fractions, stratified_splits, with_validation
from recipe.data.labels import check_class_indices, check_classes
from recipe.errors import ConfigError, config_error

NUMERIC_KINDS = "biuf"  # numpy dtype kinds: bool, signed, unsigned, float


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array in the file, or a ``ConfigError`` when it is missing or not a readable ``.npz``."""
    if not path.is_file():
        raise config_error("data.path", str(path), "no such file")
    if not zipfile.is_zipfile(path):  # np.load would try to unpickle it
        raise config_error("data.path", str(path), "not a .npz file (np.savez writes one)")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return {key: arrays[key] for key in arrays.files}
    except ValueError:  # object arrays need pickle, which would run code from the file
        raise config_error("data.path", str(path), "holds non-numeric arrays (objects need unpickling)") from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise config_error("data.path", str(path), f"not a readable .npz file ({err})") from None


def check_pair(arrays: dict[str, np.ndarray], x_key: str, y_key: str, num_classes: int | None) -> np.ndarray:
    """Check ``arrays[x_key]`` and ``arrays[y_key]`` (numeric, finite, one whole label in 0..C-1 per sample);
    return the labels as integers. C is ``num_classes``; without it only negative labels are out of range."""
    x, y = arrays[x_key], arrays[y_key]
    for key, array in ((x_key, x), (y_key, y)):
        if array.dtype.kind not in NUMERIC_KINDS:
            raise config_error(f"data.path[{key!r}]", str(array.dtype), "must be numeric (bool, int or float)")
    if x.ndim < 2 or len(x) == 0:
        raise config_error(f"data.path[{x_key!r}]", x.shape, "needs shape (samples, *sample_shape), samples >= 1")
    if y.ndim != 1 or len(y) != len(x):
        raise config_error(f"data.path[{y_key!r}]", y.shape, f"needs one label per sample of {x_key} {x.shape}")
    if not np.isfinite(x).all():
        raise config_error(f"data.path[{x_key!r}]", "nan/inf", "every value must be finite")
    if y.dtype.kind == "f" and not np.array_equal(y, np.round(y)):
        raise config_error(f"data.path[{y_key!r}]", y[y != np.round(y)][0].item(), "labels must be whole numbers")
    labels = y.astype(np.int64)
    top = np.inf if num_classes is None else num_classes
    bad = labels[(labels < 0) | (labels >= top)]
    if bad.size:
        allowed = "num_classes - 1" if num_classes is None else str(num_classes - 1)
        raise config_error(f"data.path[{y_key!r}]", int(bad[0]), f"labels must be in 0..{allowed}")
    return labels


class NpzDataModule(ArrayDataModule):
    """Arrays ``x`` (samples first) and integer labels ``y``; test from ``x_test``, ``y_test`` when the file has
    them, otherwise carved from ``x, y``; validation carved from the training samples by ``seed``, by class.

    Args:
        path: the ``.npz`` file (``np.savez(path, x=..., y=..., x_test=..., y_test=...)``).
        val_fraction: share of the training samples held out for validation.
        test_fraction: share of ``x, y`` held out for test when the file has no test arrays.
        num_classes: number of classes; ``None`` takes the largest label + 1.
        **kwargs: see ``ArrayDataModule``.
    """

    def __init__(
        self,
        path: str,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        num_classes: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        check_fractions(val_fraction, test_fraction)
        if num_classes is not None and (isinstance(num_classes, bool) or num_classes < 2):
            raise config_error("data.num_classes", num_classes, "must be null or an integer >= 2")
        self.path, self.val_fraction, self.test_fraction = Path(path).expanduser(), val_fraction, test_fraction
        self.classes = num_classes

    @property
    def num_classes(self) -> int:
        """``num_classes`` when given, otherwise the largest label + 1."""
        return self.classes if self.classes is not None else super().num_classes

    def load_splits(self) -> Splits:
        arrays = read_arrays(self.path)
        wanted = ["x", "y"] + (["x_test", "y_test"] if {"x_test", "y_test"} & set(arrays) else [])
        missing = [key for key in wanted if key not in arrays]
        if missing:
            raise ConfigError(
                f"data.path={str(self.path)!r}: has no array {missing[0]!r}; its arrays: {sorted(arrays)} "
                "(needs x and y, optionally x_test with y_test)"
            )
        y = check_pair(arrays, "x", "y", self.classes)
        y_test = check_pair(arrays, "x_test", "y_test", self.classes) if "x_test" in arrays else y[:0]
        check_classes(y, "data.path", str(self.path), where=" in its array 'y'")
        check_class_indices(np.concatenate([y, y_test]), "data.path['y']", self.classes)
        if "x_test" not in arrays:
            return stratified_splits(arrays["x"], y, self.val_fraction, self.test_fraction, self.seed)
        if arrays["x_test"].shape[1:] != arrays["x"].shape[1:]:
            raise config_error(
                "data.path['x_test']",
                arrays["x_test"].shape,
                f"samples must have the shape of x's {arrays['x'].shape[1:]}",
            )
        return with_validation(arrays["x"], y, arrays["x_test"], y_test, self.val_fraction, self.seed)
