"""Column-separator ticks: found at fixed height, subtracted without cutting the trace, hidden ones kept."""

from __future__ import annotations

import numpy as np

from ecgdigitize.separators import find_ticks, retrace_near_ticks, subtract_ticks
from ecgdigitize.vectorise import trace_rows

PPM = 7.87  # px per mm (200 DPI)


def _page(deep_at_boundary: bool) -> tuple[np.ndarray, list[float], float]:
    """(H, W) prob map: one row, baseline 200, flat 3-px trace, 3-px ticks of +-3 mm at x = 300, 600;
    optionally a stroke from 50 px above the baseline diving through the tick at x = 600 to a deep
    trough (160 px below the baseline at x = 606)."""
    H, W = 420, 900
    p = np.zeros((H, W), np.float32)
    base = 200.0
    y = np.full(W, base)
    if deep_at_boundary:
        # down from the baseline at x=600 to 360 at x=606, back up to the baseline at x=614
        # V2-like: starts 50 px above the baseline right at the boundary, dives through the tick
        y[598:607] = np.linspace(base - 50.0, 360.0, 9)
        y[606:615] = np.linspace(360.0, base, 9)
    for x in range(W - 1):
        a, b = sorted((y[x], y[x + 1]))
        p[int(a) - 1 : int(b) + 2, x] = 1.0
    t = int(round(3 * PPM))
    for xb in (300, 600):
        p[int(base) - t : int(base) + t + 1, xb - 1 : xb + 2] = 1.0
    return p, [300.0, 600.0], base


def test_visible_ticks_found_and_subtracted_keeping_the_trace():
    p, bnds, base = _page(False)
    ticks = find_ticks(p, [(0, x, base) for x in bnds], PPM, PPM)
    assert len(ticks) == 2 and not any(t.hidden for t in ticks)
    for t in ticks:
        assert t.x0 >= 298 and t.x1 <= 302 or t.x0 >= 598 and t.x1 <= 602
        assert abs((t.y1 - t.y0) - 6 * PPM) <= 4
    q = subtract_ticks(p, ticks)
    # the tick is gone above and below the trace, the trace row through it is kept
    assert q[int(base) - 15, 300] == 0 and q[int(base) + 15, 600] == 0
    assert q[int(base), 299:302].min() == 1.0
    rows = [(100, 400, 0, 900, base)]
    curves = trace_rows(p, rows)
    # the traced curve at the tick before subtraction may follow the tick; after re-tracing it is flat
    n = retrace_near_ticks(q, curves, rows, ticks, window_px=60)
    assert n == 2
    c = curves[0]
    near = (c.pts_x > 295) & (c.pts_x < 305)
    assert near.any() and np.max(np.abs(c.pts_y[near] - base)) <= 1.5


def test_tick_hidden_by_a_deep_stroke_is_left_to_the_trace():
    p, bnds, base = _page(True)
    ticks = find_ticks(p, [(0, x, base) for x in bnds], PPM, PPM)
    at600 = [t for t in ticks if abs(t.boundary_x - 600) < 1]
    assert len(at600) == 1
    q = subtract_ticks(p, ticks)
    # only the tick's rows may change: the stroke's ink beyond the tick is untouched
    assert np.array_equal(q[235:, 590:620], p[235:, 590:620])
    assert np.array_equal(q[:165, 590:620], p[:165, 590:620])
    # and the traced curve keeps the trough (the old column blanking lost it)
    rows = [(100, 400, 0, 900, base)]
    curves = trace_rows(p, rows)
    retrace_near_ticks(q, curves, rows, ticks, window_px=60)
    c = curves[0]
    near = (c.pts_x > 598) & (c.pts_x < 614)
    assert near.any() and c.pts_y[near].max() >= 355


def test_no_ticks_on_a_page_without_separators():
    p, bnds, base = _page(False)
    t = int(round(3 * PPM))
    for xb in bnds:
        p[int(base) - t : int(base) - 1, int(xb) - 1 : int(xb) + 2] = 0.0
        p[int(base) + 2 : int(base) + t + 1, int(xb) - 1 : int(xb) + 2] = 0.0
    assert find_ticks(p, [(0, x, base) for x in bnds], PPM, PPM) == []


def test_qrs_stroke_on_a_boundary_is_not_subtracted_as_a_tick():
    """A lead starting at its QRS trough right after the boundary, rising steeply to the peak and falling back:
    columns of the stroke run through the baseline at a tick's height, but their neighbours reach the trough and
    the peak (a slanted stroke, not a bar): nothing visible is found, and the stroke's ink stays in the map."""
    H, W = 420, 900
    p = np.zeros((H, W), np.float32)
    base = 200.0
    y = np.full(W, base)
    bnds = [300.0, 600.0]
    for xb in bnds:
        xq = int(xb) + 3
        y[xq : xq + 6] = np.linspace(base + 6 * PPM, base - 6 * PPM, 6)  # trough to peak, 19 px per column
        y[xq + 5 : xq + 12] = np.linspace(base - 6 * PPM, base, 7)
        y[int(xb) : xq] = np.nan  # the gap between two leads
    for x in range(W - 1):
        if np.isfinite(y[x]) and np.isfinite(y[x + 1]):
            a, b = sorted((y[x], y[x + 1]))
            p[int(a) - 1 : int(b) + 2, x] = 1.0
    ticks = find_ticks(p, [(0, x, base) for x in bnds], PPM, PPM)
    assert not [t for t in ticks if not t.hidden]
    assert np.array_equal(subtract_ticks(p, ticks), p)


def test_tick_touched_on_one_side_by_the_next_leads_qrs_stays_visible():
    p, bnds, base = _page(False)
    # the next lead's R wave rises right beside the tick at x = 300 (columns 302-303, 8 mm up)
    p[int(base - 8 * PPM) : int(base) + 2, 302:304] = 1.0
    ticks = find_ticks(p, [(0, x, base) for x in bnds], PPM, PPM)
    assert len(ticks) == 2 and not any(t.hidden for t in ticks)


def test_time_axis_moves_onto_agreeing_ticks_only():
    """Visible ticks 5 ms before the boundaries the rows' time axes give (a calibration pulse's fall drawn after
    the signal's start) move the axes by -5 ms; one stray tick does not change the median; hidden ticks do not count;
    ticks that disagree, a single tick, or ticks under a pixel off move nothing."""
    from ecgdigitize.assemble import RowTiming
    from ecgdigitize.layout import LeadBox
    from ecgdigitize.separators import Tick
    from ecgdigitize.stages import time_shift_from_ticks

    pps = 200.0  # px/s
    timings = [RowTiming(100.0, pps, 10.0, 300.0 + 280 * r, 0.01) for r in range(3)]
    boxes = [
        LeadBox(f"L{r}{c}", r, c, 100.0 + c * 500, 600.0 + c * 500, 2.5 * c, 2.5 * (c + 1), 300.0 + 280 * r)
        for r in range(3)
        for c in range(4)
    ]

    def ticks_at(offsets_s, hidden=()):
        out = []
        for k, (b, off) in enumerate(zip([b for b in boxes if b.column > 0], offsets_s)):
            x = b.x0 + off * pps
            out.append(Tick(b.row, b.x0, int(round(x - 1)), int(round(x + 1)), 0, 0, hidden=k in hidden))
        return out

    agree = ticks_at([-0.005] * 8 + [0.03])
    assert abs(time_shift_from_ticks(agree, boxes, timings) + 0.005) < 1e-9
    assert time_shift_from_ticks(ticks_at([-0.005] * 9, hidden=range(8)), boxes, timings) == 0.0
    assert time_shift_from_ticks(ticks_at([-0.03, 0.02, -0.01, 0.03, 0.0, -0.02]), boxes, timings) == 0.0
    assert time_shift_from_ticks(ticks_at([-0.005]), boxes, timings) == 0.0
    # ticks on whole pixels 0.8 px before the boundaries: within a tick's rounding and blur, no shift; 1.2 px: a shift
    for x_t0, moved in ((100.8, False), (101.2, True)):
        off_axis = [RowTiming(x_t0, pps, 10.0, rt.base_y, 0.01) for rt in timings]
        assert (time_shift_from_ticks(ticks_at([0.0] * 9), boxes, off_axis) != 0.0) == moved
