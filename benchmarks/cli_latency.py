"""How long a command takes to answer a mistake or ``--help``, against importing torch and Lightning.

    python benchmarks/cli_latency.py               # 5 rounds; writes docs/measurements/cli_latency.md
    python benchmarks/cli_latency.py --rounds 3

Each round runs every command once, back to back, in the order below, so that the machine's load falls on all of
them alike; the table shows the median over rounds and its ratio to the median of ``import torch, lightning``. The
goal is a third of it or less: such commands are answered from Hydra and OmegaConf before torch loads. It prints
the table and never fails on speed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from pages import write_page

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    'python -c "import torch, lightning"': [sys.executable, "-c", "import torch, lightning"],
    "python src/train.py optimizer=adamx": [sys.executable, "src/train.py", "optimizer=adamx"],
    "python src/train.py optimizer.lr=abc": [sys.executable, "src/train.py", "optimizer.lr=abc"],
    "python src/train.py trainer.max_epohs=3": [sys.executable, "src/train.py", "trainer.max_epohs=3"],
    "python src/train.py --help": [sys.executable, "src/train.py", "--help"],
}
EXPECTED_EXIT = {"python src/train.py --help": 0, 'python -c "import torch, lightning"': 0}  # the others: 2


def timed(argv: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    return time.perf_counter() - start, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):
        for name, argv in COMMANDS.items():
            seconds, code = timed(argv)
            if code != EXPECTED_EXIT.get(name, 2):
                raise SystemExit(f"{name} exited {code}, expected {EXPECTED_EXIT.get(name, 2)}")
            times[name].append(seconds)
    imports = statistics.median(times['python -c "import torch, lightning"'])
    rows = ["| command | median | range | / import torch, lightning |", "|---|---:|---:|---:|"]
    for name, values in times.items():
        median = statistics.median(values)
        spread = f"{min(values):.2f} to {max(values):.2f} s"
        rows.append(f"| `{name}` | {median:.2f} s | {spread} | {median / imports:.2f} |")
    table = "\n".join(rows)
    print(table)
    body = (
        f"Each command {args.rounds} times, interleaved (`benchmarks/cli_latency.py`). A typo, a bad value and "
        "`--help` are answered from Hydra and OmegaConf before torch loads; the goal is at most a third of the "
        "imports' time.\n\n" + table
    )
    write_page("cli_latency", "Time to answer", body)


if __name__ == "__main__":
    main()
