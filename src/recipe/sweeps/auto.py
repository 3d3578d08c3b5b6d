"""``hparams_search=auto``: the search space chosen from the composed config, and the scoring that fits the data.

What is searched follows what is configured: the LR on a log scale around the optimizer family's usual range (the
ranges ``digits_optuna`` gives each optimizer), its weight decay, the width and depth of an MLP, the channels and
blocks of a CNN, the width and depth of the transformer or of TabM's members, nothing of a net of your own unless
you name its keys, dropout where one of the engine's models has it, the batch size bounded by the data's size, and
the number of epochs (early stopping stays on). The space needs the config only; the batch sizes' bound and the
scoring also need the data's size, which the sweeper reads once from the data module (``data_facts``) before the
first trial.

Imported by the command's early checks: nothing here loads torch at import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from recipe.errors import config_error

# The LR's log range per optimizer (conf/optimizer/<name>.yaml's ``name``; SAM: its ``base``): about 100x around
# the family's usual LR (RECIPE.md). Another optimizer gets 10x either side of its configured LR.
LR_RANGES = {
    "sgd": (1e-2, 0.5),
    "adamw": (1e-4, 1e-2),
    "adam": (1e-4, 1e-2),
    "nadam": (1e-4, 1e-2),
    "radam": (1e-4, 1e-2),
    "rmsprop": (1e-4, 1e-2),
    "lamb": (1e-4, 1e-2),
    "lion": (1e-5, 1e-3),  # 3-10x lower than AdamW
    "muon": (2e-3, 0.1),
    "adafactor": (1e-3, 0.1),
    "schedulefree_adamw": (3e-4, 3e-2),
    "schedulefree_sgd": (0.1, 10.0),
}
DECOUPLED = {"adamw", "lamb", "muon", "adafactor"}  # weight decay applied to the weights, not through the gradient
WEIGHT_DECAY = {"decoupled": (1e-4, 0.3), "lion": (1e-3, 1.0), "l2": (1e-6, 1e-2)}  # log ranges
MLP_WIDTHS, MLP_DEPTHS = (64, 128, 256, 512), (1, 2, 3)
CNN_FIRST_CHANNELS, CNN_BLOCKS = (16, 32, 64), (1, 2)
BATCH_SIZES = (16, 32, 64, 128, 256, 512)
MIN_STEPS_PER_EPOCH = 4  # a batch size leaves at least this many steps per epoch
TABM_WIDTHS, TABM_DEPTHS = (64, 128, 256, 512), (1, 2, 3, 4)
MODELS = {
    "recipe.models.MLP": "mlp",
    "recipe.models.CNN": "cnn",
    "recipe.models.Transformer": "transformer",
    "recipe.models.TabM": "tabm",
}


@dataclass(frozen=True)
class Scoring:
    """How a trial is scored: on ``folds`` folds of train and validation pooled, or over ``seeds`` repeated splits
    (each seed its own split and initialization), or on the one validation split (both 1)."""

    folds: int | None = None
    seeds: int = 1

    def describe(self, rows: int | None, folds_below: int) -> str:
        size = "unknown size" if rows is None else f"{rows} rows"
        if self.folds:
            return f"mean over {self.folds} folds of train and validation ({size}, below {folds_below})"
        if self.seeds > 1:
            return f"mean over {self.seeds} seeds, each its own split ({size}, below {folds_below})"
        return f"the validation split ({size})"


def flat_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``hydra.sweeper.params`` with nested keys joined: ``+hydra.sweeper.params.model.width=...`` arrives as
    ``{model: {width: ...}}``. A mapping whose keys are conditions (``optimizer=sgd``) is one parameter's branches."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping) and not any("=" in str(k) for k in value):
            flat.update(flat_params(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _log_interval(low: float, high: float) -> str:
    return f"tag(log, interval({low:.3g}, {high:.3g}))"


def _choice(values: Sequence[Any]) -> str:
    return f"choice({', '.join(str(v).replace(' ', '') for v in values)})"


def optimizer_family(optimizer: DictConfig) -> str:
    """The optimizer whose ranges apply: ``name``, or the optimizer SAM wraps."""
    return str(optimizer.get("base") or optimizer.get("name"))


def _optimizer_space(optimizer: DictConfig) -> dict[str, str]:
    family = optimizer_family(optimizer)
    lr = optimizer.get("lr")
    low, high = LR_RANGES.get(family, (lr / 10, lr * 10) if isinstance(lr, (int, float)) and lr > 0 else (1e-4, 1e-2))
    space = {"optimizer.lr": _log_interval(low, high)}
    if "weight_decay" in optimizer:
        decoupled = family in DECOUPLED or bool(optimizer.get("decoupled_weight_decay"))
        kind = "lion" if family == "lion" else "decoupled" if decoupled else "l2"
        space["optimizer.weight_decay"] = _log_interval(*WEIGHT_DECAY[kind])
    return space


def _model_space(model: DictConfig) -> dict[str, str]:
    kind = MODELS.get(str(model.get("_target_")))
    space = {}
    if kind == "mlp":
        sizes = [[w] * d for d in MLP_DEPTHS for w in MLP_WIDTHS]
        space["model.hidden_sizes"] = _choice(sizes)
    elif kind == "cnn":
        stages = len(model.channels)
        space["model.channels"] = _choice([[c * 2**i for i in range(stages)] for c in CNN_FIRST_CHANNELS])
        space["model.blocks_per_stage"] = _choice(CNN_BLOCKS)
    elif kind == "transformer":
        space["model.dim"] = _choice([32, 64, 128])
        space["model.depth"] = "int(interval(1, 6))"
    elif kind == "tabm":
        space["model.d_block"] = _choice(TABM_WIDTHS)
        space["model.n_blocks"] = _choice(TABM_DEPTHS)
    own = not str(model.get("_target_")).startswith("recipe.")
    if not own and isinstance(model.get("dropout"), (int, float)) and not isinstance(model.get("dropout"), bool):
        space["model.dropout"] = "interval(0.0, 0.5)"
    return space


def batch_sizes(rows: int | None) -> list[int]:
    """Powers of two from 16 to 512 that leave ``MIN_STEPS_PER_EPOCH`` steps an epoch on ``rows`` training rows."""
    if rows is None:
        return [32, 64, 128, 256]
    return [b for b in BATCH_SIZES if b * MIN_STEPS_PER_EPOCH <= rows] or [BATCH_SIZES[0]]


def chosen_space(cfg: DictConfig, rows: int | None = None) -> dict[str, str]:
    """The keys ``auto`` searches for ``cfg`` and their ranges, in the sweep grammar (``recipe.sweeps.space``);
    ``rows``: the training rows, which bound the batch size (``None``: not known yet)."""
    space = _optimizer_space(cfg.optimizer) if cfg.get("optimizer") else {}
    space.update(_model_space(cfg.model))
    if isinstance(cfg.data.get("batch_size"), int):
        space["data.batch_size"] = _choice(batch_sizes(rows))
    epochs = cfg.trainer.get("max_epochs")
    if isinstance(epochs, int) and epochs >= 4:
        space["trainer.max_epochs"] = f"int(tag(log, interval({max(2, epochs // 4)}, {epochs})))"
    return space


def search_params(cfg: DictConfig, user: Mapping[str, Any], exclude: Sequence[str], rows: int | None) -> dict:
    """The chosen space less ``exclude``, with the user's ``hydra.sweeper.params`` (flattened) on top."""
    space = {k: v for k, v in chosen_space(cfg, rows).items() if k not in exclude}
    return {**space, **user}


def check_auto(cfg: DictConfig, user: Mapping[str, Any], exclude: Sequence[str], arguments: Sequence[str] = ()) -> None:
    """What ``auto`` can refuse from the config alone: a key to search (in ``hydra.sweeper.params``, or a sweep
    among the command line's ``arguments``) or to leave out that the config lacks, and a net of your own with none
    of its keys named."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = OverridesParser.create().parse_overrides([a for a in arguments if not a.startswith("-")])  # not -m
    swept = [o for o in overrides if o.is_sweep_override()]
    named = {**user, **{o.get_key_element(): o.input_line.split("=", 1)[1] for o in swept if not o.is_add()}}
    for key, value in named.items():
        if OmegaConf.select(cfg, key, default=_ABSENT) is _ABSENT:
            parent = key.rsplit(".", 1)[0] if "." in key else ""
            known = OmegaConf.select(cfg, parent) if parent else cfg
            keys = sorted(str(k) for k in known if k != "_target_") if isinstance(known, DictConfig) else []
            raise config_error(key, value, f"not a key of the config to search; {parent or 'it'} has: {keys}")
    chosen = chosen_space(cfg)
    for key in exclude:
        if key not in chosen:
            raise config_error("hydra.sweeper.exclude", key, f"not among the keys auto searches here: {sorted(chosen)}")
    target = str(cfg.model.get("_target_"))
    if not target.startswith("recipe.") and not any(
        key.startswith("model.") for key in [*named, *(o.get_key_element() for o in swept)]
    ):
        keys = [str(k) for k in cfg.model if k != "_target_"]
        example = f"model.{keys[0] if keys else '<key>'}='int(interval(16, 256))'"
        raise config_error(
            "model",
            target,
            f"a net of your own: hparams_search=auto searches its keys ({keys}) only when named, e.g. {example}",
        )


_ABSENT = object()


def epochs_to_best(curve: Mapping[int, float], direction: str) -> int | None:
    """The epochs a run took to reach its best value, from its curve (epoch -> value): the first epoch at the best,
    plus one. The final model trains that long; the epochs early stopping waited past the best are left out.
    ``None`` for a run that reported nothing."""
    if not curve:
        return None
    best = (min if direction == "minimize" else max)(curve.values())
    return min(epoch for epoch, value in curve.items() if value == best) + 1


def as_given(cfg: DictConfig, distributions: Mapping[str, Any]) -> dict[str, Any]:
    """The config's own value of each searched key that lies in its range: the search's first trial, so that it
    starts from the configuration as given (and never reports worse than it on validation)."""
    given = {}
    for key, dist in distributions.items():
        value = OmegaConf.select(cfg, key)
        if isinstance(value, Sequence) and not isinstance(value, str):
            value = f"[{','.join(str(v) for v in value)}]"  # a list choice as its override text
        choices = getattr(dist, "choices", None)
        if choices is not None:
            if value in choices:
                given[key] = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and dist.low <= value <= dist.high:
            given[key] = value
    return given


def write_space(folder: Path, params: Mapping[str, Any], notes: Mapping[str, Any]) -> Path:
    """``<sweep>/search_space.yaml``: what the search draws and how it scores, for the reader and for a rerun."""
    path = folder / "search_space.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create({"params": dict(params), **notes}), path)
    return path


def choose_scoring(rows: int | None, folds_below: int, folds: int, has_folds: bool, seeded_splits: bool) -> Scoring:
    """k folds below ``folds_below`` rows when the data module cross-validates, else repeated splits (seeds) when
    its split follows ``seed``; the one validation split for larger or unknown data."""
    if rows is None or rows >= folds_below:
        return Scoring()
    if has_folds:
        return Scoring(folds=folds)
    return Scoring(seeds=3) if seeded_splits else Scoring()


LOSS_METRIC = "val/loss_best"  # what auto scores a trial by, unless optimized_metric names another metric


@dataclass(frozen=True)
class DataFacts:
    """What the data decides: its training rows (train and validation, which folds pool; ``None``: unknown), its
    task, the metric a trial returns (``LOSS_METRIC`` where ``optimized_metric`` is the task's default), and the
    test metrics its module logs."""

    rows: int | None
    task: str
    metric: str
    test_metrics: list[str]


def data_facts(cfg: DictConfig) -> DataFacts:
    """Set the data module up once and read what the search needs from it: the search sets it up for every trial
    anyway, so once more costs a fraction of one trial."""
    from recipe.data.contract import optional
    from recipe.instantiate import instantiate
    from recipe.tasks.registry import choose_task
    from recipe.validation.signatures import class_constant

    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    job = cfg.copy()
    choose_task(job, datamodule)  # data=csv picks its task from the target: regression returns val/loss_best
    module = str(job.module._target_)
    sometimes = set(class_constant(module, "TWO_CLASS_METRICS") or ())
    tests = [m for m in class_constant(module, "METRICS") or () if m.startswith("test/") and m not in sometimes]
    datasets = getattr(datamodule, "datasets", None)
    try:
        if isinstance(datasets, Mapping) and "train" in datasets:
            rows = sum(len(datasets[s]) for s in ("train", "val") if s in datasets)
        else:
            rows = len(datamodule.train_dataloader().dataset) + len(datamodule.val_dataloader().dataset)
    except (TypeError, AttributeError):  # an iterable dataset has no length
        rows = None
    task = str(optional(datamodule, "task"))
    return DataFacts(rows, task, trial_metric(task, str(job.optimized_metric)), tests)


def trial_metric(task: str, configured: str) -> str:
    """``LOSS_METRIC`` in place of the task's default ``optimized_metric``; a metric the user named stays.

    The lowest validation loss, not the best accuracy: on the tens of rows of a small table's fold one row moves the
    accuracy by points and many configurations tie, while the loss (a proper scoring rule) is continuous and ranks
    them; its epoch is also the one the table's checkpoint keeps, and the final model's length (``epochs_to_best``).
    """
    from recipe.cli.config import CONF_DIR

    default = OmegaConf.load(CONF_DIR / "task" / f"{task}.yaml").get("optimized_metric")
    return LOSS_METRIC if configured == default else configured


def direction_of(task: str, metric: str, configured: str) -> str:
    """The direction of ``metric``: ``minimize`` for the lowest validation loss, the task's checkpoint mode when
    ``metric`` is the task's own, else the configured one."""
    from recipe.cli.config import CONF_DIR

    if metric == LOSS_METRIC:
        return "minimize"
    overlay = OmegaConf.load(CONF_DIR / "task" / f"{task}.yaml")
    if overlay.get("optimized_metric") != metric:
        return configured
    return "maximize" if OmegaConf.select(overlay, "callbacks.model_checkpoint.mode") == "max" else "minimize"
