"""The default install holds what a default run needs; a run that needs an extra it lacks names it in one line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from recipe.errors import ConfigError
from recipe.extras import EXTRAS, check_extras, require

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=~; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_core_install_leaves_out_the_trackers_the_database_driver_the_docs_and_the_tools() -> None:
    core = _names(PROJECT["dependencies"])
    for extra, packages in PROJECT["optional-dependencies"].items():
        assert not (_names(packages) & core), f"{extra} packages are in the core too"
    assert {"torch", "lightning", "hydra-core", "tensorboard", "scikit-learn", "optuna"} <= core


def test_dev_holds_every_other_extra() -> None:
    extras = PROJECT["optional-dependencies"]
    [nested] = [r for r in extras["dev"] if r.startswith("recipe[")]
    assert set(nested.removeprefix("recipe[").removesuffix("]").split(",")) == set(extras) - {"dev"}


def test_each_package_an_error_names_is_in_the_extra_it_names() -> None:
    extras = PROJECT["optional-dependencies"]
    for package, extra in EXTRAS.items():
        assert package in _names(extras[extra]), f"{package} is not in the {extra!r} extra"


def _hide(monkeypatch: pytest.MonkeyPatch, *packages: str) -> None:
    for package in packages:
        monkeypatch.setitem(sys.modules, package, None)  # find_spec answers None, import raises ImportError


@pytest.mark.parametrize(
    ("cfg", "hidden", "line"),
    [
        ({"logger": {"mlflow": {}}}, "mlflow", "logger='mlflow': needs the 'trackers' extra (mlflow): "),
        ({"logger": {"tensorboard": {}, "wandb": {}}}, "wandb", "logger='wandb': needs the 'trackers' extra (wandb): "),
        (
            {"hydra": {"sweeper": {"storage": "postgresql://user:secret@host/db"}}},
            "psycopg",
            "hydra.sweeper.storage='postgresql://...': needs the 'postgres' extra (psycopg): ",
        ),
    ],
)
def test_a_config_needing_a_missing_extra_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, cfg: dict, hidden: str, line: str
) -> None:
    check_extras(cfg)  # installed here: nothing to say
    _hide(monkeypatch, hidden)
    extra = EXTRAS[hidden]
    with pytest.raises(ConfigError) as err:
        check_extras(cfg)
    assert str(err.value) == f"{line}pip install -e '.[{extra}]'"
    assert "secret" not in str(err.value)


def test_the_default_config_needs_no_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, *EXTRAS)
    check_extras({"logger": {"tensorboard": {}}, "hydra": {"sweeper": {"storage": None}}})
    check_extras({"logger": None, "hydra": {"sweeper": {"storage": "sqlite:///optuna.db"}}})
    require("json", "key", "value")  # installed: nothing to say


def _run_hiding(package: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``src/train.py args`` in a process where ``package`` is not installed (a sitecustomize hides it)."""
    (tmp_path / "sitecustomize.py").write_text(f"import sys\nsys.modules[{package!r}] = None\n")
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(ROOT / "src" / "train.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


@pytest.mark.slow
def test_logger_mlflow_without_mlflow_exits_2_naming_the_trackers_extra(tmp_path: Path) -> None:
    proc = _run_hiding("mlflow", tmp_path, "logger=mlflow", f"hydra.run.dir={tmp_path}/run", "trainer.max_epochs=1")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: logger='mlflow': needs the 'trackers' extra (mlflow): pip install -e '.[trackers]'"
    )
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "run").exists()  # answered before the run folder, and before torch loads


@pytest.mark.slow
def test_a_search_on_postgresql_without_psycopg_exits_2_naming_the_postgres_extra(tmp_path: Path) -> None:
    proc = _run_hiding(
        "psycopg",
        tmp_path,
        "-m",
        "hparams_search=digits_optuna",
        "hydra.sweeper.storage=postgresql://user:secret@127.0.0.1:1/optuna",
        "hydra.sweeper.n_trials=1",
        f"hydra.sweep.dir={tmp_path}/sweep",
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: hydra.sweeper.storage='postgresql://...': needs the 'postgres' extra (psycopg): "
        "pip install -e '.[postgres]'"
    )
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "secret" not in proc.stderr + proc.stdout
