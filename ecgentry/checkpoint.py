"""Per-epoch training checkpoints in ``MODEL/checkpoint/`` without pickle.

Layout: ``tensors-eNNNN.safetensors`` (model weights ``model.*``, best weights ``best.*``, optimiser tensors
``optim.<param>.<key>``, torch random state ``rng.torch``/``rng.cuda``) and ``checkpoint.json`` (epoch, history,
best loss, scheduler and optimiser non-tensor state, numpy random state, the configuration and a data
fingerprint, the tensors file name). Each file is written to a temporary name and moved into place with
``os.replace``; ``checkpoint.json`` is written last and is the commit point, so a run killed while saving leaves
the previous complete checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_JSON = "checkpoint.json"
FORMAT_VERSION = 1


@dataclass
class TrainingState:
    """What a resumed run needs besides the model and optimiser objects."""

    epoch: int = 0  # epochs completed
    history: list[dict[str, float]] = field(default_factory=list)
    best_loss: float = float("inf")
    bad_epochs: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    stopped_early: bool = False


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value  # NaN and inf are written as JSON's NaN/Infinity extensions (read back by json.loads)


def save_checkpoint(
    model_folder: str | os.PathLike,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    np_rng: np.random.Generator,
    state: TrainingState,
    config: dict[str, Any],
    fingerprint: dict[str, Any],
) -> Path:
    """Write the checkpoint after ``state.epoch`` completed epochs; returns the ``checkpoint.json`` path."""
    from safetensors.torch import save

    folder = Path(model_folder) / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {f"model.{k}": _cpu(v) for k, v in model.state_dict().items()}
    if state.best_state is not None:
        tensors.update({f"best.{k}": _cpu(v) for k, v in state.best_state.items()})
    opt = optimizer.state_dict()
    opt_scalars: dict[str, dict[str, Any]] = {}
    for pid, values in opt["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{key}"] = _cpu(value.reshape(1) if value.dim() == 0 else value)
                if value.dim() == 0:  # e.g. AdamW's step: a 0-d tensor, stored 1-d and reshaped on load
                    opt_scalars.setdefault(str(pid), {})[key] = "scalar-tensor"
            else:
                opt_scalars.setdefault(str(pid), {})[key] = _jsonable(value)
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    name = f"tensors-e{state.epoch:04d}.safetensors"
    _atomic_write_bytes(folder / name, save(tensors))
    meta = {
        "format_version": FORMAT_VERSION,
        "epoch": state.epoch,
        "history": _jsonable(state.history),
        "best_loss": _jsonable(state.best_loss),
        "bad_epochs": state.bad_epochs,
        "has_best_state": state.best_state is not None,
        "stopped_early": state.stopped_early,
        "optimizer": {
            "param_groups": _jsonable(opt["param_groups"]),
            "scalars": opt_scalars,
            "param_ids": [str(k) for k in opt["state"].keys()],
        },
        "scheduler": _jsonable(scheduler.state_dict()),
        "numpy_rng": _jsonable(np_rng.bit_generator.state),
        "config": config,
        "fingerprint": fingerprint,
        "tensors": name,
    }
    path = folder / CHECKPOINT_JSON
    _atomic_write_bytes(path, (json.dumps(meta, indent=1) + "\n").encode("utf-8"))
    for old in folder.glob("tensors-e*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return path


def read_checkpoint_meta(model_folder: str | os.PathLike) -> dict[str, Any] | None:
    """The committed checkpoint's JSON, or None when there is none (or it is unreadable: logged)."""
    path = Path(model_folder) / CHECKPOINT_DIR / CHECKPOINT_JSON
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        logger.warning("ignoring unreadable checkpoint %s: %s", path, exc)
        return None
    if meta.get("format_version") != FORMAT_VERSION or not (path.parent / str(meta.get("tensors"))).is_file():
        logger.warning("ignoring incomplete or foreign checkpoint %s", path)
        return None
    return meta


def restore_checkpoint(
    model_folder: str | os.PathLike,
    meta: dict[str, Any],
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    np_rng: np.random.Generator,
    device: torch.device,
) -> TrainingState:
    """Load the checkpoint described by ``meta`` into the given objects; returns the training state."""
    from safetensors.torch import load_file

    tensors = load_file(str(Path(model_folder) / CHECKPOINT_DIR / meta["tensors"]))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    best = (
        {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best.")} if meta["has_best_state"] else None
    )
    opt_meta = meta["optimizer"]
    opt_state: dict[int, dict[str, Any]] = {}
    for pid in opt_meta["param_ids"]:
        entry: dict[str, Any] = {}
        prefix = f"optim.{pid}."
        scalars = opt_meta["scalars"].get(pid, {})
        for k, v in tensors.items():
            if k.startswith(prefix):
                key = k[len(prefix) :]
                entry[key] = v.reshape(()) if scalars.get(key) == "scalar-tensor" else v
        for key, value in scalars.items():
            if value != "scalar-tensor":
                entry[key] = value
        opt_state[int(pid)] = entry
    optimizer.load_state_dict({"state": opt_state, "param_groups": opt_meta["param_groups"]})
    scheduler.load_state_dict(meta["scheduler"])
    np_rng.bit_generator.state = meta["numpy_rng"]
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return TrainingState(
        epoch=int(meta["epoch"]),
        history=list(meta["history"]),
        best_loss=float(meta["best_loss"]),
        bad_epochs=int(meta["bad_epochs"]),
        best_state=best,
        stopped_early=bool(meta.get("stopped_early", False)),
    )


def remove_checkpoint(model_folder: str | os.PathLike) -> None:
    """Delete ``MODEL/checkpoint/`` (after the final model folder is complete)."""
    import shutil

    shutil.rmtree(Path(model_folder) / CHECKPOINT_DIR, ignore_errors=True)
