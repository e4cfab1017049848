"""The paper region of a photographed page: the sheet is much brighter than what lies around it.

On a photo (or a scan with the scanner lid's dark margin) the page edge and the background beyond it
look like long dark lines to the trace map and become spurious trace rows. :func:`paper_mask` finds the
sheet as the largest bright region (closed over the trace and grid ink, holes filled, cut to the convex
hull of its bright pixels) and returns it, slightly eroded, when a clearly darker border surrounds it;
None when the sheet fills the image.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

log = logging.getLogger(__name__)

WORK_MAX_SIDE = 800

#: A sheet mask whose edge cuts trace rows is wrong: what it leaves out is shaded paper (a wrinkle's or a fold's
#: shadow, a dim corner of a crop), not background. Ink beyond the sheet (more than SHEET_EDGE_MARGIN of the image's
#: longer side from its edge) that belongs to wide, thin ink components (at least ROW_MIN_WIDTH of the image's width,
#: on average at most ROW_MAX_INK_PER_COLUMN of the image's height inked per column: trace rows, not the dark wedges a
#: rotated scan leaves in its corners) which also lie inside the sheet is the evidence; at least CUT_INK_FRACTION of the ink beyond the sheet makes
#: the mask wrong. Measured: the Challenge generator's wrinkled pages whose shadows were masked 0.46-0.71, a real
#: crop with a shaded corner 0.75; our renderer's photographed pages with a true background 0-0.10 (a trace row
#: running into the sheet's edge joins it to the background's ink).
SHEET_EDGE_MARGIN = 0.01
ROW_MIN_WIDTH = 0.03
ROW_MAX_INK_PER_COLUMN = 0.015
CUT_INK_FRACTION = 0.3


def paper_mask(
    rgb: np.ndarray, min_border_frac: float = 0.02, bright_frac: float = 0.6, dark_ratio: float = 0.6
) -> np.ndarray | None:
    """(H, W) bool mask of the paper sheet in ``rgb`` ((H, W, 3) uint8), or None without a border.

    Bright: luminance above ``bright_frac`` times the page's bright level (90th percentile). The sheet is
    the largest bright region after a closing (~2 % of the image side) with its holes filled. A border
    counts when the rest covers at least ``min_border_frac`` of the image and its median luminance is
    below ``dark_ratio`` times the bright level.
    """
    img = np.asarray(rgb)
    if img.ndim != 3 or img.shape[2] < 3 or min(img.shape[:2]) < 32:
        return None
    h, w = img.shape[:2]
    lum = cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2GRAY)
    f = min(1.0, WORK_MAX_SIDE / max(h, w))
    small = (
        cv2.resize(lum, (max(1, int(round(w * f))), max(1, int(round(h * f)))), interpolation=cv2.INTER_AREA)
        if f < 1.0
        else lum
    )
    level = float(np.percentile(small, 90))
    if level <= 0:
        return None
    bright = (small > bright_frac * level).astype(np.uint8)
    k = max(3, int(round(0.02 * max(small.shape))) | 1)
    closed = cv2.morphologyEx(bright, cv2.MORPH_CLOSE, np.ones((k, k), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=4)
    if n <= 1:
        return None
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    sheet = labels == best
    # fill holes: background components that do not touch the image border
    inv = (~sheet).astype(np.uint8)
    n2, lab2 = cv2.connectedComponents(inv, connectivity=4)
    border_labels = set(np.unique(np.r_[lab2[0], lab2[-1], lab2[:, 0], lab2[:, -1]]).tolist())
    holes = (lab2 > 0) & ~np.isin(lab2, list(border_labels))
    sheet |= holes
    # a flat sheet is convex: the closing also fills thin wedges of background where the sheet's edge meets
    # the image border at a slant; the convex hull of the sheet's bright pixels leaves them out
    pts = cv2.findNonZero((bright.astype(bool) & sheet).astype(np.uint8))
    if pts is not None and len(pts) >= 3:
        hull = np.zeros(sheet.shape, np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(pts), 1)
        sheet &= hull.astype(bool)
    outside = ~sheet
    frac_out = float(outside.mean())
    if frac_out < min_border_frac or frac_out > 0.7:
        return None
    if float(np.median(small[outside])) > dark_ratio * level:
        return None  # the rest is not clearly darker: no border
    e = max(1, int(round(0.006 * max(small.shape))))
    sheet = cv2.erode(sheet.astype(np.uint8), np.ones((2 * e + 1, 2 * e + 1), np.uint8))
    if f < 1.0:
        sheet = cv2.resize(sheet, (w, h), interpolation=cv2.INTER_NEAREST)
    log.debug("paper region: %.1f%% of the image", 100.0 * float(sheet.mean()))
    return sheet.astype(bool)


def sheet_cuts_trace_rows(sheet: np.ndarray, prob: np.ndarray, threshold: float = 0.5) -> bool:
    """True when the paper mask ``sheet`` ((H, W) bool) cuts trace rows of the trace probability ``prob`` ((H, W))
    in two: then the region it leaves out is paper too (see :data:`CUT_INK_FRACTION`)."""
    h, w = prob.shape
    ink = (prob > threshold).astype(np.uint8)
    m = max(1, int(round(SHEET_EDGE_MARGIN * max(h, w))))
    kernel = np.ones((2 * m + 1, 2 * m + 1), np.uint8)
    inside = cv2.erode(sheet.astype(np.uint8), kernel).astype(bool)
    beyond = ~cv2.dilate(sheet.astype(np.uint8), kernel).astype(bool)
    ink_beyond = ink.astype(bool) & beyond
    total = int(ink_beyond.sum())
    if total == 0:
        return False
    n, lab, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    wide = np.zeros(n, bool)
    cw = stats[1:, cv2.CC_STAT_WIDTH]
    wide[1:] = (cw >= ROW_MIN_WIDTH * w) & (stats[1:, cv2.CC_STAT_AREA] <= ROW_MAX_INK_PER_COLUMN * h * cw)
    in_sheet = np.zeros(n, bool)
    in_sheet[np.unique(lab[inside & (lab > 0)])] = True
    rows = wide & in_sheet
    cut = int(rows[lab[ink_beyond]].sum())
    log.debug("ink beyond the sheet on trace rows that cross its edge: %.2f", cut / total)
    return cut >= CUT_INK_FRACTION * total
