"""The user's own images (``data=image_folder``): class subfolders, or ``train/``, ``val/``, ``test/`` of them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.accelerators import CUDAAccelerator
from lightning.pytorch.utilities import rank_zero_info
from torch import nn
from torch.utils.data import DataLoader, Dataset

from recipe.data import arrays
from recipe.data.arrays import ArrayDataModule, FittedPreprocessing, check_fractions, stratified_splits, with_validation
from recipe.data.batched import BatchedTensorDataset, keep_batch
from recipe.data.cache import check_cache, choose_cache
from recipe.data.images import MODES, class_folders, decode, image_files, readable
from recipe.data.labels import MIN_SAMPLES, check_classes
from recipe.data.resumable import train_loader
from recipe.errors import ConfigError, config_error

STATS_SAMPLE = 1000  # images of the train split that the per-channel mean and std are measured on


class DecodedImages(Dataset):
    """Images decoded when asked for (by the DataLoader's workers), as uint8 ``(channels, height, width)``."""

    def __init__(self, files: Sequence[Path], labels: np.ndarray, mode: str, size: tuple[int, int]) -> None:
        self.files, self.labels, self.mode, self.size = list(files), labels, mode, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(decode(self.files[i], self.mode, self.size)), int(self.labels[i])


class ImageFolderDataModule(FittedPreprocessing, ArrayDataModule):
    """Images in class subfolders (``path/<class>/*.png``), or ``path/train/<class>/...`` with optional ``val/``
    and ``test/`` used as given (a missing one is carved from train by ``seed``, by class). Every image is converted
    to ``mode`` and resized to ``image_size``; batches are standardized per channel with train statistics on the
    device, and ``augment`` (e.g. ``RandomResizedCropFlip``) applies to training batches only.

    Args:
        path: the folder.
        image_size: ``[height, width]``, or one number for squares.
        mode: ``rgb`` or ``grayscale``.
        cache: ``memory`` decodes every image once into a uint8 tensor; ``disk`` decodes in the DataLoader's workers
            every epoch (for folders larger than memory); ``auto`` picks memory when the decoded images take at
            most ``cache_limit_mb``.
        cache_limit_mb: the largest decoded size ``cache=auto`` holds in memory, in megabytes.
        skip_corrupt: leave out files Pillow cannot read (counted in the log) instead of stopping.
        val_fraction: share of the training images held out for validation when there is no ``val/``.
        test_fraction: share of all images held out for test when there is no ``test/``.
        **kwargs: see ``ArrayDataModule`` (``num_workers``: decoding processes when ``cache=disk``).
    """

    def __init__(
        self,
        path: str,
        image_size: int | Sequence[int] = 32,
        mode: str = "rgb",
        cache: str = "auto",
        cache_limit_mb: float = 4096,
        skip_corrupt: bool = False,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        augment: nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(augment=augment, **kwargs)
        check_fractions(val_fraction, test_fraction)
        size = [image_size] * 2 if isinstance(image_size, int) else list(image_size)
        if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size):
            raise config_error("data.image_size", image_size, "a positive size, or [height, width]")
        if mode not in MODES:
            raise config_error("data.mode", mode, f"one of {', '.join(MODES)}")
        check_cache(cache, cache_limit_mb)
        self.path, self.size, self.mode, self.cache = Path(path).expanduser(), (size[0], size[1]), mode, cache
        self.skip_corrupt, self.val_fraction, self.test_fraction = skip_corrupt, val_fraction, test_fraction
        self.cache_limit_mb = cache_limit_mb

    @property
    def class_names(self) -> list[str]:
        return list(self._state()["class_names"])

    @property
    def num_classes(self) -> int:
        return len(self._state()["class_names"])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (len(self._state()["mean"]), *self._state()["image_size"])

    def _files(self) -> tuple[list[str], dict[str, tuple[list[Path], np.ndarray]]]:
        """The class names, and the files and labels of each split, as laid out on disk or carved by ``seed``."""
        layout = {s: self.path / s for s in ("train", "val", "test") if (self.path / s).is_dir()}
        given = "train" in layout
        folders = {s: class_folders(p, f"data.path ({s}/)") for s, p in layout.items()} if given else {
            "train": class_folders(self.path, "data.path")}  # fmt: skip
        names = sorted(folders["train"])
        splits = {}
        for split, classes in folders.items():
            unknown = sorted(set(classes) - set(names))
            if unknown:
                raise config_error("data.path", str(self.path), f"{split}/ has class {unknown[0]!r} that train/ lacks")
            files = [(f, names.index(c)) for c, fs in classes.items() for f in fs]
            files = self._readable(files)
            splits[split] = ([f for f, _ in files], np.array([y for _, y in files], dtype=np.int64))
        x, y = np.array(splits["train"][0], dtype=object), splits["train"][1]
        carved = 1 if {"val", "test"} <= set(splits) else MIN_SAMPLES  # val/ and test/ given: nothing is carved
        check_classes(y, "data.path", str(self.path), names, " in train/" if given else "", carved)
        if "test" not in splits:
            s = stratified_splits(x, y, self.val_fraction, self.test_fraction, self.seed)
        elif "val" not in splits:
            s = with_validation(
                x, y, np.array(splits["test"][0], dtype=object), splits["test"][1], self.val_fraction, self.seed
            )
        else:
            s = arrays.Splits(*(a for files, y in splits.values() for a in (np.array(files, dtype=object), y)))
        s = self.arrange(s)  # data.folds, data.train_on_val
        return names, {
            "train": (list(s.x_train), s.y_train),
            "val": (list(s.x_val), s.y_val),
            "test": (list(s.x_test), s.y_test),
        }

    def _readable(self, files: list[tuple[Path, int]]) -> list[tuple[Path, int]]:
        if not self.skip_corrupt:
            return files
        kept = [(f, y) for f, y in files if readable(f)]
        if len(kept) < len(files):
            rank_zero_info(f"data.skip_corrupt=true: skipped {len(files) - len(kept)} unreadable images")
        return kept

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        names, splits = self._files()
        channels = 1 if self.mode == "grayscale" else 3
        decoded = sum(len(files) for files, _ in splits.values()) * channels * self.size[0] * self.size[1]
        if choose_cache(self.cache, decoded, self.cache_limit_mb, "the decoded images") == "memory":
            for split, (files, y) in splits.items():
                images = torch.from_numpy(np.stack([decode(f, self.mode, self.size) for f in files]))
                self.datasets[split] = BatchedTensorDataset(images, torch.from_numpy(y))
            sample = self.datasets["train"].tensors[0][:STATS_SAMPLE]
        else:
            for split, (files, y) in splits.items():
                self.datasets[split] = DecodedImages(files, y, self.mode, self.size)
            train = self.datasets["train"]
            sample = torch.stack([train[i][0] for i in range(min(STATS_SAMPLE, len(train)))])
        std, mean = torch.std_mean(sample.float().div_(255), dim=(0, 2, 3))
        self.fitted = {
            "class_names": names, "image_size": list(self.size), "mode": self.mode, "mean": mean.tolist(),
            "std": std.clamp_min(1e-3).tolist(),
        }  # fmt: skip

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images to floats standardized per channel with the train statistics."""
        mean = torch.tensor(self._state()["mean"], device=x.device).view(-1, 1, 1)
        std = torch.tensor(self._state()["std"], device=x.device).view(-1, 1, 1)
        return (x.float() / 255 - mean) / std

    def on_after_batch_transfer(self, batch: list[torch.Tensor], dataloader_idx: int) -> list[torch.Tensor]:
        x, y = batch
        return super().on_after_batch_transfer([self.normalize(x), y], dataloader_idx)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset = self.datasets[split]
        on_gpu = self.trainer is not None and isinstance(self.trainer.accelerator, CUDAAccelerator)
        kwargs = {
            "batch_size": self.per_device_batch_size,
            "collate_fn": keep_batch if isinstance(dataset, BatchedTensorDataset) else None,
            "num_workers": self.num_workers,
            "persistent_workers": self.num_workers > 0,
            "pin_memory": on_gpu,
            "drop_last": self.drop_last(split),
        }
        return train_loader(dataset, self.trainer, self.seed, **kwargs) if shuffle else DataLoader(dataset, **kwargs)

    def predict_batches(self, path: str | Path, images: int = 512) -> Iterator[tuple[list[str], torch.Tensor]]:
        """File names and standardized images of a new image or folder, ``images`` at a time (decoded as they are
        needed), with the training run's size, mode and statistics."""
        state, path = self._state(), Path(path).expanduser()
        files = [path] if path.is_file() else image_files(path) if path.is_dir() else None
        if files is None:
            raise config_error("data.path", str(path), "no such file or folder")
        if not files:
            raise config_error("data.path", str(path), "holds no images")
        size = tuple(state["image_size"])
        for start in range(0, len(files), images):
            chunk = files[start : start + images]
            x = torch.from_numpy(np.stack([decode(f, state["mode"], size) for f in chunk]))
            if x.shape[1] != len(state["mean"]):
                raise ConfigError(f"data.path={str(path)!r}: {x.shape[1]} channels, training had {len(state['mean'])}")
            yield [str(f.relative_to(path)) if path.is_dir() else f.name for f in chunk], self.normalize(x)
