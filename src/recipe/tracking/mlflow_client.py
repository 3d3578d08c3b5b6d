"""An ``MlflowClient`` that queues its run's metrics and params, kept apart so that ``mlflow`` (the trackers extra)
is imported only by a run that logs to it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mlflow import MlflowClient

from recipe.tracking.outbox import Outbox


class QueuedClient(MlflowClient):
    """``log_batch`` of metrics and params for the client's run queues them in an ``Outbox`` and returns at once
    (Lightning's ``log_metrics`` and ``log_hyperparams`` both send through it); ``send`` is the real call, made by
    the outbox's thread. Any other call is MLflow's own.

    Args:
        tracking_uri: the store.
        on_error: hears of each failed send (see ``Outbox``).
        retry_s: seconds between two tries while the store fails.
        slow_s: seconds after which a send not yet answered is reported to ``on_error``.
    """

    def __init__(self, tracking_uri: str, on_error: Callable[[Exception], None], retry_s: float, slow_s: float) -> None:
        super().__init__(tracking_uri)
        self.run_id: str | None = None  # the run of the first queued batch
        self.outbox = Outbox(self.send, on_error, retry_s, slow_s)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Any] = (),
        params: Sequence[Any] = (),
        tags: Sequence[Any] = (),
        synchronous: bool | None = None,
    ) -> Any:
        if tags or self.run_id not in (None, run_id):
            return super().log_batch(run_id, metrics, params, tags, synchronous)
        self.run_id = run_id
        self.outbox.put(metrics, params)
        return None

    def send(self, metrics: list[Any], params: list[Any]) -> None:
        super().log_batch(self.run_id, metrics, params)
