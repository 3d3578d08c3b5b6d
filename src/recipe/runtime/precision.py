"""The device a run trains on: the precision picked for it, and the strategies it can run.

Lightning takes ``precision`` as given and, asked for ``16-mixed`` on CPU, swaps in ``bf16-mixed`` with a
warning. Resolving here first lets the config say ``auto`` and get the right precision silently:

- CUDA GPU that supports bfloat16 (Ampere and later): ``bf16-mixed`` (no gradient scaler needed);
- older CUDA GPU: ``16-mixed`` (float16 autocast with Lightning's gradient scaler);
- CPU: ``bf16-mixed``;
- anything else (MPS, ...): ``32-true``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recipe.errors import config_error

PRECISIONS = ("auto", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true")
ALIASES = {"32": "32-true", "16": "16-mixed", "bf16": "bf16-mixed", "64": "64-true"}


def accelerator_device(accelerator: str) -> str:
    """The device type (``cuda``, ``mps``, ``cpu``, ...) Lightning trains on for ``trainer.accelerator``."""
    import torch  # here, not at the top: the config checks import this module before torch loads

    accelerator = str(accelerator).lower()
    if accelerator == "gpu":
        return "cuda" if torch.cuda.is_available() or not torch.backends.mps.is_available() else "mps"
    if accelerator != "auto":
        return accelerator
    if torch.cuda.is_available():
        return "cuda"
    return "mps" if torch.backends.mps.is_available() else "cpu"


def check_precision(requested: str | int) -> str:
    """The Lightning name of ``requested`` (``auto``, a name or a legacy alias), or a ``ConfigError``."""
    name = ALIASES.get(str(requested), str(requested))
    if name not in PRECISIONS:
        raise config_error("trainer.precision", requested, f"choose one of {list(PRECISIONS)}")
    return name


def check_strategy(strategy: Any, accelerator: str) -> None:
    """FSDP runs on CUDA only: say so in one line instead of Lightning's error from inside instantiation."""
    target = strategy.get("_target_", "") if isinstance(strategy, Mapping) else str(strategy)
    if "fsdp" not in target.lower():
        return
    import torch  # only for FSDP: whether this machine has CUDA

    if not (torch.cuda.is_available() and accelerator_device(accelerator) == "cuda"):
        allowed = "trainer=fsdp needs CUDA GPUs (trainer=ddp_cpu runs on CPU)"
        raise config_error("trainer.accelerator", accelerator, allowed)


def resolve_precision(requested: str | int, accelerator: str = "auto") -> str:
    """The Lightning precision for ``requested`` (``auto`` or a Lightning name) on ``accelerator``.

    Args:
        requested: ``auto``, or one of ``PRECISIONS`` (legacy ``32``, ``16``, ``bf16``, ``64`` accepted).
        accelerator: ``trainer.accelerator`` (``auto``, ``cpu``, ``gpu``, ``cuda``, ``mps``).

    Returns:
        A precision Lightning takes on that device without warning (``16-mixed`` is ``bf16-mixed`` on CPU).
    """
    import torch
    from lightning.pytorch.utilities import rank_zero_info

    name = check_precision(requested)
    device = accelerator_device(accelerator)
    if name == "auto":
        if device == "cuda":
            return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
        return "bf16-mixed" if device == "cpu" else "32-true"
    if name == "16-mixed" and device == "cpu":
        rank_zero_info("trainer.precision=16-mixed needs a CUDA GPU: using bf16-mixed on CPU.")
        return "bf16-mixed"
    return name
