"""What a run needs to be resumed exactly: a checkpoint written on Ctrl-C or SIGTERM, and the RNG states."""

from __future__ import annotations

import random
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException


def last_checkpoint_path(trainer: L.Trainer) -> Path | None:
    """``<dirpath>/last.ckpt`` of the run's ``ModelCheckpoint``; ``None`` when checkpointing is off."""
    checkpoint = next((c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)), None)
    if checkpoint is None or checkpoint.dirpath is None:
        return None
    return Path(checkpoint.dirpath) / f"{checkpoint.CHECKPOINT_NAME_LAST}{checkpoint.FILE_EXTENSION}"


def no_validation_follows(trainer: L.Trainer, batch_idx: int) -> bool:
    """Whether a checkpoint saved after training batch ``batch_idx`` resumes exactly: no validation follows that
    batch (validation once an epoch, and not the epoch's last batch). A save between a batch and its validation
    would resume with that validation skipped."""
    validates_per_epoch = isinstance(trainer.val_check_interval, float) and trainer.val_check_interval == 1.0
    return validates_per_epoch and batch_idx + 1 < trainer.num_training_batches


def resume_command(trainer: L.Trainer) -> str:
    """The command that goes on with this run in its own folder (``trainer.default_root_dir``, the run folder):
    ``ckpt_path=auto`` takes the folder's newest checkpoint and the run's own config (``recipe.runtime.resume_path``).
    A folder name that Hydra would not read as one plain value (a sweep job's ``lr=0.1,seed=1``) is quoted for Hydra
    and for the shell."""
    folder = str(trainer.default_root_dir)
    run_dir = f"hydra.run.dir={folder}" if re.fullmatch(r"[\w./:+-]+", folder) else f"\"hydra.run.dir='{folder}'\""
    return f"python src/train.py ckpt_path=auto {run_dir}"


class CheckpointOnInterrupt(Callback):
    """Stops a run cleanly on Ctrl-C or SIGTERM: saves the whole training state to ``last.ckpt``, says how to
    resume, and exits with 130 (Ctrl-C) or 143 (SIGTERM).

    Lightning acts on SIGTERM between two validation batches too, and a checkpoint saved there resumes with that
    validation skipped (``EarlyStopping`` then finds no ``val/loss``); a ``KeyboardInterrupt`` lands anywhere. So
    during training this callback takes both signals and hands them to Lightning's SIGTERM handler only where a
    checkpoint resumes correctly: after a training batch that no validation follows, after a validation, or at the
    end of an epoch. A second Ctrl-C stops at once, without saving: ``last.ckpt`` keeps the last finished epoch.
    Lightning's ``OnExceptionCheckpoint`` saves on every exception (a diverged run's broken weights too) and deletes
    its file when a run ends normally; this one saves only when the run was stopped from outside.
    """

    def __init__(self) -> None:
        self.stop_signal: signal.Signals | None = None
        self._handlers: dict[signal.Signals, Any] = {}  # the handlers this callback replaced, Lightning's SIGTERM one

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stop_signal = None
        if threading.current_thread() is not threading.main_thread():  # Python takes signals in the main thread only
            return
        # a process started with Ctrl-C ignored (nohup, a background job of a script) keeps ignoring it
        taken = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) != signal.SIG_IGN]
        self._handlers = {s: signal.signal(s, self._request_stop) for s in taken}

    def _request_stop(self, signum: int, frame: Any) -> None:
        self.stop_signal = signal.Signals(signum)
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, self._handlers.pop(signal.SIGINT))  # a second Ctrl-C raises at once
            rank_zero_info("\nCtrl-C: saving the run at the next safe point (Ctrl-C again stops at once, unsaved)")

    def _stop_now_if_asked(self) -> None:
        lightning_sigterm = self._handlers.get(signal.SIGTERM)
        if self.stop_signal is not None and callable(lightning_sigterm):
            lightning_sigterm(signal.SIGTERM, None)  # Lightning raises SIGTERMException at its next check

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if no_validation_follows(trainer, batch_idx):
            self._stop_now_if_asked()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop_now_if_asked()  # no request is taken before training starts, so sanity checks never stop

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop_now_if_asked()

    def _restore_handlers(self) -> None:
        for signum, handler in self._handlers.items():
            if signal.getsignal(signum) == self._request_stop:
                signal.signal(signum, handler)
        self._handlers = {}

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_handlers()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore_handlers()
        path = last_checkpoint_path(trainer)
        if path is None or not isinstance(exception, (SIGTERMException, KeyboardInterrupt)):
            return
        if trainer.state.fn != TrainerFn.FITTING:  # stopped in the final test: the fit's last.ckpt is its end
            said = f"Stopped during the test; {path} holds the end of training, which a resume tests."
        elif isinstance(exception, SIGTERMException):
            trainer.save_checkpoint(path)
            said = f"Interrupted: saved {path}"
        else:
            said = f"Stopped without saving; {path} holds the last finished epoch."
        if path.is_file():
            rank_zero_info(f"{said}\nResume with: {resume_command(trainer)}")


@contextmanager
def exit_code_on_stop(trainer: L.Trainer) -> Iterator[None]:
    """Turns Lightning's stop on SIGTERM (``SIGTERMException``) and its exit after a ``KeyboardInterrupt``
    (``SystemExit(1)``, a second Ctrl-C) into the shell's convention, 128 + the signal: 130 for Ctrl-C, 143 for
    SIGTERM. A stopped run is not a success, nor a failed one."""
    try:
        yield
    except SIGTERMException:
        stopper = next((c for c in trainer.callbacks if isinstance(c, CheckpointOnInterrupt)), None)
        signum = stopper.stop_signal if stopper and stopper.stop_signal else signal.SIGTERM
        raise SystemExit(128 + signum) from None
    except SystemExit as stop:
        if trainer.interrupted and stop.code == 1:  # Lightning's own exit after a KeyboardInterrupt
            raise SystemExit(128 + signal.SIGINT) from None
        raise


class RngState(Callback):
    """Stores the Python, NumPy and torch RNG states in each checkpoint and restores them on resume, so a resumed
    run shuffles its data and draws its dropout masks as the uninterrupted run would have.

    Lightning does not checkpoint RNG states; its ``_collect_rng_states`` holds a NumPy array, which checkpoints
    loaded with ``weights_only=True`` may not contain, so NumPy's state is kept here as a tensor. The CUDA states are
    kept only when the run has started CUDA: reading them starts it, so a CPU run on a machine with a GPU (each
    process of ``trainer=ddp_cpu`` too) would otherwise create a CUDA context on the GPU at its first checkpoint.
    """

    def state_dict(self) -> dict[str, Any]:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        state = {
            "python": random.getstate(),
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        random.setstate(state_dict["python"])
        kind, keys, pos, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        torch.set_rng_state(state_dict["torch"])
        if "cuda" in state_dict and torch.cuda.is_available():
            # set lazily (no CUDA context until the run uses the GPU); a checkpoint from a node with more GPUs
            # than this one sets the ones there are
            for device, cuda_state in enumerate(state_dict["cuda"][: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(cuda_state, device)
