"""Which task a run does, classification or regression: the one named, or the one the data module reports."""

from __future__ import annotations

import lightning as L
from omegaconf import DictConfig, OmegaConf, open_dict

from recipe.cli.config import CONF_DIR
from recipe.errors import config_error

TASKS = ("classification", "regression")
MODULES = {"classification": "classifier", "regression": "regressor"}  # conf/module/
DEFAULT = "classification"  # conf/train.yaml and conf/callbacks/default.yaml hold its values


def _overlay(task: str) -> DictConfig:
    return OmegaConf.load(CONF_DIR / "task" / f"{task}.yaml")


def _module(task: str) -> DictConfig:
    return OmegaConf.load(CONF_DIR / "module" / f"{MODULES[task]}.yaml")


def choose_task(cfg: DictConfig, datamodule: L.LightningDataModule) -> str:
    """The run's task, checked against the data's (a data module's ``task``; classification when it has none).

    With ``task: null`` and data for another task than the default, ``conf/task/<task>.yaml`` replaces the
    default's values in ``cfg``: the module (unless the user named another class) and each value the user left
    at the classification default (``optimized_metric``, the checkpoint's ``monitor``, ``mode``, ``filename``).
    """
    data_task = getattr(datamodule, "task", DEFAULT)
    task = cfg.get("task") or data_task
    if task not in TASKS:
        raise config_error("task", task, f"one of {', '.join(TASKS)}")
    if task != data_task:
        raise config_error("task", task, f"but the data is for {data_task}: leave task null, or set data.task")
    if not cfg.get("task") and task != DEFAULT:
        default, chosen = _overlay(DEFAULT), _overlay(task)
        with open_dict(cfg):
            if cfg.get("module") and cfg.module.get("_target_") == _module(DEFAULT)._target_:
                cfg.module = _module(task)
            for key in (
                "optimized_metric",
                *(f"callbacks.model_checkpoint.{k}" for k in ("monitor", "mode", "filename")),
            ):
                if OmegaConf.select(cfg, key) is not None and OmegaConf.select(cfg, key) == OmegaConf.select(
                    default, key
                ):
                    OmegaConf.update(cfg, key, OmegaConf.select(chosen, key))
    with open_dict(cfg):
        cfg.task = task
    return task
