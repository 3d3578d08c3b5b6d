"""Train a model: ``python src/train.py [group=option ...] [key=value ...]`` (``-m`` sweeps).

The recipe reads top to bottom in ``train``; ``main`` wraps it in what every entry point does (``entry_point``:
config check first, config tree, one-line errors and exit codes, the run's log, "Outputs:").
"""

from __future__ import annotations

import recipe.cli.openmp  # noqa: F401  first: OpenMP reads its wait policy when torch loads

# isort: split
from recipe.cli.early import answer_early
from recipe.validation.checks import check_machine, check_train_config

if __name__ == "__main__":  # --help, a typo or a bad value: answered in one line before torch loads
    answer_early("train", check_train_config)

# isort: split
from collections.abc import Sequence

import hydra
import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from omegaconf import DictConfig, OmegaConf

from recipe.build import build
from recipe.callbacks import StoreRunConfig
from recipe.callbacks.resume import exit_code_on_stop
from recipe.cli.config import CONF_DIR, set_project_root
from recipe.cli.entry import entry_point, optimized_value
from recipe.errors import config_error
from recipe.instantiate import instantiate, instantiate_all
from recipe.optim import resolve_lr
from recipe.optim.lr_find import find_lr
from recipe.runtime.checkpoint_io import load_checkpoint
from recipe.runtime.distributed import isolate_multirun_job, launch_env
from recipe.runtime.resume_path import continued_run, resume_path
from recipe.runtime.run_lock import run_lock
from recipe.runtime.trainer import build_trainer, logged_metrics
from recipe.sweeps.trial import pruned_reason
from recipe.tasks.base import global_batch_size
from recipe.tracking.hparams import log_hparams

set_project_root()  # conf/paths: logs/ and data/ under the project
LAUNCH_ENV = launch_env()  # DDP launch variables as the process started, before any sweep job's launch sets them


def train(cfg: DictConfig, extra_callbacks: Sequence[L.Callback] = ()) -> dict[str, float]:
    """Fit (after an LR range test when ``lr_find`` asks), then test the best checkpoint or the final weights
    (``test_weights``); return every logged metric, or nothing when ``lr_find=only`` stops after the plot.

    Args:
        cfg: the composed ``train`` config, checked by ``check_train_config``.
        extra_callbacks: callbacks added to the configured ones (benchmarks and tests use it to observe a run).
    """
    ckpt_path = resume_path(cfg)  # ckpt_path=auto: the run folder's newest checkpoint, or None to start fresh
    if ckpt_path:
        check_resumable(load_checkpoint(ckpt_path), ckpt_path, cfg.trainer)  # a bad file or length: one line
    check_machine(cfg)  # threads within the cores, the GPUs asked for present: judged where the run trains
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True)
    datamodule, module = build(cfg)
    run_config = OmegaConf.to_container(cfg, resolve=True)  # stored in every checkpoint
    callbacks = [*instantiate_all(cfg.get("callbacks")), StoreRunConfig(run_config), *extra_callbacks]
    loggers = instantiate_all(cfg.get("logger"))
    trainer = build_trainer(cfg.trainer, callbacks=callbacks, logger=loggers)

    lr_find = instantiate(cfg.lr_find)
    found = find_lr(trainer, module, datamodule, lr_find) if lr_find.wanted else None
    if lr_find.action == "only":
        return {}
    # the run's LR, resolved once: optimizer.lr scaled for the global batch, or the LR finder's when applied
    applied = found if lr_find.action == "apply" else None
    module.lr = resolve_lr(module.optimizer_spec, global_batch_size(trainer, datamodule), applied)
    run_config["optimizer"]["lr"] = module.lr.configured

    with exit_code_on_stop(trainer):
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    metrics = logged_metrics(trainer)
    if cfg.test and not pruned_reason():  # a pruned trial's test score is never read
        load_test_weights(trainer, module, cfg.test_weights)
        with exit_code_on_stop(trainer):
            trainer.test(module, datamodule=datamodule)
        metrics.update(logged_metrics(trainer))
    log_hparams(loggers, run_config, metrics)
    return metrics


def check_resumable(checkpoint: dict, ckpt_path: str, trainer: DictConfig) -> None:
    """A run cannot resume past its own end: Lightning refuses a checkpoint beyond ``trainer.max_epochs`` only
    after building everything, with a traceback."""
    max_epochs = trainer.get("max_epochs")
    if max_epochs is not None and max_epochs != -1 and checkpoint["epoch"] > max_epochs:
        raise config_error(
            "trainer.max_epochs", max_epochs, f"must be at least {checkpoint['epoch']}, the epoch of {ckpt_path}"
        )


def load_test_weights(trainer: L.Trainer, module: L.LightningModule, which: str) -> None:
    """Put the weights ``test_weights`` names into ``module``: the best checkpoint's ``state_dict`` (which holds
    the averaged weights under EMA/SWA, where Lightning's ``ckpt_path="best"`` restores the raw ones), or keep
    the weights training ended with."""
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if which == "last":
        rank_zero_info("Testing the weights training ended with (test_weights=last).")
    elif best:
        module.load_state_dict(load_checkpoint(best)["state_dict"])
    else:
        rank_zero_info("No best checkpoint (checkpointing off or fast_dev_run): testing the current weights.")


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
@entry_point(check_train_config, prepare=continued_run)  # ckpt_path: the checkpoint's run, with this command's keys
def main(cfg: DictConfig) -> float | list[float] | None:
    isolate_multirun_job(LAUNCH_ENV, __file__)  # in a -m sweep, Lightning's DDP children run this job only
    with run_lock():  # one run per run folder: a second start on it refuses in one line
        return optimized_value(train(cfg), cfg.optimized_metric)


if __name__ == "__main__":
    main()
