"""Thin and fading traces: a sub-pixel rotation is not applied (resampling would only blur 1-px traces), and a
row whose trace fades out early keeps the layout's columns."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ecgdigitize.pipeline import digitize_page

page_mod = pytest.importorskip("ecgrender.page")


def _page(signal, dpi: float = 100):
    return page_mod.render_page(signal, 500, page_mod.STANDARD_LEADS, page_mod.PageSpec(dpi=dpi, layout="3x4+1"), rng=0)


def test_sub_pixel_rotation_is_not_applied(signal):
    page = _page(signal, dpi=75)
    h, w = page.image.shape[:2]
    angle = 0.1  # degrees: moves the page's corners by 0.9 px about its centre
    assert np.radians(angle) * 0.5 * np.hypot(h, w) < 1.0
    M = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    turned = cv2.warpAffine(page.image, M, (w, h), flags=cv2.INTER_LINEAR, borderValue=(255, 255, 255))
    r = digitize_page(turned)
    assert abs(r.orientation.angle_deg) >= 0.05  # measured, but too small to resample the page for
    assert np.allclose(r.orientation.homography, np.eye(3))
    assert r.layout.fits


def test_row_fading_out_keeps_the_columns(signal):
    page = _page(signal, dpi=150)
    image = page.image.copy()
    paper = tuple(int(v) for v in np.median(image.reshape(-1, 3), axis=0))
    # the second row's trace fades out after its second column: paint over V2's second half and all of V5
    leads = {d["name"]: d for d in page.sidecar["leads"] if d["row"] == 1}
    x0 = int(0.5 * (leads["V2"]["bbox"][0] + leads["V2"]["bbox"][2]))
    y0, y1 = int(leads["V2"]["bbox"][1]) - 5, int(leads["V2"]["bbox"][3]) + 5
    image[y0:y1, x0:] = paper
    r = digitize_page(image)
    assert r.layout.name == "3x4+1"
    starts = {b.name: b.x0 for b in r.layout.boxes}
    column_px = starts["aVR"] - starts["I"]
    for top, faded in (("aVR", "aVL"), ("V1", "V2"), ("V4", "V5")):
        assert abs(starts[faded] - starts[top]) < 0.05 * column_px, (top, starts[top], faded, starts[faded])
