"""Constructor signatures and class constants read from source (``recipe/validation/signatures.py``) give the same
answers as the imported classes, for every ``_target_`` the configs name, and import nothing heavy."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import typing

import pytest
from conftest import ROOT
from hydra.utils import get_object

from recipe.cli.config import CONF_DIR
from recipe.validation import signatures
from recipe.validation.checks import _conforms

TARGETS = sorted({m for p in CONF_DIR.rglob("*.yaml") for m in re.findall(r"_target_:\s*([\w.]+)", p.read_text())})
PROBES = [1, 1.5, "a", True, None, [1, 2], ["a"], {"x": 1}, {"_target_": "x.Y"}]


@pytest.mark.parametrize("target", TARGETS)
def test_static_signature_agrees_with_the_imported_class(target):
    assert signatures.is_class(target) == isinstance(get_object(target), type)
    if not signatures.is_class(target):
        return
    static, static_any = signatures.constructor_hints(target)
    runtime, runtime_any = signatures._runtime_hints(target)
    assert set(static) == set(runtime) and static_any == runtime_any
    for name, hint in runtime.items():
        if hint is typing.Any:  # the import could not resolve it either: nothing to agree on
            continue
        for value in PROBES:
            assert _conforms(value, static[name]) == _conforms(value, hint), (name, value, static[name], hint)


@pytest.mark.parametrize("target", [t for t in TARGETS if t.startswith("recipe.")])
def test_static_metrics_agree_with_the_imported_class(target):
    for name in ("METRICS", "TWO_CLASS_METRICS"):
        assert signatures.class_constant(target, name) == getattr(get_object(target), name, None)


def test_reading_every_target_imports_no_heavy_module():
    code = textwrap.dedent(f"""
        import sys
        from recipe.validation import signatures
        for target in {TARGETS!r}:
            if signatures.is_class(target):
                signatures.constructor_hints(target)
                signatures.class_constant(target, "METRICS")
        print(sorted(m for m in ("torch", "lightning", "optuna") if m in sys.modules))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT / "src", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_a_class_made_at_run_time_is_read_by_importing_it(tmp_path, monkeypatch):
    (tmp_path / "made_at_run_time.py").write_text(
        "def _init(self, width: int, depth: int = 2):\n    pass\n\nMade = type('Made', (), {'__init__': _init})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    hints, takes_any = signatures.constructor_hints("made_at_run_time.Made")
    assert hints == {"width": int, "depth": int} and takes_any is False


def test_a_target_that_names_nothing_raises():
    with pytest.raises((ImportError, AttributeError, ValueError)):
        signatures.constructor_hints("recipe.data.NoSuchDataModule")


def test_a_constant_computed_by_a_call_is_read_by_importing_it(tmp_path, monkeypatch):
    (tmp_path / "computed_constant.py").write_text(
        "STAGES = ('train', 'val')\n\ndef names():\n    return ('val/f1',)\n\n"
        "class Module:\n    METRICS = (*(f'{s}/loss' for s in STAGES), *names())\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert signatures.class_constant("computed_constant.Module", "METRICS") == ("train/loss", "val/loss", "val/f1")
