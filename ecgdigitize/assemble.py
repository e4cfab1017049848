"""Assembly: traced row curves + layout + scales -> (num_samples, leads) signal in mV."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .layout import LeadBox
from .vectorise import TraceCurve, interpolate_gaps

log = logging.getLogger(__name__)


@dataclass
class RowTiming:
    """Time axis of a row: sample time t (s) lies at x = x_t0 + t * px_per_s (pixels)."""

    x_t0: float
    px_per_s: float
    duration_s: float
    base_y: float
    mv_per_px: float
    source: str = "grid"
    #: x_t0 estimates (pixels) from the row start and from the row end (NaN = not available)
    x_t0_start: float = float("nan")
    x_t0_end: float = float("nan")
    #: x (pixels) of the row's last sample as traced (NaN = unknown)
    x_last: float = float("nan")
    #: x (pixels) where the row's calibration pulse's falling stroke ends (NaN = no pulse): the generator draws
    #: that stroke over the signal's first samples, which are therefore not read (see :func:`sample_lead`)
    x_pulse_end: float = float("nan")


@dataclass
class LeadTrace:
    """One lead's printed segment: pixel curve and the samples read from it."""

    name: str
    box: LeadBox
    x: np.ndarray
    y: np.ndarray
    start_sample: int
    values_mv: np.ndarray = field(default_factory=lambda: np.zeros(0))


def last_traced_x(curve: TraceCurve) -> float:
    """x (pixels) of a row's last traced sample (the curve's last finite column, less half a line width); NaN when
    nothing is traced."""
    ok = np.flatnonzero(np.isfinite(curve.y))
    return float(curve.x0 + ok[-1] - curve.half_width_px) if ok.size else float("nan")


def row_timing(
    curve: TraceCurve,
    x_t0: float,
    px_per_s_grid: float,
    base_y: float,
    mv_per_px: float,
    fs: float,
    snap_s: float = 0.5,
    tol: float = 0.03,
    trust_scale: bool = False,
    align_tol_px: float | None = None,
) -> RowTiming:
    """Time axis of a row from the trace start ``x_t0`` (pixels) and the scale's px per second.

    The traced span (start to last inked column), snapped to a multiple of ``snap_s`` seconds, gives
    the row duration. With ``trust_scale`` (a precise grid period) px per second stays the scale's and
    the row end refines the start: x_t0 becomes the mean of the start and (end - duration) when they
    agree within ``align_tol_px``; otherwise, when the snapped span agrees with the scale within
    ``tol``, the span defines px per second (robust to small scale errors)."""
    x_last = last_traced_x(curve)
    if not np.isfinite(x_last) or not np.isfinite(px_per_s_grid):
        return RowTiming(x_t0, px_per_s_grid, 0.0, base_y, mv_per_px)
    span_px = max(x_last - x_t0, 1.0)
    d = span_px / px_per_s_grid + 1.0 / fs
    d_snap = max(snap_s, round(d / snap_s) * snap_s)
    pps = span_px / max(d_snap - 1.0 / fs, 1e-6)
    if abs(pps / px_per_s_grid - 1.0) <= tol:
        if trust_scale:
            x_from_end = x_last - (d_snap - 1.0 / fs) * px_per_s_grid
            lim = align_tol_px if align_tol_px is not None else max(2.0, 0.004 * px_per_s_grid)
            x_start = x_t0
            if abs(x_from_end - x_t0) <= lim:
                x_t0 = 0.5 * (x_t0 + x_from_end)
            return RowTiming(x_t0, px_per_s_grid, d_snap, base_y, mv_per_px, "grid+span", x_start, x_from_end, x_last)
        return RowTiming(x_t0, pps, d_snap, base_y, mv_per_px, "span", x_last=x_last)
    return RowTiming(x_t0, px_per_s_grid, d, base_y, mv_per_px, "grid", x_last=x_last)


def remove_separators(
    curve: TraceCurve,
    boundaries_x: list[float],
    base_y: float,
    px_per_mm_x: float,
    px_per_mm_y: float,
    sep_mm: float = 0.35,
    reach_mm: float = 2.0,
) -> int:
    """Blank (in place) column-separator ticks at interior lead boundaries ``boundaries_x`` (pixels):
    where the curve within half a separator plus half a line width of a boundary reaches more than
    ``reach_mm`` both above and below the baseline ``base_y``, those columns become NaN and their
    centreline points are dropped (gaps are interpolated later). Returns the number blanked."""
    if curve.y.size == 0:
        return 0
    lw = curve.line_width_px if curve.line_width_px > 0 else curve.thickness_px
    half = sep_mm * px_per_mm_x + 0.5 * lw + 1.0
    reach = reach_mm * px_per_mm_y
    n = 0
    for xb in boundaries_x:
        m_pts = np.abs(curve.pts_x - xb) <= half
        ys = curve.pts_y[m_pts]
        cols = np.flatnonzero(np.abs(curve.x - xb) <= half)
        ycol = curve.y[cols]
        ys_all = np.r_[ys, ycol[np.isfinite(ycol)]]
        if ys_all.size == 0:
            continue
        if np.max(base_y - ys_all) > reach and np.max(ys_all - base_y) > reach:
            curve.y[cols] = np.nan
            keep = ~m_pts
            curve.pts_x, curve.pts_y = curve.pts_x[keep], curve.pts_y[keep]
            n += 1
    return n


def align_row_starts(timings: list[RowTiming], tol_px: float, sample_s: float = 0.0) -> None:
    """Rows of standard layouts start at one x (in place).

    With start- and end-based estimates of x_t0 (rows timed on a trusted grid): where they cluster
    within ``tol_px`` of their median, every row whose estimates all lie in the cluster gets the cluster
    median (one start measured from several rows). Otherwise the rows' own ``x_t0`` that cluster within
    ``tol_px`` of their median (at least two rows and half of them) are kept as they are. In both cases
    a row outside the cluster whose start was misread (an undetected pulse, ink left of the trace) gets
    the cluster's start and the common duration when its traced end matches the common span (within 3
    ``tol_px``) or when it starts left of the cluster (then also the cluster's px per second). Where neither
    clusters, the rows' end-based estimates may (:func:`_snap_to_end_cluster`). ``sample_s``: the
    output's sample period (s); a row's last traced sample lies one period before its span's end (as
    :func:`row_timing`'s end-based estimate takes it). At 100 Hz that period is 2 px at 200 DPI: without it a generator
    page's row 0, its pulse end read 0.04 s late, stayed there, its end putting its start 6.2 px from the other rows'
    (4.2 px with it; limit 5.9 px)."""
    members = _snap_to_start_end_cluster(timings, tol_px)
    if members:
        centre = members[0].x_t0
    else:
        est = [(t, t.x_t0) for t in timings if np.isfinite(t.x_t0) and t.duration_s > 0]
        if len(est) < 2:
            return
        med = float(np.median([v for _, v in est]))
        members = [t for t, v in est if abs(v - med) <= tol_px]
        if len(members) >= max(2, 0.5 * len(est)):
            centre = float(np.median([t.x_t0 for t in members]))  # members keep their own estimates
        else:
            members = _snap_to_end_cluster(timings, tol_px)
            if not members:
                return
            centre = members[0].x_t0
    d_common = float(np.median([t.duration_s for t in members]))
    pps_common = float(np.median([t.px_per_s for t in members]))
    for t in timings:
        if t in members or not np.isfinite(t.px_per_s):
            continue
        end_ok = np.isfinite(t.x_last) and abs(t.x_last - (d_common - sample_s) * t.px_per_s - centre) <= 3.0 * tol_px
        # ink left of the common start (a grid remnant, speck or label) is never the trace's start
        early = t.x_t0 < centre - tol_px
        if end_ok or early:
            if not end_ok:
                t.px_per_s = pps_common  # its own span (and so any span-based scale) is not to be trusted
            t.x_t0 = centre
            t.duration_s = d_common
            t.source += "+aligned"


#: Rows whose starts scatter (pulse ends misread) but whose end-based starts agree start there: at least this share
#: of the rows, and three, within the tolerance. A generator page at 100 DPI read upsampled: pulse ends put its four
#: rows' starts at 108.6-132.4 px, their ends all at 106.8-107.8 px; row 1 stood 0.13 s late and the page failed.
END_CLUSTER_SHARE = 0.75


def _snap_to_end_cluster(timings: list[RowTiming], tol_px: float) -> list[RowTiming]:
    """Rows whose end-based x_t0 estimates lie within ``tol_px`` of their median get the median of those (in place,
    source "+ends"); returns them ([] unless :data:`END_CLUSTER_SHARE` of the rows, and three, agree)."""
    ends = [(t, t.x_t0_end) for t in timings if np.isfinite(t.x_t0_end)]
    if len(ends) < 3:
        return []
    med = float(np.median([v for _, v in ends]))
    close = [(t, v) for t, v in ends if abs(v - med) <= tol_px]
    if len(close) < max(3, END_CLUSTER_SHARE * len(timings)):
        return []
    centre = float(np.median([v for _, v in close]))
    for t, _ in close:
        t.x_t0 = centre
        t.source += "+ends"
    return [t for t, _ in close]


def _snap_to_start_end_cluster(timings: list[RowTiming], tol_px: float) -> list[RowTiming]:
    """Rows whose start- and end-based x_t0 estimates all lie within ``tol_px`` of the median of all
    rows' estimates get the median of the estimates near it (in place); returns those rows ([] when
    fewer than 3 estimates, or fewer than 60 % of them, cluster)."""
    cands = np.array([v for t in timings for v in (t.x_t0_start, t.x_t0_end) if np.isfinite(v)])
    if cands.size < 3:
        return []
    med = float(np.median(cands))
    close = cands[np.abs(cands - med) <= tol_px]
    if close.size < max(3, 0.6 * cands.size):
        return []
    centre = float(np.median(close))
    members = []
    for t in timings:
        own = [v for v in (t.x_t0_start, t.x_t0_end) if np.isfinite(v)]
        if own and all(abs(v - med) <= tol_px for v in own):
            t.x_t0 = centre
            members.append(t)
    return members


#: Gaussian smoothing (s) of the sampled leads: the trace drawn on paper carries no content the pixel grid can
#: resolve below a few ms, so what the polyline has there is tracing error; 2 ms (about 66 Hz at -3 dB) measured
#: best on every preset of ``benchmarks/digitize.py`` (1.5 and 2.5 ms were 0.0-0.2 dB worse; +0.5 to +0.9 dB
#: over none at 100 and 200 DPI).
SMOOTH_S = 0.002
#: A lead's unprinted first or last samples inside its window (the pen-lift gap at a column boundary, a stroke the
#: tracer missed) are filled with the median of the nearest this many seconds of its traced samples: the lead's
#: level there. Holding the nearest value instead held whatever the trace began on: a lead whose first traced column
#: is the top of an R wave started with a 150 ms plateau at +1.2 mV, which the self-check took for a calibration
#: pulse.
EDGE_LEVEL_S = 0.2


def sample_lead(
    curve: TraceCurve,
    box: LeadBox,
    timing: RowTiming,
    fs: float,
    num_samples: int,
    use_points: bool = True,
    smooth_s: float = SMOOTH_S,
    read_x: tuple[float, float] = (-np.inf, np.inf),
) -> LeadTrace:
    """Read the samples of ``box``'s time window [t0, t1) from the row curve (gaps interpolated), then
    smooth them with a Gaussian of ``smooth_s`` seconds (0: none). Only the ink between ``read_x`` (pixels) is read:
    a separator tick's or a calibration pulse's stroke covers the samples beyond (NaN there, bar the held end values
    just beside the read ink)."""
    n0 = int(np.ceil(box.t0 * fs - 1e-9))
    n1 = min(int(np.ceil(box.t1 * fs - 1e-9)), num_samples)
    n0 = max(0, n0)
    if n1 <= n0:
        return LeadTrace(box.name, box, np.zeros(0), np.zeros(0), n0, np.zeros(0))
    t = np.arange(n0, n1) / fs
    xs = timing.x_t0 + t * timing.px_per_s
    # a lead owns the curve inside its box only (the neighbouring lead's ink never leaks across the
    # column boundary); at the box edges the nearest own value is held
    lo, hi = max(box.x0, read_x[0]), min(box.x1, read_x[1])
    if not np.isnan(timing.x_pulse_end) and box.column == 0:
        lo = max(lo, timing.x_pulse_end)
    own = (curve.x >= lo) & (curve.x <= hi) & np.isfinite(curve.y)
    if not own.any():
        return LeadTrace(box.name, box, xs, np.full(xs.size, np.nan), n0, np.full(xs.size, np.nan))
    cx, y_full = curve.x[own], curve.y[own]  # gaps inside the box are bridged linearly by np.interp
    ys_col = np.interp(xs, cx, y_full, left=np.nan, right=np.nan)
    ys = ys_col
    inside = _own_points(curve, lo, hi)
    if use_points and inside.sum() >= 2:
        px, py = curve.pts_x[inside], curve.pts_y[inside]
        ys = np.interp(xs, px, py, left=np.nan, right=np.nan)
        # long stretches without points (gaps) fall back to the column curve
        pos = np.searchsorted(px, xs)
        p_lo = px[np.clip(pos - 1, 0, px.size - 1)]
        p_hi = px[np.clip(pos, 0, px.size - 1)]
        ys = np.where(((p_hi - p_lo) > 3.0) | np.isnan(ys), ys_col, ys)
    # within a small margin beyond the curve ends, hold the end value
    margin = 0.02 * timing.px_per_s
    ys = np.where(np.isnan(ys) & (xs < cx[0]) & (xs >= cx[0] - margin), y_full[0], ys)
    ys = np.where(np.isnan(ys) & (xs > cx[-1]) & (xs <= cx[-1] + margin), y_full[-1], ys)
    if fs / max(timing.px_per_s, 1e-9) >= 1.5:
        # several samples per pixel column: a one- or two-sample excursion cannot be printed signal
        # (at about one sample per column a real R peak is one sample; it is left alone)
        ys = remove_sample_spikes(ys, max(1.0, 0.3 * (curve.line_width_px or curve.thickness_px)))
    ys = smooth_samples(ys, smooth_s * fs)
    vals = (timing.base_y - ys) * timing.mv_per_px
    return LeadTrace(box.name, box, xs, ys, n0, vals)


def _own_points(curve: TraceCurve, lo: float, hi: float, slack_px: float = 0.5) -> np.ndarray:
    """Mask of the curve's centre-line points that belong to a lead printed between x = ``lo`` and
    ``hi`` (pixels): those inside, plus points up to ``slack_px`` outside that connect (steps of at most
    about a line width in y) to the inside points within a pixel of that edge: a stroke that starts right
    at the boundary has sub-pixel points just before it; the neighbouring lead's ink does not connect."""
    px, py = curve.pts_x, curve.pts_y
    mask = (px >= lo) & (px <= hi)
    if not mask.any():
        return mask
    step = 2.0 * (curve.line_width_px or curve.thickness_px) + 2.0
    for near_edge, outside in (
        (mask & (px < lo + 1.0), (px >= lo - slack_px) & (px < lo)),
        (mask & (px > hi - 1.0), (px > hi) & (px <= hi + slack_px)),
    ):
        cand = np.flatnonzero(outside)
        if cand.size == 0 or not near_edge.any():
            continue
        accepted = list(py[near_edge])
        grown = True
        left = set(cand.tolist())
        while grown and left:
            grown = False
            acc = np.asarray(accepted)
            for k in list(left):
                if np.min(np.abs(acc - py[k])) <= step:
                    mask[k] = True
                    accepted.append(py[k])
                    left.discard(k)
                    grown = True
    return mask


def smooth_samples(ys: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of every finite run of ``ys`` (N,) (pixels or mV) with standard deviation ``sigma``
    (samples); NaN stays NaN and runs do not bleed into each other (edges reflect the nearest value)."""
    y = np.asarray(ys, np.float64).copy()
    if sigma < 0.1 or y.size < 3:
        return y
    ok = np.isfinite(y)
    edges = np.flatnonzero(np.diff(np.r_[0, ok.astype(np.int8), 0]))
    for a, b in zip(edges[::2], edges[1::2]):
        if b - a >= 3:
            y[a:b] = gaussian_filter1d(y[a:b], sigma, mode="nearest")
    return y


def remove_sample_spikes(ys: np.ndarray, min_jump_px: float) -> np.ndarray:
    """Replace single-sample spikes of a sampled curve ``ys`` (pixels) by the mean of their neighbours:
    a sample more than ``min_jump_px`` beyond both neighbours on the same side. Printed traces are
    smooth on the scale of a sample (several samples per pixel column); such a spike comes from the
    centre-line points of a near-vertical stroke sorted by x, not from the signal."""
    y = np.asarray(ys, np.float64).copy()
    if y.size < 3:
        return y
    a, b, c = y[:-2], y[1:-1], y[2:]
    d1, d2 = b - a, b - c
    spike = (np.sign(d1) == np.sign(d2)) & (np.minimum(np.abs(d1), np.abs(d2)) > min_jump_px)
    spike &= np.isfinite(a) & np.isfinite(b) & np.isfinite(c)
    idx = np.flatnonzero(spike) + 1
    y[idx] = 0.5 * (y[idx - 1] + y[idx + 1])
    if y.size >= 4:
        # two-sample spikes: both samples beyond both outer neighbours on the same side
        a, b1, b2, c = y[:-3], y[1:-2], y[2:-1], y[3:]
        lo_in, hi_in = np.minimum(b1, b2), np.maximum(b1, b2)
        up = (lo_in - np.maximum(a, c)) > min_jump_px
        dn = (np.minimum(a, c) - hi_in) > min_jump_px
        sp2 = (up | dn) & np.isfinite(a) & np.isfinite(c) & np.isfinite(b1) & np.isfinite(b2)
        for i in np.flatnonzero(sp2):
            y[i + 1] = (2.0 * y[i] + y[i + 3]) / 3.0
            y[i + 2] = (y[i] + 2.0 * y[i + 3]) / 3.0
    return y


def _edge_levels_filled(v: np.ndarray, n_level: int) -> np.ndarray:
    """``v`` (samples, mV) with its leading and trailing NaNs set to the median of its first / last ``n_level``
    finite samples (see :data:`EDGE_LEVEL_S`); inner gaps untouched."""
    ok = np.flatnonzero(np.isfinite(v))
    if ok.size == 0:
        return v
    v = v.copy()
    v[: ok[0]] = np.median(v[ok[:n_level]])
    v[ok[-1] + 1 :] = np.median(v[ok[-n_level:]])
    return v


def place(lead_traces: list[LeadTrace], lead_names: list[str], num_samples: int, fs: float | None = None) -> np.ndarray:
    """(num_samples, len(lead_names)) mV array; leads matched case-insensitively; overlapping segments
    of one lead (short + rhythm strip) are averaged; NaN elsewhere; NaN runs inside a window interpolated, and
    (with ``fs``, Hz) a window's unprinted first and last samples filled with the lead's level there
    (:data:`EDGE_LEVEL_S`; without ``fs`` the nearest value is held)."""
    out = np.full((num_samples, len(lead_names)), np.nan)
    index = {}
    for j, name in enumerate(lead_names):
        index.setdefault(str(name).strip().upper(), []).append(j)
    acc = np.zeros((num_samples, len(lead_names)))
    cnt = np.zeros((num_samples, len(lead_names)))
    for lt in lead_traces:
        cols = index.get(lt.name.upper(), [])
        if not cols or lt.values_mv.size == 0:
            continue
        v = lt.values_mv
        if np.isfinite(v).any() and not np.isfinite(v).all():
            if fs is not None:
                v = _edge_levels_filled(v, max(1, int(round(EDGE_LEVEL_S * fs))))
            v = interpolate_gaps(v)
        sl = slice(lt.start_sample, lt.start_sample + v.size)
        ok = np.isfinite(v)
        for j in cols:
            acc[sl, j] += np.where(ok, v, 0.0)
            cnt[sl, j] += ok
    have = cnt > 0
    out[have] = acc[have] / cnt[have]
    return out
