"""A turned, darkened photo of a page with a dark green grid: once the page is upright its major grid lines are
removed from the trace map as long straight lines (before that they were tilted and read as traces)."""

from __future__ import annotations

import pytest
from reference_scoring import snr_db

from ecgdigitize.pipeline import digitize_page

page_mod = pytest.importorskip("ecgrender.page")
distort = pytest.importorskip("ecgrender.distort")


def test_dark_green_grid_on_a_turned_photo(signal):
    spec = page_mod.PageSpec(
        dpi=150, layout="3x4+1", grid_color="green", gain=5.0, major_line_mm=0.25, minor_line_mm=0.11
    )
    page = page_mod.render_page(signal, 500, page_mod.STANDARD_LEADS, spec, rng=0)
    page = distort.apply_distortions(
        page,
        [
            {"name": "rotation", "angle_deg": 3.5},
            {"name": "brightness_contrast", "brightness": -24.0, "contrast": 0.97, "temperature": -0.05},
            {"name": "jpeg", "quality": 75},
        ],
        rng=0,
    )
    r = digitize_page(page.image)
    assert r.layout.name == "3x4+1" and r.layout.fits
    assert snr_db(signal, r.signal) >= 18.0  # measured 23.4 dB (7.8 dB with the trace map of the turned page)


def test_binarised_skewed_page_keeps_its_map(signal):
    """A black-and-white copy keeps the map of the page as scanned: resampled upright it would no longer look
    binarised, and its grid (as dark as the trace) would stay in the map."""
    page = page_mod.render_page(signal, 500, page_mod.STANDARD_LEADS, page_mod.PageSpec(dpi=150, layout="3x4+1"), rng=0)
    page = distort.apply_preset(page, "bw", rng=3)  # scanner skew, binarised, salt and pepper
    r = digitize_page(page.image)
    assert r.layout.fits
    assert snr_db(signal, r.signal) >= 3.0  # measured 5.1 dB (-2.8 dB, no template, with the map made again)


@pytest.mark.parametrize(
    "grid_color, distortions, remade",
    [
        ("red", [{"name": "rotation", "angle_deg": 1.0}], True),  # a turned page with a grid: its map is made again
        ("none", [{"name": "rotation", "angle_deg": 1.0}], False),  # no grid lines to remove
        ("red", "bw", False),  # binarised (a skewed scan, salt and pepper): keeps the warped map
        ("red", [], False),  # upright: nothing to make again
    ],
)
def test_when_the_trace_map_is_made_again(signal, monkeypatch, grid_color, distortions, remade):
    import ecgdigitize.stages as stages

    calls = []
    original = stages._classical_map_of_rectified
    monkeypatch.setattr(stages, "_classical_map_of_rectified", lambda *a, **k: calls.append(1) or original(*a, **k))
    page = page_mod.render_page(
        signal, 500, page_mod.STANDARD_LEADS, page_mod.PageSpec(dpi=150, layout="3x4+1", grid_color=grid_color), rng=0
    )
    if distortions == "bw":
        page = distort.apply_preset(page, "bw", rng=3)
    elif distortions:
        page = distort.apply_distortions(page, distortions, rng=0)
    r = digitize_page(page.image)
    assert bool(calls) == remade
    assert r.layout.fits
