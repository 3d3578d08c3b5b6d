"""Every bad input docs/errors.md and the issues name: one line naming the key and the value, exit code 2, no data
loaded, nothing left behind."""

from __future__ import annotations

import pytest
from conftest import NO_LOGGER, run_script
from omegaconf import OmegaConf
from torch.cuda import is_available

from recipe.validation.checks import check_train_config
from train import main, train

CUDA = is_available()
# (overrides, what the error line must name: the key and the value as the user typed it)
BAD = [
    (["optimizer.lr=abc"], "optimizer.lr='abc'"),
    (["data.batch_size=1.5"], "data.batch_size=1.5"),
    (["model.hidden_sizes=256"], "model.hidden_sizes=256"),
    (["model.norm=bogus"], "model.norm='bogus'"),
    (["seed=abc"], "seed='abc'"),
    (["seed=-1"], "seed=-1"),
    (["threads=0"], "threads=0"),
    (["threads=two"], "threads='two'"),
    (["data=npz"], "data.path='???'"),
    (["optimized_metric=foo"], "optimized_metric='foo'"),
    (["+optimizr=sgd"], "optimizr='sgd'"),
    (["test_weights=final"], "test_weights='final'"),
    (["callbacks.early_stopping.monitor=val/nonexistent"], "callbacks.early_stopping.monitor='val/nonexistent'"),
    (["trainer.accumulate_grad_batches=0"], "trainer.accumulate_grad_batches=0"),
    (["trainer.max_epochs=abc"], "trainer.max_epochs='abc'"),
    (["trainer.precision=8"], "trainer.precision=8"),
    (["lr_find=plot", "lr_find.mode=cubic"], "lr_find.mode='cubic'"),
    (["lr_find=apply", "ckpt_path=some/last.ckpt"], "lr_find='apply'"),
    (["trainer.devices=0"], "trainer.devices=0"),
    (["trainer.devices=-2"], "trainer.devices=-2"),
    (["trainer.devices=abc"], "trainer.devices='abc'"),
    (["trainer.accelerator=gpuu"], "trainer.accelerator='gpuu'"),
]
# what only the machine that trains can judge: rejected in train(), before any data is loaded
MACHINE = [
    (["threads=100000"], "threads=100000: more than the"),
    *([(["trainer.accelerator=gpu"], "trainer.accelerator='gpu': this machine has no CUDA GPU")] * (not CUDA)),
    *([(["trainer.devices=64"], "trainer.devices=64: asks for GPU 63")] * CUDA),
]
# ranges a constructor judges (the optimizer's arguments, a positive batch): rejected as the run builds that object,
# before any data is loaded
BUILT = [
    (["optimizer.lr=-0.1"], "optimizer.lr=-0.1"),
    (["+optimizer.momentum=0.9"], "optimizer.momentum=0.9"),
    (["data.batch_size=0"], "data.batch_size=0"),
    (["scheduler.min_lr=0.5"], "scheduler.min_lr=0.5"),
]
# values that need the data to be judged: rejected after loading it, still before the first step
NEEDS_DATA = [
    (["scheduler.warmup=1000", "trainer.max_epochs=2"], "scheduler.warmup=1000"),
    (["trainer.max_epochs=-1"], "trainer.max_epochs=-1"),
    (["callbacks.early_stopping.monitor=val/auroc"], "callbacks.early_stopping.monitor='val/auroc'"),  # 10 classes
]


@pytest.mark.parametrize("overrides, named", BAD, ids=[" ".join(o) for o, _ in BAD])
def test_rejected_by_the_check_before_anything_is_built(make_cfg, overrides, named):
    with pytest.raises(Exception) as caught:
        check_train_config(make_cfg(*overrides))
    assert named in str(caught.value).splitlines()[0]


ALL = BAD + MACHINE + BUILT + NEEDS_DATA


@pytest.mark.parametrize("overrides, named", ALL, ids=[" ".join(o) for o, _ in ALL])
def test_the_entry_point_prints_one_line_and_exits_2(make_cfg, capsys, tmp_path, overrides, named):
    with pytest.raises(SystemExit) as exit_info:
        main(make_cfg(*NO_LOGGER, *overrides))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and named in err[-1]
    assert not (tmp_path / "checkpoints").exists()


def test_the_defaults_pass(make_cfg):
    check_train_config(make_cfg())
    check_train_config(make_cfg("experiment=mnist1d_transformer", "lr_find=apply", "optimizer=sgd"))


def test_auroc_is_refused_on_ten_classes_and_monitored_on_two(make_cfg):
    with pytest.raises(Exception, match="logged for two classes only; the data has 10"):
        train(make_cfg(*NO_LOGGER, "optimized_metric=val/auroc"))
    monitors = [f"callbacks.{name}.monitor=val/auroc" for name in ("early_stopping", "model_checkpoint")]
    metrics = train(
        make_cfg(*NO_LOGGER, "data=synthetic", "data.num_classes=2", "optimized_metric=val/auroc", *monitors)
    )
    assert 0.5 < metrics["val/auroc"] <= 1 and 0.5 < metrics["test/auroc"] <= 1


def test_a_rejected_run_loads_no_data_and_leaves_no_folder(tmp_path):
    run_dir, data_dir = tmp_path / "run", tmp_path / "data"
    result = run_script("train.py", "data=mnist1d", f"paths.data_dir={data_dir}", "optimizer.lr=abc", run_dir=run_dir)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "error: optimizer.lr='abc': must be a number"
    assert "Traceback" not in result.stderr and "Outputs:" not in result.stdout + result.stderr
    assert "config" not in result.stdout  # the config tree is printed only for a run that starts
    assert not run_dir.exists() and not data_dir.exists()


def test_train_log_holds_what_the_terminal_showed(tmp_path):
    result = run_script("train.py", *NO_LOGGER, run_dir=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    log = (tmp_path / "train.log").read_text()
    for shown in ("optimizer", "Seed set to 0", "run report", "Verdict:", "test/acc", f"Outputs: {tmp_path}"):
        assert shown in result.stdout + result.stderr and shown in log, shown
    assert OmegaConf.load(tmp_path / ".hydra" / "config.yaml").optimizer.lr == 1e-3


@pytest.mark.parametrize("content", [b"epoch,loss\n1,0.5\n", b"hello\n", b""], ids=["csv", "text", "empty"])
def test_a_file_that_is_not_a_checkpoint_is_named_so(make_cfg, capsys, tmp_path, content):
    (tmp_path / "notes.txt").write_bytes(content)
    with pytest.raises(SystemExit) as exit_info:
        main(make_cfg(*NO_LOGGER, f"ckpt_path={tmp_path / 'notes.txt'}"))
    assert exit_info.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("error: ckpt_path=") and "notes.txt" in line and "not a checkpoint" in line


def test_a_batch_larger_than_the_training_rows_warns_in_one_line(make_cfg, caplog):
    metrics = train(make_cfg(*NO_LOGGER, "trainer.max_epochs=1", "data.batch_size=100000"))
    warned = [r.getMessage() for r in caplog.records if "data.batch_size=100000 is more than the" in r.getMessage()]
    assert len(warned) == 1 and "1257 training rows" in warned[0] and "data.batch_size=1257" in warned[0]
    assert "test/acc" in metrics  # it still runs: one full-batch step an epoch
