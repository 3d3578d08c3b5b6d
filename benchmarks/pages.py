"""The docs page a benchmark writes: its tables and figures, under a line naming the command that made them, the
machine it ran on and the day, so that no measurement in the docs is typed by hand or loses where it came from.

    from pages import write_page
    write_page("cli_latency", "Time to answer", body_markdown)   # docs/measurements/cli_latency.md
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import shlex
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = DOCS / "measurements"


def machine() -> str:
    """The machine in words: CPU cores, memory, accelerator, OS and Python, torch when it is loaded."""
    cores = os.cpu_count()
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        mem = f", {memory:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        mem = ""
    parts = [f"{cores} CPU cores{mem}", f"{platform.system()} {platform.machine()}"]
    parts.append(f"Python {platform.python_version()}")
    torch = sys.modules.get("torch")
    if torch is not None:
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
        parts += [f"torch {torch.__version__}", gpu]
    return ", ".join(parts)


def command() -> str:
    """The command line that is running, as a user would type it from the project root."""
    script = Path(sys.argv[0])
    with contextlib.suppress(ValueError):  # a script outside the project keeps its path
        script = script.resolve().relative_to(DOCS.parent)
    return shlex.join(["python", str(script), *sys.argv[1:]])


def write_page(name: str, title: str, body: str) -> Path:
    """Write ``docs/measurements/<name>.md``: ``title``, where the figures came from, then ``body`` (markdown).
    Figures the body links to are expected beside it, in ``docs/measurements/``."""
    PAGES.mkdir(parents=True, exist_ok=True)
    stamp = f"Made by `{command()}` on {machine()}, {datetime.date.today().isoformat()}."
    page = PAGES / f"{name}.md"
    page.write_text(f"# {title}\n\n{stamp}\n\n{body.strip()}\n")
    print(f"wrote {page}")
    return page
