"""What a run needs to be resumed exactly: a checkpoint written on Ctrl-C or SIGTERM, and the RNG states."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException


def last_checkpoint_path(trainer: L.Trainer) -> Path | None:
    """``<dirpath>/last.ckpt`` of the run's ``ModelCheckpoint``; ``None`` when checkpointing is off."""
    checkpoint = next((c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)), None)
    if checkpoint is None or checkpoint.dirpath is None:
        return None
    return Path(checkpoint.dirpath) / f"{checkpoint.CHECKPOINT_NAME_LAST}{checkpoint.FILE_EXTENSION}"


class CheckpointOnInterrupt(Callback):
    """On Ctrl-C or SIGTERM, saves the whole training state to ``last.ckpt`` and says how to resume.

    Lightning's ``OnExceptionCheckpoint`` saves on every exception (a diverged run's broken weights too) and
    deletes its file when a run ends normally; this one saves only when the run was stopped from outside.
    """

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        path = last_checkpoint_path(trainer)
        if path is None or not isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            return
        trainer.save_checkpoint(path)
        rank_zero_info(f"Interrupted: saved {path}\nResume with: python src/train.py ckpt_path={path}")


class RngState(Callback):
    """Stores the Python, NumPy and torch RNG states in each checkpoint and restores them on resume, so a resumed
    run shuffles its data and draws its dropout masks as the uninterrupted run would have.

    Lightning does not checkpoint RNG states; its ``_collect_rng_states`` holds a NumPy array, which checkpoints
    loaded with ``weights_only=True`` may not contain, so NumPy's state is kept here as a tensor.
    """

    def state_dict(self) -> dict[str, Any]:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        state = {
            "python": random.getstate(),
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        random.setstate(state_dict["python"])
        kind, keys, pos, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        torch.set_rng_state(state_dict["torch"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
