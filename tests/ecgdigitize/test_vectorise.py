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


def test_a_stretch_on_the_neighbours_line_cut_by_untraced_columns_is_one_stretch():
    """A track on the neighbouring row's line for 19 px (2.4 mm) with 2 untraced columns in it: two parts of 8 and
    9 px, each under the 1.2 mm a stretch needs, are one stretch and dropped; a gap wider than 0.6 mm ends it."""
    bases = [100.0, 380.0]
    y0 = np.full(600, bases[0])
    y1 = np.full(600, bases[1])
    y1[200:219] = bases[0] + 1.0
    y1[208:210] = np.nan
    y1[400:408] = bases[0] + 1.0  # two 8-px tips 12 px (1.5 mm) apart: each a QRS spike, kept
    y1[408:420] = np.nan
    y1[420:428] = bases[0] + 1.0
    curves = [_curve(y0), _curve(y1)]
    drop_foreign_stretches(curves, bases, PPM)
    assert np.isnan(curves[1].y[200:219]).all()
    assert np.isfinite(curves[1].y[400:408]).all() and np.isfinite(curves[1].y[420:428]).all()


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


def test_a_vertical_line_cut_into_many_runs_does_not_pull_the_track_off_its_line():
    """One column crossed by a grid line the map kept, cut into 11-px pieces by the other grid family: its
    heaviest runs leave out the trace's own 5-px run there. The runs continuing the neighbouring columns' ink are
    kept first, so the track stays on its line."""
    from ecgdigitize.vectorise import column_runs, trace_rows

    prob = np.zeros((300, 300), np.float32)
    prob[99:102, 10:290] = 1.0
    for y in range(0, 300, 12):
        if not 85 < y < 110:
            prob[y : y + 11, 150] = 1.0
    prob[98:103, 150] = 1.0
    c = trace_rows(prob, [(0, 300, 10, 290, 100.0)], max_runs=10)[0]
    assert np.isfinite(c.y).all() and np.max(np.abs(c.y - 100.0)) <= 2.0
    # every crowded column keeps max_runs runs; those touching a neighbour's ink come first
    runs = column_runs(prob[:, 148:153], max_runs=10)
    assert runs.count.tolist() == [1, 1, 10, 1, 1]
    assert 98 in runs.top[2].tolist()


def test_a_stretch_along_an_edge_line_nearer_than_the_rows_spacing_is_dropped():
    """A rhythm strip 166 px above the page's border line (rows 280 px apart) traced along the border for 75 px: the
    neighbour rule on the rows' spacing keeps it (166 px is under 0.7 of 280); the line's own distance drops it. A QRS
    tip reaching the border (4 px wide) and a gap in the line's trace keep their places."""
    from ecgdigitize.vectorise import drop_stretches_on_lines

    bases = [1274.0, 1554.0]
    strip = np.full(600, bases[1])
    strip[91:166] = 1719.0
    strip[400:404] = 1718.0
    border = np.full(600, 1720.0)
    border[120:140] = np.nan  # columns the border's own trace left out
    curves = [_curve(np.full(600, bases[0])), _curve(strip)]
    assert drop_foreign_stretches(curves, bases, PPM) == 0
    n = drop_stretches_on_lines([curves[1]], [bases[1]], [_curve(border)], [1720.0], PPM)
    assert n == 75 and np.isnan(curves[1].y[91:166]).all()
    assert np.isfinite(curves[1].y[400:404]).all() and np.isfinite(curves[1].y[166:400]).all()
    assert not ((curves[1].pts_x >= 91) & (curves[1].pts_x < 166)).any()


def test_an_edge_lines_ink_leaves_the_map_but_a_stroke_crossing_it_stays():
    from ecgdigitize.vectorise import without_lines

    prob = np.zeros((200, 300), np.float32)
    prob[150:158, :] = 1.0  # a border line 8 px (1 mm) thick
    prob[40:190, 100:102] = 1.0  # a trace stroke crossing it
    line = np.full(300, 154.0)
    out = without_lines(prob, [_curve(line)], PPM)
    assert out[150:158, :100].max() == 0.0 and out[150:158, 102:].max() == 0.0
    assert np.all(out[40:150, 100:102] == 1.0) and np.all(out[159:190, 100:102] == 1.0)
    assert out[153:156, 100].max() == 0.0  # the line's traced width (2 px) around its height goes
    assert np.array_equal(without_lines(prob, [], PPM), prob)
