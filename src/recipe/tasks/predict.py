"""Predictions of a trained checkpoint on new rows or images, written as ``predictions.csv``."""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from lightning.pytorch.utilities import rank_zero_info
from omegaconf import DictConfig, OmegaConf
from torch import nn

from recipe.data.contract import Predictable
from recipe.errors import config_error
from recipe.instantiate import instantiate
from recipe.runtime.checkpoint_io import CHECKPOINT_KEY, load_checkpoint


def load_for_prediction(ckpt_path: str) -> tuple[object, nn.Module]:
    """The checkpoint's data module, holding the run's preprocessing, and its net with the trained weights.

    Builds only the net (not the LightningModule or the training data): the training file need not exist any more.
    """
    checkpoint = load_checkpoint(ckpt_path)
    run_cfg = OmegaConf.create(checkpoint[CHECKPOINT_KEY])
    datamodule = instantiate(run_cfg.data)
    state = checkpoint.get(type(datamodule).__qualname__)
    if not isinstance(datamodule, Predictable) or not state:
        raise config_error(
            "ckpt_path", ckpt_path, f"trained on {run_cfg.data._target_}, which keeps no preprocessing for "
            "predictions; data=csv and data=image_folder do",
        )  # fmt: skip
    datamodule.load_state_dict(state)
    net = instantiate(run_cfg.model, input_shape=datamodule.input_shape, num_classes=datamodule.num_classes)
    net.load_state_dict(
        {k.removeprefix("net."): v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
    )
    return datamodule, net.eval()


@torch.inference_mode()
def outputs(net: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``net`` on ``x`` in batches, as float32."""
    return torch.cat([net(x[i : i + batch_size].float()).float() for i in range(0, len(x), batch_size)])


def predict(cfg: DictConfig) -> None:
    """Write one row per input (its name, the predicted class or value, and class probabilities) to
    ``cfg.output_file``, batch by batch as the data module reads them, so a file larger than memory predicts too.
    The rows go to ``<output_file>.partial``, renamed at the end: a failed run leaves an earlier file as it was."""
    datamodule, net = load_for_prediction(cfg.ckpt_path)
    classes = datamodule.class_names
    header = ["id", "prediction"] if classes is None else ["id", "prediction", *(f"prob_{c}" for c in classes)]
    path = Path(cfg.output_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial, count = path.with_name(f"{path.name}.partial"), 0
    try:
        with partial.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for names, x in datamodule.predict_batches(cfg.data.path):
                writer.writerows(prediction_rows(datamodule, names, outputs(net, x, cfg.batch_size)))
                count += len(names)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    rank_zero_info(f"Wrote {count} predictions to {path}")


def prediction_rows(datamodule: object, names: list[str], out: torch.Tensor) -> list[list]:
    """``[name, value]`` in the target's units (regression) or ``[name, class, probabilities...]``."""
    classes = datamodule.class_names
    if classes is None:
        mean, std = datamodule.target_scale
        return [[n, float(v) * std + mean] for n, v in zip(names, out.reshape(-1), strict=True)]
    probs = out.softmax(-1)
    return [[n, classes[int(p.argmax())], *(f"{q:.6f}" for q in p.tolist())] for n, p in zip(names, probs, strict=True)]
