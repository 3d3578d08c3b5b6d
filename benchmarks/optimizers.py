"""Each optimizer at its own best LR: a log grid around the LR its yaml gives (seed 0, the best by validation
accuracy), then several seeds at that LR. Prints a markdown table (best LR, test accuracy mean ± std, wall time per
run) and can save a figure of validation accuracy against LR (how forgiving each optimizer is).

OMP_NUM_THREADS=1 .venv/bin/python benchmarks/optimizers.py [--experiment digits_mlp] [--grid 5] [--seeds 3]
    [--figure docs/optimizers.png] [--set key=value ...] [optimizer ...]

The grid multiplies the yaml's LR (and Muon's ``adamw_lr``) by 10^(k/2), k = -(grid // 2) .. grid // 2. Schedule-free
optimizers train with ``scheduler=constant``, the others with the experiment's schedule. ``--set`` passes overrides
on, e.g. ``--set data=npz data.path=my.npz`` for your own data.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from matplotlib.figure import Figure
from omegaconf import open_dict

from recipe.config import PROJECT_ROOT, compose_config

sys.path.insert(0, str(PROJECT_ROOT / "src"))  # src/train.py
from train import train

QUIET = ["~callbacks.progress_bar", "~callbacks.model_summary", "~logger", "~callbacks.lr_monitor"]
CONSTANT = ("schedulefree_adamw", "schedulefree_sgd")


def run(experiment: str, optimizer: str, factor: float, seed: int, overrides: list[str]) -> tuple[float, float, float]:
    """Validation accuracy (best epoch), test accuracy and wall seconds of one run."""
    with tempfile.TemporaryDirectory() as out:
        schedule = ["scheduler=constant"] if optimizer in CONSTANT else []
        paths = [f"paths.output_dir={out}", f"paths.log_dir={out}"]
        cfg = compose_config(
            f"experiment={experiment}", f"optimizer={optimizer}", f"seed={seed}", *schedule, *paths, *QUIET, *overrides
        )
        with open_dict(cfg):
            cfg.optimizer.lr *= factor
            if "adamw_lr" in cfg.optimizer:
                cfg.optimizer.adamw_lr *= factor
        start = time.perf_counter()
        metrics = train(cfg)
        return float(metrics["val/acc_best"]), float(metrics["test/acc"]), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("optimizers", nargs="*", help="default: every yaml in conf/optimizer/")
    parser.add_argument("--experiment", default="digits_mlp")
    parser.add_argument("--grid", type=int, default=5, help="LRs tried, half a decade apart")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--figure", type=Path, help="save validation accuracy against LR here")
    parser.add_argument("--set", nargs="*", default=[], help="more overrides")
    args = parser.parse_args()
    names = args.optimizers or sorted(p.stem for p in (PROJECT_ROOT / "conf" / "optimizer").glob("*.yaml"))
    factors = [10 ** (k / 2) for k in range(-(args.grid // 2), args.grid // 2 + 1)]
    figure = Figure(figsize=(6.4, 4.8), layout="constrained")
    ax = figure.subplots()
    print(f"| optimizer | best lr | test accuracy ({args.seeds} seeds) | time per run |")
    print("|---|---|---|---|")
    for name in names:
        base_lr = compose_config(f"optimizer={name}").optimizer.lr
        grid = {f: run(args.experiment, name, f, 0, args.set) for f in factors}
        best = max(grid, key=lambda f: grid[f][0])
        runs = [grid[best], *(run(args.experiment, name, best, s, args.set) for s in range(1, args.seeds))]
        accs = [100 * test for _, test, _ in runs]
        spread = f" ± {statistics.stdev(accs):.1f}" if len(accs) > 1 else ""
        seconds = statistics.mean(t for _, _, t in runs)
        row = f"| `{name}` | {base_lr * best:.2g} | {statistics.mean(accs):.1f}{spread}% | {seconds:.0f} s |"
        print(row, flush=True)
        ax.plot([base_lr * f for f in factors], [100 * grid[f][0] for f in factors], marker="o", label=name)
    if args.figure:
        ax.set(xscale="log", xlabel="learning rate", ylabel="validation accuracy (%, seed 0)", title=args.experiment)
        ax.legend(fontsize="small")
        figure.savefig(args.figure, dpi=100)


if __name__ == "__main__":
    main()
