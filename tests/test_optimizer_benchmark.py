"""``benchmarks/optimizers.py``: the product's own study, run per experiment, filed as a docs page."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pages
import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "optimizers.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("optimizer_benchmark", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_runs_compare_optimizers_on_the_experiment(bench, tmp_path) -> None:
    cmd = bench.study_command("mnist1d_cnn", tmp_path / "study", ["hydra.sweeper.seeds=2"])
    assert cmd[2:6] == [
        "-m",
        "hparams_search=compare_optimizers",
        "experiment=mnist1d_cnn",
        f"hydra.sweep.dir={tmp_path}/study",
    ]
    assert cmd[-1] == "hydra.sweeper.seeds=2"


def test_the_page_is_the_study_report_with_its_figures_beside_it(bench, tmp_path) -> None:
    study = tmp_path / "study"
    study.mkdir()
    (study / "study.md").write_text(
        "# Study: val/acc_best\n\n| arm |\n|---|\n| optimizer=adamw |\n\n![isolation](isolation.png)\n"
    )
    for figure in bench.FIGURES:
        (study / figure).write_bytes(b"png " + figure.encode())
    page = bench.file_report("digits_mlp", study).read_text()
    assert page.startswith("# Which optimizer wins: digits_mlp\n\nMade by `")
    assert "| optimizer=adamw |" in page and "![isolation](optimizers_digits_mlp_isolation.png)" in page
    assert "# Study" not in page
    for figure in bench.FIGURES:
        assert (pages.PAGES / f"optimizers_digits_mlp_{figure}").read_bytes() == b"png " + figure.encode()
