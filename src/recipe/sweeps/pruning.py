"""Report the validation metric to the current Optuna trial every epoch; stop the run when it is pruned."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import lightning as L
from lightning.pytorch.callbacks import Callback

from recipe.errors import config_error
from recipe.sweeps.trial import current_trial


class OptunaPruning(Callback):
    """After each validation epoch, report ``monitor`` to the sweep's trial and ask its pruner.

    A pruned run, or one whose ``check_finite`` metrics turned NaN or infinite (a diverged run), stops at the
    end of the epoch (``trainer.should_stop``) and the sweeper records the trial as pruned; so does a run still
    training when the search's time budget (``hydra.sweeper.timeout``) runs out. Outside an Optuna
    sweep it does nothing, so a search yaml's config also trains alone.

    Hand-written rather than optuna-integration's ``PyTorchLightningPruningCallback``: that one takes the
    trial as a constructor argument, which a yaml config cannot hold; this one finds it in
    ``recipe.sweeps.trial``.

    Args:
        monitor: the logged metric reported as the trial's intermediate value (the step is the epoch).
        check_finite: logged metrics that prune the trial when they are NaN or infinite.
    """

    def __init__(self, monitor: str, check_finite: Sequence[str] = ("val/loss",)) -> None:
        self.monitor, self.check_finite = monitor, list(check_finite)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        active = current_trial()
        if active is None or active.pruned or trainer.sanity_checking:
            return
        epoch, metrics = trainer.current_epoch, trainer.callback_metrics
        if self.monitor not in metrics:
            key = "callbacks.optuna_pruning.monitor"
            raise config_error(key, self.monitor, f"not logged; logged: {sorted(metrics)}")
        values = {key: float(metrics[key]) for key in [*self.check_finite, self.monitor] if key in metrics}
        diverged = [f"{key}={value}" for key, value in values.items() if not math.isfinite(value)]
        if diverged:
            active.pruned = f"diverged at epoch {epoch}: {', '.join(diverged)}"
        else:
            value = values[self.monitor]
            active.trial.report(value, step=epoch)
            if active.trial.should_prune():
                active.pruned = f"stopped at epoch {epoch} by the pruner ({self.monitor}={value:.4f})"
            elif active.deadline is not None and time.monotonic() >= active.deadline:
                active.pruned = f"stopped at epoch {epoch}: the search's time budget (hydra.sweeper.timeout) is spent"
        trainer.should_stop = trainer.should_stop or active.pruned is not None
