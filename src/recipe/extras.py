"""The optional parts of the install (``pip install -e '.[extra]'``, see pyproject.toml) and the one line that names
the extra a run needs when its package is missing. Light to import: the checks run before torch loads."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

from recipe.errors import config_error

# package -> the extra that installs it
EXTRAS = {"mlflow": "trackers", "wandb": "trackers", "psycopg": "postgres", "ray": "ray"}
LOGGER_PACKAGES = {"mlflow": "mlflow", "wandb": "wandb"}  # logger=<option> -> the package it needs


def require(package: str, key: str, value: Any) -> None:
    """Raise the one-line ``ConfigError`` naming the extra when ``key=value`` needs ``package`` and it is missing."""
    if importlib.util.find_spec(package) is None:
        extra = EXTRAS[package]
        raise config_error(key, value, f"needs the {extra!r} extra ({package}): pip install -e '.[{extra}]'")


def require_storage_driver(url: str | None) -> None:
    """``hydra.sweeper.storage=postgresql://...`` needs psycopg, the ``postgres`` extra (the URL's password is not
    printed)."""
    scheme = str(url or "").split("://", 1)[0]
    if scheme in ("postgresql", "postgresql+psycopg"):
        require("psycopg", "hydra.sweeper.storage", f"{scheme}://...")


def check_extras(cfg: Mapping[str, Any]) -> None:
    """Every extra a composed config needs is installed: its loggers' packages, its sweep storage's driver."""
    loggers = cfg.get("logger") or {}
    for name in loggers if isinstance(loggers, Mapping) else ():
        if name in LOGGER_PACKAGES:
            require(LOGGER_PACKAGES[name], "logger", name)
    sweeper = (cfg.get("hydra") or {}).get("sweeper") or {}
    if isinstance(sweeper, Mapping):
        require_storage_driver(sweeper.get("storage"))
        if str(sweeper.get("_target_", "")).startswith("hydra_plugins.recipe_ray_tune_sweeper."):
            require("ray", "hydra/sweeper", "ray_tune")
