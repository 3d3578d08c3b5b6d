"""What a run prints: the resolved config as a tree, and one-line errors."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import rich
import rich.syntax
import rich.tree
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

FIRST = ("data", "model", "module", "optimizer", "scheduler", "trainer", "callbacks", "logger")


@rank_zero_only
def print_config_tree(cfg: DictConfig, skip: Sequence[str] = ("hydra", "paths")) -> None:
    """Print every top-level section of ``cfg`` as a branch, the main groups first."""
    tree = rich.tree.Tree("config", style="bold")
    keys = [k for k in FIRST if k in cfg] + [k for k in cfg if k not in FIRST and k not in skip]
    for key in keys:
        value = cfg[key]
        text = OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        tree.add(key, style="yellow").add(rich.syntax.Syntax(text.rstrip(), "yaml", background_color="default"))
    rich.print(tree)


def print_error(message: str) -> None:
    """The one line a user sees for a bad value or file."""
    print(f"error: {message}", file=sys.stderr)
