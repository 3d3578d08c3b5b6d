"""Compose the project's configs from Python (tests, benchmarks, notebooks) as the entry scripts do."""

from __future__ import annotations

import os
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from recipe.runtime.resume_path import run_folder

PROJECT_ROOT = Path(__file__).resolve().parents[3]
CONF_DIR = PROJECT_ROOT / "conf"


def set_project_root() -> None:
    """``conf/paths`` reads ``$PROJECT_ROOT``: logs/ and data/ go under the project, whatever the working folder;
    ``conf/hydra`` names the run folder with the ``run_folder`` resolver (``recipe.runtime.resume_path.run_folder``)."""
    os.environ.setdefault("PROJECT_ROOT", str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("run_folder"):
        OmegaConf.register_new_resolver("run_folder", run_folder)


def compose_config(*overrides: str, config_name: str = "train") -> DictConfig:
    """``conf/<config_name>.yaml`` with command-line style overrides, through Hydra's Compose API."""
    set_project_root()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(config_name, overrides=list(overrides))
