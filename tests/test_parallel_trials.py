"""Trials in parallel (``hydra.sweeper.n_jobs``) and trials averaged over seeds and folds (``seeds_per_trial``)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import statistics
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from test_sweeps import ROOT, SEARCH, multirun, param_sets, run, sweep_dirs

from hydra_plugins.recipe_optuna_sweeper.sweeper import PROCESS_ATTR, RUN_VALUES_ATTR, OptunaSweeper
from recipe.errors import ConfigError
from recipe.sweeps.repeats import Run, trial_runs
from recipe.sweeps.report import OUTPUT_DIR_ATTR, OVERRIDES_ATTR
from recipe.sweeps.storage import open_storage
from recipe.sweeps.workers import worker_command, worker_env

# the categorical parameters fixed: the search checks that each of their choices composes, which takes seconds
QUICK = [*SEARCH, "hydra/sweeper/pruner=none", "optimizer=adamw", "model.hidden_sizes=[64]", "data.batch_size=64"]


def _study(storage: str) -> optuna.Study:
    return optuna.load_study(study_name="digits_optuna", storage=open_storage(storage))


# ---------------------------------------------------------------- units


def test_trial_runs_count_seeds_up_and_cover_every_fold() -> None:
    assert trial_runs(0, 1, None) == [Run((), "")]  # a plain trial: one run, as before
    assert trial_runs(3, 2, 2) == [
        Run(("seed=3", "++data.fold=0"), "_seed3_fold0"),
        Run(("seed=3", "++data.fold=1"), "_seed3_fold1"),
        Run(("seed=4", "++data.fold=0"), "_seed4_fold0"),
        Run(("seed=4", "++data.fold=1"), "_seed4_fold1"),
    ]
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.seeds_per_trial=0: "):
        trial_runs(0, 0, None)
    with pytest.raises(ConfigError, match=r"^seed=None: "):
        trial_runs(None, 2, None)


def test_n_jobs_and_folds_per_trial_are_checked() -> None:
    base = {"direction": "maximize", "study_name": None, "storage": None, "n_trials": 2}
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.n_jobs=0: "):
        OptunaSweeper(**base, n_jobs=0)
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.folds_per_trial='yes': "):
        OptunaSweeper(**base, folds_per_trial="yes")


def test_each_worker_gets_its_share_of_threads_one_gpu_and_the_parents_storage_and_folder() -> None:
    cores = len(os.sched_getaffinity(0))
    envs = [worker_env(i, 3, {"CUDA_VISIBLE_DEVICES": "2,5", "PATH": "/bin"}) for i in range(3)]
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["2", "5", "2"]  # round robin over the visible GPUs
    assert {e["OMP_NUM_THREADS"] for e in envs} == {str(max(1, cores // 3))} and envs[0]["PATH"] == "/bin"
    argv = ["src/train.py", "-m", "hparams_search=digits_optuna", "hydra.sweeper.n_jobs=2", "hydra.sweep.dir=x"]
    cmd = worker_command(argv, 1, "sqlite:////tmp/a b/optuna.db", "/tmp/sweep")
    assert cmd[1:] == [
        "src/train.py",
        "-m",
        "hparams_search=digits_optuna",
        "hydra.sweeper.n_jobs=1",
        "hydra.sweeper.worker=1",
        "hydra.sweeper.storage='sqlite:////tmp/a b/optuna.db'",
        "hydra.sweep.dir='/tmp/sweep'",
    ]


# ---------------------------------------------------------------- searches run as a user would


def _running_trials(log_dir: Path) -> dict[int, int]:
    """Trial number to the process id running it, for the RUNNING trials that have begun training, read from the
    SQLite file of the one sweep folder under ``log_dir``."""
    dbs = list(log_dir.glob("train/multiruns/*/optuna.db"))
    if not dbs:
        return {}
    with sqlite3.connect(dbs[0], timeout=10) as con:
        try:
            rows = con.execute(
                "SELECT t.number, a.value_json FROM trials t JOIN trial_user_attributes a ON a.trial_id = t.trial_id"
                " WHERE t.state = 'RUNNING' AND a.key = ? AND EXISTS (SELECT 1 FROM trial_user_attributes o"
                " WHERE o.trial_id = t.trial_id AND o.key = ?)",
                (PROCESS_ATTR, OVERRIDES_ATTR),
            ).fetchall()
        except sqlite3.OperationalError:  # no tables yet
            return {}
    return {number: json.loads(value)["pid"] for number, value in rows}


@pytest.fixture(scope="module")
def parallel_search(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[int, int], int]:
    """A 4-trial search with ``n_jobs=2`` and no storage: the sweep folder, the log, the trials (number: process id)
    running when both workers were training, and the one of them whose worker was then killed (SIGKILL)."""
    log_dir = tmp_path_factory.mktemp("parallel")
    cmd = multirun(log_dir, *QUICK, "trainer.max_epochs=2", "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2")
    proc = subprocess.Popen(
        [*cmd, "hydra.sweeper.storage=null"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 300
    while len(set((running := _running_trials(log_dir)).values())) < 2:  # both workers training at once
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    killed, pid = min(running.items())
    os.kill(pid, signal.SIGKILL)
    log = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, log[-3000:]
    [sweep] = sweep_dirs(log_dir)
    return sweep, log, running, killed


@pytest.mark.slow
def test_n_jobs_2_runs_distinct_trials_in_two_processes_on_one_study(
    parallel_search: tuple[Path, str, dict[int, int], int],
) -> None:
    sweep, log, running, _ = parallel_search
    assert f"the study goes to sqlite:///{sweep}/optuna.db" in log  # an in-memory study cannot be shared
    trials = _study(f"sqlite:///{sweep}/optuna.db").trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 4 and len(trials) == 5  # exactly n_trials, and the killed one: asking takes turns
    assert len(param_sets(complete)) == 4
    assert len({trials[number].user_attrs[PROCESS_ATTR]["pid"] for number in running}) == 2  # two at once
    processes = [t.user_attrs[PROCESS_ATTR] for t in trials]
    assert os.getpid() not in {p["pid"] for p in processes}  # not in the process the user started
    assert {p["threads"] for p in processes} == {max(1, len(os.sched_getaffinity(0)) // 2)}
    assert {Path(t.user_attrs[OUTPUT_DIR_ATTR]) for t in complete} == {sweep / f"trial_{t.number}" for t in complete}
    assert "4 completed" in (sweep / "comparison.md").read_text()  # written once, by the parent
    assert log.count("Comparison: ") == 1
    best = max(complete, key=lambda t: t.value)
    assert f"Best val/acc_best={best.value:.4f} (trial {best.number}); train it with:" in log


@pytest.mark.slow
def test_a_killed_workers_trial_runs_again_in_a_new_worker(
    parallel_search: tuple[Path, str, dict[int, int], int],
) -> None:
    sweep, log, running, killed = parallel_search
    pid = running[killed]
    trials = _study(f"sqlite:///{sweep}/optuna.db").trials
    assert trials[killed].state == TrialState.FAIL
    assert f"Trial {killed} lost its process (its worker, process {pid}, was killed)" in log
    [retry] = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert retry.params == trials[killed].params and retry.state == TrialState.COMPLETE
    assert retry.user_attrs[PROCESS_ATTR]["pid"] != pid


@pytest.mark.slow
def test_a_trials_value_is_the_mean_of_its_runs_over_seeds_and_folds(tmp_path: Path) -> None:
    log = run(
        multirun(
            tmp_path,
            *QUICK,
            "seed=3",
            "data.folds=2",
            "hydra.sweeper.n_trials=1",
            "hydra.sweeper.seeds_per_trial=2",
            "hydra.sweeper.folds_per_trial=true",
        )
    )
    [trial] = _study(f"sqlite:///{tmp_path}/optuna.db").trials
    sweep = Path(trial.user_attrs[OUTPUT_DIR_ATTR]).parent
    names = ["trial_0_seed3_fold0", "trial_0_seed3_fold1", "trial_0_seed4_fold0", "trial_0_seed4_fold1"]
    assert sorted(p.name for p in sweep.glob("trial_*")) == names
    values = [json.loads((sweep / name / "job.json").read_text())["value"] for name in names]
    assert len(set(values)) > 1  # the runs differ
    assert trial.value == pytest.approx(statistics.fmean(values))
    assert trial.user_attrs[RUN_VALUES_ATTR] == pytest.approx(values)
    overrides = [(sweep / name / ".hydra" / "overrides.yaml").read_text() for name in names]
    assert all("seed=3" not in o or "seed=4" not in o for o in overrides)  # one seed per run
    assert "- seed=4\n" in overrides[2] and "- ++data.fold=1\n" in overrides[3]
    assert f"Trial 0 complete: {trial.value:.4f} (mean of 4 runs)" in log
    assert "| 4 |" in (sweep / "comparison.md").read_text()  # one configuration, its 4 runs collapsed
