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


CASES = {
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
