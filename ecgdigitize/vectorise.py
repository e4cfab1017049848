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


def _row_points(p: np.ndarray, cols: np.ndarray, top: np.ndarray, bot: np.ndarray, e_top: np.ndarray,
                e_bot: np.ndarray, tall: np.ndarray, w_line: float, r: float, threshold: float,
                peak_up: np.ndarray | None = None,
                peak_dn: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
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
        bad = ~ok
        d = np.diff(np.r_[0, bad.astype(np.int8), 0])
        starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        for s, e in zip(starts, ends):
            if e - s > max_gap and s > 0 and e < y.size:
                filled[s:e] = np.nan
    return filled
