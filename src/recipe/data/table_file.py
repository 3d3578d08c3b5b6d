"""A table file read whole into memory, or streamed from disk in batches of rows, behind one interface.

Streaming uses pyarrow's own readers (``pyarrow.csv.open_csv``, ``ParquetFile.iter_batches``), which hold one block
or one batch at a time; column types are inferred from the first block, as ``read_csv`` does for a whole file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from recipe.data.table_prep import DETECT, CsvFormat, check_header, check_suffix, csv_options, read_table, unreadable

PARQUET_BATCH = 65_536  # rows per streamed Parquet batch
CSV_BLOCK = 1 << 20  # bytes per streamed CSV block: pyarrow's default, as read_csv infers types from its first one


class TableFile:
    """The table at ``path``; ``stream=False`` reads it once and keeps it, ``stream=True`` reads the columns
    asked for, batch by batch, every time they are asked for.

    Args:
        path: a ``.csv``, ``.tsv`` or ``.parquet`` file.
        key: the config key that names it, for errors.
        stream: read in batches instead of whole.
        fmt: how a CSV is written (its delimiter, decimal point, missing values).
    """

    def __init__(self, path: str | Path, key: str, stream: bool, fmt: CsvFormat = DETECT) -> None:
        self.path, self.key, self.fmt = Path(path).expanduser(), key, fmt
        self.table = None if stream else read_table(self.path, key, fmt)
        if stream:
            check_suffix(self.path, key)
            with unreadable(key, self.path, fmt):
                self.schema = pq.ParquetFile(self.path).schema_arrow if self._parquet else self._open_csv(None).schema
        else:
            self.schema = self.table.schema
        check_header(self.schema.names, key, self.path)

    @property
    def _parquet(self) -> bool:
        return self.path.suffix.lower() == ".parquet"

    @property
    def column_names(self) -> list[str]:
        return list(self.schema.names)

    def _open_csv(self, columns: list[str] | None) -> pacsv.CSVStreamingReader:
        parse, convert = csv_options(self.path, self.fmt, columns)
        read = pacsv.ReadOptions(block_size=CSV_BLOCK)
        return pacsv.open_csv(self.path, read_options=read, parse_options=parse, convert_options=convert)

    def batches(self, columns: list[str]) -> Iterator[tuple[int, pa.Table]]:
        """``(first row, rows)`` of ``columns`` over the file, in order: one batch when held whole."""
        if self.table is not None:
            yield 0, self.table.select(columns)
            return
        first = 0
        with unreadable(self.key, self.path, self.fmt):
            if self._parquet:
                reader = pq.ParquetFile(self.path).iter_batches(batch_size=PARQUET_BATCH, columns=columns)
            else:
                reader = self._open_csv(columns)
            for batch in reader:
                yield first, pa.Table.from_batches([batch]).select(columns)
                first += batch.num_rows

    def column(self, name: str) -> pa.ChunkedArray:
        """One column over every row."""
        if self.table is not None:
            return self.table.column(name)
        chunks = [t.column(name).combine_chunks() for _, t in self.batches([name])]
        return pa.chunked_array(chunks, type=self.schema.field(name).type)


def table_bytes(path: str | Path, key: str) -> int:
    """About what the table takes once read: a CSV's size on disk, a Parquet file's uncompressed size (0 for a
    missing file, which reading then reports)."""
    path = Path(path).expanduser()
    if not path.is_file():
        return 0
    if path.suffix.lower() != ".parquet":
        return path.stat().st_size
    with unreadable(key, path):
        meta = pq.ParquetFile(path).metadata
    return sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
