"""Finding and decoding the images of a folder with Pillow: one image, a file list, a class-folder layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from recipe.errors import ConfigError, config_error

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
MODES = {"rgb": "RGB", "grayscale": "L"}


def image_files(folder: Path) -> list[Path]:
    """Every image under ``folder`` (recursively), in a stable order."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def class_folders(folder: Path, key: str) -> dict[str, list[Path]]:
    """``{class name: its images}`` for a folder of class subfolders; a ``ConfigError`` for an empty class or no
    images at all."""
    if not folder.is_dir():
        what = "a file; give a folder of class subfolders" if folder.is_file() else "no such folder"
        raise config_error(key, str(folder), what)
    classes = {d.name: image_files(d) for d in sorted(folder.iterdir()) if d.is_dir() and not d.name.startswith(".")}
    if not classes:
        found = len(image_files(folder))
        raise config_error(key, str(folder), f"has no class subfolders ({found} images directly inside); "
                           "put each class's images in a subfolder named after it")  # fmt: skip
    empty = [name for name, files in classes.items() if not files]
    if len(empty) == len(classes):
        raise config_error(
            key, str(folder), f"no images ({', '.join(SUFFIXES)}) in its class folders {sorted(classes)}"
        )
    if empty:
        raise config_error(key, str(folder), f"class folder {empty[0]!r} holds no images ({', '.join(SUFFIXES)})")
    return classes


def decode(path: Path, mode: str, size: tuple[int, int]) -> np.ndarray:
    """The image at ``path`` as ``(channels, height, width)`` uint8, converted to ``mode`` and resized to ``size``;
    a ``ConfigError`` naming the file when Pillow cannot read it."""
    try:
        with Image.open(path) as image:
            image = image.convert(MODES[mode]).resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.array(image, dtype=np.uint8)  # a copy: torch wants writable arrays
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ConfigError(
            f"{path}: not a readable image ({type(err).__name__}); data.skip_corrupt=true skips such files"
        ) from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def readable(path: Path) -> bool:
    """Whether Pillow can decode the file (``verify`` checks its structure without decoding the pixels)."""
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return False
    return True
