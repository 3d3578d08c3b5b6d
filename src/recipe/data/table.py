"""The user's own table (``data=csv``): a CSV, TSV or Parquet file, a target column, classification or regression."""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from lightning.pytorch.utilities import rank_zero_info

from recipe.data.arrays import (
    ArrayDataModule,
    FittedPreprocessing,
    Splits,
    check_fractions,
    stratified_splits,
    with_validation,
)
from recipe.data.cache import check_cache, choose_cache
from recipe.data.labels import check_classes
from recipe.data.mapped import MappedRows, open_rows
from recipe.data.table_file import TableFile, table_bytes
from recipe.data.table_prep import (
    MISSING_POLICIES,
    CsvFormat,
    FeatureStats,
    TablePreprocessor,
    check_feature_columns,
    first_missing,
    kind_of,
    numbers,
    refuse_missing,
    refuse_stray_strings,
)
from recipe.errors import ConfigError, config_error

TASKS = ("classification", "regression")


class Part(NamedTuple):
    """A split: the file its rows come from, those rows (sorted), their prepared targets, the file's name in errors."""

    file: TableFile
    rows: np.ndarray
    y: np.ndarray
    source: str


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
        missing: ``error`` refuses missing values; ``impute`` fills them (see ``TablePreprocessor``). Missing
            values are empty cells and the tokens spreadsheets write for none (``table_prep.MISSING_TOKENS``).
        missing_values: more cells read as missing (``["unknown"]``).
        delimiter: a CSV's field separator; ``None`` detects it from the first lines (``,``, ``;``, tab, ``|``).
        decimal: a CSV's decimal point, ``.`` or ``,``; ``None`` detects it (``,`` in a file not delimited by
            commas whose numbers are written ``1,5``).
        max_categories: the most distinct strings a string column may hold to be one-hot encoded, and the most
            distinct integers a target may hold to be taken for class labels.
        val_fraction: share of the training rows held out for validation.
        test_fraction: share of ``path``'s rows held out for test when there is no ``test_path``.
        standardize: standardize numeric columns (and a regression target) with train statistics.
        cache: ``memory`` reads the files whole and holds the features as tensors; ``disk`` streams them in
            batches (statistics in one pass over the training rows, features in another) into a float32 file per
            split, memory-mapped; ``auto`` picks memory when the files take at most ``cache_limit_mb`` (a CSV's
            size on disk, a Parquet file's uncompressed size).
        cache_limit_mb: the largest table ``cache=auto`` reads into memory, in megabytes.
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
        missing_values: list[str] | None = None,
        delimiter: str | None = None,
        decimal: str | None = None,
        max_categories: int = 50,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        standardize: bool = True,
        cache: str = "auto",
        cache_limit_mb: float = 4096,
        **kwargs: Any,
    ) -> None:
        super().__init__(standardize=False, **kwargs)  # the preprocessor standardizes, so predictions can redo it
        check_fractions(val_fraction, test_fraction)
        if task is not None and task not in TASKS:
            raise config_error("data.task", task, f"one of {', '.join(TASKS)}, or null to infer it from the target")
        if missing not in MISSING_POLICIES:
            raise config_error("data.missing", missing, f"one of {', '.join(MISSING_POLICIES)}")
        check_cache(cache, cache_limit_mb)
        if isinstance(max_categories, bool) or not isinstance(max_categories, int) or max_categories < 1:
            raise config_error("data.max_categories", max_categories, "must be a positive integer")
        self.format = CsvFormat(delimiter, decimal, tuple(missing_values or ()))
        self.path, self.target, self.test_path = Path(path).expanduser(), target, test_path
        self.features = list(features) if features is not None else None
        self.id_column, self.task_setting, self.missing = id_column, task, missing
        self.max_categories, self.val_fraction, self.test_fraction = max_categories, val_fraction, test_fraction
        self.scale, self.cache, self.cache_limit_mb, self.stream = standardize, cache, cache_limit_mb, False

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

    # Training data: fitted on the training rows, then each split's features, read whole or streamed.
    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        size = table_bytes(self.path, "data.path")
        size += table_bytes(self.test_path, "data.test_path") if self.test_path else 0
        self.stream = choose_cache(self.cache, size, self.cache_limit_mb, "the table files") == "disk"
        if not self.stream:
            super().setup(stage)  # load_splits, then tensors
            return
        if self.folds:
            raise config_error("data.folds", self.folds, "needs data.cache=memory (cross-validation pools splits)")
        folder = Path(tempfile.mkdtemp(prefix="recipe-table-"))
        weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        parts = self._fit()
        width = self.input_shape[0]
        with ExitStack() as files:
            out = {s: files.enter_context(open_rows(folder / f"{s}.npy", len(p.rows), width)) for s, p in parts.items()}
            for split, x in self._features(parts):
                out[split].write(np.ascontiguousarray(x, dtype="<f4").tobytes())
        self.datasets = {s: MappedRows(folder / f"{s}.npy", torch.from_numpy(p.y)) for s, p in parts.items()}
        rank_zero_info(f"data.cache=disk: the features of every split are memory-mapped from {folder}")

    def load_splits(self) -> Splits:
        parts = self._fit()
        chunks: dict[str, list[np.ndarray]] = {split: [] for split in parts}
        for split, x in self._features(parts):
            chunks[split].append(x)
        x_train, x_val, x_test = (np.concatenate(chunks[split]) for split in ("train", "val", "test"))
        return Splits(x_train, parts["train"].y, x_val, parts["val"].y, x_test, parts["test"].y)

    def _fit(self) -> dict[str, Part]:
        """Fit the preprocessing on the training rows (``self.fitted``); each split's file, rows (in file order),
        prepared targets and name in errors."""
        train_file = TableFile(self.path, "data.path", self.stream, self.format)
        source = f"data.path={str(self.path)!r}"
        target = self._check_columns(train_file, source)
        test_file = TableFile(self.test_path, "data.test_path", self.stream, self.format) if self.test_path else None
        test_source = f"data.test_path={self.test_path!r}" if self.test_path else source
        test_target = self._check_columns(test_file, test_source) if test_file else None
        task = self.task_setting or infer_task(target, self.target, self.max_categories)
        labels = self._labels(target, task, source)
        rows = np.arange(len(target))
        strata = labels if task == "classification" else np.zeros(len(labels), dtype=np.int64)
        if test_file is None:
            split = stratified_splits(rows, strata, self.val_fraction, self.test_fraction, self.seed)
        else:
            split = with_validation(rows, strata, np.arange(len(test_target)), strata[:0], self.val_fraction, self.seed)
        train_rows, val_rows, test_rows = (np.sort(r) for r in (split.x_train, split.x_val, split.x_test))
        features = self.features if self.features is not None else self._default_features(train_file)
        stats = FeatureStats(features, source, self.max_categories, self.seed)
        for first, batch in train_file.batches(features):
            check_feature_columns(batch, features, source, first)
            if self.missing == "error":  # the whole file, so the error names the file's row
                refuse_missing(batch, features, source, first)
            stats.update(batch.take(rows_in(train_rows, first, batch.num_rows)))
        prep = stats.fit(self.missing, self.scale)
        classes = self._classes(target.take(train_rows), task, source)
        y_train = self._encode(target.take(train_rows), task, classes, source)
        mean, std = (
            (float(y_train.mean()), float(y_train.std()) or 1.0) if task == "regression" and self.scale else (0.0, 1.0)
        )
        self.fitted = {
            "task": task, "target": self.target, "id_column": self.id_column, "classes": classes,
            "features": prep.state, "columns": train_file.column_names, "target_scale": [mean, std],
        }  # fmt: skip

        def part(file: TableFile, column: pa.ChunkedArray, idx: np.ndarray, where: str) -> Part:
            y = self._encode(column.take(idx), task, classes, where)
            return Part(file, idx, (y - mean) / std if task == "regression" else y, where)

        return {
            "train": part(train_file, target, train_rows, source),
            "val": part(train_file, target, val_rows, source),
            "test": part(test_file or train_file, target if test_file is None else test_target, test_rows, test_source),
        }

    def _features(self, parts: dict[str, Part]) -> Iterator[tuple[str, np.ndarray]]:
        """``(split, prepared features)`` batch by batch, in one pass over each file for all the splits it holds."""
        prep = TablePreprocessor(self._state()["features"])
        names = [c["name"] for c in prep.state["columns"]]
        for file in dict.fromkeys(p.file for p in parts.values()):
            held = {split: p for split, p in parts.items() if p.file is file}
            for first, batch in file.batches(names):
                for split, p in held.items():
                    yield split, prep.transform(batch.take(rows_in(p.rows, first, batch.num_rows)), p.source, first)

    def _check_columns(self, file: TableFile, source: str) -> pa.ChunkedArray:
        """The target column, once the target, features and id column are found in ``file``."""
        names = file.column_names
        if self.target not in names:
            raise config_error("data.target", self.target, f"no such column in {source}; its columns: {names}")
        wanted = [c for c in [*(self.features or []), self.id_column] if c is not None]
        absent = [c for c in wanted if c not in names]
        if absent:
            raise config_error(
                "data.features" if absent[0] != self.id_column else "data.id_column", absent[0],
                f"no such column in {source}; its columns: {names}",
            )  # fmt: skip
        target = file.column(self.target)
        if not len(target):
            raise config_error(file.key, str(file.path), "has no rows (a header only)")
        refuse_stray_strings(target, "data.target", self.target, source)
        count, row = first_missing(target)
        if count:
            raise config_error(
                "data.target", self.target, f"has {count} missing values in {source} (first in row {row})"
            )
        return target

    def _default_features(self, file: TableFile) -> list[str]:
        return [c for c in file.column_names if c not in (self.target, self.id_column)]

    def _labels(self, column: pa.ChunkedArray, task: str, source: str) -> np.ndarray:
        """Class indices (classification) or values, over the whole file, for splitting."""
        if task == "regression":
            if kind_of(column) != "numeric":
                raise config_error(
                    "data.task", task, f"needs a numeric target, but {self.target!r} of {source} is {column.type}"
                )
            return numbers(column)
        classes = self._classes(column, task, source)
        labels = self._encode(column, task, classes, source)
        check_classes(labels, "data.target", self.target, classes, f" in {source}")
        return labels

    def _classes(self, column: pa.ChunkedArray, task: str, source: str) -> list[Any] | None:
        if task == "regression":
            return None
        column = plain(column)
        if pa.types.is_floating(column.type):
            if not pc.all(pc.equal(column, pc.floor(column))).as_py():
                raise config_error("data.task", task, f"target {self.target!r} of {source} holds real values")
            column = column.cast(pa.int64())
        return sorted(pc.unique(column).to_pylist())

    def _encode(self, column: pa.ChunkedArray, task: str, classes: list[Any] | None, source: str) -> np.ndarray:
        if task == "regression":
            return numbers(column).astype(np.float32)
        column = plain(column)
        index = pc.index_in(column, value_set=pa.array(classes).cast(column.type))
        if index.null_count:
            unseen = column[int(np.argmax(index.is_null().to_numpy(zero_copy_only=False)))].as_py()
            raise config_error(
                "data.target", self.target, f"label {unseen!r} in {source} was not seen in training; "
                f"training's labels: {[str(c) for c in classes]}",
            )  # fmt: skip
        return index.to_numpy(zero_copy_only=False).astype(np.int64)

    # Predictions on new rows.
    def predict_batches(self, path: str | Path) -> Iterator[tuple[list[str], torch.Tensor]]:
        """Row names and features of a new file, batch by batch (pyarrow's streaming readers: one block in memory),
        with the training run's preprocessing (never refitted). Its columns must be training's: the features, and
        optionally the target and the id column; they are checked before the first batch."""
        state = self._state()
        file, source = TableFile(path, "data.path", stream=True, fmt=self.format), f"data.path={str(path)!r}"
        prep = TablePreprocessor(state["features"])
        prep.check_columns(file.schema.empty_table(), source)
        extra = [c for c in file.column_names if c not in state["columns"]]
        if extra:
            known = f"training's columns: {state['columns']}"
            raise ConfigError(f"{source}: has column {extra[0]!r} that training's file did not; {known}")
        ids = state["id_column"] if state["id_column"] in file.column_names else None
        features = [c["name"] for c in state["features"]["columns"]]
        for first, table in file.batches(list(dict.fromkeys([*features, *([ids] if ids else [])]))):
            x = prep.transform(table, source, first)
            names = table.column(ids).to_pylist() if ids else range(first, first + table.num_rows)
            yield [str(n) for n in names], torch.from_numpy(x)


def plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary-encoded column as its values, any other as it is."""
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


def rows_in(rows: np.ndarray, first: int, count: int) -> np.ndarray:
    """The positions, within a batch of ``count`` rows starting at row ``first``, of the sorted ``rows`` it holds."""
    lo, hi = np.searchsorted(rows, [first, first + count])
    return rows[lo:hi] - first


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
