"""Page scale fallbacks: the sheet size from the image's aspect ratio, and calibration pulses over the page size."""

from __future__ import annotations

import numpy as np
import pytest

from ecgdigitize.pipeline import digitize_page
from ecgdigitize.scale import scale_from_page_width, sheet_of_image

page_mod = pytest.importorskip("ecgrender.page")


@pytest.mark.parametrize(
    "size, sheet",
    [
        ((1100, 850), "letter"),
        ((1169, 827), "A4"),
        ((827, 1169), "A4"),
        ((2339, 1654), "A4"),
        ((1000, 1000), "letter"),
        ((1600, 900), "letter"),
    ],
)
def test_sheet_of_image(size, sheet):
    """Whole letter and A4 sheets (either orientation) are told apart by aspect ratio; other shapes (crops,
    photos) fall back to letter."""
    assert sheet_of_image(*size) == sheet


def test_page_width_scale_of_an_a4_page():
    sc = scale_from_page_width(1169, 827)  # A4 at 100 DPI: 3.937 px/mm, not 1169 / 279.4 = 4.184 (letter)
    assert sc.source == "dpi" and sc.px_per_mm_x == pytest.approx(1169 / 297.0)
    assert "A4" in sc.warnings[0]


def _no_grid_page(signal, **spec):
    return page_mod.render_page(
        signal, 500, page_mod.STANDARD_LEADS, page_mod.PageSpec(dpi=100, grid_color="none", **spec), rng=0
    )


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


def _pulses(heights_px: list[float]) -> list:
    from ecgdigitize.calibration import Pulse

    return [Pulse(i, 10.0, 50.0, 300.0 * i + 100.0 - h, 300.0 * i + 100.0, 55.0) for i, h in enumerate(heights_px)]


def test_grid_read_at_a_wrong_harmonic_is_corrected_by_the_pulses():
    """Pulses 12 mm tall on the grid's scale (grid period 5/6 of the truth) give the scale: 10 mm/mV."""
    from ecgdigitize.pipeline import _grid_scale_from_pulses
    from ecgdigitize.scale import Scale

    true_ppm = 7.874
    grid = Scale(true_ppm * 5 / 6, true_ppm * 5 / 6, "grid", confidence=1.0)
    fixed = _grid_scale_from_pulses(grid, _pulses([78.7, 78.9, 78.6, 78.8]), n_rows=4)
    assert fixed is not None and fixed.source == "pulse"
    assert abs(fixed.px_per_mm_y / true_ppm - 1) < 0.01 and abs(fixed.px_per_mm_x / true_ppm - 1) < 0.01
    # only y read wrong (x and y periods differ by more than 5 %): x keeps the grid's period
    y_only = Scale(true_ppm, true_ppm * 5 / 6, "grid", confidence=1.0)
    fixed = _grid_scale_from_pulses(y_only, _pulses([78.7, 78.9, 78.6, 78.8]), n_rows=4)
    assert fixed.px_per_mm_x == true_ppm and abs(fixed.px_per_mm_y / true_ppm - 1) < 0.01


def test_pulses_that_confirm_disagree_or_are_few_leave_the_grid_scale():
    from ecgdigitize.pipeline import _grid_scale_from_pulses
    from ecgdigitize.scale import Scale

    grid = Scale(7.874, 7.874, "grid", confidence=1.0)
    assert _grid_scale_from_pulses(grid, _pulses([78.7, 78.9, 78.6]), 4) is None  # 10 mm: standard
    assert _grid_scale_from_pulses(grid, _pulses([94.5, 70.0, 94.4]), 4) is None  # heights disagree
    assert _grid_scale_from_pulses(grid, _pulses([94.5]), 4) is None  # one pulse of four rows
    assert _grid_scale_from_pulses(grid, _pulses([110.2, 110.4]), 4) is None  # 14 mm: no standard gain near
    page = Scale(7.874, 7.874, "dpi", confidence=0.35)
    assert _grid_scale_from_pulses(page, _pulses([94.5, 94.4, 94.6]), 4) is None  # page-size scales: elsewhere


def test_a_crop_keeps_its_grid_period_when_the_self_check_prefers_it(monkeypatch):
    """A grid period implying a page under 120 mm is divided down (aliasing guard); the period as read is the
    other hypothesis, kept when its reading checks better (a photographed crop of a page: a 2.1 px/mm reading
    made every R-R interval 2.4 s; as read, 6.4 px/mm, the rates are physiological)."""
    from types import SimpleNamespace

    from ecgdigitize import pipeline as pl

    def reading(status: str, trusted: bool):
        note = [] if trusted else [f"{pl.SUB_HARMONIC_NOTE} 101 mm page; using 1/3 of it"]
        sc = SimpleNamespace(warnings=note, px_per_mm_x=6.39 if trusted else 2.13)
        return SimpleNamespace(
            scale=sc,
            check=SimpleNamespace(status=status, score=0.5),
            warnings=[],
            trusted=trusted,
            row_curves=[],
            row_timings=[],
        )

    for divided, as_read, keep in (("failed", "suspect", True), ("suspect", "failed", False)):
        calls = []

        def fake(image, prob, trust_grid_period=False, **kw):
            calls.append(trust_grid_period)
            return reading(as_read if trust_grid_period else divided, trust_grid_period)

        monkeypatch.setattr(pl, "_digitize_page", fake)
        monkeypatch.setattr(pl, "_with_residual_tilt_removed", lambda r, kw: r)
        result = pl.digitize_page(np.zeros((10, 10, 3), np.uint8))
        assert calls == [False, True] and result.trusted is keep
        assert any("kept as read" in w for w in result.warnings) is keep
    # no division, no second reading
    calls.clear()
    monkeypatch.setattr(
        pl,
        "_digitize_page",
        lambda image, prob, trust_grid_period=False, **kw: calls.append(trust_grid_period) or reading("ok", True),
    )
    pl.digitize_page(np.zeros((10, 10, 3), np.uint8))
    assert calls == [False]
