"""Checkpoints written so that a kill or a full disk never destroys the previous good one, and read back checked.

Lightning's ``TorchCheckpointIO`` serializes to memory, writes a temp file in ``$TMPDIR`` through fsspec and then
``shutil.move``s it: across file systems that move truncates the old file first, so a kill leaves a broken
``last.ckpt``, and every kill leaves the whole temp file in ``$TMPDIR``. Here each save goes to a temp file in the
checkpoint's own folder, is flushed and fsynced, and replaces the old file with ``os.replace`` (atomic on one file
system); a failed write removes its temp file and keeps the old checkpoint. Written here because neither Lightning
nor fsspec offers a same-folder atomic local write.

The epoch-end saves of ``recipe.callbacks.ModelCheckpoint`` are written by a background thread (``in_background``),
so training goes on while a file is serialized and fsynced. Lightning's ``AsyncCheckpointIO`` puts every save in
the background; here every other save (Ctrl-C or SIGTERM, a SLURM requeue, a user's ``trainer.save_checkpoint``)
stays synchronous, so it has landed before the process may be killed, and nothing reads a file before ``wait``.
"""

from __future__ import annotations

import copy
import errno
import os
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from recipe.errors import CheckpointWriteError, config_error

CHECKPOINT_KEY = "run_config"  # the run's resolved config inside every checkpoint (callbacks.StoreRunConfig)
TEMP_SUFFIX = ".ckpt-partial"  # a save under way; one left behind was killed mid-write


def remove_partial_saves(folder: str | Path) -> list[Path]:
    """Delete the temp files that killed saves left in ``folder``; return them."""
    stale = sorted(Path(folder).glob(f".*{TEMP_SUFFIX}")) if Path(folder).is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def atomic_save(checkpoint: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` to a temp file next to ``path``, fsync it, then ``os.replace`` it onto ``path``.

    The file gets the mode any new file gets (``0o666`` less the umask), as Lightning's own save gives it, so that a
    group's TensorBoard or MLflow server can read it; ``tempfile.mkstemp`` would make it ``0o600``.

    Raises:
        CheckpointWriteError: the folder cannot take the file (full disk, quota, no permission); ``path`` is
            unchanged.
    """
    path = Path(path)
    temp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        name = path.parent / f".{path.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        temp = name
        with os.fdopen(fd, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
        temp = None
        _fsync_folder(path.parent)  # the rename itself survives a power cut
    except (OSError, RuntimeError) as err:
        cause = _os_error(err)
        if cause is None:  # not a write failure (a bug, a CUDA error while copying): its own traceback
            raise
        reason = os.strerror(cause.errno) if cause.errno else str(cause)
        full = " (disk full)" if cause.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        message = f"cannot write checkpoint {path.name} in {path.parent}: {reason}{full}"
        raise CheckpointWriteError(f"{message}; the checkpoints already there are kept") from None
    finally:
        if temp is not None:
            Path(temp).unlink(missing_ok=True)


def _os_error(err: BaseException) -> OSError | None:
    """The ``OSError`` behind a failed write: ``err`` itself, or the one torch's writer turned into a
    ``RuntimeError`` (``[enforce fail at inline_container.cc] unexpected pos``, raised while handling it)."""
    while err is not None and not isinstance(err, OSError):
        err = err.__cause__ or err.__context__
    return err


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with ``atomic_save`` for local paths (remote URLs keep Lightning's own).

    A save made inside ``in_background()`` is snapshot on the calling thread (every tensor copied to CPU memory, so
    later steps cannot change it) and written by one background thread. Writes and removals land in the order they
    were asked: a synchronous save or a removal first waits for the writes queued before it. After a failed write
    the queued ones are dropped, as a synchronous run would never have reached them, and the failure
    (``CheckpointWriteError``) is raised at the next save, removal or ``wait``; ``teardown`` waits too.
    """

    def __init__(self) -> None:
        super().__init__()
        self._writer: ThreadPoolExecutor | None = None
        self._queued: list[Future] = []
        self._background = False
        self._failed = False

    @contextmanager
    def in_background(self) -> Iterator[None]:
        """Saves made in this block are written by the background thread."""
        self._background = True
        try:
            yield
        finally:
            self._background = False

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):
            self.wait()
            super().save_checkpoint(checkpoint, path, storage_options)
        elif self._background:
            self._queue(atomic_save, snapshot(checkpoint), path)
        else:
            self.wait()
            atomic_save(checkpoint, path)

    def remove_checkpoint(self, path: _PATH) -> None:
        if self._queued:  # after the writes queued before it: the old best goes once the new one has landed
            self._queue(super().remove_checkpoint, path)
        else:
            super().remove_checkpoint(path)

    def wait(self) -> None:
        """Return once every queued write and removal has landed; raise the first that failed."""
        queued, self._queued = self._queued, []
        for future in queued:
            future.result()

    def teardown(self) -> None:
        try:
            self.wait()
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)
                self._writer = None
            self._failed = False

    def _queue(self, action: Callable[..., None], *args: Any) -> None:
        for future in [f for f in self._queued if f.done()]:
            self._queued.remove(future)
            future.result()  # a failed earlier write stops the run here
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint-writer")
        self._queued.append(self._writer.submit(self._run, action, *args))

    def _run(self, action: Callable[..., None], *args: Any) -> None:
        if self._failed:
            return
        try:
            action(*args)
        except BaseException:
            self._failed = True
            raise


def snapshot(state: Any) -> Any:
    """A copy of ``state`` that later training steps cannot change: every tensor copied to CPU memory, every dict,
    list and tuple rebuilt (a callback's list that training appends to, too); anything else (numbers, strings) kept.
    Lightning's ``apply_to_collection`` does the same for any collection, at several times the cost: a save's copy
    is made on the training thread."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        copied = copy.copy(state)  # its own type (OrderedDict, AttributeDict), rebuilt
        for key, value in state.items():
            copied[key] = snapshot(value)
        return copied
    if isinstance(state, list):
        return [snapshot(value) for value in state]
    if isinstance(state, tuple):
        values = [snapshot(value) for value in state]
        return type(state)(*values) if hasattr(state, "_fields") else type(state)(values)  # a namedtuple's fields
    return state


def checkpoint_io(trainer: L.Trainer) -> AtomicCheckpointIO | None:
    """The trainer's ``AtomicCheckpointIO``; ``None`` under a strategy that saves another way."""
    io = getattr(trainer.strategy, "checkpoint_io", None)
    return io if isinstance(io, AtomicCheckpointIO) else None


def wait_for_checkpoints(trainer: L.Trainer) -> None:
    """Return once this process's background checkpoint writes have landed."""
    io = checkpoint_io(trainer)
    if io is not None:
        io.wait()


ZIP_MAGIC = b"PK\x03\x04"  # the first bytes of a zip archive, even a truncated one


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by ``src/train.py``, loaded without running pickled code (``weights_only``)."""
    path = Path(path)
    if not path.is_file():
        raise config_error("ckpt_path", str(path), "no such file; pass a .ckpt from a run's checkpoints/ folder")
    with path.open("rb") as file:
        if file.read(4) != ZIP_MAGIC:  # torch.save writes a zip archive; torch.load's error on other files is noise
            raise config_error("ckpt_path", str(path), "not a checkpoint (torch.save's files are zip archives); "
                               "pass a .ckpt from a run's checkpoints/ folder")  # fmt: skip
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        reason = str(err).strip().split(". ")[0].splitlines()[0] if str(err).strip() else type(err).__name__
        raise config_error("ckpt_path", str(path), f"not a readable checkpoint ({reason})") from None
    if not isinstance(checkpoint, dict) or CHECKPOINT_KEY not in checkpoint or "state_dict" not in checkpoint:
        raise config_error("ckpt_path", str(path), "not a checkpoint written by src/train.py (no run config inside)")
    return checkpoint
