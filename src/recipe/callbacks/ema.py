"""An exponential moving average of the weights whose horizon grows with the run: Lightning's
``EMAWeightAveraging`` with the power-function decay of Karras et al. 2024 ("Analyzing and improving the training
dynamics of diffusion models", EDM2) in place of its fixed one.

A fixed decay of 0.999 averages over about 1000 optimizer steps whatever the run's length: in a run of a few
hundred steps the average still holds much of the untrained weights. The decay after ``t`` updates here is
``(1 - 1/t) ** (1 / horizon)``, so the average spans about ``horizon`` of the updates so far at every point of the
run: it follows the weights closely early on and averages over more steps as the run goes on. Lightning's and
torch's EMA decays are fixed, hence this small subclass of Lightning's ``WeightAveraging``, which takes the decay as
an ``avg_fn`` and updates when ``EMAWeightAveraging`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from lightning.pytorch.callbacks import EMAWeightAveraging, WeightAveraging

from recipe.errors import config_error, is_number


def power_ema_avg_fn(horizon: float) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """An ``AveragedModel`` ``avg_fn``: averaged + (current - averaged) * (1 - decay), with the decay
    ``(n / (n + 1)) ** (1 / horizon)`` after ``n + 1`` updates (``AveragedModel`` copies the first one)."""

    def average(averaged: torch.Tensor, current: torch.Tensor, n_averaged: torch.Tensor) -> torch.Tensor:
        decay = (n_averaged / (n_averaged + 1)) ** (1 / horizon)
        return averaged + (current - averaged) * (1 - decay).to(averaged.dtype)

    return average


class EMA(WeightAveraging):  # not EMAWeightAveraging, which sets its own avg_fn
    """Validation, checkpoints and the final weights use an average of the weights over the last ``horizon``
    of the optimizer steps so far (see the module docstring).

    Args:
        horizon: the fraction of the updates so far that the average spans, in (0, 1].
        update_every_n_steps, update_starting_at_step, update_starting_at_epoch, use_buffers, device: as in
            Lightning's ``EMAWeightAveraging``: the average is updated after every ``update_every_n_steps``-th
            optimizer step from ``update_starting_at_step`` on, and at the end of each epoch from
            ``update_starting_at_epoch`` on.
    """

    should_update = EMAWeightAveraging.should_update  # when to update, from the three update_* attributes

    def __init__(
        self,
        horizon: float = 0.1,
        update_every_n_steps: int = 1,
        update_starting_at_step: int | None = None,
        update_starting_at_epoch: int | None = None,
        use_buffers: bool = True,
        device: Any = None,
    ) -> None:
        if not is_number(horizon) or not 0 < horizon <= 1:
            raise config_error("callbacks.ema.horizon", horizon, "the fraction of the run the average spans, in (0, 1]")
        super().__init__(device=device, use_buffers=use_buffers, avg_fn=power_ema_avg_fn(horizon))
        self.horizon = horizon
        self.update_every_n_steps = update_every_n_steps
        self.update_starting_at_step = update_starting_at_step
        self.update_starting_at_epoch = update_starting_at_epoch
