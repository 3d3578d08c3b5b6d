"""An Optuna search meets a fault: its process killed and rerun at once, a damaged study file, a bad sweeper
setting. Each ends with ``n_trials`` finished trials, or in one line and exit code 2 with the study file untouched."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from test_parallel_trials import QUICK
from test_sweeps import ROOT, kill_during_a_trial, load_study, multirun, run

from recipe.errors import ConfigError
from recipe.sweeps.storage import check_study_file, open_storage


def _one_line(cmd: list[str]) -> str:
    """Run ``cmd``, which must fail with exit code 2 and print one line and nothing else; return the line."""
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.strip() == "", proc.stdout[-2000:]
    [line] = proc.stderr.strip().splitlines()
    return line


# ---------------------------------------------------------------- a trial killed, the search rerun at once


@pytest.mark.slow
def test_a_search_rerun_right_after_kill_9_runs_the_killed_trial_again_and_ends_with_n_trials(tmp_path: Path) -> None:
    cmd = multirun(tmp_path, *QUICK, "hydra.sweeper.n_trials=2")  # default heartbeat: 60 s, grace 180 s
    killed, pid = kill_during_a_trial(cmd, tmp_path / "optuna.db")

    log = run(cmd)  # at once, long before the grace period ends

    trials = load_study(tmp_path).trials
    assert trials[killed].state == TrialState.FAIL
    assert f"Trial {killed} lost its process (its process, {pid}, is gone)" in log
    [retry] = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert retry.params == trials[killed].params and retry.state == TrialState.COMPLETE
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 2
    assert not [t for t in trials if t.state == TrialState.RUNNING]


# ---------------------------------------------------------------- damaged study files


@pytest.fixture(scope="module")
def study_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A SQLite study and a journal study of three trials each, whole."""
    folder = tmp_path_factory.mktemp("studies")
    files = {"sqlite": folder / "optuna.db", "journal": folder / "optuna.log"}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for kind, path in files.items():
        url = f"sqlite:///{path}" if kind == "sqlite" else f"journal://{path}"
        study = optuna.create_study(storage=open_storage(url), study_name="digits_optuna")
        study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3)
    return files


def _damaged(study_files: dict[str, Path], tmp_path: Path, kind: str, how: str) -> tuple[str, Path]:
    """A copy of the ``kind`` study file damaged ``how``, and its storage URL."""
    data = study_files[kind].read_bytes()
    damaged = {
        "cut to 4 KB": data[:4096],
        "cut in its last line": data[:-10],
        "empty": b"",
        "not a study": b"name,value\nlr,0.1\n",
        "a line not JSON": data + b"{not json\n",
    }[how]
    path = tmp_path / study_files[kind].name
    path.write_bytes(damaged)
    return (f"sqlite:///{path}" if kind == "sqlite" else f"journal://{path}"), path


@pytest.mark.parametrize(
    ("kind", "how", "problem"),
    [
        ("sqlite", "cut to 4 KB", "is damaged (database disk image is malformed)"),
        ("sqlite", "empty", "is empty (0 bytes)"),
        ("sqlite", "not a study", "is damaged (file is not a database)"),
        ("journal", "cut in its last line", "is cut short in line"),  # which line: below
        ("journal", "empty", "is empty (0 bytes)"),
        ("journal", "a line not JSON", "is damaged in line"),
    ],
)
def test_a_damaged_study_file_is_refused_naming_it_and_left_as_it_is(
    study_files: dict[str, Path], tmp_path: Path, kind: str, how: str, problem: str
) -> None:
    url, path = _damaged(study_files, tmp_path, kind, how)
    before = path.read_bytes()
    with pytest.raises(ConfigError) as err:
        open_storage(url)
    assert str(err.value).startswith(f"hydra.sweeper.storage={url!r}: a study Optuna can read, but {path} {problem}")
    assert path.read_bytes() == before


def test_a_whole_study_file_and_a_new_one_pass(study_files: dict[str, Path], tmp_path: Path) -> None:
    for kind, path in study_files.items():
        check_study_file(f"sqlite:///{path}" if kind == "sqlite" else f"journal://{path}", path)
    check_study_file(f"sqlite:///{tmp_path}/new.db", tmp_path / "new.db")  # not there yet: Optuna makes it


def test_a_sqlite_file_of_another_program_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE runs (lr REAL)")
    with pytest.raises(ConfigError, match="is an SQLite database without Optuna's tables"):
        check_study_file(f"sqlite:///{path}", path)


def test_a_journal_cut_in_its_last_line_names_that_line(study_files: dict[str, Path], tmp_path: Path) -> None:
    url, path = _damaged(study_files, tmp_path, "journal", "cut in its last line")
    last = path.read_bytes().count(b"\n") + 1
    with pytest.raises(ConfigError, match=f"is cut short in line {last};"):
        check_study_file(url, path)


@pytest.mark.slow
def test_a_search_on_a_damaged_study_file_is_one_line_and_exit_2_and_leaves_it(
    study_files: dict[str, Path], tmp_path: Path
) -> None:
    url, path = _damaged(study_files, tmp_path, "sqlite", "cut to 4 KB")
    before = path.read_bytes()
    line = _one_line(multirun(tmp_path, *QUICK, f"hydra.sweeper.storage={url}"))
    assert line.startswith(f"error: hydra.sweeper.storage={url!r}: a study Optuna can read, but {path} is damaged")
    assert path.read_bytes() == before
    assert not (tmp_path / "train").exists()  # no sweep folder


# ---------------------------------------------------------------- bad sweeper settings


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("hydra.sweeper.n_trials=0", "hydra.sweeper.n_trials=0: a positive integer"),
        ("hydra.sweeper.n_jobs=-1", "hydra.sweeper.n_jobs=-1: a positive integer"),
        ("hydra.sweeper.seeds_per_trial=0", "hydra.sweeper.seeds_per_trial=0: a positive integer"),
        ("hydra.sweeper.direction=up", "hydra.sweeper.direction='up': maximize or minimize"),
        ("hydra.sweeper.max_retry=-1", "hydra.sweeper.max_retry=-1: a non-negative integer"),
        ("hydra.sweeper.grace_period=0", "hydra.sweeper.grace_period=0: a positive number of seconds, or null"),
        ("hydra.sweeper.folds_per_trial=3", "hydra.sweeper.folds_per_trial=3: true or false"),
        (
            "hydra.sweeper.directions=[maximize,minimize]",
            "optimized_metric='val/acc_best': 2 names, one per hydra.sweeper.directions",
        ),
    ],
)
def test_a_bad_sweeper_setting_is_one_line_and_exit_2_before_anything_runs(
    tmp_path: Path, override: str, line: str
) -> None:
    assert _one_line(multirun(tmp_path, "hparams_search=digits_optuna", override)) == f"error: {line}"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_study_file_under_a_file_is_one_line_naming_that_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    url = f"sqlite:///{tmp_path}/afile/optuna.db"
    line = _one_line(multirun(tmp_path, *QUICK, f"hydra.sweeper.storage={url}"))
    assert (
        line
        == f"error: hydra.sweeper.storage={url!r}: a file in a folder that can be made, but {tmp_path}/afile is a file"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


@pytest.mark.slow
def test_a_config_error_found_by_the_sweep_itself_is_one_line(tmp_path: Path) -> None:
    """``HYDRA_FULL_ERROR`` skips the early check: the sweeper's own check must still be one line."""
    cmd = multirun(tmp_path, *QUICK, "hydra.sweeper.directions=[maximize,minimize]")
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "HYDRA_FULL_ERROR": "1"}
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: optimized_metric='val/acc_best': 2 names, one per hydra.sweeper.directions"
    ]
