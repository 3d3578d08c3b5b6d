"""Train a model: ``python src/train.py [group=option ...] [key=value ...]`` (``-m`` sweeps)."""

import sys

import hydra
from omegaconf import DictConfig

from recipe.config import CONF_DIR
from recipe.shorthands import expand_shorthands
from recipe.tasks import run, train


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    return run(train, cfg)


if __name__ == "__main__":
    sys.argv[1:] = expand_shorthands(sys.argv[1:])
    main()
