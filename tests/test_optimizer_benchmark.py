"""``benchmarks/optimizers.py``: rows from measured records, and ``--results`` reused rather than trained again."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "optimizers.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("optimizer_benchmark", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def fake_run(val: float, test: float, seconds: float) -> dict:
    return {"val": val, "test": test, "seconds": seconds, "curve": [[10, 1.0, val / 2], [20, 0.5, val]]}


def record(bench, name: str, grid: int = 3, seeds: int = 2) -> dict:
    args = type("Args", (), {"set": [], "grid": grid, "seeds": seeds})()
    key = bench.record_key(name, "mnist1d_cnn scheduler.cycle_momentum=false", args)
    runs = [fake_run(0.90, 0.89, 10), fake_run(0.95, 0.94, 12), fake_run(0.93, 0.92, 11)]
    return {**key, "base_lr": 1e-3, "factors": [0.1, 1.0, 10.0], "best": 1, "grid_runs": runs,
            "more_seeds": [fake_run(0.94, 0.96, 14)]}  # fmt: skip


def test_a_row_gives_the_best_lr_the_seeds_mean_and_std_and_marks_an_edge(bench) -> None:
    row = record(bench, "adamw")
    assert bench.table_row(row) == "| mnist1d_cnn | `adamw` | 0.001 | 95.0 ± 1.4% | 13 s |"
    assert "| 0.01 (edge) | 94.0 ± 2.8% |" in bench.table_row({**row, "best": 2})
    assert "| | does not apply: no matrix | |" in bench.table_row({**row, "error": "no matrix"})


def test_results_are_reused_only_where_every_setting_matches(bench, tmp_path, monkeypatch, capsys) -> None:
    results = tmp_path / "runs.jsonl"
    results.write_text(json.dumps(record(bench, "adamw")) + "\n" + json.dumps(record(bench, "sgd", seeds=3)) + "\n")
    measured = []

    def measure(name, experiment, args):
        measured.append(name)
        return {**record(bench, name), "seeds": args.seeds}

    monkeypatch.setattr(bench, "measure", measure)
    argv = [
        "optimizers.py",
        "--optimizers",
        "adamw",
        "sgd",
        "--results",
        str(results),
        "--figure",
        str(tmp_path / "f.png"),
    ]
    monkeypatch.setattr(sys, "argv", [*argv, "--experiments", "mnist1d_cnn scheduler.cycle_momentum=false"])
    bench.main()
    assert measured == ["sgd"]  # adamw's record matches; sgd's was taken with 3 seeds, not 2
    assert "| `adamw` | 0.001 | 95.0 ± 1.4% |" in capsys.readouterr().out
    assert len(results.read_text().splitlines()) == 3 and (tmp_path / "f.png").stat().st_size > 0
    bench.main()  # everything is in the file now: nothing is measured again
    assert measured == ["sgd"]


def test_an_unknown_optimizer_is_refused_before_any_training(bench, monkeypatch, capsys) -> None:
    monkeypatch.setattr(bench, "measure", lambda *a: pytest.fail("trained"))
    monkeypatch.setattr(sys, "argv", ["optimizers.py", "--optimizers", "sgd", "adamx"])
    with pytest.raises(SystemExit) as exit_info:
        bench.main()
    assert exit_info.value.code == 2
    assert "error: --optimizers 'adamx': choose from [" in capsys.readouterr().err.splitlines()[-1]
