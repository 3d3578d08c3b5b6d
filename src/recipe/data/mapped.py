"""Rows of a float32 matrix written to a ``.npy`` file batch by batch, and read back memory-mapped.

A prepared table larger than memory lives on disk: ``open_rows`` writes the header (the row count is known in
advance), each batch is appended as it is prepared, and ``MappedRows`` gathers a training batch with one fancy
index into a ``numpy`` memory map, which the operating system pages in and out as it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch.utils.data import Dataset


def open_rows(path: Path, rows: int, width: int) -> IO[bytes]:
    """``path`` opened for writing a ``(rows, width)`` float32 ``.npy`` array: its header written, its rows to be
    appended as little-endian float32 bytes, in order."""
    out = open(path, "wb")  # noqa: SIM115 (the caller closes it)
    np.lib.format.write_array_header_1_0(out, {"descr": "<f4", "fortran_order": False, "shape": (rows, width)})
    return out


class MappedRows(Dataset):
    """Features memory-mapped from a ``.npy`` file and targets in memory; the map is opened in each process that
    reads it (a DataLoader worker gets the path, not the pages).

    Args:
        path: the ``.npy`` file of ``(rows, width)`` float32 features.
        targets: one target per row.
    """

    def __init__(self, path: str | Path, targets: torch.Tensor) -> None:
        self.path, self.targets = Path(path), targets
        self._rows: np.ndarray | None = None

    @property
    def rows(self) -> np.ndarray:
        if self._rows is None:
            self._rows = np.load(self.path, mmap_mode="r")
        return self._rows

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_rows": None}

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(np.array(self.rows[i])), self.targets[i]

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        """A whole batch: one gather from the map, one index into the targets (see ``batched.py``)."""
        index = np.asarray(indices)
        return [torch.from_numpy(np.ascontiguousarray(self.rows[index])), self.targets[torch.from_numpy(index)]]
