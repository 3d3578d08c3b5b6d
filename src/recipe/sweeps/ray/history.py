"""The best PBT member's history, read from Tune's PBT log (``pbt_policy_<trial id>.txt``), and the plain run that
replays it: which values it trained with from which epoch, as a piecewise schedule (``recipe.sweeps.ray.replay``)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from recipe.sweeps.ray.space import trial_values
from recipe.sweeps.report import markdown_table

HISTORY_FILE = "pbt_history.md"
REPLAY = "+callbacks.pbt_replay._target_=recipe.sweeps.ray.replay.PiecewiseValues"


def member_history(experiment: Path, trial_id: str, config: Mapping[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """``(epoch, values)`` from which the member trained with ``values``: its lineage's first config from epoch 0,
    then each exploit's new config from the epoch its donor had reached. ``config``: the member's last config."""
    path = experiment / f"pbt_policy_{trial_id}.txt"
    exploits = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    if not exploits:
        return [(0, trial_values(config))]
    # each line: [member tag, donor tag, member's epoch, donor's epoch, donor's config, new config]
    return [(0, trial_values(exploits[0][4])), *((int(e[3]), trial_values(e[5])) for e in exploits)]


def replay_command(
    history: list[tuple[int, dict[str, Any]]], mutated: list[str], overrides: Callable[[Mapping[str, Any]], list[str]]
) -> str:
    """The ``python src/train.py`` line that trains the history from scratch: the first values as overrides, and the
    mutated keys' later values switched by ``PiecewiseValues`` at their epochs."""
    schedule = ",".join(
        f"{epoch}:{{{','.join(f'{k}:{values[k]!r}' for k in mutated if k in values)}}}" for epoch, values in history
    )
    line = [*overrides(history[0][1]), REPLAY, f"+callbacks.pbt_replay.schedule={{{schedule}}}"]
    return shlex.join(["python", "src/train.py", *line])


def write_history(
    folder: Path, number: int, value: float, history: list[tuple[int, dict[str, Any]]], mutated: list[str], command: str
) -> Path:
    """Write ``pbt_history.md``: the best member's values by epoch and the command that replays them."""
    lines = [
        f"# The best PBT member: trial {number}, {value:.4f}",
        "",
        "The values it trained with, from the epoch each took effect (exploits copy a better member's checkpoint):",
        "",
        markdown_table([{"from epoch": epoch, **{k: values.get(k) for k in mutated}} for epoch, values in history]),
        "A plain run that trains with this schedule from scratch (no copied weights):",
        "",
        "```bash",
        command,
        "```",
        "",
    ]
    path = folder / HISTORY_FILE
    path.write_text("\n".join(lines))
    return path
