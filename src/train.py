"""Train a model: ``python src/train.py [group=option ...] [key=value ...]`` (``-m`` sweeps)."""

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))

from recipe.tasks import run, train  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return run(train, cfg)


if __name__ == "__main__":
    main()
