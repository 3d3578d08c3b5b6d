"""Report the validation metric to Ray Tune each epoch with a checkpoint, and apply a PBT mutation to a restored
optimizer. Idle outside a Ray Tune search, so a search yaml's config also trains alone."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint

from recipe.errors import config_error
from recipe.sweeps.ray.replay import follow_schedules
from recipe.sweeps.ray.trial import OUTPUT_DIR_KEY, current_tune_trial

CHECKPOINT_FILE = "tune.ckpt"  # the Lightning checkpoint inside each Tune checkpoint folder
SAVED_BY_FILE = "saved_by.json"  # beside it: the trial and its run folder (where a resumed search finds its job.json)
OPTIMIZER_PREFIX = "optimizer."


class TuneReport(Checkpoint):
    """At the end of each training epoch (after its validation), report ``optimized_metric`` to the Tune trial with a
    checkpoint of the whole training state (what ASHA compares, PBT copies, and a retried or resumed trial restarts
    from). Saved where Lightning's ``ModelCheckpoint`` saves ``last.ckpt`` when validation runs once an epoch, so
    that a restored run starts the next epoch with nothing of this one redone or skipped.

    A trial that PBT restored from a donor's checkpoint gets back the donor's optimizer with the donor's values;
    the keys PBT mutated (``optimizer.<name>``) then take this trial's values from the next step on: each parameter
    group's ``<name>`` as the freshly built optimizer has it (a no-decay group keeps its zero weight decay), and
    the LR of the new base at the schedule's current step (``initial_lr`` and the schedulers' ``base_lrs`` follow;
    a ``LambdaLR`` computes it, other schedules are scaled by new base / old base). Lightning restores the
    optimizers after ``on_fit_start`` and before ``on_train_start``.

    A ``Checkpoint`` for Lightning, so that it runs after the ``ModelCheckpoint``s at the end of an epoch and the
    state it saves holds their files of this epoch.

    Hand-written rather than Ray's ``RayTrainReportCallback``: that one belongs to Ray Train's worker group, not a
    Tune function trainable, and knows nothing of PBT's mutations.
    """

    def __init__(self) -> None:
        self._fresh: list[list[dict[str, Any]]] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trial = current_tune_trial()
        names = _optimizer_keys(trial.mutated) if trial else []
        keys = [*names, "lr", "initial_lr"]
        self._fresh = [[{k: g[k] for k in keys if k in g} for g in o.param_groups] for o in trainer.optimizers]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trial = current_tune_trial()
        if trial is None or not _optimizer_keys(trial.mutated):
            return
        names = _optimizer_keys(trial.mutated)
        for optimizer, fresh_groups in zip(trainer.optimizers, self._fresh, strict=True):
            for group, fresh in zip(optimizer.param_groups, fresh_groups, strict=True):
                for name in names:
                    if name != "lr" and name in fresh:
                        group[name] = fresh[name]
                if "lr" in names:
                    old, new = group.get("initial_lr", group["lr"]), fresh.get("initial_lr", fresh["lr"])
                    group["lr"] = group["lr"] * new / old  # a schedule proportional to its base: its current point
                    if "initial_lr" in group:
                        group["initial_lr"] = new
        if "lr" in names:
            follow_schedules(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trial = current_tune_trial()
        if trial is None:
            return
        from ray import tune

        metrics = trainer.callback_metrics
        if trial.metric not in metrics:
            raise config_error("optimized_metric", trial.metric, f"not logged; logged: {sorted(metrics)}")
        with tempfile.TemporaryDirectory(prefix="tune-") as folder:
            trainer.save_checkpoint(Path(folder) / CHECKPOINT_FILE)
            saved_by = {"trial": tune.get_context().get_trial_name(), "run_folder": str(trainer.default_root_dir)}
            (Path(folder) / SAVED_BY_FILE).write_text(json.dumps(saved_by))
            result = {trial.metric: float(metrics[trial.metric]), OUTPUT_DIR_KEY: str(trainer.default_root_dir)}
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))


def _optimizer_keys(mutated: list[str]) -> list[str]:
    """The optimizer's parameter-group keys among the mutated config keys: ``optimizer.lr`` -> ``lr``."""
    return [key[len(OPTIMIZER_PREFIX) :] for key in mutated if key.startswith(OPTIMIZER_PREFIX)]
