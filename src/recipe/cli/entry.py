"""What every entry point does around its task (lightning-hydra-template's ``task_wrapper``): check the config
before anything is built, print it, copy the terminal into the run's log, turn errors into one line and an
exit code, and say where the outputs went."""

from __future__ import annotations

import functools
import math
import shutil
import signal
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.utilities import rank_zero_info
from omegaconf import DictConfig
from torch.optim.optimizer import register_optimizer_step_post_hook

from recipe.cli.console import copy_output_to_log, print_config_tree, print_error
from recipe.errors import CheckpointWriteError, ConfigError, TrainingDiverged, config_error
from recipe.runtime.run_lock import RunFolderInUse

Task = Callable[[DictConfig], "float | list[float] | None"]
HYDRA_FILES = {".hydra"}  # what Hydra writes into a run folder before the task starts (besides its .log)


def _multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _output_dir() -> Path | None:
    return Path(HydraConfig.get().runtime.output_dir).resolve() if HydraConfig.initialized() else None


def _holds_only_hydra_files(folder: Path | None) -> bool:
    """Whether ``folder`` is a single run's new folder: what Hydra wrote, nothing of an earlier run resumed in it."""
    if folder is None or _multirun() or not folder.is_dir():
        return False
    return all(p.name in HYDRA_FILES or p.suffix == ".log" for p in folder.iterdir())


class _FirstStep:
    """Whether this process has taken an optimizer step: torch's hook common to every optimizer, whatever builds it
    (training, the LR finder)."""

    def __init__(self) -> None:
        self.taken = False
        self.hook = register_optimizer_step_post_hook(self._note)

    def _note(self, optimizer: object, args: object, kwargs: object) -> None:
        self.taken = True
        self.hook.remove()  # the first step is all it asks: no call on any later step


def _fail(err: Exception, folder: Path | None, discard: bool) -> None:
    """Print ``err`` as one line and exit; ``discard``: remove the run's folder and say no ``Outputs:``."""
    print_error(str(err))
    if _multirun():
        raise err  # a sweep records the job as failed and goes on to the next one
    if discard:
        shutil.rmtree(folder, ignore_errors=True)
    elif folder is not None:
        rank_zero_info(f"Outputs: {folder}")
    raise SystemExit(2 if isinstance(err, ConfigError) else 1) from None


def _interrupted(folder: Path | None, discard: bool) -> None:
    """A Ctrl-C that no handler took (a second one while the run saves and reports, or one before training): one
    line and 130, the shell's code for it, instead of a traceback from wherever it landed."""
    if discard:
        shutil.rmtree(folder, ignore_errors=True)
    rank_zero_info("Stopped at once by Ctrl-C" + (f"; outputs so far: {folder}" if folder and not discard else ""))
    raise SystemExit(128 + signal.SIGINT) from None


def entry_point(
    check: Callable[[DictConfig], None], prepare: Callable[[DictConfig], DictConfig] | None = None
) -> Callable[[Task], Task]:
    """Wrap an entry point's task: ``prepare(cfg)`` (the config the run uses, e.g. a resumed run's own) and
    ``check`` first, then the config tree, the task, and ``Outputs:``.

    A ``ConfigError``, ``TrainingDiverged`` or ``CheckpointWriteError`` becomes one line on stderr (the last one
    printed) and exit code 2 or 1. A run that fails before its first optimizer step leaves no folder behind, the
    loggers' files in it included, unless it continues in a folder an earlier run filled (``ckpt_path=auto``). In
    a ``-m`` sweep the error is re-raised so that the sweeper records the job as failed.
    """

    def wrap(task: Task) -> Task:
        @functools.wraps(task)
        def run(cfg: DictConfig) -> float | list[float] | None:
            folder = _output_dir()
            new_folder, step = _holds_only_hydra_files(folder), _FirstStep()
            with copy_output_to_log(), warnings.catch_warnings():
                # Lightning's model summary warns for every mixed precision, yet its size estimate is exact
                warnings.filterwarnings("ignore", message=r"Precision .*-mixed is not supported by the model summary")
                try:
                    cfg = prepare(cfg) if prepare else cfg
                    check(cfg)
                    print_config_tree(cfg)
                    value = task(cfg)
                except (ConfigError, TrainingDiverged, CheckpointWriteError) as err:
                    # a folder another run holds is that run's, even if it looked new when this one started
                    _fail(err, folder, discard=new_folder and not step.taken and not isinstance(err, RunFolderInUse))
                except KeyboardInterrupt:
                    _interrupted(folder, discard=new_folder and not step.taken)
                finally:
                    step.hook.remove()
                if folder is not None:
                    rank_zero_info(f"Outputs: {folder}")
                return value

        return run

    return wrap


def optimized_value(metrics: Mapping[str, float], key: str | Sequence[str] | None) -> float | list[float] | None:
    """The value a sweeper optimizes: ``metrics[key]`` (NaN when not finite), a value per key for several
    objectives; ``None`` without a key or metrics."""
    if not key or not metrics:  # no metrics: nothing was trained (lr_find=only)
        return None
    if not isinstance(key, str):
        return [optimized_value(metrics, k) for k in key]
    if key not in metrics:
        raise config_error("optimized_metric", key, f"not logged by this run; logged: {sorted(metrics)}")
    return metrics[key] if math.isfinite(metrics[key]) else float("nan")
