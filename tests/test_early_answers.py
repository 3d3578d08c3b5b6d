"""A command that only needs the config is answered before torch loads: Hydra's --help, a typo, a bad value, a
sweep without -m, each from Hydra and OmegaConf alone (``recipe/cli/early.py``), as users type them."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT

HEAVY = ("torch", "lightning", "optuna")


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -X importtime src/<script> args``: stderr lists every module the command imported."""
    cmd = [sys.executable, "-X", "importtime", str(ROOT / "src" / script), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)


def imported(stderr: str) -> set[str]:
    return {m.group(1).split(".")[0] for m in re.finditer(r"^import time:.*\|\s+(\S+)$", stderr, re.M)}


@pytest.mark.parametrize(
    "script, args, code, message",
    [
        ("train.py", ["optimizer=adamx"], 2, "error: optimizer='adamx': no such option 'adamx'"),
        ("train.py", ["optimizer.lr=abc"], 2, "error: optimizer.lr='abc': must be a number"),
        ("train.py", ["trainer.max_epohs=3"], 2, "did you mean trainer.max_epochs?"),
        ("train.py", ["model.hidden_sizes=256"], 2, "error: model.hidden_sizes=256: must be a list of integers"),
        ("train.py", ["optimizer.lr=1e-3,3e-3"], 2, "a sweep: add -m"),
        ("train.py", ["+tags=[a]"], 2, "declare your own in conf/train.yaml"),
        ("train.py", ["--help"], 0, "train is powered by Hydra"),
        ("train.py", ["--cfg", "job", "optimizer=sgd"], 0, "name: sgd"),
        ("train.py", ["-m", "hparams_search=auto", "--cfg", "hydra"], 2, "error: -m with --cfg: one of -m, --cfg"),
        ("train.py", ["~logger"], 2, "LearningRateMonitor': logs to a logger, and there is none: remove it too"),
        ("eval.py", ["--help"], 0, "eval is powered by Hydra"),
        ("eval.py", ["trainer.max_epochs=0"], 2, "error: ckpt_path='???': required"),
        ("predict.py", ["ckpt_path=x.ckpt", "data.path=y.csv", "batch_size=0"], 2, "error: batch_size=0"),
    ],
)
def test_answered_without_importing_torch_lightning_or_optuna(script, args, code, message):
    proc = run(script, *args)
    out = proc.stdout + proc.stderr
    assert proc.returncode == code, out[-2000:]
    assert message in out
    assert not imported(proc.stderr) & set(HEAVY), sorted(imported(proc.stderr) & set(HEAVY))
    if code == 2:  # the error is the one line left on the terminal
        errors = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
        assert len(errors) == 1 and errors[0].startswith("error: "), errors


@pytest.mark.parametrize("overrides", [[], ["experiment=mnist1d_cnn", "optimizer=sgd", "lr_find=apply"], ["data=csv"]])
def test_checking_a_config_imports_nothing_heavy(overrides):
    """The whole check of a config that passes (or fails only on a required value) runs before torch loads."""
    code = textwrap.dedent(f"""
        import sys
        from recipe.cli.early import answer_early
        from recipe.validation.checks import check_train_config
        try:
            answer_early("train", check_train_config, {overrides!r})
        except SystemExit as stop:
            print("exit", stop.code)
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT / "src", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout + proc.stderr
