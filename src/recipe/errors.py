"""One error type for bad configuration, reported as a single line naming the key, value and what is allowed."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A config value that makes no sense; the message is shown to the user as is."""


def config_error(key: str, value: Any, allowed: str) -> ConfigError:
    """Build the standard message: ``key=value: allowed``."""
    return ConfigError(f"{key}={value!r}: {allowed}")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says where, at which LR, and what to try."""
