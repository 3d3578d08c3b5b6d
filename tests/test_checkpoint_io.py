"""Checkpoint writes: a kill or a full disk mid-write keeps the previous checkpoint loadable and leaves no temp file."""

from __future__ import annotations

import errno
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict, namedtuple
from pathlib import Path

import pytest
import torch
from conftest import ROOT, TINY
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import AttributeDict

import recipe.runtime.checkpoint_io as checkpoint_io
from recipe.cli.config import compose_config
from recipe.errors import CheckpointWriteError
from recipe.runtime.checkpoint_io import TEMP_SUFFIX, atomic_save, snapshot
from recipe.runtime.trainer import build_trainer
from train import main, train

# saves a 40 MB checkpoint over and over, as a long run rewrites last.ckpt, until it is killed
SAVER = """
import sys, torch
from recipe.runtime.checkpoint_io import atomic_save
state = {"weights": torch.randn(10_000_000), "step": 0}
while True:
    state["step"] += 1
    atomic_save(state, sys.argv[1])
    print(state["step"], flush=True)
"""


def leftovers(*folders: Path) -> list[Path]:
    return [p for folder in folders for p in folder.iterdir() if p.name != "last.ckpt"]


def test_a_full_disk_mid_write_keeps_the_old_checkpoint_and_leaves_no_temp_file(tmp_path, monkeypatch):
    folder, scratch = tmp_path / "checkpoints", tmp_path / "tmpdir"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where Lightning's own save stages its temp file
    atomic_save({"step": 1}, folder / "last.ckpt")

    def fill_the_disk(obj, f):  # half the file written, then the disk is full
        f.write(b"x" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_io.torch, "save", fill_the_disk)
    with pytest.raises(CheckpointWriteError) as failed:
        atomic_save({"step": 2}, folder / "last.ckpt")
    assert str(folder) in str(failed.value) and "disk full" in str(failed.value)
    monkeypatch.undo()
    assert torch.load(folder / "last.ckpt", weights_only=True) == {"step": 1}
    assert leftovers(folder, scratch) == []


def test_a_save_killed_mid_write_keeps_the_old_checkpoint_and_the_next_start_removes_its_temp_file(tmp_path):
    folder, scratch = tmp_path / "checkpoints", tmp_path / "tmpdir"
    folder.mkdir()
    scratch.mkdir()
    last = folder / "last.ckpt"
    env = {"TMPDIR": str(scratch), "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    saver = subprocess.Popen([sys.executable, "-c", SAVER, str(last)], env=env, stdout=subprocess.PIPE, text=True)
    saver.stdout.readline()  # one save done: a good last.ckpt exists
    time.sleep(0.15)  # now most likely inside a later write
    saver.send_signal(signal.SIGKILL)
    saver.wait(timeout=30)
    assert torch.load(last, weights_only=True)["weights"].numel() == 10_000_000
    assert [p for p in scratch.iterdir() if p.is_file()] == []  # nothing staged in $TMPDIR
    for partial in leftovers(folder):
        assert partial.name.endswith(TEMP_SUFFIX)

    (folder / f".last.ckpt.abc{TEMP_SUFFIX}").write_bytes(b"x")  # at least one, whatever the kill's timing
    cfg = compose_config(*TINY, f"paths.output_dir={tmp_path}", f"paths.log_dir={tmp_path}")
    build_trainer(cfg.trainer, callbacks=[ModelCheckpoint(dirpath=folder)])
    assert leftovers(folder) == []


def test_a_full_disk_during_a_run_is_one_line_and_keeps_the_earlier_checkpoints(tmp_path, monkeypatch, capsys):
    real_save = checkpoint_io.torch.save

    def full_after_two_epochs(checkpoint, f):
        if checkpoint["global_step"] > 8:  # epochs 0 and 1 saved, 4 steps each
            f.write(b"x" * 1000)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(checkpoint, f)

    monkeypatch.setattr(checkpoint_io.torch, "save", full_after_two_epochs)
    cfg = compose_config(
        *TINY, "trainer.max_epochs=4", "logger=csv", "~callbacks.early_stopping", "~callbacks.run_report",
        "callbacks.last_checkpoint.every_seconds=0",  # last.ckpt at each epoch's end
        f"paths.output_dir={tmp_path}", f"paths.log_dir={tmp_path}",
    )  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        main(cfg)
    assert exited.value.code == 1
    error = capsys.readouterr().err.strip().splitlines()
    folder = tmp_path / "checkpoints"
    assert error[-1].startswith("error: cannot write checkpoint") and f"in {folder}:" in error[-1]
    assert "Traceback" not in "\n".join(error)
    monkeypatch.undo()
    assert torch.load(folder / "last.ckpt", weights_only=True)["global_step"] == 8  # the end of epoch 1
    (best,) = folder.glob("epoch_*.ckpt")
    assert torch.load(best, weights_only=True)["global_step"] in (4, 8)
    assert [p for p in folder.iterdir() if p.name.endswith(TEMP_SUFFIX)] == []


def test_a_background_save_writes_the_state_at_the_call_and_later_saves_and_removals_keep_their_order(tmp_path):
    io = checkpoint_io.AtomicCheckpointIO()
    weights = torch.zeros(1000)
    with io.in_background():
        io.save_checkpoint({"w": weights}, tmp_path / "best.ckpt")
        weights += 1  # the next training step, before the write has landed
        io.save_checkpoint({"w": weights}, tmp_path / "last.ckpt")
    io.remove_checkpoint(tmp_path / "best.ckpt")  # queued behind the writes, so it finds the file
    io.save_checkpoint({"w": weights * 5}, tmp_path / "last.ckpt")  # synchronous: waits, then overwrites
    assert io._queued == []
    assert not (tmp_path / "best.ckpt").exists()
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["w"].unique().tolist() == [5.0]

    with io.in_background():
        io.save_checkpoint({"w": weights}, tmp_path / "best.ckpt")
    io.wait()
    assert torch.load(tmp_path / "best.ckpt", weights_only=True)["w"].unique().tolist() == [1.0]
    io.teardown()


def test_a_failed_background_write_drops_the_queued_ones_and_stops_the_next_save(tmp_path, monkeypatch):
    io = checkpoint_io.AtomicCheckpointIO()
    atomic_save({"step": 1}, tmp_path / "last.ckpt")
    real_save, queued = checkpoint_io.torch.save, threading.Event()

    def full_disk_at_step_2(checkpoint, f):
        if checkpoint["step"] == 2:
            queued.wait(timeout=30)  # fails only once step 3 is queued behind it
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(checkpoint, f)

    monkeypatch.setattr(checkpoint_io.torch, "save", full_disk_at_step_2)
    with io.in_background():
        io.save_checkpoint({"step": 2}, tmp_path / "best.ckpt")
        io.save_checkpoint({"step": 3}, tmp_path / "last.ckpt")  # never written: the disk filled before it
    queued.set()
    with pytest.raises(CheckpointWriteError, match="disk full"):
        io.teardown()
    assert torch.load(tmp_path / "last.ckpt", weights_only=True) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_epoch_end_saves_run_in_the_background_and_a_stop_signal_save_does_not(tmp_path, monkeypatch):
    threads = []
    real_save = checkpoint_io.atomic_save

    def recording_save(checkpoint, path):
        threads.append((Path(path).name, threading.current_thread().name))
        real_save(checkpoint, path)

    monkeypatch.setattr(checkpoint_io, "atomic_save", recording_save)
    cfg = compose_config(*TINY, "trainer.max_epochs=2", f"paths.output_dir={tmp_path}", f"paths.log_dir={tmp_path}")
    train(cfg)
    assert len(threads) >= 3 and all(name.startswith("checkpoint-writer") for _, name in threads)
    assert {file for file, _ in threads} >= {"last.ckpt"}

    threads.clear()
    trainer = build_trainer(cfg.trainer)
    trainer.strategy.checkpoint_io.save_checkpoint({"step": 1}, tmp_path / "interrupted.ckpt")  # as on SIGTERM
    assert threads == [("interrupted.ckpt", threading.current_thread().name)]


def test_a_snapshot_copies_every_tensor_and_container_and_keeps_their_types():
    Pair = namedtuple("Pair", "step lr")
    lrs = [Pair(0, 0.1)]
    state = OrderedDict(w=torch.zeros(2), report={"lrs": lrs}, loops=AttributeDict(step=1))
    copied = snapshot(state)
    state["w"].add_(1)
    lrs.append(Pair(1, 0.2))
    assert copied["w"].tolist() == [0.0, 0.0] and copied["report"]["lrs"] == [Pair(0, 0.1)]
    assert type(copied) is OrderedDict and type(copied["loops"]) is AttributeDict and copied["loops"].step == 1
    assert type(copied["report"]["lrs"][0]) is Pair
