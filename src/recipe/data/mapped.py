"""Rows of a float32 matrix written to a ``.npy`` file batch by batch, and read back memory-mapped.

A prepared table larger than memory lives on disk: ``write_rows`` appends each batch as it is prepared (the header
first, with the row count known in advance), and ``MappedRows`` gathers a training batch with one fancy index into a
``numpy`` memory map, which the operating system pages in and out as it needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch.utils.data import Dataset


def write_rows(out: IO[bytes], batches: Iterable[np.ndarray], rows: int, width: int) -> None:
    """Write ``batches`` of ``(n, width)`` float32 rows, ``rows`` in all, to ``out`` as one ``.npy`` array."""
    np.lib.format.write_array_header_1_0(out, {"descr": "<f4", "fortran_order": False, "shape": (rows, width)})
    written = 0
    for batch in batches:
        out.write(np.ascontiguousarray(batch, dtype="<f4").tobytes())
        written += len(batch)
    if written != rows:
        raise RuntimeError(f"wrote {written} rows of {rows} announced")


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
