"""Resuming: a run stopped by SIGTERM or Ctrl-C and resumed from ``last.ckpt`` ends where the run left alone
ends, with its scheduler, optimizer, EarlyStopping, data order and RNG state restored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import ROOT
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from recipe.tasks import run, train

RUN = [
    "model.hidden_sizes=[32]",
    "model.dropout=0.2",  # dropout draws from the RNG, so the RNG state must come back too
    "trainer.max_epochs=6",
    "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=2",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "trainer.deterministic=true",
    "trainer.accelerator=cpu",
    "~callbacks.progress_bar",
    "~callbacks.model_summary",
    "callbacks.run_report.enabled=false",
    "logger=csv",
    "test=false",
]


class SigtermAfterEpoch(L.Callback):
    """Sends this process SIGTERM at the end of ``epoch`` (0-based), as a cluster's scheduler would."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGTERM)


def cfg_for(run_dir: Path, *overrides: str) -> DictConfig:
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=[f"paths.output_dir={run_dir}", f"paths.log_dir={run_dir}", *RUN, *overrides])


def final_state(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def early_stopping(checkpoint: dict) -> dict:
    return next(v for k, v in checkpoint["callbacks"].items() if k.startswith("EarlyStopping"))


def assert_same_run(resumed: dict, straight: dict, resumed_state: dict, straight_state: dict) -> None:
    assert resumed["val/loss"] == pytest.approx(straight["val/loss"], abs=1e-6)
    assert resumed["val/acc_best"] == pytest.approx(straight["val/acc_best"], abs=1e-6)
    assert resumed_state["global_step"] == straight_state["global_step"] == 24
    for name, weight in straight_state["state_dict"].items():
        torch.testing.assert_close(resumed_state["state_dict"][name], weight, rtol=0, atol=1e-6)
    assert early_stopping(resumed_state)["wait_count"] == early_stopping(straight_state)["wait_count"]
    assert early_stopping(resumed_state)["best_score"] == pytest.approx(early_stopping(straight_state)["best_score"])


@pytest.mark.parametrize("scheduler", ["warmup_cosine", "constant"])
def test_sigterm_after_epoch_3_then_resume_equals_the_run_left_alone(tmp_path, scheduler):
    straight = train(cfg_for(tmp_path / "straight", f"scheduler={scheduler}"))

    interrupted = tmp_path / "interrupted"
    with pytest.raises(SystemExit):
        train(
            cfg_for(
                interrupted,
                f"scheduler={scheduler}",
                "+callbacks.sigterm._target_=test_resume.SigtermAfterEpoch",
                "+callbacks.sigterm.epoch=2",
            )
        )
    assert final_state(interrupted)["epoch"] == 3 and final_state(interrupted)["global_step"] == 12

    last = interrupted / "checkpoints" / "last.ckpt"
    resumed = train(cfg_for(tmp_path / "resumed", f"scheduler={scheduler}", f"ckpt_path={last}"))
    assert_same_run(resumed, straight, final_state(tmp_path / "resumed"), final_state(tmp_path / "straight"))


def test_three_epochs_resumed_to_six_equal_six_straight_with_a_constant_schedule(tmp_path):
    straight = train(cfg_for(tmp_path / "straight", "scheduler=constant"))
    first3 = train(cfg_for(tmp_path / "first3", "scheduler=constant", "trainer.max_epochs=3"))
    last = tmp_path / "first3" / "checkpoints" / "last.ckpt"
    assert final_state(tmp_path / "first3")["state_dict"]["val_acc_best.max_value"] == first3["val/acc_best"]
    resumed = train(cfg_for(tmp_path / "resumed", "scheduler=constant", f"ckpt_path={last}"))
    assert_same_run(resumed, straight, final_state(tmp_path / "resumed"), final_state(tmp_path / "straight"))
    assert resumed["val/acc_best"] >= first3["val/acc_best"]


def test_ctrl_c_saves_last_ckpt_and_the_run_resumes_from_it(tmp_path):
    run_dir, last = tmp_path / "run", tmp_path / "run" / "checkpoints" / "last.ckpt"
    kept = [a for a in RUN if not a.startswith(("trainer.max_epochs", "callbacks.run_report"))]
    args = [*kept, "trainer.max_epochs=1000", "~callbacks.early_stopping"]
    command = [sys.executable, str(ROOT / "src" / "train.py"), f"hydra.run.dir={run_dir}", *args]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not last.is_file() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=120)[0]
    assert process.returncode != 0
    assert f"Interrupted: saved {last}" in output and f"ckpt_path={last}" in output
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert 0 < saved["global_step"] < 1000 * 4
    assert "Interrupted in epoch" in (run_dir / "report.md").read_text()

    resumed_dir = tmp_path / "resumed"
    resumed = train(cfg_for(resumed_dir, f"trainer.max_epochs={saved['epoch'] + 2}", f"ckpt_path={last}"))
    assert final_state(resumed_dir)["global_step"] == (saved["epoch"] + 2) * 4  # 4 batches an epoch
    assert resumed["val/loss"] > 0


def test_resuming_from_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    missing = tmp_path / "run" / "checkpoints" / "last.ckpt"
    with pytest.raises(SystemExit) as exit_info:
        run(train, cfg_for(tmp_path / "resumed", f"ckpt_path={missing}"))
    assert exit_info.value.code == 2
    assert f"error: ckpt_path='{missing}': no such file" in capsys.readouterr().err
