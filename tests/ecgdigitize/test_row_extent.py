"""Rows found shorter than their lead boxes: traced over the rest of them where a trace of the row is there."""

from __future__ import annotations

import numpy as np

from ecgdigitize.layout import LeadBox, Row
from ecgdigitize.row_extent import extend_rows_to_boxes
from ecgdigitize.vectorise import trace_rows

PPM = 4.0  # px per mm (a 100-DPI photo)
BASES = (60.0, 160.0)


def _page(row0_ink_to: int) -> np.ndarray:
    """(H, W) map: row 0 a sine-like trace around y = 60 up to column ``row0_ink_to``, row 1 flat at y = 160."""
    p = np.zeros((220, 900), np.float32)
    x = np.arange(900)
    y0 = BASES[0] + 6.0 * np.sin(x / 15.0)
    for c in range(20, row0_ink_to):
        a, b = sorted((y0[c], y0[c + 1]))
        p[int(a) - 1 : int(b) + 2, c] = 1.0
    p[159:162, 20:880] = 1.0
    return p


def _setup(p: np.ndarray, row0_found_to: int) -> tuple[list[Row], list, list[LeadBox]]:
    rows = [Row(BASES[0], 0, 110, 20, row0_found_to), Row(BASES[1], 110, 220, 20, 880)]
    curves = trace_rows(p, [(r.y0, r.y1, r.x0, r.x1, r.baseline_y) for r in rows])
    boxes = [
        LeadBox(n, k, c, 20.0 + 215.0 * c, 235.0 + 215.0 * c, 2.5 * c, 2.5 * c + 2.5, BASES[k])
        for k, n in ((0, "I"), (1, "II"))
        for c in range(4)
    ]
    return rows, curves, boxes


def test_row_cut_short_by_the_row_finder_is_traced_over_its_boxes():
    p = _page(row0_ink_to=870)
    rows, curves, boxes = _setup(p, row0_found_to=500)
    assert extend_rows_to_boxes(rows, curves, boxes, p, PPM, PPM) == [0]
    c = curves[0]
    x = np.arange(600, 860)
    y = c.y[x - c.x0]
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, BASES[0] + 6.0 * np.sin(x / 15.0), atol=2.0)
    assert rows[0].x1 >= 859 and np.isfinite(curves[1].y).mean() > 0.95


def test_blank_boxes_and_a_neighbours_line_do_not_extend_a_row():
    # the row's last column is not printed: nothing to trace there
    p = _page(row0_ink_to=500)
    rows, curves, boxes = _setup(p, row0_found_to=500)
    assert extend_rows_to_boxes(rows, curves, boxes, p, PPM, PPM) == []
    assert np.nanmax(curves[0].x0 + np.flatnonzero(np.isfinite(curves[0].y))) < 505
    # ... and a stroke from its end down to the next row's line must not carry the row onto that line
    p[60:161, 500:502] = 1.0
    rows, curves, boxes = _setup(p, row0_found_to=500)
    assert extend_rows_to_boxes(rows, curves, boxes, p, PPM, PPM) == []
