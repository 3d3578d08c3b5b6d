"""slurm/ray_tune.sbatch on the throwaway one-node SLURM (tests/slurm_cluster.py): a Ray head started as a job step,
the search joining it by address. Skipped where slurm-wlm or Ray is not installed."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest
import slurm_cluster
from conftest import ROOT

pytest.importorskip("ray")


@pytest.mark.slow
@pytest.mark.slurm
def test_the_sbatch_script_starts_ray_on_the_allocation_and_runs_the_search(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    reason = slurm_cluster.missing()
    if reason:
        pytest.skip(reason)
    sweep_dir = tmp_path / "sweep"
    search = [
        "hparams_search=digits_ray",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.resources_per_trial.cpu=1",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=4",
        "trainer.limit_val_batches=2",
        "trainer.limit_test_batches=2",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    with slurm_cluster.one_node_slurm(tmp_path_factory.mktemp("slurm")) as env:
        cmd = ["sbatch", "--wait", f"--output={tmp_path / 'job.out'}", "slurm/ray_tune.sbatch", *search]
        done = subprocess.run(cmd, env={**env, "OMP_NUM_THREADS": "1"}, cwd=ROOT, capture_output=True, text=True)
    out = (tmp_path / "job.out").read_text() if (tmp_path / "job.out").is_file() else ""
    assert done.returncode == 0, done.stderr + out[-3000:]
    assert "Ray head on" in out and "Started a local Ray instance" not in out  # joined the job's Ray, started none
    with open(sweep_dir / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE"]
    assert all((Path(r["output_dir"]) / "train.log").is_file() for r in rows)
