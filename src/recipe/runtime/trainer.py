"""Build the Lightning Trainer from the ``trainer`` config, its precision resolved for the device and its
checkpoints written atomically and only the callback hooks with work to do called at each batch."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ProgressBar
from omegaconf import DictConfig

from recipe.instantiate import instantiate
from recipe.runtime.checkpoint_io import AtomicCheckpointIO, remove_partial_saves
from recipe.runtime.precision import resolve_precision
from recipe.runtime.step_hooks import skip_idle_step_hooks


def build_trainer(cfg: DictConfig, **kwargs: Any) -> L.Trainer:
    """The ``lightning.Trainer`` that ``cfg`` describes, its ``precision`` resolved for its accelerator, saving
    through ``AtomicCheckpointIO``; temp files that killed saves left in its checkpoint folders are removed. Lightning
    skips its callbacks' idle per-batch hooks (``recipe.runtime.step_hooks``).

    Args:
        cfg: the ``trainer`` section (``_target_: lightning.Trainer`` and its arguments), already validated.
        **kwargs: objects built elsewhere (``callbacks``, ``logger``).
    """
    precision = resolve_precision(cfg.get("precision", "auto"), cfg.get("accelerator", "auto"))
    if cfg.get("enable_progress_bar") is False:  # the switch wins over callbacks.progress_bar, which Lightning rejects
        kwargs["callbacks"] = [c for c in kwargs.get("callbacks") or () if not isinstance(c, ProgressBar)]
    configured = instantiate(cfg.plugins) if cfg.get("plugins") else []
    plugins = [*(configured if isinstance(configured, list) else [configured]), AtomicCheckpointIO()]
    trainer = instantiate(cfg, precision=precision, plugins=plugins, **kwargs)
    skip_idle_step_hooks(trainer)
    if trainer.is_global_zero:
        for callback in trainer.checkpoint_callbacks:
            if getattr(callback, "dirpath", None):
                remove_partial_saves(callback.dirpath)
    return trainer


def logged_metrics(trainer: L.Trainer) -> dict[str, float]:
    """Every metric the last ``fit`` or ``test`` logged, as floats."""
    return {k: float(v) for k, v in trainer.callback_metrics.items()}
