"""Vectorisation: one trace curve per row band from a trace probability map, at native resolution.

Per pixel column the band's pixels above a probability threshold form vertical runs (candidates).
Dynamic programming over the columns picks one run per column minimising the vertical jump between
consecutive choices (distance between the runs' intervals, plus a little centroid distance and a weak
pull to the row baseline), so a neighbouring row's trace that crosses into the band, or a label, is
not followed. The value of a column is the probability-weighted centroid of the chosen run
(sub-pixel); at local extrema of tall runs the run's end is used so peaks keep their amplitude.
Samples are read from a separate centre-line polyline (``TraceCurve.pts_x/pts_y``, x non-decreasing):
column centroids on flat parts, per-row horizontal centres on steep strokes (x as a function of y),
tips corrected by the line half-width.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

#: node cost per pixel of distance (beyond 1 px) between a run and an anchor point of its column
ANCHOR_PENALTY = 50.0
#: A column with more runs than a band keeps (crowded: a vertical grid line the map kept, cut into dozens of runs by
#: the other grid family) keeps first the runs that touch ink of the nearest uncrowded column on either side, within
#: this many columns, then the heaviest. Keeping only the heaviest had left out the trace's own run where a major
#: grid line crossed it (the Challenge generator's black-and-white pages: 52 runs of 7 px in one column) and sent the
#: rhythm strip 10 mm down to the printed "10mm/mV" for 0.2 s; leaving such columns out instead lost calibration
#: pulses whose edges lie on a grid line (those pages fell 3 dB).
CROWDED_REACH_COLS = 3


@dataclass
class TraceCurve:
    """A traced curve of one row: ``y[i]`` (float pixels, NaN = nothing found) at column ``x0 + i``."""

    x0: int
    y: np.ndarray
    thickness_px: float = 1.0
    coverage: float = 0.0
    jumps_px: float = 0.0
    #: centreline points (x, y) pixels sorted by x: column centroids on flat parts and row-wise run
    #: centres on steep parts (sub-pixel in time where the trace is nearly vertical); empty = use y
    pts_x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pts_y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: printed line width (pixels, sub-pixel; vertical ink extent on flat parts); 0 = unknown
    line_width_px: float = 0.0

    @property
    def first_ink_x(self) -> float | None:
        """x (pixels) of the curve's first traced column; None when nothing was traced."""
        ok = np.flatnonzero(np.isfinite(self.y))
        return float(self.x0 + ok[0]) if ok.size else None

    @property
    def last_ink_x(self) -> float | None:
        """x (pixels) of the curve's last traced column; None when nothing was traced."""
        ok = np.flatnonzero(np.isfinite(self.y))
        return float(self.x0 + ok[-1]) if ok.size else None

    @property
    def half_width_px(self) -> float:
        """Distance (pixels) from the centre of the first/last inked column to the curve's end point."""
        w = self.line_width_px if self.line_width_px > 0 else self.thickness_px
        return max(0.0, 0.5 * (w - 1.5))

    @property
    def x(self) -> np.ndarray:
        """Column coordinates (pixels) of ``y``."""
        return self.x0 + np.arange(self.y.size, dtype=np.float64)


@dataclass
class ColumnRuns:
    """Candidate runs per column, padded to K: arrays (n_cols, K); count (n_cols,)."""

    top: np.ndarray
    bottom: np.ndarray
    centroid: np.ndarray
    mass: np.ndarray
    count: np.ndarray
    all_heights: np.ndarray = field(default_factory=lambda: np.zeros(0))


def column_runs(band: np.ndarray, threshold: float = 0.5, max_runs: int = 6) -> ColumnRuns:
    """Vertical runs of ``band`` (h, w) > threshold in every column, with probability-weighted
    centroids (pixels from the band top); keeps ``max_runs`` runs per column: in crowded columns those that continue
    their neighbours' ink first, then the heaviest (see :data:`CROWDED_REACH_COLS`)."""
    h, w = band.shape
    p = np.ascontiguousarray(band.T.astype(np.float32))  # (w, h)
    b = p > threshold
    padded = np.zeros((w, h + 2), np.int8)
    padded[:, 1:-1] = b
    d = np.diff(padded, axis=1)
    sc, sr = np.nonzero(d == 1)  # run start (row index in band)
    ec, er = np.nonzero(d == -1)  # run end (exclusive)
    K = max_runs
    top = np.full((w, K), np.nan)
    bottom = np.full((w, K), np.nan)
    cen = np.full((w, K), np.nan)
    mass = np.zeros((w, K))
    count = np.zeros(w, np.int64)
    if sc.size == 0:
        return ColumnRuns(top, bottom, cen, mass, count)
    cum = np.zeros((w, h + 1), np.float64)
    np.cumsum(p, axis=1, out=cum[:, 1:])
    cumy = np.zeros((w, h + 1), np.float64)
    np.cumsum(p * np.arange(h, dtype=np.float32)[None, :], axis=1, out=cumy[:, 1:])
    m = cum[sc, er] - cum[sc, sr]
    cy = (cumy[sc, er] - cumy[sc, sr]) / np.maximum(m, 1e-9)
    # rank of each run within its column (runs come sorted by column, then row)
    first = np.searchsorted(sc, np.arange(w))
    rank = np.arange(sc.size) - first[sc]
    counts = np.bincount(sc, minlength=w)
    if counts.max() > K:
        # keep K runs in crowded columns: those continuing the nearest uncrowded columns' ink, then the heaviest
        touch = _continues_neighbours(b, counts > K, sc, sr, er)
        order = np.lexsort((-m, ~touch, sc))
        sc, sr, er, m, cy = sc[order], sr[order], er[order], m[order], cy[order]
        first = np.searchsorted(sc, np.arange(w))
        rank = np.arange(sc.size) - first[sc]
    keep = rank < K
    sc, sr, er, m, cy, rank = sc[keep], sr[keep], er[keep], m[keep], cy[keep], rank[keep]
    top[sc, rank] = sr
    bottom[sc, rank] = er - 1
    cen[sc, rank] = cy
    mass[sc, rank] = m
    count = np.minimum(counts, K)
    return ColumnRuns(top, bottom, cen, mass, count, all_heights=(er - sr).astype(np.float64))


def _continues_neighbours(
    b: np.ndarray, crowded: np.ndarray, sc: np.ndarray, sr: np.ndarray, er: np.ndarray
) -> np.ndarray:
    """Per run (column ``sc``, rows [sr, er)), True where it lies in a ``crowded`` column and touches (within 1 px)
    ink of the nearest uncrowded column within :data:`CROWDED_REACH_COLS` on its left or right; b: (w, h) bool."""
    w, h = b.shape
    cols = np.flatnonzero(crowded)
    lo, hi = np.maximum(sr - 1, 0), np.minimum(er + 1, h)
    touch = np.zeros(sc.size, bool)
    in_crowded = crowded[sc]
    for step in (-1, 1):
        # nearest uncrowded neighbour of each crowded column on this side (the farthest assigned first)
        nb = np.full(w, -1, np.int64)
        for k in range(CROWDED_REACH_COLS, 0, -1):
            n = cols + step * k
            ok = (n >= 0) & (n < w)
            ok[ok] &= ~crowded[n[ok]]
            nb[cols[ok]] = n[ok]
        ok = in_crowded & (nb[sc] >= 0)
        if not ok.any():
            continue
        # ink counts along the needed neighbour columns only
        need, which = np.unique(nb[sc[ok]], return_inverse=True)
        cb = np.zeros((need.size, h + 1), np.int32)
        np.cumsum(b[need], axis=1, out=cb[:, 1:])
        touch[ok] |= (cb[which, hi[ok]] - cb[which, lo[ok]]) > 0
    return touch


def track_runs(
    runs: ColumnRuns,
    baseline: float,
    *,
    jump_weight: float = 1.0,
    centroid_weight: float = 0.15,
    baseline_weight: float = 0.01,
    node_cost: np.ndarray | None = None,
) -> np.ndarray:
    """Dynamic programming over columns: index of the chosen run per column (-1 = none).

    Cost of moving from run i to run j = jump_weight * gap between their intervals + centroid_weight *
    |centroid difference|; node cost = baseline_weight * |centroid - baseline| (+ ``node_cost``, an
    optional (n_cols, K) extra cost per run, e.g. for runs another row's trace claims).
    """
    w = runs.count.size
    choice = np.full(w, -1, np.int64)
    cols = np.flatnonzero(runs.count > 0)
    if cols.size == 0:
        return choice
    back: list[np.ndarray] = []
    c0 = cols[0]
    n0 = runs.count[c0]
    extra = np.zeros(runs.top.shape) if node_cost is None else np.nan_to_num(np.asarray(node_cost, np.float64))
    cost = baseline_weight * np.abs(runs.centroid[c0, :n0] - baseline) + extra[c0, :n0]
    top, bot, cen = runs.top, runs.bottom, runs.centroid
    for c in cols[1:]:
        prev = c0
        n1 = runs.count[c]
        pt, pb, pc = top[prev, :n0], bot[prev, :n0], cen[prev, :n0]
        ct, cb, cc = top[c, :n1], bot[c, :n1], cen[c, :n1]
        gap = np.maximum(0.0, np.maximum(ct[None, :] - pb[:, None], pt[:, None] - cb[None, :]) - 1.0)
        trans = jump_weight * gap + centroid_weight * np.abs(cc[None, :] - pc[:, None])
        total = cost[:, None] + trans
        arg = np.argmin(total, axis=0)
        cost = total[arg, np.arange(n1)] + baseline_weight * np.abs(cc - baseline) + extra[c, :n1]
        back.append(arg)
        c0, n0 = c, n1
    # backtrack
    j = int(np.argmin(cost))
    choice[cols[-1]] = j
    for k in range(len(cols) - 1, 0, -1):
        j = int(back[k - 1][j])
        choice[cols[k - 1]] = j
    return choice


def trace_band(
    prob: np.ndarray,
    y0: int,
    y1: int,
    x0: int,
    x1: int,
    baseline: float,
    *,
    threshold: float = 0.5,
    island_gap_px: float | None = None,
    island_len_px: float | None = None,
    max_col_gap: int = 3,
) -> TraceCurve:
    """Trace the curve in rows [y0, y1) and columns [x0, x1) of ``prob`` (H, W); ``baseline`` is the
    row's isoelectric y in page pixels. Returns page-pixel y per column (NaN where nothing found)."""
    sel = _band_choice(prob, y0, y1, x0, x1, baseline, threshold)
    return _curve_from_choice(sel, threshold, island_gap_px, island_len_px, max_col_gap)


@dataclass
class _BandChoice:
    """Runs of one band and the tracked choice per column; band = prob[y0:y1, x0:x1]."""

    y0: int
    x0: int
    band: np.ndarray
    runs: ColumnRuns
    choice: np.ndarray
    thick: float


def _band_choice(
    prob: np.ndarray,
    y0: int,
    y1: int,
    x0: int,
    x1: int,
    baseline: float,
    threshold: float = 0.5,
    claimed_csum: np.ndarray | None = None,
    claim_penalty: float = 0.0,
    max_runs: int = 6,
    thick: float | None = None,
    boundary_x: tuple[float, ...] = (),
    anchors: tuple[tuple[float, float], ...] = (),
    csum_origin: tuple[int, int] = (0, 0),
) -> _BandChoice:
    """Column runs of the band and the DP choice. ``claimed_csum``: optional cumulative sum along y (one leading
    zero row) of a map of pixels claimed by other rows, whose element [0, 0] is page pixel ``csum_origin`` (y, x)
    and which covers the band; runs with claimed pixels cost ``claim_penalty`` times their claimed fraction per
    column. ``boundary_x``: page x of lead boundaries (see
    :func:`_drop_foreign_runs`); ``anchors``: page (x, y) points the chosen runs should pass through."""
    H, W = prob.shape
    y0, y1 = max(0, int(y0)), min(H, int(y1))
    x0, x1 = max(0, int(x0)), min(W, int(x1))
    band = prob[y0 : max(y0, y1), x0 : max(x0, x1)]
    if band.size == 0:
        runs = column_runs(np.zeros((1, max(0, x1 - x0)), np.float32), threshold)
        return _BandChoice(y0, x0, band, runs, np.full(max(0, x1 - x0), -1, np.int64), 1.0)
    runs = column_runs(band, threshold, max_runs)
    if thick is None:
        thick = float(np.percentile(runs.all_heights, 25)) if runs.all_heights.size else 1.0
    thick = max(float(thick), 1.0)
    node = None
    if claimed_csum is not None and claim_penalty > 0:
        valid = np.isfinite(runs.top)
        t = np.where(valid, runs.top, 0).astype(np.int64) + y0
        bt = np.where(valid, runs.bottom, 0).astype(np.int64) + y0
        oy, ox = csum_origin
        cols = (np.arange(band.shape[1]) + x0 - ox)[:, None]
        n_claim = claimed_csum[bt + 1 - oy, cols] - claimed_csum[t - oy, cols]
        frac = np.where(valid, n_claim / np.maximum(bt - t + 1, 1), 0.0)
        node = claim_penalty * frac
    if anchors:
        # runs far from an anchor point cost a lot in its column: the re-traced stretch starts and ends
        # on the curve it replaces
        node = np.zeros(runs.top.shape) if node is None else node
        for ax, ay in anchors:
            c = int(round(ax)) - x0
            if 0 <= c < band.shape[1] and np.isfinite(ay):
                yy = float(ay) - y0
                dist = np.maximum(0.0, np.maximum(runs.top[c] - yy, yy - runs.bottom[c]))
                node[c] += ANCHOR_PENALTY * np.where(np.isfinite(dist), np.maximum(dist - 1.0, 0.0), 0.0)
    choice = track_runs(runs, baseline - y0, node_cost=node)
    if boundary_x:
        _drop_foreign_runs(runs, choice, [int(math.ceil(bx)) - x0 for bx in boundary_x], int(math.ceil(thick)) + 1)
    return _BandChoice(y0, x0, band, runs, choice, thick)


def _drop_foreign_runs(runs: ColumnRuns, choice: np.ndarray, boundary_cols: list[int], reach: int) -> None:
    """At each lead boundary (band column ``f`` of ``boundary_cols``), unselect (in place) chosen runs in the
    ``reach`` columns on either side that are not connected to their own lead's trace: walking from the
    first column beyond the reach towards the boundary, a run must touch (overlap within 1 px) the last
    kept run. A stroke of the previous lead cut by the boundary reaches half a line width into the
    next lead's columns; those columns are then left empty (held from the lead's own side later)."""
    n = choice.size

    def interval(c: int) -> tuple[float, float]:
        k = choice[c]
        return float(runs.top[c, k]), float(runs.bottom[c, k])

    for f in boundary_cols:
        for cols, ref_col in (
            (range(min(n, f + reach) - 1, f - 1, -1), f + reach),
            (range(max(0, f - reach), f), f - reach - 1),
        ):
            if not 0 <= ref_col < n or choice[ref_col] < 0:
                continue
            t_ref, b_ref = interval(ref_col)
            for c in cols:
                if not 0 <= c < n or choice[c] < 0:
                    continue
                t, b = interval(c)
                if t > b_ref + 1.0 or b < t_ref - 1.0:
                    choice[c] = -1
                else:
                    t_ref, b_ref = t, b


def _curve_from_choice(
    sel: _BandChoice,
    threshold: float = 0.5,
    island_gap_px: float | None = None,
    island_len_px: float | None = None,
    max_col_gap: int = 3,
) -> TraceCurve:
    """Column curve and centre-line points of a band from its chosen runs only."""
    band, runs, choice, thick, y0, x0 = sel.band, sel.runs, sel.choice, sel.thick, sel.y0, sel.x0
    n = choice.size
    idx = np.flatnonzero(choice >= 0)
    y = np.full(n, np.nan)
    if idx.size == 0:
        return TraceCurve(x0, y, thick, 0.0)
    sel_k = choice[idx]
    cen = runs.centroid[idx, sel_k]
    top = runs.top[idx, sel_k]
    bot = runs.bottom[idx, sel_k]
    heights = bot - top + 1
    half = 0.5 * (thick - 1.0)
    # flat columns: probability-weighted centroid; tall (steep) columns: middle of the ink envelope
    # deflated by the line half-width; extremum columns (ink reaching beyond both neighbours): the tip
    val = np.where(heights <= 2.0 * thick, cen, 0.5 * (top + bot))
    if idx.size >= 3:
        adj = (np.diff(idx, prepend=idx[0] - 1) == 1) & (np.diff(idx, append=idx[-1] + 1) == 1)
        tp, tn = np.r_[top[0], top[:-1]], np.r_[top[1:], top[-1]]
        bp, bn = np.r_[bot[0], bot[:-1]], np.r_[bot[1:], bot[-1]]
        tall = heights > 2.0 * thick
        peak_up = adj & tall & (top < tp) & (top < tn)
        peak_dn = adj & tall & (bot > bp) & (bot > bn)
        both = peak_up & peak_dn
        val = np.where(peak_up & ~both, top + half, val)
        val = np.where(peak_dn & ~both, bot - half, val)
    # drop short islands: stretches of chosen runs separated from the rest by big interval gaps on
    # both sides (text, labels or specks picked where the trace itself is missing)
    if idx.size >= 2:
        lim = island_gap_px if island_gap_px is not None else 10.0 * thick + 8.0
        gap = np.maximum(0.0, np.maximum(top[1:] - bot[:-1], top[:-1] - bot[1:]))
        brk = (gap > lim) | (np.diff(idx) > max_col_gap)
        seg_id = np.r_[0, np.cumsum(brk)]
        n_seg = int(seg_id[-1]) + 1
        if n_seg > 1:
            seg_len = np.bincount(seg_id, minlength=n_seg)
            seg_mass = np.bincount(seg_id, weights=np.ones(idx.size), minlength=n_seg)
            longest = int(np.argmax(seg_mass))
            short = seg_len < max(3, island_len_px if island_len_px is not None else 4 * thick + 10)
            short[longest] = False
            val = np.where(short[seg_id], np.nan, val)
    y[idx] = val + y0
    px, py, w_line = _centreline_points(band, idx, top, bot, val, thick, threshold)
    cov = float(np.isfinite(y).mean())
    jumps = float(np.nanmean(np.abs(np.diff(y)))) if np.isfinite(y).sum() > 2 else 0.0
    return TraceCurve(x0, y, thick, cov, jumps, px + x0, py + y0, w_line)


def spliced_points(curve: TraceCurve, new: TraceCurve, x_lo: float, x_hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Centre-line points (x, y), sorted by x, of ``curve`` with those in [x_lo, x_hi] (pixels) replaced by
    ``new``'s there (a re-traced stretch of the same row)."""
    keep = (curve.pts_x < x_lo) | (curve.pts_x > x_hi)
    take = (new.pts_x >= x_lo) & (new.pts_x <= x_hi)
    px = np.r_[curve.pts_x[keep], new.pts_x[take]]
    py = np.r_[curve.pts_y[keep], new.pts_y[take]]
    order = np.argsort(px, kind="stable")
    return px[order], py[order]


def curve_anchors(curve: TraceCurve, xa: int, xz: int, n: int = 3) -> tuple[tuple[float, float], ...]:
    """(x, y) of the curve's first and last ``n`` finite columns inside [xa, xz) (page pixels)."""
    if xz <= xa or curve.y.size == 0:
        return ()
    i0, i1 = max(0, xa - curve.x0), min(curve.y.size, xz - curve.x0)
    idx = np.flatnonzero(np.isfinite(curve.y[i0:i1])) + i0 if i1 > i0 else np.zeros(0, np.int64)
    if idx.size == 0:
        return ()
    pick = np.unique(np.r_[idx[:n], idx[-n:]])
    return tuple((float(curve.x0 + i), float(curve.y[i])) for i in pick)


def _claim_map(shape: tuple[int, int], sels: list[_BandChoice]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Count of rows claiming each page pixel, (H, W) int16, and per row the (n_chosen, 3) array of
    its chosen runs as (page column, top y, bottom y) (inclusive pixels)."""
    count = np.zeros(shape, np.int16)
    per_row: list[np.ndarray] = []
    for sel in sels:
        idx = np.flatnonzero(sel.choice >= 0)
        k = sel.choice[idx]
        t = sel.runs.top[idx, k].astype(np.int64) + sel.y0
        b = sel.runs.bottom[idx, k].astype(np.int64) + sel.y0
        cols = idx + sel.x0
        per_row.append(np.stack([cols, t, b], axis=1) if idx.size else np.zeros((0, 3), np.int64))
        if idx.size == 0:
            continue
        # +1 at the top, -1 below the bottom of each run: a cumulative sum along y fills the runs (over the
        # runs' bounding box only: a whole-page sum per row was most of the tracing time)
        ya, yb, xa, xb = int(t.min()), int(b.max()) + 1, int(cols.min()), int(cols.max()) + 1
        delta = np.zeros((yb - ya + 1, xb - xa), np.int16)
        np.add.at(delta, (t - ya, cols - xa), 1)
        np.add.at(delta, (b + 1 - ya, cols - xa), -1)
        count[ya:yb, xa:xb] += np.cumsum(delta, axis=0)[:-1].astype(np.int16)
    return count, per_row


def _drop_pass_through(sels: list[_BandChoice], per_row: list[np.ndarray], count: np.ndarray, max_len_px: int) -> None:
    """Where one row's flat trace merges with another row's steep stroke (a crossing), the merged ink
    run belongs to the stroke: for the row that passes through (flat, level runs on both sides of a
    shared stretch of at most ``max_len_px`` columns) those columns are dropped (in place; they are
    interpolated later)."""
    for sel, ch in zip(sels, per_row):
        if ch.shape[0] < 3:
            continue
        cols, t, b = ch[:, 0], ch[:, 1], ch[:, 2]
        # shared: some pixel of the chosen run is claimed by another row too (sums over the runs' rows only)
        lo = int(t.min())
        csum = np.cumsum(count[lo : int(b.max()) + 1, cols] >= 2, axis=0)
        ar = np.arange(cols.size)
        shared = (csum[b - lo, ar] - np.where(t > lo, csum[np.maximum(t - 1 - lo, 0), ar], 0)) > 0
        if not shared.any():
            continue
        h = b - t + 1
        flat_lim = 2.0 * sel.thick + 1.0
        for s0, e0 in _true_runs(shared):
            if s0 == 0 or e0 >= cols.size or cols[e0 - 1] - cols[s0] + 1 > max_len_px:
                continue
            l, r = s0 - 1, e0
            if cols[r] - cols[l] > max_len_px + 6:
                continue
            if h[l] > flat_lim or h[r] > flat_lim:
                continue
            yl, yr = 0.5 * (t[l] + b[l]), 0.5 * (t[r] + b[r])
            if abs(yl - yr) > 2.0 * sel.thick + 2.0:
                continue
            # the shared runs must be much taller than the line (a stroke through this row's line)
            if np.max(h[s0:e0]) <= 2.0 * flat_lim:
                continue
            sel.choice[cols[s0:e0] - sel.x0] = -1


def trace_rows(
    prob: np.ndarray,
    rows: list[tuple[int, int, int, int, float]],
    *,
    threshold: float = 0.5,
    reach: float = 1.0,
    claim_penalty: float | None = None,
    passes: int = 2,
    max_runs: int = 10,
    boundary_x: list[tuple[float, ...]] | None = None,
    anchors: list[tuple[tuple[float, float], ...]] | None = None,
) -> list[TraceCurve]:
    """Trace all rows of a page jointly so each follows its own trace through overlaps and crossings.

    prob: (H, W) trace probability; rows: per row (y0, y1, x0, x1, baseline_y) page pixels (the
    nominal band and the row's x extent). Each row is tracked over a widened band (``reach`` times the
    baseline spacing to each neighbour, at least the nominal band), so tall complexes reaching into the
    neighbouring rows are not clipped. The first pass tracks each row on its own; later passes add a
    per-column cost (``claim_penalty``, default ~ 3 line widths + 4 px) to runs that other rows' tracks
    claim, so a row leaves a neighbour's trace it strayed onto. Finally, where a row's flat line merges
    with another row's steep stroke, the merged columns are dropped for the passing row. ``boundary_x``:
    per row, page x of the boundaries between printed leads (see :func:`_drop_foreign_runs`); ``anchors``: per
    row, (x, y) page points its track should pass through (a re-traced window joins the curve it replaces). Returns one
    :class:`TraceCurve` per row (page pixels), as :func:`trace_band` would."""
    H, W = prob.shape
    if not rows:
        return []
    bases = np.array([r[4] for r in rows], np.float64)
    order = np.argsort(bases)
    ext: list[tuple[int, int]] = [(0, 0)] * len(rows)
    for pos, i in enumerate(order):
        y0, y1, _, _, b = rows[i]
        up = bases[i] - bases[order[pos - 1]] if pos > 0 else None
        dn = bases[order[pos + 1]] - bases[i] if pos + 1 < len(order) else None
        # outer rows keep their nominal band outwards (header text above, footers below)
        top = int(min(y0, np.floor(b - reach * up))) if up is not None else int(y0)
        bot = int(max(y1, np.ceil(b + reach * dn))) if dn is not None else int(y1)
        ext[i] = (top, bot)
    # line thickness from the nominal bands (the widened ones also hold header text and labels)
    thicks = []
    for y0, y1, x0, x1, _ in rows:
        hts = (
            column_runs(prob[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)], threshold).all_heights
            if y1 > y0 and x1 > x0
            else np.zeros(0)
        )
        thicks.append(max(float(np.percentile(hts, 25)), 1.0) if hts.size else 1.0)
    fx = [tuple(boundary_x[i]) if boundary_x is not None and i < len(boundary_x) else () for i in range(len(rows))]
    an = [tuple(anchors[i]) if anchors is not None and i < len(anchors) else () for i in range(len(rows))]
    sels = [
        _band_choice(
            prob,
            ext[i][0],
            ext[i][1],
            r[2],
            r[3],
            r[4],
            threshold,
            max_runs=max_runs,
            thick=thicks[i],
            boundary_x=fx[i],
            anchors=an[i],
        )
        for i, r in enumerate(rows)
    ]
    thick = float(np.median(thicks))
    pen = claim_penalty if claim_penalty is not None else 3.0 * thick + 4.0
    for _ in range(max(0, passes - 1)):
        if len(rows) < 2:
            break
        count, per_row = _claim_map((H, W), sels)
        new = []
        for i, r in enumerate(rows):
            # claims by the other rows: the total minus this row's own runs, in this row's band only (its
            # runs lie inside it)
            ya = min(H, max(0, ext[i][0]))  # the band as _band_choice clips it (possibly empty)
            yb = max(ya, min(H, ext[i][1]))
            xa = min(W, max(0, r[2]))
            xb = max(xa, min(W, r[3]))
            other = count[ya:yb, xa:xb].copy()
            ch = per_row[i]
            if ch.size:
                delta = np.zeros((yb - ya + 1, xb - xa), np.int16)
                np.add.at(delta, (ch[:, 1] - ya, ch[:, 0] - xa), 1)
                np.add.at(delta, (ch[:, 2] + 1 - ya, ch[:, 0] - xa), -1)
                other -= np.cumsum(delta, axis=0)[:-1].astype(np.int16)
            csum = np.zeros((yb - ya + 1, xb - xa), np.int32)
            np.cumsum(other > 0, axis=0, out=csum[1:])
            new.append(
                _band_choice(
                    prob,
                    ext[i][0],
                    ext[i][1],
                    r[2],
                    r[3],
                    r[4],
                    threshold,
                    csum,
                    pen,
                    max_runs=max_runs,
                    thick=thicks[i],
                    boundary_x=fx[i],
                    anchors=an[i],
                    csum_origin=(ya, xa),
                )
            )
        sels = new
    if len(rows) >= 2:
        count, per_row = _claim_map((H, W), sels)
        _drop_pass_through(sels, per_row, count, max_len_px=int(np.ceil(6.0 * thick + 6.0)))
    return [_curve_from_choice(s, threshold) for s in sels]


#: A stretch of a row's track lying on the level of a neighbouring row (within this fraction of the rows' spacing
#: of its baseline, and beyond 1 - this fraction from its own) is that row's trace when it is longer than
#: :data:`FOREIGN_STRETCH_MM` horizontally: a QRS complex reaching the neighbour's level is a spike under 1 mm
#: wide there (ecg-image-kit's 100-DPI pages: lead III's track jumped 35 mm up onto lead II's flat line for
#: 0.1-0.4 s where III's own anti-aliased line fell below the map's threshold: 3.6 mV plateaus in the output).
FOREIGN_LEVEL_FRACTION = 0.3
FOREIGN_STRETCH_MM = 1.2
#: ... untraced columns (NaN) up to this many mm between two parts of such a stretch do not end it (a rotated
#: generator page's V1 lay on V2's line for 2.3 mm cut by 2 untraced columns into two parts under 1.2 mm: 0.15 s of
#: V1 read at -3.6 mV).
FOREIGN_GAP_MM = 0.6


def _true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges of the runs of True in a 1-D bool ``mask``."""
    d = np.diff(np.r_[0, np.asarray(mask).astype(np.int8), 0])
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def foreign_stretches(
    y: np.ndarray, row: int, baselines_y: np.ndarray, px_per_mm_x: float, own_y: np.ndarray | None = None
) -> list[tuple[int, int]]:
    """[start, end) index ranges of ``y`` (one row's curve, page pixels, NaN where not traced; row index ``row`` of
    ``baselines_y``) that follow another row's trace (see :data:`FOREIGN_LEVEL_FRACTION`). ``own_y``: the row's own
    level per element of ``y`` where its leads are printed at their own heights (default: its baseline)."""
    bases = np.asarray(baselines_y, np.float64)
    if bases.size < 2 or y.size == 0:
        return []
    spacing = float(np.median(np.diff(np.sort(bases))))
    if spacing <= 0:
        return []
    near_other = np.zeros(y.size, bool)
    ok = np.isfinite(y)
    for b in np.delete(bases, row):
        near_other[ok] |= np.abs(y[ok] - b) <= FOREIGN_LEVEL_FRACTION * spacing
    own = bases[row] if own_y is None else np.asarray(own_y, np.float64)[ok]
    near_other[ok] &= np.abs(y[ok] - own) >= (1.0 - FOREIGN_LEVEL_FRACTION) * spacing
    return _long_stretches(near_other, ok, px_per_mm_x)


def _long_stretches(near: np.ndarray, traced: np.ndarray, px_per_mm_x: float) -> list[tuple[int, int]]:
    """[start, end) runs of ``near`` (bool per column) at least :data:`FOREIGN_STRETCH_MM` long, untraced gaps (False
    in ``traced``) up to :data:`FOREIGN_GAP_MM` between two parts joining them."""
    if not near.any():
        return []
    joined = near.copy()
    for a, e in _true_runs(~traced):  # untraced gaps
        if e - a <= FOREIGN_GAP_MM * px_per_mm_x and a > 0 and e < near.size and near[a - 1] and near[e]:
            joined[a:e] = True
    return [(a, e) for a, e in _true_runs(joined) if e - a >= FOREIGN_STRETCH_MM * px_per_mm_x]


def _blank_stretches(c: TraceCurve, stretches: list[tuple[int, int]]) -> int:
    """Blank (in place) the column ranges [a, e) of ``c``'s curve and its centre-line points there, and update its
    coverage; returns the number of columns blanked."""
    for a, e in stretches:
        c.y[a:e] = np.nan
        x_lo, x_hi = c.x0 + a - 0.5, c.x0 + e - 0.5
        keep = (c.pts_x < x_lo) | (c.pts_x > x_hi)
        c.pts_x, c.pts_y = c.pts_x[keep], c.pts_y[keep]
    if stretches:
        c.coverage = float(np.isfinite(c.y).mean()) if c.y.size else 0.0
    return int(sum(e - a for a, e in stretches))


def drop_foreign_stretches(curves: list[TraceCurve], baselines_y: list[float], px_per_mm_x: float) -> int:
    """Blank (in place, NaN; the centre-line points there are dropped too) the stretches of each row's curve that
    follow another row's trace (see :data:`FOREIGN_LEVEL_FRACTION`). ``baselines_y``: per curve, the row's baseline
    (pixels). Returns the number of columns blanked."""
    if len(curves) < 2:
        return 0
    bases = np.asarray(baselines_y, np.float64)
    n_blank = 0
    for i, c in enumerate(curves):
        n_blank += _blank_stretches(c, foreign_stretches(c.y, i, bases, px_per_mm_x))
    return n_blank


#: A line row's ink (:func:`without_lines`) is the vertical run of ink through its traced height in each column, when
#: that run is at most this many mm tall (a border or a text line is a few tenths of a mm to 2 mm thick; a trace
#: stroke crossing it makes the run longer, and then only the line's own width around its height goes).
LINE_RUN_MAX_MM = 3.0


def without_lines(prob: np.ndarray, lines: list[TraceCurve], px_per_mm_y: float, threshold: float = 0.5) -> np.ndarray:
    """Copy of ``prob`` (H, W) without the ink of rows found on the page that are no trace (``lines``: their traced
    curves; a border line or text at the page's edge): in each traced column, the run of ink through the line's
    height (see :data:`LINE_RUN_MAX_MM`). Later re-tracing then cannot follow them again."""
    out = prob.copy()
    H, W = prob.shape
    max_run = LINE_RUN_MAX_MM * px_per_mm_y
    for line in lines:
        half = max(1, int(np.ceil(0.5 * (line.line_width_px or line.thickness_px))))
        for i in np.flatnonzero(np.isfinite(line.y)):
            x, y = line.x0 + int(i), int(round(float(line.y[i])))
            if not (0 <= x < W and 0 <= y < H):
                continue
            col = out[:, x] > threshold
            if not col[y]:
                continue
            t, b = y, y
            while t > 0 and col[t - 1] and y - t < max_run:
                t -= 1
            while b + 1 < H and col[b + 1] and b - y < max_run:
                b += 1
            if b - t + 1 > max_run:
                t, b = max(0, y - half), min(H - 1, y + half)
            out[t : b + 1, x] = 0.0
    return out


def _bridged(y: np.ndarray) -> np.ndarray:
    """``y`` with its NaN gaps between traced values filled linearly (NaN before the first and after the last)."""
    ok = np.flatnonzero(np.isfinite(y))
    if ok.size < 2:
        return y
    idx = np.arange(y.size)
    return np.interp(idx, ok, y[ok], left=np.nan, right=np.nan)


def drop_stretches_on_lines(
    curves: list[TraceCurve],
    baselines_y: list[float],
    lines: list[TraceCurve],
    lines_y: list[float],
    px_per_mm_x: float,
) -> int:
    """Blank (in place) the stretches of each curve (row baselines ``baselines_y``, pixels) that follow the traced line
    of a row found on the page but no trace (``lines``, at ``lines_y``: a border line or text at the page's edge), by
    the rule of :data:`FOREIGN_LEVEL_FRACTION` with the distance between the two rows' baselines for the rows' spacing
    and the line's traced height for its level. The tracker took a rotated generator page's dark border, 21 mm below
    the rhythm strip (the strip 166 px from it, the rows 280 px apart), for the strip's first 0.15 s: -1.0 mV there and
    a self-check that failed the page. Returns the number of columns blanked."""
    n_blank = 0
    bridged = [_bridged(line.y) for line in lines]
    for c, base in zip(curves, baselines_y):
        near = np.zeros(c.y.size, bool)
        ok = np.isfinite(c.y)
        for line, line_y, line_ys in zip(lines, lines_y, bridged):
            d = abs(float(line_y) - float(base))
            i0, i1 = max(c.x0, line.x0), min(c.x0 + c.y.size, line.x0 + line.y.size)
            if d <= 0 or i1 <= i0:
                continue
            y = c.y[i0 - c.x0 : i1 - c.x0]
            ly = line_ys[i0 - line.x0 : i1 - line.x0]
            with np.errstate(invalid="ignore"):
                on = (np.abs(y - ly) <= FOREIGN_LEVEL_FRACTION * d) & (
                    np.abs(y - base) >= (1.0 - FOREIGN_LEVEL_FRACTION) * d
                )
            near[i0 - c.x0 : i1 - c.x0] |= on
        n_blank += _blank_stretches(c, _long_stretches(near, ok, px_per_mm_x))
    return n_blank


def _centreline_points(
    band: np.ndarray, idx: np.ndarray, top: np.ndarray, bot: np.ndarray, val: np.ndarray, thick: float, threshold: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Centre-line points (x, y) in band pixels, sorted by x (time monotone), from the chosen run of
    every column, and the estimated line width w (pixels).

    Model: the printed line is the centre curve y(x) dilated by a disk of radius r = w / 2.

    * Flat columns (ink run no taller than the line): the probability-weighted centroid ``val``.
    * Steep strokes: x as a function of y. Every pixel row of the traced ink (the union of the chosen
      column runs) is split into horizontal runs; a run no wider than a steep stroke (<= 1.5 w + 1)
      gives one point at its sub-pixel centre (edges refined from the anti-aliased probabilities), so
      a stroke between columns c and c + 1 yields intermediate values and the rise and fall of a QRS
      inside one column are separate, time-ordered points. Rows within r of the envelope ends (tips,
      where the strokes merge) are skipped.
    * Tips (local extrema of the ink envelopes): the tight edge moved in by r (top + r for upward
      peaks, bottom - r for troughs) so peaks keep their amplitude.
    * Tall columns not covered by any row point (moderate slopes): the run's mid-line.
    """
    h, w = band.shape
    good = np.isfinite(val)
    if good.sum() < 2:
        return np.zeros(0), np.zeros(0), 0.0
    idx, top, bot, val = idx[good], top[good].astype(np.int64), bot[good].astype(np.int64), val[good]
    cols = idx
    p = band.astype(np.float64)
    above = np.where(top - 1 >= 0, p[np.clip(top - 1, 0, h - 1), cols], 0.0)
    below = np.where(bot + 1 < h, p[np.clip(bot + 1, 0, h - 1), cols], 0.0)
    p_top = p[top, cols]
    p_bot = p[bot, cols]
    e_top = np.clip(top + 0.5 - np.minimum(p_top, 1.0) - np.minimum(above, threshold), top - 0.5, top + 0.5)
    e_bot = np.clip(bot - 0.5 + np.minimum(p_bot, 1.0) + np.minimum(below, threshold), bot - 0.5, bot + 0.5)
    height = e_bot - e_top
    flat = (bot - top + 1) <= thick + 1.0
    w_line = float(np.median(height[flat])) if flat.sum() >= 10 else float(thick)
    r = max(0.5 * w_line, 0.25)
    mid = 0.5 * (e_top + e_bot)
    adj_l = np.r_[False, np.diff(idx) == 1]
    adj_r = np.r_[np.diff(idx) == 1, False]
    # extrema of the envelopes (ties count on one side)
    tl = np.where(adj_l, np.r_[e_top[0], e_top[:-1]], np.inf)
    tr = np.where(adj_r, np.r_[e_top[1:], e_top[-1]], np.inf)
    bl = np.where(adj_l, np.r_[e_bot[0], e_bot[:-1]], -np.inf)
    br = np.where(adj_r, np.r_[e_bot[1:], e_bot[-1]], -np.inf)
    peak_up = (e_top <= tl) & (e_top <= tr) & ~flat
    peak_dn = (e_bot >= bl) & (e_bot >= br) & ~flat
    # a tall column extreme on both envelopes (a narrow spike): keep the side farther from the
    # level the flat parts sit at (a proxy for the baseline)
    level = float(np.median(val[flat])) if flat.any() else float(np.median(mid))
    up_wins = (level - e_top) >= (e_bot - level)
    tie = peak_up & peak_dn
    peak_up = peak_up & ~(tie & ~up_wins)
    peak_dn = peak_dn & ~(tie & up_wins)
    fx = cols.astype(np.float64)
    xs_list = [fx[flat], fx[peak_up], fx[peak_dn]]
    ys_list = [val[flat], (e_top + r)[peak_up], (e_bot - r)[peak_dn]]
    steep = ~flat & ~peak_up & ~peak_dn
    rx, ry = _row_points(p, cols, top, bot, e_top, e_bot, ~flat, w_line, r, threshold, peak_up, peak_dn)
    if rx.size:
        xs_list.append(rx)
        ys_list.append(ry)
        covered = np.zeros(w + 1, bool)
        covered[np.clip(np.round(rx).astype(np.int64), 0, w)] = True
        steep &= ~covered[cols]
    xs_list.append(fx[steep])
    ys_list.append(mid[steep])
    xs = np.concatenate(xs_list)
    ys = np.concatenate(ys_list)
    # at a tip's own x the curve is at the tip: other points there (a spike's stem) would make the
    # interpolation at that x ambiguous
    tip_x = np.r_[fx[peak_up], fx[peak_dn]]
    n_fixed = int(flat.sum()) + tip_x.size
    drop = np.zeros(xs.size, bool)
    drop[n_fixed:] = np.isin(np.round(xs[n_fixed:], 6), np.round(tip_x, 6))
    xs, ys = xs[~drop], ys[~drop]
    order = np.argsort(xs, kind="stable")
    return xs[order], ys[order], w_line


def _row_points(
    p: np.ndarray,
    cols: np.ndarray,
    top: np.ndarray,
    bot: np.ndarray,
    e_top: np.ndarray,
    e_bot: np.ndarray,
    tall: np.ndarray,
    w_line: float,
    r: float,
    threshold: float,
    peak_up: np.ndarray | None = None,
    peak_dn: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row horizontal centres (x, y) band pixels of the steep strokes of the traced ink.

    p: (h, w) band probabilities; cols, top, bot: chosen column runs (pixel rows, inclusive);
    e_top, e_bot: their sub-pixel envelopes; tall: columns taller than the line. Only the part of the
    band around tall columns is examined. A horizontal run that touches a tall column and lies at least
    ~r inside some column's ink (not a tip row) gives
    * two points, its left edge + r and right edge - r, when it spans a tip column (``peak_up`` /
      ``peak_dn``) lying beyond the row: the rise and fall of a narrow spike merged into one run;
    * otherwise one point at its centre when its sub-pixel width is at most 1.5 * w_line + 1 (a single
      steep stroke); wider runs (moderate slopes) give none.
    """
    h, w = p.shape
    if not tall.any():
        return np.zeros(0), np.zeros(0)
    # tall columns and their direct neighbours, grouped in contiguous stretches of band columns
    col_of = np.full(w, -1, np.int64)
    col_of[cols] = np.arange(cols.size)
    tall_cols = np.zeros(w, bool)
    tall_cols[cols[tall]] = True
    near = tall_cols.copy()
    near[1:] |= tall_cols[:-1]
    near[:-1] |= tall_cols[1:]
    near &= col_of >= 0
    sel = np.flatnonzero(near)
    if sel.size == 0:
        return np.zeros(0), np.zeros(0)
    k = col_of[sel]
    y_lo, y_hi = int(top[k].min()), int(bot[k].max()) + 1
    rows = np.arange(y_lo, y_hi)
    # mask of the traced ink restricted to the selected columns: (rows, sel)
    m = (rows[:, None] >= top[k][None, :]) & (rows[:, None] <= bot[k][None, :])
    # break runs where selected columns are not adjacent in the band
    brk = np.r_[True, np.diff(sel) > 1]
    pad = np.zeros((m.shape[0], m.shape[1] + 1), np.int8)
    pad[:, :-1] = m
    d = np.diff(np.concatenate([np.zeros((m.shape[0], 1), np.int8), pad], axis=1), axis=1)
    # a run also starts/ends at a break between non-adjacent selected columns
    mi = m.astype(np.int8)
    starts = (d[:, :-1] == 1) | ((mi == 1) & brk[None, :])
    ends_next = np.zeros_like(m)
    ends_next[:, :-1] = (mi[:, :-1] == 1) & ((mi[:, 1:] == 0) | brk[None, 1:])
    ends_next[:, -1] = mi[:, -1] == 1
    sr, sc = np.nonzero(starts)
    er, ec = np.nonzero(ends_next)
    # both come row-major sorted, so starts and ends pair up in order
    if sr.size == 0 or sr.size != er.size:
        return np.zeros(0), np.zeros(0)
    yy = rows[sr]
    xl, xr = sel[sc], sel[ec]  # inclusive band columns
    width_px = xr - xl + 1
    limit = 1.5 * w_line + 1.0
    ok = width_px <= np.ceil(4.0 * w_line) + 4
    yy, xl, xr, sc, ec = yy[ok], xl[ok], xr[ok], sc[ok], ec[ok]
    if yy.size == 0:
        return np.zeros(0), np.zeros(0)
    pl = np.minimum(p[yy, xl], 1.0)
    pr = np.minimum(p[yy, xr], 1.0)
    left = np.where(xl - 1 >= 0, p[yy, np.clip(xl - 1, 0, w - 1)], 0.0)
    right = np.where(xr + 1 < w, p[yy, np.clip(xr + 1, 0, w - 1)], 0.0)
    e_l = np.clip(xl + 0.5 - pl - np.minimum(left, threshold), xl - 0.5, xl + 0.5)
    e_r = np.clip(xr - 0.5 + pr + np.minimum(right, threshold), xr - 0.5, xr + 0.5)
    # the run must touch a tall column and lie ~r inside the ink of one of its columns (not a tip row)
    depth = np.full(yy.size, -np.inf)
    touches = np.zeros(yy.size, bool)
    spike = np.zeros(yy.size, bool)
    pu = peak_up if peak_up is not None else np.zeros(cols.size, bool)
    pd = peak_dn if peak_dn is not None else np.zeros(cols.size, bool)
    max_w = int((xr - xl).max()) + 1
    for off in range(max_w):
        j = sc + off
        inside = j <= ec
        jj = np.where(inside, j, sc)
        kk = col_of[sel[jj]]
        dd = np.minimum(yy - e_top[kk], e_bot[kk] - yy)
        depth = np.where(inside, np.maximum(depth, dd), depth)
        touches |= inside & tall[kk]
        spike |= inside & ((pu[kk] & (yy - e_top[kk] >= 0.9 * r)) | (pd[kk] & (e_bot[kk] - yy >= 0.9 * r)))
    base = touches & (depth >= 0.9 * r)
    # both ends of a merged spike run lie on tall columns (not on the flat line around the spike)
    ends_tall = tall[col_of[xl]] & tall[col_of[xr]]
    width = e_r - e_l
    pair = base & spike & ends_tall
    single = base & ~pair & (width <= limit)
    # a pair run narrower than two line widths (the stem of a spike): both points hug its centre, one
    # on either side, so the curve reaches the tip point between them
    centre = 0.5 * (e_l + e_r)
    x_up = np.minimum(e_l + r, centre - 0.02)
    x_dn = np.maximum(e_r - r, centre + 0.02)
    xs = np.concatenate([centre[single], x_up[pair], x_dn[pair]])
    ys = np.concatenate([yy[single], yy[pair], yy[pair]]).astype(np.float64)
    return xs, ys


def interpolate_gaps(y: np.ndarray, max_gap: int | None = None) -> np.ndarray:
    """Linearly interpolate NaN gaps between finite values (all gaps if ``max_gap`` is None);
    leading/trailing NaNs are filled with the nearest finite value."""
    y = np.asarray(y, np.float64).copy()
    ok = np.isfinite(y)
    if ok.sum() == 0:
        return y
    if ok.all():
        return y
    xs = np.arange(y.size)
    filled = np.interp(xs, xs[ok], y[ok])
    if max_gap is not None:
        # keep long interior gaps as NaN
        for s, e in _true_runs(~ok):
            if e - s > max_gap and s > 0 and e < y.size:
                filled[s:e] = np.nan
    return filled
