"""Page scale fallbacks: the sheet size from the image's aspect ratio, and calibration pulses over the page size."""
from __future__ import annotations

import pytest

from ecgdigitize.pipeline import digitize_page
from ecgdigitize.scale import scale_from_page_width, sheet_of_image

page_mod = pytest.importorskip("ecgrender.page")


@pytest.mark.parametrize("size, sheet", [((1100, 850), "letter"), ((1169, 827), "A4"), ((827, 1169), "A4"),
                                         ((2339, 1654), "A4"), ((1000, 1000), "letter"), ((1600, 900), "letter")])
def test_sheet_of_image(size, sheet):
    """Whole letter and A4 sheets (either orientation) are told apart by aspect ratio; other shapes (crops,
    photos) fall back to letter."""
    assert sheet_of_image(*size) == sheet


def test_page_width_scale_of_an_a4_page():
    sc = scale_from_page_width(1169, 827)  # A4 at 100 DPI: 3.937 px/mm, not 1169 / 279.4 = 4.184 (letter)
    assert sc.source == "dpi" and sc.px_per_mm_x == pytest.approx(1169 / 297.0)
    assert "A4" in sc.warnings[0]


def _no_grid_page(signal, **spec):
    return page_mod.render_page(signal, 500, page_mod.STANDARD_LEADS,
                                page_mod.PageSpec(dpi=100, grid_color="none", **spec), rng=0)


def test_no_grid_a4_page_is_timed_right(signal):
    """A grid-less A4 page: the scale (and so the heart rate) was 6 % off when every page was taken for letter."""
    page = _no_grid_page(signal, paper="a4")
    r = digitize_page(page.image)
    assert abs(r.scale.px_per_mm_x / page.sidecar["px_per_mm_x"] - 1) < 0.01
    assert abs(r.row_timings[-1].px_per_s / (25.0 * page.sidecar["px_per_mm_x"]) - 1) < 0.01


def test_pulses_give_the_scale_when_the_page_size_misleads(signal):
    """A grid-less letter page cut at the bottom looks like an A4 sheet (6 % off); its 10 mm pulses, measured to
    about 2 %, give the scale instead."""
    page = _no_grid_page(signal)
    cut = page.image[:-60]
    assert sheet_of_image(cut.shape[1], cut.shape[0]) == "A4"  # the case under test
    r = digitize_page(cut)
    assert r.scale.source == "pulse" and any("scale from the calibration pulses" in w for w in r.warnings)
    assert abs(r.scale.px_per_mm_x / page.sidecar["px_per_mm_x"] - 1) < 0.03
