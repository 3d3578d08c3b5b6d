"""Test a checkpoint: ``python src/eval.py ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt``."""

from __future__ import annotations

import recipe.cli.openmp  # noqa: F401  first: OpenMP reads its wait policy when torch loads

# isort: split
from recipe.cli.early import answer_early
from recipe.validation.checks import check_eval_config

if __name__ == "__main__":  # --help, a typo or a bad value: answered in one line before torch loads
    answer_early("eval", check_eval_config)

# isort: split
import hydra
from omegaconf import DictConfig, OmegaConf

from recipe.build import build
from recipe.cli.config import CONF_DIR, set_project_root
from recipe.cli.entry import entry_point, optimized_value
from recipe.instantiate import instantiate_all
from recipe.runtime.checkpoint_io import CHECKPOINT_KEY, load_checkpoint
from recipe.runtime.trainer import build_trainer, logged_metrics

set_project_root()  # conf/paths: logs/ and data/ under the project


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test a checkpoint on the data and model stored inside it, in the run's precision unless told otherwise."""
    checkpoint = load_checkpoint(cfg.ckpt_path)
    run_cfg = OmegaConf.create(checkpoint[CHECKPOINT_KEY])
    datamodule, module = build(OmegaConf.merge(run_cfg, {"optimizer": None, "scheduler": None}))
    module.load_state_dict(checkpoint["state_dict"])
    trainer_cfg = cfg.trainer
    if trainer_cfg.get("precision", "auto") == "auto":  # the run's own, so eval reproduces the run's test metric
        trainer_cfg = OmegaConf.merge(trainer_cfg, {"precision": run_cfg.trainer.get("precision", "auto")})
    trainer = build_trainer(trainer_cfg, logger=instantiate_all(cfg.get("logger")))
    trainer.test(module, datamodule=datamodule)
    return logged_metrics(trainer)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="eval")
@entry_point(check_eval_config)
def main(cfg: DictConfig) -> float | None:
    return optimized_value(evaluate(cfg), cfg.optimized_metric)


if __name__ == "__main__":
    main()
