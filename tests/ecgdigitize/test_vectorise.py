"""Row tracking: a row's track never stays on a neighbouring row's line."""

from __future__ import annotations

import numpy as np

from ecgdigitize.vectorise import TraceCurve, drop_foreign_stretches

PPM = 7.874


def _curve(y: np.ndarray) -> TraceCurve:
    x = np.arange(y.size, dtype=np.float64)
    ok = np.isfinite(y)
    return TraceCurve(0, y.copy(), 2.0, float(ok.mean()), 0.0, x[ok], y[ok], 2.0)


def test_stretch_on_the_neighbouring_rows_line_is_dropped():
    bases = [100.0, 380.0]
    y0 = np.full(600, bases[0])
    y1 = np.full(600, bases[1])
    y1[200:260] = bases[0] + 1.0  # row 1's track jumped onto row 0's line for 60 px (7.6 mm)
    y1[400:404] = bases[0] + 2.0  # a QRS tip reaching row 0's level: 4 px (0.5 mm) wide, kept
    curves = [_curve(y0), _curve(y1)]
    n = drop_foreign_stretches(curves, bases, PPM)
    assert n == 60
    assert np.isnan(curves[1].y[200:260]).all() and np.isfinite(curves[1].y[400:404]).all()
    assert not ((curves[1].pts_x >= 200) & (curves[1].pts_x < 260)).any()
    assert np.isfinite(curves[0].y).all()  # the row whose line it is keeps it


def test_rows_reaching_beyond_the_page_are_traced_jointly():
    """Row windows that leave the page (re-traced windows at its edges) or lie wholly outside it: the joint
    tracing with claims between rows clips them as each row's band is clipped (an empty band gives no track)."""
    from ecgdigitize.vectorise import trace_rows

    prob = np.zeros((120, 300), np.float32)
    prob[40, 10:290] = 1.0
    prob[90, 10:290] = 1.0
    rows = [(20, 65, -20, 320, 40.0), (65, 140, 10, 290, 90.0), (130, 160, 350, 400, 145.0)]
    curves = trace_rows(prob, rows)
    assert len(curves) == 3
    assert np.nanmedian(curves[0].y) == 40.0 and np.nanmedian(curves[1].y) == 90.0
    assert not np.isfinite(curves[2].y).any()
