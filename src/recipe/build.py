"""The data module and the LightningModule a config describes; shapes flow from the data to the net."""

from __future__ import annotations

import lightning as L
from omegaconf import DictConfig

from recipe.errors import config_error
from recipe.instantiate import instantiate


def check_task(task: str, data_task: str) -> None:
    """The run's ``task`` (its module, metrics and checkpoint monitor) must be the one the data is for."""
    if task != data_task:
        raise config_error("task", task, f"but the data is for {data_task}: add task={data_task} to the command")


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule]:
    """``cfg.data`` and ``cfg.module`` around ``cfg.model``'s net; ``compile: true`` compiles the net in place
    (parameter names and checkpoint keys stay those of the plain net). A data module's ``task`` (``data=csv``
    infers it from the target) must match ``cfg.task``."""
    optimizer = instantiate(cfg.optimizer) if cfg.get("optimizer") else None
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    datamodule = instantiate(cfg.data)
    check_task(cfg.get("task", "classification"), getattr(datamodule, "task", "classification"))
    net = instantiate(cfg.model, input_shape=datamodule.input_shape, num_classes=datamodule.num_classes)
    if cfg.get("compile"):
        net.compile()
    module = instantiate(
        cfg.module, net=net, num_classes=datamodule.num_classes, optimizer=optimizer, scheduler=scheduler
    )
    return datamodule, module
