"""The docs: the site builds with ``mkdocs build --strict``, every runnable block of README.md and docs/ runs, and
every measurement page says which benchmark command made it.

A runnable block is a fenced block whose info string is ``bash {.run}`` (docs/development.md). Each command in it
runs as a user would type it, in a fresh folder that ``PROJECT_ROOT`` points at (so logs/ and data/ go there), in a
fast mode: one short epoch for ``src/train.py``, two trials for a search that does not set its own number.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
RUN_INFO = re.compile(r"^bash\s+\{\.run\}$")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
# Forced on every src/train.py command (a key the command sets itself is replaced): one epoch of a few batches.
FAST = {
    "trainer.max_epochs": "1",
    "++trainer.limit_train_batches": "4",
    "++trainer.limit_val_batches": "2",
    "++trainer.limit_test_batches": "2",
    "++trainer.num_sanity_val_steps": "0",
}
SEARCH_TRIALS = "hydra.sweeper.n_trials=2"


def fenced_blocks(path: Path) -> list[tuple[int, str, str]]:
    """``(line number, info string, text)`` of every fenced block of a markdown file (a longer fence holds shorter
    ones, as in CommonMark)."""
    blocks, lines, i = [], path.read_text().splitlines(), 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, info, start = opening.group(1), opening.group(2).strip(), i
        body, i = [], i + 1
        while i < len(lines) and not re.match(rf"^ {{0,3}}{fence[0]}{{{len(fence)},}}\s*$", lines[i]):
            body.append(lines[i])
            i += 1
        blocks.append((start + 1, info, "\n".join(body)))
        i += 1
    return blocks


def runnable_blocks() -> list:
    return [
        pytest.param(text, id=f"{path.relative_to(ROOT)}:{line}")
        for path in PAGES
        for line, info, text in fenced_blocks(path)
        if RUN_INFO.match(info)
    ]


def commands(text: str) -> list[list[str]]:
    """Each command of a block as argv: continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [argv for line in joined.splitlines() if (argv := shlex.split(line, comments=True))]


def key(arg: str) -> str:
    return arg.lstrip("+~").split("=", 1)[0]


def fast(argv: list[str]) -> list[str]:
    """``argv`` as this test runs it: the test's Python, the project's scripts, a short run."""
    if argv[0] not in ("python", "python3", ".venv/bin/python"):
        raise AssertionError(f"a runnable block runs python commands only, not {argv[0]!r}")
    argv = [sys.executable, *argv[1:]]
    if len(argv) > 1 and argv[1].startswith("src/"):
        argv[1] = str(ROOT / argv[1])
    if len(argv) > 1 and Path(argv[1]).name == "train.py":
        forced = {key(k) for k in FAST}
        argv = [a for a in argv if key(a) not in forced] + [f"{k}={v}" for k, v in FAST.items()]
        if any(a.startswith("hparams_search=") for a in argv) and not any(
            key(a) == "hydra.sweeper.n_trials" for a in argv
        ):
            argv.append(SEARCH_TRIALS)
    return argv


@pytest.mark.parametrize("text", runnable_blocks())
def test_a_runnable_block_of_the_docs_runs(text, tmp_path):
    env = {**os.environ, "PROJECT_ROOT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    for argv in commands(text):
        cmd = fast(argv)
        result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{shlex.join(argv)} exited {result.returncode}:\n{result.stderr[-3000:]}"


def test_the_readme_runs_its_own_commands():
    """The README's commands for a table, an own net, an optimizer and scheduler, and a search are runnable blocks."""
    runnable = "\n".join(text for line, info, text in fenced_blocks(ROOT / "README.md") if RUN_INFO.match(info))
    for needed in ("data=csv", "model=my_net", "optimizer=", "scheduler=", "-m hparams_search="):
        assert needed in runnable, f"README.md has no runnable block with {needed!r}"
    readme = (ROOT / "README.md").read_text()
    assert "make train" in readme and "make test" in readme
    assert len(readme.splitlines()) <= 300, "README.md is the short guide; the reference goes in docs/"


def test_the_fast_mode_replaces_what_a_command_sets():
    argv = fast(["python", "src/train.py", "-m", "hparams_search=digits_optuna", "trainer.max_epochs=10"])
    assert argv[:2] == [sys.executable, str(ROOT / "src" / "train.py")]
    assert "trainer.max_epochs=10" not in argv and "trainer.max_epochs=1" in argv
    assert argv[-1] == SEARCH_TRIALS
    assert commands("python a.py x=1 \\\n    y=2  # note\n# comment\n") == [["python", "a.py", "x=1", "y=2"]]


def documented_commands() -> list:
    """Every ``python src/<script>.py ...`` line of a ``bash`` block in README.md and docs/ (runnable or not), less
    those with a placeholder (``<run>``, ``$VAR``): ``(where, config name, overrides)``."""
    found = []
    for path in PAGES:
        for line, info, text in fenced_blocks(path):
            if info.split()[:1] != ["bash"]:
                continue
            for argv in commands(text):
                scripts = [i for i, a in enumerate(argv) if re.fullmatch(r"src/(train|eval|predict)\.py", a)]
                if not scripts or any("<" in a or "$" in a for a in argv):
                    continue
                name = Path(argv[scripts[0]]).stem
                overrides = [a for a in argv[scripts[0] + 1 :] if a not in ("-m", "--multirun")]
                found.append(pytest.param(name, overrides, id=f"{path.relative_to(ROOT)}:{line}:{shlex.join(argv)}"))
    return found


@pytest.mark.parametrize(("name", "overrides"), documented_commands())
def test_a_documented_command_composes(name, overrides):
    """Every documented command's groups, options and keys exist: a renamed one fails here, not in a user's hands.
    A sweep composes once per value of each swept key, the other swept keys at their first value."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from recipe.cli.config import compose_config

    fixed, swept = [], []
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.is_sweep_override():
            prefix = {"ADD": "+", "FORCE_ADD": "++", "DEL": "~"}.get(override.type.name, "")
            interval = override.value_type.name == "INTERVAL_SWEEP"  # a search's range: composed at its start
            values = [override.value().start] if interval else override.sweep_string_iterator()
            swept.append([f"{prefix}{override.key_or_group}={v}" for v in values])
        else:
            fixed.append(override.input_line)
    firsts = [values[0] for values in swept]
    compose_config(*fixed, *firsts, config_name=name)
    for i, values in enumerate(swept):
        for value in values[1:]:
            compose_config(*fixed, *firsts[:i], value, *firsts[i + 1 :], config_name=name)


def test_the_site_builds_strictly(tmp_path):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip("mkdocs and mkdocs-material are not installed: pip install -e '.[docs]'")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def nav_pages(nav) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in nav_pages(item)]
    return [page for value in nav.values() for page in nav_pages(value)]


def test_every_docs_page_is_in_the_nav():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    listed = set(nav_pages(config["nav"]))
    pages = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert pages - listed == set(), "docs pages missing from mkdocs.yml's nav"
    assert listed - pages == set(), "mkdocs.yml's nav names pages that do not exist"


@pytest.mark.parametrize(
    "page",
    sorted(p for p in (ROOT / "docs" / "measurements").glob("*.md") if p.name != "index.md"),
    ids=lambda p: p.stem,
)
def test_a_measurement_page_names_the_benchmark_that_made_it(page):
    """A page written by benchmarks/pages.py: a title, then 'Made by `python benchmarks/<script> ...` on <machine>'."""
    lines = page.read_text().splitlines()
    assert lines[0].startswith("# ") and lines[1] == ""
    made_by = re.match(r"Made by `python (benchmarks/\w+\.py)[^`]*` on .+, \d{4}-\d{2}-\d{2}\.$", lines[2])
    if made_by is None:  # a placeholder until its script has run
        assert "python benchmarks/" in page.read_text(), f"{page.name}: no benchmark command"
        return
    assert (ROOT / made_by.group(1)).exists(), f"{page.name}: {made_by.group(1)} does not exist"
