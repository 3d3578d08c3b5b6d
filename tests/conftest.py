"""Shared fixtures: configs composed with Hydra's Compose API, written into a temporary run folder."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from omegaconf import DictConfig, open_dict

from recipe.cli.config import PROJECT_ROOT, compose_config
from recipe.data import ArrayDataModule, Splits

ROOT = PROJECT_ROOT

# Tiny but real runs: a few batches, with the progress bar on as users run it (a DDP crash hid behind its absence).
FAST = [
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.num_sanity_val_steps=0",
    "~callbacks.model_summary",
]
NO_LOGGER = [*FAST, "~logger", "~callbacks.lr_monitor"]  # the LR monitor needs a logger
# One epoch of a few batches for any trainer config (``++`` sets a key the config may lack).
TINY = [
    "trainer.max_epochs=1",
    "++trainer.limit_train_batches=4",
    "++trainer.limit_val_batches=2",
    "++trainer.limit_test_batches=2",
    "++trainer.num_sanity_val_steps=0",
]


@pytest.fixture(autouse=True)
def benchmark_pages_in_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A benchmark a test runs writes its docs page to a temporary folder, never over docs/measurements/."""
    import pages

    monkeypatch.setattr(pages, "PAGES", tmp_path_factory.mktemp("measurements"))


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose ``conf/<config_name>.yaml`` with overrides; outputs go to ``tmp_path``."""

    def _make(*overrides: str, config_name: str = "train") -> DictConfig:
        paths = [f"paths.output_dir={tmp_path}", f"paths.log_dir={tmp_path}"]
        return compose_config(*paths, *overrides, config_name=config_name)

    return _make


def run_script(script: str, *overrides: str, run_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run ``src/<script>`` as a user would, in a subprocess, writing into ``run_dir``."""
    cmd = [sys.executable, str(ROOT / "src" / script), f"hydra.run.dir={run_dir}", *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)


class RecordLR(L.Callback):
    """The LR of the first param group at every optimizer step."""

    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.lrs.append(optimizer.param_groups[0]["lr"])


class NoiseDataModule(ArrayDataModule):
    """Gaussian features with random labels: nothing generalizes, so a model can only underfit or memorize.

    Args:
        n_train: training samples (val and test get ``n_eval`` each).
        n_eval: validation and test samples.
        features: features per sample.
        classes: number of classes.
        **kwargs: see ``ArrayDataModule``.
    """

    def __init__(self, n_train: int = 500, n_eval: int = 200, features: int = 16, classes: int = 10, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n_train, self.n_eval, self.features, self.classes = n_train, n_eval, features, classes

    def load_splits(self) -> Splits:
        rng = np.random.default_rng(self.seed)

        def split(n: int) -> tuple[np.ndarray, np.ndarray]:
            return rng.normal(size=(n, self.features)), rng.integers(0, self.classes, n)

        return Splits(*split(self.n_train), *split(self.n_eval), *split(self.n_eval))


def use_noise_data(cfg: DictConfig, **kwargs) -> DictConfig:
    """Replace ``cfg.data`` with ``NoiseDataModule(**kwargs)``."""
    with open_dict(cfg):
        cfg.data = {"_target_": "conftest.NoiseDataModule", "seed": 0, **kwargs}
    return cfg


def predicted(datamodule, path) -> tuple[list[str], torch.Tensor]:
    """Every batch of ``datamodule.predict_batches(path)``, joined: the row names and the features."""
    batches = list(datamodule.predict_batches(path))
    return [name for names, _ in batches for name in names], torch.cat([x for _, x in batches])
