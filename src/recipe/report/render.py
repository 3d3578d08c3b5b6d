"""The run as pictures and a table: ``curves.png``, ``report.md`` and the terminal summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import rich
from matplotlib.figure import Figure
from rich.table import Table

from recipe.report.verdict import Verdict

SCORES = ("acc", "mae")  # the second curve: accuracy (classification) or mean absolute error (regression)
MAX_ROWS = 12  # longer runs show their first and last epochs


def score(epochs: Sequence[Mapping[str, float]]) -> str:
    """The metric shown beside the loss: the first of ``SCORES`` the run logged."""
    return next((m for m in SCORES if any(f"val/{m}" in e for e in epochs)), SCORES[0])


def columns(epochs: Sequence[Mapping[str, float]]) -> tuple[str, ...]:
    metric = score(epochs)
    return ("train/loss", "val/loss", f"train/{metric}", f"val/{metric}")


def plot_curves(epochs: Sequence[Mapping[str, float]], lrs: Sequence[tuple[int, float]], path: Path) -> None:
    """Train vs val loss, train vs val accuracy or MAE (per epoch) and the LR (per optimizer step), side by side."""
    fig = Figure(figsize=(15, 4))  # no pyplot: no GUI backend, no global figure state
    # fixed margins and light PNG compression: cheaper than a constrained layout and the default compression,
    # and a sweep draws one plot per trial
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.13, top=0.91, wspace=0.22)
    axes = fig.subplots(1, 3)
    for ax, metric in zip(axes[:2], ("loss", score(epochs)), strict=True):
        for stage, style in (("train", "-o"), ("val", "-s")):
            points = [(e["epoch"], e[f"{stage}/{metric}"]) for e in epochs if f"{stage}/{metric}" in e]
            if points:
                ax.plot(*zip(*points, strict=True), style, markersize=3, label=stage)
        ax.set(xlabel="epoch", ylabel=metric, title=f"train vs val {metric}")
        ax.legend()
        ax.grid(alpha=0.3)
    if lrs:
        axes[2].plot(*zip(*lrs, strict=True))
    axes[2].set(xlabel="optimizer step", ylabel="learning rate", title="LR per step")
    axes[2].grid(alpha=0.3)
    fig.savefig(path, dpi=100, pil_kwargs={"compress_level": 1})


def _rows(epochs: Sequence[Mapping[str, float]]) -> list[Mapping[str, float] | None]:
    """Every epoch, or the first and last ones with ``None`` for the gap."""
    if len(epochs) <= MAX_ROWS:
        return list(epochs)
    half = MAX_ROWS // 2
    return [*epochs[:half], None, *epochs[-half:]]


def _cell(epoch: Mapping[str, float], key: str) -> str:
    value = epoch.get(key)
    if value is None:
        return ""
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.3g}"  # nan and inf print as themselves


def markdown(
    verdict: Verdict,
    epochs: Sequence[Mapping[str, float]],
    final_lr: float | None,
    notes: Sequence[str] = (),
    curves: bool = True,
) -> str:
    """``report.md``: the verdict with its fixes, the epoch table and (when ``curves``) the curves."""
    keys = columns(epochs)
    lines = [
        "# Run report",
        "",
        f"**Verdict: {verdict.name}** ({verdict.reason}).",
        "",
        "What to try:",
        *[f"- {fix}" for fix in verdict.fixes],
        "",
        *[f"{note}  " for note in notes],
        *([f"Final learning rate: {final_lr:.3g}", ""] if final_lr is not None else []),
        "| epoch | " + " | ".join(keys) + " |",
        "|---:|" + "---:|" * len(keys),
    ]
    for epoch in _rows(epochs):
        if epoch is None:
            lines.append("| ... |" + " |" * len(keys))
        else:
            lines.append(f"| {int(epoch['epoch'])} | " + " | ".join(_cell(epoch, k) for k in keys) + " |")
    lines += ["", *(["![curves](curves.png)", ""] if curves else [])]
    return "\n".join(lines)


def print_summary(verdict: Verdict, epochs: Sequence[Mapping[str, float]], report_path: Path) -> None:
    """The epoch table and the verdict in the terminal."""
    keys = columns(epochs)
    table = Table("epoch", *keys, title="run report")
    for epoch in _rows(epochs):
        table.add_row(
            *(
                ["..."] * (len(keys) + 1)
                if epoch is None
                else [str(int(epoch["epoch"])), *(_cell(epoch, k) for k in keys)]
            )
        )
    rich.print(table)
    rich.print(f"[bold]Verdict: {verdict.name}[/bold] ({verdict.reason}). Try: {'; '.join(verdict.fixes)}.")
    rich.print(f"Report: {report_path}")
