"""What a tracker needs from a run: its folder's name, its sweep, how it ended, and the files kept beside the
metrics."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

REPORT_FILES = ("report.md", "curves.png")  # written by recipe.report.RunReport at the end of fit


def sweep_name() -> str | None:
    """The sweep folder's name in a ``-m`` run (a grid or an Optuna search), which groups its jobs; else None."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return Path(HydraConfig.get().sweep.dir).name


def stop_signal(status: str) -> signal.Signals | None:
    """The signal that stopped the run, for a logger finalized with ``status="failed"`` while Lightning handles the
    exception a stop raises (``KeyboardInterrupt``; ``SIGTERMException``, which ``CheckpointOnInterrupt`` raises
    for Ctrl-C too); None for a run that ended on its own or failed."""
    if status != "failed":
        return None
    stop = sys.exc_info()[1]
    if isinstance(stop, KeyboardInterrupt):
        return signal.SIGINT
    return signal.SIGTERM if isinstance(stop, SIGTERMException) else None


class RunArtifacts:
    """The run folder's ``report.md``, ``curves.png`` and best checkpoint that are new or changed since last asked.

    Lightning finalizes a logger after fit, after test and again when the task ends (or once, on a failure), so a
    tracker that uploads what ``pending`` returns at each of those calls has every file however the run ends, and
    uploads each version of a file once.

    Args:
        run_dir: the run folder.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.best: ModelCheckpoint | None = None
        self._uploaded: dict[Path, int] = {}

    def watch(self, checkpoint_callback: ModelCheckpoint) -> None:
        """Remember the checkpoint callback that keeps the best epoch (the one with a ``monitor``)."""
        if checkpoint_callback.monitor is not None:
            self.best = checkpoint_callback

    def pending(self) -> list[tuple[Path, Path]]:
        """``(file, folder it is named relative to)`` for each file to upload now: the run folder for its own files,
        the file's own folder for a checkpoint kept elsewhere."""
        files = [self.run_dir / name for name in REPORT_FILES]
        if self.best is not None and self.best.best_model_path:
            files.append(Path(self.best.best_model_path))
        new = [path for path in files if path.is_file() and self._uploaded.get(path) != path.stat().st_mtime_ns]
        self._uploaded.update((path, path.stat().st_mtime_ns) for path in new)
        return [(path, self.run_dir if path.is_relative_to(self.run_dir) else path.parent) for path in new]
