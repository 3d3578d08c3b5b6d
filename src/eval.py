"""Test a checkpoint: ``python src/eval.py ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt``."""

import hydra
from omegaconf import DictConfig

from recipe.config import CONF_DIR
from recipe.tasks import evaluate, run


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="eval")
def main(cfg: DictConfig) -> float | None:
    return run(evaluate, cfg)


if __name__ == "__main__":
    main()
