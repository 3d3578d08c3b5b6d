"""The user's own table (``data=csv``): a CSV, TSV or Parquet file, a target column, classification or regression."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from lightning.pytorch.utilities import rank_zero_info

from recipe.data.arrays import FittedPreprocessing, ArrayDataModule, Splits, check_fractions, stratified_splits, with_validation
from recipe.data.labels import check_classes
from recipe.data.table_prep import (
    MISSING_POLICIES,
    TablePreprocessor,
    first_missing,
    kind_of,
    numbers,
    read_table,
    refuse_missing,
)
from recipe.errors import ConfigError, config_error

TASKS = ("classification", "regression")


class TableDataModule(FittedPreprocessing, ArrayDataModule):
    """Rows of a table as feature vectors; the target column as class indices (classification) or a standardized
    value (regression). Test rows from ``test_path`` when given, otherwise carved by ``seed``; validation carved from
    the training rows; both stratified by class for classification. Preprocessing is fitted on the training rows
    only (see ``TablePreprocessor``) and is the data module's ``state_dict``, so checkpoints carry it.

    Args:
        path: the ``.csv``, ``.tsv`` or ``.parquet`` file.
        target: the label column.
        features: the input columns; ``None`` takes every column but the target and ``id_column``.
        test_path: a file of test rows with the same columns; ``None`` carves test rows out of ``path``.
        id_column: a column naming each row in predictions (never a feature); ``None`` numbers the rows.
        task: ``classification`` or ``regression``; ``None`` infers it from the target (see ``infer_task``):
            booleans, strings and integers classify, real numbers regress.
        missing: ``error`` refuses missing values; ``impute`` fills them (see ``TablePreprocessor``).
        max_categories: the most distinct strings a string column may hold to be one-hot encoded, and the most
            distinct integers a target may hold to be taken for class labels.
        val_fraction: share of the training rows held out for validation.
        test_fraction: share of ``path``'s rows held out for test when there is no ``test_path``.
        standardize: standardize numeric columns (and a regression target) with train statistics.
        **kwargs: see ``ArrayDataModule``.
    """

    def __init__(
        self,
        path: str,
        target: str,
        features: list[str] | None = None,
        test_path: str | None = None,
        id_column: str | None = None,
        task: str | None = None,
        missing: str = "error",
        max_categories: int = 50,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        standardize: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(standardize=False, **kwargs)  # the preprocessor standardizes, so predictions can redo it
        check_fractions(val_fraction, test_fraction)
        if task is not None and task not in TASKS:
            raise config_error("data.task", task, f"one of {', '.join(TASKS)}, or null to infer it from the target")
        if missing not in MISSING_POLICIES:
            raise config_error("data.missing", missing, f"one of {', '.join(MISSING_POLICIES)}")
        if isinstance(max_categories, bool) or not isinstance(max_categories, int) or max_categories < 1:
            raise config_error("data.max_categories", max_categories, "must be a positive integer")
        self.path, self.target, self.test_path = Path(path).expanduser(), target, test_path
        self.features = list(features) if features is not None else None
        self.id_column, self.task_setting, self.missing = id_column, task, missing
        self.max_categories, self.val_fraction, self.test_fraction = max_categories, val_fraction, test_fraction
        self.scale = standardize

    # What the model, the module and predictions read; all from the fitted state.
    @property
    def task(self) -> str:
        return self._state()["task"]

    @property
    def class_names(self) -> list[str] | None:
        """Class names in the order of the net's outputs (the target's values as text); ``None`` for regression."""
        classes = self._state()["classes"]
        return None if classes is None else [str(c) for c in classes]

    @property
    def num_classes(self) -> int:
        """Outputs of the net: the number of classes, or 1 (the value) for regression."""
        classes = self._state()["classes"]
        return 1 if classes is None else len(classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (TablePreprocessor(self._state()["features"]).width,)

    @property
    def target_scale(self) -> tuple[float, float]:
        """``(mean, std)`` that map the standardized regression target back to its units (``(0, 1)`` otherwise)."""
        return tuple(self._state()["target_scale"])




    # Training data.
    def load_splits(self) -> Splits:
        table = read_table(self.path)
        source = f"data.path={str(self.path)!r}"
        self._check_columns(table, source)
        test = read_table(self.test_path, "data.test_path") if self.test_path else None
        if test is not None:
            self._check_columns(test, f"data.test_path={self.test_path!r}")
        task = self.task_setting or infer_task(table.column(self.target), self.target, self.max_categories)
        labels = self._labels(table.column(self.target), task, source)
        rows = np.arange(table.num_rows)
        strata = labels if task == "classification" else np.zeros(len(labels), dtype=np.int64)
        if test is None:
            split = stratified_splits(rows, strata, self.val_fraction, self.test_fraction, self.seed)
            test, test_rows = table, split.x_test
        else:
            split = with_validation(rows, strata, rows[:0], strata[:0], self.val_fraction, self.seed)
            test_rows = np.arange(test.num_rows)
        features = self.features if self.features is not None else self._default_features(table)
        if self.missing == "error":  # on whole files, so the error names the file's row
            refuse_missing(table, features, source)
            if self.test_path:
                refuse_missing(test, features, f"data.test_path={self.test_path!r}")
        train = table.take(split.x_train)
        prep = TablePreprocessor.fit(train, features, source, self.missing, self.scale, self.max_categories)
        classes = self._classes(train.column(self.target), task, source)
        y_train = self._encode(train.column(self.target), task, classes, source)
        mean, std = (float(y_train.mean()), float(y_train.std()) or 1.0) if task == "regression" and self.scale else (0.0, 1.0)
        self.fitted = {
            "task": task, "target": self.target, "id_column": self.id_column, "classes": classes,
            "features": prep.state, "columns": table.column_names, "target_scale": [mean, std],
        }  # fmt: skip
        test_source = f"data.test_path={self.test_path!r}" if self.test_path else source

        def part(t: pa.Table, idx: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
            t = t.take(idx)
            y = self._encode(t.column(self.target), task, classes, where)
            return prep.transform(t, where), (y - mean) / std if task == "regression" else y

        return Splits(
            *part(table, split.x_train, source), *part(table, split.x_val, source), *part(test, test_rows, test_source)
        )

    def _check_columns(self, table: pa.Table, source: str) -> None:
        if self.target not in table.column_names:
            raise config_error("data.target", self.target, f"no such column in {source}; its columns: {table.column_names}")
        wanted = [c for c in [*(self.features or []), self.id_column] if c is not None]
        absent = [c for c in wanted if c not in table.column_names]
        if absent:
            raise config_error(
                "data.features" if absent[0] != self.id_column else "data.id_column", absent[0],
                f"no such column in {source}; its columns: {table.column_names}",
            )  # fmt: skip
        count, row = first_missing(table.column(self.target))
        if count:
            raise config_error("data.target", self.target, f"has {count} missing values in {source} (first in row {row})")

    def _default_features(self, table: pa.Table) -> list[str]:
        return [c for c in table.column_names if c not in (self.target, self.id_column)]

    def _labels(self, column: pa.ChunkedArray, task: str, source: str) -> np.ndarray:
        """Class indices (classification) or values, over the whole file, for splitting."""
        if task == "regression":
            if kind_of(column) != "numeric":
                raise config_error("data.task", task, f"needs a numeric target, but {self.target!r} of {source} is {column.type}")
            return numbers(column)
        classes = self._classes(column, task, source)
        labels = self._encode(column, task, classes, source)
        check_classes(labels, "data.target", self.target, classes, f" in {source}")
        return labels

    def _classes(self, column: pa.ChunkedArray, task: str, source: str) -> list[Any] | None:
        if task == "regression":
            return None
        values = column.to_pylist()
        if pa.types.is_floating(column.type):
            if not all(float(v).is_integer() for v in values):
                raise config_error("data.task", task, f"target {self.target!r} of {source} holds real values: regression")
            values = [int(v) for v in values]
        return sorted(set(values))

    def _encode(self, column: pa.ChunkedArray, task: str, classes: list[Any] | None, source: str) -> np.ndarray:
        if task == "regression":
            return numbers(column).astype(np.float32)
        index = {c: i for i, c in enumerate(classes)}
        values = column.to_pylist()
        if pa.types.is_floating(column.type):
            values = [int(v) if float(v).is_integer() else v for v in values]
        unseen = next((v for v in values if v not in index), None)
        if unseen is not None:
            raise config_error(
                "data.target", self.target, f"label {unseen!r} in {source} was not seen in training; "
                f"training's labels: {[str(c) for c in classes]}",
            )  # fmt: skip
        return np.array([index[v] for v in values], dtype=np.int64)

    # Predictions on new rows.
    def predict_inputs(self, path: str | Path) -> tuple[list[str], torch.Tensor]:
        """Row names and features of a new file, with the training run's preprocessing (never refitted).

        Its columns must be training's: the features, and optionally the target and the id column."""
        state = self._state()
        table = read_table(path)
        source = f"data.path={str(path)!r}"
        TablePreprocessor(state["features"]).check_columns(table, source)
        extra = [c for c in table.column_names if c not in state["columns"]]
        if extra:
            raise ConfigError(f"{source}: has column {extra[0]!r} that training's file did not; training's columns: {state['columns']}")
        x = TablePreprocessor(state["features"]).transform(table, source)
        ids = state["id_column"]
        names = [str(v) for v in table.column(ids).to_pylist()] if ids in table.column_names else list(map(str, range(table.num_rows)))
        return names, torch.from_numpy(x)


def infer_task(column: pa.ChunkedArray, name: str, max_categories: int) -> str:
    """``classification`` for boolean, string or integer targets, ``regression`` for real numbers and for integers
    with more than ``max_categories`` distinct values (counts and measurements, not labels)."""
    kind = kind_of(column)
    if kind is None:
        raise config_error("data.target", name, f"has type {column.type}: neither numbers nor labels")
    distinct = len(pc.unique(column))
    if pa.types.is_floating(column.type):
        task, why = "regression", f"real numbers ({column.type})"
    elif pa.types.is_integer(column.type) and distinct > max_categories:
        task, why = "regression", f"integers with {distinct} distinct values > data.max_categories={max_categories}"
    else:
        task, why = "classification", f"{column.type} with {distinct} distinct values"
    rank_zero_info(f"data.task=null: target {name!r} holds {why}, so the task is {task} (set data.task to choose)")
    return task
