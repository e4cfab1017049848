"""The training records: their split by record, their classes and class weights, one input page."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecgentry.records import RecordInfo
from ecgvocab import sort_classes


@dataclass
class Example:
    """One training input page: a record image file, or a page rendered in memory (letterboxed)."""

    info: RecordInfo
    image_file: str | None = None
    pixels: np.ndarray | None = None  # (H, W, 3) uint8, already letterboxed to the model input
    seg_target: np.ndarray | None = None  # (H, W) uint8 classes, 255 = ignore
    dx_known: bool = True  # False: a crop of a page, no Dx target (NaN)


def order_classes(labels: list[list[str]]) -> list[str]:
    """Classes seen in the training labels: the 11 final classes in their canonical order first, then others
    (e.g. the early binary ``Normal``/``Abnormal`` set) sorted."""
    return sort_classes(label for record_labels in labels for label in record_labels)


def split_by_record(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and validation records (at least one validation record when n >= 5)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_val = int(round(n * val_fraction)) if n >= 5 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def positive_weights(labels: list[list[str]], classes: list[str], limit: float = 10.0) -> list[float]:
    """BCE positive weight per class: negatives / positives, clipped to [1, ``limit``] (rare classes count more)."""
    n = len(labels)
    weights = []
    for c in classes:
        pos = sum(c in record_labels for record_labels in labels)
        weights.append(float(np.clip((n - pos) / max(pos, 1), 1.0, limit)))
    return weights


def labels_matrix(infos: list[RecordInfo], classes: list[str]) -> np.ndarray:
    """Multi-hot targets (len(infos), C) float32."""
    return np.array([[c in i.labels for c in classes] for i in infos], dtype=np.float32).reshape(
        len(infos), len(classes)
    )
