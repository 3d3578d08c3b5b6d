"""Where a study lives: SQLite (one machine), PostgreSQL (many), or a journal file (many, on a shared file system).

On SQLite and PostgreSQL each running trial records a heartbeat; a trial silent for longer than the grace period
lost its process (SIGKILL, a dead machine): it is failed and its parameters are queued to run again. A journal
file has no heartbeat in Optuna: a trial whose process was killed stays RUNNING there.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import optuna
from filelock import FileLock
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

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
    """Optuna storage at ``url`` (``None``: in memory); a file's folder is made, SQLite gets a lock timeout.

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
        path.parent.mkdir(parents=True, exist_ok=True)
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
    workers of one command (separate commands on a server may each ask for one trial past ``n_trials``)."""
    path = storage_file(url)
    return FileLock(f"{path}.ask.lock" if path else sweep_dir / ".ask.lock")


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
