"""Build the Lightning Trainer from the ``trainer`` config: values checked, precision resolved for the device."""

from __future__ import annotations

import warnings
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ProgressBar
from omegaconf import DictConfig

from recipe.checks import check_trainer
from recipe.distributed import isolate_multirun_job
from recipe.errors import config_error
from recipe.instantiate import instantiate
from recipe.precision import accelerator_device, resolve_precision

# Lightning's model summary warns for every mixed precision, yet its 32-bit size estimate is then exact:
# mixed precision keeps the weights in float32.
warnings.filterwarnings("ignore", message=r"Precision .*-mixed is not supported by the model summary")


def check_strategy(strategy: Any, accelerator: str) -> None:
    """FSDP runs on CUDA only: say so in one line instead of Lightning's error from inside instantiation."""
    target = strategy.get("_target_", "") if isinstance(strategy, DictConfig) else str(strategy)
    on_cuda = torch.cuda.is_available() and accelerator_device(accelerator) == "cuda"
    if "fsdp" in target.lower() and not on_cuda:
        allowed = "trainer=fsdp needs CUDA GPUs (trainer=ddp_cpu runs on CPU)"
        raise config_error("trainer.accelerator", accelerator, allowed)


def build_trainer(cfg: DictConfig, **kwargs: Any) -> L.Trainer:
    """The ``lightning.Trainer`` that ``cfg`` describes, its ``precision`` resolved for its accelerator.

    Args:
        cfg: the ``trainer`` section (``_target_: lightning.Trainer`` and its arguments).
        **kwargs: objects built elsewhere (``callbacks``, ``logger``).
    """
    check_trainer(cfg)
    check_strategy(cfg.get("strategy", "auto"), cfg.get("accelerator", "auto"))
    precision = resolve_precision(cfg.get("precision", "auto"), cfg.get("accelerator", "auto"))
    isolate_multirun_job()
    if cfg.get("enable_progress_bar") is False:  # the switch wins over callbacks.progress_bar, which Lightning rejects
        kwargs["callbacks"] = [c for c in kwargs.get("callbacks") or () if not isinstance(c, ProgressBar)]
    return instantiate(cfg, precision=precision, **kwargs)
