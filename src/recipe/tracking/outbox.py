"""What a tracker must not do to a run: hold up its start or its steps. The question asked at start has a time
limit; records to send go through a queue that a background thread empties, so a tracker that is slow or down
delays the records, never training."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

Send = Callable[[list[Any], list[Any]], None]
T = TypeVar("T")
CHECK_S = 10  # a tracker must answer this fast at start


def reason(err: BaseException) -> str:
    """The cause of a store's failure in a few words (``[Errno 111] Connection refused``, ``Read timed out``,
    ``database is locked``), else the first line of its message."""
    text = str(err)
    known = re.search(r"\[Errno -?\d+\] [^'\")]+|Read timed out|database is locked", text)
    if known:
        return known.group(0).strip()
    return text.strip().splitlines()[0][:200] if text.strip() else type(err).__name__


def within(ask: Callable[[], T], timeout: float | None) -> T:
    """``ask()``'s answer or exception, or ``TimeoutError`` when it takes more than ``timeout`` seconds (``None``:
    no limit); ``ask`` runs in a daemon thread, ``tracker-check``, left to end on its own after a timeout."""
    answer: list[Any] = []

    def run() -> None:
        try:
            answer.append(ask())
        except Exception as err:  # handed to the caller
            answer.append(err)

    thread = threading.Thread(target=run, name="tracker-check", daemon=True)
    thread.start()
    thread.join(timeout)
    if not answer:
        raise TimeoutError(f"no answer within {timeout:g} s")
    if isinstance(answer[0], Exception):
        raise answer[0]
    return answer[0]


class Outbox:
    """Metrics and params on their way to a tracker, sent in batches by a daemon thread.

    A batch that fails goes back to the front of the queue and is tried again ``retry_s`` later (or at once when
    ``flush`` asks). ``on_error`` hears of each failure, and of a send still unanswered after ``slow_s`` (a SQLite
    store waits 20 s for a lock before it fails), so the owner can warn once.

    Args:
        send: sends ``(metrics, params)``; raises when the tracker does not take them.
        on_error: called with the exception of each failed send, in the thread.
        retry_s: seconds between two tries while the tracker fails.
        slow_s: seconds after which a send not yet answered is reported as a ``TimeoutError``.
        batch: the most metrics and params in one send (MLflow takes 1000 metrics and 100 params per call).
    """

    def __init__(
        self,
        send: Send,
        on_error: Callable[[Exception], None],
        retry_s: float,
        slow_s: float,
        batch: tuple[int, int] = (1000, 100),
    ) -> None:
        self._send, self._on_error, self._batch = send, on_error, batch
        self.retry_s, self.slow_s = retry_s, slow_s
        self._metrics: list[Any] = []
        self._params: list[Any] = []
        self._sending: tuple[list[Any], list[Any]] | None = None  # the batch out now
        self._sent_at = 0.0  # when it went out (time.monotonic)
        self._stuck: tuple[list[Any], list[Any]] | None = None  # a batch flush gave up on, still out
        self._slow_told = False  # on_error heard that it is slow
        self._retry_at = 0.0  # no try before this time (time.monotonic) after a failure
        self.failures = 0  # failed sends so far
        self.failing = False  # the last send failed
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def put(self, metrics: Sequence[Any] = (), params: Sequence[Any] = ()) -> None:
        """Queue records; returns at once."""
        with self._cond:
            slow = self._newly_slow()
            self._metrics.extend(metrics)
            self._params.extend(params)
            if self._thread is None:  # started on first use: a logger that logs nothing starts no thread
                self._thread = threading.Thread(target=self._run, name="tracker-outbox", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        if slow:
            self._on_error(TimeoutError(f"no answer for {self.slow_s:g} s"))

    def _newly_slow(self) -> bool:
        """The send out now has gone unanswered for ``slow_s``, and nobody was told yet (call under the lock)."""
        slow = self._sending is not None and time.monotonic() - self._sent_at > self.slow_s and not self._slow_told
        self._slow_told |= slow
        return slow

    def _due(self) -> bool:
        return bool(self._metrics or self._params) and time.monotonic() >= self._retry_at

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due():
                    self._cond.wait(max(self._retry_at - time.monotonic(), 0.0) or None)
                sending = self._metrics[: self._batch[0]], self._params[: self._batch[1]]
                del self._metrics[: len(sending[0])], self._params[: len(sending[1])]
                self._sending, self._sent_at, self._slow_told = sending, time.monotonic(), False
            try:
                self._send(*sending)
                error = None
            except Exception as err:  # whatever the tracker raises: the records stay queued
                error = err
            with self._cond:
                if self._stuck is sending:
                    self._stuck = None
                if error is not None and self._sending is sending:  # not given up by flush meanwhile
                    self._metrics[:0], self._params[:0] = sending
                    self._retry_at = time.monotonic() + self.retry_s
                self._sending = None
                self.failing = error is not None
                self.failures += error is not None
                self._cond.notify_all()
            if error is not None:
                self._on_error(error)

    def flush(self, timeout: float) -> tuple[list[Any], list[Any]]:
        """Send what is queued now, a retry at once after a failure, and wait until it is sent, a try fails, or
        ``timeout`` seconds pass (a send unanswered after ``slow_s`` is reported meanwhile). Returns what is still
        unsent, which the queue gives up (the caller keeps it)."""
        with self._cond:
            if self._stuck is not None:  # the thread still waits on a send given up before: no use waiting
                timeout = 0.0
            failures = self.failures
            self._retry_at = 0.0
            self._cond.notify_all()

            def done() -> bool:
                return self.failures > failures or not (self._metrics or self._params or self._sending)

            if not self._cond.wait_for(done, min(timeout, self.slow_s)):
                if self._newly_slow():
                    self._on_error(TimeoutError(f"no answer for {self.slow_s:g} s"))
                self._cond.wait_for(done, max(timeout - self.slow_s, 0.0))
            in_flight = self._sending or ([], [])
            self._stuck = self._sending or self._stuck
            unsent = in_flight[0] + self._metrics, in_flight[1] + self._params
            self._metrics, self._params, self._sending = [], [], None
            return unsent
