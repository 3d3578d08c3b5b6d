"""Trackers and dashboards as a user's browser sees them: a real search logs to TensorBoard, MLflow and W&B (offline),
then each UI's server is started on a free local port and asked over HTTP what it shows."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import optuna
import pytest
from conftest import FAST

from recipe.errors import ConfigError
from recipe.tracking import MLFlowLogger, WandbLogger
from recipe.tracking.mlflow_logger import CHECK_S, SLOW_S
from recipe.tracking.outbox import Outbox
from recipe.tracking.run_files import RunArtifacts

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TRIALS = 2
EPOCHS = 2
# Two trials of the digits search, checkpoints on, a few batches each; every tracker at once.
SEARCH = [
    "hparams_search=digits_optuna",
    f"hydra.sweeper.n_trials={TRIALS}",
    "hydra/sweeper/pruner=none",
    "logger=[tensorboard,mlflow,wandb]",
    f"trainer.max_epochs={EPOCHS}",
    "trainer.log_every_n_steps=1",  # the LR of every step
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "~callbacks.progress_bar",
    "~callbacks.model_summary",
]


@pytest.fixture(scope="module")
def search(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The log folder of the search, its sweep folder and trial folders, and its study."""
    log_dir = tmp_path_factory.mktemp("logs")
    cmd = [sys.executable, str(ROOT / "src" / "train.py"), "-m", f"paths.log_dir={log_dir}", *SEARCH]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [sweep] = (log_dir / "train" / "multiruns").iterdir()
    trials = sorted(p for p in sweep.iterdir() if p.name.startswith("trial_"))
    study = optuna.load_study(study_name="digits_optuna", storage=f"sqlite:///{log_dir}/optuna.db")
    return SimpleNamespace(log_dir=log_dir, sweep=sweep, trials=trials, study=study)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def server(cmd: list[str], ready: str, env: dict[str, str] | None = None, timeout: float = 180) -> Iterator[str]:
    """Run ``cmd`` (which serves on the port in ``ready``) until ``ready`` answers; yield its base URL; stop it and
    every process it started (its own session) at the end."""
    env = {**os.environ, **(env or {})}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, f"{cmd[0]} did not answer {ready} in {timeout} s"
            try:
                urllib.request.urlopen(ready, timeout=5)
                break
            except OSError:
                time.sleep(0.3)
        parts = urllib.parse.urlsplit(ready)
        yield f"{parts.scheme}://{parts.netloc}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def get(url: str, **query: Any) -> Any:
    with urllib.request.urlopen(f"{url}?{urllib.parse.urlencode(query)}" if query else url, timeout=30) as response:
        body = response.read()
    return json.loads(body) if response.headers.get_content_type() == "application/json" else body


def post(url: str, payload: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def trial_lr(trial: optuna.trial.FrozenTrial) -> float:
    """The LR a trial drew: ``optimizer.lr`` or its branch under the optimizer drawn (``optimizer.lr|...``)."""
    [lr] = [v for k, v in trial.params.items() if k.split("|")[0] == "optimizer.lr"]
    return lr


def best_checkpoint(run_dir: Path) -> Path:
    [path] = (run_dir / "checkpoints").glob("epoch_*.ckpt")
    return path


# ---------------------------------------------------------------- MLflow
@pytest.mark.slow
def test_mlflow_server_shows_each_trial_with_its_params_val_acc_history_and_artifacts(search: SimpleNamespace) -> None:
    port = free_port()
    cmd = [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{search.log_dir}/mlflow.db"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with server(cmd, f"http://127.0.0.1:{port}/health", env) as url:
        api = f"{url}/api/2.0/mlflow"
        experiment = get(f"{api}/experiments/get-by-name", experiment_name="train")["experiment"]
        runs = post(f"{api}/runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
        by_name = {run["info"]["run_name"]: run for run in runs}
        comparison = by_name.pop(f"sweep {search.sweep.name}")  # the sweep's own run: its comparison attached
        assert {t["key"]: t["value"] for t in comparison["data"]["tags"]}["sweep"] == search.sweep.name
        attached = get(f"{url}/get-artifact", path="comparison.md", run_uuid=comparison["info"]["run_id"])
        assert attached == (search.sweep / "comparison.md").read_bytes()
        assert sorted(by_name) == [trial.name for trial in search.trials]
        for trial in search.study.trials:
            run_dir = search.sweep / f"trial_{trial.number}"
            run = by_name[run_dir.name]
            assert run["info"]["status"] == "FINISHED"
            params = {p["key"]: p["value"] for p in run["data"]["params"]}
            assert float(params["optimizer.lr"]) == pytest.approx(trial_lr(trial))
            assert params["data._target_"] == "recipe.data.DigitsDataModule"
            assert {t["key"]: t["value"] for t in run["data"]["tags"]}["sweep"] == search.sweep.name
            run_id = run["info"]["run_id"]
            history = get(f"{api}/metrics/get-history", run_id=run_id, metric_key="val/acc")["metrics"]
            assert len(history) == EPOCHS
            assert history[-1]["value"] == pytest.approx(
                next(m["value"] for m in run["data"]["metrics"] if m["key"] == "val/acc")
            )
            listed = {f["path"] for f in get(f"{api}/artifacts/list", run_id=run_id)["files"]}
            assert {"report.md", "curves.png", "checkpoints"} <= listed
            [ckpt] = get(f"{api}/artifacts/list", run_id=run_id, path="checkpoints")["files"]
            assert ckpt["path"] == f"checkpoints/{best_checkpoint(run_dir).name}"
            assert ckpt["file_size"] == best_checkpoint(run_dir).stat().st_size
            report = get(f"{url}/get-artifact", path="report.md", run_uuid=run_id)
            assert report == (run_dir / "report.md").read_bytes()


# ---------------------------------------------------------------- W&B (offline)
def wandb_records(path: Path) -> Iterator[Any]:
    """The records of a ``.wandb`` transaction log: a 7-byte W&B header, then LevelDB's log format (32 KiB blocks
    of chunks, each with a checksum, a length and a type). wandb 0.31 reads it only in its Go core, hence this."""
    from wandb.proto import wandb_internal_pb2

    data, block, pos, record = path.read_bytes(), 32768, 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        record += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            message = wandb_internal_pb2.Record()
            message.ParseFromString(record)
            yield message
            record = b""


@pytest.mark.slow
def test_wandb_holds_the_sweeps_comparison_in_the_sweeps_group(search: SimpleNamespace) -> None:
    [log] = (search.sweep / "wandb").glob("offline-run-*/run-*.wandb")
    [run] = [r.run for r in wandb_records(log) if r.HasField("run")]
    assert (run.display_name, run.run_group, run.job_type) == (
        f"sweep {search.sweep.name}",
        search.sweep.name,
        "comparison",
    )
    [saved] = (search.sweep / "wandb").glob("offline-run-*/files/comparison.md")
    assert saved.read_bytes() == (search.sweep / "comparison.md").read_bytes()


@pytest.mark.slow
def test_wandb_offline_run_of_each_trial_holds_its_config_metrics_and_files(search: SimpleNamespace) -> None:
    for trial in search.study.trials:
        run_dir = search.sweep / f"trial_{trial.number}"
        [log] = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")  # one W&B run per trial
        records = list(wandb_records(log))
        [run] = [r.run for r in records if r.HasField("run")]
        assert (run.display_name, run.run_group, run.project) == (run_dir.name, search.sweep.name, "train")
        config = {u.key: json.loads(u.value_json) for r in records if r.HasField("config") for u in r.config.update}
        assert config["optimizer.lr"] == pytest.approx(trial_lr(trial))
        val_acc = [
            json.loads(i.value_json)
            for r in records
            if r.HasField("history")
            for i in r.history.item
            if (i.key or "/".join(i.nested_key)) == "val/acc"
        ]
        assert len(val_acc) == EPOCHS
        files = {f.path for r in records if r.HasField("files") for f in r.files.files}
        assert {"report.md", "curves.png", f"checkpoints/{best_checkpoint(run_dir).name}"} <= files


def test_wandb_mode_is_checked_before_training(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^logger.wandb.mode='offlne'"):
        WandbLogger(run_dir=tmp_path, project="p", mode="offlne")


WANDB_ONLINE = """
import sys, time
import wandb
from recipe.errors import ConfigError
from recipe.tracking import WandbLogger
start = time.monotonic()
try:
    WandbLogger(run_dir=sys.argv[1], project="p", mode="online")
except ConfigError as err:
    print(f"{time.monotonic() - start:.1f} s: {err}")
"""


@pytest.mark.parametrize(
    ("api_key", "expected"),
    [(None, "no W&B credentials"), ("x" * 40, r"W&B does not accept this run \(no answer within 10 s\)")],
    ids=["no key", "no server"],
)
def test_wandb_online_without_credentials_or_server_is_refused_within_the_check_time(
    tmp_path: Path, api_key: str | None, expected: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WANDB_API_KEY"}
    env |= {"WANDB_BASE_URL": f"http://127.0.0.1:{free_port()}", "WANDB_CONFIG_DIR": str(tmp_path)}
    env |= {"NETRC": str(tmp_path / "netrc"), **({"WANDB_API_KEY": api_key} if api_key else {})}
    cmd = [sys.executable, "-c", WANDB_ONLINE, str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    seconds, message = proc.stdout.strip().split(" s: ")
    assert float(seconds) < CHECK_S + 1
    assert re.match(rf"logger.wandb.mode='online': {expected}; run `wandb login`", message)


def test_a_tracker_not_installed_is_named_before_training(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"^logger='wandb'.*pip install -e '.\[trackers\]'"):
        WandbLogger(run_dir=tmp_path, project="p")


def test_run_artifacts_are_pending_once_and_again_when_rewritten(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    files = RunArtifacts(run_dir)
    (run_dir / "report.md").write_text("first")
    checkpoint = tmp_path / "elsewhere" / "best.ckpt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"weights")
    files.watch(SimpleNamespace(monitor=None, best_model_path=""))  # last.ckpt's callback: not the best
    files.watch(SimpleNamespace(monitor="val/acc", best_model_path=str(checkpoint)))
    assert files.pending() == [(run_dir / "report.md", run_dir), (checkpoint, checkpoint.parent)]
    assert files.pending() == []
    os.utime(run_dir / "report.md", ns=(0, 0))  # rewritten
    assert files.pending() == [(run_dir / "report.md", run_dir)]


# ---------------------------------------------------------------- Optuna dashboard
@pytest.mark.slow
def test_optuna_dashboard_lists_the_study_with_its_trials(search: SimpleNamespace) -> None:
    port = free_port()
    cmd = [str(BIN / "optuna-dashboard"), f"sqlite:///{search.log_dir}/optuna.db", "--port", str(port), "--quiet"]
    with server(cmd, f"http://127.0.0.1:{port}/api/studies") as url:
        [study] = get(f"{url}/api/studies")["study_summaries"]
        assert study["study_name"] == "digits_optuna"
        trials = get(f"{url}/api/studies/{study['study_id']}", after=0)["trials"]
        assert len(trials) == TRIALS
        assert [t["state"] for t in trials] == ["Complete"] * TRIALS
        values = {t["number"]: t["values"][0] for t in trials}
        assert values == {t.number: pytest.approx(t.value) for t in search.study.trials}


# ---------------------------------------------------------------- TensorBoard
@pytest.mark.slow
def test_tensorboard_serves_the_layout_and_hparams_led_by_what_varies(search: SimpleNamespace) -> None:
    port = free_port()
    cmd = [str(BIN / "tensorboard"), "--logdir", str(search.sweep), "--host", "127.0.0.1", "--port", str(port)]
    cmd.append("--load_fast=false")  # the Python loader: the same answers without the data server's process
    with server(cmd, f"http://127.0.0.1:{port}/data/runs", {"TF_CPP_MIN_LOG_LEVEL": "3"}) as url:
        deadline = time.monotonic() + 60
        while len(get(f"{url}/data/runs")) < TRIALS:  # the runs are read in the background
            assert time.monotonic() < deadline, get(f"{url}/data/runs")
            time.sleep(0.3)
        [category] = get(f"{url}/data/plugin/custom_scalars/layout")["category"]
        charts = {chart["title"]: chart["multiline"]["tag"] for chart in category["chart"]}
        assert list(charts) == ["loss", "accuracy", "lr", "momentum"]
        run = f"{search.trials[0].name}/tensorboard"
        loss = get(f"{url}/data/plugin/custom_scalars/scalars", run=run, tag=charts["loss"][0])["tag_to_events"]
        assert sorted(loss) == ["train/loss", "val/loss"]
        assert [len(events) for events in loss.values()] == [EPOCHS, EPOCHS]
        lr = get(f"{url}/data/plugin/custom_scalars/scalars", run=run, tag=charts["lr"][0])["tag_to_events"]
        assert sorted(lr) == ["lr/default/decay", "lr/default/no_decay"]  # the momentum has its own chart

        experiment = post(f"{url}/data/plugin/hparams/experiment", {"experimentName": ""})
        infos = experiment["hparamInfos"]
        varied = [info["name"] for info in infos if info.get("differs")]
        assert "optimizer.lr" in varied
        assert [info["name"] for info in infos[: len(varied)]] == varied  # what varies comes first
        assert {"val/acc_best", "test/acc"} <= {m["name"]["tag"] for m in experiment["metricInfos"]}


# ---------------------------------------------------------------- a tracker in trouble
TRACKED = [*FAST, "~callbacks.early_stopping", "trainer.log_every_n_steps=1"]
NOT_TAKEN = "is not taking this run's records"


def mlflow_runs(db: Path) -> list[tuple[str, str]]:
    """``(run name, status)`` of every run in an MLflow SQLite store."""
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT name, status FROM runs").fetchall()


def train_in_background(tmp_path: Path, *overrides: str) -> tuple[subprocess.Popen, list[str]]:
    """Start ``src/train.py`` into ``tmp_path/run`` (MLflow store ``tmp_path/mlflow.db``); its output lines are
    collected as they come. ``last.ckpt`` is written every epoch, the tests' sign that epochs go on."""
    cmd = [sys.executable, str(ROOT / "src" / "train.py"), f"hydra.run.dir={tmp_path / 'run'}"]
    cmd += ["callbacks.last_checkpoint.every_seconds=0"]
    cmd += [f"paths.log_dir={tmp_path}", *TRACKED, *overrides]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    return proc, lines


def wait_for(condition: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_tracking_server_that_refuses_is_one_line_exit_2_and_no_run_folder(tmp_path: Path) -> None:
    from conftest import run_script

    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    proc = run_script(
        "train.py", *TRACKED, "logger=mlflow", f"logger.mlflow.tracking_uri={uri}", run_dir=tmp_path / "run"
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: logger.mlflow.tracking_uri='{uri}': cannot be reached ([Errno 111] Connection refused); "
        "start the server, or choose another store (sqlite:///<file>), or leave logger=mlflow out"
    ]
    assert "Traceback" not in proc.stdout and not (tmp_path / "run").exists()


def test_a_tracking_server_that_never_answers_is_refused_within_the_check_time(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(ConfigError, match=r"^logger.mlflow.tracking_uri=.*: (no answer within|cannot be reached)"):
            MLFlowLogger(run_dir=tmp_path, experiment_name="train", tracking_uri=uri)
        assert time.monotonic() - start < CHECK_S + 1


def test_a_locked_sqlite_store_is_refused_at_start_within_the_check_time(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    MLFlowLogger(run_dir=tmp_path, experiment_name="train", tracking_uri=f"sqlite:///{db}")  # creates the store
    with sqlite3.connect(db, isolation_level=None) as lock:
        lock.execute("BEGIN EXCLUSIVE")
        start = time.monotonic()
        with pytest.raises(ConfigError, match=r"cannot be written \(database is locked for 10 s\)"):
            MLFlowLogger(run_dir=tmp_path, experiment_name="train", tracking_uri=f"sqlite:///{db}")
        assert time.monotonic() - start < CHECK_S + 1
        lock.execute("ROLLBACK")


def test_a_store_locked_mid_training_costs_one_warning_and_no_metric(tmp_path: Path) -> None:
    proc, lines = train_in_background(tmp_path, "logger=mlflow", "trainer.max_epochs=60")
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    wait_for(last.exists)  # training is under way
    with sqlite3.connect(tmp_path / "mlflow.db", isolation_level=None) as lock:
        lock.execute("BEGIN EXCLUSIVE")
        locked_at = last.stat().st_mtime
        wait_for(lambda: any(NOT_TAKEN in line for line in lines), SLOW_S + 30)  # during training, or at its end
        assert last.stat().st_mtime > locked_at  # epochs went on under the lock
        lock.execute("ROLLBACK")
    assert proc.wait(timeout=300) == 0, "".join(lines[-30:])
    assert sum(NOT_TAKEN in line for line in lines) == 1
    assert not any("Traceback" in line for line in lines)
    assert mlflow_runs(tmp_path / "mlflow.db") == [("run", "FINISHED")]
    with sqlite3.connect(tmp_path / "mlflow.db") as connection:  # every epoch's val/acc, sent once unlocked
        steps = connection.execute("SELECT COUNT(DISTINCT step) FROM metrics WHERE key = 'val/acc'").fetchone()[0]
    assert steps == 60


def wandb_exit_code(run_dir: Path) -> int:
    [log] = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    [exit_record] = [r.exit for r in wandb_records(log) if r.HasField("exit")]
    return exit_record.exit_code


def test_a_sigtermed_run_ends_its_mlflow_run_killed_and_its_wandb_run_with_143(tmp_path: Path) -> None:
    proc, lines = train_in_background(tmp_path, "logger=[mlflow,wandb]", "trainer.max_epochs=200")
    wait_for((tmp_path / "run" / "checkpoints" / "last.ckpt").exists)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 143, "".join(lines[-30:])
    assert mlflow_runs(tmp_path / "mlflow.db") == [("run", "KILLED")]
    assert wandb_exit_code(tmp_path / "run") == 143


def test_records_a_locked_store_never_took_are_kept_in_the_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("recipe.tracking.mlflow_logger.FLUSH_S", 1)  # finalize's wait, 10 s
    db = tmp_path / "mlflow.db"
    logger = MLFlowLogger(run_dir=tmp_path, experiment_name="train", tracking_uri=f"sqlite:///{db}")
    with sqlite3.connect(db, isolation_level=None) as lock:
        logger.log_metrics({"val/acc": 0.5}, step=3)  # the run is created, and this sent
        assert logger.experiment.outbox.flush(timeout=60) == ([], [])
        lock.execute("BEGIN EXCLUSIVE")
        logger.log_metrics({"val/acc": 0.75}, step=7)
        logger.finalize("success")
        lock.execute("ROLLBACK")
    lines = (tmp_path / "mlflow_unsent.jsonl").read_text().splitlines()
    assert [(r["key"], r["value"], r["step"]) for r in map(json.loads, lines)] == [("val/acc", 0.75, 7)]
    assert f"kept in {tmp_path / 'mlflow_unsent.jsonl'}; its run {logger.run_id} is not ended" in caplog.text
    assert mlflow_runs(db) == [(tmp_path.name, "RUNNING")]


class FailAtEpoch(L.Callback):
    """Raises at the end of epoch 1: a run that fails after it started logging."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == 1:
            raise RuntimeError("injected")


def test_a_failed_run_ends_its_mlflow_run_failed_and_its_wandb_run_with_1(
    make_cfg: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from train import train

    monkeypatch.setenv("WANDB_SILENT", "true")
    fail = "+callbacks.fail._target_=test_tracking.FailAtEpoch"
    cfg = make_cfg(*TRACKED, "logger=[mlflow,wandb]", "logger.wandb.mode=offline", "trainer.max_epochs=3", fail)
    with pytest.raises(RuntimeError, match="injected"):
        train(cfg)
    assert mlflow_runs(tmp_path / "mlflow.db") == [(tmp_path.name, "FAILED")]
    assert wandb_exit_code(tmp_path) == 1


def test_the_outbox_keeps_what_fails_retries_it_and_sends_in_order() -> None:
    sent: list[int] = []
    errors: list[Exception] = []
    down = threading.Event()
    down.set()

    def send(metrics: list[int], params: list[int]) -> None:
        if down.is_set():
            raise ConnectionError("down")
        sent.extend(metrics)

    outbox = Outbox(send, errors.append, retry_s=60, slow_s=60, batch=(2, 2))
    outbox.put([1, 2, 3])
    assert outbox.flush(timeout=5) == ([1, 2, 3], [])  # a failed try: handed back, in order
    assert outbox.failing and errors
    outbox.put([4, 5, 6])
    down.clear()
    assert outbox.flush(timeout=5) == ([], [])  # retried at once by flush, not 60 s later
    assert sent == [4, 5, 6] and not outbox.failing
