"""An image that shows part of a page: its columns placed by the printed labels, the leads cut off named absent."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from ecgdigitize.layout import Row
from ecgdigitize.lead_identity import LABEL_LEAD_IN_MM, PRINTED_SPAN_MM, RowSpan, place_page_part
from ecgdigitize.lead_labels import LabelRead
from ecgdigitize.selfcheck import check_signal

PPM = 8.0  # px/mm
PPS = 25.0 * PPM  # px/s
COL_PX = PRINTED_SPAN_MM / 4 * PPM  # a 3x4 column: 500 px
#: the image's left edge lies this far (px) right of the page's t = 0: 0.6 of the first column is cut off
CUT_PX = 0.6 * COL_PX


def _image_rows(n: int) -> tuple[list[Row], list[RowSpan]]:
    """``n`` rows traced from the image's left edge to x = 1200 (6 s)."""
    rows = [Row(100.0 + 200.0 * i, int(200.0 * i), int(200.0 * i + 200), 0, 1200) for i in range(n)]
    spans = [RowSpan(0.0, PPS, 6.0, r.baseline_y) for r in rows]
    return rows, spans


def _label(name: str, image_row: int, column: int, score: float = 0.95) -> LabelRead:
    """A label printed at the start of 3x4 column ``column`` on the image cut :data:`CUT_PX` from the page's start."""
    x = column * COL_PX - CUT_PX + LABEL_LEAD_IN_MM * PPM
    y = 100.0 + 200.0 * image_row - 8.0 * PPM
    return LabelRead(name, x, y, x + 4 * PPM, y + 3 * PPM, score)


def test_labels_place_the_columns_of_a_part_of_a_page():
    """Rows 1 and 2 of a 3x4 page (II.., III..) from 0.6 columns in to 3 columns: aVL/V2 and aVF/V3 labelled."""
    rows, spans = _image_rows(2)
    labels = [[_label("V2", 0, 2), _label("aVL", 0, 1)], [_label("aVF", 1, 1), _label("V3", 1, 2)]]
    part = place_page_part("3x4", rows, spans, labels, PPM)
    assert part is not None and part.row_offset == 1
    assert part.origins == pytest.approx({0: -CUT_PX, 1: -CUT_PX})
    names = [(b.row, b.name) for b in part.boxes]
    # II keeps 0.4 of its column (1 s); aVL's and V2's columns lie wholly on the image; V5's begins where the trace ends
    assert names == [(0, "II"), (0, "aVL"), (0, "V2"), (1, "III"), (1, "aVF"), (1, "V3")]
    by = {b.name: b for b in part.boxes}
    assert (by["II"].x0, by["II"].t0, by["II"].t1) == pytest.approx((0.0, 1.5, 2.5))
    assert (by["aVL"].x0, by["aVL"].t0, by["aVL"].t1) == pytest.approx((COL_PX - CUT_PX, 2.5, 5.0))
    assert (by["V2"].x1, by["V2"].t1) == pytest.approx((1200.0, 7.5))
    assert [b.column for b in part.boxes if b.row == 0] == [0, 1, 2]  # numbered as they show on the image
    assert part.absent == ["I", "aVR", "V1", "V4", "V5", "V6"]
    assert sorted(part.placed_by) == ["V2", "V3", "aVF", "aVL"]


def test_a_misread_label_is_outvoted_and_too_few_labels_place_nothing():
    rows, spans = _image_rows(2)
    # 'aVF' read as 'aVL' in the second image row: three labels against one
    labels = [[_label("aVL", 0, 1), _label("V2", 0, 2)], [_label("aVL", 1, 1), _label("V3", 1, 2)]]
    part = place_page_part("3x4", rows, spans, labels, PPM)
    assert part is not None and part.row_offset == 1 and "aVL" not in part.absent
    assert [b.name for b in part.boxes if b.row == 1] == ["III", "aVF", "V3"]
    # one label, or unsure ones, place nothing
    assert place_page_part("3x4", rows, spans, [[_label("V2", 0, 2)], []], PPM) is None
    unsure = [[_label("aVL", 0, 1, 0.4), _label("V2", 0, 2, 0.4)], []]
    assert place_page_part("3x4", rows, spans, unsure, PPM) is None
    # labels whose columns disagree (V2 a third of a column off) place nothing
    off = _label("V2", 0, 2)
    off.x0 += COL_PX / 3
    off.x1 += COL_PX / 3
    assert place_page_part("3x4", rows, spans, [[_label("aVL", 0, 1), off], []], PPM) is None


def test_a_grid_that_expects_labels_where_none_is_read_has_less_support():
    """A 6x2 page's second column ('V1', 'V2', 'V3' on the first three rows, 125 mm columns) from 0.6 of its first
    column on: the labels place a 3x4 grid as well (same column start), which expects 'V4', 'V5', 'V6' 62.5 mm
    further on the image, where none is read; the 6x2 grid expects no label there."""
    rows, spans = _image_rows(3)
    rows = [Row(r.baseline_y, r.y0, r.y1, 0, 1700) for r in rows]
    spans = [RowSpan(0.0, PPS, 8.5, s.base_y) for s in spans]
    col6 = PRINTED_SPAN_MM / 2 * PPM
    x = col6 - 0.6 * col6 + LABEL_LEAD_IN_MM * PPM
    labels = [[LabelRead(n, x, 60.0 + 200 * i, x + 30, 80.0 + 200 * i, 0.95)] for i, n in enumerate(["V1", "V2", "V3"])]
    as_3x4 = place_page_part("3x4", rows, spans, labels, PPM)
    as_6x2 = place_page_part("6x2", rows, spans, labels, PPM)
    assert as_3x4 is not None and as_6x2 is not None
    assert (as_3x4.unlabelled, as_3x4.support) == (3, 0)
    assert (as_6x2.unlabelled, as_6x2.support) == (0, 3)
    assert [b.name for b in as_6x2.boxes] == ["I", "V1", "II", "V2", "III", "V3"]


def test_a_whole_page_is_no_part():
    """Every lead of the grid on the image: the templates read it (None)."""
    rows = [Row(100.0 + 200.0 * i, int(200.0 * i), int(200.0 * i + 200), 100, 2100) for i in range(3)]
    spans = [RowSpan(100.0, PPS, 10.0, r.baseline_y) for r in rows]
    grid = [["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"], ["III", "aVF", "V3", "V6"]]
    labels = [
        [
            LabelRead(n, 104.0 + c * COL_PX, 50.0 + 200 * r, 130.0 + c * COL_PX, 70.0 + 200 * r, 0.95)
            for c, n in enumerate(leads)
        ]
        for r, leads in enumerate(grid)
    ]
    assert place_page_part("3x4", rows, spans, labels, PPM) is None


def test_leads_off_the_image_are_not_missing_and_cut_leads_are_covered_over_their_part():
    fs, n = 500, 5000
    t = np.arange(n) / fs
    beat = np.exp(-(((t % 0.8) - 0.4) ** 2) / (2 * 0.01**2))
    sig = np.full((n, 12), np.nan)
    names = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    sig[3750:5000, 9] = beat[3750:5000]  # V4: the last 2.5 s column
    sig[1750:2500, 6] = 0.8 * beat[1750:2500]  # V1: its last 1.5 s on the image (V1's column is 2.5-5 s)
    sig[3750:5000, 10] = 1.2 * beat[3750:5000]
    whole = check_signal(sig[:, :], names, fs)
    cov = next(c for c in whole.checks if c.name == "coverage")
    assert cov.passed is False and "no samples in" in cov.detail
    absent = [nm for j, nm in enumerate(names) if j not in (6, 9, 10)]
    part = check_signal(sig, names, fs, absent=absent, windows={"V1": 750, "V4": 1250, "V5": 1250})
    cov = next(c for c in part.checks if c.name == "coverage")
    assert cov.passed is True, cov.detail
    # a lead traced for half of its part on the image still fails
    sig[2125:2500, 6] = np.nan
    part = check_signal(sig, names, fs, absent=absent, windows={"V1": 750, "V4": 1250, "V5": 1250})
    cov = next(c for c in part.checks if c.name == "coverage")
    assert cov.passed is False and "V1" in cov.leads


page_mod = pytest.importorskip("ecgrender.page")


@pytest.fixture(scope="module")
def page_3x4(signal):
    """Our renderer's 3x4 page at 200 DPI (2200 x 1700 px; columns start at x = 149, 641, 1133, 1625; rows' baselines
    at y = 466, 953, 1441)."""
    return page_mod.render_page(signal, 500, page_mod.STANDARD_LEADS, page_mod.PageSpec(dpi=200, layout="3x4"), rng=0)


def _lead_errors_mv(result, signal) -> dict[str, float]:
    """RMS error (mV, offset removed) of each lead read, over the samples read."""
    out = {}
    for j, name in enumerate(result.lead_names):
        ok = np.isfinite(result.signal[:, j])
        if ok.any():
            e = result.signal[ok, j] - signal[ok, j]
            out[name] = float(np.sqrt(np.mean((e - e.mean()) ** 2)))
    return out


def test_a_region_of_a_6x2_page_is_not_taken_for_a_3x4_one(signal):
    """Rows 0-2 of our renderer's 6x2 page from 0.3 of its width on: 'V1', 'V2', 'V3' place both grids; the 3x4 one
    expects three labels the image does not show. Read as 6x2, I, II and III and V1-V3 at their times, 'ok'."""
    from ecgdigitize.pipeline import digitize_page

    page = page_mod.render_page(signal, 500, page_mod.STANDARD_LEADS, page_mod.PageSpec(dpi=200, layout="6x2"), rng=0)
    h, w = page.image.shape[:2]
    result = digitize_page(np.ascontiguousarray(page.image[int(0.05 * h) : int(0.6 * h), int(0.3 * w) :]))
    assert result.layout.name == "6x2" and result.status == "ok", result.status_reasons
    errors = _lead_errors_mv(result, signal)
    assert sorted(errors) == sorted(["I", "II", "III", "V1", "V2", "V3"])
    assert max(errors.values()) < 0.15, errors  # measured 0.031-0.122 mV


@pytest.mark.parametrize(
    "crop, shown, first_s",
    [
        # rows 0-1 from the middle of the second column to the page's end (the traces end on a rising T wave, which
        # mirrored looks like a calibration pulse: the printed labels keep the image upright)
        ((slice(300, 1200), slice(900, 2200)), ["aVR", "aVL", "V1", "V2", "V4", "V5"], 3.8),
        # all three rows, from 1.3 s in to 6.8 s: the limb leads' laws are verified and the page is 'ok'
        ((slice(300, 1700), slice(400, 1500)), ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3"], 1.26),
    ],
)
def test_a_photographed_region_of_a_page_reads_its_leads_at_their_times(page_3x4, signal, crop, shown, first_s):
    from ecgdigitize.pipeline import digitize_page

    result = digitize_page(np.ascontiguousarray(page_3x4.image[crop]))
    assert not any("180" in w for w in result.warnings)
    assert sorted(result.layout.absent) == sorted(set(page_mod.STANDARD_LEADS) - set(shown))
    errors = _lead_errors_mv(result, signal)
    assert sorted(errors) == sorted(shown)
    assert max(errors.values()) < 0.08, errors  # measured 0.008-0.066 mV
    first = min(
        int(np.flatnonzero(np.isfinite(result.signal[:, j]))[0]) for j in range(12) if result.lead_names[j] in shown
    )
    assert abs(first / 500 - first_s) < 0.05
    assert not any(r.startswith(("coverage", "the rows fit no")) for r in result.status_reasons), result.status_reasons
    if "I" in shown:
        assert result.status == "ok"


def test_a_pulse_like_wave_inside_a_parts_lead_box_is_no_calibration_pulse(page_3x4, signal):
    """The first crop photographed (our renderer's photo preset: perspective, rotation, light, noise, JPEG): a wave at
    the cut left edge of row 0 looks like a 5 mm, 12 mm wide calibration pulse, which made the image 50 mm/s and 5
    mm/mV. It lies right of the row's t = 0 that the labels give, inside aVR's box: the page is calibrated again
    without it, and every lead reads within 0.08 mV (measured 0.02-0.05; 0.24-0.79 with the pulse)."""
    from ecgdigitize.pipeline import digitize_page
    from ecgrender.distort import apply_preset

    part = copy.copy(page_3x4)
    part.image = np.ascontiguousarray(page_3x4.image[300:1200, 900:2200])
    result = digitize_page(apply_preset(part, "photo", rng=0).image)
    assert any("pulses found lie inside the lead boxes" in w for w in result.warnings), result.warnings
    assert not any("50 mm/s" in w or "5 mm/mV" in w for w in result.warnings)
    errors = _lead_errors_mv(result, signal)
    assert sorted(errors) == sorted(["aVR", "aVL", "V1", "V2", "V4", "V5"])
    assert max(errors.values()) < 0.08, errors
