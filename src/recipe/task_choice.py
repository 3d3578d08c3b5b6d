"""Which task a run does, classification or regression: the one named, or the one the data module reports."""

from __future__ import annotations

import lightning as L
from omegaconf import DictConfig, OmegaConf, open_dict

from recipe.config import CONF_DIR
from recipe.errors import config_error

TASKS = ("classification", "regression")


def choose_task(cfg: DictConfig, datamodule: L.LightningDataModule) -> str:
    """The run's task, after checking it against the data's (a data module's ``task``, classification when it has
    none). With ``cfg.task`` null, ``conf/task/<task>.yaml`` (module, optimized_metric, checkpoint monitor) is merged
    into ``cfg`` in place, beneath the values ``cfg`` already holds, so the user's overrides win."""
    data_task = getattr(datamodule, "task", "classification")
    task = cfg.get("task") or data_task
    if task not in TASKS:
        raise config_error("task", task, f"one of {', '.join(TASKS)}")
    if task != data_task:
        raise config_error("task", task, f"but the data is for {data_task} (data.task, or the target's type)")
    if not cfg.get("task"):
        with open_dict(cfg):
            cfg.merge_with(OmegaConf.merge(OmegaConf.load(CONF_DIR / "task" / f"{task}.yaml"), cfg))
            cfg.task = task
    return task
