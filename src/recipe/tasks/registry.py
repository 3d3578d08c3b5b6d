"""The tasks a run can do, and which one it does: the one named, or the one the data module reports.

A task is an option of ``conf/task/``: its yaml (``@package _global_``) names its LightningModule's config with
``override /module: <name>`` in its defaults and sets the metric a sweep optimizes and the checkpoints follow. A new
task is its module plus those two yaml files; nothing here lists them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf, open_dict

from recipe.cli.config import CONF_DIR
from recipe.errors import config_error

if TYPE_CHECKING:
    import lightning as L

DEFAULT = "classification"  # the task of data that names none; conf/train.yaml and conf/callbacks hold its values


def tasks() -> list[str]:
    """The options of ``conf/task/``."""
    return sorted(p.stem for p in (CONF_DIR / "task").glob("*.yaml"))


def _overlay(task: str) -> DictConfig:
    return OmegaConf.load(CONF_DIR / "task" / f"{task}.yaml")


def _module(task: str) -> DictConfig:
    """The ``conf/module/`` config the task's yaml names (``override /module: <name>``)."""
    for entry in _overlay(task).get("defaults", []):
        if isinstance(entry, DictConfig) and "override /module" in entry:
            return OmegaConf.load(CONF_DIR / "module" / f"{entry['override /module']}.yaml")
    raise config_error("task", task, f"conf/task/{task}.yaml names no module (defaults: override /module: <name>)")


def module_targets() -> list[str]:
    """The LightningModule class of every task (what ``task: null`` may turn out to train)."""
    return [_module(task)._target_ for task in tasks()]


def choose_task(cfg: DictConfig, datamodule: L.LightningDataModule) -> str:
    """The run's task, checked against the data's (a data module's ``task``; classification when it has none).

    With ``task: null`` and data for another task than the default, ``conf/task/<task>.yaml`` replaces the
    default's values in ``cfg``: the module (unless the user named another class) and each value the user left
    at the classification default (``optimized_metric``, the checkpoint's ``monitor``, ``mode``, ``filename``).
    """
    from recipe.data.contract import optional  # the data package loads torch: here, as the config checks import this

    data_task = optional(datamodule, "task")
    task = cfg.get("task") or data_task
    if task not in tasks():
        raise config_error("task", task, f"one of {', '.join(tasks())} (conf/task/)")
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
