"""The private names of Lightning and rich that ``recipe.runtime.private_api`` reaches for still exist and still do
what it relies on: an upgrade that renames or changes one fails here, naming the installed version."""

from __future__ import annotations

import io
import time
from importlib.metadata import version
from unittest import mock

import lightning as L
import pytest
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.callbacks.progress.rich_progress import CustomProgress
from lightning.pytorch.demos.boring_classes import BoringModel
from rich.console import Console
from rich.live import Live

from recipe.callbacks.progress import ProgressBar
from recipe.runtime.private_api import logger_writes_this_step, stop_refresh_thread

LIGHTNING = f"lightning {L.__version__}"
RICH = f"rich {version('rich')}"
UPDATE = "update recipe/runtime/private_api.py and this test"


def test_the_trainer_still_has_the_logger_connectors_should_update_logs():
    connector = getattr(L.Trainer(logger=False, enable_checkpointing=False), "_logger_connector", None)
    assert connector is not None, f"{LIGHTNING}: Trainer._logger_connector is gone; {UPDATE}"
    assert isinstance(getattr(type(connector), "should_update_logs", None), property), (
        f"{LIGHTNING}: Trainer._logger_connector.should_update_logs is no longer a property; {UPDATE}"
    )


class WritesAt(L.Callback):
    def __init__(self) -> None:
        self.steps: list[bool] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.steps.append(logger_writes_this_step(trainer))


@pytest.mark.parametrize(("every", "expected"), [(2, [False, True, False, True, False]), (0, [False] * 5)])
def test_the_logger_writes_every_log_every_n_steps(tmp_path, every, expected):
    seen = WritesAt()
    trainer = L.Trainer(
        default_root_dir=tmp_path, max_steps=5, log_every_n_steps=every, callbacks=[seen], accelerator="cpu",
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(BoringModel())
    assert seen.steps == expected, f"{LIGHTNING}: should_update_logs no longer follows log_every_n_steps; {UPDATE}"


def test_rich_live_still_keeps_its_drawing_thread_in_refresh_thread():
    live = Live(console=Console(file=io.StringIO()), auto_refresh=True, refresh_per_second=0.1)
    assert hasattr(live, "_refresh_thread"), f"{RICH}: Live._refresh_thread is gone; {UPDATE}"
    live.start()
    try:
        assert callable(getattr(live._refresh_thread, "stop", None)), (
            f"{RICH}: Live._refresh_thread is no longer a thread with stop(); {UPDATE}"
        )
    finally:
        live.stop()


def test_lightning_still_stops_the_rich_bar_through_stop_progress():
    for hook in ("teardown", "on_exception"):
        assert "_stop_progress" in getattr(RichProgressBar, hook).__code__.co_names, (
            f"{LIGHTNING}: RichProgressBar.{hook} no longer calls _stop_progress, which recipe.callbacks.ProgressBar "
            f"overrides; {UPDATE}"
        )


@pytest.mark.parametrize("hook", ["teardown", "on_exception"])
def test_stopping_the_bar_does_not_wait_for_its_drawing_thread(hook):
    # Lightning's drawing thread sleeps 1 / refresh_rate seconds (10 here) between draws, and Lightning joins it
    progress = CustomProgress(auto_refresh=True, refresh_per_second=0.1, console=Console(file=io.StringIO()))
    progress.start()
    thread = progress.live._refresh_thread
    bar = ProgressBar(refresh_rate=0.1)
    bar.progress = progress
    started = time.monotonic()
    args = (mock.Mock(), mock.Mock(), "fit" if hook == "teardown" else RuntimeError())
    getattr(bar, hook)(*args)
    assert time.monotonic() - started < 2.0, (
        f"{LIGHTNING}, {RICH}: stopping the progress bar waited for its drawing thread; {UPDATE}"
    )
    assert thread.done.is_set() and progress.live._refresh_thread is None


def test_stopping_no_display_does_nothing():
    stop_refresh_thread(None)
    stop_refresh_thread(mock.Mock(live=None))
