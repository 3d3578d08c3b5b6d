"""The launchers' configs, on which ``conf/hydra/launcher/slurm.yaml`` and ``local.yaml`` build: hydra-submitit-
launcher's, pointed at the reporting launchers, with ``tasks_per_node`` allowed to be null."""

from dataclasses import dataclass
from typing import Optional

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf


@dataclass
class SlurmConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.recipe_submitit_launcher.launcher.SlurmLauncher"
    tasks_per_node: Optional[int] = None  # noqa: UP045 (OmegaConf reads typing.Optional)


@dataclass
class LocalConf(LocalQueueConf):
    _target_: str = "hydra_plugins.recipe_submitit_launcher.launcher.LocalLauncher"


ConfigStore.instance().store(group="hydra/launcher", name="recipe_slurm", node=SlurmConf, provider="recipe")
ConfigStore.instance().store(group="hydra/launcher", name="recipe_submitit_local", node=LocalConf, provider="recipe")
