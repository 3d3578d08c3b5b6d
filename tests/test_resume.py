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
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from recipe.cli.entry import optimized_value
from recipe.errors import ConfigError
from recipe.runtime.resume_path import resume_path, run_folder
from train import main, train

CAPTURE = {"cwd": ROOT, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True, "timeout": 300}
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
    "~callbacks.run_report",
    "logger=csv",
    "test=false",
]


@pytest.fixture(autouse=True)
def ctrl_c_as_in_a_terminal():
    """SIGINT as Python sets it up in a foreground terminal; a background job (nohup, CI) may start with it ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


class SignalAt(L.Callback):
    """Raises ``signum`` in this process ``times`` times in ``hook`` of ``epoch`` (0-based), as a cluster's scheduler
    (SIGTERM) or a user at the keyboard (SIGINT) would; ``hook`` is a training or validation hook."""

    def __init__(self, signum: int, epoch: int, hook: str, times: int = 1) -> None:
        self.signum, self.epoch, self.times = signal.Signals(signum), epoch, times
        setattr(self, hook, self._raise)

    def _raise(self, trainer: L.Trainer, *args) -> None:
        if trainer.current_epoch == self.epoch and not trainer.sanity_checking and self.times > 0:
            for _ in range(self.times):
                signal.raise_signal(self.signum)
            self.times = 0


class PauseInTest(L.Callback):
    """Touches ``marker`` at each test batch and sleeps, so that another process can signal this one in the test."""

    def __init__(self, marker: str) -> None:
        self.marker = Path(marker)

    def on_test_batch_start(self, *args) -> None:
        self.marker.touch()
        time.sleep(0.2)


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


def signal_at(signum: int, epoch: int, hook: str, times: int = 1) -> list[str]:
    prefix = "+callbacks.signal_at"
    return [
        f"{prefix}._target_=test_resume.SignalAt",
        f"{prefix}.signum={signum}",
        f"{prefix}.epoch={epoch}",
        f"{prefix}.hook={hook}",
        f"{prefix}.times={times}",
    ]


@pytest.mark.parametrize(
    ("scheduler", "signum", "exit_code"),
    [("warmup_cosine", signal.SIGTERM, 143), ("constant", signal.SIGTERM, 143), ("warmup_cosine", signal.SIGINT, 130)],
)
def test_stopped_during_validation_then_resumed_equals_the_run_left_alone(tmp_path, scheduler, signum, exit_code):
    # Lightning alone stops between two validation batches (SIGTERM) or anywhere (Ctrl-C); that checkpoint resumed
    # with the validation skipped, and EarlyStopping failed on the missing val/loss
    straight = train(cfg_for(tmp_path / "straight", f"scheduler={scheduler}"))

    interrupted = tmp_path / "interrupted"
    with pytest.raises(SystemExit) as stopped:
        train(cfg_for(interrupted, f"scheduler={scheduler}", *signal_at(signum, 2, "on_validation_batch_start")))
    assert stopped.value.code == exit_code
    assert final_state(interrupted)["epoch"] == 3 and final_state(interrupted)["global_step"] == 12  # epoch end
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C is Python's own again

    last = interrupted / "checkpoints" / "last.ckpt"
    resumed = train(cfg_for(tmp_path / "resumed", f"scheduler={scheduler}", f"ckpt_path={last}"))
    assert_same_run(resumed, straight, final_state(tmp_path / "resumed"), final_state(tmp_path / "straight"))


@pytest.mark.parametrize("scheduler", ["warmup_cosine", "constant"])
def test_sigterm_mid_epoch_then_resumed_draws_the_same_batches_as_the_run_left_alone(tmp_path, scheduler):
    # the loader kept no position: the rest of the epoch was drawn from a new permutation
    straight = train(cfg_for(tmp_path / "straight", f"scheduler={scheduler}"))
    interrupted = tmp_path / "interrupted"
    with pytest.raises(SystemExit) as stopped:
        train(cfg_for(interrupted, f"scheduler={scheduler}", *signal_at(signal.SIGTERM, 2, "on_train_batch_start")))
    assert stopped.value.code == 143
    assert final_state(interrupted)["global_step"] == 9  # the first batch of epoch 2, finished

    last = interrupted / "checkpoints" / "last.ckpt"
    resumed = train(cfg_for(tmp_path / "resumed", f"scheduler={scheduler}", f"ckpt_path={last}"))
    assert_same_run(resumed, straight, final_state(tmp_path / "resumed"), final_state(tmp_path / "straight"))


def test_sigterm_during_the_final_test_exits_143_and_the_resumed_run_tests_and_returns_its_metric(tmp_path):
    run_dir = tmp_path / "run"
    overrides = ["test=true", "trainer.limit_test_batches=3"]
    with pytest.raises(SystemExit) as stopped:
        train(cfg_for(run_dir, *overrides, *signal_at(signal.SIGTERM, 6, "on_test_batch_start")))
    assert stopped.value.code == 143  # Lightning's own exit after SIGTERM is code 0
    saved = final_state(run_dir)
    assert saved["global_step"] == 24  # the end of training, not overwritten mid-test

    # the fit had ended: the resumed fit trains nothing, logs nothing, and val/acc_best was "not logged by this run"
    last = run_dir / "checkpoints" / "last.ckpt"
    metrics = train(cfg_for(tmp_path / "resumed", *overrides, f"ckpt_path={last}"))
    assert optimized_value(metrics, "val/acc_best") == pytest.approx(saved["state_dict"]["val_best.max_value"].item())
    assert metrics["test/acc"] > 0 and metrics["val/loss"] == pytest.approx(saved["run_metrics"]["val/loss"])


def test_sigterm_to_a_run_in_its_final_test_prints_the_resume_line_and_the_resume_trains_nothing(tmp_path):
    # the test phase printed no resume line, and the resume trained one more epoch: Lightning keeps no should_stop,
    # and early stopping decides again only after the next validation
    run_dir, marker = tmp_path / "run", tmp_path / "testing"
    stops_early = ["callbacks.early_stopping.patience=1", "callbacks.early_stopping.min_delta=10"]  # after epoch 1
    pause = ["+callbacks.pause._target_=test_resume.PauseInTest", f"+callbacks.pause.marker={marker}"]
    args = [*RUN, "test=true", "trainer.limit_test_batches=50", *stops_early, *pause]
    command = [sys.executable, str(ROOT / "src" / "train.py"), f"hydra.run.dir={run_dir}", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}  # for test_resume.PauseInTest
    process = subprocess.Popen(command, env=env, **{k: v for k, v in CAPTURE.items() if k != "timeout"})
    deadline = time.monotonic() + 120
    while not marker.is_file() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)  # from outside, as a scheduler does, during the test
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 143, output
    last = run_dir / "checkpoints" / "last.ckpt"
    assert f"Stopped during the test; {last} holds the end of training" in output
    assert f"Resume with: python src/train.py ckpt_path=auto hydra.run.dir={run_dir}\n" in output
    assert final_state(run_dir)["global_step"] == 8  # early stopping ended training after epoch 1 of 6

    printed = output.split("Resume with: python ")[1].splitlines()[0].split()
    resumed = subprocess.run([sys.executable, *printed, "++callbacks.pause=null"], env=env, **CAPTURE)
    assert resumed.returncode == 0, resumed.stdout
    assert "the resumed fit trains nothing" in resumed.stdout and "test/acc" in resumed.stdout
    assert final_state(run_dir)["global_step"] == 8


def test_a_run_started_with_ctrl_c_ignored_keeps_ignoring_it(tmp_path):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as nohup or a script's background job starts it
    train(cfg_for(tmp_path / "run", *signal_at(signal.SIGINT, 2, "on_train_batch_start")))
    assert final_state(tmp_path / "run")["global_step"] == 24
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_save(tmp_path, caplog):
    run_dir = tmp_path / "run"
    every_epoch = "callbacks.last_checkpoint.every_seconds=0"  # (and every 10th step, none before the Ctrl-C here)
    with pytest.raises(SystemExit) as stopped:  # Lightning then ignores Ctrl-C; the fixture puts it back
        train(cfg_for(run_dir, every_epoch, *signal_at(signal.SIGINT, 2, "on_train_batch_start", times=2)))
    assert stopped.value.code == 130  # Lightning exits with 1 after a KeyboardInterrupt
    assert final_state(run_dir)["global_step"] == 8  # the end of epoch 1, written by callbacks.last_checkpoint
    assert "Stopped without saving" in caplog.text


def test_three_epochs_resumed_to_six_equal_six_straight_with_a_constant_schedule(tmp_path, capsys):
    straight = train(cfg_for(tmp_path / "straight", "scheduler=constant"))
    first3 = train(cfg_for(tmp_path / "first3", "scheduler=constant", "trainer.max_epochs=3"))
    last = tmp_path / "first3" / "checkpoints" / "last.ckpt"
    assert final_state(tmp_path / "first3")["state_dict"]["val_best.max_value"] == first3["val/acc_best"]
    resumed = train(cfg_for(tmp_path / "resumed", "scheduler=constant", f"ckpt_path={last}"))
    assert_same_run(resumed, straight, final_state(tmp_path / "resumed"), final_state(tmp_path / "straight"))
    assert resumed["val/acc_best"] >= first3["val/acc_best"]

    with pytest.raises(SystemExit) as refused:  # a shorter run than the checkpoint's: one line, before anything
        main(cfg_for(tmp_path / "shorter", "scheduler=constant", f"ckpt_path={last}", "trainer.max_epochs=1"))
    assert refused.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: trainer.max_epochs=1: must be at least 2, the epoch of {last}"
    )


def test_ctrl_c_saves_last_ckpt_and_the_printed_line_continues_that_run_in_its_folder(tmp_path):
    # the printed line was `ckpt_path=<last.ckpt>`: the defaults' warmup-cosine, 30 epochs and early stopping, in a
    # new folder
    run_dir, last = tmp_path / "run", tmp_path / "run" / "checkpoints" / "last.ckpt"
    kept = [a for a in RUN if not a.startswith(("trainer.max_epochs", "~callbacks.run_report"))]
    args = [*kept, "optimizer.lr=0.003", "scheduler=constant", "trainer.max_epochs=1000", "~callbacks.early_stopping"]
    args.append("callbacks.last_checkpoint.every_seconds=0")  # last.ckpt from the first epoch on: the run is going
    command = [sys.executable, str(ROOT / "src" / "train.py"), f"hydra.run.dir={run_dir}", *args]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not last.is_file() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 130, output
    assert "Ctrl-C: saving the run at the next safe point" in output
    assert f"Interrupted: saved {last}" in output
    assert f"Resume with: python src/train.py ckpt_path=auto hydra.run.dir={run_dir}\n" in output
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert 0 < saved["global_step"] < 1000 * 4
    assert "Interrupted in epoch" in (run_dir / "report.md").read_text()

    # the printed line, with a shorter run on top: the run's own config, the change listed, in the same folder
    longer = saved["epoch"] + 2
    printed = output.split("Resume with: python ")[1].splitlines()[0].split()
    resumed = subprocess.run([sys.executable, *printed, f"trainer.max_epochs={longer}"], **CAPTURE)
    assert resumed.returncode == 0, resumed.stdout
    assert f"Resuming the run in {last} with its own config, changed: trainer.max_epochs={longer} (was 1000)\n" in (
        resumed.stdout
    )
    run_config = final_state(run_dir)["run_config"]
    assert run_config["scheduler"]["name"] == "constant" and run_config["optimizer"]["lr"] == 0.003
    assert "early_stopping" not in run_config["callbacks"] and run_config["trainer"]["max_epochs"] == longer
    # it goes on from the saved step (Ctrl-C may land mid-epoch) to the end of the longer run, 4 batches an epoch
    assert saved["global_step"] < final_state(run_dir)["global_step"] == longer * 4


def test_resuming_from_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    missing = tmp_path / "run" / "checkpoints" / "last.ckpt"
    with pytest.raises(SystemExit) as exit_info:
        main(cfg_for(tmp_path / "resumed", f"ckpt_path={missing}"))
    assert exit_info.value.code == 2
    assert f"error: ckpt_path='{missing}': no such file" in capsys.readouterr().err


def test_ckpt_path_auto_starts_fresh_then_the_same_command_continues_in_the_same_folder(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit):  # no checkpoint in the folder yet: a fresh start, stopped mid-epoch
        train(cfg_for(run_dir, "ckpt_path=auto", *signal_at(signal.SIGTERM, 2, "on_train_batch_start")))
    resumed = train(cfg_for(run_dir, "ckpt_path=auto"))
    straight = train(cfg_for(tmp_path / "straight"))
    assert_same_run(resumed, straight, final_state(run_dir), final_state(tmp_path / "straight"))


def test_a_requeued_command_with_ckpt_path_auto_appends_to_its_run_log_and_tensorboard(tmp_path):
    run_dir = tmp_path / "run"
    kept = [a for a in RUN if not a.startswith(("logger", "~callbacks.run_report"))]
    command = [sys.executable, str(ROOT / "src" / "train.py"), f"hydra.run.dir={run_dir}", "ckpt_path=auto", *kept]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}  # for test_resume.SignalAt
    first = subprocess.run([*command, *signal_at(signal.SIGTERM, 2, "on_train_batch_start")], env=env, **CAPTURE)
    assert first.returncode == 143, first.stdout
    # the run's own config holds the signal; the test's requeue turns it off (a key only the run has: ++key=null)
    second = subprocess.run([*command, "++callbacks.signal_at=null"], env=env, **CAPTURE)
    assert second.returncode == 0, second.stdout
    assert "changed: callbacks.signal_at=None\n" in second.stdout
    assert f"Restored all states from the checkpoint at {run_dir / 'checkpoints' / 'last.ckpt'}" in second.stdout
    log = (run_dir / "train.log").read_text()
    assert log.index("Interrupted: saved") < log.index("Restored all states") < log.rindex("Verdict:")
    assert [p.name for p in (run_dir / "tensorboard").iterdir() if p.is_dir()] == []  # one TensorBoard run
    assert len(list((run_dir / "tensorboard").glob("events.*"))) >= 2  # both starts' events, side by side
    assert "| 5 |" in (run_dir / "report.md").read_text()  # the whole run, epochs 0 to 5
    assert final_state(run_dir)["global_step"] == 24


@pytest.fixture
def hydra_run(tmp_path):
    """A config as ``@hydra.main`` sees it, with Hydra's own settings (overrides, mode) in place."""

    def make(*overrides: str, mode: RunMode = RunMode.RUN) -> DictConfig:
        with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("train", overrides=[f"paths.output_dir={tmp_path}", *overrides], return_hydra_config=True)
        cfg.hydra.mode = mode
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield make
    HydraConfig.instance().cfg = None


@pytest.fixture
def no_slurm(monkeypatch):
    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("overrides", "mode", "says"),
    [
        ((), RunMode.RUN, "add hydra.run.dir="),  # a new timestamped folder every time: it would never resume
        (("hydra.run.dir=/tmp/run",), RunMode.MULTIRUN, "not in a -m sweep"),
    ],
)
def test_ckpt_path_auto_without_a_folder_to_come_back_to_is_one_line(hydra_run, no_slurm, overrides, mode, says):
    cfg = hydra_run("ckpt_path=auto", *overrides, mode=mode)
    with pytest.raises(ConfigError, match="ckpt_path='auto'") as error:
        resume_path(cfg)
    assert says in str(error.value)


def test_ckpt_path_auto_in_a_slurm_job_names_the_run_folder_after_the_job(tmp_path, hydra_run, no_slurm, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert run_folder("auto", "2026-01-01_00-00-00.000000") == "slurm-42"
    assert run_folder(None, "2026-01-01_00-00-00.000000") == "2026-01-01_00-00-00.000000"
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "41")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    cfg = hydra_run("ckpt_path=auto")
    assert Path(cfg.hydra.run.dir).name == "slurm-41_3"
    assert resume_path(cfg) is None  # nothing saved yet: a fresh start
    (tmp_path / "checkpoints").mkdir()
    loadable = {"run_config": {}, "state_dict": {}}  # what ckpt_path=auto checks: it loads
    torch.save(loadable, tmp_path / "checkpoints" / "last.ckpt")
    torch.save(loadable, tmp_path / "hpc_ckpt_1.ckpt")  # Lightning's own save on SLURM's requeue signal, newer:
    os.utime(tmp_path / "hpc_ckpt_1.ckpt", (time.time() + 1, time.time() + 1))
    assert resume_path(cfg) == str(tmp_path / "hpc_ckpt_1.ckpt")
