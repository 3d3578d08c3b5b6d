"""The default run never waits for the device inside a training step that the logger does not write: no
``.item()``, ``.tolist()``, ``bool(tensor)``, ``float(tensor)`` or ``int(tensor)`` there, counted on CPU; on a GPU,
the same steps run under ``torch.cuda.set_sync_debug_mode("error")``."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from lightning.pytorch.trainer import call

from recipe.callbacks.progress import ProgressBar
from recipe.runtime.private_api import logger_writes_this_step
from train import train

# The default config, made short: 2 epochs of 12 batches, the logger writing at steps 9 and 19 (log_every_n_steps 10)
SHORT = [
    "trainer.log_every_n_steps=10",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=12",
    "trainer.limit_val_batches=2",
    "trainer.num_sanity_val_steps=0",
    "test=false",
]
READS = ("item", "tolist", "__bool__", "__float__", "__int__")
# torch.optim's step counter is a host tensor (unless capturable): its .item() reads no device memory
HOST_ONLY = (str(Path(torch.optim.__file__).parent),)


def during_quiet_steps(enter: Callable[[], None], leave: Callable[[], None]) -> Callable:
    """A stand-in for Lightning's ``_call_callback_hooks`` that calls ``enter`` before the callbacks'
    ``on_train_batch_start`` of each step the logger does not write and ``leave`` after their ``on_train_batch_end``:
    the step's hooks, forward, backward, clipping and optimizer step, not the data loading before it."""
    original = call._call_callback_hooks

    def hooks(trainer, hook_name, *args, **kwargs):
        quiet = hook_name == "on_train_batch_start" and not logger_writes_this_step(trainer)
        if quiet:
            enter()
        original(trainer, hook_name, *args, **kwargs)
        if hook_name == "on_train_batch_end":
            leave()

    return hooks


def reads_in_quiet_steps(make_cfg, monkeypatch, *overrides: str) -> tuple[Counter, int]:
    """Each read of a tensor's value in the training steps the logger does not write, by the code that read it,
    and how many such steps there were. The progress bar redraws at every batch (its once-a-second limit lifted)."""
    state = {"on": False, "steps": 0}
    reads: Counter = Counter()

    def enter() -> None:
        state["on"], state["steps"] = True, state["steps"] + 1

    def leave() -> None:
        state["on"] = False

    def spy(name: str) -> Callable:
        original = getattr(torch.Tensor, name)

        def read(self, *args, **kwargs):
            caller = sys._getframe(1)
            if state["on"] and not caller.f_code.co_filename.startswith(HOST_ONLY):
                reads[f"{Path(caller.f_code.co_filename).name}:{caller.f_code.co_name} {name}"] += 1
            return original(self, *args, **kwargs)

        return read

    for name in READS:
        monkeypatch.setattr(torch.Tensor, name, spy(name))
    monkeypatch.setattr(call, "_call_callback_hooks", during_quiet_steps(enter, leave))
    monkeypatch.setattr(ProgressBar, "_due", lambda self, batch_idx, batches: True)
    train(make_cfg(*SHORT, *overrides))
    return reads, state["steps"]


def test_the_default_run_reads_no_tensor_in_the_steps_the_logger_does_not_write(make_cfg, monkeypatch):
    reads, steps = reads_in_quiet_steps(make_cfg, monkeypatch)
    assert steps == 22  # 24 steps, less the logger's 9 and 19
    assert reads == Counter()


def test_the_count_sees_a_guard_that_reads_the_loss_every_step(make_cfg, monkeypatch):
    reads, _ = reads_in_quiet_steps(make_cfg, monkeypatch, "callbacks.divergence_guard.check_every_n_steps=1")
    assert reads["guards.py:_check_training_losses __bool__"] == 22


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_default_run_on_a_gpu_never_syncs_in_the_steps_the_logger_does_not_write(make_cfg, monkeypatch):
    steps = Counter()

    def enter() -> None:
        steps["quiet"] += 1
        torch.cuda.set_sync_debug_mode("error")  # a synchronizing CUDA call raises

    monkeypatch.setattr(
        call, "_call_callback_hooks", during_quiet_steps(enter, lambda: torch.cuda.set_sync_debug_mode(0))
    )
    try:
        train(make_cfg(*SHORT, "trainer=gpu"))
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert steps["quiet"] == 22
