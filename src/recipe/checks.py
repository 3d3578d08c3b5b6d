"""Checks on the ``trainer`` section before anything is built, so a nonsense value fails in one line
(Lightning rejects some of these itself, but with a traceback, and accepts others, such as ``max_epochs=0``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from recipe.errors import config_error


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _limit(v: Any) -> bool:
    return (_is_int(v) and v >= 0) or (isinstance(v, float) and 0.0 <= v <= 1.0)


RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "max_epochs": (lambda v: v is None or (_is_int(v) and (v == -1 or v >= 1)), "-1 (no limit) or an integer >= 1"),
    "max_steps": (lambda v: _is_int(v) and (v == -1 or v >= 1), "-1 (no limit) or an integer >= 1"),
    "min_epochs": (lambda v: v is None or (_is_int(v) and v >= 0), "null or an integer >= 0"),
    "accumulate_grad_batches": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "gradient_clip_val": (lambda v: v is None or (isinstance(v, (int, float)) and v >= 0), "null or a number >= 0"),
    "gradient_clip_algorithm": (lambda v: v in (None, "norm", "value"), "norm or value"),
    "check_val_every_n_epoch": (lambda v: v is None or (_is_int(v) and v >= 1), "null or an integer >= 1"),
    "log_every_n_steps": (lambda v: v is None or (_is_int(v) and v >= 1), "an integer >= 1"),
    "num_sanity_val_steps": (lambda v: v is None or (_is_int(v) and v >= -1), "-1 (all batches) or an integer >= 0"),
    "limit_train_batches": (_limit, "a fraction in [0, 1] or a whole number of batches"),
    "limit_val_batches": (_limit, "a fraction in [0, 1] or a whole number of batches"),
    "limit_test_batches": (_limit, "a fraction in [0, 1] or a whole number of batches"),
}


def check_trainer(trainer: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` for the first ``trainer.*`` value outside its allowed range."""
    for key, (ok, allowed) in RULES.items():
        if key in trainer and not ok(trainer[key]):
            raise config_error(f"trainer.{key}", trainer[key], f"must be {allowed}")
    max_epochs, min_epochs = trainer.get("max_epochs"), trainer.get("min_epochs")
    if min_epochs and max_epochs and max_epochs > 0 and min_epochs > max_epochs:
        raise config_error("trainer.min_epochs", min_epochs, f"must not exceed trainer.max_epochs={max_epochs}")
