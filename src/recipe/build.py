"""The data module and the LightningModule a config describes; shapes flow from the data to the net."""

from __future__ import annotations

import lightning as L
from omegaconf import DictConfig

from recipe.data.contract import check_data_module
from recipe.instantiate import instantiate
from recipe.tasks.registry import choose_task
from recipe.validation.checks import check_metrics, check_specs


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule]:
    """``cfg.data`` and ``cfg.module`` around ``cfg.model``'s net; ``compile: true`` compiles the net in place
    (parameter names and checkpoint keys stay those of the plain net). With ``task: null`` the data module's
    ``task`` (``data=csv`` infers it from the target) picks ``conf/task/<task>.yaml``, merged into ``cfg``."""
    optimizer = instantiate(cfg.optimizer) if cfg.get("optimizer") else None
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    check_specs(optimizer, scheduler, cfg.trainer)
    datamodule = instantiate(cfg.data)
    check_data_module(datamodule, cfg.data._target_)
    choose_task(cfg, datamodule)  # fills in the module, metric and monitor of the data's task, beneath the user's
    check_metrics(cfg, datamodule.num_classes)  # now against the chosen module's metrics and the data's classes
    net = instantiate(cfg.model, input_shape=datamodule.input_shape, num_classes=datamodule.num_classes)
    if cfg.get("compile"):
        net.compile()
    module = instantiate(
        cfg.module, net=net, num_classes=datamodule.num_classes, optimizer=optimizer, scheduler=scheduler
    )
    return datamodule, module
