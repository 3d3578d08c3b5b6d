"""Predict with a checkpoint: ``python src/predict.py ckpt_path=<ckpt> data.path=<new file or folder>``."""

import hydra
from omegaconf import DictConfig

from recipe.config import CONF_DIR
from recipe.predict import predict
from recipe.tasks import run


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="predict")
def main(cfg: DictConfig) -> float | None:
    return run(predict, cfg)


if __name__ == "__main__":
    main()
