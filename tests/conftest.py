"""Shared fixtures: configs composed with Hydra's Compose API, written into a temporary run folder."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(ROOT))

# Tiny but real runs: a few batches, no progress bar or summary noise.
FAST = [
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "~callbacks.progress_bar",
    "~callbacks.model_summary",
]


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose ``conf/<config_name>.yaml`` with overrides; outputs go to ``tmp_path``."""

    def _make(*overrides: str, config_name: str = "train") -> DictConfig:
        with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
            return compose(
                config_name, overrides=[f"paths.output_dir={tmp_path}", f"paths.log_dir={tmp_path}", *overrides]
            )

    return _make


def run_script(script: str, *overrides: str, run_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run ``src/<script>`` as a user would, in a subprocess, writing into ``run_dir``."""
    cmd = [sys.executable, str(ROOT / "src" / script), f"hydra.run.dir={run_dir}", *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
