"""Run each experiment over 3 seeds and print test accuracy (mean ± std) next to the MNIST-1D paper, with wall time.

.venv/bin/python benchmarks/experiments.py [experiment ...]
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from pages import write_page

ROOT = Path(__file__).resolve().parents[1]
PAPER = {"mnist1d_mlp": "68% (MLP)", "mnist1d_cnn": "94% (CNN)", "mnist1d_transformer": "91% (GRU)", "digits_cnn": "-"}
SEEDS = (0, 1, 2)
QUIET = ["~callbacks.progress_bar", "~callbacks.model_summary"]


def run(experiment: str, seed: int) -> tuple[float, float]:
    """Test accuracy and wall seconds of ``python src/train.py experiment=<experiment> seed=<seed>``."""
    start = time.perf_counter()
    cmd = [sys.executable, str(ROOT / "src" / "train.py"), f"experiment={experiment}", f"seed={seed}", *QUIET]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True).stdout
    seconds = time.perf_counter() - start
    match = re.search(r"test/acc\s*│\s*([0-9.]+)", out)
    if match is None:
        raise RuntimeError(f"no test/acc in the output of {' '.join(cmd)}")
    return float(match.group(1)), seconds


def main(experiments: list[str]) -> None:
    lines = ["| experiment | test accuracy (3 seeds) | paper | wall time per run |", "|---|---|---|---|"]
    print(*lines, sep="\n")
    for name in experiments:
        accs, times = zip(*(run(name, seed) for seed in SEEDS), strict=True)
        mean, std = 100 * statistics.mean(accs), 100 * statistics.stdev(accs)
        paper, seconds = PAPER.get(name, "-"), statistics.mean(times)
        lines.append(f"| `{name}` | {mean:.1f} ± {std:.1f}% | {paper} | {seconds:.0f} s |")
        print(lines[-1], flush=True)
    write_page("experiments", "Experiments over three seeds", "\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:] or [n for n in PAPER if (ROOT / "conf" / "experiment" / f"{n}.yaml").exists()])
