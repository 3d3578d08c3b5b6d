"""Sharpness-aware minimization (Foret et al. 2021) around any base optimizer, in Lightning's closure.

pytorch-optimizer's ``SAM`` does the two half steps (perturb the weights by ``rho * g / ||g||``, then restore them
and let the base optimizer step with the gradient taken at the perturbed point) but expects the first gradient to
be computed before ``step``. Lightning's automatic optimization computes no gradient before ``step``: it hands the
whole forward-backward to ``optimizer.step(closure)``. So ``step`` here calls the closure twice, once at the
weights and once at the perturbed weights; Lightning clips the gradients after each call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytorch_optimizer
import torch

from recipe.errors import ConfigError, config_error

FP16 = "optimizer=sam makes two passes through Lightning's closure, which the fp16 gradient scaler does not pass on"


class SAM(pytorch_optimizer.SAM):
    """``base_optimizer`` (a class, built on the same param groups) stepping with the gradient at the worst point
    within ``rho`` (``adaptive``: ASAM's, scaled by each weight's magnitude)."""

    def __init__(self, params: Any, base_optimizer: type[torch.optim.Optimizer], **kwargs: Any) -> None:
        super().__init__(params, base_optimizer, **kwargs)
        # the base's defaults too: OneCycleLR finds the momentum or betas to cycle there
        self.defaults = {**self.base_optimizer.defaults, **self.defaults}

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        if closure is None:
            raise ConfigError(f"{FP16}: set trainer.precision to bf16-mixed or 32-true")
        with torch.enable_grad():
            loss = closure()
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            closure()
        self.second_step()
        return loss


def check_sam_trainer(trainer: Mapping[str, Any]) -> None:
    """Reject what cannot give SAM its closure or its gradient: fp16's scaler, gradient accumulation (the
    second pass would recompute the last micro-batch's gradient only)."""
    if str(trainer.get("precision", "auto")) in ("16", "16-mixed", "16-true"):
        raise config_error("trainer.precision", trainer["precision"], f"{FP16}; use bf16-mixed or 32-true")
    if (trainer.get("accumulate_grad_batches") or 1) > 1:
        raise config_error(
            "trainer.accumulate_grad_batches",
            trainer["accumulate_grad_batches"],
            "must be 1 with optimizer=sam: its second pass recomputes the last micro-batch's gradient only",
        )
