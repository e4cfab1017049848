"""Column boundaries: a lead cut in the middle of a steep stroke does not leak into the next lead."""

from __future__ import annotations

import numpy as np

from ecgdigitize.assemble import RowTiming, sample_lead
from ecgdigitize.boundaries import BoundaryZone, retrace_boundaries
from ecgdigitize.layout import LeadBox
from ecgdigitize.vectorise import trace_rows

BASE = 200.0
XB = 400.3  # boundary between the two leads (page pixels)


def _row_page() -> np.ndarray:
    """(H, W) prob map of one row: lead A flat at the baseline, then a stroke diving 90 px in the last
    6 px before the boundary (a QRS cut by it); lead B flat 6 px above the baseline after it. 3-px line."""
    H, W = 400, 800
    p = np.zeros((H, W), np.float32)
    y = np.full(W, BASE)
    y[394:401] = np.linspace(BASE, BASE + 90.0, 7)
    y[401:] = BASE - 6.0
    for x in range(W - 1):
        if x == 400:  # the pen lifts at the boundary: no connecting stroke
            continue
        a, b = sorted((y[x], y[x + 1]))
        p[int(a) - 1 : int(b) + 2, x : x + 2] = 1.0
    # the 3-px pen's round end reaches past the boundary: the stroke's last 20 px also in columns 401-402
    p[int(BASE) + 72 : int(BASE) + 92, 401:403] = 1.0
    return p


ROWS = [(100, 300, 0, 800, BASE)]


def test_tracker_alone_follows_the_stroke_past_the_boundary():
    """The failure being fixed: without the boundary, the first columns of lead B carry lead A's stroke."""
    c = trace_rows(_row_page(), ROWS)[0]
    first_b = c.y[401 - c.x0 : 403 - c.x0]
    assert np.nanmax(first_b) > BASE + 20.0


def test_boundary_drops_the_other_leads_ink():
    c = trace_rows(_row_page(), ROWS, boundary_x=[(XB,)])[0]
    first_b = c.y[401 - c.x0 : 406 - c.x0]
    ok = np.isfinite(first_b)
    assert np.all(np.abs(first_b[ok] - (BASE - 6.0)) <= 1.5)
    # lead A keeps its stroke up to the boundary
    assert c.y[399 - c.x0] > BASE + 40.0


def test_retrace_boundaries_and_sampling_give_lead_b_its_own_start():
    p = _row_page()
    curves = trace_rows(p, ROWS)
    n = retrace_boundaries(p, curves, ROWS, [BoundaryZone(0, XB, XB - 8.0, XB + 8.0)], window_px=60)
    assert n == 1
    px_per_s = 200.0
    timing = RowTiming(x_t0=0.3, px_per_s=px_per_s, duration_s=4.0, base_y=BASE, mv_per_px=0.01)
    box = LeadBox("V5", 0, 1, XB, 799.0, (XB - 0.3) / px_per_s, 3.99, BASE)
    lt = sample_lead(curves[0], box, timing, fs=500.0, num_samples=2000)
    # lead B is 6 px above the baseline from its first sample: 0.06 mV
    assert np.all(np.abs(lt.values_mv[:10] - 0.06) <= 0.02), lt.values_mv[:10]
    box_a = LeadBox("II", 0, 0, 0.3, XB, 0.0, (XB - 0.3) / px_per_s, BASE)
    lt_a = sample_lead(curves[0], box_a, timing, fs=500.0, num_samples=2000)
    assert lt_a.values_mv[-1] < -0.5  # lead A ends deep in its stroke


def test_anchored_retrace_leaves_a_clean_boundary_unchanged():
    p = np.zeros((400, 800), np.float32)
    p[BASE.__int__() - 1 : int(BASE) + 2, :] = 1.0
    curves = trace_rows(p, ROWS)
    before = curves[0].y.copy()
    retrace_boundaries(p, curves, ROWS, [BoundaryZone(0, XB, XB - 8.0, XB + 8.0)], window_px=60)
    np.testing.assert_allclose(curves[0].y, before)


def test_remove_sample_spikes_keeps_smooth_peaks():
    from ecgdigitize.assemble import remove_sample_spikes

    t = np.arange(200, dtype=np.float64)
    smooth = 100.0 - 60.0 * np.exp(-0.5 * ((t - 100.0) / 4.0) ** 2)  # a QRS-like peak, ~2.5 samples/px
    np.testing.assert_allclose(remove_sample_spikes(smooth, 2.0), smooth)
    spiky = smooth.copy()
    spiky[50] += 40.0  # one sample
    spiky[120:122] -= 30.0  # two samples
    out = remove_sample_spikes(spiky, 2.0)
    assert abs(out[50] - smooth[50]) < 1.0
    assert np.all(np.abs(out[120:122] - smooth[120:122]) < 1.0)
    assert np.max(np.abs(out - smooth)) < 1.0


def test_retraced_window_that_follows_the_next_row_is_not_spliced():
    """Two rows 280 px apart; in the re-traced map row 0's line is missing around the boundary, and ink joins it
    to row 1's line there: the window's new track follows row 1 for 40 px. With the scale given, that window
    is not spliced (row 0 keeps its curve); without it, it is."""
    ppm = 7.874
    rows = [(0, 240, 0, 800, 100.0), (240, 520, 0, 800, 380.0)]
    p = np.zeros((520, 800), np.float32)
    p[99:102, :] = 1.0
    p[379:382, :] = 1.0
    for spliced, scale in ((False, ppm), (True, None)):
        curves = trace_rows(p, rows)
        q = p.copy()
        q[99:102, 381:420] = 0.0
        q[100:381, 380] = 1.0
        q[100:381, 420] = 1.0
        zone = BoundaryZone(0, XB, XB - 8.0, XB + 8.0)
        n = retrace_boundaries(q, curves, rows, [zone], window_px=60, px_per_mm_x=scale)
        assert (n == 1) == spliced
        assert (np.nanmax(curves[0].y[385 - curves[0].x0 : 415 - curves[0].x0]) > 300.0) == spliced
