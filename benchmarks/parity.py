"""Per-epoch time of the template against a hand-written PyTorch loop doing the same work.

    python benchmarks/parity.py                      # both cases, 5 interleaved runs each after a warm-up
    python benchmarks/parity.py --case digits_mlp --runs 3
    python benchmarks/parity.py --case digits_mlp --profile    # also: where a template epoch goes
    python benchmarks/parity.py --widths 64 256 1024 2048 --runs 3  # the MLP's ratios against width: a figure

Both sides train the same network (built by ``recipe.build.build`` from the same seed), on the same tensors,
with the same batch size, optimizer, schedule, gradient clipping, label smoothing and augmentation, for the same
epochs, and evaluate on the validation split every epoch. The raw loop indexes the in-memory tensors directly,
the fastest way to write it by hand; the template is ``train.train``, with every callback and logger of
``conf/callbacks/default.yaml`` on, exactly as ``src/train.py`` runs it. Two more columns show the template
without its callbacks and logger, and plain Lightning (``PlainModule``: the same net, optimizer and schedule
through a bare ``Trainer``, with ``self.log`` each step as most LightningModules have it). Runs alternate
A B A B; the per-epoch time of a run is the median over its epochs after the first; the table shows the median
over runs. Precision is ``32-true`` on both sides. With ``--profile``, one more template run under Lightning's
``SimpleProfiler`` shows where its epoch goes, hook by hook and callback by callback. The page also counts the
template's callbacks and the callback hooks Lightning calls at each training step, with the idle ones skipped
(``recipe.runtime.step_hooks``) and as Lightning alone would call them. It prints tables and never fails on speed.
"""

from __future__ import annotations

import argparse
import itertools
import math
import re
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

import lightning as L
import torch
from clocks import EpochClock
from matplotlib.figure import Figure
from pages import PAGES, write_page
from torch import nn

from recipe.build import build
from recipe.cli.config import PROJECT_ROOT, compose_config
from recipe.optim import build_optimizer, build_scheduler
from recipe.optim.schedulers import RunLength
from recipe.runtime.step_hooks import count_hook_calls

sys.path.insert(0, str(PROJECT_ROOT / "src"))  # src/train.py, the template side
from train import train

# The Lightning loop and the LightningModule alone: what the callbacks and the logger add shows against it.
BARE = ["~callbacks", "~logger", "+trainer.enable_checkpointing=false", "trainer.enable_progress_bar=false"]
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # every side runs on it (the Trainer's accelerator=auto)
SCRATCH = tempfile.TemporaryDirectory(ignore_cleanup_errors=True)  # run folders, removed at exit
CASES = {"digits_mlp": ["data=digits", "model=mlp"], "mnist1d_cnn": ["experiment=mnist1d_cnn"]}


def per_epoch(stamps: list[float]) -> float:
    """Median epoch time, leaving out the first epoch (lazy set-up)."""
    return statistics.median(b - a for a, b in itertools.pairwise(stamps[1:]))


def template_run(overrides: list[str], observers: tuple[L.Callback, ...] = ()) -> tuple[float, float]:
    clock = EpochClock()
    tmp = tempfile.mkdtemp(dir=SCRATCH.name)
    cfg = compose_config(f"paths.output_dir={tmp}", f"paths.log_dir={tmp}", *overrides)
    metrics = train(cfg, [clock, *observers])
    return per_epoch(clock.stamps), metrics["train/loss"]


class PlainModule(L.LightningModule):
    """Plain Lightning as most people write it: the same net, loss, optimizer and schedule, ``self.log`` of the
    loss every step and of the accuracy every validation step, no torchmetrics."""

    def __init__(self, module: L.LightningModule, steps: int) -> None:
        super().__init__()
        self.net, self.criterion, self.steps = module.net, module.criterion, steps
        self.optimizer_spec, self.scheduler_spec = module.optimizer_spec, module.scheduler_spec

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.criterion(self.net(x), y)
        self.log("train/loss", loss, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val/acc", (self.net(x).argmax(1) == y).float().mean())

    def configure_optimizers(self) -> dict:
        optimizer = build_optimizer(self.net, self.optimizer_spec)
        run = RunLength(self.steps * self.trainer.max_epochs, self.steps)
        return {"optimizer": optimizer, "lr_scheduler": build_scheduler(optimizer, self.scheduler_spec, run)}


def plain_lightning_run(overrides: list[str]) -> tuple[float, float]:
    """The same training through a bare ``lightning.Trainer`` and ``PlainModule``."""
    cfg = compose_config("paths.output_dir=unused", *overrides)
    L.seed_everything(cfg.seed)
    datamodule, module = build(cfg)
    datamodule.setup("fit")
    clock = EpochClock()
    trainer = L.Trainer(
        max_epochs=cfg.trainer.max_epochs,
        gradient_clip_val=cfg.trainer.gradient_clip_val,
        precision="32-true",
        callbacks=[clock],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    steps = math.ceil(len(datamodule.datasets["train"]) / datamodule.batch_size)
    trainer.fit(PlainModule(module, steps), datamodule=datamodule)
    return per_epoch(clock.stamps), float(trainer.callback_metrics["train/loss_epoch"])


def raw_run(overrides: list[str]) -> tuple[float, float]:
    """The same training written as a plain PyTorch loop."""
    cfg = compose_config("paths.output_dir=unused", *overrides)
    L.seed_everything(cfg.seed)
    datamodule, module = build(cfg)
    net, batch_size, epochs = module.net.to(DEVICE), datamodule.batch_size, cfg.trainer.max_epochs
    x_train, y_train = (t.to(DEVICE) for t in datamodule.datasets["train"].tensors)
    x_val, y_val = (t.to(DEVICE) for t in datamodule.datasets["val"].tensors)
    steps = math.ceil(len(x_train) / batch_size)
    optimizer = build_optimizer(net, module.optimizer_spec)
    schedule = build_scheduler(optimizer, module.scheduler_spec, RunLength(steps * epochs, steps))["scheduler"]
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.module.label_smoothing)
    augment, clip = getattr(datamodule, "augment", None), cfg.trainer.gradient_clip_val
    stamps = []
    for _ in range(epochs):
        stamps.append(time.perf_counter())
        net.train()
        total = torch.zeros((), device=DEVICE)
        for idx in torch.randperm(len(x_train), device=DEVICE).split(batch_size):
            x, y = x_train[idx], y_train[idx]
            if augment is not None:
                x = augment(x)
            loss = criterion(net(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                nn.utils.clip_grad_norm_(net.parameters(), clip)
            optimizer.step()
            schedule.step()
            total += loss.detach() * len(y)
        net.eval()
        with torch.no_grad():
            val_correct = sum(
                int((net(x).argmax(1) == y).sum()) for x, y in zip(x_val.split(256), y_val.split(256), strict=True)
            )
        train_loss, val_acc = float(total) / len(x_train), val_correct / len(x_val)  # float(): waits for the device
    stamps.append(time.perf_counter())
    del val_acc
    return per_epoch(stamps), train_loss


class ProfileGrab(L.Callback):
    """Keeps what Lightning's ``SimpleProfiler`` recorded, before the Trainer tears it down."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.durations = {action: sum(times) for action, times in trainer.profiler.recorded_durations.items()}


def print_profile(case: str, overrides: list[str], epochs: int, top: int = 16) -> list[str]:
    """Where a template epoch goes, by Lightning's ``SimpleProfiler``: each hook and loop stage (nested ones
    include their children: ``run_training_batch`` holds ``optimizer_step``, which holds ``training_step`` and
    ``backward``), each callback's hooks summed per callback class."""
    grab = ProfileGrab()
    profiler = [  # its report goes to a file in the scratch folder, not the terminal
        "+trainer.profiler._target_=lightning.pytorch.profilers.SimpleProfiler",
        f"+trainer.profiler.dirpath={tempfile.mkdtemp(dir=SCRATCH.name)}",
        "+trainer.profiler.filename=profile",
    ]
    template_run([*overrides, *profiler], (grab,))
    totals: dict[str, float] = {}
    for action, seconds in grab.durations.items():
        name = re.sub(r"^\[Callback\](\w+).*", r"[Callback]\1 (all hooks)", action)
        totals[name] = totals.get(name, 0.0) + seconds
    lines = [
        f"{case}: where a template epoch goes (SimpleProfiler, {epochs} epochs, profiler overhead included)",
        "",
        "| action | ms per epoch |",
        "|---|---:|",
    ]
    for name, seconds in sorted(totals.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"| `{name}` | {seconds / epochs * 1e3:.1f} |")
    print("", *lines, sep="\n")
    return lines


class CallbackCount(L.Callback):
    """Keeps how many callbacks the trainer has."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.callbacks = len(trainer.callbacks)


def hook_counts(overrides: list[str]) -> list[str]:
    """The template's callbacks and the callback hook calls a training step, idle ones skipped and not."""
    per_step, counter = {}, CallbackCount()
    for skipping in (True, False):
        calls_idle = nullcontext() if skipping else mock.patch("recipe.runtime.trainer.skip_idle_step_hooks")
        with count_hook_calls() as calls, calls_idle:
            template_run(overrides, (counter,))
        per_step[skipping] = (sum(calls.values()) - calls["steps"]) / calls["steps"]
    return [
        f"{counter.callbacks} callbacks (this page's clock and counter included): Lightning calls "
        f"{per_step[True]:.0f} of their hooks a training step, those with work to do "
        f"({per_step[False]:.0f} with the idle ones, as Lightning alone calls them)."
    ]


def measure(overrides: list[str], runs: int) -> dict[str, list[tuple[float, float]]]:
    """``(per-epoch seconds, final train loss)`` of each side, ``runs`` interleaved runs after a warm-up."""
    template_run(overrides), raw_run(overrides)  # warm-up: imports, caches, allocator
    results = {"raw": [], "template": [], "bare": [], "plain": []}
    for _ in range(runs):
        results["raw"].append(raw_run(overrides))
        results["template"].append(template_run(overrides))
        results["bare"].append(template_run([*overrides, *BARE]))
        results["plain"].append(plain_lightning_run(overrides))
    return results


def ratio(times: dict[str, list[float]], side: str, base: str) -> list[float]:
    """``side`` over ``base``, run by run (runs were interleaved, so each pair shared the machine's state)."""
    return [t / b for t, b in zip(times[side], times[base], strict=True)]


def spread(ratios: list[float]) -> str:
    """The median and the range: ``1.05 (0.98 to 1.12)``."""
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f} to {max(ratios):.2f})"


def width_figure(widths: list[int], runs: int, epochs: int, path: Path) -> None:
    """Template / raw and plain Lightning / raw per-epoch time of the digits MLP against its hidden width."""
    rows = []
    for width in widths:
        overrides = [*CASES["digits_mlp"], f"model.hidden_sizes=[{width},{width}]", f"trainer.max_epochs={epochs}"]
        results = measure([*overrides, "trainer.precision=32-true", "test=false"], runs)
        times = {name: [t for t, _ in values] for name, values in results.items()}
        raw = statistics.median(times["raw"]) * 1e3
        against_plain = ratio(times, "template", "plain")
        rows.append(
            (width, raw, *(statistics.median(ratio(times, n, "raw")) for n in ("template", "plain")), against_plain)
        )
    lines = [
        f"digits MLP, two hidden layers: per-epoch time against width, median of {runs} interleaved runs",
        "",
        "| width | raw loop | template / raw | plain Lightning / raw | template / plain (range) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for width, raw, template, plain, against_plain in rows:
        lines.append(f"| {width} | {raw:.1f} ms | {template:.2f} | {plain:.2f} | {spread(against_plain)} |")
    print("", *lines, sep="\n")
    figure = Figure(figsize=(6, 4), layout="constrained")
    ax = figure.subplots()
    ax.plot([r[0] for r in rows], [r[2] for r in rows], "o-", label="template / raw loop")
    ax.plot([r[0] for r in rows], [r[3] for r in rows], "s-", label="plain Lightning / raw loop")
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set(xscale="log", xlabel="hidden width (digits MLP, 2 layers)", ylabel="per-epoch time ratio")
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.legend()
    figure.savefig(path, dpi=90)
    if path.resolve().parent == PAGES.resolve():
        alt = "template / raw and plain Lightning / raw per-epoch time against the MLP's width"
        lines += ["", f"![{alt}]({path.name})"]
    write_page("parity_width", "Per-epoch overhead against width", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="also profile one template run (SimpleProfiler)")
    parser.add_argument("--widths", type=int, nargs="*", help="instead: the digits MLP at these hidden widths")
    parser.add_argument("--figure", type=Path, default=PAGES / "parity_width.png", help="with --widths")
    args = parser.parse_args()
    if args.widths:
        width_figure(args.widths, args.runs, args.epochs, args.figure)
        return
    rows, profiles = [], []
    for case in CASES if args.case == "all" else [args.case]:
        overrides = [*CASES[case], f"trainer.max_epochs={args.epochs}", "trainer.precision=32-true", "test=false"]
        results = measure(overrides, args.runs)
        times = {name: [t for t, _ in runs] for name, runs in results.items()}
        ratios = {n: ratio(times, n, "raw") for n in ("template", "bare", "plain")}
        ratios["template / plain"] = ratio(times, "template", "plain")
        loss_gap = abs(results["template"][-1][1] - results["raw"][-1][1])
        rows.append((case, *(statistics.median(times[n]) * 1e3 for n in results), ratios, loss_gap))
        if args.profile:
            profiles += ["", *print_profile(case, overrides, args.epochs)]
    lines = [
        f"per-epoch time on {DEVICE}, median of {args.runs} interleaved runs "
        f"({args.epochs} epochs, the first left out)",
        "",
        "| case | raw loop | template | ratio (range) | template without callbacks and logger | ratio "
        "| plain Lightning | ratio | template / plain (range) | loss gap |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case, raw, tpl, bare, plain, ratios, gap in rows:
        full, against_plain = ratios["template"], ratios["template / plain"]
        bare_ratio, plain_ratio = statistics.median(ratios["bare"]), statistics.median(ratios["plain"])
        lines.append(
            f"| {case} | {raw:.1f} ms | {tpl:.1f} ms | {spread(full)} | {bare:.1f} ms | {bare_ratio:.2f} "
            f"| {plain:.1f} ms | {plain_ratio:.2f} | {spread(against_plain)} | {gap:.4f} |"
        )
    counts = hook_counts(overrides)
    print("", *lines, "", *counts, sep="\n")
    write_page(f"parity_{DEVICE}", f"Per-epoch overhead: {DEVICE}", "\n".join([*lines, "", *counts, *profiles]))


if __name__ == "__main__":
    main()
