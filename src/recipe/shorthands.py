"""Command-line shorthands Hydra's grammar cannot express: ``lr_find=true`` for ``lr_find.enabled=true``.

``lr_find`` is a config group (its knobs live in ``conf/lr_find/default.yaml``), and Hydra reads ``true`` as
a boolean, which it refuses as a group choice; so the shorthand is rewritten before Hydra parses the line.
"""

from __future__ import annotations

from collections.abc import Sequence

SHORTHANDS = {"lr_find": "lr_find.enabled"}
BOOLEANS = {"true", "false"}


def expand_shorthands(args: Sequence[str]) -> list[str]:
    """``lr_find=true`` (or ``true,false`` in a sweep) becomes ``lr_find.enabled=true``; the rest is kept."""
    expanded = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key in SHORTHANDS and set(value.lower().split(",")) <= BOOLEANS:
            arg = f"{SHORTHANDS[key]}={value}"
        expanded.append(arg)
    return expanded
