"""Reading a table (CSV, TSV, Parquet) with pyarrow, and turning its columns into standardized features.

The preprocessing is written by hand rather than with scikit-learn's ``ColumnTransformer`` because its fitted state
must be plain data (numbers, strings, lists) that a checkpoint loaded with ``weights_only=True`` can carry, so that
predictions reuse the training run's statistics and encodings; what it computes is small: train mean, std and
median per numeric column, the categories of each string column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from recipe.errors import ConfigError, config_error

SUFFIXES = (".csv", ".tsv", ".parquet")
MISSING_POLICIES = ("error", "impute")


def read_table(path: str | Path, key: str = "data.path") -> pa.Table:
    """The whole table at ``path``; a ``ConfigError`` naming ``key`` when it is missing or unreadable."""
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise config_error(key, str(path), f"must end in one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise config_error(key, str(path), "no such file")
    try:
        if suffix == ".parquet":
            return pq.read_table(path)
        parse = pacsv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",")
        return pacsv.read_csv(path, parse_options=parse, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    except (pa.ArrowException, OSError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise config_error(key, str(path), f"not a readable {suffix} file ({reason})") from None


def kind_of(column: pa.ChunkedArray) -> str | None:
    """``numeric`` (integers, floats, booleans), ``categorical`` (strings, dictionaries) or ``None`` (neither)."""
    t = column.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        return "numeric"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return "categorical"
    return None


def numbers(column: pa.ChunkedArray) -> np.ndarray:
    """A numeric column as float64, missing values (null or NaN) as NaN."""
    return column.cast(pa.float64()).to_numpy(zero_copy_only=False)


def strings(column: pa.ChunkedArray) -> list[str | None]:
    """A categorical column as strings, missing values as ``None``."""
    return column.cast(pa.string()).to_pylist()


def first_missing(column: pa.ChunkedArray) -> tuple[int, int]:
    """How many values of ``column`` are missing (null or NaN), and the row of the first, counted from 1 (0: none)."""
    missing = pc.is_null(column, nan_is_null=True).to_numpy(zero_copy_only=False)
    return int(missing.sum()), int(np.argmax(missing)) + 1 if missing.any() else 0


def refuse_missing(table: pa.Table, columns: list[str], source: str) -> None:
    """Raise a ``ConfigError`` naming the first of ``columns`` with a missing value (``data.missing=error``)."""
    for name in columns:
        count, row = first_missing(table.column(name))
        if count:
            raise config_error(
                "data.missing", "error", f"column {name!r} of {source} has {count} missing values (first in row "
                f"{row}); data.missing=impute fills them (numbers: train median plus an indicator column)",
            )  # fmt: skip


class TablePreprocessor:
    """Features from a table's columns: numeric ones standardized with train statistics, string ones one-hot.

    Missing values: ``missing="error"`` refuses them; ``"impute"`` fills a numeric column with its train median and
    adds a 0/1 indicator column (for the columns that had missing values in training), and gives a string column's
    missing values a category of their own. A category unseen in training encodes as all zeros.

    Args:
        state: the fitted state, as ``fit`` returns it and ``state`` gives it back.
    """

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    @classmethod
    def fit(
        cls, table: pa.Table, features: list[str], source: str, missing: str, standardize: bool, max_categories: int
    ) -> TablePreprocessor:
        """Fit on the training rows ``table``; ``source`` names the file in errors."""
        columns = []
        for name in features:
            column = table.column(name)
            kind = kind_of(column)
            count, _ = first_missing(column)
            if kind == "numeric":
                values = numbers(column)
                present = values[~np.isnan(values)]
                mean, std = (float(present.mean()), float(present.std())) if present.size else (0.0, 1.0)
                if not standardize:
                    mean, std = 0.0, 1.0
                median = float(np.median(present)) if present.size else 0.0
                columns.append(
                    {"name": name, "kind": kind, "mean": mean, "std": std if std > 1e-12 else 1.0, "median": median,
                     "indicator": bool(count)}
                )  # fmt: skip
            elif kind == "categorical":
                categories = sorted({v for v in strings(column) if v is not None})
                if count:
                    categories.append(None)
                if len(categories) > max_categories:
                    raise config_error(
                        "data.features", name, f"column of {source} has {len(categories)} distinct strings, more than "
                        f"data.max_categories={max_categories}: neither numeric nor encodable (drop it or raise the limit)",
                    )  # fmt: skip
                columns.append({"name": name, "kind": kind, "categories": categories})
            else:
                raise config_error(
                    "data.features", name, f"column of {source} has type {column.type}: neither numeric nor encodable "
                    "(numbers, booleans or strings); leave it out of data.features",
                )  # fmt: skip
        return cls({"columns": columns, "missing": missing})

    @property
    def width(self) -> int:
        """Number of features ``transform`` produces per row."""
        return sum(self._width(c) for c in self.state["columns"])

    @staticmethod
    def _width(column: dict[str, Any]) -> int:
        return 1 + column["indicator"] if column["kind"] == "numeric" else len(column["categories"])

    def check_columns(self, table: pa.Table, source: str) -> None:
        """Raise a ``ConfigError`` unless ``table`` has every feature column, of the kind seen in training."""
        names = [c["name"] for c in self.state["columns"]]
        absent = [n for n in names if n not in table.column_names]
        if absent:
            raise ConfigError(f"{source}: has no column {absent[0]!r} that training used; training's features: {names}")
        for column in self.state["columns"]:
            kind = kind_of(table.column(column["name"]))
            if kind != column["kind"]:
                raise ConfigError(
                    f"{source}: column {column['name']!r} is {kind or table.column(column['name']).type}, "
                    f"in training it was {column['kind']}"
                )

    def transform(self, table: pa.Table, source: str) -> np.ndarray:
        """The ``(rows, width)`` float32 features of ``table``, with the fitted statistics and categories."""
        self.check_columns(table, source)
        if self.state["missing"] == "error":
            refuse_missing(table, [c["name"] for c in self.state["columns"]], source)
        out = np.zeros((table.num_rows, self.width), dtype=np.float32)
        at = 0
        for column in self.state["columns"]:
            data = table.column(column["name"])
            if column["kind"] == "numeric":
                values = numbers(data)
                absent = np.isnan(values)
                out[:, at] = (np.where(absent, column["median"], values) - column["mean"]) / column["std"]
                if column["indicator"]:
                    out[:, at + 1] = absent
            else:
                index = {c: i for i, c in enumerate(column["categories"])}
                for i, value in enumerate(strings(data)):
                    if value in index:
                        out[i, at + index[value]] = 1.0
            at += self._width(column)
        return out
