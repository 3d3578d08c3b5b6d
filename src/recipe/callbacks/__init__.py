"""Small callbacks, one job each, for what Lightning's own callbacks do not cover."""

from recipe.callbacks.run_config import StoreRunConfig

__all__ = ["StoreRunConfig"]
