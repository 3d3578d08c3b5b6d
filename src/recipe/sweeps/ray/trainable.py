"""A Tune trial as the Hydra job the basic launcher would run: ``src/train.py``'s task on the trial's composed config,
in its own sweep subfolder (``.hydra/``, ``train.log``, TensorBoard events, checkpoints), in a Ray worker.

What the worker needs of the driver travels in ``HydraJob``, pickled by Ray as hydra-submitit-launcher pickles its
launcher: Hydra's context (the config loader), the task function, the sweep's config and Hydra's singletons.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from recipe.sweeps.space import SearchSpace

TRIAL_PREFIX = "trial_"
REPORT_CALLBACK = "++callbacks.tune_report._target_=recipe.sweeps.ray.callback.TuneReport"


@dataclass
class HydraJob:
    """What a worker needs to run one trial.

    Args:
        hydra_context: Hydra's context in the driver (its config loader composes the trial's config).
        task_function: the entry point's task (``src/train.py``'s ``main``).
        config: the sweep's config.
        singletons: ``hydra.core.singleton.Singleton.get_state()`` of the driver.
        space: the search space, which turns a Tune config into overrides.
        metric: the optimized metric, reported to Tune after each validation.
        threads: torch's CPU threads in the trial: the CPUs it asked for.
        mutated: the keys PBT or PB2 may change during training.
    """

    hydra_context: HydraContext
    task_function: TaskFunction
    config: DictConfig
    singletons: Any
    space: SearchSpace
    metric: str
    threads: int
    mutated: list[str] = field(default_factory=list)

    def overrides(self, values: Mapping[str, Any]) -> list[str]:
        """The trial's overrides: the search's, its torch threads, and the callback that reports to Tune."""
        return [*self.space.overrides(values), f"threads={self.threads}", REPORT_CALLBACK]


def trial_number(name: str) -> int:
    """The number in a trial's name (``trial_<n>``, given by ``trial_name``): its ``hydra.job.num``."""
    return int(name.removeprefix(TRIAL_PREFIX))


def run_trial(config: dict[str, Any], job: HydraJob) -> None:
    """Tune's function trainable: run the trial's Hydra job, restored from Tune's checkpoint when there is one
    (PBT's exploit, a retry after a failure, a resumed search); raise the job's error for Tune to record."""
    from hydra.core.plugins import Plugins
    from hydra.core.singleton import Singleton
    from ray import tune

    from recipe.cli.config import set_project_root
    from recipe.sweeps.ray.space import trial_values
    from recipe.sweeps.ray.trial import TuneTrial, tune_trial

    set_project_root()
    Singleton.set_state(job.singletons)
    launcher = Plugins.instance().instantiate_launcher(
        hydra_context=job.hydra_context, task_function=job.task_function, config=job.config
    )
    values = trial_values(config)
    number = trial_number(tune.get_context().get_trial_name())
    if finished(tune.get_checkpoint(), tune.get_context().get_trial_name()):  # ended before a killed search knew
        return
    with restored(tune.get_checkpoint(), values) as restore, tune_trial(TuneTrial(job.metric, job.mutated)):
        [ret] = launcher.launch([[*job.overrides(values), *restore]], initial_job_idx=number)
    ret.return_value  # noqa: B018  re-raises the job's error: Tune records the trial as failed (and retries it)


def finished(checkpoint: Any, trial: str) -> bool:
    """Whether ``checkpoint`` is ``trial``'s own (not a PBT donor's) and its run has ended since (its ``job.json``
    says completed): a search killed between the two restarts it from there."""
    if checkpoint is None:
        return False
    import json

    from recipe.sweeps.ray.callback import SAVED_BY_FILE
    from recipe.sweeps.runs import JOB_FILE

    with checkpoint.as_directory() as folder:
        saved_by = json.loads((Path(folder) / SAVED_BY_FILE).read_text())
    job = Path(saved_by["run_folder"]) / JOB_FILE
    own = saved_by["trial"] == trial
    return own and job.is_file() and json.loads(job.read_text()).get("status") == "completed"


@contextmanager
def restored(checkpoint: Any, values: Mapping[str, Any]) -> Iterator[list[str]]:
    """The ``ckpt_path=`` override that restores Tune's ``checkpoint`` (none without one). The run config stored in
    it takes the trial's values, so that a PBT member restored from a donor with mutated values resumes the
    donor's run with them (``recipe.runtime.resume_path.continued_run`` refuses a changed optimizer otherwise)."""
    if checkpoint is None:
        yield []
        return
    from omegaconf import OmegaConf

    from recipe.runtime.checkpoint_io import CHECKPOINT_KEY, atomic_save, load_checkpoint
    from recipe.sweeps.ray.callback import CHECKPOINT_FILE

    with checkpoint.as_directory() as folder, tempfile.TemporaryDirectory(prefix="tune-restore-") as copy:
        state = load_checkpoint(Path(folder) / CHECKPOINT_FILE)
        stored = OmegaConf.create(state[CHECKPOINT_KEY])
        for key, value in values.items():
            if OmegaConf.select(stored, key, default=None) is not None and not isinstance(value, str):
                OmegaConf.update(stored, key, value, merge=False)
        state[CHECKPOINT_KEY] = OmegaConf.to_container(stored)
        path = Path(copy) / CHECKPOINT_FILE
        atomic_save(state, path)
        yield [f"ckpt_path={path}"]
