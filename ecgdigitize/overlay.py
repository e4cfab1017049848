"""Debug picture of a digitisation: rectified page, rows, lead boxes, traced signal and scale."""
from __future__ import annotations

import cv2
import numpy as np

from .image_io import to_rgb_uint8


def draw_overlay(image: np.ndarray, result: "DigitizationResult") -> np.ndarray:  # noqa: F821
    """RGB uint8 (H, W, 3) picture: the rectified page (``result.rectified`` when present, else
    ``image``) with row baselines (blue), lead boxes and names (green), traced samples (magenta)
    and the scale/layout found and the self-check's status with its first reasons written at the top left."""
    base = result.rectified if result.rectified is not None else to_rgb_uint8(image)
    out = (0.6 * base.astype(np.float32) + 0.4 * 255).astype(np.uint8)
    h, w = out.shape[:2]
    th = max(1, int(round(max(h, w) / 1500)))
    if result.layout is not None:
        for r in result.layout.rows:
            y = int(round(r.baseline_y))
            cv2.line(out, (r.x0, y), (r.x1, y), (0, 90, 255), th)
        for b in result.layout.boxes:
            y0 = int(round(b.baseline_y - 0.4 * (result.layout.rows[b.row].y1 - result.layout.rows[b.row].y0)))
            y1 = int(round(b.baseline_y + 0.4 * (result.layout.rows[b.row].y1 - result.layout.rows[b.row].y0)))
            cv2.rectangle(out, (int(b.x0), y0), (int(b.x1), y1), (0, 160, 0), th)
            cv2.putText(out, b.name, (int(b.x0) + 3, y0 + 14 * th), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * th,
                        (0, 120, 0), th, cv2.LINE_AA)
    for t in result.traces:
        ok = np.isfinite(t.x) & np.isfinite(t.y)
        if ok.sum() >= 2:
            pts = np.stack([t.x[ok], t.y[ok]], axis=1)
            cv2.polylines(out, [np.round(pts * 16).astype(np.int32).reshape(-1, 1, 2)], False, (230, 0, 200),
                          th, cv2.LINE_AA, 4)
    if result.calibration is not None:
        for p in result.calibration.pulses:
            cv2.rectangle(out, (int(p.x0), int(p.top_y)), (int(p.x1), int(p.base_y)), (255, 140, 0), th)
    lines = []
    if result.scale is not None:
        lines.append(f"scale {result.scale.px_per_mm_x:.2f} x {result.scale.px_per_mm_y:.2f} px/mm "
                     f"({result.scale.source})")
    if result.layout is not None:
        lines.append(f"layout {result.layout.name} fits={result.layout.fits} cost={result.layout.cost:.2f}")
    if result.orientation is not None:
        lines.append(f"rotation {result.orientation.angle_deg:.2f} deg, turns {result.orientation.quarter_turns}")
    lines.append(f"confidence {result.confidence:.2f}")
    lines.append(f"self-check: {result.status}")
    lines += [f"  {reason[:110]}" for reason in result.status_reasons[:3]]
    for i, text in enumerate(lines):
        cv2.putText(out, text, (10, 25 * th * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * th, (200, 0, 0), th,
                    cv2.LINE_AA)
    return out
