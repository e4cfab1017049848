"""Decisions and macro F of Dx probabilities (training's own measures; the official score is in helper_code)."""

from __future__ import annotations

import numpy as np


def decide(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(N, C) bool decisions: classes at or above their threshold, else the most probable class."""
    pred = probs >= thresholds[None, :]
    none = ~pred.any(axis=1)
    pred[none, probs[none].argmax(axis=1)] = True
    return pred


def macro_f(probs: np.ndarray, targets: np.ndarray, thresholds: np.ndarray) -> float:
    """Macro F over the classes present in ``targets`` (a record with nothing above threshold gets its argmax)."""
    if probs.size == 0:
        return float("nan")
    pred = probs >= thresholds[None, :]
    none = ~pred.any(axis=1)
    pred[none, probs[none].argmax(axis=1)] = True
    scores = []
    for c in range(targets.shape[1]):
        if targets[:, c].sum() == 0:
            continue
        tp = float((pred[:, c] & (targets[:, c] > 0)).sum())
        fp = float((pred[:, c] & (targets[:, c] == 0)).sum())
        fn = float((~pred[:, c] & (targets[:, c] > 0)).sum())
        scores.append(2 * tp / max(2 * tp + fp + fn, 1e-9))
    return float(np.mean(scores)) if scores else float("nan")


def known_dx(probs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of a page epoch's Dx outputs whose targets are known (crops of pages have NaN targets)."""
    keep = np.isfinite(targets).all(axis=1) if targets.size else np.zeros(0, bool)
    return probs[keep], targets[keep]
