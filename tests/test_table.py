"""data=csv: reading, preprocessing fitted on train rows only, both tasks end to end, and predictions."""

import csv

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from conftest import NO_LOGGER, predicted, run_script

from recipe.data.table import TableDataModule
from recipe.errors import ConfigError
from recipe.tasks.predict import predict
from train import train

REGRESSION = ["task=regression", "callbacks.model_checkpoint.filename=best"]


def write_table(path, n: int = 200, seed: int = 0, **extra) -> dict[str, list]:
    """A table with a numeric, a boolean and a string feature; a string label (a rule of x and colour) and a real
    target (linear in x)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(5.0, 2.0, n)
    colour = rng.choice(["red", "green", "blue"], n)
    columns = {
        "id": [f"row{i}" for i in range(n)],
        "x": x.tolist(),
        "flag": (rng.random(n) < 0.5).tolist(),
        "colour": colour.tolist(),
        "label": np.where((x > 5) ^ (colour == "red"), "malignant", "benign").tolist(),
        "value": (3.0 * x + 10 + rng.normal(0, 0.1, n)).tolist(),
        **extra,
    }
    table = pa.table(columns)
    if str(path).endswith(".parquet"):
        pq.write_table(table, path)
    else:
        pa.csv.write_csv(
            table, path, write_options=pa.csv.WriteOptions(delimiter="\t" if str(path).endswith(".tsv") else ",")
        )
    return columns


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_classification_table(tmp_path, suffix):
    path = tmp_path / f"t{suffix}"
    write_table(path)
    dm = TableDataModule(str(path), target="label", features=["x", "flag", "colour"], id_column="id", seed=1)
    assert dm.task == "classification" and dm.class_names == ["benign", "malignant"] and dm.num_classes == 2
    assert dm.input_shape == (1 + 1 + 3,)  # x, flag, one-hot of 3 colours
    x = dm.datasets["train"].tensors[0]
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [140, 20, 40]
    assert torch.allclose(x[:, :2].mean(0), torch.zeros(2), atol=1e-5)  # standardized with train statistics
    assert torch.equal(x[:, 2:].sum(1), torch.ones(len(x)))  # one colour per row
    shares = [dm.datasets[s].tensors[1].float().mean().item() for s in ("train", "test")]
    assert abs(shares[0] - shares[1]) < 0.03  # stratified


def test_preprocessing_is_fitted_on_train_rows_only(tmp_path):
    path = tmp_path / "t.csv"
    columns = write_table(path)
    dm = TableDataModule(str(path), target="label", features=["x"], seed=0)
    stats = dm.state_dict()["features"]["columns"][0]
    x = np.array(columns["x"])
    assert stats["mean"] != pytest.approx(x.mean(), abs=1e-9)
    train_x = dm.datasets["train"].tensors[0][:, 0].numpy() * stats["std"] + stats["mean"]
    assert train_x.mean() == pytest.approx(stats["mean"], abs=1e-4)


def test_regression_inferred_and_target_standardized(tmp_path):
    path = tmp_path / "t.csv"
    write_table(path)
    dm = TableDataModule(str(path), target="value", features=["x"])
    assert dm.task == "regression" and dm.num_classes == 1 and dm.class_names is None
    y = dm.datasets["train"].tensors[1]
    assert y.dtype == torch.float32 and abs(y.mean().item()) < 1e-5
    mean, std = dm.target_scale
    assert mean == pytest.approx(25, abs=1.0) and std == pytest.approx(6, abs=1.0)  # 3 * N(5, 2) + 10


def test_impute_fills_median_and_adds_indicator(tmp_path):
    path = tmp_path / "t.csv"
    rows = [f"{'' if i % 4 == 1 else i},{'' if i % 4 == 2 else 'uv'[i % 2]},{i % 2}" for i in range(20)]
    path.write_text("a,c,label\n" + "\n".join(rows) + "\n")
    dm = TableDataModule(str(path), target="label", missing="impute", standardize=False)
    a, c = dm.state_dict()["features"]["columns"]
    assert a["indicator"] and c["categories"] == ["u", "v", None]  # missing strings get a category of their own
    _, x = predicted(dm, path)
    assert dm.input_shape == (2 + len(c["categories"]),)
    assert x[1, 0].item() == pytest.approx(a["median"]) and x[1, 1].item() == 1.0  # the median, flagged
    assert x[0, 0].item() == 0.0 and x[0, 1].item() == 0.0 and x[0, 2].item() == 1.0  # 0, not flagged, "u"
    assert x[2, 2 + c["categories"].index(None)].item() == 1.0


def test_state_dict_reproduces_features_without_the_training_file(tmp_path):
    path = tmp_path / "t.csv"
    write_table(path)
    dm = TableDataModule(str(path), target="label", features=["x", "colour"], id_column="id")
    fresh = TableDataModule(str(tmp_path / "gone.csv"), target="label")
    fresh.load_state_dict(dm.state_dict())
    names, x = predicted(fresh, path)
    assert names[:2] == ["row0", "row1"] and fresh.input_shape == dm.input_shape
    assert torch.allclose(x, predicted(dm, path)[1])


def test_predictions_stream_a_file_block_by_block_as_read_whole(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    write_table(path, n=300)
    dm = TableDataModule(str(path), target="label", features=["x", "flag", "colour"])
    whole = predicted(dm, path)
    monkeypatch.setattr("recipe.data.table_file.CSV_BLOCK", 2048)  # a few dozen rows a block
    blocks = list(dm.predict_batches(path))
    assert len(blocks) > 4 and sum(len(names) for names, _ in blocks) == 300
    assert predicted(dm, path)[0] == whole[0] == [str(i) for i in range(300)]  # no id column: the row numbers
    assert torch.equal(predicted(dm, path)[1], whole[1])


def read_csv(path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_classification_trains_and_predicts_class_names(tmp_path, make_cfg):
    path, new = tmp_path / "t.csv", tmp_path / "new.csv"
    write_table(path, n=400)
    write_table(new, n=30, seed=5)
    overrides = ["data=csv", f"data.path={path}", "data.target=label", "data.features=[x,colour]", "data.id_column=id"]
    cfg = make_cfg(
        *overrides, *NO_LOGGER, "trainer.max_epochs=8", "trainer.limit_train_batches=1.0", "optimizer.lr=1e-2"
    )
    metrics = train(cfg)
    assert metrics["test/acc"] > 0.8
    ckpt = next((tmp_path / "checkpoints").glob("epoch_*.ckpt"))
    out = tmp_path / "predictions.csv"
    predict(make_cfg(f"ckpt_path={ckpt}", f"data.path={new}", f"output_file={out}", config_name="predict"))
    rows = read_csv(out)
    assert [r["id"] for r in rows[:2]] == ["row0", "row1"] and len(rows) == 30
    assert {r["prediction"] for r in rows} <= {"benign", "malignant"}
    assert all(abs(float(r["prob_benign"]) + float(r["prob_malignant"]) - 1) < 1e-4 for r in rows)
    truth = read_csv(new)
    assert np.mean([r["prediction"] == t["label"] for r, t in zip(rows, truth, strict=True)]) > 0.7
    bad = tmp_path / "bad.csv"
    bad.write_text("x,size\n1.0,2\n")
    with pytest.raises(ConfigError, match="has no column 'colour'"):  # into the same file: it is kept as it was
        predict(make_cfg(f"ckpt_path={ckpt}", f"data.path={bad}", f"output_file={out}", config_name="predict"))
    assert read_csv(out) == rows and sorted(p.name for p in tmp_path.glob("predictions*")) == ["predictions.csv"]
    result = run_script("predict.py", f"ckpt_path={ckpt}", f"data.path={bad}", run_dir=tmp_path / "bad_run")
    assert result.returncode == 2
    expected = f"error: data.path={str(bad)!r}: has no column 'colour' that training used; training's features"
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        f"{expected}: ['x', 'colour']"
    ]


def test_regression_trains_and_predicts_in_target_units(tmp_path, make_cfg):
    path = tmp_path / "t.parquet"
    write_table(path, n=400)
    overrides = [
        "data=csv",
        f"data.path={path}",
        "data.target=value",
        "data.features=[x]",
        "model=mlp",
        "model.hidden_sizes=[32]",
    ]
    cfg = make_cfg(
        *overrides, *REGRESSION, *NO_LOGGER, "trainer.max_epochs=10", "trainer.limit_train_batches=1.0",
        "trainer.limit_val_batches=1.0", "trainer.limit_test_batches=1.0", "optimizer.lr=1e-2",
    )  # fmt: skip
    metrics = train(cfg)
    assert metrics["test/r2"] > 0.9 and metrics["test/mae"] < 3.0  # target std about 6
    assert {"val/mae", "val/r2", "test/rmse", "val/loss_best"} <= set(metrics)
    assert "| val/mae |" in (tmp_path / "report.md").read_text()  # the report shows MAE where it shows accuracy
    out = tmp_path / "predictions.csv"
    best = tmp_path / "checkpoints" / "best.ckpt"
    predict(make_cfg(f"ckpt_path={best}", f"data.path={path}", f"output_file={out}", config_name="predict"))
    rows = read_csv(out)
    predicted = np.array([float(r["prediction"]) for r in rows])
    truth = pq.read_table(path).column("value").to_numpy()
    assert np.abs(predicted - truth).mean() < 3.0


ROWS = [["x", "colour", "label"], *[[f"{i / 4:.2f}", "red" if i % 3 else "blue", "ab"[i % 2]] for i in range(40)]]


def text(delimiter=",", decimal=".", newline="\n"):
    lines = [delimiter.join(c.replace(".", decimal) for c in row) for row in ROWS]
    return newline.join(lines) + newline


@pytest.mark.parametrize(
    "name, content, encoding",
    [
        ("t.csv", text(";", ","), "utf-8"),  # a European spreadsheet's export: ; between fields, decimal commas
        ("t.csv", text("\t"), "utf-8"),  # a TSV saved as .csv
        ("t.tsv", text("\t"), "utf-8"),
        ("t.csv", text("|"), "utf-8"),
        ("t.csv", text(newline="\r\n"), "utf-8"),  # Windows line endings
        ("t.csv", text(), "utf-8-sig"),  # Excel's UTF-8 with a byte order mark
    ],
    ids=["semicolons and decimal commas", "tabs in a .csv", "tsv", "pipes", "windows line endings", "utf-8 bom"],
)
def test_a_table_is_read_as_it_was_written(tmp_path, name, content, encoding):
    (tmp_path / name).write_text(content, encoding=encoding, newline="")
    dm = TableDataModule(str(tmp_path / name), target="label", standardize=False, val_fraction=0.25)
    dm.setup()
    assert dm.input_shape == (3,)  # x a number, colour two categories: not x one-hot into 40 columns
    x = dm.datasets["train"].tensors[0][:, 0].numpy()
    assert set(np.round(x, 2)) <= {i / 4 for i in range(40)} and x.max() > 1


def test_spreadsheet_missing_tokens_are_imputed_as_missing_numbers(tmp_path):
    cells = ["?", "n/a", "NA", "N/A", "-", "null", "NaN", "#N/A", ""]
    rows = [*ROWS[:1], *[[c, *row[1:]] for c, row in zip(cells, ROWS[1:], strict=False)], *ROWS[len(cells) + 1 :]]
    (tmp_path / "t.csv").write_text("\n".join(",".join(r) for r in rows) + "\n")
    dm = TableDataModule(str(tmp_path / "t.csv"), target="label", missing="impute")
    dm.setup()
    assert dm.input_shape == (4,)  # x, its missing indicator, two colours
    assert dm.fitted["features"]["columns"][0]["kind"] == "numeric"
