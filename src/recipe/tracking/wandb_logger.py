"""Weights & Biases tracking for a run folder, offline unless asked: its files stay in the run folder."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from recipe.errors import config_error
from recipe.extras import require
from recipe.tracking.outbox import CHECK_S, reason, within
from recipe.tracking.run_files import RunArtifacts, stop_signal, sweep_name

MODES = ("offline", "online", "disabled")


def check_login() -> None:
    """An online run needs credentials that the W&B server accepts: asked at start, within ``CHECK_S`` seconds,
    where ``wandb.init`` would wait 90 s for an unreachable server, or prompt for a key in a terminal. Once the run
    is under way, W&B writes its records to the run folder first and uploads them in its own process, retrying."""
    import wandb

    hint = "run `wandb login` (or set WANDB_API_KEY), or log offline (logger.wandb.mode=offline) and `wandb sync` later"
    try:
        logged_in = within(lambda: wandb.login(prompt=False, verify=True), CHECK_S)
    except Exception as err:  # a timeout, a refused key, an unreachable server: one line
        raise config_error(
            "logger.wandb.mode", "online", f"W&B does not accept this run ({reason(err)}); {hint}"
        ) from None
    if not logged_in:
        raise config_error("logger.wandb.mode", "online", f"no W&B credentials; {hint}")


class WandbLogger(LightningWandbLogger):
    """Lightning's ``WandbLogger`` for one run folder: the W&B run is named after the folder, grouped by its sweep
    in a ``-m`` run, writes under ``<run>/wandb``, and gets the folder's ``report.md``, ``curves.png`` and best
    checkpoint as files. Offline runs upload later with ``wandb sync <run>/wandb/offline-run-*``.

    Args:
        run_dir: the run folder.
        project: the W&B project.
        mode: ``offline`` (no network, the default), ``online`` (after ``wandb login``) or ``disabled``.
        group: the W&B group; ``None`` groups a sweep's jobs by the sweep folder's name.
        **kwargs: see Lightning's ``WandbLogger`` and ``wandb.init`` (``entity``, ``tags``, ``notes``).
    """

    def __init__(
        self, run_dir: str | Path, project: str, mode: str = "offline", group: str | None = None, **kwargs: Any
    ) -> None:
        require("wandb", "logger", "wandb")  # logger=wandb without the trackers extra: one line
        if mode not in MODES:
            raise config_error("logger.wandb.mode", mode, f"one of {', '.join(MODES)}")
        if mode == "online" and rank_zero_only.rank == 0:  # the rank that logs
            check_login()
        super().__init__(
            name=Path(run_dir).name,
            save_dir=str(run_dir),
            project=project,
            group=group or sweep_name(),
            mode=mode,
            **kwargs,
        )
        self.run_files = RunArtifacts(run_dir)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The W&B run, started on first use; a run still open in this process (the previous job of a sweep run
        in one process) is finished first, since Lightning would otherwise log this job into it."""
        import wandb

        if self._experiment is None and wandb.run is not None:
            wandb.run.finish()
        return super().experiment

    def after_save_checkpoint(self, checkpoint_callback: ModelCheckpoint) -> None:
        self.run_files.watch(checkpoint_callback)

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        """Save the run folder's new files to the W&B run; a run that failed or was stopped is finished at once with
        exit code 1, or 128 + the signal (130 Ctrl-C, 143 SIGTERM), which W&B shows as failed: left to W&B's exit
        hook, it would be recorded with exit code 0."""
        if self._experiment is None:
            return
        for path, base in self.run_files.pending():
            self._experiment.save(str(path), base_path=str(base), policy="now")
        super().finalize(status)
        if status == "failed":
            stop = stop_signal(status)
            self._experiment.finish(exit_code=128 + stop if stop else 1)


def log_sweep_comparison(logger_cfg: Mapping[str, Any], sweep_dir: Path, files: list[Path]) -> None:
    """Record a sweep's comparison as a W&B run in the sweep's group (its jobs' group), under ``<sweep>/wandb``.

    Args:
        logger_cfg: the ``logger.wandb`` section of the sweep's config (``project``, ``mode``, ``group``).
        sweep_dir: the multirun folder.
        files: the comparison's files to attach.
    """
    import wandb

    if wandb.run is not None:  # the last job's run, when the jobs ran in this process
        wandb.run.finish()
    run = wandb.init(
        project=logger_cfg["project"],
        mode=logger_cfg.get("mode") or "offline",
        group=logger_cfg.get("group") or sweep_dir.name,
        name=f"sweep {sweep_dir.name}",
        job_type="comparison",
        dir=str(sweep_dir),
    )
    for path in files:
        run.save(str(path), base_path=str(sweep_dir), policy="now")
    run.finish()
