"""Where a study lives: SQLite (one machine), PostgreSQL (many), or a journal file (many, on a shared file system).

A trial whose process is gone is failed and its parameters are queued to run again. On the machine it ran on, the
sweeper sees that at once (``process_gone``: the trial records its process id). On SQLite and PostgreSQL each running
trial also records a heartbeat, which finds a trial lost on another machine once it has been silent for longer than
the grace period; a journal file has no heartbeat in Optuna.

A study file that is there but cannot be read (empty, cut short, not SQLite) is refused in one line and left as it is.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import optuna
from filelock import FileLock
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from recipe.errors import config_error

log = logging.getLogger(__name__)

JOURNAL = "journal://"  # journal:///abs/path.log or journal://relative/path.log


class RetryLostTrial:
    """Log a trial failed because it lost its process, and queue its parameters again (at most ``max_retry`` times).

    Args:
        max_retry: how many times one set of parameters is retried after losing its process.
        why: how the process was found lost, for the log.
    """

    def __init__(self, max_retry: int, why: str = "no heartbeat") -> None:
        self.max_retry, self.why = max_retry, why
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        log.warning(
            f"Trial {trial.number} lost its process ({self.why}): failed; its parameters are queued again"
            f" (at most {self.max_retry} times)"
        )
        self.retry(study, trial)


def open_storage(
    url: str | None, heartbeat_interval: int | None = None, grace_period: int | None = None, max_retry: int = 0
) -> optuna.storages.BaseStorage | None:
    """Optuna storage at ``url`` (``None``: in memory); a file's folder is made, an existing file is checked
    (``check_study_file``), SQLite gets a lock timeout. Two processes that may create one file at once call this
    under ``ask_lock``, so that neither reads the other's half-made file.

    Args:
        url: ``sqlite:///path.db``, ``postgresql://user:password@host/db``, ``journal:///path.log`` or ``None``.
        heartbeat_interval: seconds between a running trial's heartbeats (database storages); ``None``: none.
        grace_period: seconds without a heartbeat after which a trial is lost; ``None``: twice the interval.
        max_retry: how many times a lost trial's parameters run again.
    """
    if url is None:
        return None
    path = storage_file(url)
    if path:
        _make_folder(url, path)
        check_study_file(url, path)
    if url.startswith(JOURNAL):
        return JournalStorage(JournalFileBackend(str(path)))
    heartbeat = {
        "heartbeat_interval": heartbeat_interval,
        "grace_period": grace_period,
        "heartbeat_stale_trial_callback": RetryLostTrial(max_retry) if heartbeat_interval else None,
    }
    # Two processes on one SQLite file wait for each other's write lock instead of failing at once.
    engine_kwargs = {"connect_args": {"timeout": 60}} if make_url(url).get_backend_name() == "sqlite" else {}
    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **heartbeat)
        except (IntegrityError, OperationalError, ProgrammingError):  # another process is creating the tables
            if attempt == 2:
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def heartbeat(storage: optuna.storages.BaseStorage | None, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat in ``storage`` (as ``open_storage`` opened it) every heartbeat interval while the
    block runs, as ``Study.optimize`` does for its trials; ask-and-tell has no heartbeat of its own. A no-op where the
    storage has no heartbeat (memory, a journal, a database opened without ``heartbeat_interval``).

    Only ``RDBStorage``'s public ``get_heartbeat_interval`` and ``record_heartbeat`` are used, not Optuna's private
    ``optuna.storages._heartbeat`` module that ``Study.optimize`` runs its thread from.
    """
    interval = storage.get_heartbeat_interval() if isinstance(storage, optuna.storages.RDBStorage) else None
    if interval is None:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            storage.record_heartbeat(trial_id)
            if stop.wait(timeout=interval):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat of trial id {trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def ask_lock(url: str | None, sweep_dir: Path) -> FileLock:
    """The lock under which a process counts a study's trials and asks for one, so that together the processes run
    exactly ``n_trials``: beside a SQLite or journal file, shared by every command on that file (on one machine, or
    a file system whose locks hold across machines); in the sweep folder for a server's database, shared by the
    workers of one command (separate commands on a server may each ask for one trial past ``n_trials``). A study
    file's folder is made here, as the lock file goes beside it."""
    path = storage_file(url)
    if path:
        _make_folder(url, path)
    return FileLock(f"{path}.ask.lock" if path else sweep_dir / ".ask.lock")


def _make_folder(url: str, path: Path) -> None:
    """Make the folder of the study file ``path``; one that cannot be made (a file on the way) is a ``ConfigError``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a file where a folder should be, no permission
        on_the_way = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), None)
        why = f"{on_the_way} is a file" if on_the_way else f"{err.filename}: {err.strerror}"
        raise config_error("hydra.sweeper.storage", url, f"a file in a folder that can be made, but {why}") from None


def storage_file(url: str | None) -> Path | None:
    """The file a journal or SQLite storage lives in; ``None`` for memory or a database server."""
    if url is None:
        return None
    if url.startswith(JOURNAL):
        return Path(url.removeprefix(JOURNAL))
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        return Path(parsed.database)
    return None


def check_study_file(url: str, path: Path) -> None:
    """Refuse a study file that is there but holds nothing Optuna can read: empty, cut short, not SQLite or a journal.

    Optuna starts a new study in an empty file and ends in a database traceback on a damaged one; here either is one
    line naming the file, which is only read, never repaired or replaced (a copy may still be restored).
    """
    if not path.exists():
        return
    if path.is_dir():
        problem = "is a folder"
    elif path.stat().st_size == 0:
        problem = "is empty (0 bytes)"
    elif url.startswith(JOURNAL):
        problem = _journal_problem(path)
    else:
        problem = _sqlite_problem(path)
    if problem:
        raise config_error(
            "hydra.sweeper.storage",
            url,
            f"a study Optuna can read, but {path} {problem}; it is left as it is: restore it from a copy, "
            "or give another storage",
        )


def _sqlite_problem(path: Path) -> str | None:
    """What is wrong with the SQLite study file ``path``, read with SQLite's own check; ``None``: nothing."""
    try:
        with contextlib.closing(sqlite3.connect(f"{path.absolute().as_uri()}?mode=rw", uri=True, timeout=60)) as con:
            if con.execute("PRAGMA quick_check").fetchone() != ("ok",):
                return "is damaged (SQLite's quick_check fails)"
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as err:  # "file is not a database", "database disk image is malformed"
        return f"is damaged ({err})"
    return None if "studies" in tables else "is an SQLite database without Optuna's tables"


def _journal_problem(path: Path) -> str | None:
    """What is wrong with the journal ``path``: a line cut short or not a JSON record; ``None``: nothing.

    Read under the journal's own write lock, so that a line another process is appending is never read half written.
    """
    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        with path.open("rb") as f:
            for number, line in enumerate(f, start=1):
                if not line.endswith(b"\n"):
                    return f"is cut short in line {number}"
                try:
                    record = json.loads(line)
                except ValueError:
                    return f"is damaged in line {number} (not JSON)"
                if not isinstance(record, dict) or "op_code" not in record:
                    return f"is damaged in line {number} (not an Optuna journal record)"
    finally:
        lock.release()
    return None


def process_gone(process: Mapping[str, Any]) -> bool:
    """Whether the process a trial recorded (``host``, ``pid``) ran on this machine and no longer runs.

    ``False`` when unsure: a process of another machine, or a process id now taken by another process, is left to
    the heartbeat, so that a live trial is never failed.
    """
    if process.get("host") != socket.gethostname() or not isinstance(process.get("pid"), int):
        return False
    try:
        os.kill(process["pid"], 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process
        return False
    return False


def fail_and_retry(study: optuna.Study, trial: FrozenTrial, max_retry: int, why: str) -> None:
    """Fail ``trial``, which lost its process, and queue its parameters again (``RetryLostTrial``); a trial another
    process has just finished or failed is left alone."""
    try:
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # no public API fails a trial by id
    except optuna.exceptions.UpdateFinishedTrialError:
        return
    RetryLostTrial(max_retry, why=why)(study, study._storage.get_trial(trial._trial_id))


def fail_lost_trials(study: optuna.Study) -> None:
    """Fail the study's trials whose heartbeat stopped, queueing their retries (a no-op without heartbeat)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def counted_trials(study: optuna.Study) -> int:
    """Trials run or running, in this process or another, toward ``n_trials``.

    Queued trials wait to be asked for, and a lost trial whose retry was queued is counted through its retry.
    """
    trials = study.get_trials(deepcopy=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retried = {number for trial in trials for number in RetryHeartbeatStaleTrialCallback.retry_history(trial)}
    return sum(t.state != TrialState.WAITING and t.number not in retried for t in trials)
