"""Vectorisation: one trace curve per row band from a trace probability map, at native resolution.

Per pixel column the band's pixels above a probability threshold form vertical runs (candidates).
Dynamic programming over the columns picks one run per column minimising the vertical jump between
consecutive choices (distance between the runs' intervals, plus a little centroid distance and a weak
pull to the row baseline), so a neighbouring row's trace that crosses into the band, or a label, is
not followed. The value of a column is the probability-weighted centroid of the chosen run
(sub-pixel); at local extrema of tall runs the run's end is used so peaks keep their amplitude.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)


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
    centroids (pixels from the band top); keeps the ``max_runs`` heaviest runs per column."""
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
        # keep the K heaviest runs in crowded columns
        order = np.lexsort((-m, sc))
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


def track_runs(runs: ColumnRuns, baseline: float, *, jump_weight: float = 1.0, centroid_weight: float = 0.15,
               baseline_weight: float = 0.01) -> np.ndarray:
    """Dynamic programming over columns: index of the chosen run per column (-1 = none).

    Cost of moving from run i to run j = jump_weight * gap between their intervals + centroid_weight *
    |centroid difference|; node cost = baseline_weight * |centroid - baseline| - tiny mass bonus.
    """
    w = runs.count.size
    choice = np.full(w, -1, np.int64)
    cols = np.flatnonzero(runs.count > 0)
    if cols.size == 0:
        return choice
    back: list[np.ndarray] = []
    c0 = cols[0]
    n0 = runs.count[c0]
    cost = baseline_weight * np.abs(runs.centroid[c0, :n0] - baseline)
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
        cost = total[arg, np.arange(n1)] + baseline_weight * np.abs(cc - baseline)
        back.append(arg)
        c0, n0 = c, n1
    # backtrack
    j = int(np.argmin(cost))
    choice[cols[-1]] = j
    for k in range(len(cols) - 1, 0, -1):
        j = int(back[k - 1][j])
        choice[cols[k - 1]] = j
    return choice


def trace_band(prob: np.ndarray, y0: int, y1: int, x0: int, x1: int, baseline: float, *,
               threshold: float = 0.5, island_gap_px: float | None = None, island_len_px: float | None = None,
               max_col_gap: int = 3) -> TraceCurve:
    """Trace the curve in rows [y0, y1) and columns [x0, x1) of ``prob`` (H, W); ``baseline`` is the
    row's isoelectric y in page pixels. Returns page-pixel y per column (NaN where nothing found)."""
    H, W = prob.shape
    y0, y1 = max(0, int(y0)), min(H, int(y1))
    x0, x1 = max(0, int(x0)), min(W, int(x1))
    n = max(0, x1 - x0)
    if n == 0 or y1 <= y0:
        return TraceCurve(x0, np.full(n, np.nan))
    band = prob[y0:y1, x0:x1]
    runs = column_runs(band, threshold)
    thick = float(np.percentile(runs.all_heights, 25)) if runs.all_heights.size else 1.0
    thick = max(thick, 1.0)
    choice = track_runs(runs, baseline - y0)
    idx = np.flatnonzero(choice >= 0)
    y = np.full(n, np.nan)
    if idx.size == 0:
        return TraceCurve(x0, y, thick, 0.0)
    sel = choice[idx]
    cen = runs.centroid[idx, sel]
    top = runs.top[idx, sel]
    bot = runs.bottom[idx, sel]
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


def _centreline_points(band: np.ndarray, idx: np.ndarray, top: np.ndarray, bot: np.ndarray, val: np.ndarray,
                       thick: float, threshold: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Centreline points (x, y) in band pixels, sorted by x, from the chosen run of every column,
    and the estimated line width w (pixels).

    Model: the printed line is the centre curve y(x) dilated by a disk of radius r = w / 2 (w: line
    width, pixels). Where the curve is locally straight with slope s = dy/dx, a column's ink run
    [top, bottom] touches the curve at x = c -+ s r / sqrt(1 + s^2), y = top/bottom +- r / sqrt(1 + s^2),
    so one steep column yields two time-ordered points (rise and fall of a QRS inside one column).
    At a local extremum only the tight edge is used (top + r for upward peaks, bottom - r for troughs).
    Flat (short-run) columns give their probability-weighted centroid ``val``. Edges are refined to
    sub-pixel precision from the anti-aliased probabilities of the end pixels.
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
    # slope from the run mid-line (exact for straight stretches); only across adjacent columns
    adj_l = np.r_[False, np.diff(idx) == 1]
    adj_r = np.r_[np.diff(idx) == 1, False]
    mid_l = np.where(adj_l, np.r_[mid[0], mid[:-1]], mid)
    mid_r = np.where(adj_r, np.r_[mid[1:], mid[-1]], mid)
    span = adj_l.astype(np.float64) + adj_r.astype(np.float64)
    s = np.where(span > 0, (mid_r - mid_l) / np.maximum(span, 1.0), 0.0)
    # extrema of the envelopes (ties count on one side)
    tl = np.where(adj_l, np.r_[e_top[0], e_top[:-1]], np.inf)
    tr = np.where(adj_r, np.r_[e_top[1:], e_top[-1]], np.inf)
    bl = np.where(adj_l, np.r_[e_bot[0], e_bot[:-1]], -np.inf)
    br = np.where(adj_r, np.r_[e_bot[1:], e_bot[-1]], -np.inf)
    eps = 0.0
    peak_up = (e_top <= tl + eps) & (e_top <= tr + eps) & ~flat
    peak_dn = (e_bot >= bl - eps) & (e_bot >= br - eps) & ~flat
    # a tall column extreme on both envelopes (a narrow spike): keep the side farther from the
    # level the flat parts sit at (a proxy for the baseline)
    level = float(np.median(val[flat])) if flat.any() else float(np.median(mid))
    up_wins = (level - e_top) >= (e_bot - level)
    tie = peak_up & peak_dn
    peak_up = peak_up & ~(tie & ~up_wins)
    peak_dn = peak_dn & ~(tie & up_wins)
    both = np.zeros_like(peak_up)
    k = 1.0 / np.sqrt(1.0 + s * s)
    dx = s * r * k
    dy = r * k
    fx = cols.astype(np.float64)
    xs_list = [fx[flat], fx[peak_up & ~both], fx[peak_dn & ~both], fx[both]]
    ys_list = [val[flat], (e_top + r)[peak_up & ~both], (e_bot - r)[peak_dn & ~both], mid[both]]
    steep = ~flat & ~peak_up & ~peak_dn
    xs_list += [(fx - dx)[steep], (fx + dx)[steep]]
    ys_list += [(e_top + dy)[steep], (e_bot - dy)[steep]]
    xs = np.concatenate(xs_list)
    ys = np.concatenate(ys_list)
    order = np.argsort(xs, kind="stable")
    return xs[order], ys[order], w_line


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
        bad = ~ok
        d = np.diff(np.r_[0, bad.astype(np.int8), 0])
        starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        for s, e in zip(starts, ends):
            if e - s > max_gap and s > 0 and e < y.size:
                filled[s:e] = np.nan
    return filled
