"""The training report in the model folder: ``training_report.csv`` (one row per epoch: losses, validation
scores) and ``training_report.png`` (loss curves and validation macro F per epoch)."""

from __future__ import annotations

import csv
import logging
import math
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REPORT_CSV = "training_report.csv"
REPORT_PNG = "training_report.png"


def write_report_csv(model_folder: str | os.PathLike, history: list[dict[str, Any]]) -> Path:
    """One row per epoch, columns ``epoch`` then every metric seen in any epoch (sorted); empty when missing."""
    path = Path(model_folder) / REPORT_CSV
    keys = sorted({k for row in history for k in row if k != "epoch"})
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", *keys])
        for row in history:
            writer.writerow([row.get("epoch", "")] + [_fmt(row.get(k)) for k in keys])
    os.replace(tmp, path)
    return path


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def write_report_png(model_folder: str | os.PathLike, history: list[dict[str, Any]]) -> Path | None:
    """Loss curves (train/validation total and the per-task parts) and validation macro F per epoch; None when
    matplotlib is unavailable or there is no history (logged, never fatal)."""
    if not history:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except Exception as exc:  # optional: the CSV carries the same numbers
        logger.warning("no training_report.png (matplotlib unavailable: %s)", exc)
        return None
    epochs = [row.get("epoch", i + 1) for i, row in enumerate(history)]
    loss_keys = sorted(
        {
            k
            for row in history
            for k in row
            if k.startswith(("train_", "val_"))
            and not k.startswith(("train_weight", "val_weight"))
            and "macro_f" not in k
            and "." not in k
        }
    )  # total and one curve per task
    f_keys = sorted({k for row in history for k in row if "macro_f" in k})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key in loss_keys:
        axes[0].plot(
            epochs,
            [row.get(key, float("nan")) for row in history],
            marker="o",
            linestyle="-" if key.startswith("train_") else "--",
            label=key,
        )
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss")
    axes[0].set_title("losses")
    if loss_keys:
        axes[0].legend(fontsize=7)
    for key in f_keys:
        axes[1].plot(epochs, [row.get(key, float("nan")) for row in history], marker="o", label=key)
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("macro F")
    axes[1].set_ylim(0, 1)
    axes[1].set_title("validation macro F" if f_keys else "validation macro F (no validation split)")
    if f_keys:
        axes[1].legend(fontsize=7)
    fig.tight_layout()
    path = Path(model_folder) / REPORT_PNG
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)
    return path
