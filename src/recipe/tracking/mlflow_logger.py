"""MLflow tracking for a run folder: Lightning's logger, the run named after the folder, the folder's files kept.

A tracker is an observer of the run: it is asked once at start, within seconds, whether it answers (a run that
cannot record is refused in one line before it starts); after that, its records are sent from a background thread,
and a tracker that stops answering costs one warning, never a step. What it never took is kept in the run folder.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger as LightningMLFlowLogger
from lightning.pytorch.utilities import rank_zero_only

from recipe.errors import config_error
from recipe.extras import require
from recipe.tracking.outbox import CHECK_S, reason, within
from recipe.tracking.run_files import RunArtifacts, stop_signal, sweep_name

log = logging.getLogger(__name__)

RETRY_S = 30  # while the store fails, records are retried this often (and at each finalize)
SLOW_S = 5  # a send unanswered this long is reported (SQLite waits 20 s for a lock before it fails)
FLUSH_S = 10  # finalize waits this long for the queued records
# MLflow's defaults retry a request 7 times over minutes, each waiting up to 120 s; the outbox retries instead.
HTTP_ENV = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "5", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
UNSENT = "mlflow_unsent.jsonl"  # in the run folder: the records MLflow did not take, one JSON object a line


class _OwnThreadsQuiet(logging.Filter):
    """Drops MLflow's own error log (a traceback each time) for a failure of this module's threads, which the
    logger reports in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName not in ("tracker-outbox", "tracker-check")


QUIET = _OwnThreadsQuiet()


def _sqlite_file(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` store, None for any other store."""
    if not uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(uri).database
    return Path(database) if database and database != ":memory:" else None


def check_store(client: Any, uri: str, experiment_name: str) -> str | None:
    """Refuse in one line a store that does not answer: a server asked for the experiment within ``CHECK_S``
    seconds, a SQLite file whose write lock is not free within ``CHECK_S``. Returns the experiment's id, None when
    it does not exist yet."""
    key = "logger.mlflow.tracking_uri"
    db = _sqlite_file(uri)
    if db is not None and db.is_file():
        try:
            with sqlite3.connect(db, timeout=CHECK_S, isolation_level=None) as connection:
                connection.execute("BEGIN IMMEDIATE")  # the write lock MLflow needs, taken and given back
                connection.execute("ROLLBACK")
            connection.close()
        except sqlite3.Error as err:
            raise config_error(key, uri, f"cannot be written ({reason(err)} for {CHECK_S} s)") from None
    hint = "start the server, or choose another store (sqlite:///<file>), or leave logger=mlflow out"
    try:  # creating a new SQLite file's tables may take longer, and is not a sign of trouble
        experiment = within(lambda: client.get_experiment_by_name(experiment_name), None if db else CHECK_S)
    except TimeoutError as err:
        raise config_error(key, uri, f"{err}; {hint}") from None
    except Exception as err:  # whatever the store raises is reported in one line
        raise config_error(key, uri, f"cannot be reached ({reason(err)}); {hint}") from None
    return experiment.experiment_id if experiment and experiment.lifecycle_stage != "deleted" else None


class MLFlowLogger(LightningMLFlowLogger):
    """Lightning's ``MLFlowLogger`` for one run folder: the MLflow run is named after the folder, tagged ``sweep``
    with its sweep's folder in a ``-m`` run, and gets the folder's ``report.md``, ``curves.png`` and best
    checkpoint as artifacts.

    Args:
        run_dir: the run folder.
        experiment_name: the MLflow experiment (one per ``task_name``).
        tracking_uri: where runs are recorded; a ``sqlite:///`` file, since MLflow 3 deprecates the file store
            that Lightning defaults to.
        artifact_location: where a new experiment keeps its runs' artifacts.
        tags: tags of the run.
        **kwargs: see Lightning's ``MLFlowLogger`` (``prefix``, ``synchronous``).
    """

    def __init__(
        self,
        run_dir: str | Path,
        experiment_name: str,
        tracking_uri: str,
        artifact_location: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        require("mlflow", "logger", "mlflow")  # logger=mlflow without the trackers extra: one line
        from recipe.tracking.mlflow_client import QueuedClient

        for name, value in HTTP_ENV.items():  # read by MLflow at each request; a user's own setting wins
            os.environ.setdefault(name, value)
        logging.getLogger("mlflow.store.db.utils").addFilter(QUIET)
        sweep = sweep_name()
        tags = {**(tags or {}), **({"sweep": sweep} if sweep else {})}
        super().__init__(
            experiment_name=experiment_name,
            run_name=Path(run_dir).name,
            tracking_uri=tracking_uri,
            artifact_location=artifact_location,
            tags=tags or None,
            **kwargs,
        )
        self.run_dir = Path(run_dir)
        self.run_files = RunArtifacts(run_dir)
        self._warned = self._kept = False  # the warnings given, once each
        # Lightning's private client attribute: its log_metrics and log_hyperparams send through it
        self._mlflow_client = QueuedClient(tracking_uri, self._warn, RETRY_S, SLOW_S)
        if rank_zero_only.rank == 0:  # the rank that logs
            self._experiment_id = check_store(self._mlflow_client, tracking_uri, experiment_name)

    def _warn(self, err: BaseException) -> None:
        """One line, once per run, for a store that stopped taking records."""
        if not self._warned:
            self._warned = True
            log.warning(
                f"MLflow ({self._tracking_uri}) is not taking this run's records ({reason(err)}): training goes on; "
                f"they are retried every {RETRY_S} s and kept"
            )

    def after_save_checkpoint(self, checkpoint_callback: ModelCheckpoint) -> None:
        self.run_files.watch(checkpoint_callback)

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        """Send the queued records (waiting at most ``FLUSH_S``), keep in ``<run>/mlflow_unsent.jsonl`` what the
        store did not take, attach the run folder's files and end the MLflow run: FINISHED, FAILED, or KILLED for a
        run stopped by Ctrl-C or SIGTERM. While the store fails, the MLflow run is not ended (it shows RUNNING)."""
        if not self._initialized:
            return
        metrics, params = self._mlflow_client.outbox.flush(FLUSH_S)
        if metrics or params:  # the store is failing now: not waited for again to end the run
            self._keep(metrics, params)
            return
        if stop_signal(status):
            status = "KILLED"
        try:
            for path, base in self.run_files.pending():
                folder = path.parent.relative_to(base).as_posix()
                self.experiment.log_artifact(self.run_id, str(path), None if folder == "." else folder)
            super().finalize(status)
        except Exception as err:  # whatever the store raises: the run's files are in its folder anyway
            self._warn(err)

    def _keep(self, metrics: list[Any], params: list[Any]) -> None:
        """Append the records the store did not take to ``<run>/mlflow_unsent.jsonl``, and say so the first time."""
        path = self.run_dir / UNSENT
        with path.open("a") as file:
            for m in metrics:
                file.write(json.dumps({"key": m.key, "value": m.value, "step": m.step, "timestamp": m.timestamp}))
                file.write("\n")
            for p in params:
                file.write(json.dumps({"param": p.key, "value": p.value}) + "\n")
        if not self._kept:  # once: the file is the same for later ones
            self._kept = True
            log.warning(
                f"MLflow did not take {len(metrics)} metric values and {len(params)} params: kept in {path}; "
                f"its run {self._run_id} is not ended"
            )


def log_sweep_comparison(logger_cfg: Mapping[str, Any], sweep_dir: Path, files: list[Path]) -> None:
    """Record a sweep's comparison as an MLflow run of its own, named and tagged after the sweep folder, beside
    the runs of its jobs (tagged ``sweep`` with the same name), so the UI groups them and shows the comparison.

    Args:
        logger_cfg: the ``logger.mlflow`` section of the sweep's config (``tracking_uri``, ``experiment_name``).
        sweep_dir: the multirun folder.
        files: the comparison's files to attach.
    """
    from mlflow import MlflowClient

    client = MlflowClient(logger_cfg["tracking_uri"])
    name = logger_cfg["experiment_name"]
    experiment = client.get_experiment_by_name(name)
    experiment_id = (
        experiment.experiment_id
        if experiment
        else client.create_experiment(name, artifact_location=logger_cfg.get("artifact_location"))
    )
    run = client.create_run(experiment_id, run_name=f"sweep {sweep_dir.name}", tags={"sweep": sweep_dir.name})
    for path in files:
        client.log_artifact(run.info.run_id, str(path))
    client.set_terminated(run.info.run_id)
