"""What a run prints: the resolved config as a tree, one-line errors, and a copy of it all in the run's log file."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

import rich
import rich.syntax
import rich.tree
from lightning_utilities.core.rank_zero import rank_zero_only  # Lightning's own, light to import
from omegaconf import DictConfig, OmegaConf
from rich.console import Console, ConsoleRenderable, RenderHook
from rich.control import Control

FIRST = ("data", "model", "module", "optimizer", "scheduler", "trainer", "callbacks", "logger")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


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
    """The one line a user sees for a bad value or file: last on the terminal, and in the run's log file."""
    for handler in _log_files():
        handler.stream.write(f"error: {message}\n")
        handler.flush()
    print(f"error: {message}", file=sys.stderr)


def _log_files() -> list[logging.FileHandler]:
    return [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler) and h.stream]


class _Tee:
    """A text stream that writes to the terminal and, without colour codes, to the run's log file."""

    def __init__(self, terminal: TextIO, log: logging.FileHandler) -> None:
        self.terminal, self.log = terminal, log

    def write(self, text: str) -> int:
        self.log.stream.write(ANSI.sub("", text))
        return self.terminal.write(text)

    def flush(self) -> None:
        self.log.flush()
        self.terminal.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding: the terminal's
        return getattr(self.terminal, name)


class _RichToLog(RenderHook):
    """Writes what rich's console prints, uncoloured, into the run's log too while the console prints elsewhere than
    the copied stdout: the progress bar points it at stderr, and Lightning's test table and the run report follow.
    The bar's redraws (bare cursor moves) stay out."""

    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        console = rich.get_console()
        shown = [r for r in renderables if not isinstance(r, Control)]
        if shown and not isinstance(console.file, _Tee):
            for handler in _log_files():
                log = Console(file=handler.stream, width=console.width, color_system=None, highlight=False)
                for renderable in shown:
                    log.print(renderable)
        return renderables


def copy_rich_output_to_log() -> None:
    """Copy what rich's console prints into the run's log from now on. Lightning's rich progress bar replaces the
    console's settings (hooks included) each time it starts a bar: ``recipe.callbacks.ProgressBar`` calls this then."""
    rich.get_console().push_render_hook(_RichToLog())


@contextmanager
def copy_output_to_log() -> Iterator[None]:
    """While a job runs, its log file (Hydra's ``<run>/<task>.log``) gets what the terminal shows: Lightning's
    log messages (routed through the root logger Hydra set up), warnings, and everything printed to stdout.
    The progress bar draws on stderr, so it stays out of the file; what rich prints beside it is copied by
    ``copy_rich_output_to_log``."""
    files = _log_files()
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):  # their own handlers bypass the root logger
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.captureWarnings(True)
    if not files:
        yield
        return
    stdout, sys.stdout = sys.stdout, _Tee(sys.stdout, files[0])
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stdout = stdout
