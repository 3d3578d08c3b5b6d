"""k-fold cross-validation in every array data module: disjoint validation folds that cover the pooled data."""

from __future__ import annotations

import numpy as np
import pytest

from recipe.data import DigitsDataModule
from recipe.errors import ConfigError


def _rows(module: DigitsDataModule, split: str) -> set[bytes]:
    return {row.numpy().tobytes() for row in module.datasets[split].tensors[0]}


def test_folds_are_disjoint_cover_train_and_validation_and_leave_test_alone() -> None:
    plain = DigitsDataModule(standardize=False, seed=3)
    plain.setup()
    pooled = _rows(plain, "train") | _rows(plain, "val")
    modules = [DigitsDataModule(standardize=False, seed=3, folds=4, fold=i) for i in range(4)]
    for module in modules:
        module.setup()
        assert _rows(module, "train") | _rows(module, "val") == pooled
        assert not _rows(module, "train") & _rows(module, "val")
        assert _rows(module, "test") == _rows(plain, "test")
    vals = [_rows(module, "val") for module in modules]
    assert set().union(*vals) == pooled and sum(len(v) for v in vals) == len(pooled)
    sizes = [len(v) for v in vals]
    assert max(sizes) - min(sizes) <= 10  # stratified: within one sample per class of each other
    labels = np.bincount(modules[0].datasets["val"].tensors[1].numpy())
    assert labels.min() >= 0.8 * labels.max()  # every class in each fold, in proportion


def test_fold_and_folds_are_checked_when_built() -> None:
    with pytest.raises(ConfigError, match=r"^data.fold=4: one of 0 to 3"):
        DigitsDataModule(folds=4, fold=4)
    with pytest.raises(ConfigError, match=r"^data.folds=1: "):
        DigitsDataModule(folds=1)


def test_an_image_folder_validates_on_each_fold_in_turn(tmp_path) -> None:
    """data=image_folder takes data.folds too (it splits files, not arrays): the folds' validation images differ."""
    from test_image_folder import make_folder

    from recipe.data.image_folder import ImageFolderDataModule

    make_folder(tmp_path, per_class=10)
    plain = ImageFolderDataModule(str(tmp_path), image_size=6)
    modules = [ImageFolderDataModule(str(tmp_path), image_size=6, folds=2, fold=i) for i in range(2)]
    for module in (plain, *modules):
        module.setup()
    vals = [_rows(module, "val") for module in modules]
    assert not vals[0] & vals[1] and vals[0] | vals[1] == _rows(plain, "train") | _rows(plain, "val")
    assert _rows(modules[0], "test") == _rows(plain, "test")
