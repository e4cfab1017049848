"""An untrained model folder (random weights) that ``load_models`` / ``run_models`` accept: for benchmarks and
tests of the inference path (memory, failures), where what the network predicts does not matter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: A tiny ConvNeXt V2 backbone (four stages of one block, 8-64 channels) at 128 x 160 px network input.
TINY_BACKBONE: dict[str, Any] = {
    "name": "tiny-convnextv2-random",
    "pretrained": False,
    "hf_config": {"model_type": "convnextv2", "depths": [1, 1, 1, 1], "hidden_sizes": [8, 16, 32, 64]},
    "image_height": 128,
    "image_width": 160,
}
DEFAULT_CLASSES = ("NORM", "Old MI", "AFIB/AFL")


def write_random_entry(
    folder: str | Path,
    trace_source: str = "combined",
    backbone: dict[str, Any] | None = None,
    classes: tuple[str, ...] = DEFAULT_CLASSES,
    seed: int = 0,
) -> Path:
    """Write a model folder (``model/`` + ``entry.json``) holding a randomly initialised multi-head model (Dx and
    segmentation heads; ``backbone``: ``BackboneConfig`` fields, default :data:`TINY_BACKBONE`, or None keys left
    at ``TrainConfig``'s defaults when given ``{}``) whose entry uses ``trace_source`` (classical, segmentation,
    combined). The fallback labels are the first class. Returns the folder."""
    import torch

    from ecgentry.config import TrainConfig
    from ecgentry.model_folder import ENTRY_FILE, MODEL_SUBFOLDER
    from ecgentry.train import build_model_config
    from models.model import build_model

    torch.manual_seed(seed)
    cfg = TrainConfig.from_dict(
        {
            "backbone": {**(TINY_BACKBONE if backbone is None else {"pretrained": False}), **(backbone or {})},
            "dx_hidden_sizes": [16],
            "segmentation_decoder_channels": 8,
        }
    )
    model = build_model(build_model_config(cfg, list(classes), pretrained=False))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / MODEL_SUBFOLDER)
    summary = {
        "classes": list(classes),
        "fallback_labels": [classes[0]],
        "digitizer": cfg.digitizer,
        "trace_source": trace_source,
        "weights_source": "random",
    }
    (folder / ENTRY_FILE).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return folder
