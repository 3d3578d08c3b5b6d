"""The callback that records a run's curves and writes its report when the run ends, however it ends."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from recipe.callbacks.guards import stability_fixes
from recipe.callbacks.resume import last_checkpoint_path, resume_command
from recipe.errors import ConfigError, TrainingDiverged
from recipe.report.render import markdown, plot_curves, print_summary
from recipe.report.verdict import Thresholds, diagnose
from recipe.sweeps.trial import pruned_reason


class RunReport(Callback):
    """Records every epoch's ``train/*`` and ``val/*`` metrics and the LR of every optimizer step, then writes
    ``report.md`` and ``curves.png`` into ``dirpath`` and prints the epoch table with a verdict.

    The curves are recorded here rather than read back from the logger's files so that the report works with
    any logger (or none) and, kept in the checkpoint, covers the whole of a resumed run.

    Args:
        dirpath: the run folder.
        **thresholds: see ``recipe.report.verdict.Thresholds``.
    """

    def __init__(self, dirpath: str | Path, **thresholds: Any) -> None:
        self.dirpath = Path(dirpath)
        self.thresholds = Thresholds(**thresholds)
        self.epochs: list[dict[str, float]] = []
        self.lrs: list[tuple[int, float]] = []
        self.first_loss: torch.Tensor | float | None = None

    def _record(self, trainer: L.Trainer, prefix: str) -> None:
        values = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(prefix) and v.numel() == 1}
        if not self.epochs or self.epochs[-1]["epoch"] != trainer.current_epoch:
            self.epochs.append({"epoch": float(trainer.current_epoch)})
        self.epochs[-1].update(values)

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any) -> None:
        self.lrs.append((trainer.global_step, float(optimizer.param_groups[0]["lr"])))

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.first_loss is None and isinstance(outputs, dict) and "loss" in outputs:
            # kept on the device, read when the report or a checkpoint needs it: now it would wait for the GPU
            self.first_loss = outputs["loss"].detach() * trainer.accumulate_grad_batches  # Lightning divided it

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._record(trainer, "val/")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer, "train/")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Write the report; a fit that took no optimizer step is an error, so untrained weights are never tested."""
        self.write(trainer)
        if trainer.global_step == 0:  # limit_train_batches=0 is refused before the run; this catches the rest
            raise ConfigError("the fit took no optimizer step: the test would score untrained weights")

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, TrainingDiverged):
            if trainer.validating and not trainer.sanity_checking:  # the guard stopped on this validation's loss
                self._record(trainer, "val/")
            self.write(trainer, diverged=str(exception))
        elif isinstance(exception, (KeyboardInterrupt, SystemExit)):
            path = last_checkpoint_path(trainer)
            resume = f"resume with `{resume_command(trainer)}`" if path else "checkpointing was off"
            self.write(trainer, notes=[f"Interrupted in epoch {trainer.current_epoch}: {resume}."])

    def write(self, trainer: L.Trainer, diverged: str | None = None, notes: list[str] | None = None) -> None:
        """Judge the curves so far and write ``report.md`` and ``curves.png``; rank zero only.

        A trial its search pruned gets the reason in its report and no plot: nobody looks at a pruned trial's
        curves (TensorBoard still has them), and drawing it costs more than an epoch of a small run. The plot comes
        last, being the slow part: a second Ctrl-C while an interrupted run reports loses only the picture.
        """
        if not trainer.is_global_zero:
            return
        verdict = diagnose(self.epochs, self.thresholds, self._first_loss(), diverged)
        if verdict.name == "diverged" and trainer.optimizers:
            fixes = (*stability_fixes(trainer, trainer.lightning_module), "or run the LR finder: lr_find=plot")
            verdict = replace(verdict, fixes=fixes)
        self.dirpath.mkdir(parents=True, exist_ok=True)
        pruned = pruned_reason()
        notes = [*(notes or ()), *([f"Pruned by the search: {pruned}."] if pruned else [])]
        final_lr = self.lrs[-1][1] if self.lrs else None
        report = self.dirpath / "report.md"
        report.write_text(markdown(verdict, self.epochs, final_lr, notes, curves=not pruned))
        print_summary(verdict, self.epochs, report)
        if not pruned:
            lrs = [(s, lr) for s, lr in self.lrs if math.isfinite(lr)]
            plot_curves(self.epochs, lrs, self.dirpath / "curves.png")

    def state_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "lrs": self.lrs, "first_loss": self._first_loss()}

    def _first_loss(self) -> float | None:
        return None if self.first_loss is None else float(self.first_loss)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.epochs, self.lrs = list(state_dict["epochs"]), list(state_dict["lrs"])
        self.first_loss = state_dict["first_loss"]
