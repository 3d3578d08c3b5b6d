"""MNIST-1D (Greydanus and Kobak, ICML 2024): 40-sample 1-D signals of 10 digits, generated offline and cached."""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from lightning.pytorch.utilities import rank_zero_info

from recipe.data.arrays import ArrayDataModule, Splits, check_fractions, with_validation

KEYS = ("x", "y", "x_test", "y_test")
LENGTH = 40  # samples per signal in the paper's dataset


def generate(seed: int) -> dict[str, np.ndarray]:
    """The paper's dataset for ``seed`` (42 is the published one): 4000 train and 1000 test signals.

    Calls ``make_dataset`` directly: ``get_dataset`` downloads by default and writes a pickle into the working folder.
    """
    from mnist1d.data import get_dataset_args, make_dataset  # imports matplotlib: only when generating

    args = get_dataset_args()
    args.seed = seed
    data = make_dataset(args)
    return {key: data[key] for key in KEYS}


def load_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays cached at ``path``, or ``None`` when the file is missing, unreadable or incomplete."""
    try:
        with np.load(path, allow_pickle=False) as cached:
            data = {key: cached[key] for key in KEYS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    consistent = all(
        data[x].ndim == 2 and data[x].shape[1] == LENGTH and data[y].shape == data[x].shape[:1]
        for x, y in (("x", "y"), ("x_test", "y_test"))
    )
    return data if consistent else None


def load_or_generate(data_dir: str | Path, seed: int) -> dict[str, np.ndarray]:
    """The dataset for ``seed`` from ``data_dir/mnist1d_seed<seed>.npz``, (re)generated when missing or damaged.

    The file is written to a temporary name and renamed, so concurrent runs never read half a file.
    """
    path = Path(data_dir) / f"mnist1d_seed{seed}.npz"
    data = load_cache(path)
    if data is None:
        rank_zero_info(f"Generating MNIST-1D (seed {seed}) into {path}")
        data = generate(seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as tmp:
            np.savez(tmp, **data)
        os.replace(tmp.name, path)
    return data


class MNIST1DDataModule(ArrayDataModule):
    """MNIST-1D as ``(1, 40)`` signals: the paper's 4000 train / 1000 test, validation carved from train by ``seed``.

    Args:
        data_dir: the folder holding the cached arrays (the project's ``data/``, not the run folder).
        val_fraction: share of the 4000 training signals held out for validation.
        generator_seed: seed of the dataset itself (42: the paper's); ``seed`` only moves the validation split.
        **kwargs: see ``ArrayDataModule``.
    """

    def __init__(self, data_dir: str, val_fraction: float = 0.1, generator_seed: int = 42, **kwargs) -> None:
        super().__init__(**kwargs)
        check_fractions(val_fraction)
        self.data_dir, self.val_fraction, self.generator_seed = data_dir, val_fraction, generator_seed

    def load_splits(self) -> Splits:
        data = load_or_generate(self.data_dir, self.generator_seed)
        x, x_test = data["x"][:, None, :], data["x_test"][:, None, :]
        return with_validation(x, data["y"], x_test, data["y_test"], self.val_fraction, self.seed)
