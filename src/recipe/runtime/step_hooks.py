"""The callback hooks Lightning calls at every batch, and how to call only those with work to do.

Lightning calls each per-batch hook (``on_train_batch_start``, ``on_before_backward``, ...) of every callback at
every batch, the no-op inherited from ``Callback`` included, and each call builds a profiler context and the
callback's ``state_key`` (a ``repr`` of its settings for ``ModelCheckpoint``): with the default callbacks, about 90
calls a training step, which on a small model cost as much as a tenth of the step. Lightning's loop calls a hook
only when it is callable (``lightning.pytorch.trainer.call._call_callback_hooks``), so ``skip_idle_step_hooks``
shadows the idle ones with ``None`` on the instance. ``tests/test_step_cost.py`` counts the calls, and fails if a
Lightning upgrade stops honouring it. Written here because Lightning has no setting for it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer import call

TRAIN_STEP_HOOKS = (
    "on_train_batch_start",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "on_train_batch_end",
)
STEP_HOOKS = (
    *TRAIN_STEP_HOOKS,
    *(f"on_{stage}_batch_{when}" for stage in ("validation", "test", "predict") for when in ("start", "end")),
)


def idle_step_hooks(callback: Callback, trainer: L.Trainer) -> set[str]:
    """The per-batch hooks of ``callback`` with nothing to do in this trainer: those that are still the no-op of
    ``Callback`` (neither its class nor the instance set another), and those its own ``idle_step_hooks(trainer)``
    names (a callback whose settings leave a hook idle)."""
    inherited = {h for h in STEP_HOOKS if getattr(getattr(callback, h, None), "__func__", None) is getattr(Callback, h)}
    declared = getattr(callback, "idle_step_hooks", None)
    return inherited | (set(declared(trainer)) if callable(declared) else set())


def skip_idle_step_hooks(trainer: L.Trainer, callbacks: Iterable[Callback] | None = None) -> None:
    """Make Lightning skip the idle per-batch hooks of ``callbacks`` (default: the trainer's) from now on."""
    for callback in trainer.callbacks if callbacks is None else callbacks:
        for hook in idle_step_hooks(callback, trainer):
            setattr(callback, hook, None)


@contextmanager
def count_hook_calls(trainer_hooks: Iterable[str] = TRAIN_STEP_HOOKS) -> Iterator[Counter]:
    """Counts, while the block runs, each call Lightning makes to a callback's hook among ``trainer_hooks``, by
    ``(callback class, hook)``; ``counter["steps"]`` is the number of training batches. For benchmarks and tests."""
    counts: Counter = Counter()
    hooks, original = set(trainer_hooks), call._call_callback_hooks

    def counting(trainer: L.Trainer, hook_name: str, *args: object, **kwargs: object) -> None:
        if hook_name in hooks and trainer.training:
            counts["steps"] += hook_name == "on_train_batch_start"
            for callback in trainer.callbacks:
                if callable(getattr(callback, hook_name)):
                    counts[type(callback).__name__, hook_name] += 1
        original(trainer, hook_name, *args, **kwargs)

    call._call_callback_hooks = counting
    try:
        yield counts
    finally:
        call._call_callback_hooks = original
