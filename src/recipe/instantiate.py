"""Hydra instantiation of the pieces of a run, with config errors surfaced as themselves."""

from __future__ import annotations

from typing import Any

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig

from recipe.errors import ConfigError


def instantiate(cfg: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate``, re-raising a ``ConfigError`` that Hydra wrapped in its own exception."""
    try:
        return hydra.utils.instantiate(cfg, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        while cause is not None and not isinstance(cause, ConfigError):
            cause = cause.__cause__
        if cause is None:
            raise
        raise cause from None


def instantiate_all(section: DictConfig | None) -> list[Any]:
    """Every entry of a ``callbacks`` or ``logger`` section that has a ``_target_`` (``null`` entries are off)."""
    if not section:
        return []
    return [instantiate(entry) for entry in section.values() if isinstance(entry, DictConfig) and "_target_" in entry]
