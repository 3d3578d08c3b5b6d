"""The two tasks behind ``src/train.py`` and ``src/eval.py``: compose, instantiate, run, report."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info
from omegaconf import DictConfig, OmegaConf

from recipe.callbacks import StoreRunConfig
from recipe.callbacks.resume import exit_code_on_stop
from recipe.callbacks.run_config import CHECKPOINT_KEY
from recipe.console import print_config_tree, print_error
from recipe.errors import ConfigError, TrainingDiverged, config_error
from recipe.instantiate import instantiate, instantiate_all
from recipe.lr_find import apply_lr, find_lr, wanted
from recipe.sweeps.trial import pruned_reason
from recipe.trainer import build_trainer

Metrics = dict[str, float]
TEST_WEIGHTS = ("best", "last")  # what ``test`` evaluates: the best checkpoint, or the weights training ended with
HPARAM_SECTIONS = ("data", "model", "module", "optimizer", "scheduler", "trainer", "seed")


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return flat


def _metrics(trainer: L.Trainer) -> Metrics:
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def log_hparams(loggers: list[Logger], cfg: DictConfig, metrics: Metrics) -> None:
    """Record the run's settings with its final metrics, for TensorBoard's HPARAMS tab."""
    container = OmegaConf.to_container(cfg, resolve=True)
    params = _flatten({k: container[k] for k in HPARAM_SECTIONS if k in container})
    final = {f"hp/{k.replace('/', '_')}": v for k, v in metrics.items() if k.startswith(("val/", "test/"))}
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):  # the HPARAMS tab pairs settings with metrics
            logger.log_hyperparams(params, metrics=final or None)
        else:
            logger.log_hyperparams(params)
        logger.finalize("success")  # flush and close now: the writer's buffer is not reliably written at exit


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule]:
    """The data module and the LightningModule a config describes; shapes flow from the data to the model."""
    datamodule = instantiate(cfg.data)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    compile_net = model_cfg.pop("compile", False)  # a switch for torch.compile, not an argument of the net
    net = instantiate(model_cfg, input_shape=datamodule.input_shape, num_classes=datamodule.num_classes)
    if compile_net:
        net.compile()  # in place: parameter names and checkpoint keys stay those of the plain net
    optimizer = instantiate(cfg.optimizer) if cfg.get("optimizer") else None
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    module = instantiate(
        cfg.module, net=net, num_classes=datamodule.num_classes, optimizer=optimizer, scheduler=scheduler
    )
    return datamodule, module


def train(cfg: DictConfig, extra_callbacks: Sequence[L.Callback] = ()) -> Metrics:
    """Fit (after an LR range test when ``lr_find`` asks), then test the best checkpoint or the final weights
    (``test_weights``); return every logged metric, or nothing when ``lr_find.only`` stops after the test.

    Args:
        cfg: the composed ``train`` config.
        extra_callbacks: callbacks added to the configured ones (benchmarks and tests use it to observe a run).
    """
    test_weights = cfg.get("test_weights", "best")
    if test_weights not in TEST_WEIGHTS:
        raise config_error("test_weights", test_weights, f"one of {', '.join(TEST_WEIGHTS)}")
    if cfg.get("ckpt_path"):
        load_checkpoint(cfg.ckpt_path)  # a missing or broken file fails here, in one line
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    datamodule, module = build(cfg)
    run_config = OmegaConf.to_container(cfg, resolve=True)
    callbacks = [*instantiate_all(cfg.get("callbacks")), StoreRunConfig(run_config), *extra_callbacks]
    loggers = instantiate_all(cfg.get("logger"))
    trainer = build_trainer(cfg.trainer, callbacks=callbacks, logger=loggers)
    if wanted(cfg.get("lr_find"), cfg.get("ckpt_path")):
        lr = find_lr(trainer, module, datamodule, cfg.lr_find)
        if cfg.lr_find.only:
            return {}
        if cfg.lr_find.apply and lr is not None:
            run_config["optimizer"]["lr"] = apply_lr(module, lr)
    with exit_code_on_stop(trainer):
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
    metrics = _metrics(trainer)
    if cfg.get("test") and not pruned_reason():  # a pruned trial's test score is never read
        if test_weights == "best":
            _load_best(trainer, module)
        else:
            rank_zero_info("Testing the weights training ended with (test_weights=last).")
        with exit_code_on_stop(trainer):
            trainer.test(module, datamodule=datamodule)
        metrics.update(_metrics(trainer))
    log_hparams(loggers, cfg, metrics)
    return metrics


def _load_best(trainer: L.Trainer, module: L.LightningModule) -> None:
    """Put the best checkpoint's weights into ``module``: its state_dict holds the averaged weights under EMA/SWA
    (Lightning's own ``ckpt_path="best"`` reload restores the raw ones)."""
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best:
        module.load_state_dict(load_checkpoint(best)["state_dict"])
    else:
        rank_zero_info("No best checkpoint (checkpointing off or fast_dev_run): testing the current weights.")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by ``train``, loaded without running pickled code (``weights_only``)."""
    path = Path(path)
    if not path.is_file():
        raise config_error("ckpt_path", str(path), "no such file; pass a .ckpt from a run's checkpoints/ folder")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        reason = str(err).strip().split(". ")[0].splitlines()[0] if str(err).strip() else type(err).__name__
        raise config_error("ckpt_path", str(path), f"not a readable checkpoint ({reason})") from None
    if not isinstance(checkpoint, dict) or CHECKPOINT_KEY not in checkpoint or "state_dict" not in checkpoint:
        raise config_error("ckpt_path", str(path), "not a checkpoint written by src/train.py (no run config inside)")
    return checkpoint


def evaluate(cfg: DictConfig) -> Metrics:
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
    return _metrics(trainer)


def run(task: Callable[[DictConfig], Metrics], cfg: DictConfig) -> float | None:
    """Run ``task`` as an entry point does: print the config, report errors in one line, say where outputs went.

    Returns the value of ``cfg.optimized_metric`` (for sweeps), or ``None`` when it is not set.
    """
    print_config_tree(cfg)
    output_dir = HydraConfig.get().runtime.output_dir if HydraConfig.initialized() else None
    try:
        return _optimized_value(task(cfg), cfg.get("optimized_metric"))
    except (ConfigError, TrainingDiverged) as err:
        print_error(str(err))
        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # a sweep records the job as failed and goes on to the next one
        raise SystemExit(2 if isinstance(err, ConfigError) else 1) from None
    finally:
        if output_dir:
            rank_zero_info(f"Outputs: {Path(output_dir).resolve()}")


def _optimized_value(metrics: Metrics, key: str | None) -> float | None:
    if not key or not metrics:  # no metrics: nothing was trained (lr_find.only)
        return None
    if key not in metrics:
        raise config_error("optimized_metric", key, f"not logged by this run; logged: {sorted(metrics)}")
    return metrics[key] if math.isfinite(metrics[key]) else float("nan")
