"""DDP on two CPU processes (``trainer=ddp_cpu``) end to end, alone and in a ``-m`` sweep; GPU strategies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY
from lightning.pytorch.strategies import FSDPStrategy

from recipe.errors import ConfigError
from recipe.instantiate import instantiate
from recipe.runtime.distributed import single_job_argv
from recipe.validation.checks import check_train_config

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
PROBE = [
    "+callbacks.rank_probe._target_=rank_probe.WriteRankMetrics",
    "+callbacks.rank_probe.folder=${paths.output_dir}",
]
needs_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs")


def train_script(*args: str, project_root: Path) -> subprocess.CompletedProcess[str]:
    """``src/train.py`` with ``args``, logs under ``project_root``, the probe callback importable."""
    env = {**os.environ, "PROJECT_ROOT": str(project_root), "PYTHONPATH": str(TESTS)}
    cmd = [sys.executable, str(ROOT / "src" / "train.py"), *args, *TINY, *PROBE]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def rank_records(folder: Path) -> list[dict]:
    return [json.loads((folder / f"rank{rank}.json").read_text()) for rank in (0, 1)]


def event_file_pids(folder: Path) -> set[str]:
    """The processes that wrote TensorBoard event files (``events.out.tfevents.<time>.<host>.<pid>.<n>``)."""
    return {path.name.split(".")[-2] for path in folder.rglob("events.out.tfevents.*")}


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One ddp_cpu run: global batch 64 (32 per process), 2 batches per step, LR scaled linearly from 64."""
    root = tmp_path_factory.mktemp("ddp")
    run_dir = root / "run"
    result = train_script(
        "trainer=ddp_cpu",
        f"hydra.run.dir={run_dir}",
        "data.batch_size=64",
        "trainer.accumulate_grad_batches=2",
        "scheduler=constant",
        "optimizer.lr_scaling=linear",
        "optimizer.base_batch_size=64",
        project_root=root,
    )
    return run_dir, result


@pytest.mark.slow
def test_both_processes_finish_with_equal_synced_metrics(ddp_run) -> None:
    run_dir, _ = ddp_run
    rank0, rank1 = rank_records(run_dir)
    assert rank0["world_size"] == rank1["world_size"] == 2
    val_keys = sorted(k for k in rank0["metrics"] if k.startswith("val/"))
    assert val_keys == ["val/acc", "val/acc_best", "val/loss", "val/loss_best"]
    assert rank0["metrics"] == rank1["metrics"]  # val and train epoch metrics reduced over both processes


@pytest.mark.slow
def test_batch_is_global_and_lr_scales_with_processes_and_accumulation(ddp_run) -> None:
    run_dir, _ = ddp_run
    for record in rank_records(run_dir):
        assert record["per_device_batch_size"] == 32  # data.batch_size=64 split over 2 processes
        assert record["optimizer_steps"] == 2  # 4 batches, 2 per step
        assert record["lr"] == pytest.approx(1e-3 * (32 * 2 * 2) / 64)


@pytest.mark.slow
def test_rank_zero_alone_writes_checkpoints_logs_and_prints(ddp_run) -> None:
    run_dir, result = ddp_run
    checkpoints = list(run_dir.rglob("*.ckpt"))
    assert checkpoints and {path.parent for path in checkpoints} == {run_dir / "checkpoints"}
    assert {path.parent for path in run_dir.rglob("events.out.tfevents.*")} == {run_dir / "tensorboard"}
    assert len(event_file_pids(run_dir)) == 1  # one process wrote TensorBoard
    lines = (result.stdout + result.stderr).splitlines()
    assert lines.count("config") == 1  # the config tree's root, printed by rank 0 only
    assert sum(line.startswith("Outputs:") for line in lines) == 1
    assert "test/acc" in result.stderr  # rich prints beside the progress bar, on stderr
    assert "test/acc" in (run_dir / "train.log").read_text()


@pytest.mark.slow
def test_multirun_sweep_runs_each_job_on_two_processes(tmp_path: Path) -> None:
    train_script(
        "-m",
        "trainer=ddp_cpu",
        "optimizer.lr=0.01,0.001",
        "hydra.sweep.subdir=${hydra.job.num}",  # the default names folders by every override: too long here
        "scheduler=constant",
        "test=false",
        project_root=tmp_path,
    )
    sweeps = list((tmp_path / "logs" / "train" / "multiruns").iterdir())
    assert len(sweeps) == 1  # the children did not start sweeps of their own
    assert not (tmp_path / "logs" / "train" / "runs").exists()
    jobs = sorted(p for p in sweeps[0].iterdir() if p.is_dir())
    assert len(jobs) == 2
    for job, lr in zip(jobs, (0.01, 0.001), strict=True):
        records = rank_records(job)  # each job's second process ran this job, in this job's folder
        assert [r["lr"] for r in records] == pytest.approx([lr, lr])
        assert records[0]["metrics"] == records[1]["metrics"]
        assert (job / "train_ddp_process_1.log").exists()
        assert len(event_file_pids(job)) == 1


@pytest.mark.slow
def test_ddp_cpu_runs_as_the_readme_shows_with_the_progress_bar(tmp_path: Path) -> None:
    # the configuration users run: no test overrides, the bar on (rank 1's disabled bar crashed every run)
    cmd = [sys.executable, str(ROOT / "src" / "train.py"), "trainer=ddp_cpu", "debug=fast", f"hydra.run.dir={tmp_path}"]
    env = {**os.environ, "PROJECT_ROOT": str(tmp_path)}
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Epoch 0/0" in result.stderr  # the bar drew
    assert "test/acc" in (tmp_path / "train.log").read_text()


def test_children_of_a_sweep_job_get_that_job_only() -> None:
    argv = [
        "src/train.py",
        "-m",
        "-cn",
        "train",
        "optimizer.lr=0.1,0.01",
        "--config-dir=extra",
        "trainer=ddp_cpu",
    ]
    job = ["optimizer.lr=0.01", "trainer=ddp_cpu"]
    assert single_job_argv(argv, job) == ["src/train.py", "-cn", "train", "--config-dir=extra", *job]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_fsdp_without_gpu_is_a_config_error(make_cfg) -> None:
    with pytest.raises(ConfigError, match=r"trainer\.accelerator='gpu': trainer=fsdp needs CUDA GPUs"):
        check_train_config(make_cfg("trainer=fsdp"))


def test_fsdp_config_builds_its_strategy(make_cfg) -> None:
    strategy = instantiate(make_cfg("trainer=fsdp").trainer.strategy)
    assert isinstance(strategy, FSDPStrategy)
    assert strategy.sharding_strategy.name == "FULL_SHARD"
    assert callable(strategy.kwargs["auto_wrap_policy"])


@needs_gpus
@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_gpu_strategies_train_with_norm_clipping(tmp_path: Path, strategy: str) -> None:
    result = train_script(
        f"trainer={strategy}", "trainer.devices=2", f"hydra.run.dir={tmp_path}", project_root=tmp_path
    )
    rank0, rank1 = rank_records(tmp_path)
    assert rank0["metrics"]["train/grad_norm"] == pytest.approx(rank1["metrics"]["train/grad_norm"])
    assert "test/acc" in result.stdout
