"""Replay a PBT member's history in a plain run: a piecewise schedule of the values PBT mutated, switched at the
epochs where the member switched them. Idle in a run without a schedule; needs no Ray."""

from __future__ import annotations

from collections.abc import Mapping

import lightning as L
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from recipe.errors import config_error

SCALED = ("lr", "weight_decay")  # per-group values kept in proportion: LR multipliers, a no-decay group's zero
SUPPORTED = "optimizer.<hyperparameter> or model.dropout"


class PiecewiseValues(Callback):
    """At the start of each epoch in ``schedule``, set its values: ``optimizer.<name>`` in every parameter group
    (the LR as a new base at the schedule's current step, weight decay in proportion so that a no-decay group keeps
    zero), ``model.dropout`` in every ``nn.Dropout``.

    Hand-written: Lightning and torch schedule the LR alone, not momentum, weight decay or dropout by epoch.

    Args:
        schedule: epoch -> ``{config key: value}``; epoch 0 holds the values the run starts with.
    """

    def __init__(self, schedule: Mapping[int, Mapping[str, float]]) -> None:
        self.schedule = {int(epoch): dict(values) for epoch, values in schedule.items()}
        for values in self.schedule.values():
            for key in values:
                if not (key.startswith("optimizer.") or key == "model.dropout"):
                    raise config_error("callbacks.pbt_replay.schedule", key, SUPPORTED)
        self.current = dict(self.schedule.get(0, {}))

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        values = self.schedule.get(trainer.current_epoch) if trainer.current_epoch else None
        if not values:
            return
        for key, value in values.items():
            if key == "model.dropout":
                for module in pl_module.modules():
                    if isinstance(module, nn.Dropout):
                        module.p = value
                continue
            name, old = key.removeprefix("optimizer."), self.current.get(key)
            for optimizer in trainer.optimizers:
                for group in optimizer.param_groups:
                    if name in SCALED and old:
                        group[name] *= value / old
                        if name == "lr" and "initial_lr" in group:
                            group["initial_lr"] *= value / old
                    elif name not in SCALED:
                        group[name] = value
            if name == "lr":
                follow_schedules(trainer)
        self.current.update(values)


def follow_schedules(trainer: L.Trainer) -> None:
    """The schedulers' bases follow their groups' new ``initial_lr``; a ``LambdaLR`` sets the LR at its step."""
    for config in trainer.lr_scheduler_configs:
        scheduler = config.scheduler
        if not hasattr(scheduler, "base_lrs"):
            continue
        groups = scheduler.optimizer.param_groups
        scheduler.base_lrs = [g.get("initial_lr", g["lr"]) for g in groups]
        if isinstance(scheduler, LambdaLR):
            for group, base, factor in zip(groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True):
                group["lr"] = base * factor(scheduler.last_epoch)
