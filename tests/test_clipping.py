"""Gradient clipping as configured, and the gradient norm logged before it (``train/grad_norm``)."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import NO_LOGGER
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger

from recipe.build import build
from recipe.errors import ConfigError
from recipe.instantiate import instantiate
from recipe.runtime.trainer import build_trainer
from recipe.validation.checks import check_train_config
from train import train

STEPS = 4


class GradRecorder(Callback):
    """The gradients each optimizer step sees before clipping and after it (the ones the step applied)."""

    def __init__(self) -> None:
        self.before: list[torch.Tensor] = []
        self.after: list[torch.Tensor] = []

    @staticmethod
    def _grads(module: L.LightningModule) -> torch.Tensor:
        return torch.cat([p.grad.detach().flatten().float() for p in module.parameters() if p.grad is not None])

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer) -> None:
        self.before.append(self._grads(pl_module))

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        self.after.append(self._grads(pl_module))  # the step is done, the next batch has not zeroed them yet


def fit(make_cfg, tmp_path: Path, *overrides: str) -> tuple[GradRecorder, list[float]]:
    """A few steps of the default recipe; the recorded gradients and the logged ``train/grad_norm``."""
    cfg = make_cfg(
        "trainer.accelerator=cpu",
        "trainer.max_epochs=1",
        f"++trainer.limit_train_batches={STEPS}",
        "++trainer.limit_val_batches=1",
        "++trainer.enable_progress_bar=false",
        "++trainer.enable_model_summary=false",
        "trainer.log_every_n_steps=1",
        "optimizer.lr=0.1",
        *overrides,
    )
    recorder = GradRecorder()
    datamodule, module = build(cfg)
    logger = CSVLogger(tmp_path, name="csv", version="")
    trainer = build_trainer(cfg.trainer, callbacks=[instantiate(cfg.callbacks.grad_norm), recorder], logger=logger)
    trainer.fit(module, datamodule=datamodule)
    with open(tmp_path / "csv" / "metrics.csv") as f:
        logged = [float(row["train/grad_norm"]) for row in csv.DictReader(f) if row.get("train/grad_norm")]
    return recorder, logged


def test_default_is_norm_clipping_at_one(make_cfg) -> None:
    trainer = build_trainer(make_cfg("trainer.accelerator=cpu").trainer, logger=False)
    assert trainer.gradient_clip_val == 1.0 and trainer.gradient_clip_algorithm == "norm"


def test_tiny_max_norm_bounds_every_step_and_the_log_shows_the_norm_before(make_cfg, tmp_path: Path) -> None:
    max_norm = 1e-3
    recorder, logged = fit(make_cfg, tmp_path, f"trainer.gradient_clip_val={max_norm}")
    assert len(recorder.after) == STEPS
    assert all(g.norm() <= max_norm * (1 + 1e-4) for g in recorder.after)
    assert all(g.norm() > 10 * max_norm for g in recorder.before)
    assert logged == pytest.approx([float(g.norm()) for g in recorder.before], rel=1e-4)


def test_clipping_off_leaves_the_gradient_alone(make_cfg, tmp_path: Path) -> None:
    recorder, logged = fit(make_cfg, tmp_path, "trainer.gradient_clip_val=0")
    assert all(torch.equal(a, b) for a, b in zip(recorder.after, recorder.before, strict=True))
    assert max(float(g.norm()) for g in recorder.after) > 1e-3
    assert logged == pytest.approx([float(g.norm()) for g in recorder.before], rel=1e-4)


def test_clipping_by_value_bounds_each_entry(make_cfg, tmp_path: Path) -> None:
    clip = 1e-4
    recorder, _ = fit(make_cfg, tmp_path, f"trainer.gradient_clip_val={clip}", "trainer.gradient_clip_algorithm=value")
    assert all(g.abs().max() <= clip for g in recorder.after)
    assert all(g.abs().max() > clip for g in recorder.before)


def test_accumulation_logs_one_norm_per_optimizer_step(make_cfg, tmp_path: Path) -> None:
    recorder, logged = fit(make_cfg, tmp_path, "trainer.accumulate_grad_batches=2")
    assert len(recorder.before) == len(logged) == STEPS // 2


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val=-1: must be null or a number >= 0"),
        ("trainer.gradient_clip_algorithm=l2", "trainer.gradient_clip_algorithm='l2': must be norm or value"),
        ("callbacks.grad_norm.norm_type=0", "callbacks.grad_norm.norm_type=0.0: must be > 0"),
    ],
)
def test_bad_clipping_settings_are_config_errors(make_cfg, override: str, message: str) -> None:
    cfg = make_cfg("trainer.accelerator=cpu", *NO_LOGGER, override)
    with pytest.raises(ConfigError, match=message):  # as the entry point runs it: the checks, then the build
        check_train_config(cfg)
        train(cfg)
