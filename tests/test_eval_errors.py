"""``src/eval.py`` on a file that is not a checkpoint from ``src/train.py``: one error line, exit code 2, and
no pickled code run (checkpoints are loaded with ``weights_only=True``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from conftest import FAST

from eval import main as evaluate_main
from train import train


class RunsCode:
    """A pickle that would create ``path`` when unpickled by a loader that executes code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


def eval_error(make_cfg, ckpt: Path, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        evaluate_main(make_cfg(f"ckpt_path={ckpt}", config_name="eval"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_missing_file(make_cfg, tmp_path, capsys):
    missing = tmp_path / "nope.ckpt"
    assert (
        eval_error(make_cfg, missing, capsys)
        == f"error: ckpt_path='{missing}': no such file; pass a .ckpt from a run's checkpoints/ folder"
    )


def test_a_folder_is_not_a_file(make_cfg, tmp_path, capsys):
    assert "no such file" in eval_error(make_cfg, tmp_path, capsys)


def test_truncated_checkpoint(make_cfg, tmp_path, capsys):
    train(make_cfg(*FAST, "logger=csv", "test=false"))
    whole = (tmp_path / "checkpoints" / "last.ckpt").read_bytes()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(whole[: len(whole) // 2])
    assert f"error: ckpt_path='{truncated}': not a readable checkpoint (" in eval_error(make_cfg, truncated, capsys)


def test_text_file(make_cfg, tmp_path, capsys):
    text = tmp_path / "notes.ckpt"
    text.write_text("epoch 3, val acc 0.97\n")
    assert f"error: ckpt_path='{text}': not a checkpoint (torch.save's files are zip archives)" in eval_error(
        make_cfg, text, capsys
    )


def test_torch_file_without_a_run_config(make_cfg, tmp_path, capsys):
    weights = tmp_path / "weights.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, weights)
    assert "not a checkpoint written by src/train.py (no run config inside)" in eval_error(make_cfg, weights, capsys)


def test_pickled_code_is_refused_not_run(make_cfg, tmp_path, capsys):
    marker, evil = tmp_path / "code_ran", tmp_path / "evil.ckpt"
    torch.save({"run_config": RunsCode(marker), "state_dict": {}}, evil)
    assert "not a readable checkpoint (Weights only load failed" in eval_error(make_cfg, evil, capsys)
    assert not marker.exists()
