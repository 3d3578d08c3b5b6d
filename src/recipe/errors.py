"""One error type for bad configuration, reported as a single line naming the key, value and what is allowed;
and the range checks every group shares, written once."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A config value that makes no sense; the message is shown to the user as is."""


def config_error(key: str, value: Any, allowed: str) -> ConfigError:
    """Build the standard message: ``key=value: allowed``."""
    return ConfigError(f"{key}={value!r}: {allowed}")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says where, at which LR, and what to try."""


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (full disk, no permission); the message names the folder."""


def is_int(value: Any) -> bool:
    """An integer, and not a boolean (which Python counts as one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a float, and not a boolean."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def require_positive_int(key: str, value: Any) -> None:
    """Raise unless ``value`` is an integer >= 1."""
    if not is_int(value) or value < 1:
        raise config_error(key, value, "must be a positive integer")


def require_fraction(key: str, value: Any, *, zero: bool = True) -> None:
    """Raise unless ``value`` is a number in [0, 1) (or (0, 1) when ``zero`` is false)."""
    if not is_number(value) or not 0 <= value < 1 or (value == 0 and not zero):
        raise config_error(key, value, f"must be in {'[' if zero else '('}0, 1)")
