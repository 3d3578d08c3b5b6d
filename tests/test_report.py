"""The run report: each verdict from its curves, and real runs that underfit, overfit and diverge on purpose."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import use_noise_data
from omegaconf import open_dict

from recipe.errors import ConfigError
from recipe.report import Thresholds, diagnose
from train import train

QUIET = [
    "trainer.enable_progress_bar=false",
    "trainer.num_sanity_val_steps=0",
    "~callbacks.progress_bar",
    "~callbacks.model_summary",
    "logger=csv",
    "test=false",
    "scheduler=constant",
]


def epochs(train_loss, val_loss, train_acc, val_acc) -> list[dict[str, float]]:
    rows = zip(train_loss, val_loss, train_acc, val_acc, strict=True)
    return [
        {"epoch": i, "train/loss": tl, "val/loss": vl, "train/acc": ta, "val/acc": va}
        for i, (tl, vl, ta, va) in enumerate(rows)
    ]


@pytest.mark.parametrize(
    "curves, first_loss, verdict",
    [
        (
            epochs([2.0, 1.0, 0.5, 0.3], [2.0, 1.2, 1.1, 1.1], [0.5, 0.8, 0.95, 0.99], [0.5, 0.7, 0.75, 0.75]),
            2.3,
            "overfitting",
        ),
        (
            epochs([2.0, 1.0, 0.5, 0.3], [1.0, 0.8, 0.9, 1.0], [0.5, 0.8, 0.9, 0.9], [0.5, 0.8, 0.85, 0.85]),
            2.3,
            "overfitting",
        ),
        (
            epochs([2.3, 2.2, 2.2, 2.2], [2.3, 2.3, 2.3, 2.3], [0.1, 0.2, 0.2, 0.2], [0.1, 0.15, 0.15, 0.15]),
            2.3,
            "underfitting",
        ),
        (
            epochs([2.0, 1.5, 1.2, 1.0], [2.0, 1.6, 1.3, 1.1], [0.5, 0.6, 0.65, 0.68], [0.5, 0.6, 0.65, 0.67]),
            2.3,
            "still improving",
        ),
        (
            epochs(
                [1.0, 0.5, 0.4, 0.4, 0.4],
                [1.0, 0.45, 0.45, 0.45, 0.45],
                [0.8, 0.9, 0.93, 0.93, 0.93],
                [0.8, 0.9, 0.9, 0.9, 0.9],
            ),
            2.3,
            "healthy",
        ),
        (epochs([1.0, 0.5, math.nan], [1.0, 0.5, math.nan], [0.8, 0.9, 0.1], [0.8, 0.9, 0.1]), 2.3, "diverged"),
        (epochs([900.0, 50.0, 10.0], [800.0, 40.0, 9.0], [0.1, 0.1, 0.1], [0.1, 0.1, 0.1]), 2.3, "diverged"),
    ],
)
def test_each_verdict_follows_from_its_curves(curves, first_loss, verdict):
    assert diagnose(curves, Thresholds(), first_loss).name == verdict


def test_thresholds_are_config():
    curves = epochs([2.0, 1.0, 0.5], [2.0, 1.2, 1.1], [0.5, 0.8, 0.9], [0.5, 0.7, 0.75])
    assert diagnose(curves, Thresholds()).name == "overfitting"
    assert diagnose(curves, Thresholds(overfit_acc_gap=0.2)).name == "still improving"


def test_the_guards_message_makes_the_verdict_diverged():
    curves = epochs([1.0, 0.5], [1.0, 0.5], [0.8, 0.9], [0.8, 0.9])
    verdict = diagnose(curves, Thresholds(), diverged="loss=nan at step 7")
    assert verdict.name == "diverged" and verdict.reason == "loss=nan at step 7"
    assert any("lower the LR 10x" in fix for fix in verdict.fixes)


@pytest.mark.parametrize(
    "key, value", [("overfit_acc_gap", 1.5), ("underfit_acc", -0.1), ("improving_epochs", 0), ("diverged_ratio", 1.0)]
)
def test_nonsense_thresholds_are_rejected(key, value):
    with pytest.raises(ConfigError, match=f"callbacks.run_report.{key}"):
        Thresholds(**{key: value})


def verdict_of(run_dir: Path) -> str:
    return next(line for line in (run_dir / "report.md").read_text().splitlines() if line.startswith("**Verdict"))


def test_tiny_model_on_noise_underfits(make_cfg, tmp_path, capsys):
    cfg = make_cfg(*QUIET, "model.hidden_sizes=[4]", "model.dropout=0", "trainer.max_epochs=12", "optimizer.lr=0.01")
    train(use_noise_data(cfg, n_train=500, batch_size=64))
    assert verdict_of(tmp_path).startswith("**Verdict: underfitting**")
    assert "more capacity" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "run report" in printed and "Verdict: underfitting" in printed


def test_large_model_on_50_samples_overfits(make_cfg, tmp_path):
    cfg = make_cfg(*QUIET, "model.hidden_sizes=[512,512]", "model.dropout=0", "trainer.max_epochs=30")
    train(use_noise_data(cfg, n_train=50, batch_size=10))
    assert verdict_of(tmp_path).startswith("**Verdict: overfitting**")
    report = (tmp_path / "report.md").read_text()
    assert "smaller model" in report and "dropout" in report
    assert "| 0 |" in report and "| 10 |" in report  # early stopping (patience 10) ends it after epoch 10


def test_lr_100_diverges(make_cfg, tmp_path):
    cfg = make_cfg(*QUIET, "optimizer.lr=100", "trainer.max_epochs=2", "trainer.limit_train_batches=10")
    train(cfg)
    assert verdict_of(tmp_path).startswith("**Verdict: diverged**")
    assert "gradient_clip_val=1.0" in (tmp_path / "report.md").read_text()


def first_loss(make_cfg, run_dir: Path, accumulate: int) -> float:
    cfg = make_cfg(
        *QUIET, "trainer.max_epochs=1", "trainer.limit_train_batches=4", f"trainer.accumulate_grad_batches={accumulate}"
    )
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)
    train(cfg)
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    return checkpoint["callbacks"]["RunReport"]["first_loss"]


def test_first_step_loss_does_not_depend_on_gradient_accumulation(make_cfg, tmp_path):
    assert first_loss(make_cfg, tmp_path / "a", 1) == pytest.approx(first_loss(make_cfg, tmp_path / "b", 2))
