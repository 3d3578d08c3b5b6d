"""Reading a table (CSV, TSV, Parquet) with pyarrow, and turning its columns into standardized features.

The preprocessing is written by hand rather than with scikit-learn's ``ColumnTransformer`` because its fitted state
must be plain data (numbers, strings, lists) that a checkpoint loaded with ``weights_only=True`` can carry, so that
predictions reuse the training run's statistics and encodings; what it computes is small: train mean, std and
median per numeric column, the categories of each string column, accumulated batch by batch (``FeatureStats``) so
that a table streamed from disk is fitted as one read whole.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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
# Cells read as missing in every column: pyarrow's own list (empty, NA, N/A, n/a, NaN, null, #N/A, ...) and what
# spreadsheets and survey exports also write for "no value".
MISSING_TOKENS = (*pacsv.ConvertOptions().null_values, "?", "-", "--", ".", "na", "N/a", "Null", "None", "none")
DELIMITERS = (",", ";", "\t", "|")
SNIFF_BYTES = 1 << 16  # the first lines a CSV's delimiter and decimal point are detected from
STRAY_SHARE = 0.1  # a string column whose present cells are numbers but for at most this share: numbers, mistyped
NUMBER = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"


@dataclass(frozen=True)
class CsvFormat:
    """How a CSV is written: ``None`` detects ``delimiter`` and ``decimal`` from the file's first lines.

    Args:
        delimiter: the field separator (``,``, ``;``, a tab, ``|`` ...).
        decimal: the decimal point of its numbers, ``.`` or ``,``.
        missing_values: cells read as missing besides ``MISSING_TOKENS``.
    """

    delimiter: str | None = None
    decimal: str | None = None
    missing_values: Sequence[str] = ()

    def __post_init__(self) -> None:
        if self.delimiter is not None and (not isinstance(self.delimiter, str) or len(self.delimiter) != 1):
            raise config_error("data.delimiter", self.delimiter, "one character, e.g. ';', or null to detect it")
        if self.decimal not in (None, ".", ","):
            raise config_error("data.decimal", self.decimal, "'.' or ',', or null to detect it")

    def detect(self, path: Path) -> tuple[str, str]:
        """The delimiter and decimal point of the CSV at ``path``: as set, else read off its first lines (the
        delimiter that splits every line into the same number of fields, the most fields winning; a decimal comma
        when the delimiter is not a comma and numbers are written ``1,5``)."""
        with path.open(encoding="utf-8", errors="replace", newline="") as file:
            text = file.read(SNIFF_BYTES)
        lines = text.splitlines()[:-1] if len(text) == SNIFF_BYTES else text.splitlines()  # the last may be cut
        lines = [line for line in lines if line.strip()][:100]
        delimiter = self.delimiter or _delimiter(lines, "\t" if path.suffix.lower() == ".tsv" else ",")
        if self.decimal is not None:
            return delimiter, self.decimal
        cells = [cell.strip() for row in csv.reader(lines[1:], delimiter=delimiter) for cell in row]
        commas = delimiter != "," and any(re.fullmatch(r"[+-]?\d*,\d+", c) for c in cells)
        return delimiter, "," if commas else "."


DETECT = CsvFormat()  # every setting detected from the file


def _delimiter(lines: list[str], default: str) -> str:
    """The delimiter that splits every line in ``lines`` into the same number (> 1) of fields, the most winning."""
    best, most = default, 1
    for delimiter in DELIMITERS:
        counts = {len(row) for row in csv.reader(lines, delimiter=delimiter)}
        if len(counts) == 1 and (n := counts.pop()) > most:
            best, most = delimiter, n
    return best


def check_suffix(path: Path, key: str) -> None:
    """Raise a ``ConfigError`` naming ``key`` unless ``path`` is an existing file with a known suffix."""
    if path.is_dir():
        raise config_error(key, str(path), f"a folder; give a table file ({', '.join(SUFFIXES)})")
    if path.suffix.lower() not in SUFFIXES:
        raise config_error(key, str(path), f"must end in one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise config_error(key, str(path), "no such file")


@contextmanager
def unreadable(key: str, path: Path, fmt: CsvFormat | None = None) -> Iterator[None]:
    """Turn pyarrow's reading errors into a ``ConfigError`` naming ``key``, the file and the first line of why; for
    a CSV, the delimiter and decimal point it was read with and the keys that set them."""
    try:
        yield
    except (pa.ArrowException, OSError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = ""
        if fmt is not None and "CSV parse error" in reason:
            delimiter, decimal = fmt.detect(path)
            hint = f"; read with data.delimiter={delimiter!r} and data.decimal={decimal!r}: set them if they are not"
        elif "CSV conversion error" in reason:  # a later block than the one the column's type was inferred from
            hint = "; fix the cell, or list its value in data.missing_values to read it as missing"
        raise config_error(key, str(path), f"not a readable {path.suffix.lower()} file ({reason}){hint}") from None


def csv_options(
    path: Path, fmt: CsvFormat, columns: list[str] | None = None
) -> tuple[pacsv.ParseOptions, pacsv.ConvertOptions]:
    """How a ``.csv`` or ``.tsv`` file is parsed: its delimiter and decimal point, the cells read as missing,
    optionally only some columns."""
    delimiter, decimal = fmt.detect(path)
    missing = list(dict.fromkeys([*MISSING_TOKENS, *fmt.missing_values]))
    convert = pacsv.ConvertOptions(
        strings_can_be_null=True, null_values=missing, decimal_point=decimal, include_columns=columns
    )
    return pacsv.ParseOptions(delimiter=delimiter), convert


def read_table(path: str | Path, key: str = "data.path", fmt: CsvFormat = DETECT) -> pa.Table:
    """The whole table at ``path``; a ``ConfigError`` naming ``key`` when it is missing or unreadable."""
    path = Path(path).expanduser()
    check_suffix(path, key)
    with unreadable(key, path, fmt):
        if path.suffix.lower() == ".parquet":
            return pq.read_table(path)
        parse, convert = csv_options(path, fmt)
        return pacsv.read_csv(path, parse_options=parse, convert_options=convert)


def check_header(names: list[str], key: str, path: Path) -> None:
    """Raise a ``ConfigError`` naming ``key`` when a column name appears twice in the file's header."""
    twice = [name for name in dict.fromkeys(names) if names.count(name) > 1]
    if twice:
        raise config_error(
            key, str(path), f"column {twice[0]!r} appears {names.count(twice[0])} times in its header; "
            "column names must be unique",
        )  # fmt: skip


def stray_strings(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]] | None:
    """The rows (from 0) and distinct values of the cells that are not numbers in a string column whose other
    present cells are (at most ``STRAY_SHARE`` of them not); ``None`` for any other column."""
    if kind_of(column) != "categorical":
        return None
    text = plain_strings(column)
    numeric = pc.fill_null(pc.match_substring_regex(text, NUMBER), True).to_numpy(zero_copy_only=False)
    present = len(text) - text.null_count
    rows = np.flatnonzero(~numeric)
    if not present or not rows.size or rows.size > STRAY_SHARE * present:
        return None
    return rows, list(dict.fromkeys(text.take(pa.array(rows[:1000])).to_pylist()))


def refuse_stray_strings(column: pa.ChunkedArray, key: str, name: str, source: str, first_row: int = 0) -> None:
    """Raise a ``ConfigError`` naming ``key``, the rows and the strings of a column that holds numbers but for a few
    stray strings (``stray_strings``): neither numeric as it is, nor categories to encode."""
    found = stray_strings(column)
    if found is None:
        return
    rows, values = found
    where = ", ".join(str(first_row + r + 1) for r in rows[:5]) + (", ..." if rows.size > 5 else "")
    shown = ", ".join(repr(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
    raise config_error(
        key, name, f"column of {source} holds numbers but for {rows.size} cell(s): {shown} in row(s) {where}; fix "
        "them, or list them in data.missing_values to read them as missing",
    )  # fmt: skip


def check_feature_columns(table: pa.Table, columns: list[str], source: str, first_row: int = 0) -> None:
    """Raise a ``ConfigError`` naming the first of ``columns`` that cannot be a feature: no values at all, a type
    neither numeric nor encodable, or numbers with stray strings; ``table`` starts at row ``first_row``."""
    for name in columns:
        column = table.column(name)
        if pa.types.is_null(column.type):
            raise config_error(
                "data.features", name, f"column of {source} holds no values (every cell empty or a missing value); "
                "leave it out of data.features",
            )  # fmt: skip
        if kind_of(column) is None:
            raise config_error(
                "data.features", name, f"column of {source} has type {column.type}: neither numeric nor "
                "encodable (numbers, booleans or strings); leave it out of data.features",
            )  # fmt: skip
        refuse_stray_strings(column, "data.features", name, source, first_row)


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


def plain_strings(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A categorical column (strings or a dictionary of them) as plain strings."""
    return column.cast(pa.string())


def strings(column: pa.ChunkedArray) -> list[str | None]:
    """A categorical column as strings, missing values as ``None``."""
    return column.cast(pa.string()).to_pylist()


def first_missing(column: pa.ChunkedArray) -> tuple[int, int]:
    """How many values of ``column`` are missing (null or NaN), and the row of the first, counted from 1 (0: none)."""
    missing = pc.is_null(column, nan_is_null=True).to_numpy(zero_copy_only=False)
    return int(missing.sum()), int(np.argmax(missing)) + 1 if missing.any() else 0


def refuse_missing(table: pa.Table, columns: list[str], source: str, first_row: int = 0) -> None:
    """Raise a ``ConfigError`` naming the first of ``columns`` with a missing value (``data.missing=error``);
    ``table`` starts at row ``first_row`` of the file (a streamed batch)."""
    for name in columns:
        count, row = first_missing(table.column(name))
        if count:
            raise config_error(
                "data.missing", "error", f"column {name!r} of {source} has {count} missing values (first in row "
                f"{first_row + row}); data.missing=impute fills them (numbers: train median plus an indicator column)",
            )  # fmt: skip


MEDIAN_SAMPLE = 10_000  # training values per column the imputation median is taken from (all when fewer)


class FeatureStats:
    """Train statistics of the feature columns, accumulated over batches of training rows (the whole split at once,
    or streamed): per numeric column the count, mean and sum of squared deviations (merged as in Chan et al.'s
    parallel variance) and a uniform sample of values for the median; per string column its categories.

    Args:
        features: the feature columns.
        source: names the file in errors.
        max_categories: the most distinct strings a column may hold.
        seed: seed of the median's sample.
    """

    def __init__(self, features: list[str], source: str, max_categories: int, seed: int) -> None:
        self.features, self.source, self.max_categories = features, source, max_categories
        self.rng = np.random.default_rng(seed)
        self.kinds: dict[str, str] = {}
        self.missing = dict.fromkeys(features, 0)
        self.moments = {name: (0, 0.0, 0.0) for name in features}  # count, mean, sum of squared deviations
        self.sample: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # random keys and values, the smallest keys kept
        self.categories: dict[str, set[str]] = {name: set() for name in features}

    def update(self, table: pa.Table) -> None:
        """Add the training rows ``table``."""
        for name in self.features:
            column = table.column(name)
            kind = self.kinds.setdefault(name, kind_of(column))  # checked by check_feature_columns
            self.missing[name] += first_missing(column)[0]
            if kind == "numeric":
                self._add_numbers(name, numbers(column))
            else:
                found = pc.unique(column.cast(pa.string())).to_pylist()
                self.categories[name].update(v for v in found if v is not None)
                if len(self.categories[name]) + bool(self.missing[name]) > self.max_categories:
                    raise config_error(
                        "data.features", name, f"column of {self.source} has more than data.max_categories="
                        f"{self.max_categories} distinct strings: neither numeric nor encodable (drop it or raise it)",
                    )  # fmt: skip

    def _add_numbers(self, name: str, values: np.ndarray) -> None:
        present = values[~np.isnan(values)]
        if not present.size:
            return
        n, mean, m2 = self.moments[name]
        b_n, b_mean = present.size, float(present.mean())
        b_m2 = float(((present - b_mean) ** 2).sum())
        total, delta = n + b_n, b_mean - mean
        self.moments[name] = (total, mean + delta * b_n / total, m2 + b_m2 + delta**2 * n * b_n / total)
        keys, kept = self.sample.get(name, (np.empty(0), np.empty(0)))
        keys, kept = np.concatenate([keys, self.rng.random(b_n)]), np.concatenate([kept, present])
        if keys.size > MEDIAN_SAMPLE:
            smallest = np.argpartition(keys, MEDIAN_SAMPLE)[:MEDIAN_SAMPLE]
            keys, kept = keys[smallest], kept[smallest]
        self.sample[name] = (keys, kept)

    def fit(self, missing: str, standardize: bool) -> TablePreprocessor:
        """The preprocessor of these statistics (``missing`` and ``standardize`` as ``TablePreprocessor`` takes)."""
        columns = []
        for name in self.features:
            if self.kinds[name] == "categorical":
                categories = sorted(self.categories[name]) + ([None] if self.missing[name] else [])
                columns.append({"name": name, "kind": "categorical", "categories": categories})
                continue
            n, mean, m2 = self.moments[name]
            std = (m2 / n) ** 0.5 if n else 1.0
            if not standardize:
                mean, std = 0.0, 1.0
            median = float(np.median(self.sample[name][1])) if n else 0.0
            columns.append(
                {"name": name, "kind": "numeric", "mean": mean, "std": std if std > 1e-12 else 1.0, "median": median,
                 "indicator": bool(self.missing[name])}
            )  # fmt: skip
        return TablePreprocessor({"columns": columns, "missing": missing})


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

    @property
    def width(self) -> int:
        """Number of features ``transform`` produces per row."""
        return sum(self._width(c) for c in self.state["columns"])

    @staticmethod
    def _width(column: dict[str, Any]) -> int:
        return 1 + column["indicator"] if column["kind"] == "numeric" else len(column["categories"])

    def check_columns(self, table: pa.Table, source: str, first_row: int = 0) -> None:
        """Raise a ``ConfigError`` unless ``table`` (from row ``first_row`` of ``source``) has every feature column,
        of the kind seen in training."""
        names = [c["name"] for c in self.state["columns"]]
        absent = [n for n in names if n not in table.column_names]
        if absent:
            raise ConfigError(f"{source}: has no column {absent[0]!r} that training used; training's features: {names}")
        for column in self.state["columns"]:
            kind = kind_of(table.column(column["name"]))
            if column["kind"] == "numeric":
                refuse_stray_strings(table.column(column["name"]), "data.features", column["name"], source, first_row)
            if kind != column["kind"] and table.num_rows:  # an empty table's types are only its header's guess
                raise ConfigError(
                    f"{source}: column {column['name']!r} is {kind or table.column(column['name']).type}, "
                    f"in training it was {column['kind']}"
                )

    def transform(self, table: pa.Table, source: str, first_row: int = 0) -> np.ndarray:
        """The ``(rows, width)`` float32 features of ``table`` (from row ``first_row`` of ``source``), with the
        fitted statistics and categories."""
        self.check_columns(table, source, first_row)
        if self.state["missing"] == "error":
            refuse_missing(table, [c["name"] for c in self.state["columns"]], source, first_row)
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
