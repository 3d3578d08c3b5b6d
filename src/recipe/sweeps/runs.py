"""The jobs of a multirun folder as they stand on disk: overrides, how each ended, final metrics and curves.

Each job folder holds ``.hydra/`` (Hydra: the config and the overrides), ``tensorboard/`` events (the logger) and
``job.json``, written when the job ends by ``recipe.sweeps.callback.SweepComparison``: its status, the value it
returned, how long it took and why it did not complete. Reading from disk rather than from a sweeper's memory
lets a comparison be made for any launcher, for jobs that ran on other machines, and for a sweep still running.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

JOB_FILE = "job.json"
COLLAPSED = ("seed", "data.fold")  # overrides a configuration is repeated over
STATUSES = ("completed", "failed", "pruned", "unfinished")  # unfinished: no job.json (running, killed, or no hook)

Curve = list[tuple[int, float]]


def override_key(override: str) -> str:
    """``optimizer.lr`` for ``optimizer.lr=0.1``, ``+optimizer.lr=0.1`` and ``~optimizer.lr``."""
    return override.split("=", 1)[0].lstrip("+~")


def one_line(error: BaseException) -> str:
    """An exception as one line: its message's first line, or its type when the message is empty."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def write_job_file(
    folder: Path, status: str, value: Any, duration_s: float, reason: str = "", metric: Any = None
) -> Path:
    """Record how a job ended in ``folder/job.json``.

    Args:
        folder: the job's run folder.
        status: ``completed``, ``failed`` or ``pruned``.
        value: what the task returned (its ``optimized_metric``), ``None`` when it failed.
        duration_s: wall time of the job.
        reason: why it did not complete, one line.
        metric: the name of the returned value, for a reader without the config.
    """
    path = folder / JOB_FILE
    folder.mkdir(parents=True, exist_ok=True)
    record = {"status": status, "value": value, "metric": metric, "duration_s": round(duration_s, 3), "reason": reason}
    partial = path.with_suffix(".json.partial")  # a job killed while writing leaves no torn record
    partial.write_text(json.dumps(record, indent=1) + "\n")
    partial.replace(path)
    return path


@dataclass
class Job:
    """One job of a sweep.

    Args:
        folder: its run folder.
        overrides: its command-line overrides, as Hydra saved them.
        status: one of ``STATUSES``.
        reason: why it did not complete (empty when it did).
        value: the value it returned (its ``optimized_metric``).
        duration_s: its wall time, ``None`` while unfinished.
        metrics: the last value of each ``val/*`` and ``test/*`` scalar it logged.
        curves: ``val/loss`` and ``lr`` (the first optimizer's first group) as (step, value) pairs.
    """

    folder: Path
    overrides: list[str]
    status: str
    reason: str = ""
    value: float | None = None
    duration_s: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    curves: dict[str, Curve] = field(default_factory=dict)

    @property
    def config(self) -> tuple[str, ...]:
        """The overrides that make its configuration: all but the seed and the fold."""
        return tuple(o for o in self.overrides if override_key(o) not in COLLAPSED)


def _scalars(event_dir: Path) -> dict[str, Curve]:
    if not event_dir.is_dir():
        return {}
    # imported here: TensorBoard's reader costs a second of imports that a training job never needs
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(event_dir), size_guidance={"scalars": 0})  # 0: keep every point
    quiet = logging.getLogger("tensorboard")  # it logs each event file it moves on to at INFO
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        events.Reload()
    finally:
        quiet.setLevel(level)
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def read_job(folder: Path, overrides: list[str]) -> Job:
    """The job in ``folder``, which ran with ``overrides``."""
    record = json.loads((folder / JOB_FILE).read_text()) if (folder / JOB_FILE).is_file() else {}
    value = record.get("value")
    if isinstance(value, list):  # several objectives: ranked by the first (their front is in pareto_front.md)
        value = value[0]
    scalars = _scalars(folder / "tensorboard")
    lr_tags = sorted(t for t in scalars if t.startswith(("lr-", "lr/")) and not t.endswith("-momentum"))
    curves = {"val/loss": scalars.get("val/loss", []), "lr": scalars[lr_tags[0]] if lr_tags else []}
    return Job(
        folder=folder,
        overrides=overrides,
        status=record.get("status", "unfinished"),
        reason=record.get("reason", ""),
        value=value,
        duration_s=record.get("duration_s"),
        metrics={tag: points[-1][1] for tag, points in scalars.items() if tag.startswith(("val/", "test/"))},
        curves=curves,
    )


def _job_number(folder: Path) -> tuple[int, str]:
    number = re.search(r"\d+", folder.name)
    return (int(number.group()) if number else -1, folder.name)


def read_sweep(folder: Path) -> list[Job]:
    """Every job folder directly under ``folder`` whose overrides read back whole, in job number order."""
    jobs = []
    for job in sorted((p.parent.parent for p in Path(folder).glob("*/.hydra/overrides.yaml")), key=_job_number):
        overrides = _whole_yaml(job / ".hydra" / "overrides.yaml", ListConfig)
        if overrides is not None:
            jobs.append(read_job(job, [str(o) for o in overrides]))
    return jobs


def _whole_yaml(path: Path, kind: type[DictConfig] | type[ListConfig] = DictConfig) -> Any:
    """The mapping (or list) in ``path``; ``None`` when the file is missing, empty or cut off mid-write, as a job
    killed while Hydra wrote its ``.hydra/`` files leaves them."""
    try:
        loaded = OmegaConf.load(path)
    except (OSError, ValueError, yaml.YAMLError):  # ValueError: a file cut inside a UTF-8 character
        return None
    return loaded if isinstance(loaded, kind) and (kind is ListConfig or loaded) else None


def sweep_settings(folder: Path) -> dict[str, Any]:
    """``optimized_metric`` and the sweeper's ``direction`` (``None`` for a grid sweep), from the first job whose
    saved config reads back whole; the first of each with several objectives."""
    for job in sorted(Path(folder).glob("*/.hydra/config.yaml"), key=lambda p: _job_number(p.parent.parent)):
        config, hydra = _whole_yaml(job), _whole_yaml(job.parent / "hydra.yaml")
        if config is None or hydra is None or "hydra" not in hydra:
            continue
        metric, sweeper = config.get("optimized_metric"), hydra.hydra.sweeper
        if isinstance(metric, ListConfig):  # several objectives: the first one
            return {"optimized_metric": metric[0], "direction": (sweeper.get("directions") or [None])[0]}
        return {"optimized_metric": metric, "direction": sweeper.get("direction")}
    return {"optimized_metric": None, "direction": None}
