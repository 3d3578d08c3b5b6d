"""Hydra's plugin scan stays light, and the sweeper's trials keep a heartbeat through Optuna's public API only."""

from __future__ import annotations

import inspect
import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest

from recipe.sweeps.storage import heartbeat, open_storage

HEAVY = ("torch", "lightning", "optuna", "sqlalchemy", "submitit", "sklearn", "matplotlib", "rich")

SCAN = f"""
import json, sys
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
plugins = Plugins.instance()
found = [p.__module__ + "." + p.__name__ for p in plugins.discover(Sweeper) + plugins.discover(Launcher)]
print(json.dumps({{"found": found, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""


def test_hydras_plugin_scan_finds_the_plugins_without_importing_torch_lightning_or_optuna() -> None:
    # a process of its own: what this test process imported must not hide what the scan imports
    out = subprocess.run([sys.executable, "-c", SCAN], capture_output=True, text=True, check=True).stdout
    scan = json.loads(out.splitlines()[-1])
    assert scan["heavy"] == []
    assert "hydra_plugins.recipe_optuna_sweeper.sweeper.OptunaSweeper" in scan["found"]
    assert "hydra_plugins.recipe_submitit_launcher.launcher.SlurmLauncher" in scan["found"]


def _heartbeats(db: Path) -> int:
    """How many heartbeats the SQLite file ``db`` holds, read without Optuna."""
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT COUNT(*) FROM trial_heartbeats").fetchone()[0]


def test_a_trial_records_its_heartbeat_while_it_runs_and_stops_after(tmp_path: Path) -> None:
    db = tmp_path / "optuna.db"
    storage = open_storage(f"sqlite:///{db}", heartbeat_interval=1)
    study = optuna.create_study(storage=storage)
    with pytest.warns(UserWarning, match="Heartbeat"):  # Optuna's reminder that ask-and-tell has no heartbeat
        trial = study.ask()
    assert _heartbeats(db) == 0
    with heartbeat(storage, trial._trial_id):
        deadline = time.monotonic() + 10
        while _heartbeats(db) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _heartbeats(db) == 1
    assert [t.name for t in threading.enumerate() if t.name.startswith("heartbeat")] == []


@pytest.mark.parametrize("url", [None, "journal", "sqlite"])
def test_a_storage_without_heartbeat_runs_the_block_with_no_thread(tmp_path: Path, url: str | None) -> None:
    url = {None: None, "journal": f"journal:///{tmp_path}/s.log", "sqlite": f"sqlite:///{tmp_path}/s.db"}[url]
    before = threading.active_count()
    with heartbeat(open_storage(url), trial_id=0):
        assert threading.active_count() == before


def test_optunas_public_heartbeat_methods_are_still_there() -> None:
    """``recipe.sweeps.storage.heartbeat`` relies on these; a failure here means Optuna changed them."""
    rdb = optuna.storages.RDBStorage
    for name, params in (("get_heartbeat_interval", ["self"]), ("record_heartbeat", ["self", "trial_id"])):
        method = getattr(rdb, name, None)
        assert method is not None, f"optuna {optuna.__version__}: RDBStorage.{name} is gone"
        assert list(inspect.signature(method).parameters) == params, (
            f"optuna {optuna.__version__}: RDBStorage.{name}{inspect.signature(method)} (expected {params})"
        )
