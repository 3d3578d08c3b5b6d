"""Predict with a checkpoint: ``python src/predict.py ckpt_path=<ckpt> data.path=<new file or folder>``."""

from __future__ import annotations

import recipe.cli.openmp  # noqa: F401  first: OpenMP reads its wait policy when torch loads

# isort: split
from recipe.cli.early import answer_early
from recipe.validation.checks import check_predict_config

if __name__ == "__main__":  # --help, a typo or a bad value: answered in one line before torch loads
    answer_early("predict", check_predict_config)

# isort: split
import hydra
from omegaconf import DictConfig

from recipe.cli.config import CONF_DIR, set_project_root
from recipe.cli.entry import entry_point
from recipe.tasks.predict import predict

set_project_root()  # conf/paths: logs/ under the project


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="predict")
@entry_point(check_predict_config)
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
