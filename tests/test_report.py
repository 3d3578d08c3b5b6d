"""The run report: each verdict from its curves, and real runs that underfit, overfit and diverge on purpose."""

from __future__ import annotations

import itertools
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FAST, ROOT, use_noise_data
from omegaconf import open_dict
from sklearn.datasets import load_iris

from recipe.errors import ConfigError
from recipe.report import Thresholds, diagnose
from train import main, train

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
        # one epoch, or three with a settled val loss, cannot show that the val loss settled
        (epochs([1.0], [0.45], [0.9], [0.9]), 2.3, "too few epochs"),
        (epochs([1.0, 0.5, 0.4], [0.455, 0.452, 0.452], [0.3, 0.4, 0.4], [0.3, 0.4, 0.4]), 2.3, "too few epochs"),
        ([], None, "too few epochs"),
        # a small val split: its accuracy lags train's by 2 samples in 12 while the val loss falls every epoch
        (
            epochs(
                [1.2, 0.6, 0.45, 0.40, 0.38],
                [0.75, 0.55, 0.47, 0.42, 0.40],
                [0.4, 0.8, 0.95, 0.98, 1.0],
                [0.67, 0.75, 0.83, 0.83, 0.83],
            ),
            1.2,
            "still improving",
        ),
        (epochs([900.0, 50.0, 10.0], [800.0, 40.0, 9.0], [0.1, 0.1, 0.1], [0.1, 0.1, 0.1]), 2.3, "diverged"),
    ],
)
def test_each_verdict_follows_from_its_curves(curves, first_loss, verdict):
    assert diagnose(curves, Thresholds(), first_loss).name == verdict


def test_thresholds_are_config():
    curves = epochs([2.0, 1.0, 0.5, 0.4], [2.0, 1.2, 1.1, 1.1], [0.5, 0.8, 0.9, 0.9], [0.5, 0.7, 0.75, 0.75])
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
    printed = "".join(capsys.readouterr())  # beside the progress bar, rich prints to stderr
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
    report = (tmp_path / "report.md").read_text()
    # the fixes fit the run: it already clips at 1.0 and trains in bf16, but scheduler=constant has no warmup
    assert "- optimizer.lr=10 (optimizer.lr / 10)\n- scheduler.warmup=0.05 (warm up the LR)\n" in report
    assert "gradient_clip_val" not in report and "precision" not in report


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


def test_a_one_epoch_run_has_too_few_epochs(make_cfg, tmp_path):
    train(make_cfg(*QUIET, "trainer.max_epochs=1", "trainer.limit_train_batches=4", "trainer.limit_val_batches=2"))
    assert verdict_of(tmp_path).startswith("**Verdict: too few epochs** (1 validated epoch(s) show no symptom yet")


def test_a_run_that_trains_nothing_is_one_error_line_and_is_not_tested(make_cfg, capsys):
    cfg = make_cfg(*QUIET[:-2], "trainer.limit_train_batches=0", "trainer.limit_test_batches=2")
    with pytest.raises(SystemExit) as exit_info:
        main(cfg)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(
        "error: trainer.limit_train_batches=0: must be a fraction in (0, 1]"
    )
    assert "(0 trains nothing)" in errors[0]
    assert "test/acc" not in captured.out


def test_iris_whose_val_loss_falls_every_epoch_is_not_overfitting(make_cfg, tmp_path):
    # 15 validation samples: val acc moves in steps of 0.067 and lagged train acc by 0.133 in the last epoch
    data = load_iris()
    np.savez(tmp_path / "iris.npz", x=data.data.astype(np.float32), y=data.target)
    train(make_cfg(*QUIET[:-1], "data=npz", f"data.path={tmp_path / 'iris.npz'}", "trainer.max_epochs=5"))
    table = (tmp_path / "report.md").read_text().split("| epoch |")[1]
    val_loss = [float(row.split("|")[3]) for row in table.splitlines()[2:7]]
    assert all(later < earlier for earlier, later in itertools.pairwise(val_loss))
    assert verdict_of(tmp_path).startswith("**Verdict: still improving**")


@pytest.mark.slow
def test_a_second_ctrl_c_while_the_report_is_drawn_stops_in_one_line(tmp_path):
    # the first Ctrl-C saves and reports; a second one 0.1 s after the resume line lands in the plot of curves.png
    overrides = [o for o in FAST if not o.startswith("trainer.max_epochs")]
    for attempt in range(3):
        run_dir = tmp_path / str(attempt)
        # long enough that the Ctrl-C lands in training on a loaded machine
        cmd = [sys.executable, str(ROOT / "src" / "train.py"), f"hydra.run.dir={run_dir}", "trainer.max_epochs=2000"]
        cmd.append("callbacks.last_checkpoint.every_seconds=0")  # last.ckpt from the first epoch on
        with (tmp_path / f"{attempt}.err").open("w+") as err:
            # SIGINT as at a terminal: a make test run in the background (nohup, &) starts with it ignored
            proc = subprocess.Popen(
                [*cmd, *overrides], stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )  # fmt: skip
            try:
                while not (run_dir / "checkpoints" / "last.ckpt").exists():  # training has started
                    assert proc.poll() is None, err.seek(0) or err.read()[-3000:]
                    time.sleep(0.05)
                proc.send_signal(signal.SIGINT)
                next(line for line in proc.stdout if line.startswith("Resume with:"))
                time.sleep(0.1)
                proc.send_signal(signal.SIGINT)
                rest = proc.stdout.read()
                assert proc.wait(timeout=60) == 130
            finally:
                proc.kill()
            err.seek(0)
            assert "Traceback" not in err.read()
        assert rest.strip() == f"Stopped at once by Ctrl-C; outputs so far: {run_dir.resolve()}"
        if (run_dir / "report.md").exists() and not (run_dir / "curves.png").exists():
            return  # the second Ctrl-C cut the plot
    pytest.fail("the second Ctrl-C never landed in the plot")
