"""MLflow tracking for a run folder: Lightning's logger, the run named after the folder, the folder's files kept."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger as LightningMLFlowLogger
from lightning.pytorch.utilities import rank_zero_only

from recipe.extras import require
from recipe.tracking.run_files import RunArtifacts, sweep_name


class MLFlowLogger(LightningMLFlowLogger):
    """Lightning's ``MLFlowLogger`` for one run folder: the MLflow run is named after the folder, tagged ``sweep``
    with its sweep's folder in a ``-m`` run, and gets the folder's ``report.md``, ``curves.png`` and best
    checkpoint as artifacts.

    Args:
        run_dir: the run folder.
        experiment_name: the MLflow experiment (one per ``task_name``).
        tracking_uri: where runs are recorded; a ``sqlite:///`` file, since MLflow 3 deprecates the file store
            that Lightning defaults to.
        artifact_location: where a new experiment keeps its runs' artifacts.
        tags: tags of the run.
        **kwargs: see Lightning's ``MLFlowLogger`` (``prefix``, ``synchronous``).
    """

    def __init__(
        self,
        run_dir: str | Path,
        experiment_name: str,
        tracking_uri: str,
        artifact_location: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        require("mlflow", "logger", "mlflow")  # logger=mlflow without the trackers extra: one line
        sweep = sweep_name()
        tags = {**(tags or {}), **({"sweep": sweep} if sweep else {})}
        super().__init__(
            experiment_name=experiment_name,
            run_name=Path(run_dir).name,
            tracking_uri=tracking_uri,
            artifact_location=artifact_location,
            tags=tags or None,
            **kwargs,
        )
        self.run_files = RunArtifacts(run_dir)

    def after_save_checkpoint(self, checkpoint_callback: ModelCheckpoint) -> None:
        self.run_files.watch(checkpoint_callback)

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        if self._initialized:
            for path, base in self.run_files.pending():
                folder = path.parent.relative_to(base).as_posix()
                self.experiment.log_artifact(self.run_id, str(path), None if folder == "." else folder)
        super().finalize(status)


def log_sweep_comparison(logger_cfg: Mapping[str, Any], sweep_dir: Path, files: list[Path]) -> None:
    """Record a sweep's comparison as an MLflow run of its own, named and tagged after the sweep folder, beside
    the runs of its jobs (tagged ``sweep`` with the same name), so the UI groups them and shows the comparison.

    Args:
        logger_cfg: the ``logger.mlflow`` section of the sweep's config (``tracking_uri``, ``experiment_name``).
        sweep_dir: the multirun folder.
        files: the comparison's files to attach.
    """
    from mlflow import MlflowClient

    client = MlflowClient(logger_cfg["tracking_uri"])
    name = logger_cfg["experiment_name"]
    experiment = client.get_experiment_by_name(name)
    experiment_id = (
        experiment.experiment_id
        if experiment
        else client.create_experiment(name, artifact_location=logger_cfg.get("artifact_location"))
    )
    run = client.create_run(experiment_id, run_name=f"sweep {sweep_dir.name}", tags={"sweep": sweep_dir.name})
    for path in files:
        client.log_artifact(run.info.run_id, str(path))
    client.set_terminated(run.info.run_id)
