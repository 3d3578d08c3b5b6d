"""What a command can be answered with before torch and Lightning load (seconds): Hydra's ``--help``, ``--cfg`` and
``--info``, a config group given an option it does not have, a key no config holds, a sweep without ``-m``, an extra
the config needs and the install lacks, and a value the config checks refuse. The entry scripts call
``answer_early`` first, under ``if __name__ == "__main__"``, then import what training needs."""

from __future__ import annotations

import functools
import os
import sys
import types
from collections.abc import Callable
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from hydra_plugins.recipe_optuna_sweeper.sweeper import check_search
from hydra_plugins.recipe_study_sweeper.study_sweeper import check_study_config
from recipe.cli.config import CONF_DIR, set_project_root
from recipe.cli.console import print_error
from recipe.cli.overrides import RUN_FLAGS, _group_options, check_overrides
from recipe.errors import ConfigError, config_error
from recipe.extras import check_extras
from recipe.runtime.run_lock import holder, launching_process, refusal

# Hydra's flags that print and exit without running the task: answered by Hydra itself, with no task to import
HYDRA_INFO_FLAGS = {"--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--shell-completion", "-sc"}
HYDRA_MODE_FLAGS = {"--cfg", "-c", "--info", "-i", "--shell-completion", "-sc"}  # one at a time, and not with -m


def _no_task(cfg: DictConfig) -> None:
    raise AssertionError("Hydra ran the task for a flag that only prints")  # pragma: no cover


def _as_the_script(function: Callable[[DictConfig], None], script: str) -> Callable[[DictConfig], None]:
    """``function`` as if the entry script defined it: Hydra names the app (``train is powered by Hydra``) and the
    job after the file of the task function it is given."""
    code = function.__code__.replace(co_filename=os.path.abspath(script))
    task = types.FunctionType(code, function.__globals__, "main")
    task.__module__ = "__main__"
    return task


def check_run_folder(cfg: DictConfig, multirun: bool) -> None:
    """Refuse in one line a run folder (``hydra.run.dir``; ``hydra.sweep.dir`` for ``-m``) that cannot be created
    or written, or that another live run writes into, before Hydra writes into it (its tracebacks, or the first
    run's ``.hydra`` overwritten). Only a folder that already exists can be in use; a timestamped one is new."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        folder = Path(OmegaConf.select(cfg, key)).absolute()
    except Exception:  # an interpolation only Hydra's job can resolve: left to Hydra
        return
    existing = next(p for p in (folder, *folder.parents) if os.path.exists(p))  # False where stat is refused
    if not existing.is_dir():
        raise config_error(key, str(folder), f"{existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        read_only = os.statvfs(existing).f_flag & os.ST_RDONLY
        raise config_error(
            key, str(folder), f"{existing} is {'on a read-only file system' if read_only else 'not writable'}"
        )
    other = holder(folder) if existing == folder and launching_process() and not multirun else None
    if other:
        raise refusal(folder, other)


def answer_early(config_name: str, check: Callable[[DictConfig], None], args: list[str] | None = None) -> None:
    """Answer Hydra's printing flags, or check the overrides and the config they compose (``check``) and exit
    with code 2 in one line on the first problem; return when the command should run."""
    set_project_root()
    args = sys.argv[1:] if args is None else args
    if any(a.split("=", 1)[0] in HYDRA_INFO_FLAGS for a in args):
        flags = [a.split("=", 1)[0] for a in args]
        modes = list(dict.fromkeys(f for f in flags if f in RUN_FLAGS or f in HYDRA_MODE_FLAGS))
        if len(modes) > 1:  # Hydra's own answer is a ValueError's traceback
            print_error(f"{' with '.join(modes)}: one of -m, --cfg, --info, --shell-completion at a time (to see a "
                        "search's config, leave out -m: --cfg hydra prints its sweeper)")  # fmt: skip
            raise SystemExit(2)
        task = _as_the_script(_no_task, sys.argv[0])
        hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)(task)()
        raise SystemExit(0)
    cfg = check_overrides(CONF_DIR, config_name, args)
    if cfg is None:  # --config-dir, HYDRA_FULL_ERROR: Hydra composes, the task's own check judges
        return
    with open_dict(cfg):  # as Hydra does before a job, so that ${hydra:runtime.output_dir} resolves
        cfg.hydra.runtime.output_dir = "<the run folder>"
    HydraConfig.instance().set_config(cfg)
    try:
        check_extras(cfg)  # logger=mlflow without the trackers extra, a postgresql:// study without psycopg
        check_search(cfg, args)  # hydra.sweeper's settings: Hydra would wrap the sweeper's own error in a screen
        check_study_config(cfg, functools.partial(_group_options, CONF_DIR), args)  # a study's arms and ranges
        check_run_folder(cfg, multirun=any(a in RUN_FLAGS or a.replace(" ", "") == "hydra.mode=MULTIRUN" for a in args))
        with open_dict(cfg):
            del cfg.hydra
        check(cfg)
    except ConfigError as err:
        print_error(str(err))
        raise SystemExit(2) from None
