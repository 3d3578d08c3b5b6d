"""The common part of every data module here: splits held as tensors, standardized, served in batches."""

from __future__ import annotations

import logging
import math
from dataclasses import astuple, dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from recipe.data.batched import BatchedTensorDataset, keep_batch
from recipe.data.resumable import train_loader
from recipe.errors import config_error, require_fraction, require_positive_int

log = logging.getLogger(__name__)


@dataclass
class Splits:
    """Inputs and targets (class indices, or values for regression) of the train, validation and test splits."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def split_off(x: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """``x_kept, x_held, y_kept, y_held``: ``fraction`` of the samples held out, keeping class proportions
    (unless a class has a single sample, or a part is too small to hold every class), reproducibly for ``seed``."""
    counts = np.unique(y, return_counts=True)[1]
    held = math.ceil(fraction * len(y))
    stratify = y if counts.min() >= 2 and min(held, len(y) - held) >= len(counts) else None
    return tuple(train_test_split(x, y, test_size=fraction, stratify=stratify, random_state=seed))


def stratified_splits(x: np.ndarray, y: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> Splits:
    """Split once into train / val / test, keeping class proportions, reproducibly for ``seed``."""
    x_rest, x_test, y_rest, y_test = split_off(x, y, test_fraction, seed)
    return with_validation(x_rest, y_rest, x_test, y_test, val_fraction / (1.0 - test_fraction), seed)


def with_validation(
    x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, val_fraction: float, seed: int
) -> Splits:
    """Splits with a given test set, the validation set carved out of ``x, y`` (``val_fraction`` of them)."""
    x_train, x_val, y_train, y_val = split_off(x, y, val_fraction, seed)
    return Splits(x_train, y_train, x_val, y_val, x_test, y_test)


def kfold(s: Splits, folds: int, fold: int, seed: int) -> Splits:
    """Fold ``fold`` of ``folds``: train and validation pooled, then split into ``folds`` parts (stratified when
    every class has that many samples, shuffled by ``seed``), part ``fold`` validating; the test set untouched."""
    x, y = np.concatenate([s.x_train, s.x_val]), np.concatenate([s.y_train, s.y_val])
    stratify = np.unique(y, return_counts=True)[1].min() >= folds
    splitter = (StratifiedKFold if stratify else KFold)(n_splits=folds, shuffle=True, random_state=seed)
    train, val = list(splitter.split(x, y))[fold]
    return Splits(x[train], y[train], x[val], y[val], s.x_test, s.y_test)


def lone_last_sample(samples: int, batch_size: int, world_size: int = 1) -> bool:
    """Whether the last batch of an epoch would hold a single sample on each process (Lightning's
    ``DistributedSampler`` pads every process to ``ceil(samples / world_size)``). In training such a batch is
    dropped: BatchNorm cannot normalize one sample (PyTorch raises), and for any model it is a full optimizer step
    on one sample's gradient; the order being shuffled, the sample dropped differs every epoch."""
    per_process = math.ceil(samples / world_size)
    return per_process > 1 and per_process % batch_size == 1


def check_fractions(val_fraction: float, test_fraction: float | None = None) -> None:
    """Raise a ``ConfigError`` unless each fraction is in (0, 1) and together they leave samples to train on."""
    for key, value in (("data.val_fraction", val_fraction), ("data.test_fraction", test_fraction)):
        if value is not None:
            require_fraction(key, value, zero=False)
    if test_fraction is not None and val_fraction + test_fraction >= 1:
        raise config_error("data.val_fraction", val_fraction, f"plus data.test_fraction={test_fraction} must be < 1")


class ArrayDataModule(L.LightningDataModule):
    """Loads arrays once (``load_splits``, per subclass), standardizes with train statistics, keeps tensors.

    Args:
        batch_size: the global batch; each of the ``world_size`` processes loads ``batch_size // world_size``.
        num_workers: DataLoader workers (0 is fastest for in-memory tensors).
        standardize: subtract the train mean and divide by the train std, per feature.
        seed: seed of the splits.
        augment: a module applied to training batches only (e.g. ``RandomShift``), after transfer to the device.
        folds: k-fold cross-validation: train and validation pooled and split into this many folds (``null``: off).
        fold: which fold validates (0 to ``folds - 1``).
        train_on_val: train on the training and validation rows together (validation stays, now seen in
            training): the final fit of a search, whose epochs the validation split has already chosen.
    """

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        standardize: bool = True,
        seed: int = 0,
        augment: nn.Module | None = None,
        folds: int | None = None,
        fold: int = 0,
        train_on_val: bool = False,
    ) -> None:
        super().__init__()
        if folds is not None and (isinstance(folds, bool) or not isinstance(folds, int) or folds < 2):
            raise config_error("data.folds", folds, "an integer >= 2, or null for no cross-validation")
        if folds is not None and fold not in range(folds):
            raise config_error("data.fold", fold, f"one of 0 to {folds - 1} (data.folds={folds})")
        self.folds, self.fold, self.train_on_val = folds, fold, train_on_val
        self.augment = augment
        require_positive_int("data.batch_size", batch_size)
        if num_workers < 0:
            raise config_error("data.num_workers", num_workers, "must be >= 0")
        self.batch_size, self.num_workers, self.standardize, self.seed = batch_size, num_workers, standardize, seed
        self.datasets: dict[str, TensorDataset] = {}

    task = "classification"  # or "regression": float targets (the data module's fact, read by the run)
    class_names: list[str] | None = None  # names of the classes in output order, where the data has them

    def load_splits(self) -> Splits:
        """Return the raw splits; subclasses implement it."""
        raise NotImplementedError

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample."""
        self.setup()
        return tuple(self.datasets["train"].tensors[0].shape[1:])

    @property
    def num_classes(self) -> int:
        """Number of classes, from the labels of every split."""
        self.setup()
        return int(max(int(ds.tensors[1].max()) for ds in self.datasets.values()) + 1)

    @property
    def per_device_batch_size(self) -> int:
        world = self.trainer.world_size if self.trainer is not None else 1
        if self.batch_size < world:
            raise config_error(
                "data.batch_size", self.batch_size, f"must be at least the number of processes ({world})"
            )
        return self.batch_size // world

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        s = self.arrange(self.load_splits())
        x_train = s.x_train.astype(np.float32)
        if self.standardize:
            mean, std = x_train.mean(axis=0), x_train.std(axis=0)
            std = np.where(std < 1e-6, 1.0, std)
        else:
            mean, std = 0.0, 1.0
        for split, x, y in (("train", s.x_train, s.y_train), ("val", s.x_val, s.y_val), ("test", s.x_test, s.y_test)):
            features = torch.from_numpy(((x.astype(np.float32) - mean) / std).astype(np.float32))
            targets = np.asarray(y, dtype=np.float32 if self.task == "regression" else np.int64)
            self.datasets[split] = BatchedTensorDataset(features, torch.from_numpy(targets))

    def arrange(self, s: Splits) -> Splits:
        """The splits this run uses: fold ``fold`` of ``folds`` validating, and with ``train_on_val`` the
        validation rows added to the training rows."""
        if self.folds:
            s = kfold(s, self.folds, self.fold, self.seed)
        if self.train_on_val:
            s = Splits(np.concatenate([s.x_train, s.x_val]), np.concatenate([s.y_train, s.y_val]), *astuple(s)[2:])
        return s

    def on_after_batch_transfer(self, batch: list[torch.Tensor], dataloader_idx: int) -> list[torch.Tensor]:
        if self.augment is None or self.trainer is None or not self.trainer.training:
            return batch
        x, y = batch
        return [self.augment(x), y]

    def drop_last(self, split: str) -> bool:
        """Drop the last batch of ``split`` when it is a training batch of one sample per process (see
        ``lone_last_sample``)."""
        world = self.trainer.world_size if self.trainer is not None else 1
        drop = split == "train" and lone_last_sample(len(self.datasets[split]), self.per_device_batch_size, world)
        if drop:
            rank_zero_info("data: the last training batch would hold 1 sample per process: dropped each epoch")
        return drop

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset, batch_size = self.datasets[split], self.per_device_batch_size
        kwargs = {"collate_fn": keep_batch, "num_workers": self.num_workers, "persistent_workers": self.num_workers > 0}
        kwargs["drop_last"] = self.drop_last(split)
        if shuffle:  # training: resumes in the middle of an epoch with the batches the run left
            return train_loader(dataset, self.trainer, self.seed, batch_size=batch_size, **kwargs)
        return DataLoader(dataset, batch_size=batch_size, **kwargs)

    def train_dataloader(self) -> DataLoader:
        rows = len(self.datasets["train"])
        if self.batch_size > rows and (self.trainer is None or self.trainer.is_global_zero):
            # a warning, not an error: a small table with the default batch is a fair run; one line, in train.log
            log.warning(
                f"data.batch_size={self.batch_size} is more than the {rows} training rows: each epoch is one step "
                f"on all of them, and optimizer.lr_scaling (if set) scales the LR for {self.batch_size}; "
                f"data.batch_size={rows} or less takes more steps"
            )
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


class FittedPreprocessing:
    """A data module's preprocessing fitted on its training split (``self.fitted``, plain data, set by ``setup``):
    Lightning saves a data module's ``state_dict`` in every checkpoint, so evaluation and predictions reuse it and
    never refit on new data."""

    fitted: dict[str, Any] | None = None

    def _state(self) -> dict[str, Any]:
        if self.fitted is None:
            self.setup()
        return self.fitted

    def state_dict(self) -> dict[str, Any]:
        return dict(self._state())

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.fitted = dict(state_dict)
