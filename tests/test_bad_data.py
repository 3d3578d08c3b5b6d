"""Each bad table, folder or image stops with one line naming the file, column or key, and what is allowed."""

import datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from recipe.data.image_folder import ImageFolderDataModule
from recipe.data.npz import NpzDataModule
from recipe.data.table import TableDataModule
from recipe.errors import ConfigError

TABLE = "a,b,label\n1,x,yes\n2,y,no\n3,x,yes\n4,y,no\n5,x,yes\n6,y,no\n7,x,yes\n8,y,no\n9,x,yes\n10,y,no\n"


def table(tmp_path, text=TABLE, name="t.csv"):
    (tmp_path / name).write_text(text)
    return str(tmp_path / name)


def image(path, size=(6, 6)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, 128).save(path)


def images(tmp_path, corrupt=False, empty_class=False, classes=("a", "b"), per_class=5):
    for c in classes:
        for i in range(per_class):
            image(tmp_path / c / f"{i}.png")
    if corrupt:
        (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG not really")
    if empty_class:
        (tmp_path / "c").mkdir()
    return str(tmp_path)


def npz(tmp_path, labels):
    np.savez(tmp_path / "d.npz", x=np.zeros((len(labels), 3)), y=np.array(labels))
    return NpzDataModule(str(tmp_path / "d.npz"))


def timestamps(tmp_path):
    when = [datetime.datetime(2024, 1, d) for d in range(1, 11)]
    pq.write_table(pa.table({"when": when, "label": [0, 1] * 5}), tmp_path / "t.parquet")
    return str(tmp_path / "t.parquet")


def ids(tmp_path):
    return table(tmp_path, "name,label\n" + "".join(f"n{i},{i % 2}\n" for i in range(60)))


def numbers_with(cells, column="a"):
    """TABLE with the given cells in place of the first rows' values of ``column`` (a numeric one)."""
    rows = [line.split(",") for line in TABLE.splitlines()]
    index = rows[0].index(column)
    for row, cell in zip(rows[1:], cells, strict=False):
        row[index] = cell
    return "\n".join(",".join(r) for r in rows) + "\n"


def many_numbers(stray):
    """A numeric column of 60 distinct values, with ``stray`` in rows 3 and 7."""
    cells = [str(i / 7) for i in range(60)]
    cells[2] = cells[6] = stray
    return "a,label\n" + "".join(f"{c},{i % 2}\n" for i, c in enumerate(cells))


def semicolons(tmp_path):
    return table(tmp_path, TABLE.replace(",", ";").replace(";x;", ";0,5;").replace(";y;", ";1,5;"))


def lists(tmp_path):
    pq.write_table(pa.table({"a": [[1, 2]] * 10, "label": [0, 1] * 5}), tmp_path / "t.parquet")
    return str(tmp_path / "t.parquet")


CASES = {
    "duplicate column names": (
        lambda p: TableDataModule(table(p, TABLE.replace("a,b,", "a,a,")), target="label"),
        ["data.path=", "t.csv", "column 'a' appears 2 times", "unique"],
    ),
    "a folder as data.path": (
        lambda p: TableDataModule(str(p), target="label"),
        ["data.path=", "a folder", ".csv, .tsv, .parquet"],
    ),
    "a header only": (lambda p: TableDataModule(table(p, "a,b,label\n"), target="label"), ["t.csv", "has no rows"]),
    "spreadsheet missing tokens": (
        lambda p: TableDataModule(table(p, numbers_with(["1", "?", "n/a", "-"])), target="label"),
        ["data.missing='error'", "column 'a'", "3 missing values", "first in row 2"],
    ),
    "numbers with stray strings": (
        lambda p: TableDataModule(table(p, many_numbers("oops")), target="label", missing="impute"),
        ["data.features='a'", "holds numbers but for 2 cell(s): 'oops' in row(s) 3, 7", "data.missing_values"],
    ),
    "numbers with stray strings, more categories allowed": (
        lambda p: TableDataModule(
            table(p, many_numbers("1.5.2")), target="label", missing="impute", max_categories=400
        ),
        ["data.features='a'", "'1.5.2' in row(s) 3, 7"],
    ),
    "a target of numbers with a stray string": (
        lambda p: TableDataModule(table(p, many_numbers("oops")), target="a", features=["label"]),
        ["data.target='a'", "'oops'"],
    ),
    "a column of missing values": (
        lambda p: TableDataModule(table(p, numbers_with(["NA"] * 10)), target="label", missing="impute"),
        ["data.features='a'", "holds no values"],
    ),
    "a list column": (lambda p: TableDataModule(lists(p), target="label"), ["data.features='a'", "type list"]),
    "the wrong delimiter given": (
        lambda p: TableDataModule(semicolons(p), target="label", delimiter=","),
        ["data.path=", "not a readable .csv file", "data.delimiter=','", "data.decimal="],
    ),
    "a file as an image folder": (
        lambda p: ImageFolderDataModule(table(p)),
        ["data.path=", "t.csv", "a file; give a folder of class subfolders"],
    ),
    "missing file": (
        lambda p: TableDataModule(str(p / "no.csv"), target="label"),
        ["data.path=", "no.csv", "no such file"],
    ),
    "missing target": (lambda p: TableDataModule(table(p), target="y"), ["data.target='y'", "['a', 'b', 'label']"]),
    "one class": (
        lambda p: TableDataModule(table(p, TABLE.replace("no", "yes")), target="label"),
        ["data.target='label'", "single class ('yes')"],
    ),
    "one sample of a class": (
        lambda p: TableDataModule(table(p, TABLE + "11,x,maybe\n"), target="label"),
        ["data.target='label'", "class 'maybe' has 1 sample", "t.csv", "2 or more"],
    ),
    "npz labels not 0..C-1": (lambda p: npz(p, [0, 1000, 2000] * 4), ["data.path['y']='{0, 1000, 2000}'", "0..2"]),
    "npz single class": (lambda p: npz(p, [1] * 8), ["data.path=", "d.npz", "single class (1) in its array 'y'"]),
    "npz one sample per class": (lambda p: npz(p, [0, 1, 2]), ["data.path=", "d.npz", "class 0 has 1 sample"]),
    "one class folder": (
        lambda p: ImageFolderDataModule(images(p, classes=("a",))),
        ["data.path=", "single class ('a')"],
    ),
    "one image per class": (
        lambda p: ImageFolderDataModule(images(p, per_class=1)),
        ["data.path=", "class 'a' has 1 sample", "2 or more"],
    ),
    "unseen test label": (
        lambda p: TableDataModule(table(p), target="label", test_path=table(p, "a,b,label\n1,x,maybe\n", "test.csv")),
        ["data.target='label'", "'maybe'", "test.csv", "['no', 'yes']"],
    ),
    "not encodable: timestamps": (
        lambda p: TableDataModule(timestamps(p), target="label"),
        ["data.features='when'", "timestamp"],
    ),
    "not encodable: too many strings": (
        lambda p: TableDataModule(ids(p), target="label", max_categories=20),
        ["data.features='name'", "data.max_categories=20"],
    ),
    "NaN with missing=error": (
        lambda p: TableDataModule(table(p, TABLE.replace("3,x", "NaN,x")), target="label"),
        ["data.missing='error'", "column 'a'", "first in row 3", "data.missing=impute"],
    ),
    "empty class folder": (
        lambda p: ImageFolderDataModule(images(p, empty_class=True)),
        ["data.path=", "'c'", "no images"],
    ),
    "folder with no images": (lambda p: ImageFolderDataModule(str(p)), ["data.path=", "no class subfolders"]),
    "corrupt image": (
        lambda p: ImageFolderDataModule(images(p, corrupt=True)),
        ["broken.png", "data.skip_corrupt=true"],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_naming_it(tmp_path, case):
    make, expected = CASES[case]
    with pytest.raises(ConfigError) as err:
        make(tmp_path).setup()
    message = str(err.value)
    assert "\n" not in message
    for part in expected:
        assert part in message
    assert "max_categories" not in message or "too many strings" in case  # its advice only for a real category


def test_a_stray_string_in_new_rows_is_named_with_its_row(tmp_path):
    dm = TableDataModule(table(tmp_path, many_numbers("0.5")), target="label")
    with pytest.raises(ConfigError, match=r"data.features='a'.*'oops' in row\(s\) 3, 7"):
        next(dm.predict_batches(table(tmp_path, many_numbers("oops"), "new.csv")))


def test_skip_corrupt_leaves_the_file_out(tmp_path, caplog):
    dm = ImageFolderDataModule(images(tmp_path, corrupt=True), skip_corrupt=True, image_size=6)
    dm.setup()
    assert sum(len(dm.datasets[s]) for s in ("train", "val", "test")) == 10
    assert "skipped 1 unreadable" in caplog.text


@pytest.mark.parametrize(
    "new, expected",
    [
        ("a,label\n1,yes\n", ["new.csv", "no column 'b'", "['a', 'b']"]),
        ("a,b,c\n1,x,2\n", ["new.csv", "column 'c'", "['a', 'b', 'label']"]),
        ("a,b\nx,x\n", ["new.csv", "column 'a'", "numeric"]),
    ],
)
def test_prediction_columns_must_match_training(tmp_path, new, expected):
    dm = TableDataModule(table(tmp_path), target="label")
    with pytest.raises(ConfigError) as err:
        next(dm.predict_batches(table(tmp_path, new, "new.csv")))
    assert all(part in str(err.value) for part in expected)
