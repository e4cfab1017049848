"""Column boundaries of a multi-column row: each lead keeps its own ink.

On a 3x4 page one row carries four leads printed end to end. Where a lead ends in the middle of a steep
stroke (a QRS cut by the column boundary), that stroke's ink reaches about half a line width past the
boundary, and a row tracker that prefers small jumps follows it into the first columns of the next lead
(and the next lead's first ink into the previous lead's last columns). Those few columns (2-3 px at
200 DPI, 5-8 ms) then carry the other lead's value, often 1 mV away: one such start can cost a lead
several dB of SNR.

:func:`retrace_boundaries` re-traces a window around every boundary, unselecting the runs next to the
boundary that are not connected to their own lead's trace (:func:`vectorise._drop_foreign_runs`; the
lead's first or last value is then held), and splices the new curve into the row's curve between
the nearest columns left and right of the boundary where old and new agree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .vectorise import TraceCurve, curve_anchors, foreign_stretches, spliced_points, trace_rows

log = logging.getLogger(__name__)


@dataclass
class BoundaryZone:
    """Where one lead ends and the next begins in row ``row``: the boundary ``x`` (page pixels) and the
    columns [x_lo, x_hi] that may differ after re-tracing (a separator tick or the boundary's reach)."""

    row: int
    x: float
    x_lo: float
    x_hi: float


def splice(
    curve: TraceCurve, new: TraceCurve, x_lo: float, x_hi: float, min_span_px: float = 0.0, tol_px: float = 0.5
) -> bool:
    """Copy ``new`` (a re-traced window of the same row) into ``curve`` (in place) between the last
    column left of ``x_lo`` and the first right of ``x_hi`` where both agree within ``tol_px``,
    searching no closer than ``min_span_px`` to the window edges. Returns False (nothing copied)
    without such columns."""
    if new.y.size == 0 or curve.y.size == 0:
        return False
    xs_new = new.x
    old_at = np.interp(xs_new, curve.x, curve.y, left=np.nan, right=np.nan)
    agree = np.abs(new.y - old_at) <= tol_px
    wa, wz = xs_new[0], xs_new[-1]
    left_ok = np.flatnonzero(agree & (xs_new < x_lo) & (xs_new >= wa + min_span_px))
    right_ok = np.flatnonzero(agree & (xs_new > x_hi) & (xs_new <= wz - min_span_px))
    if left_ok.size == 0 or right_ok.size == 0:
        return False
    s, e = int(xs_new[left_ok[-1]]), int(xs_new[right_ok[0]])
    ci = np.arange(s, e + 1) - curve.x0
    ni = np.arange(s, e + 1) - new.x0
    ok = (ci >= 0) & (ci < curve.y.size)
    curve.y[ci[ok]] = new.y[ni[ok]]
    curve.pts_x, curve.pts_y = spliced_points(curve, new, s, e)
    return True


def _strays(
    curve: TraceCurve,
    new: TraceCurve,
    row: int,
    bases: np.ndarray,
    px_per_mm_x: float,
    level_at: Callable[[float], float] | None = None,
) -> bool:
    """True when the re-traced window ``new`` of row ``row`` follows another row's trace over columns where
    ``curve`` (the row's current curve) does not; ``level_at``: the row's own level (pixels) at a column."""
    own = None if level_at is None else np.array([level_at(float(x)) for x in new.x])
    stretches = foreign_stretches(new.y, row, bases, px_per_mm_x, own)
    if not stretches:
        return False
    old = np.interp(new.x, curve.x, curve.y, left=np.nan, right=np.nan)
    old_foreign = np.zeros(new.y.size, bool)
    for a, e in foreign_stretches(old, row, bases, px_per_mm_x, own):
        old_foreign[a:e] = True
    return any(not old_foreign[a:e].all() for a, e in stretches)


def retrace_boundaries(
    prob: np.ndarray,
    curves: list[TraceCurve],
    rows: list[tuple[int, int, int, int, float]],
    zones: list[BoundaryZone],
    window_px: int,
    threshold: float = 0.5,
    px_per_mm_x: float | None = None,
    levels: list[Callable[[float], float]] | None = None,
) -> int:
    """Re-trace ``window_px`` pixels on both sides of every boundary zone, dropping the other lead's ink
    next to the boundary, and splice the result into ``curves`` (in place; see :func:`splice`).
    With ``px_per_mm_x``, a re-traced window that follows another row's trace where the row's curve did not
    (:func:`vectorise.foreign_stretches`) is not spliced: a short window tracked jointly with its neighbours
    can lose its own line (the Challenge generator's black-and-white pages: lead III's last 0.13 s taken from
    the rhythm strip 32 mm below, next to a separator tick). ``levels``: per row, its own level (pixels) at a
    column, for rows whose leads are printed at their own heights (:meth:`layout.Row.level_at`).

    prob: (H, W) trace probability (e.g. with separator ticks subtracted); curves: one per row; rows:
    per row (y0, y1, x0, x1, baseline_y) page pixels. Zones whose windows overlap are re-traced together
    (all rows of a 3x4 page share their column boundaries), with their direct neighbour rows for the
    joint tracking. Returns the number of (row, window) splices made.
    """
    if not zones or not curves:
        return 0
    zones = sorted(zones, key=lambda z: z.x_lo)
    bases = np.array([r[4] for r in rows], np.float64)
    groups: list[list[BoundaryZone]] = [[zones[0]]]
    for z in zones[1:]:
        if z.x_lo - max(g.x_hi for g in groups[-1]) <= window_px:
            groups[-1].append(z)
        else:
            groups.append([z])
    n = 0
    for grp in groups:
        gx0, gx1 = min(z.x_lo for z in grp), max(z.x_hi for z in grp)
        wa, wz = int(np.floor(gx0)) - window_px, int(np.ceil(gx1)) + window_px + 1
        rows_with = {z.row for z in grp}
        near = {j for i in rows_with for j in (i - 1, i, i + 1)}
        sub_rows = [
            (y0, y1, max(x0, wa), max(max(x0, wa), min(x1, wz)) if k in near else max(x0, wa), b)
            for k, (y0, y1, x0, x1, b) in enumerate(rows)
        ]
        bx = [tuple(z.x for z in grp if z.row == k) for k in range(len(rows))]
        # every re-traced row starts and ends on its current curve (a neighbour row tracked over a short
        # window has no context and may otherwise start on another row's trace)
        anchors = [
            curve_anchors(curves[k], sub_rows[k][2], sub_rows[k][3]) if k < len(curves) else ()
            for k in range(len(rows))
        ]
        new = trace_rows(prob, sub_rows, threshold=threshold, boundary_x=bx, anchors=anchors)
        for z in grp:
            if z.row >= len(curves):
                continue
            level_at = levels[z.row] if levels is not None and z.row < len(levels) else None
            if px_per_mm_x is not None and _strays(curves[z.row], new[z.row], z.row, bases, px_per_mm_x, level_at):
                log.debug("re-traced window of row %d at x=%.0f follows another row: not spliced", z.row, z.x)
                continue
            if splice(curves[z.row], new[z.row], z.x_lo, z.x_hi, window_px / 3.0):
                n += 1
    if n:
        log.debug("re-traced %d lead boundaries", n)
    return n
