"""Resuming: what a checkpoint must agree with to be continued, a simulated kill after N epochs (tests), and the
per-rank diagnostics of ``$ECG_TRAIN_TRACE_DIR``. The checkpoint files themselves: :mod:`ecgentry.checkpoint`."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import torch

from ecgentry import distributed as ddp_utils
from ecgentry.config import TrainConfig
from ecgentry.records import RecordInfo
from ecgentry.training.data import Example

ENV_STOP_AFTER_EPOCHS = "ECG_STOP_AFTER_EPOCHS"  # stop (as if killed) once this many epochs are checkpointed
ENV_TRAIN_TRACE_DIR = "ECG_TRAIN_TRACE_DIR"  # diagnostics: each rank writes the examples it saw and a weight digest


# Configuration keys that may differ between a checkpoint and the run resuming it (they do not change training).
RESUMABLE_CHANGES = (
    "device",
    "num_threads",
    "trace_source",
    "trace_source_pages",
    "digitizer",
    "dx_digitize_workers",
    "dx_page_cache",
)


class TrainingInterrupted(RuntimeError):
    """Raised after the checkpoint of epoch ``$ECG_STOP_AFTER_EPOCHS`` (a simulated kill, for tests)."""


def state_digest(model: torch.nn.Module) -> str:
    """sha256 over the model's state dict (names, dtypes, shapes and bytes), to compare weights across ranks."""
    h = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        t = value.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def training_fingerprint(
    infos: list[RecordInfo], train_examples: list[Example], val_examples: list[Example]
) -> dict[str, Any]:
    """What a checkpoint must agree with to be resumed: the records (names and labels) and page counts."""
    h = hashlib.sha256()
    for info in infos:
        h.update(f"{os.path.basename(info.record)}|{','.join(info.labels)}|{len(info.image_files)}\n".encode())
    return {
        "records": len(infos),
        "records_sha256": h.hexdigest(),
        "train_pages": len(train_examples),
        "val_pages": len(val_examples),
    }


def _comparable_config(cfg_dict: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg_dict.items() if k not in RESUMABLE_CHANGES}


def resume_mismatch(meta: dict[str, Any], cfg: TrainConfig, fingerprint: dict[str, Any]) -> str | None:
    """Why the checkpoint cannot be resumed by this run (None when it can)."""
    old, new = _comparable_config(meta.get("config", {})), _comparable_config(cfg.to_dict())
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        return f"configuration changed ({', '.join(changed)})"
    if meta.get("fingerprint") != fingerprint:
        return "training data changed"
    return None


def stop_after_epochs() -> int | None:
    text = os.environ.get(ENV_STOP_AFTER_EPOCHS, "").strip()
    return int(text) if text else None


def write_trace(trace_dir: str, ctx: ddp_utils.DistContext, model: torch.nn.Module, seen: list[list[int]]) -> None:
    """Diagnostics for ``$ECG_TRAIN_TRACE_DIR``: ``rank<r>.json`` with the example indices this rank trained on
    per epoch (of this run) and the sha256 of its weights."""
    if not trace_dir:
        return
    os.makedirs(trace_dir, exist_ok=True)
    payload = {"rank": ctx.rank, "world_size": ctx.world_size, "examples": seen, "state_sha256": state_digest(model)}
    with open(os.path.join(trace_dir, f"rank{ctx.rank}.json"), "w", encoding="utf-8") as f:
        json.dump(payload, f)
