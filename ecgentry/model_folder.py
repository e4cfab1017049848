"""The trained model folder: ``model/`` (the network), the lead-label classifier, ``train_config.json`` and, written
last, ``entry.json`` (the training summary; a folder without it is incomplete and never loaded)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ecgdigitize import lead_labels
from ecgentry.config import TrainConfig
from models.model import ECGMultiHeadModel

ENTRY_FILE = "entry.json"
MODEL_SUBFOLDER = "model"


def save_entry(model_folder: str, model: ECGMultiHeadModel, cfg: TrainConfig, summary: dict[str, Any]) -> None:
    """Write the model folder: ``model/`` (config.json + safetensors), the lead-label classifier
    (``ecgdigitize.lead_labels.CLASSIFIER_FILE``), ``train_config.json`` and, last,
    ``entry.json``; ``load_models`` only accepts a folder whose ``entry.json`` exists, so an interrupted save is
    never loaded."""
    folder = Path(model_folder)
    folder.mkdir(parents=True, exist_ok=True)
    entry = folder / ENTRY_FILE
    if entry.exists():
        entry.unlink()
    target = folder / MODEL_SUBFOLDER
    if target.exists():
        shutil.rmtree(target)
    model.save(target)
    lead_labels.save_classifier(folder)
    cfg.to_json(folder / "train_config.json")
    tmp = folder / (ENTRY_FILE + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=float) + "\n", encoding="utf-8")
    os.replace(tmp, entry)
