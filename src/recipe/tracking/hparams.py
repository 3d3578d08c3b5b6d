"""The run's settings beside its final metrics, for TensorBoard's HPARAMS tab (and any logger's params)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning.pytorch.loggers import Logger, TensorBoardLogger

SECTIONS = ("data", "model", "module", "optimizer", "scheduler", "trainer", "seed")


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; values that are not numbers, strings or booleans become strings."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return flat


def log_hparams(loggers: list[Logger], run_config: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
    """Give every logger the run's settings (as the checkpoint stores them) and its final val/test metrics."""
    params = flatten({k: run_config[k] for k in SECTIONS if k in run_config})
    final = {f"hp/{k.replace('/', '_')}": v for k, v in metrics.items() if k.startswith(("val/", "test/"))}
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):  # the HPARAMS tab pairs settings with metrics
            logger.log_hyperparams(params, metrics=final or None)
        else:
            logger.log_hyperparams(params)
        logger.finalize("success")  # flush and close now: the writer's buffer is not reliably written at exit
