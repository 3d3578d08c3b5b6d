"""The private names of Lightning and rich that the recipe reaches for, each behind one function here.

Each is used because the installed versions offer no public way to do the job. ``tests/test_private_api.py``
fails, naming the library's version, when an upgrade renames or changes one: update the function here (and the
test), nothing else. What replaced the other private names the recipe once used: ``recipe.callbacks.ModelCheckpoint``
wraps Lightning's public saving hooks (was ``ModelCheckpoint._save_checkpoint``); ``recipe.callbacks.ema.EMA`` passes
its ``avg_fn`` to ``WeightAveraging`` (was ``EMAWeightAveraging._kwargs``).
"""

from __future__ import annotations

from typing import Any

import lightning as L


def logger_writes_this_step(trainer: L.Trainer) -> bool:
    """Whether the trainer's loggers write the metrics logged at this step: every ``trainer.log_every_n_steps``
    optimizer steps, and at the step the run stops.

    Reads Lightning's ``trainer._logger_connector.should_update_logs``, the test the logger connector itself makes
    (and Lightning's ``LearningRateMonitor`` reads). Lightning has no public equivalent; recomputing it from
    ``trainer.global_step`` would drift from the connector's own count of stepped batches (on resume, on skipped
    steps), and a metric computed at a step the logger does not write is dropped.
    """
    return trainer._logger_connector.should_update_logs


def stop_refresh_thread(progress: Any) -> None:
    """Stop the drawing thread of a rich ``Progress`` (Lightning's ``CustomProgress``) and detach it, so that
    stopping the display does not join it; no-op for ``None`` or a display without one.

    Lightning's thread sleeps ``1 / refresh_rate`` seconds between draws and ``CustomProgress.stop`` joins it:
    up to a second at the end of every fit, validation and test at the default rate. The thread is rich's
    ``Live._refresh_thread`` (neither rich nor Lightning offers a public handle); stopped, it exits when its sleep
    ends, drawing nothing more, and it is a daemon thread. ``recipe.callbacks.ProgressBar`` calls this from its
    override of ``RichProgressBar._stop_progress``, Lightning's private method that ``teardown`` and
    ``on_exception`` call to stop the display.
    """
    live = getattr(progress, "live", None)
    thread = live._refresh_thread if live is not None else None
    if thread is not None:
        thread.stop()
        live._refresh_thread = None


def saves_within_epochs(checkpoint: Any) -> bool:
    """Whether a Lightning ``ModelCheckpoint`` saves at training batch ends (``every_n_train_steps`` or
    ``train_time_interval``): otherwise its ``on_train_batch_end`` has nothing to do. Reads its private
    ``_every_n_train_steps`` and ``_train_time_interval``, the settings as ``__init__`` resolved them (no public
    attribute holds them); ``tests/test_step_cost.py`` fails when they change."""
    return bool(checkpoint._every_n_train_steps) or checkpoint._train_time_interval is not None
