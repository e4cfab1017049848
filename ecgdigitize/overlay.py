"""Picture of a digitization: what was traced, drawn over the page, with its text in a margin.

The page (rectified, faded) carries the row baselines, lead boxes with their names, the traced signal and the
calibration pulses, each in its own colour; a white band above the page holds a colour legend and the facts
(status with its reasons, scale, layout, rotation, confidence), so no text covers the page's own header.
"""

from __future__ import annotations

import cv2
import numpy as np

from .image_io import to_rgb_uint8

#: RGB colours of the drawn elements (also shown in the legend).
BASELINE = (0, 90, 255)
BOX = (0, 160, 0)
BOX_TEXT = (0, 120, 0)
TRACE = (230, 0, 200)
PULSE = (255, 140, 0)
TEXT = (30, 30, 30)
STATUS_COLOUR = {"ok": (0, 140, 0), "suspect": (220, 120, 0), "failed": (210, 0, 0)}
LEGEND = (
    ("traced signal", TRACE),
    ("lead box and name", BOX),
    ("row baseline", BASELINE),
    ("calibration pulse", PULSE),
)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw_overlay(image: np.ndarray, result: "DigitizationResult", margin: bool = True) -> np.ndarray:  # noqa: F821
    """RGB uint8 picture: the rectified page (``result.rectified`` when present, else ``image``) with row baselines
    (blue), lead boxes and names (green), traced samples (magenta) and calibration pulses (orange). With
    ``margin`` (default) a band above the page holds the legend, the self-check's status with its reasons, the
    scale, layout, rotation and confidence: the picture is then taller than the page, which starts at row
    ``overlay_margin_height(...)``; without it the page alone is returned (same shape as the page)."""
    page = draw_page(image, result)
    if not margin:
        return page
    band = _margin(result, page.shape[1])
    return np.concatenate([band, page], axis=0)


def draw_page(image: np.ndarray, result: "DigitizationResult") -> np.ndarray:  # noqa: F821
    """The faded page with what was traced drawn over it (no text other than the lead names)."""
    base = result.rectified if result.rectified is not None else to_rgb_uint8(image)
    out = (0.6 * base.astype(np.float32) + 0.4 * 255).astype(np.uint8)
    h, w = out.shape[:2]
    th = _thickness(w, h)
    if result.layout is not None:
        for r in result.layout.rows:
            y = int(round(r.baseline_y))
            cv2.line(out, (r.x0, y), (r.x1, y), BASELINE, th)
        for b in result.layout.boxes:
            y0 = int(round(b.baseline_y - 0.4 * (result.layout.rows[b.row].y1 - result.layout.rows[b.row].y0)))
            y1 = int(round(b.baseline_y + 0.4 * (result.layout.rows[b.row].y1 - result.layout.rows[b.row].y0)))
            cv2.rectangle(out, (int(b.x0), y0), (int(b.x1), y1), BOX, th)
            cv2.putText(out, b.name, (int(b.x0) + 3, y0 + 14 * th), FONT, 0.5 * th, BOX_TEXT, th, cv2.LINE_AA)
    for t in result.traces:
        ok = np.isfinite(t.x) & np.isfinite(t.y)
        if ok.sum() >= 2:
            pts = np.stack([t.x[ok], t.y[ok]], axis=1)
            cv2.polylines(
                out, [np.round(pts * 16).astype(np.int32).reshape(-1, 1, 2)], False, TRACE, th, cv2.LINE_AA, 4
            )
    if result.calibration is not None:
        for p in result.calibration.pulses:
            cv2.rectangle(out, (int(p.x0), int(p.top_y)), (int(p.x1), int(p.base_y)), PULSE, th)
    return out


def overlay_lines(result: "DigitizationResult") -> list[tuple[str, tuple[int, int, int]]]:  # noqa: F821
    """The margin's text lines with their colours: status and reasons first, then the geometry."""
    status = result.status
    lines = [(f"status: {status}", STATUS_COLOUR.get(status, TEXT))]
    lines += [(f"  - {reason}", TEXT) for reason in result.status_reasons[:4]]
    facts = []
    if result.layout is not None:
        lay = result.layout
        facts.append(
            f"layout {lay.name}"
            + ("" if lay.fits else " (fits no template)")
            + (f" (part of a page: {len(lay.absent)} leads not on it)" if lay.absent else "")
        )
    if result.scale is not None:
        facts.append(
            f"scale {result.scale.px_per_mm_x:.2f} x {result.scale.px_per_mm_y:.2f} px/mm (from {result.scale.source})"
        )
    if result.calibration is not None and result.calibration.gain_mm_per_mv:
        facts.append(f"gain {result.calibration.gain_mm_per_mv:g} mm/mV ({result.calibration.source})")
    if result.orientation is not None:
        facts.append(
            f"rotation {result.orientation.angle_deg:.2f} deg"
            + (f", {result.orientation.quarter_turns} quarter turn(s)" if result.orientation.quarter_turns else "")
        )
    facts.append(f"confidence {result.confidence:.2f}")
    lines.append(("; ".join(facts), TEXT))
    return lines


def _thickness(w: int, h: int) -> int:
    return max(1, int(round(max(h, w) / 1500)))


def _wrap(text: str, scale: float, th: int, width: int) -> list[str]:
    """``text`` cut at spaces into lines at most ``width`` px wide."""
    words, lines, cur = text.split(" "), [], ""
    lead = len(text) - len(text.lstrip(" "))
    for word in words:
        trial = f"{cur} {word}" if cur else word
        if cur and cv2.getTextSize(trial, FONT, scale, th)[0][0] > width:
            lines.append(cur)
            cur = " " * (lead + 2) + word
        else:
            cur = trial
    if cur:
        lines.append(cur)
    return lines


def overlay_margin_height(result: "DigitizationResult", width: int) -> int:  # noqa: F821
    """Height in px of the band :func:`draw_overlay` puts above a page ``width`` px wide."""
    return _margin(result, width).shape[0]


def _margin(result: "DigitizationResult", width: int) -> np.ndarray:  # noqa: F821
    th = max(1, int(round(width / 1200)))
    scale = 0.5 * th + 0.1
    line_h = int(round(24 * th + 6))
    pad = 10 * th
    text_lines: list[tuple[str, tuple[int, int, int]]] = []
    for text, colour in overlay_lines(result):
        text_lines += [(part, colour) for part in _wrap(text, scale, th, width - 2 * pad)]
    # the legend: one row of colour swatches, wrapped when the page is narrow
    items = []
    for label, colour in LEGEND:
        tw = cv2.getTextSize(label, FONT, scale, th)[0][0]
        items.append((label, colour, 3 * line_h // 2 + tw + 2 * line_h // 3))
    legend_rows, row, used = [], [], 0
    for item in items:
        if row and used + item[2] > width - 2 * pad:
            legend_rows.append(row)
            row, used = [], 0
        row.append(item)
        used += item[2]
    legend_rows.append(row)
    height = pad + line_h * (len(legend_rows) + len(text_lines)) + pad
    band = np.full((height, width, 3), 255, np.uint8)
    y = pad
    for row in legend_rows:
        x = pad
        for label, colour, step in row:
            mid = y + line_h // 2
            cv2.line(band, (x, mid), (x + line_h, mid), colour, max(2, 2 * th), cv2.LINE_AA)
            cv2.putText(band, label, (x + line_h + line_h // 3, mid + 6 * th), FONT, scale, TEXT, th, cv2.LINE_AA)
            x += step
        y += line_h
    for text, colour in text_lines:
        cv2.putText(band, text, (pad, y + line_h // 2 + 6 * th), FONT, scale, colour, th, cv2.LINE_AA)
        y += line_h
    cv2.line(band, (0, height - 1), (width - 1, height - 1), (160, 160, 160), 1)
    return band
