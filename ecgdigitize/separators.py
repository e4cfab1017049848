"""Column-separator ticks: short vertical lines printed at interior lead boundaries of a row.

A tick is a straight vertical ink segment of constant x and fixed height centred on the row baseline.
:func:`find_ticks` finds, near each boundary, the columns whose ink run through the baseline covers the
tick's extent without reaching much beyond it (a trace stroke that hides the tick reaches far beyond:
such boundaries are reported as hidden and left alone). :func:`subtract_ticks` removes only the tick's
own pixels from a trace probability map, keeping rows where trace ink touches the tick on both sides
(the trace passing through). :func:`retrace_near_ticks` re-traces the rows in small windows around
the ticks and splices the new curve into the old one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .boundaries import BoundaryZone, retrace_boundaries
from .vectorise import TraceCurve

log = logging.getLogger(__name__)

#: A tick is a bar of its own. A QRS stroke on a boundary runs through the baseline at a tick's height too, but it
#: is one column of a slanted stroke: the columns right beside it (within this many pixels) on both sides reach far
#: beyond the tick's extent (towards the peak on one side, the trough on the other). Such a "tick" is left to the
#: trace (hidden). The next lead's first QRS may touch a true tick on one side only. On a real 3x4+3 scan without
#: ticks, aVR's first QRS (on the boundary) had been subtracted as a tick, and the Goldberger residual was 0.45.
TICK_SIDE_PX = 1


@dataclass
class Tick:
    """One separator tick: columns [x0, x1] and rows [y0, y1] (inclusive page pixels) of ``row``;
    ``hidden`` True when a trace stroke covers the tick (nothing to subtract)."""

    row: int
    boundary_x: float
    x0: int
    x1: int
    y0: int
    y1: int
    hidden: bool = False


def _base_run(col: np.ndarray, b: int) -> tuple[int, int] | None:
    """(top, bottom) inclusive of the True run of ``col`` through row ``b`` (or b +- 1)."""
    n = col.size
    start = next((y for y in (b, b - 1, b + 1) if 0 <= y < n and col[y]), None)
    if start is None:
        return None
    t = start
    while t > 0 and col[t - 1]:
        t -= 1
    e = start
    while e + 1 < n and col[e + 1]:
        e += 1
    return t, e


def _side_reach(prob: np.ndarray, threshold: float, xs: range, y_top: int, y_bot: int) -> tuple[int, int]:
    """(top, bottom) rows reached by the ink runs (``prob`` (H, W) above ``threshold``) of columns ``xs`` that
    overlap rows [y_top, y_bot]; (y_top, y_bot) where there are none."""
    H, W = prob.shape
    top, bot = y_top, y_bot
    for x in xs:
        if not 0 <= x < W:
            continue
        col = prob[:, x] > threshold
        rows = np.flatnonzero(col[max(0, y_top) : min(H, y_bot + 1)]) + max(0, y_top)
        if rows.size == 0:
            continue
        t, b = int(rows[0]), int(rows[-1])
        while t > 0 and col[t - 1]:
            t -= 1
        while b + 1 < H and col[b + 1]:
            b += 1
        top, bot = min(top, t), max(bot, b)
    return top, bot


def find_ticks(
    prob: np.ndarray,
    boundaries: list[tuple[int, float, float]],
    px_per_mm_x: float,
    px_per_mm_y: float,
    threshold: float = 0.5,
    tol_mm: float = 1.0,
    min_mm: float = 2.5,
    max_mm: float = 14.0,
    max_width_mm: float = 0.6,
) -> list[Tick]:
    """Separator ticks near ``boundaries`` (row index, boundary x pixels, baseline y pixels).

    prob: (H, W) trace probability. A column is a tick candidate when its ink run through the baseline is
    ``min_mm``..``max_mm`` tall and roughly centred on it; the page's tick extent (offsets of its ends from
    the baseline) is the median over candidates. Per boundary, the contiguous candidate cluster nearest to
    the boundary (at most ``max_width_mm`` + 2 px wide) whose runs cover the extent is the tick; when the
    runs there reach more than ~1 mm plus a line width beyond the extent, the tick is hidden by the trace.
    A tick whose side columns on both sides reach that far too is a stroke's column (see :data:`TICK_SIDE_PX`):
    hidden.
    Returns one :class:`Tick` per boundary where a tick (visible or hidden) was found."""
    H, W = prob.shape
    if not boundaries or not np.isfinite(px_per_mm_x) or not np.isfinite(px_per_mm_y):
        return []
    tol = int(np.ceil(tol_mm * px_per_mm_x))
    reach = int(np.ceil(max_mm * px_per_mm_y))
    cands: list[tuple[int, float, float, int, list[tuple[int, int, int]]]] = []
    for row, xb, base in boundaries:
        b = int(round(base))
        xa, xz = max(0, int(round(xb)) - tol - 2), min(W, int(round(xb)) + tol + 3)
        ya, yz = max(0, b - reach), min(H, b + reach + 1)
        if xz <= xa or yz <= ya or not (ya <= b < yz):
            continue
        sub = prob[ya:yz, xa:xz] > threshold
        cols = []
        for j in range(sub.shape[1]):
            r = _base_run(sub[:, j], b - ya)
            if r is None:
                continue
            top, bot = r[0] + ya - base, r[1] + ya - base  # offsets from the baseline (pixels)
            if bot - top + 1 >= min_mm * px_per_mm_y:
                cols.append((xa + j, int(round(top)), int(round(bot))))
        cands.append((row, xb, base, b, cols))
    # page tick extent from "clean" candidate columns (centred, not too tall)
    tops, bots = [], []
    for _, _, _, _, cols in cands:
        for _, t, bt in cols:
            if bt - t + 1 <= max_mm * px_per_mm_y and abs(0.5 * (t + bt)) <= 1.5 * px_per_mm_y:
                tops.append(t)
                bots.append(bt)
    if len(tops) < 2:
        return []
    T, B = float(np.median(tops)), float(np.median(bots))
    slack = 2.0
    beyond = 1.0 * px_per_mm_y + 4.0
    wmax = int(np.ceil(max_width_mm * px_per_mm_x)) + 2
    out: list[Tick] = []
    for row, xb, base, b, cols in cands:
        cover = [(x, t, bt) for x, t, bt in cols if t <= T + slack and bt >= B - slack]
        if not cover:
            continue
        # contiguous clusters; the one nearest to the boundary
        xs = np.array([c[0] for c in cover])
        brk = np.flatnonzero(np.diff(xs) > 1)
        groups = np.split(np.arange(xs.size), brk + 1)
        g = min(groups, key=lambda ix: abs(0.5 * (xs[ix[0]] + xs[ix[-1]]) - xb))
        members = [cover[i] for i in g]
        hidden_cols = [m for m in members if m[1] < T - beyond or m[2] > B + beyond]
        tick_cols = [m for m in members if m not in hidden_cols]
        y0, y1 = int(np.floor(base + T)), int(np.ceil(base + B))
        if not tick_cols or len(members) > wmax + 2:
            if hidden_cols:
                out.append(Tick(row, xb, int(xs[g[0]]), int(xs[g[-1]]), y0, y1, hidden=True))
            continue
        if hidden_cols and len(tick_cols) < len(hidden_cols):
            # mostly a stroke through the tick: leave the ink to the trace
            out.append(Tick(row, xb, int(xs[g[0]]), int(xs[g[-1]]), y0, y1, hidden=True))
            continue
        if len(tick_cols) > wmax:
            continue
        tx0, tx1 = min(m[0] for m in tick_cols), max(m[0] for m in tick_cols)
        sides = (range(tx0 - TICK_SIDE_PX, tx0), range(tx1 + 1, tx1 + 1 + TICK_SIDE_PX))
        reach_beyond = [
            st < base + T - beyond or sb > base + B + beyond
            for st, sb in (_side_reach(prob, threshold, xs, y0, y1) for xs in sides)
        ]
        if all(reach_beyond):
            out.append(Tick(row, xb, tx0, tx1, y0, y1, hidden=True))
            continue
        out.append(Tick(row, xb, tx0, tx1, y0, y1))
    return out


def subtract_ticks(prob: np.ndarray, ticks: list[Tick], threshold: float = 0.5) -> np.ndarray:
    """Copy of ``prob`` (H, W) without the visible ticks' pixels: columns [x0 - 1, x1 + 1] (the
    anti-aliased rim included) over rows [y0 - 1, y1 + 1] become 0, except rows where ink lies on both
    sides of the tick (within one row), where the trace passes through."""
    out = prob.copy()
    H, W = prob.shape
    for tk in ticks:
        if tk.hidden:
            continue
        ya, yz = max(0, tk.y0 - 1), min(H, tk.y1 + 2)
        xa, xz = max(0, tk.x0 - 1), min(W, tk.x1 + 2)
        if yz <= ya or xz <= xa:
            continue
        lcols = [c for c in (xa - 1, xa - 2) if 0 <= c < W]
        rcols = [c for c in (xz, xz + 1) if 0 <= c < W]
        if not lcols or not rcols:
            continue
        ya2, yz2 = max(0, ya - 1), min(H, yz + 1)
        left = (prob[ya2:yz2, lcols] > threshold).any(axis=1)
        right = (prob[ya2:yz2, rcols] > threshold).any(axis=1)
        # dilate by one row
        left = left | np.r_[left[1:], False] | np.r_[False, left[:-1]]
        right = right | np.r_[right[1:], False] | np.r_[False, right[:-1]]
        keep = (left & right)[ya - ya2 : ya - ya2 + (yz - ya)]
        block = out[ya:yz, xa:xz]
        block[~keep, :] = 0.0
    return out


def retrace_near_ticks(
    prob: np.ndarray,
    curves: list[TraceCurve],
    rows: list[tuple[int, int, int, int, float]],
    ticks: list[Tick],
    window_px: int,
    threshold: float = 0.5,
    px_per_mm_x: float | None = None,
    levels: list[Callable[[float], float]] | None = None,
) -> int:
    """Re-trace every row in windows of ``window_px`` pixels on both sides of the visible ticks on
    ``prob`` (the map with the ticks subtracted) and splice the new curves into ``curves`` (in place)
    between columns where old and new agree within half a pixel, outside the tick (the neighbouring lead's
    ink next to the tick's column boundary left out; ``px_per_mm_x``, ``levels``: see :func:`boundaries.retrace_boundaries`).
    Returns the number of (row, window) splices made."""
    zones = [BoundaryZone(t.row, t.boundary_x, t.x0 - 2, t.x1 + 2) for t in ticks if not t.hidden]
    return retrace_boundaries(prob, curves, rows, zones, window_px, threshold, px_per_mm_x, levels)
