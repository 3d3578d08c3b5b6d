"""Mixed precision and torch.compile on one device: training throughput, peak memory and final accuracy.

    python benchmarks/precision.py                       # GPU: 32-true, bf16-mixed, 16-mixed x compile off/on
    python benchmarks/precision.py --device cpu          # CPU: 32-true, bf16-mixed x compile off/on
    python benchmarks/precision.py --hidden 512 512 --batch-size 128 --epochs 8

Every case trains the same recipe (``conf/train.yaml``: data, model, AdamW, warmup + cosine, clipping) through
``recipe.build.build`` and ``recipe.runtime.trainer.build_trainer``, only ``trainer.precision`` and ``compile``
change. Each case runs in a fresh process, so compile caches, CUDA memory and the peak RSS start clean.
Throughput counts training samples from the second epoch on (compilation and warm-up left out); speed and
memory are also given as ratios to the first row, the numbers to compare across machines.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from lightning.pytorch.callbacks import Callback
from pages import write_page

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(ROOT))

from recipe.build import build  # noqa: E402
from recipe.runtime.trainer import build_trainer  # noqa: E402


class EpochTimer(Callback):
    """Wall time and samples of the training batches from epoch ``skip`` on.

    Lightning's ``ThroughputMonitor`` synchronizes the GPU after every batch and counts the warm-up in its
    window; here the clock starts at the first batch of epoch ``skip`` and stops after the last batch,
    synchronizing only there, so the GPU queue stays full in between.

    Args:
        skip: epochs left out of the measurement (compilation, allocator and cuDNN warm-up).
    """

    def __init__(self, skip: int = 1) -> None:
        self.skip, self.samples, self.start, self.end = skip, 0, None, None

    @staticmethod
    def _now(trainer: L.Trainer) -> float:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if trainer.current_epoch >= self.skip and self.start is None:
            self.start = self._now(trainer)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.start is not None:
            self.samples += len(batch[1])
            last_epoch = trainer.current_epoch == trainer.max_epochs - 1
            if last_epoch and batch_idx == trainer.num_training_batches - 1:
                self.end = self._now(trainer)

    @property
    def samples_per_s(self) -> float:
        return self.samples / (self.end - self.start) if self.start and self.end else float("nan")


def run_case(args: argparse.Namespace) -> dict:
    """Train one case in this process and return its measurements."""
    on_gpu = args.device == "gpu"
    overrides = [
        f"trainer.accelerator={args.device}",
        "trainer.devices=1",
        f"trainer.precision={args.precision}",
        f"compile={args.compile}",
        f"model.hidden_sizes=[{','.join(map(str, args.hidden))}]",
        f"data.batch_size={args.batch_size}",
        f"trainer.max_epochs={args.epochs}",
        f"trainer.check_val_every_n_epoch={args.epochs}",  # validate once, at the end: not timed
        f"paths.output_dir={tempfile.mkdtemp()}",
    ]
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    L.seed_everything(cfg.seed, workers=True)
    datamodule, module = build(cfg)
    timer = EpochTimer()
    trainer = build_trainer(
        cfg.trainer,
        callbacks=[timer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(module, datamodule=datamodule)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    peak = torch.cuda.max_memory_allocated() if on_gpu else rss
    return {
        "precision": trainer.precision,
        "compile": args.compile,
        "samples_per_s": timer.samples_per_s,
        "peak_mib": peak / 2**20,
        "val_acc": float(trainer.callback_metrics["val/acc"]),
    }


def cases(device: str) -> list[tuple[str, bool]]:
    """The precisions that mean something on ``device``, each with torch.compile off and on."""
    precisions = ["32-true", "bf16-mixed"]
    if device == "gpu":
        precisions = ["32-true", *(["bf16-mixed"] if torch.cuda.is_bf16_supported() else []), "16-mixed"]
    return [(p, c) for p in precisions for c in (False, True)]


def print_table(rows: list[dict], device: str) -> None:
    """Print the table and write it to ``docs/measurements/precision_<device>.md``."""
    name = torch.cuda.get_device_name() if device == "gpu" else f"CPU ({os.cpu_count()} cores)"
    memory = "peak GPU memory" if device == "gpu" else "peak RSS"
    lines = [
        f"{name}, torch {torch.__version__}",
        "",
        f"| precision | compile | samples/s | speed | {memory} (MiB) | memory | val acc |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    base = rows[0]
    for r in rows:
        speed, mem = r["samples_per_s"] / base["samples_per_s"], r["peak_mib"] / base["peak_mib"]
        lines.append(
            f"| {r['precision']} | {'on' if r['compile'] else 'off'} | {r['samples_per_s']:,.0f}"
            f" | {speed:.2f}x | {r['peak_mib']:,.0f} | {mem:.2f}x | {r['val_acc']:.4f} |"
        )
    print("", *lines, sep="\n")
    write_page(f"precision_{device}", f"Precision and compile: {device.upper()}", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_device = "gpu" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", choices=["gpu", "cpu"], default=default_device)
    parser.add_argument("--hidden", type=int, nargs="+", help="MLP widths (default: GPU 4096x3, CPU 256x2)")
    parser.add_argument("--batch-size", type=int, help="global batch (default: GPU 512, CPU 64)")
    parser.add_argument("--epochs", type=int, default=None, help="default: GPU 40, CPU 4")
    parser.add_argument("--precision", help=argparse.SUPPRESS)  # set: run this one case (in a child process)
    parser.add_argument("--compile", type=lambda s: s == "True", default=False, help=argparse.SUPPRESS)
    args = parser.parse_args()
    gpu = args.device == "gpu"
    args.hidden = args.hidden or ([4096] * 3 if gpu else [256, 256])
    args.batch_size = args.batch_size or (512 if gpu else 64)
    args.epochs = args.epochs or (40 if gpu else 4)
    if args.precision:
        print(json.dumps(run_case(args)))
        return
    common = ["--device", args.device, "--hidden", *map(str, args.hidden)]
    common += ["--batch-size", str(args.batch_size), "--epochs", str(args.epochs)]
    rows = []
    for precision, compiled in cases(args.device):
        cmd = [sys.executable, __file__, *common, "--precision", precision, "--compile", str(compiled)]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            print(f"{precision} compile={compiled} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    if rows:
        print_table(rows, args.device)


if __name__ == "__main__":
    main()
