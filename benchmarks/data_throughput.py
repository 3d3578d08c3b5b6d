"""Samples per second and peak memory of each loader, against in-memory tensors of the same shape.

    OMP_NUM_THREADS=1 python benchmarks/data_throughput.py [--rows 300000] [--images 4000] [--limit-mb 16]

Generates a table (CSV and Parquet: float columns, a string column, an integer label) and a folder of PNG images
in a temporary folder, both larger than ``--limit-mb``, so that ``data.cache=auto`` streams them. Each loader runs
in a fresh process: ``setup`` (reading, fitting, decoding or writing the memory maps), then three epochs of the
training loader (the first starts the workers); it reports the seconds of setup and of the first epoch, the samples
per second of the fastest later epoch against in-memory tensors of the same shape (epochs interleaved), and its peak
resident memory (``ru_maxrss``, which counts the pages of a memory map it has touched; DataLoader workers apart).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pages import write_page

FLOATS, CLASSES, BATCH, IMAGE, EPOCHS = 30, 3, 256, 64, 4
ROW_GROUP = 65_536  # rows per Parquet row group, which the streamed reader reads one at a time

CASES = {  # name: (what, data module settings)
    "csv, cache=memory": ("table", {"path": "t.csv", "cache": "memory"}),
    "csv, cache=auto (streamed)": ("table", {"path": "t.csv", "cache": "auto"}),
    "csv, cache=auto (streamed), 2 workers": ("table", {"path": "t.csv", "cache": "auto", "num_workers": 2}),
    "parquet, cache=auto (streamed)": ("table", {"path": "t.parquet", "cache": "auto"}),
    "image folder, cache=memory": ("images", {"cache": "memory"}),
    "image folder, cache=auto (lazy), 0 workers": ("images", {"cache": "auto", "num_workers": 0}),
    "image folder, cache=auto (lazy), 2 workers": ("images", {"cache": "auto", "num_workers": 2}),
}


def generate(folder: Path, rows: int, images: int) -> None:
    """The table as CSV and Parquet, and a folder of ``images`` PNGs in ``CLASSES`` class folders."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from PIL import Image

    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, FLOATS)).round(4)
    columns = {f"f{i}": x[:, i] for i in range(FLOATS)}
    columns["colour"] = rng.choice(["red", "green", "blue", "grey"], rows)
    columns["label"] = x[:, :CLASSES].argmax(1)
    table = pa.table(columns)
    pacsv.write_csv(table, folder / "t.csv")
    pq.write_table(table, folder / "t.parquet", row_group_size=ROW_GROUP)  # streamed a row group at a time
    for i in range(images):
        label = i % CLASSES
        (folder / "images" / str(label)).mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (IMAGE + 8, IMAGE + 8, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / "images" / str(label) / f"{i}.png")


def datamodule(what: str, settings: dict, folder: Path, limit_mb: float):
    """The data module of a case."""
    from recipe.data import ImageFolderDataModule, TableDataModule

    common = {"batch_size": BATCH, "cache_limit_mb": limit_mb}
    if what == "table":
        rest = {k: v for k, v in settings.items() if k != "path"}
        return TableDataModule(str(folder / settings["path"]), target="label", **common, **rest)
    return ImageFolderDataModule(str(folder / "images"), image_size=IMAGE, augment=None, **common, **settings)


def epoch_s(loader) -> float:
    """Seconds of one pass over ``loader``."""
    start = time.perf_counter()
    for _ in loader:
        pass
    return time.perf_counter() - start


def measure(name: str, folder: Path, limit_mb: float) -> dict[str, float]:
    """In this process: setup and epochs of ``name``'s loader, its peak memory, then the same epochs from in-memory
    tensors of the same shape and type (gathered as ``data=synthetic`` does), for the ratio."""
    import torch
    from torch.utils.data import DataLoader

    from recipe.data.batched import BatchedTensorDataset, keep_batch

    dm = datamodule(*CASES[name], folder, limit_mb)
    start = time.perf_counter()
    dm.setup()
    setup_s = time.perf_counter() - start
    loader = dm.train_dataloader()
    first_s, x = epoch_s(loader), next(iter(loader))[0]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the tensors below
    rows = len(dm.datasets["train"])
    tensors = BatchedTensorDataset(torch.ones(rows, *x.shape[1:], dtype=x.dtype), torch.zeros(rows, dtype=torch.int64))
    reference = DataLoader(tensors, batch_size=BATCH, shuffle=True, collate_fn=keep_batch)
    pairs = [(epoch_s(loader), epoch_s(reference)) for _ in range(EPOCHS - 1)]  # interleaved: the same load on both
    best, best_reference = (min(times) for times in zip(*pairs, strict=True))
    del loader
    gc.collect()  # persistent workers end with their loader, so that their peak is counted
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"setup_s": setup_s, "first_s": first_s, "per_s": rows / best, "vs": best_reference / best,
            "peak_mb": peak, "workers_mb": workers}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--limit-mb", type=float, default=16.0, help="data.cache_limit_mb of every data module")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # run one case in this process
    parser.add_argument("--folder", help=argparse.SUPPRESS)  # alone: generate the data there
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args.case, Path(args.folder), args.limit_mb)))
        return
    if args.folder:
        generate(Path(args.folder), args.rows, args.images)
        return
    # this process stays small: a child's ru_maxrss starts from its parent's peak (Linux keeps it across exec)
    with tempfile.TemporaryDirectory(prefix="data-throughput-") as tmp:
        folder = Path(tmp)
        rows, images = f"--rows={args.rows}", f"--images={args.images}"
        subprocess.run([sys.executable, __file__, "--folder", tmp, rows, images], check=True)
        sizes = {p.name: p.stat().st_size / 2**20 for p in (folder / "t.csv", folder / "t.parquet")}
        decoded = args.images * 3 * IMAGE * IMAGE / 2**20
        lines = [
            f"table: {args.rows} rows x {FLOATS + 2} cols (csv {sizes['t.csv']:.0f} MB, parquet "
            f"{sizes['t.parquet']:.0f} MB); images: {args.images} PNGs, {decoded:.0f} MB as {IMAGE}x{IMAGE} RGB; "
            f"data.cache_limit_mb={args.limit_mb:g}; batch {BATCH}; training split, best of epochs 2-{EPOCHS}",
            "",
            "| loader | setup s | epoch 1 s | samples/s | vs tensors | peak MB | workers' peak MB |",
            f"|{'---|' * 7}",
        ]
        print(*lines, sep="\n")
        for name in CASES:
            cmd = [sys.executable, __file__, "--case", name, "--folder", tmp, f"--limit-mb={args.limit_mb}"]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode:
                raise SystemExit(f"{name}: failed\n{done.stderr[-3000:]}")
            r = json.loads(done.stdout.strip().splitlines()[-1])
            workers = f"{r['workers_mb']:.0f}" if r["workers_mb"] else "-"
            speed = f"{r['per_s']:,.0f} | {r['vs']:.3f}"
            lines.append(
                f"| {name} | {r['setup_s']:.2f} | {r['first_s']:.2f} | {speed} | {r['peak_mb']:.0f} | {workers} |"
            )
            print(lines[-1], flush=True)
    write_page("data_throughput", "Data throughput: in memory, streamed, lazy", "\n".join(lines))


if __name__ == "__main__":
    main()
