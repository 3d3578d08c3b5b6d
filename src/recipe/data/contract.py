"""What the engine reads of a data module: the one place that states it, and the one check of it.

Any ``LightningDataModule`` trains if it also gives the shape of one example and its number of classes (the net is
built from them, never typed twice). The other attributes are optional, each with the value the engine assumes
when a data module has none; ``predict.py`` needs the ``Predictable`` ones as well.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from recipe.errors import config_error
from recipe.tasks.registry import DEFAULT as DEFAULT_TASK

# optional attributes and what a data module without them means
OPTIONAL: dict[str, Any] = {
    "task": DEFAULT_TASK,  # or "regression" (float targets), an option of conf/task/: the run's when task is null
    "batch_size": None,  # the global batch: LR scaling for the batch size (optimizer.lr_scaling) needs it
    "per_device_batch_size": None,  # BatchNormCheck warns below 8 samples a device
    "target_scale": None,  # (mean, std) of standardized regression targets: metrics in the target's units
}


@runtime_checkable
class DataModule(Protocol):
    """A data module the engine can train on (besides the dataloaders of a ``LightningDataModule``).

    Attributes:
        input_shape: the shape of one example, without the batch dimension: the net is built for it.
        num_classes: the number of classes; for regression, the number of outputs (1).
    """

    input_shape: Sequence[int]
    num_classes: int


@runtime_checkable
class Predictable(Protocol):
    """A data module that ``src/predict.py`` can use: it keeps the run's preprocessing in its checkpoint state."""

    class_names: Sequence[str] | None

    def predict_batches(self, path: str) -> Iterator[tuple[list[str], Any]]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def check_data_module(datamodule: object, target: str) -> None:
    """One line naming the first attribute of ``DataModule`` that ``datamodule`` (built from ``target``) lacks."""
    for name in DataModule.__annotations__:
        if not hasattr(datamodule, name):
            raise config_error(
                "data._target_", target, f"has no {name}: a data module gives {', '.join(DataModule.__annotations__)}"
            )


def optional(datamodule: object, name: str) -> Any:
    """The optional attribute ``name`` of ``datamodule``, or what a data module without it means."""
    return getattr(datamodule, name, OPTIONAL[name])
