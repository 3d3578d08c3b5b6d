"""Checkpoints written so that a kill or a full disk never destroys the previous good one.

Lightning's ``TorchCheckpointIO`` serializes to memory, writes a temp file in ``$TMPDIR`` through fsspec and then
``shutil.move``s it: across file systems that move truncates the old file first, so a kill leaves a broken
``last.ckpt``, and every kill leaves the whole temp file in ``$TMPDIR``. Here each save goes to a temp file in the
checkpoint's own folder, is flushed and fsynced, and replaces the old file with ``os.replace`` (atomic on one file
system); a failed write removes its temp file and keeps the old checkpoint. Written here because neither Lightning
nor fsspec offers a same-folder atomic local write.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from recipe.errors import CheckpointWriteError

TEMP_SUFFIX = ".ckpt-partial"  # a save under way; one left behind was killed mid-write


def remove_partial_saves(folder: str | Path) -> list[Path]:
    """Delete the temp files that killed saves left in ``folder``; return them."""
    stale = sorted(Path(folder).glob(f".*{TEMP_SUFFIX}")) if Path(folder).is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def atomic_save(checkpoint: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` to a temp file next to ``path``, fsync it, then ``os.replace`` it onto ``path``.

    Raises:
        CheckpointWriteError: the folder cannot take the file (full disk, no permission); ``path`` is unchanged.
    """
    path = Path(path)
    temp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
        with os.fdopen(fd, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
        temp = None
        _fsync_folder(path.parent)  # the rename itself survives a power cut
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno else str(err)
        full = " (disk full)" if err.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        message = f"cannot write checkpoint {path.name} in {path.parent}: {reason}{full}"
        raise CheckpointWriteError(f"{message}; the checkpoints already there are kept") from None
    finally:
        if temp is not None:
            Path(temp).unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with ``atomic_save`` for local paths (remote URLs keep Lightning's own)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
        else:
            atomic_save(checkpoint, path)
