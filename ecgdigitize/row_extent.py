"""Rows found shorter than their lead boxes, traced over the rest of them.

The row finder keeps the trace map's large connected pieces only (text and specks are small). A thin trace that the
scan or the rectification broke into pieces shorter than that at its steep strokes loses those columns, and its row
ends early: a photographed page's V1 and V4 (1-px strokes, peaks running off the photo's edge) were cut off at 7 of
10 s, and V4 had no samples. Once the layout has placed the row's lead boxes, :func:`extend_rows_to_boxes` traces
the row again over the boxes' columns it missed, starting on its own curve, jointly with its neighbours, and keeps
the new stretch only where it is a trace of this row: mostly inked, near the row's level, never on a neighbour's
line.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from .layout import LeadBox, Row
from .vectorise import TraceCurve, curve_anchors, foreign_stretches, spliced_points, trace_rows

log = logging.getLogger(__name__)

#: least gap (mm) between a row's traced end and its boxes' end for the row to be traced again there
ROW_EXTEND_MIN_MM = 5.0
#: least fraction of the new columns that must be traced for the extension to be kept (a blank column of the
#: layout, a lead not printed, gives a few specks)
ROW_EXTEND_MIN_COVERAGE = 0.6
#: largest median distance (mm) of the extension from the row's level (a stretch of a row's trace keeps near its
#: isoelectric line most of the time; header or footer text keeps away from it)
ROW_EXTEND_MAX_LEVEL_MM = 5.0
#: overlap (mm) of the re-traced window with the row's traced curve, whose values anchor the new track
ROW_EXTEND_OVERLAP_MM = 5.0


def _ends(curve: TraceCurve) -> tuple[int, int] | None:
    """Page x of the curve's first and last traced columns; None when nothing was traced."""
    ok = np.flatnonzero(np.isfinite(curve.y))
    return (curve.x0 + int(ok[0]), curve.x0 + int(ok[-1])) if ok.size else None


def _with_stretch(curve: TraceCurve, new: TraceCurve, xa: int, xz: int) -> TraceCurve:
    """``curve`` widened to cover columns [xa, xz] (page pixels), whose values (and centre-line points) come from
    ``new``."""
    x0 = min(curve.x0, xa)
    x1 = max(curve.x0 + curve.y.size - 1, xz)
    y = np.full(x1 - x0 + 1, np.nan)
    y[curve.x0 - x0 : curve.x0 - x0 + curve.y.size] = curve.y
    cols = np.arange(xa, xz + 1)
    y[cols - x0] = new.y[cols - new.x0]
    px, py = spliced_points(curve, new, xa - 0.5, xz + 0.5)
    return replace(curve, x0=x0, y=y, coverage=float(np.isfinite(y).mean()), pts_x=px, pts_y=py)


def extend_rows_to_boxes(
    rows: list[Row],
    curves: list[TraceCurve],
    boxes: list[LeadBox],
    prob: np.ndarray,
    px_per_mm_x: float,
    px_per_mm_y: float,
) -> list[int]:
    """Trace each row again over the columns of its lead boxes beyond its traced curve (in place: ``rows[i]`` and
    ``curves[i]`` are replaced where a stretch is kept). prob: (H, W) trace probability of the rectified page.
    Returns the indices of the rows extended."""
    W = prob.shape[1]
    spans = [(r.y0, r.y1, r.x0, r.x1, r.baseline_y) for r in rows]
    bases = np.array([r.baseline_y for r in rows], np.float64)
    overlap = int(round(ROW_EXTEND_OVERLAP_MM * px_per_mm_x))
    extended: list[int] = []
    for i, r in enumerate(rows):
        mine = [b for b in boxes if b.row == i]
        ends = _ends(curves[i])
        if not mine or ends is None:
            continue
        lo = int(max(0, np.floor(min(b.x0 for b in mine))))
        hi = int(min(W - 1, np.ceil(max(b.x1 for b in mine))))
        gap = ROW_EXTEND_MIN_MM * px_per_mm_x
        for side, (xa, xz) in (("right", (ends[1] + 1, hi)), ("left", (lo, ends[0] - 1))):
            if xz - xa + 1 < gap:
                continue
            wa, wz = (ends[1] - overlap, hi) if side == "right" else (lo, ends[0] + overlap)
            # the window for every row (joint tracking keeps each row on its own line), anchored on the curves
            sub = []
            for k, (y0, y1, x0, x1, b) in enumerate(spans):
                # (x0, x1) of a row span: x1 exclusive
                sa, sz = (wa, wz + 1) if k == i else (max(wa, x0), min(wz + 1, x1))
                sub.append((y0, y1, sa, max(sa, sz), b))
            anchors = [curve_anchors(curves[k], s[2], s[3]) for k, s in enumerate(sub)]
            anchors[i] = curve_anchors(curves[i], wa, wz + 1)
            new = trace_rows(prob, sub, anchors=anchors)[i]
            cols = np.arange(xa, xz + 1)
            vals = new.y[cols - new.x0] if new.y.size == wz + 1 - wa else np.full(cols.size, np.nan)
            ok = np.isfinite(vals)
            if ok.mean() < ROW_EXTEND_MIN_COVERAGE:
                continue
            level = np.array([r.level_at(float(x)) for x in cols])
            if np.median(np.abs(vals[ok] - level[ok])) > ROW_EXTEND_MAX_LEVEL_MM * px_per_mm_y:
                continue
            if foreign_stretches(vals, i, bases, px_per_mm_x, level):
                continue
            curves[i] = _with_stretch(curves[i], new, xa, xz)
            rows[i] = r = replace(r, x0=min(r.x0, xa), x1=max(r.x1, xz))
            extended.append(i)
            log.debug("row %d traced %s over %d more columns of its boxes", i, side, xz - xa + 1)
    return sorted(set(extended))
