"""Hyperparameter search: search space, pruning callback, report, and sweeps run as a user runs them."""

from __future__ import annotations

import csv
import functools
import math
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from postgres_server import postgres_server
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from recipe.errors import ConfigError
from recipe.sweeps import OptunaPruning, SearchSpace, active_trial, write_report
from recipe.sweeps.report import OUTPUT_DIR_ATTR, OVERRIDES_ATTR
from recipe.sweeps.sampling import TrialSeededSampler
from recipe.sweeps.storage import ask_lock, open_storage

ROOT = Path(__file__).resolve().parents[1]
# A few batches per epoch, one epoch unless a test asks for more, no progress bars.
TINY = [
    "debug=fast",
    "++trainer.enable_progress_bar=false",
    "~callbacks.progress_bar",
    "~callbacks.model_summary",
]
SEARCH = ["hparams_search=digits_optuna", *TINY]


def multirun(log_dir: Path, *overrides: str) -> list[str]:
    """The command line of ``src/train.py -m`` writing under ``log_dir``."""
    return [sys.executable, str(ROOT / "src" / "train.py"), "-m", f"paths.log_dir={log_dir}", *overrides]


def run(cmd: list[str]) -> str:
    """Run ``cmd`` from the project folder; return what it printed (stdout and stderr)."""
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return proc.stdout


def load_study(log_dir: Path, storage: str | None = None) -> optuna.Study:
    return optuna.load_study(
        study_name="digits_optuna", storage=open_storage(storage or f"sqlite:///{log_dir}/optuna.db")
    )


def param_sets(trials: list[optuna.trial.FrozenTrial]) -> set[tuple]:
    return {tuple(sorted(t.params.items())) for t in trials}


def _events(event_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(event_dir))
    events.Reload()
    return events


def _last_scalar(event_dir: Path, tag: str) -> float:
    return _events(event_dir).Scalars(tag)[-1].value


def sweep_dirs(log_dir: Path) -> list[Path]:
    return sorted((log_dir / "train" / "multiruns").iterdir())


# ---------------------------------------------------------------- search space


def test_space_reads_hydra_sweep_grammar_into_optuna_distributions() -> None:
    space = SearchSpace.parse(
        {
            "optimizer": "choice(adamw, sgd)",
            "optimizer.lr": "tag(log, interval(1e-4, 0.3))",
            "model.dropout": "interval(0, 0.5)",
            "model.hidden_sizes": "choice([64], [128, 128])",
            "data.batch_size": "range(32, 129, 32)",
            "trainer.max_epochs": "int(interval(2, 5))",
        },
        ["model.dropout=0.1", "seed=3"],  # the command line wins: dropout becomes fixed
    )
    assert space.distributions == {
        "optimizer": CategoricalDistribution(["adamw", "sgd"]),
        "optimizer.lr": FloatDistribution(1e-4, 0.3, log=True),
        "model.hidden_sizes": CategoricalDistribution(["[64]", "[128,128]"]),
        "data.batch_size": IntDistribution(32, 128, step=32),  # Hydra's stop is excluded
        "trainer.max_epochs": IntDistribution(2, 5),
    }
    assert space.fixed == ["model.dropout=0.1", "seed=3"]
    overrides = space.overrides(
        {
            "optimizer": "sgd",
            "optimizer.lr": 0.01,
            "model.hidden_sizes": "[64]",
            "data.batch_size": 96,
            "trainer.max_epochs": 3,
        }
    )
    assert overrides == [
        "model.dropout=0.1",
        "seed=3",
        "optimizer=sgd",
        "optimizer.lr=0.01",
        "model.hidden_sizes=[64]",
        "data.batch_size=96",
        "trainer.max_epochs=3",
    ]


def test_space_corners_use_every_categorical_choice() -> None:
    space = SearchSpace.parse({"optimizer": "choice(adamw, sgd, adam)", "optimizer.lr": "interval(0.1, 0.2)"})
    assert space.corners() == [
        ["optimizer=adamw", "optimizer.lr=0.1"],
        ["optimizer=sgd", "optimizer.lr=0.1"],
        ["optimizer=adam", "optimizer.lr=0.1"],
    ]


def test_space_rejects_an_empty_range() -> None:
    with pytest.raises(ConfigError, match=r"^data.batch_size='range\(64, 32\)': holds no value$"):
        SearchSpace.parse({"data.batch_size": "range(64, 32)"})


# ---------------------------------------------------------------- sampler


SPACE = {"lr": FloatDistribution(1e-4, 0.3, log=True), "optimizer": CategoricalDistribution(["adamw", "sgd"])}


def _seeded_study(storage: optuna.storages.BaseStorage | None = None, seed: int = 0) -> optuna.Study:
    """A study with a TPE sampler seeded per trial, as the sweeper builds it (a new one: a new process)."""
    sampler = TrialSeededSampler(functools.partial(optuna.samplers.TPESampler, seed=seed))
    return optuna.create_study(storage=storage, sampler=sampler, study_name="s", load_if_exists=True)


def _draw(study: optuna.Study) -> dict:
    trial = study.ask(SPACE)
    study.tell(trial, 0.5)
    return trial.params


def test_sampler_draws_trial_k_alike_in_every_process_and_unlike_other_trials() -> None:
    fresh = [_draw(study) for study in [_seeded_study()] for _ in range(4)]
    assert [_draw(study) for study in [_seeded_study()] for _ in range(4)] == fresh  # reproducible
    assert len({tuple(p.items()) for p in fresh}) == 4
    storage = optuna.storages.InMemoryStorage()
    first, second = _seeded_study(storage), _seeded_study(storage)  # two processes on one study
    assert [_draw(first), _draw(second)] == fresh[:2]
    resumed = _seeded_study(storage)  # the same command again: trials 2 and 3 are new draws
    assert [_draw(resumed), _draw(resumed)] == fresh[2:]
    assert _draw(_seeded_study(seed=1)) != fresh[0]


# ---------------------------------------------------------------- pruning callback


def _trainer(epoch: int, metrics: dict[str, float]) -> SimpleNamespace:
    """What the callback reads from a Trainer after a validation epoch."""
    return SimpleNamespace(
        current_epoch=epoch,
        sanity_checking=False,
        should_stop=False,
        callback_metrics={key: torch.tensor(value) for key, value in metrics.items()},
    )


@pytest.fixture
def study() -> optuna.Study:
    """A study whose one finished trial reached 0.8 at epoch 0; the median pruner judges from it on."""
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    first = study.ask()
    first.report(0.8, step=0)
    study.tell(first, 0.8)
    return study


def test_pruning_reports_each_epoch_and_stops_a_trial_below_the_median(study: optuna.Study) -> None:
    callback = OptunaPruning(monitor="val/acc_best")
    good, bad = study.ask(), study.ask()
    with active_trial(good) as active:
        trainer = _trainer(0, {"val/acc_best": 0.9, "val/loss": 0.3})
        callback.on_validation_end(trainer, None)
        assert (active.pruned, trainer.should_stop) == (None, False)
    with active_trial(bad) as active:
        trainer = _trainer(0, {"val/acc_best": 0.2, "val/loss": 2.0})
        callback.on_validation_end(trainer, None)
        assert active.pruned == "stopped at epoch 0 by the pruner (val/acc_best=0.2000)"
        assert trainer.should_stop
    frozen = {t.number: t.intermediate_values for t in study.get_trials()}
    assert frozen[good.number] == {0: pytest.approx(0.9)}
    assert frozen[bad.number] == {0: pytest.approx(0.2)}


def test_pruning_stops_a_diverged_trial_without_reporting_nan(study: optuna.Study) -> None:
    trial = study.ask()
    with active_trial(trial) as active:
        trainer = _trainer(2, {"val/acc_best": 0.95, "val/loss": math.nan})
        OptunaPruning(monitor="val/acc_best").on_validation_end(trainer, None)
    assert active.pruned == "diverged at epoch 2: val/loss=nan"
    assert trainer.should_stop
    assert study.get_trials()[-1].intermediate_values == {}


def test_pruning_is_idle_outside_a_search_and_names_a_metric_never_logged(study: optuna.Study) -> None:
    trainer = _trainer(0, {"val/acc_best": 0.1})
    OptunaPruning(monitor="val/acc_best").on_validation_end(trainer, None)
    assert not trainer.should_stop
    with (
        active_trial(study.ask()),
        pytest.raises(ConfigError, match=r"^callbacks.optuna_pruning.monitor='val/f1'"),
    ):
        OptunaPruning(monitor="val/f1").on_validation_end(trainer, None)


# ---------------------------------------------------------------- report


def test_report_writes_the_table_plots_and_the_best_command(tmp_path: Path) -> None:
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    distributions = {
        "optimizer.lr": FloatDistribution(1e-4, 1e-1, log=True),
        "optimizer": CategoricalDistribution(["adamw", "sgd"]),
    }
    outcomes = [
        (TrialState.COMPLETE, 0.9),
        (TrialState.COMPLETE, 0.95),
        (TrialState.PRUNED, None),
        (TrialState.FAIL, None),
        (TrialState.COMPLETE, 0.7),
    ]
    for state, value in outcomes:
        trial = study.ask(distributions)
        trial.set_user_attr(OVERRIDES_ATTR, [f"{k}={v}" for k, v in trial.params.items()] + ["model.hidden_sizes=[64]"])
        trial.report(0.5, step=0)
        study.tell(trial, value, state=state)

    report = write_report(study, tmp_path, "val/acc_best")

    names = {p.name for p in report.files}
    assert names == {"trials.csv", "trials.md", "optimization_history.png", "param_importances.png"}
    assert all((tmp_path / name).stat().st_size > 1000 for name in names if name.endswith(".png"))
    with open(tmp_path / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE", "PRUNED", "FAIL", "COMPLETE"]
    assert [r["val/acc_best"] for r in rows] == ["0.9", "0.95", "0.5", "", "0.7"]  # pruned: its last report
    assert {"optimizer", "optimizer.lr", "duration_s", "epochs"} <= set(rows[0])
    markdown = (tmp_path / "trials.md").read_text().splitlines()
    assert markdown[0].startswith("| number | state | val/acc_best |") and len(markdown) == 2 + len(outcomes)
    best = study.trials[1]
    assert report.best_command == shlex.join(["python", "src/train.py", *best.user_attrs[OVERRIDES_ATTR]])
    assert "'model.hidden_sizes=[64]'" in report.best_command  # quoted for the shell


# ---------------------------------------------------------------- sweeps run as a user would


@pytest.fixture(scope="module")
def resumed_search(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A search run for 2 trials, then the same command asking for 4 in all."""
    log_dir = tmp_path_factory.mktemp("resume")
    logs = [run(multirun(log_dir, *SEARCH, f"hydra.sweeper.n_trials={n}")) for n in (2, 4)]
    return log_dir, logs


@pytest.mark.slow
def test_search_end_to_end_writes_report_and_a_best_command_that_reproduces_the_best_trial(
    resumed_search: tuple[Path, list[str]], tmp_path: Path
) -> None:
    log_dir, logs = resumed_search
    study = load_study(log_dir)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    last = sweep_dirs(log_dir)[-1]
    with open(last / "trials.csv") as f:
        assert [int(r["number"]) for r in csv.DictReader(f)] == [0, 1, 2, 3]
    assert all((last / name).is_file() for name in ("trials.md", "optimization_history.png", "param_importances.png"))

    best_line = logs[-1].split("train it with:\n")[1].splitlines()[0].split("[HYDRA] ")[1]
    cmd = shlex.split(best_line)
    assert cmd[:2] == ["python", "src/train.py"] and "-m" not in cmd
    assert f"Outputs: {tmp_path}" in run([sys.executable, *cmd[1:], f"hydra.run.dir={tmp_path}"])
    assert _last_scalar(tmp_path / "tensorboard", "val/acc_best") == pytest.approx(study.best_value, abs=1e-6)


@pytest.mark.slow
def test_resume_runs_only_the_missing_trials_of_the_same_study(
    resumed_search: tuple[Path, list[str]],
) -> None:
    log_dir, logs = resumed_search
    first, second = sweep_dirs(log_dir)
    assert sorted(p.name for p in first.glob("trial_*")) == ["trial_0", "trial_1"]
    assert sorted(p.name for p in second.glob("trial_*")) == ["trial_2", "trial_3"]
    assert f"Study 'digits_optuna' in sqlite:///{log_dir}/optuna.db: 2 of 4 trials" in logs[1]
    trials = load_study(log_dir).trials
    assert len(trials) == 4
    assert len(param_sets(trials)) == 4  # the resumed run drew new trials, not trials 0 and 1 again


@pytest.fixture(scope="module")
def failing_and_bad_trials(tmp_path_factory: pytest.TempPathFactory) -> tuple[optuna.Study, str]:
    """Four set trials: good, one that raises (batch size 0), good, one too slow to learn (lr 1e-5)."""
    log_dir = tmp_path_factory.mktemp("prune")
    fixed = [
        "optimizer=adamw",
        "optimizer.weight_decay=0.01",
        "model.hidden_sizes=[128,128]",
        "model.dropout=0.1",
    ]
    log = run(
        multirun(
            log_dir,
            *SEARCH,
            *fixed,
            "optimizer.lr=choice(0.05,0.1,1e-5)",
            "data.batch_size=choice(0,64)",
            "trainer.max_epochs=3",
            "hydra.sweeper.n_trials=4",
            "hydra/sweeper/pruner=median",
            "hydra.sweeper.pruner.n_startup_trials=2",
            "hydra.sweeper.pruner.n_warmup_steps=0",
            "hydra.sweeper.enqueue_trials=[{optimizer.lr:0.1,data.batch_size:64},{optimizer.lr:0.1,data.batch_size:0},"
            "{optimizer.lr:0.05,data.batch_size:64},{optimizer.lr:1e-5,data.batch_size:64}]",
        )
    )
    return load_study(log_dir), log


@pytest.mark.slow
def test_a_trial_that_raises_is_failed_and_the_search_goes_on(
    failing_and_bad_trials: tuple[optuna.Study, str],
) -> None:
    study, log = failing_and_bad_trials
    assert [t.state for t in study.trials][:3] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert "Trial 1 failed: data.batch_size=0: must be a positive integer" in log


@pytest.mark.slow
def test_a_bad_trial_is_pruned_early(failing_and_bad_trials: tuple[optuna.Study, str]) -> None:
    study, log = failing_and_bad_trials
    good, bad = study.trials[0], study.trials[3]
    assert bad.params["optimizer.lr"] == 1e-5 and bad.state == TrialState.PRUNED
    assert len(bad.intermediate_values) < len(good.intermediate_values) == 3
    assert "Trial 3 pruned: stopped at epoch 0 by the pruner" in log
    good_dir, bad_dir = (Path(t.user_attrs[OUTPUT_DIR_ATTR]) for t in (good, bad))
    tags = [_events(run_dir / "tensorboard").Tags()["scalars"] for run_dir in (good_dir, bad_dir)]
    assert "test/acc" in tags[0] and "test/acc" not in tags[1]  # a pruned trial skips its test
    # and its plot; its report says why it stopped
    assert (good_dir / "curves.png").is_file() and not (bad_dir / "curves.png").exists()
    assert "Pruned by the search: stopped at epoch 0 by the pruner" in (bad_dir / "report.md").read_text()


@pytest.fixture(params=["sqlite", "journal", "postgresql"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A storage URL of each kind; PostgreSQL on a server started for the test."""
    if request.param == "postgresql":
        with postgres_server() as url:
            yield url
    else:
        yield {"sqlite": f"sqlite:///{tmp_path}/optuna.db", "journal": f"journal://{tmp_path}/optuna.log"}[
            request.param
        ]


def test_the_search_comparison_lists_the_failed_and_the_pruned_trial_with_their_reasons(
    failing_and_bad_trials: tuple[optuna.Study, str],
) -> None:
    study, _ = failing_and_bad_trials
    sweep = Path(study.trials[0].user_attrs[OUTPUT_DIR_ATTR]).parent
    markdown = (sweep / "comparison.md").read_text()
    assert "4 jobs: 2 completed, 1 failed, 1 pruned." in markdown
    assert "- trial_1 (failed): data.batch_size=0: must be a positive integer" in markdown
    assert "- trial_3 (pruned): stopped at epoch 0 by the pruner" in markdown
    best = max((t for t in study.trials if t.value is not None), key=lambda t: t.value)
    assert f"| optimizer.lr={best.params['optimizer.lr']} data.batch_size=64 | 1 | {best.value:.4f} |" in markdown


@pytest.mark.slow
def test_two_processes_share_one_study_and_draw_different_trials(tmp_path: Path, storage: str) -> None:
    cmd = multirun(
        tmp_path,
        *SEARCH,
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.n_trials=4",
        "trainer.max_epochs=2",
        "hydra/sweeper/pruner=none",
    )
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    errors = [proc.communicate(timeout=600)[1] for proc in procs]
    for proc, error in zip(procs, errors, strict=True):
        assert proc.returncode == 0, error[-3000:]
    trials = load_study(tmp_path, storage).trials
    if storage.startswith("postgresql"):  # no lock the two share: each checks the count before asking
        assert 4 <= len(trials) <= 5
    else:  # they take turns on a lock beside the file
        assert len(trials) == 4
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len(param_sets(trials)) == len(trials)  # no process repeats another's draws
    sweeps = {Path(t.user_attrs["output_dir"]).parent for t in trials}
    assert len(sweeps) == 2  # both processes ran trials of the one study


def test_commands_on_one_file_take_turns_on_one_lock_and_on_a_server_per_sweep(tmp_path: Path) -> None:
    a, b = tmp_path / "sweep_a", tmp_path / "sweep_b"
    for url, beside in [(f"sqlite:///{tmp_path}/optuna.db", tmp_path / "optuna.db"),
                        (f"journal://{tmp_path}/optuna.log", tmp_path / "optuna.log")]:  # fmt: skip
        assert ask_lock(url, a).lock_file == ask_lock(url, b).lock_file == f"{beside}.ask.lock"
    for url in ("postgresql://u:p@host/db", None, "sqlite:///:memory:"):
        assert ask_lock(url, a).lock_file == str(a / ".ask.lock")


def running_with_heartbeat(db: Path) -> list[int]:
    """The numbers of the trials running with a heartbeat in the SQLite file ``db``, read without Optuna."""
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=10) as con:
        try:
            rows = con.execute(
                "SELECT t.number FROM trials t JOIN trial_heartbeats h ON h.trial_id = t.trial_id"
                " WHERE t.state = 'RUNNING'"
            ).fetchall()
        except sqlite3.OperationalError:  # no tables yet
            return []
    return [row[0] for row in rows]


def kill_during_a_trial(cmd: list[str], storage: Path) -> tuple[int, int]:
    """Start the search ``cmd``, SIGKILL its process group once a trial is running: that trial's number and the
    process id it had."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (running := running_with_heartbeat(storage)) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    [killed] = running
    return killed, proc.pid


@pytest.mark.slow
def test_a_trial_killed_by_sigkill_is_failed_and_its_parameters_run_again(tmp_path: Path) -> None:
    cmd = multirun(
        tmp_path,
        *SEARCH,
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.heartbeat_interval=1",
        "hydra.sweeper.grace_period=2",
        "hydra/sweeper/pruner=none",
    )
    killed, _ = kill_during_a_trial(cmd, tmp_path / "optuna.db")
    time.sleep(3)  # past the grace period: the next run on the study finds the trial lost

    log = run(cmd)

    trials = load_study(tmp_path).trials
    assert trials[killed].state == TrialState.FAIL
    assert f"Trial {killed} lost its process (no heartbeat)" in log
    [retry] = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert retry.params == trials[killed].params and retry.state == TrialState.COMPLETE
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 2  # n_trials finished, the lost one replaced
    assert not [t for t in trials if t.state == TrialState.RUNNING]


@pytest.mark.slow
def test_a_search_whose_every_trial_fails_exits_1_saying_why(tmp_path: Path) -> None:
    cmd = multirun(tmp_path, *SEARCH, "hydra.sweeper.n_trials=1", "data.batch_size=0")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == (
        "error: no trial of study 'digits_optuna' completed (1 failed, 0 pruned); "
        "trial 0: data.batch_size=0: must be a positive integer"
    )
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_grid_sweep_writes_one_named_folder_per_job_with_tensorboard_hparams(tmp_path: Path) -> None:
    run(multirun(tmp_path, "debug=fast", "optimizer=adamw,sgd"))  # paths.log_dir stays out of the names
    [sweep] = sweep_dirs(tmp_path)
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0_optimizer=adamw", "1_optimizer=sgd"]
    for job, name in zip(jobs, ("adamw", "sgd"), strict=True):
        events = EventAccumulator(str(sweep / job / "tensorboard"))
        events.Reload()
        metadata = events.summary_metadata
        session = metadata["_hparams_/session_start_info"].plugin_data.content  # the run's settings
        assert b"optimizer.name" in session and name.encode() in session
        assert "hp/val_acc_best" in events.Tags()["scalars"]  # its final metrics
        assert "_hparams_/experiment" not in metadata  # TensorBoard makes the columns from every run, varied first
    assert os.path.isfile(sweep / "multirun.yaml")
