"""Precision picked for the device: resolution rules, the Trainer they build, and training under them."""

from __future__ import annotations

import argparse
import importlib.util
import warnings
from pathlib import Path

import pytest
import torch
from conftest import NO_LOGGER

from eval import evaluate
from recipe.build import build
from recipe.errors import ConfigError
from recipe.runtime.precision import resolve_precision
from recipe.runtime.trainer import build_trainer
from train import train

QUIET = ["++trainer.enable_progress_bar=false", "~callbacks.progress_bar", "~callbacks.model_summary"]
TINY = [
    "trainer.max_epochs=1",
    "++trainer.limit_train_batches=3",
    "++trainer.limit_val_batches=2",
    "test=false",
]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize(
    ("requested", "expected"),
    [("auto", "bf16-mixed"), ("16-mixed", "bf16-mixed"), ("32-true", "32-true"), ("bf16-mixed", "bf16-mixed"),
     ("32", "32-true"), ("bf16", "bf16-mixed"), ("64-true", "64-true")],
)  # fmt: skip
def test_cpu_resolution(requested: str, expected: str) -> None:
    assert resolve_precision(requested, "cpu") == expected


@pytest.mark.parametrize(("bf16_supported", "expected"), [(True, "bf16-mixed"), (False, "16-mixed")])
def test_auto_on_cuda_prefers_bf16_where_supported(monkeypatch, bf16_supported: bool, expected: str) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_supported)
    assert resolve_precision("auto", "gpu") == expected
    assert resolve_precision("auto", "auto") == expected  # accelerator auto picks CUDA when there is one
    assert resolve_precision("16-mixed", "gpu") == "16-mixed"  # an explicit request is kept on CUDA
    assert resolve_precision("auto", "cpu") == "bf16-mixed"


def test_unknown_precision_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"trainer.precision='fp8': choose one of \['auto', '32-true'"):
        resolve_precision("fp8", "cpu")


@pytest.mark.parametrize(
    ("requested", "expected"), [("auto", "bf16-mixed"), ("16-mixed", "bf16-mixed"), ("32-true", "32-true")]
)
def test_cpu_trainer_gets_resolved_precision_silently(make_cfg, requested: str, expected: str) -> None:
    cfg = make_cfg("trainer.accelerator=cpu", f"trainer.precision={requested}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = build_trainer(cfg.trainer, logger=False)
    assert trainer.precision == expected
    assert not [w for w in caught if "precision" in str(w.message).lower()]


@pytest.mark.parametrize(("requested", "dtype"), [("16-mixed", torch.bfloat16), ("32-true", torch.float32)])
def test_forward_runs_in_the_resolved_dtype(make_cfg, requested: str, dtype: torch.dtype) -> None:
    cfg = make_cfg("trainer.accelerator=cpu", f"trainer.precision={requested}")
    trainer = build_trainer(cfg.trainer, logger=False)
    datamodule, module = build(cfg)
    x, _ = next(iter(datamodule.train_dataloader()))
    with trainer.precision_plugin.forward_context():
        assert module(x).dtype == dtype


def test_sixteen_mixed_request_trains_on_cpu(make_cfg) -> None:
    metrics = train(make_cfg("trainer.accelerator=cpu", "trainer.precision=16-mixed", *TINY, *QUIET))
    assert metrics["train/loss"] > 0 and torch.isfinite(torch.tensor(metrics["val/loss"]))


@pytest.mark.parametrize(("eval_precision", "same"), [("auto", True), ("bf16-mixed", False)])
def test_eval_tests_in_the_run_precision_unless_told_otherwise(make_cfg, tmp_path, eval_precision, same) -> None:
    # the CPU's auto is bf16-mixed: evaluating a 32-true run in it moved test/acc of mnist1d_cnn by 0.1 point
    trained = train(make_cfg("trainer.accelerator=cpu", "trainer.precision=32-true", *NO_LOGGER))
    best = next((tmp_path / "checkpoints").glob("epoch_*.ckpt"))
    overrides = [f"ckpt_path={best}", f"trainer.precision={eval_precision}", "trainer.limit_test_batches=2", *QUIET[:1]]
    evaluated = evaluate(make_cfg(*overrides, config_name="eval"))
    assert (evaluated["test/loss"] == trained["test/loss"]) is same


@needs_cuda
@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed", "32-true"])
def test_gpu_precisions_train(make_cfg, precision: str) -> None:
    if precision == "bf16-mixed" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    cfg = make_cfg("trainer=gpu", f"trainer.precision={precision}", "trainer.log_every_n_steps=1", *TINY, *QUIET)
    trainer = build_trainer(cfg.trainer, logger=False)
    assert trainer.precision == precision
    has_scaler = getattr(trainer.precision_plugin, "scaler", None) is not None
    assert has_scaler == (precision == "16-mixed")  # only float16 needs the gradient scaler
    metrics = train(cfg)
    assert metrics["train/loss"] > 0
    assert 0 < metrics["train/grad_norm"] < 1e3  # logged after unscaling (the scaler starts at 65536)


@needs_cuda
def test_compiled_net_trains_on_gpu(make_cfg) -> None:
    metrics = train(make_cfg("trainer=gpu", "compile=true", *TINY, *QUIET))
    assert metrics["train/loss"] > 0


def test_precision_benchmark_measures_a_cpu_case() -> None:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "precision.py"
    spec = importlib.util.spec_from_file_location("precision_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    case = argparse.Namespace(device="cpu", precision="32-true", compile=False, hidden=[32], batch_size=256, epochs=2)
    row = bench.run_case(case)
    assert row["precision"] == "32-true" and row["samples_per_s"] > 0 and row["peak_mib"] > 0
    assert 0 <= row["val_acc"] <= 1
    assert bench.cases("cpu") == [("32-true", False), ("32-true", True), ("bf16-mixed", False), ("bf16-mixed", True)]


def test_model_compile_compiles_the_net_in_place(make_cfg) -> None:
    _, plain = build(make_cfg())
    _, compiled = build(make_cfg("compile=true"))
    assert plain.net._compiled_call_impl is None and compiled.net._compiled_call_impl is not None
    assert list(compiled.state_dict()) == list(plain.state_dict())  # checkpoints keep the plain net's keys
