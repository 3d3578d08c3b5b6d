"""The one validation layer: a composed config is checked here before anything is built or any data is loaded.

Types come from where they are already written: the type hints of each ``_target_``'s constructor (through the
classes it passes ``**kwargs`` to) and the dataclass schemas of the top-level keys below, so a user's own net
or data module gets its arguments checked too. Ranges live in each group's constructor (the specs, the data
module, the callbacks), which ``check_train_config`` calls early for the cheap ones; relations between groups
(a ``monitor`` against the metrics the module logs, ``min_lr`` against the LR) are checked here.
Hydra's structured configs would check types too, but their errors are multi-line tracebacks that name the
key only inside OmegaConf's wording; this layer gives the project's one-line ``key=value: allowed``.
"""

from __future__ import annotations

import collections.abc
import os
import types
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from omegaconf import DictConfig, ListConfig, OmegaConf

from recipe.cli.config import CONF_DIR
from recipe.errors import ConfigError, config_error, is_int, is_number, require_positive_int
from recipe.runtime.precision import accelerator_device, check_precision, check_strategy
from recipe.runtime.slurm import check_processes
from recipe.tasks.registry import module_targets, tasks

if TYPE_CHECKING:
    from recipe.optim import OptimizerSpec, SchedulerSpec
from recipe.validation.signatures import class_constant, constructor_hints, is_class

INSTANTIATE_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}


def _limit(v: Any) -> bool:
    return (is_int(v) and v >= 0) or (isinstance(v, float) and 0.0 <= v <= 1.0)


# The trainer's ranges: Lightning rejects some of these itself, but with a traceback, and accepts others
# (``max_epochs=0``).
TRAINER_RULES: dict[str, tuple[Any, str]] = {
    "max_epochs": (lambda v: v is None or (is_int(v) and (v == -1 or v >= 1)), "-1 (no limit) or an integer >= 1"),
    "max_steps": (lambda v: is_int(v) and (v == -1 or v >= 1), "-1 (no limit) or an integer >= 1"),
    "min_epochs": (lambda v: v is None or (is_int(v) and v >= 0), "null or an integer >= 0"),
    "accumulate_grad_batches": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    "gradient_clip_val": (lambda v: v is None or (isinstance(v, (int, float)) and v >= 0), "null or a number >= 0"),
    "gradient_clip_algorithm": (lambda v: v in (None, "norm", "value"), "norm or value"),
    "check_val_every_n_epoch": (lambda v: v is None or (is_int(v) and v >= 1), "null or an integer >= 1"),
    "log_every_n_steps": (lambda v: v is None or (is_int(v) and v >= 1), "an integer >= 1"),
    "num_sanity_val_steps": (lambda v: v is None or (is_int(v) and v >= -1), "-1 (all batches) or an integer >= 0"),
    "limit_train_batches": (
        lambda v: _limit(v) and v != 0,
        "a fraction in (0, 1] or a number of batches >= 1 (0 trains nothing)",
    ),
    "limit_val_batches": (_limit, "a fraction in [0, 1] or a whole number of batches"),
    "limit_test_batches": (_limit, "a fraction in [0, 1] or a whole number of batches"),
}


ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
DEVICES = "auto, -1 (every GPU), a count >= 1 (processes on CPU), or a list of GPU ids"


def _devices_ok(v: Any) -> bool:
    if isinstance(v, (list, tuple, ListConfig)):
        return bool(v) and all(is_int(i) and i >= 0 for i in v)
    return v == "auto" or (is_int(v) and (v == -1 or v >= 1))


@dataclass
class TrainSettings:
    """The top-level keys of ``conf/train.yaml``; a key not listed here is a typo (``+optimizr=sgd``)."""

    task_name: str
    task: str | None  # an option of conf/task/, or null: the data's
    seed: int | None
    test: bool
    test_weights: Literal["best", "last"]
    ckpt_path: str | None
    optimized_metric: str | list[str] | None  # several: a multi-objective search (hydra.sweeper.directions)
    compile: bool
    threads: int | None
    data: Any
    model: Any
    module: Any
    optimizer: Any
    scheduler: Any
    trainer: Any
    callbacks: Any
    logger: Any
    paths: Any
    lr_find: Any


@dataclass
class EvalSettings:
    """The top-level keys of ``conf/eval.yaml``."""

    task_name: str
    ckpt_path: str
    optimized_metric: str | None
    trainer: Any
    logger: Any
    paths: Any


def _describe(hint: Any) -> str:
    """``hint`` in words, for the ``allowed`` part of an error."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin in (list, tuple, collections.abc.Sequence) and args:
        return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "null"}
    if hint in names:
        return names[hint]
    if origin in (list, tuple, collections.abc.Sequence) or hint in (list, tuple):
        return "a list"
    if origin in (dict, collections.abc.Mapping) or hint is dict:
        return "a mapping"
    return f"a {getattr(hint, '__name__', hint)} config (with _target_)"


def _conforms(value: Any, hint: Any) -> bool:
    """Whether a config value can be given to a parameter annotated ``hint`` (unknown hints pass)."""
    if hint is Any or isinstance(hint, (typing.TypeVar, str)):
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return value in args and not (isinstance(value, bool) and True not in args and False not in args)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, a) for a in args)
    if hint is type(None) or value is None:
        return value is None and hint is type(None)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return is_int(value)
    if hint is float:
        return is_number(value)
    if hint is str:
        return isinstance(value, str)
    container = origin or hint
    if container in (list, tuple, collections.abc.Sequence, collections.abc.Iterable):
        if not isinstance(value, (list, tuple, ListConfig)):
            return False
        item = args[0] if args else Any  # list[int], Sequence[int], tuple[int, ...]: the first type
        return all(_conforms(v, item) for v in value)
    if container in (dict, collections.abc.Mapping):
        return isinstance(value, (dict, DictConfig))
    if isinstance(value, (dict, DictConfig)):
        return "_target_" in value  # an object to build, checked as a section of its own
    return not isinstance(hint, type) or isinstance(value, hint) or hint.__module__ in ("pathlib", "os")


def check_section(key: str, section: Any, skip: frozenset[str] = frozenset()) -> None:
    """Check every value of a section with a ``_target_`` against its constructor's signature (recursively)."""
    if not isinstance(section, DictConfig) or "_target_" not in section:
        return
    target = section._target_
    try:
        if not is_class(target):  # a function (a partial, an auto-wrap policy): called later, not checked here
            return
        hints, takes_any = constructor_hints(target)
    except Exception:
        raise config_error(f"{key}._target_", target, "no such class or function (check the path)") from None
    name_of = target.rpartition(".")[2]
    for name, value in section.items():
        name = str(name)
        if name in INSTANTIATE_KEYS or name in skip:
            continue
        if name not in hints:
            if not takes_any:
                raise config_error(f"{key}.{name}", value, f"not an argument of {name_of}; allowed: {sorted(hints)}")
            continue
        check_value(f"{key}.{name}", value, hints[name])
        check_section(f"{key}.{name}", value)


def check_value(key: str, value: Any, hint: Any) -> None:
    """Raise a ``ConfigError`` naming ``key`` when ``value`` does not fit ``hint``."""
    if not _conforms(value, hint):
        plain = OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value
        raise config_error(key, plain, f"must be {_describe(hint)}")


def declared_keys(config_name: str) -> set[str]:
    """The top-level keys ``conf/<config_name>.yaml`` itself writes: a user's own (``tags``, ``notes``) among them."""
    return {str(k) for k in OmegaConf.load(CONF_DIR / f"{config_name}.yaml") if k != "defaults"}


def check_schema(cfg: DictConfig, schema: type, config_name: str) -> None:
    """Top-level keys: each one the engine reads is type-checked; a key neither the engine reads nor
    ``conf/<config_name>.yaml`` declares is a typo (``+optimizr=sgd``), rejected with the known keys."""
    hints = typing.get_type_hints(schema)
    for key in cfg:
        if key in hints:
            check_value(str(key), cfg[key], hints[key])
        elif key not in declared_keys(config_name):
            allowed = (
                f"not a setting; the top-level keys are: {sorted(hints)} (declare your own in conf/{config_name}.yaml)"
            )
            raise config_error(str(key), cfg[key], allowed)


def check_missing(cfg: DictConfig) -> None:
    """A ``???`` left in the config is a value the user must give."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise config_error(missing[0], "???", f"required: give it on the command line, e.g. {missing[0]}=<value>")


def monitors(cfg: DictConfig) -> list[tuple[str, str]]:
    """Every ``(key, metric)`` a callback or the scheduler watches."""
    found = [(f"callbacks.{name}.monitor", c.get("monitor")) for name, c in (cfg.get("callbacks") or {}).items() if c]
    found = [(k, m) for k, m in found if m is not None]
    if cfg.get("scheduler") and cfg.scheduler.get("monitor"):
        found.append(("scheduler.monitor", cfg.scheduler.monitor))
    return found


def callback_metrics(cfg: DictConfig) -> list[str]:
    """The metrics the configured callbacks log (a callback class lists them in ``METRICS``)."""
    sections = [c for c in (cfg.get("callbacks") or {}).values() if isinstance(c, DictConfig) and "_target_" in c]
    return [m for c in sections for m in class_constant(c._target_, "METRICS") or ()]


def check_metrics(cfg: DictConfig, num_classes: int | None = None) -> None:
    """``optimized_metric`` and every ``monitor`` must be metrics the module logs (when its class lists them); before
    the task is known (``task: null``), metrics of either task's module. Once the data gives ``num_classes``, a
    metric the module logs for two classes only (its ``TWO_CLASS_METRICS``) is refused for any other count."""
    targets = [cfg.module._target_] if cfg.get("module") else module_targets()
    lists = [class_constant(target, "METRICS") for target in targets]
    if any(metrics is None for metrics in lists):
        return
    logged = sorted({m for metrics in lists for m in metrics} | set(callback_metrics(cfg)))
    two_class = {m for target in targets for m in class_constant(target, "TWO_CLASS_METRICS") or ()}
    objectives = cfg.get("optimized_metric") or []
    watched = [("optimized_metric", m) for m in ([objectives] if isinstance(objectives, str) else objectives)]
    for key, metric in [*watched, *monitors(cfg)]:
        if isinstance(metric, str) and metric not in logged:
            raise config_error(key, metric, f"not a metric this module logs; choose one of {sorted(logged)}")
        if metric in two_class and num_classes not in (None, 2):
            raise config_error(key, metric, f"logged for two classes only; the data has {num_classes}")


FIXES = {"optimized_metric": "optimized_metric=null", "scheduler.monitor": "scheduler=cosine"}  # else ~callbacks.<name>


def validation_off(trainer: DictConfig) -> str | None:
    """The ``trainer`` setting that turns validation off for the whole run, if one does."""
    if trainer.get("limit_val_batches", 1.0) == 0:
        return f"trainer.limit_val_batches={trainer.limit_val_batches}"
    every, epochs = trainer.get("check_val_every_n_epoch"), trainer.get("max_epochs")
    if every and epochs and every > epochs > 0 and trainer.get("max_steps", -1) == -1:
        return f"trainer.check_val_every_n_epoch={every} with trainer.max_epochs={epochs}"
    return None


def check_validation_metrics(cfg: DictConfig) -> None:
    """A run without validation never logs a ``val/`` metric: ``optimized_metric`` and every ``monitor`` on one are
    rejected, with the overrides that turn them off (Lightning's EarlyStopping would raise after the first epoch)."""
    off = validation_off(cfg.trainer)
    objectives = cfg.get("optimized_metric") or []
    watched = [("optimized_metric", m) for m in ([objectives] if isinstance(objectives, str) else objectives)]
    on_val = [(key, m) for key, m in [*monitors(cfg), *watched] if isinstance(m, str) and m.startswith("val/")]
    if off and on_val:
        fixes = [FIXES.get(key) or f"~{key.removesuffix('.monitor')}" for key, _ in on_val]
        key, metric = on_val[0]
        raise config_error(key, metric, f"never logged: {off} turns validation off; add {' '.join(fixes)}")


def check_train_config(cfg: DictConfig) -> None:
    """Everything about a ``train`` config that can be judged without data: types, ranges, relations."""
    check_missing(cfg)
    check_schema(cfg, TrainSettings, "train")
    if cfg.task is not None and cfg.task not in tasks():
        raise config_error("task", cfg.task, f"one of {', '.join(tasks())} (conf/task/), or null for the data's")
    if cfg.seed is not None and cfg.seed < 0:
        raise config_error("seed", cfg.seed, "must be an integer >= 0, or null for a random run")
    if cfg.threads is not None:
        require_positive_int("threads", cfg.threads)
    for key in ("data", "model", "module", "optimizer", "scheduler", "trainer", "lr_find"):
        check_section(key, cfg.get(key), skip=frozenset({"precision"}) if key == "trainer" else frozenset())
    for group in ("callbacks", "logger"):
        for name, section in (cfg.get(group) or {}).items():
            check_section(f"{group}.{name}", section)
    monitor = (cfg.get("callbacks") or {}).get("lr_monitor")
    if monitor and not any(cfg.get("logger") or {}):
        raise config_error("callbacks.lr_monitor", str(monitor.get("_target_")), "logs to a logger, and there is "
                           "none: remove it too (~callbacks.lr_monitor) or keep one (logger=tensorboard)")  # fmt: skip
    check_trainer_config(cfg.trainer)
    check_processes(cfg.trainer)  # inside a SLURM job: one task per process the Trainer expects
    check_metrics(cfg)
    check_validation_metrics(cfg)
    lr_find = cfg.get("lr_find") or {}
    if lr_find.get("action", "off") != "off" and cfg.ckpt_path:
        raise config_error("lr_find", lr_find.action, "must be off with ckpt_path: a resumed run keeps its LR")
    scheduler = cfg.get("scheduler") or {}
    if scheduler.get("max_lr") is not None and lr_find.get("action") == "apply":
        raise config_error("scheduler.max_lr", scheduler.max_lr, "must be null for lr_find=apply to set it")


def check_specs(optimizer: OptimizerSpec | None, scheduler: SchedulerSpec | None, trainer: DictConfig) -> None:
    """Relations between the optimizer and scheduler a run built (their constructors checked their own ranges)
    and the trainer: what the config alone cannot tell."""
    if optimizer is not None:
        optimizer.check_trainer(trainer)
    if scheduler is not None and optimizer is not None:
        scheduler.check_lr(optimizer.lr)


def check_trainer_config(trainer: DictConfig) -> None:
    """The ``trainer`` section's ranges, strategy and precision."""
    for key, (ok, allowed) in TRAINER_RULES.items():
        if key in trainer and not ok(trainer[key]):
            raise config_error(f"trainer.{key}", trainer[key], f"must be {allowed}")
    max_epochs, min_epochs = trainer.get("max_epochs"), trainer.get("min_epochs")
    if min_epochs and max_epochs and max_epochs > 0 and min_epochs > max_epochs:
        raise config_error("trainer.min_epochs", min_epochs, f"must not exceed trainer.max_epochs={max_epochs}")
    accelerator = trainer.get("accelerator", "auto")
    if isinstance(accelerator, str) and accelerator.lower() not in ACCELERATORS:
        raise config_error("trainer.accelerator", accelerator, f"one of {', '.join(ACCELERATORS)}")
    if not _devices_ok(trainer.get("devices", "auto")):
        raise config_error("trainer.devices", trainer.get("devices"), f"must be {DEVICES}")
    check_strategy(trainer.get("strategy", "auto"), trainer.get("accelerator", "auto"))
    check_precision(trainer.get("precision", "auto"))


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity: what SLURM or ``taskset`` gave it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_machine(cfg: DictConfig) -> None:
    """What only the machine that trains can judge (a sweep's or SLURM job's config is checked where it is
    launched): ``threads`` within its cores, since more threads than cores only wait on each other (a run on 2
    cores with 1000 took 1.8x as long); the CUDA GPUs that ``trainer.devices`` asks for present. On CPU,
    ``devices`` counts processes, and any count runs."""
    cores = usable_cores()
    if cfg.get("threads") is not None and cfg.threads > cores:
        raise config_error("threads", cfg.threads, f"more than the {cores} CPU cores of this process; at most {cores}, "
                           "or null for one per core")  # fmt: skip
    accelerator, devices = cfg.trainer.get("accelerator", "auto"), cfg.trainer.get("devices", "auto")
    if accelerator_device(accelerator) != "cuda":
        return
    import torch

    gpus = torch.cuda.device_count()
    if not gpus:
        raise config_error("trainer.accelerator", accelerator, "this machine has no CUDA GPU; cpu or auto")
    wanted = max(devices) + 1 if isinstance(devices, (list, ListConfig)) else devices if is_int(devices) else 0
    if wanted > gpus:
        raise config_error("trainer.devices", devices, f"asks for GPU {wanted - 1}; this machine has {gpus} (0 to "
                           f"{gpus - 1}); -1 takes them all")  # fmt: skip


def check_eval_config(cfg: DictConfig) -> None:
    """The ``eval`` config: types, and the trainer's ranges."""
    check_missing(cfg)
    check_schema(cfg, EvalSettings, "eval")
    check_section("trainer", cfg.trainer, skip=frozenset({"precision"}))
    check_trainer_config(cfg.trainer)


def check_predict_config(cfg: DictConfig) -> None:
    """The settings of ``conf/predict.yaml`` that can be checked before the checkpoint is read."""
    check_missing(cfg)
    require_positive_int("batch_size", cfg.batch_size)


__all__ = ["ConfigError", "check_eval_config", "check_machine", "check_predict_config", "check_train_config"]
