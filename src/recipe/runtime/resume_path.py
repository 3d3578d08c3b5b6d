"""What a resume continues: the checkpoint (``ckpt_path=auto`` finds one in the run folder) and the run's own config.

A job that a scheduler requeues runs the same command again; with ``ckpt_path=auto`` it goes on from the run
folder's newest checkpoint (``checkpoints/last.ckpt``, or the ``hpc_ckpt_<n>.ckpt`` that Lightning's SLURM
requeue writes into the run folder) and keeps writing into the same folder, TensorBoard run, report and log. That
needs a run folder that the second start finds again: ``hydra.run.dir=...``, or inside a SLURM job the folder
``run_folder`` names after the job (``slurm-<job id>``, ``slurm-<array job id>_<task id>`` for array tasks).

A resume from the command line continues the checkpoint's run, not the defaults (``continued_run``): the config
stored in the checkpoint, with the keys the command gives put on top. This module is imported before torch loads
(the ``run_folder`` resolver), so it loads checkpoints through a deferred import.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from recipe.errors import ConfigError, config_error

AUTO = "auto"
CONF_DIR = Path(__file__).resolve().parents[3] / "conf"
# what a run trains, which a resume cannot change: the weights fit one architecture and task, the data position and
# RNG states one dataset and seed, and the optimizer's restored state holds its own LR and hyperparameters. The rest
# may change: trainer, callbacks, logger, paths, test, and the schedule (rebuilt from the config: WSD's branching)
FIXED_ON_RESUME = ("model", "module", "task", "data", "optimizer", "seed")


def slurm_job_key() -> str | None:
    """``<job id>`` or ``<array job id>_<task id>`` of the SLURM job this process runs in, else ``None``; the
    same after a requeue."""
    if os.environ.get("SLURM_ARRAY_JOB_ID") and os.environ.get("SLURM_ARRAY_TASK_ID"):
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ.get("SLURM_JOB_ID")


def run_folder(ckpt_path: str | None, timestamp: str) -> str:
    """The run folder's name (the ``run_folder`` resolver in ``conf/hydra/default.yaml``): ``slurm-<job>`` for
    ``ckpt_path=auto`` inside a SLURM job, so a requeued job finds its folder again; ``timestamp`` otherwise."""
    job = slurm_job_key() if ckpt_path == AUTO else None
    return f"slurm-{job}" if job else timestamp


def _fixed_folder() -> bool:
    """Whether a second start of the same command writes into this run's folder again."""
    if not HydraConfig.initialized():  # composed from Python: the caller chose paths.output_dir
        return True
    hydra = HydraConfig.get()
    given = any(o.split("=", 1)[0].lstrip("+") == "hydra.run.dir" for o in hydra.overrides.hydra)
    return given or slurm_job_key() is not None


def resume_path(cfg: DictConfig) -> str | None:
    """The checkpoint ``trainer.fit`` resumes from: ``ckpt_path`` as given, or for ``auto`` the run folder's
    newest checkpoint (``None``, a fresh start, when it has none).

    Raises:
        ConfigError: ``auto`` in a ``-m`` sweep (its launcher resumes requeued jobs itself), or in a run folder
            that a second start would not find again.
    """
    if cfg.ckpt_path != AUTO:
        return cfg.ckpt_path
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise config_error("ckpt_path", AUTO, "not in a -m sweep (the SLURM launcher resumes requeued jobs itself)")
    if not _fixed_folder():
        where = "a fixed run folder: add hydra.run.dir=<folder> (a SLURM job gets logs/<task>/runs/slurm-<job id>)"
        raise config_error("ckpt_path", AUTO, f"needs {where}")
    return newest_checkpoint(Path(cfg.paths.output_dir))


def newest_checkpoint(folder: Path) -> str | None:
    """The checkpoint run folder ``folder`` resumes from: the newest of ``checkpoints/last.ckpt`` and Lightning's
    ``hpc_ckpt_<n>.ckpt``; when it does not load (a torn file), the newest checkpoint in the folder that does, said
    in one line. ``None`` when the folder has no checkpoint.

    Raises:
        ConfigError: the folder has checkpoints and none of them loads.
    """
    from lightning.pytorch.utilities import rank_zero_info

    from recipe.runtime.checkpoint_io import load_checkpoint

    def newest_first(paths: list[Path]) -> list[Path]:
        return sorted((p for p in paths if p.is_file()), key=lambda p: p.stat().st_mtime, reverse=True)

    resumes = newest_first([folder / "checkpoints" / "last.ckpt", *folder.glob("hpc_ckpt_*.ckpt")])
    others = newest_first([p for p in (folder / "checkpoints").glob("*.ckpt") if p not in resumes])
    skipped: list[str] = []
    for path in [*resumes, *others]:
        try:
            load_checkpoint(path)
        except ConfigError as err:
            skipped.append(str(err))
            continue
        if skipped:
            rank_zero_info(f"ckpt_path=auto: skipped {'; '.join(skipped)}; resuming from {path}, the newest that loads")
        return str(path)
    if skipped:
        raise config_error("ckpt_path", AUTO, f"no checkpoint in {folder} loads: {'; '.join(skipped)}")
    return None


def continued_run(cfg: DictConfig) -> DictConfig:
    """The config a command with ``ckpt_path`` runs: the checkpoint's stored run config, with each key the command
    line gives (Hydra's ``overrides.task``) put on top, and ``ckpt_path`` the file found. Paths follow the command:
    a value under the run's old folders moves to this command's. The changes are listed in one line.

    Outside a Hydra app (Python callers compose the config they want) or with nothing to resume, ``cfg`` as given.

    Raises:
        ConfigError: the command changes what the run trains (``FIXED_ON_RESUME``): another architecture, data,
            task, optimizer or seed cannot continue the run's weights and optimizer state.
    """
    path = resume_path(cfg)
    if path is None or not HydraConfig.initialized():
        return cfg
    from lightning.pytorch.utilities import rank_zero_info

    from recipe.runtime.checkpoint_io import CHECKPOINT_KEY, load_checkpoint

    given = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    stored = _moved(load_checkpoint(path)[CHECKPOINT_KEY], given.paths)
    run = OmegaConf.create(stored)
    for override in OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task)):
        for key in _keys(override):
            if override.is_delete():
                parent, _, leaf = key.rpartition(".")
                node = OmegaConf.select(run, parent) if parent else run
                if isinstance(node, DictConfig):
                    node.pop(leaf, None)
            else:
                OmegaConf.update(run, key, OmegaConf.select(given, key), merge=False, force_add=True)
    run.ckpt_path = path
    changes = [c for c in _differences(stored, OmegaConf.to_container(run)) if c[0] != "ckpt_path"]
    for key, old, new in changes:
        if key.split(".")[0] in FIXED_ON_RESUME:
            allowed = f"cannot change on resume, the run in {path} has {old!r} ({', '.join(FIXED_ON_RESUME)} are "
            raise config_error(key, new, allowed + "the run's own); to train another, start a run without ckpt_path")
    shown = ", ".join(_shown(*change) for change in changes)
    rank_zero_info(f"Resuming the run in {path} with its own config" + (f", changed: {shown}" if shown else ""))
    OmegaConf.set_struct(run, OmegaConf.is_struct(cfg))
    return run


class _Absent:
    """The value of a key that one config has and the other lacks."""

    def __repr__(self) -> str:
        return "absent"


ABSENT = _Absent()


def _shown(key: str, old: Any, new: Any) -> str:
    """A change as an override: ``key=new (was old)``, ``+key=new``, ``~key``; a dict as ``{...}``."""
    value = "{...}" if isinstance(new, dict) else repr(new)
    if new is ABSENT or old is ABSENT:
        return f"~{key}" if new is ABSENT else f"+{key}={value}"
    return f"{key}={value}" + ("" if isinstance(old, dict) else f" (was {old!r})")


def _keys(override: Override) -> list[str]:
    """The config keys ``override`` sets: its key; for a config group, the group's; for a ``@package _global_``
    group option (``experiment``, ``debug``, ``task``), the keys and groups its file sets."""
    name = override.key_or_group
    if not (CONF_DIR / name).is_dir():
        return [name]
    value = None if override.is_delete() else override.value()
    option = CONF_DIR / name / f"{value}.yaml"
    if not isinstance(value, str) or not option.is_file() or "@package _global_" not in option.read_text():
        return [override.package or name.replace("/", ".")]
    overlay = OmegaConf.load(option)
    groups = [
        str(k).split(" ")[-1].strip("/").replace("/", ".")
        for d in overlay.pop("defaults", [])
        if isinstance(d, DictConfig)
        for k in d
    ]
    return [k for k in [*groups, *_leaves(OmegaConf.to_container(overlay))] if k.split(".")[0] != "hydra"]


def _leaves(tree: Any, prefix: str = "") -> list[str]:
    if not isinstance(tree, dict) or not tree:
        return [prefix[:-1]] if prefix else []
    return [key for k, v in tree.items() for key in _leaves(v, f"{prefix}{k}.")]


def _moved(stored: dict[str, Any], paths: DictConfig) -> dict[str, Any]:
    """``stored`` with each string under one of its run's ``paths`` moved under this command's, the longest first
    (the run folder before the logs folder that holds it)."""
    moves = sorted(((str(v), str(paths[k])) for k, v in stored.get("paths", {}).items() if k in paths), reverse=True)

    def move(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, list):
            return [move(v) for v in value]
        for old, new in moves:
            if isinstance(value, str) and (value == old or value.startswith(old.rstrip("/") + "/")):
                return new + value[len(old) :]
        return value

    return move(stored)


def _differences(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(key, old value, new value)`` for each key whose value differs; ``ABSENT`` where a side lacks it."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [] if old == new else [(prefix[:-1], old, new)]
    keys = [*old, *(k for k in new if k not in old)]
    return [d for k in keys for d in _differences(old.get(k, ABSENT), new.get(k, ABSENT), f"{prefix}{k}.")]
