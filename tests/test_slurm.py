"""The cluster path: the SLURM launcher's request, the process check, and sweeps on a real one-node SLURM
(``tests/slurm_cluster.py``; those tests skip where ``slurm-wlm`` and ``munge`` are not installed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import slurm_cluster
from conftest import TINY
from hydra import compose, initialize_config_dir
from hydra.utils import get_class

from recipe.errors import ConfigError
from recipe.runtime import slurm

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
NULLS = {"tasks_per_node": None, "gpus_per_node": None, "cpus_per_task": None, "partition": None}


def launcher_request(*overrides: str, node_cpus: int = 2, **params) -> dict:
    """The launcher's filled request for the sweep's base config, on nodes of ``node_cpus`` CPUs."""
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", *overrides], return_hydra_config=True)
    assert get_class(cfg.hydra.launcher._target_).__name__ == "SlurmLauncher"
    request = {**{k: cfg.hydra.launcher[k] for k in NULLS}, "nodes": cfg.hydra.launcher.nodes, **params}
    original = slurm.node_cpus
    slurm.node_cpus = lambda partition: node_cpus
    try:
        return slurm.fill_request(request, cfg)
    finally:
        slurm.node_cpus = original


def test_default_request_fits_a_cpu_node() -> None:
    request = launcher_request()
    assert (request["tasks_per_node"], request["gpus_per_node"], request["cpus_per_task"]) == (1, None, 1)


def test_tasks_follow_devices_and_cpus_stay_within_the_node() -> None:
    assert launcher_request("trainer=ddp_cpu")["tasks_per_node"] == 2
    assert launcher_request("data.num_workers=7", node_cpus=4)["cpus_per_task"] == 4
    assert launcher_request("trainer=ddp_cpu", "data.num_workers=7", node_cpus=4)["cpus_per_task"] == 2
    assert launcher_request(gpus_per_node=0)["gpus_per_node"] is None  # sbatch rejects --gpus-per-node=0


def test_gpu_request_follows_the_trainer() -> None:
    request = launcher_request("trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2")
    assert (request["nodes"], request["tasks_per_node"], request["gpus_per_node"]) == (2, 4, 4)
    with pytest.raises(ConfigError, match=r"trainer\.devices=-1"):
        launcher_request("trainer=ddp")  # every GPU of a node: unknown until the job runs


@pytest.mark.parametrize(
    ("env", "wrong"),
    [
        ({"SLURM_NTASKS": "1", "SLURM_STEP_ID": "0"}, "SLURM_NTASKS"),  # srun -n1: one process of two
        ({"SLURM_NTASKS": "2"}, "srun"),  # python in a 2-task allocation, no srun: waits for rank 1 forever
        ({"SLURM_NTASKS": "2", "SLURM_STEP_ID": "0"}, None),
        ({}, None),  # not in SLURM
    ],
)
def test_processes_must_match_the_slurm_tasks(env, wrong, monkeypatch, make_cfg) -> None:
    for key in ("SLURM_NTASKS", "SLURM_STEP_ID", "SLURM_JOB_NAME"):
        monkeypatch.delenv(key, raising=False)
    for key, value in {**env, **({"SLURM_JOB_NAME": "train"} if env else {})}.items():
        monkeypatch.setenv(key, value)
    trainer = make_cfg("trainer=ddp_cpu").trainer
    if wrong is None:
        slurm.check_processes(trainer)
        return
    with pytest.raises(ConfigError, match=r"trainer\.devices=2") as err:
        slurm.check_processes(trainer)
    assert wrong in str(err.value)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A one-node SLURM (partition debug, this machine's CPUs) for this module's tests."""
    reason = slurm_cluster.missing()
    if reason:
        pytest.skip(reason)
    with slurm_cluster.one_node_slurm(tmp_path_factory.mktemp("slurm")) as env:
        yield env


def sweep(cluster: dict[str, str], root: Path, *args: str, launcher: str = "slurm", **popen) -> subprocess.Popen:
    """``src/train.py -m hydra/launcher=<launcher>`` with ``args`` (tiny runs), logs under ``root``."""
    env = {**cluster, "PROJECT_ROOT": str(root), "PYTHONPATH": str(TESTS), "OMP_NUM_THREADS": "1"}
    short = "hydra.sweep.subdir=${hydra.job.num}"  # the tests' overrides would make too long a folder name
    cmd = [sys.executable, str(ROOT / "src" / "train.py"), "-m", f"hydra/launcher={launcher}", short, *TINY, *args]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen
    )


def finish(process: subprocess.Popen, timeout: float = 240) -> str:
    out, _ = process.communicate(timeout=timeout)
    return out


def queue(cluster: dict[str, str]) -> list[str]:
    return subprocess.run(["squeue", "-h", "-o", "%i"], env=cluster, capture_output=True, text=True).stdout.split()


def wait_for(predicate, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.slurm
def test_readme_sweep_runs_on_a_cpu_cluster(cluster, tmp_path) -> None:
    out = finish(sweep(cluster, tmp_path, "optimizer.lr=1e-3,1e-2"))
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("#")}
    assert sorted(lines) == ["#0", "#1"], out[-3000:]
    for number, lr in (("#0", "0.001"), ("#1", "0.01")):
        state, metric, folder, label = lines[number].split()[1:]
        assert (state, metric.split("=")[0], label) == ("COMPLETED", "val/acc_best", f"optimizer.lr={lr}")
        assert 0.0 <= float(metric.split("=")[1]) <= 1.0
        assert (Path(folder) / "checkpoints" / "last.ckpt").is_file()
    tail = out.splitlines()[out.splitlines().index(lines["#1"]) :]
    outputs = next(i for i, line in enumerate(tail) if line.startswith(f"Outputs: {tmp_path}"))
    assert any("Comparison:" in line or "comparison.md" in line for line in tail[outputs:]), out[-2000:]


PROBE = [
    "+callbacks.rank_probe._target_=rank_probe.WriteRankMetrics",
    "+callbacks.rank_probe.folder=${paths.output_dir}",
]


def assert_one_joint_ddp_run(out: str, root: Path) -> None:
    """The sweep's one job ran two ranks into one run folder, with equal synced metrics."""
    sweeps = list((root / "logs" / "train" / "multiruns").glob("*"))
    assert len(sweeps) == 1, out[-3000:]  # no stray sweep folder
    ranks = [json.loads((sweeps[0] / "0" / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["metrics"] == ranks[1]["metrics"]
    assert (sweeps[0] / "0" / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
@pytest.mark.slurm
def test_ddp_job_is_one_joint_run_of_two_tasks(cluster, tmp_path) -> None:
    assert_one_joint_ddp_run(finish(sweep(cluster, tmp_path, "trainer=ddp_cpu", *PROBE)), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["local", "submitit_local"])  # the recipe's, and hydra-submitit-launcher's
def test_local_launcher_runs_a_ddp_job_whose_second_process_reruns_train_py(launcher, tmp_path) -> None:
    assert_one_joint_ddp_run(
        finish(sweep(dict(os.environ), tmp_path, "trainer=ddp_cpu", *PROBE, launcher=launcher)), tmp_path
    )


@pytest.mark.slow
@pytest.mark.slurm
def test_one_task_for_two_devices_stops_in_one_line(cluster, tmp_path) -> None:
    env = {**cluster, "PROJECT_ROOT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    cmd = ["srun", "-n1", sys.executable, str(ROOT / "src" / "train.py"), "trainer=ddp_cpu", *TINY]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    last = result.stderr.strip().splitlines()[-2]  # srun adds its own line after the task's
    assert result.returncode != 0
    assert last.startswith("error: trainer.devices=2") and "1 task(s)" in last


@pytest.mark.slow
@pytest.mark.slurm
def test_request_that_never_starts_is_one_line_and_cancelled(cluster, tmp_path) -> None:
    process = sweep(cluster, tmp_path, f"hydra.launcher.cpus_per_task={4 * (os.cpu_count() or 1)}")
    out = finish(process, timeout=120)
    assert process.returncode == 2
    assert "PartitionConfig" in out.rstrip().splitlines()[-1] and "cpus_per_task" in out.rstrip().splitlines()[-1]
    assert queue(cluster) == []


@pytest.mark.slow
@pytest.mark.slurm
def test_ctrl_c_cancels_the_sweep_jobs(cluster, tmp_path) -> None:
    process = sweep(
        cluster, tmp_path, "optimizer.lr=1e-3,1e-2", "trainer.max_epochs=50",
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    wait_for(lambda: len(queue(cluster)) == 2)
    process.send_signal(signal.SIGINT)
    out = finish(process, timeout=60)
    assert process.returncode == 130
    assert out.rstrip().splitlines()[-1].startswith("Ctrl-C: cancelled job(s)")
    wait_for(lambda: queue(cluster) == [], timeout=30)


def warned_sweep(cluster: dict[str, str], root: Path, requeues: int) -> tuple[str, int, Path]:
    """A one-job sweep whose job gets the scheduler's time-limit warning (USR2, sent here by hand rather than
    waiting out a limit) once it has saved an epoch (``last.ckpt`` every epoch here); with ``timeout_min=3`` submitit
    counts it as a time-out."""
    limits = ["hydra.launcher.timeout_min=3", f"hydra.launcher.max_num_timeout={requeues}", "trainer.max_epochs=6"]
    every_epoch = "callbacks.last_checkpoint.every_seconds=0"
    process = sweep(cluster, root, *limits, every_epoch, "++trainer.limit_train_batches=20")
    logs = root / "logs" / "train" / "multiruns"
    wait_for(lambda: any(logs.rglob("last.ckpt")))
    subprocess.run(["scancel", "--signal=USR2", queue(cluster)[0]], env=cluster, check=True)
    out = finish(process)
    return out, process.returncode, next(logs.rglob("*_log.out"))


@pytest.mark.slow
@pytest.mark.slurm
def test_job_warned_of_its_time_limit_is_requeued_and_resumes(cluster, tmp_path) -> None:
    out, returncode, log = warned_sweep(cluster, tmp_path, requeues=1)
    line = next(line for line in out.splitlines() if line.startswith("#0"))
    assert returncode == 0 and line.split()[1] == "COMPLETED", out[-3000:]
    last = Path(line.split()[3]) / "checkpoints" / "last.ckpt"
    text = log.read_text()
    assert f"Requeued: resuming from {last}" in text and f"Restored all states from the checkpoint at {last}" in text
    # the resumed job ran the test (the first one was stopped while training): its table is printed beside the
    # progress bar, on stderr, and copied into the run's train.log
    assert "test/acc" in log.with_suffix(".err").read_text()
    assert "test/acc" in (last.parents[1] / "train.log").read_text()


@pytest.mark.slow
@pytest.mark.slurm
def test_job_out_of_requeues_is_reported_and_fails_the_sweep(cluster, tmp_path) -> None:
    out, returncode, _ = warned_sweep(cluster, tmp_path, requeues=0)
    assert returncode != 0
    assert any(line.startswith("#0 TIMEOUT after 0 requeue(s)") for line in out.splitlines()), out[-3000:]
