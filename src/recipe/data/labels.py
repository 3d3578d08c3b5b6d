"""Checks of class labels that every classification data module shares: enough classes, enough samples per class,
class indices that are 0..C-1. Each failure is one line naming the file or column, instead of a silent head of the
wrong size or a scikit-learn traceback from stratified splitting."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recipe.errors import config_error

MIN_SAMPLES = 2  # per class: stratified splitting keeps a class in training only when it has two samples or more


def check_classes(
    labels: np.ndarray,
    key: str,
    value: Any,
    names: Sequence[Any] | None = None,
    where: str = "",
    min_samples: int = MIN_SAMPLES,
) -> None:
    """Raise a ``ConfigError`` naming ``key=value`` unless the class indices ``labels`` hold two classes or more,
    each with ``min_samples`` samples or more (a class seen once lands in a single split: never trained on, or never
    evaluated). ``names[i]`` names class ``i`` in the message; ``where`` says which file, e.g. `` in data.path=...``;
    ``min_samples=1`` where no split is carved from these labels."""
    classes, counts = np.unique(labels, return_counts=True)

    def name(c: int) -> str:
        return repr(names[c]) if names is not None else str(int(c))

    if len(classes) < 2:
        single = f"has a single class ({name(classes[0])}){where}; classification needs 2 or more"
        raise config_error(key, value, single)
    few = classes[counts < min_samples]
    if few.size:
        raise config_error(
            key, value, f"class {name(few[0])} has {int(counts[counts < min_samples][0])} sample{where}; each class "
            f"needs {min_samples} or more, so that splitting keeps it in training and in evaluation",
        )  # fmt: skip


def check_class_indices(labels: np.ndarray, key: str, num_classes: int | None) -> None:
    """Labels given as numbers (a ``.npz``) are the net's output indices, so without ``num_classes`` they must be
    0..C-1 with every class present: ``{0, 1000, 2000}`` would otherwise build a 2001-class head. They are rejected
    rather than renumbered because a ``.npz`` carries no class names, so predictions could not say which renumbered
    class is which."""
    present = np.unique(labels)
    if num_classes is None and len(present) != int(present.max()) + 1:
        shown = ", ".join(map(str, present[:5])) + (", ..." if len(present) > 5 else "")
        raise config_error(
            key, f"{{{shown}}}", f"labels must be 0..C-1 with every class present (here 0..{len(present) - 1}): "
            "renumber them (np.unique(y, return_inverse=True)), or set data.num_classes when some classes are absent",
        )  # fmt: skip
