"""Paper sheet of a photographed page: found inside a dark background, absent on a plain page."""

from __future__ import annotations

import cv2
import numpy as np

from ecgdigitize.paper import paper_mask


def _photo(
    h: int = 600,
    w: int = 800,
    sheet_frac: tuple[float, float] = (0.8, 0.75),
    angle_deg: float = 4.0,
    background: int = 60,
) -> tuple[np.ndarray, np.ndarray]:
    """A light sheet (``sheet_frac`` of the image's width and height) with red grid lines and a black trace,
    turned by ``angle_deg`` on a dark background; returns (RGB image, true sheet mask)."""
    img = np.full((h, w, 3), background, np.uint8)
    sheet = np.zeros((h, w), np.uint8)
    rect = cv2.boxPoints(((w / 2, h / 2), (sheet_frac[0] * w, sheet_frac[1] * h), angle_deg)).astype(np.int32)
    cv2.fillPoly(sheet, [rect], 1)
    img[sheet > 0] = (245, 240, 235)
    for x in range(0, w, 20):
        img[:, x][sheet[:, x] > 0] = (230, 150, 150)
    for y in range(0, h, 20):
        img[y][sheet[y] > 0] = (230, 150, 150)
    cv2.line(img, (150, 300), (650, 300), (0, 0, 0), 3)
    return img, sheet.astype(bool)


def test_sheet_found_inside_a_dark_background():
    img, truth = _photo()
    m = paper_mask(img)
    assert m is not None and m.shape == truth.shape
    assert not m[~truth].any()  # nothing outside the sheet
    assert m[truth].mean() > 0.9  # most of the sheet (eroded a little at its edge)
    assert m[300, 150:650].all()  # the trace lies inside


def test_no_border_no_mask():
    img, _ = _photo()
    plain = np.full_like(img, 245)
    plain[::20] = (230, 150, 150)
    cv2.line(plain, (150, 300), (650, 300), (0, 0, 0), 3)
    assert paper_mask(plain) is None
    assert paper_mask(np.zeros((10, 10, 3), np.uint8)) is None


def test_background_wedges_at_the_image_border_are_left_out():
    """A tilted sheet wider than the image leaves thin dark wedges where its edges meet the image border;
    the closing over the ink would fill the narrow ends, the sheet's convex hull does not."""
    img, sheet = _photo(sheet_frac=(0.95, 1.3), angle_deg=2.0, background=50)
    m = paper_mask(img)
    assert m is not None
    assert not m[~sheet].any()
    assert m[sheet].mean() > 0.9


def test_a_sheet_edge_that_cuts_trace_rows_is_shaded_paper_not_background():
    """Trace rows running on past the sheet's edge mean the "background" is paper in shadow (a wrinkle's shadow
    on the Challenge generator's pages); rows that stay inside, with unrelated ink beyond (a desk's edge, clutter),
    mean a true background."""
    from ecgdigitize.paper import sheet_cuts_trace_rows

    h, w = 600, 1000
    sheet = np.zeros((h, w), bool)
    sheet[:, :650] = True
    prob = np.zeros((h, w), np.float32)
    for y in (100, 250, 400):
        prob[y - 1 : y + 2, 40:960] = 1.0  # rows across the whole image: cut by the sheet's edge
    assert sheet_cuts_trace_rows(sheet, prob)
    prob = np.zeros((h, w), np.float32)
    for y in (100, 250, 400):
        prob[y - 1 : y + 2, 40:600] = 1.0  # rows end inside the sheet
    prob[500:503, 700:990] = 1.0  # a long dark line in the background
    prob[50:80, 800:830] = 1.0  # a blob
    assert not sheet_cuts_trace_rows(sheet, prob)
    # the dark wedge a rotated scan leaves in a corner, partly inside the sheet: a blob, not a trace row
    prob[540:600, 560:1000] = np.tri(60, 440, 380, dtype=np.float32)[::-1]
    assert not sheet_cuts_trace_rows(sheet, prob)
