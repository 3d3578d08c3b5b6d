"""A run folder in trouble: a disk that fills during a checkpoint save, a second run started on a folder in use,
a folder that cannot be written at start. Each ends in one line, and the checkpoints already there are kept."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, TINY, run_script
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from recipe.cli.config import compose_config
from recipe.cli.entry import entry_point
from recipe.errors import CheckpointWriteError, ConfigError
from recipe.runtime.checkpoint_io import TEMP_SUFFIX, AtomicCheckpointIO, atomic_save
from recipe.runtime.run_lock import LOCK_FILE, run_lock
from train import main

CHECKPOINT = {"weights": torch.zeros(250_000)}  # 1 MB
# takes the run lock of argv[1], says so, and holds it until killed
HOLDER = """
import sys, time
from recipe.runtime.run_lock import run_lock
with run_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    """A 3 MB tmpfs mounted in ``tmp_path``: a real disk that fills; skipped where this user cannot mount one."""

    def mount(*options: str) -> Path:
        folder = tmp_path / f"tmpfs{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(["size=3m", *options]), "tmpfs", str(folder)],
                              capture_output=True)  # fmt: skip
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(folder)
        return folder

    mounted: list[Path] = []
    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=True)


class FillingFile:
    """A file on a disk of ``capacity`` bytes, of which ``used()`` are taken: a write past it fails with ``err``."""

    def __init__(self, file, capacity: int, used, err: int) -> None:
        self.file, self.capacity, self.used, self.err = file, capacity, used, err

    def write(self, data) -> int:
        if self.used() + self.file.tell() + len(data) > self.capacity:
            raise OSError(self.err, os.strerror(self.err))
        return self.file.write(data)

    def __getattr__(self, name: str):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()


def fill_disk_at(monkeypatch: pytest.MonkeyPatch, folder: Path, capacity: int, err: int = errno.ENOSPC) -> None:
    """The checkpoint writer's files go to a disk of ``capacity`` bytes holding ``folder``'s files: torch's
    writer gets the ``OSError`` from ``write`` as it would from a real full disk."""
    real_fdopen = os.fdopen

    def used() -> int:
        return sum(p.stat().st_size for p in folder.iterdir() if not p.name.endswith(TEMP_SUFFIX))

    monkeypatch.setattr(
        os, "fdopen", lambda fd, mode="r", *a, **k: FillingFile(real_fdopen(fd, mode), capacity, used, err)
    )


def save(io: AtomicCheckpointIO, checkpoint: dict, path: Path, background: bool) -> None:
    """``io.save_checkpoint``, in the background (an epoch-end save) or not (a stop signal's), then ``io.wait``."""
    if background:
        with io.in_background():
            io.save_checkpoint(checkpoint, path)
    else:
        io.save_checkpoint(checkpoint, path)
    io.wait()


def assert_kept(folder: Path) -> None:
    """The first checkpoint is intact and no temp file is left."""
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"]
    assert torch.load(folder / "last.ckpt", weights_only=True)["weights"].numel() == 250_000


@pytest.mark.parametrize("background", [True, False], ids=["background", "synchronous"])
@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EDQUOT, errno.EIO], ids=errno.errorcode.get)
def test_a_write_that_fails_is_one_checkpoint_write_error_naming_the_folder(tmp_path, monkeypatch, err, background):
    folder = tmp_path / "checkpoints"
    atomic_save(CHECKPOINT, folder / "last.ckpt")
    fill_disk_at(monkeypatch, folder, capacity=1_500_000, err=err)
    with pytest.raises(CheckpointWriteError) as failed:  # not torch's RuntimeError ("unexpected pos")
        save(AtomicCheckpointIO(), CHECKPOINT, folder / "last.ckpt", background)
    message = str(failed.value)
    assert f"cannot write checkpoint last.ckpt in {folder}: {os.strerror(err)}" in message
    assert ("(disk full)" in message) == (err != errno.EIO) and "\n" not in message
    monkeypatch.undo()
    assert_kept(folder)


@pytest.mark.parametrize("background", [True, False], ids=["background", "synchronous"])
def test_a_folder_that_refuses_the_file_is_one_checkpoint_write_error(tmp_path, monkeypatch, background):
    folder = tmp_path / "checkpoints"
    atomic_save(CHECKPOINT, folder / "last.ckpt")
    real_open = os.open

    def no_permission(path, flags, *args, **kwargs):
        if str(path).endswith(TEMP_SUFFIX):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_permission)
    with pytest.raises(CheckpointWriteError, match=f"in {folder}: Permission denied; the checkpoints already"):
        save(AtomicCheckpointIO(), CHECKPOINT, folder / "last.ckpt", background)
    monkeypatch.undo()
    assert_kept(folder)


@pytest.mark.parametrize("background", [True, False], ids=["background", "synchronous"])
def test_a_real_full_tmpfs_is_one_checkpoint_write_error_and_keeps_the_old_checkpoint(small_tmpfs, background):
    folder = small_tmpfs() / "checkpoints"
    atomic_save(CHECKPOINT, folder / "last.ckpt")
    with pytest.raises(CheckpointWriteError, match=f"in {folder}: No space left on device \\(disk full\\)"):
        save(AtomicCheckpointIO(), {"weights": torch.zeros(750_000)}, folder / "last.ckpt", background)
    assert_kept(folder)


def test_a_disk_filling_during_a_run_is_one_line_exit_1_and_keeps_the_earlier_checkpoints(
    tmp_path, monkeypatch, capsys
):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    fill_disk_at(monkeypatch, folder, capacity=2_600_000)  # epoch 0's best and last (1 MB each), not epoch 1's
    cfg = compose_config(
        *TINY, "trainer.max_epochs=3", "logger=csv", "~callbacks.early_stopping", "~callbacks.run_report",
        f"paths.output_dir={tmp_path}", f"paths.log_dir={tmp_path}", "callbacks.last_checkpoint.every_seconds=0",
    )  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        main(cfg)
    monkeypatch.undo()
    assert exited.value.code == 1
    error = capsys.readouterr().err.strip()
    assert error.splitlines()[-1].startswith("error: cannot write checkpoint ") and f"in {folder}: " in error
    assert "Traceback" not in error and "unexpected pos" not in error
    assert torch.load(folder / "last.ckpt", weights_only=True)["global_step"] == 4  # the end of epoch 0
    assert [p.name for p in folder.iterdir() if p.name.endswith(TEMP_SUFFIX)] == []


@pytest.mark.slow
@pytest.mark.parametrize("trainer", ["default", "ddp_cpu"])  # DDP: rank 1 must not end in gloo's traceback
def test_train_py_on_a_real_full_tmpfs_ends_in_one_line_and_keeps_its_checkpoints(small_tmpfs, trainer):
    run_dir = small_tmpfs() / "run"
    every_epoch = "callbacks.last_checkpoint.every_seconds=0"  # best and last each epoch: the 3 MB fill
    done = run_script("train.py", f"trainer={trainer}", *TINY, "trainer.max_epochs=2", every_epoch, run_dir=run_dir)
    assert done.returncode == 1, done.stderr
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: cannot write checkpoint ") and f"in {run_dir / 'checkpoints'}: " in last_line
    assert "Traceback" not in done.stderr and "unexpected pos" not in done.stderr
    kept = sorted((run_dir / "checkpoints").glob("*.ckpt"))
    assert kept and all(torch.load(p, weights_only=True)["global_step"] > 0 for p in kept)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_checkpoints_follow_the_umask_as_any_file_does(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_save(CHECKPOINT, tmp_path / "last.ckpt")
        (tmp_path / "other").touch()
    finally:
        os.umask(old)
    mode = (tmp_path / "last.ckpt").stat().st_mode & 0o777
    assert mode == (tmp_path / "other").stat().st_mode & 0o777 == 0o666 & ~umask


def start_holder(folder: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], env=env, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_run_on_a_locked_folder_is_refused_naming_the_holder_and_a_killed_holder_leaves_no_lock(tmp_path):
    holder = start_holder(tmp_path)
    try:
        with pytest.raises(ConfigError) as refused, run_lock(tmp_path):
            pass
        message = str(refused.value)
        assert message.startswith(f"hydra.run.dir='{tmp_path}': in use by another run (pid {holder.pid} on ")
        holder.send_signal(signal.SIGKILL)  # the kernel lets go of its lock; its lock file stays
        holder.wait(timeout=30)
        assert (tmp_path / LOCK_FILE).exists()
        with run_lock(tmp_path):
            assert (tmp_path / LOCK_FILE).read_text().startswith(f"pid {os.getpid()} on ")
        assert not (tmp_path / LOCK_FILE).exists()  # removed on release: a run that never started leaves nothing
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_the_processes_a_run_launches_share_its_lock(tmp_path, monkeypatch):
    holder = start_holder(tmp_path)
    try:
        monkeypatch.setenv("LOCAL_RANK", "1")  # as Lightning's DDP launcher starts rank 1
        with run_lock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait(timeout=30)


@pytest.mark.slow
def test_train_py_started_on_a_folder_a_run_writes_into_refuses_in_one_line(tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "src" / "train.py"), f"hydra.run.dir={run_dir}", "ckpt_path=auto", *TINY]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / LOCK_FILE).is_file() or not (run_dir / LOCK_FILE).read_text():
            assert first.poll() is None and time.monotonic() < deadline, "the first run never took its lock"
            time.sleep(0.02)
        first.send_signal(signal.SIGSTOP)  # holds its lock, mid-run
        assert (run_dir / LOCK_FILE).read_text().startswith(f"pid {first.pid} on ")
        before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}

        second = run_script("train.py", "ckpt_path=auto", *TINY, run_dir=run_dir)
        assert second.returncode == 2
        assert second.stderr.strip() == (
            f"error: hydra.run.dir='{run_dir}': in use by another run (pid {first.pid} on {os.uname().nodename}); "
            "wait for it to end or choose another"
        )
        assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before  # the first run's folder untouched

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        with run_lock(run_dir):  # no stale lock after kill -9
            pass
    finally:
        first.kill()
        first.wait(timeout=30)


@pytest.mark.parametrize(
    "args, key",
    [
        (["hydra.run.dir={file}/run"], "hydra.run.dir"),
        (["paths.log_dir={file}/logs"], "hydra.run.dir"),  # the default, timestamped run folder
        (["-m", "hydra.sweep.dir={file}/sweep", "seed=1,2"], "hydra.sweep.dir"),
    ],
)
def test_a_run_folder_under_a_file_is_refused_in_one_line_before_hydra_runs(tmp_path, args, key):
    file = tmp_path / "a_file"
    file.write_text("")
    cmd = [sys.executable, str(ROOT / "src" / "train.py"), *(a.format(file=file) for a in args)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {key}='{file}/") and done.stderr.count("\n") == 1
    assert done.stderr.strip().endswith(f"{file} is a file, not a folder")


def test_a_run_folder_on_a_read_only_file_system_is_refused_in_one_line(small_tmpfs):
    read_only = small_tmpfs("ro")
    done = run_script("train.py", run_dir=read_only / "run")
    assert done.returncode == 2
    assert done.stderr == f"error: hydra.run.dir='{read_only}/run': {read_only} is on a read-only file system\n"


def test_a_run_refused_by_the_lock_never_removes_the_folder_of_the_run_that_holds_it(tmp_path, capsys):
    folder = tmp_path / "run"
    (folder / ".hydra").mkdir(parents=True)  # as Hydra leaves a new folder: this run would remove it on an error
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    cfg.hydra.runtime.output_dir, cfg.hydra.mode = str(folder), RunMode.RUN
    HydraConfig.instance().set_config(cfg)
    holders = []

    def task(cfg) -> None:
        holders.append(start_holder(folder))  # both started on a new folder; the other took the lock first
        with run_lock():
            raise AssertionError("two runs hold one folder")

    try:
        with pytest.raises(SystemExit) as exited:
            entry_point(lambda cfg: None)(task)(cfg)
        assert exited.value.code == 2
        assert f"in use by another run (pid {holders[0].pid} on " in capsys.readouterr().err
        assert (folder / ".hydra").is_dir() and (folder / LOCK_FILE).is_file()
    finally:
        HydraConfig.instance().cfg = None
        for holder in holders:
            holder.kill()
            holder.wait(timeout=30)
