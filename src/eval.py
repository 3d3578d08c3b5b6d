"""Test a checkpoint: ``python src/eval.py ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt``."""

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))

from recipe.tasks import evaluate, run  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> float | None:
    return run(evaluate, cfg)


if __name__ == "__main__":
    main()
