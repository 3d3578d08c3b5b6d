"""Command-line overrides checked before Hydra runs the task: an option name a config group does not have, or a
key no config holds, is one line naming the key, the value and what is allowed, and exit code 2. Hydra reports
these itself with a screenful (the search path, the struct error, ``HYDRA_FULL_ERROR``) or a traceback."""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Override, RangeSweep
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from recipe.cli.console import print_error
from recipe.errors import config_error

# the flags a run may carry; with any other of Hydra's (--help, --cfg, --config-name) the check is Hydra's own
RUN_FLAGS = {"-m", "--multirun"}


def _group_options(conf_dir: Path, group: str) -> list[str]:
    """The option names of config group ``group``: its yaml files, nested ones as ``sub/name``."""
    folder = conf_dir / group
    return sorted(p.relative_to(folder).with_suffix("").as_posix() for p in folder.rglob("*.yaml"))


def _searchpath_extended(conf_dir: Path, args: Sequence[str]) -> bool:
    """Whether ``hydra.searchpath`` or ``--config-dir`` adds config folders, or ``--config-path`` replaces this
    one: options this project's folder cannot list."""
    flags = ("-cd", "--config-dir", "-cp", "--config-path")
    if any("searchpath" in a or a.split("=", 1)[0] in flags for a in args):
        return True
    return any("searchpath" in p.read_text() for p in conf_dir.glob("*.yaml"))


def check_group_choices(conf_dir: Path, args: Sequence[str]) -> None:
    """Stop in one line on a config group given a value that is no option name (``optimizer=adamx``,
    ``lr_find=true``, ``debug=1``, ``optimizer=adamw,sgdd``): Hydra reports those with a traceback, or with a
    screenful naming its search path, before any task code runs. Options from an extended ``hydra.searchpath``
    are left to Hydra."""
    groups = {p.name for p in conf_dir.iterdir() if p.is_dir()} - {"hydra"}
    parser = OverridesParser.create()
    names_only_here = not _searchpath_extended(conf_dir, args)
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue
        try:
            override = parser.parse_override(arg)
        except Exception:  # malformed: Hydra says what is wrong with it, in its own one line
            continue
        key, value = override.key_or_group, override.value()
        if key not in groups or override.is_delete():
            continue
        if isinstance(value, ChoiceSweep):  # optimizer=adamw,sgd: each choice; logger=[csv],[tensorboard] too
            options = [x for o in value.list for x in (o if isinstance(o, list) else [o])]
        elif override.is_sweep_override():  # a range or glob of a group: Hydra expands it
            continue
        else:
            options = value if isinstance(value, list) else [value]  # logger=[tensorboard,mlflow]: several
        # a dict is merged into the group's config and ${...} resolved by Hydra: check_composes judges those
        options = [o for o in options if not isinstance(o, dict) and not (isinstance(o, str) and "${" in o)]
        known = _group_options(conf_dir, key)
        wrong = [o for o in options if not isinstance(o, str) or (names_only_here and o not in known)]
        if wrong:
            allowed = f"no such option {wrong[0]!r}" if isinstance(wrong[0], str) else "a config group takes an option"
            allowed += f" (~{key} removes it)" if wrong[0] is None else ""
            print_error(str(config_error(key, arg.split("=", 1)[1], f"{allowed}; choose from: {', '.join(known)}")))
            raise SystemExit(2)


def _one_value(override: Override) -> str | None:
    """``override`` as a single run takes it: a choice or range sweep's first value; ``None`` for an interval or
    glob, which only a sweeper expands, and for an empty range."""
    if not override.is_sweep_override():
        return override.input_line
    if isinstance(override.value(), ChoiceSweep | RangeSweep):
        first = next(override.sweep_string_iterator(), None)  # None: an empty range, which runs nothing
        return None if first is None else f"{override.get_key_element()}={first}"
    return None


def _not_a_key(err: OmegaConfBaseException, args: Sequence[str]) -> str | None:
    """One line for an override of a key its config does not have, with the closest key or the keys there."""
    parent, full_key = getattr(err, "parent_node", None), getattr(err, "full_key", None)
    if not isinstance(parent, DictConfig) or not full_key:
        return None
    section, _, name = str(full_key).rpartition(".")
    given = next((a for a in args if a.split("=", 1)[0] == full_key), f"{full_key}=...")
    keys = sorted(str(k) for k in parent)
    close = difflib.get_close_matches(name, keys, n=1)
    hint = f"did you mean {section + '.' if section else ''}{close[0]}?" if close else f"its keys: {', '.join(keys)}"
    where = f"in {section}" if section else "at the top level"
    return f"{given}: no such key {where}; {hint} (+{given} adds a new key)"


def check_composes(conf_dir: Path, config_name: str, args: Sequence[str], multirun: bool = False) -> DictConfig:
    """Compose ``config_name`` with ``args`` as Hydra is about to (a sweep with each sweep's first value) and turn
    a failure into one line and exit code 2; without ``multirun``, a sweep is one too. Returns the config."""
    overrides, parser = [], OverridesParser.create()
    for arg in args:
        try:
            override = parser.parse_override(arg)
        except HydraException as err:  # the grammar: Hydra's message is one sentence and a link
            print_error(f"{arg}: {str(err).splitlines()[0]}")
            raise SystemExit(2) from None
        if override.is_sweep_override() and not multirun:
            key = override.get_key_element()
            print_error(f"{arg}: a sweep: add -m to run each value (a list is {key}=[...], a string {key}='...')")
            raise SystemExit(2)
        value = _one_value(override)
        if value is not None:
            overrides.append(value)
    try:
        with initialize_config_dir(config_dir=str(conf_dir.absolute()), version_base="1.3"):
            return compose(config_name, overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        cause = err.__cause__
        line = _not_a_key(cause, args) if isinstance(cause, OmegaConfBaseException) else None
        if isinstance(err, MissingConfigException) and err.options and err.missing_cfg_file:  # another searchpath's
            group, _, name = err.missing_cfg_file.rpartition("/")
            line = f"{group}={name!r}: no such option {name!r}; choose from: {', '.join(sorted(err.options))}"
        print_error(line or " ".join(s.strip() for s in str(err).splitlines() if s.strip()))
        raise SystemExit(2) from None
    except (ValueError, TypeError, KeyError, IndexError) as err:  # OmegaConf on a list given a key: model.sizes.x=3
        print_error(f"the overrides do not compose: {err}")
        raise SystemExit(2) from None


def check_overrides(conf_dir: Path, config_name: str, args: Sequence[str]) -> DictConfig | None:
    """``check_group_choices``, then ``check_composes``: the config a run would get (a sweep's first job's), or
    ``None`` for a command with Hydra's other flags (``--config-name``, ``--config-dir``) or run under
    ``HYDRA_FULL_ERROR=1``, which are left to Hydra."""
    check_group_choices(conf_dir, args)
    if os.environ.get("HYDRA_FULL_ERROR") or any(a.startswith("-") and a not in RUN_FLAGS for a in args):
        return None
    multirun = any(a in RUN_FLAGS or a.replace(" ", "") == "hydra.mode=MULTIRUN" for a in args)
    return check_composes(conf_dir, config_name, [a for a in args if a not in RUN_FLAGS], multirun)
