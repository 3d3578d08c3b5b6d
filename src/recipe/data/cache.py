"""Whether a data module holds its data in memory or reads it from disk as it goes (``data.cache``)."""

from __future__ import annotations

from lightning.pytorch.utilities import rank_zero_info

from recipe.errors import config_error

CACHES = ("auto", "memory", "disk")


def check_cache(cache: str, limit_mb: float) -> None:
    """Raise a ``ConfigError`` for an unknown ``data.cache`` or a limit that is not a positive number."""
    if cache not in CACHES:
        raise config_error("data.cache", cache, f"one of {', '.join(CACHES)}")
    if isinstance(limit_mb, bool) or not isinstance(limit_mb, (int, float)) or limit_mb <= 0:
        raise config_error("data.cache_limit_mb", limit_mb, "a positive number of megabytes")


def choose_cache(cache: str, nbytes: int, limit_mb: float, what: str) -> str:
    """``memory`` or ``disk``: the one ``cache`` names, or with ``auto`` memory when ``nbytes`` (the data's size in
    memory, as ``what`` describes it) is at most ``limit_mb`` megabytes."""
    if cache != "auto":
        return cache
    chosen = "memory" if nbytes <= limit_mb * 2**20 else "disk"
    relation = "<=" if chosen == "memory" else ">"
    rank_zero_info(
        f"data.cache=auto: {what} take {nbytes / 2**20:.3g} MB {relation} data.cache_limit_mb={limit_mb}: {chosen}"
    )
    return chosen
