"""Per-row time axes: a keystone left on the page (rows of different px per mm) still lines the rows up."""

from __future__ import annotations

import numpy as np
import pytest
from reference_scoring import snr_db

import ecgdigitize.pipeline as pipeline
import ecgdigitize.stages as stages
from ecgdigitize.orientation import Orientation

page_mod = pytest.importorskip("ecgrender.page")
distort = pytest.importorskip("ecgrender.distort")


@pytest.fixture(scope="module")
def keystoned(signal):
    page = page_mod.render_page(signal, 500, page_mod.STANDARD_LEADS, page_mod.PageSpec(dpi=150, layout="3x4+1"), rng=0)
    # the top edge 6 % narrower than the bottom: a camera tilted towards the page's top
    return distort.apply_distortions(
        page, [{"name": "perspective", "corner_offsets": [[0.03, 0], [-0.03, 0], [0, 0], [0, 0]]}], rng=0
    )


def _qrs_timing_ms(result) -> float:
    return next(c.value for c in result.check.checks if c.name == "qrs_timing")


def test_each_row_gets_its_own_time_axis(signal, keystoned, monkeypatch):
    """With the keystone not removed (orientation estimate disabled), each row's px/s comes from the grid in its
    band: simultaneous QRS complexes line up across rows (measured 44 ms, 339 ms on the page's one scale) and the
    signal is read 6 dB better (9.1 vs 3.1 dB)."""
    monkeypatch.setattr(stages, "estimate_orientation", lambda g, p: Orientation(source="none"))
    per_row = pipeline._digitize_page(keystoned.image)
    pps = [t.px_per_s for t in per_row.row_timings]
    assert pps == sorted(pps) and pps[-1] / pps[0] > 1.03  # rows lower on the page are wider
    monkeypatch.setattr(stages, "row_px_per_mm_x", lambda grid, row, rows, ppx, params: ppx)
    one_scale = pipeline._digitize_page(keystoned.image)
    assert _qrs_timing_ms(per_row) < 80.0 < _qrs_timing_ms(one_scale)
    assert snr_db(signal, per_row.signal) > snr_db(signal, one_scale.signal) + 3.0


def test_bridged_rows_are_preferred_when_they_complete_a_cut_row():
    from ecgdigitize.layout import Row
    from ecgdigitize.pipeline import prefer_bridged_rows

    def rows(*spans: tuple[int, int]) -> list[Row]:
        return [Row(100.0 + 200 * i, 200 * i, 200 * i + 200, a, b) for i, (a, b) in enumerate(spans)]

    full = (70, 1897)
    cut = rows(full, (1023, 1897), (228, 1896), (70, 1459))  # a faint lead cut row 1 in two
    bridged = rows(full, full, full, full)
    assert prefer_bridged_rows(cut, bridged)  # 27 % more, the shortest row longer
    assert not prefer_bridged_rows(bridged, bridged)  # nothing gained
    assert not prefer_bridged_rows(cut, rows(full, (1023, 1897), (228, 1896), (70, 1459), (70, 300)))  # no gain
    shorter = rows(full, full, full, (500, 1459))  # longer in total, but one row lost its start
    assert not prefer_bridged_rows(rows(full, (1023, 1897), full, (70, 1459)), shorter)
    assert prefer_bridged_rows(rows(full), rows(full, full))  # fewer than two rows: more rows win


def test_a_row_spans_blank_gaps_between_printed_columns():
    """A printer that leaves 7 mm blank between columns: the row still spans them (it ended before V4); a gap
    wider than a column gap, or a short stretch beyond it (text), does not extend the row."""
    from ecgdigitize.layout import COLUMN_GAP_MM, find_rows

    ppm = 4.0
    rmap = np.zeros((200, 1400), np.float32)
    rmap[60, 20:900] = 1.0  # I, aVR, V1
    rmap[60, 928:1300] = 1.0  # V4 after a 7 mm blank gap
    rmap[150, 20:700] = 1.0
    rmap[150, 760:1300] = 1.0  # 15 mm gap: another thing
    rmap[150, 1330:1360] = 1.0  # 7.5 mm stretch (text) after a short gap
    rows = find_rows(rmap, ppm, ppm)
    assert 7.0 < COLUMN_GAP_MM
    assert [(r.x0, r.x1) for r in rows] == [(20, 1300), (20, 700)]


def test_a_lead_printed_at_its_own_height_stays_in_its_row(signal, monkeypatch):
    """V6 drawn 13 mm above its row (a printer that places each lead at its own offset; here a 1.3 mV offset in the
    signal): its profile peak is merged into the row (closer than 3/4 of the row spacing, over other columns), the
    row remembers both heights, and V6 is read from its own isoelectric level. Without the merge the page had five
    rows and failed its self-check."""
    import ecgdigitize.layout as layout

    shifted = signal.copy()
    shifted[:, 11] += 1.3
    page = page_mod.render_page(
        shifted, 500, page_mod.STANDARD_LEADS, page_mod.PageSpec(dpi=150, layout="3x4+1"), rng=0
    )
    result = pipeline._digitize_page(page.image)
    assert result.layout.name == "3x4+1" and result.status == "ok", result.status_reasons
    row = result.layout.rows[2]
    assert len(row.levels) == 2
    heights = sorted(level[2] for level in row.levels)
    assert heights[1] - heights[0] == pytest.approx(13.0 * 150 / 25.4, rel=0.1)  # 13 mm at 150 DPI
    v6 = result.signal[:, 11]
    printed = np.isfinite(v6)
    assert printed.sum() == 1250
    assert abs(float(np.median(v6[printed]))) < 0.15  # its own level, not 1.3 mV above the row's
    assert np.corrcoef(v6[printed], signal[printed, 11])[0, 1] > 0.95
    monkeypatch.setattr(layout, "ROW_MERGE_SPACING", 0.0)
    split = pipeline._digitize_page(page.image)
    assert len(split.layout.rows) == 5 and split.status == "failed"


def test_row_level_at_a_column():
    from ecgdigitize.layout import Row

    flat = Row(500.0, 400, 600, 0, 1000)
    assert flat.level_at(900) == 500.0
    row = Row(480.0, 400, 600, 0, 1000, levels=[(0, 740, 500.0), (760, 1000, 410.0)])
    assert row.level_at(100) == 500.0 and row.level_at(900) == 410.0
    assert row.level_at(745) == 500.0 and row.level_at(758) == 410.0  # the nearer part in the gap


def test_a_single_row_off_the_page_scale_between_rows_on_it_keeps_the_page_scale(monkeypatch):
    """A keystone changes the scale smoothly down the page (each row keeps its own); one row 7 % off between rows on
    the page's scale is a noisy grid band (measured on a rotated generator page) and keeps the page's."""
    from ecgdigitize.layout import Row

    rows = [Row(300.0 + 280 * i, 160 + 280 * i, 440 + 280 * i, 100, 2100) for i in range(4)]
    page = 7.87

    def scales(own):
        values = dict(zip([r.baseline_y for r in rows], own))
        monkeypatch.setattr(stages, "row_px_per_mm_x", lambda grid, row, rows, ppx, params: values[row.baseline_y])
        return stages.row_scales_px_per_mm_x(np.zeros((10, 10)), rows, page)

    keystone = [page * f for f in (0.97, 0.99, 1.01, 1.03)]
    assert scales(keystone) == keystone
    assert scales([page, page, 0.928 * page, page]) == [page] * 4


def test_a_row_whose_ink_spans_the_other_rows_pixels_is_on_their_scale():
    """The rows of a page print one span: a row whose own grid band reads 3 % short while its ink spans the same
    pixels as the other rows' is on the page's scale; on a keystone the spans differ as the scales do and every row
    keeps its own; a row cut short keeps its own scale (its span tells nothing)."""
    page = 7.87
    same = [1968.0, 1967.7, 1966.9, 1967.2]
    assert stages.scales_of_rows_spanning_alike([0.97 * page, page, page, page], same, page) == [page] * 4
    keystone = [page * f for f in (0.97, 0.99, 1.01, 1.03)]
    spans = [1968.0 * f for f in (0.97, 0.99, 1.01, 1.03)]
    assert stages.scales_of_rows_spanning_alike(keystone, spans, page) == keystone
    cut = [1968.0, 1968.0, 1968.0, 1500.0]
    assert stages.scales_of_rows_spanning_alike([page, page, page, 0.97 * page], cut, page)[3] == 0.97 * page


def test_a_row_scale_the_self_check_rejects_gives_way_to_the_page_scale(signal, monkeypatch):
    """The rhythm strip's grid band read 2.5 % wide (text printed over it, a fold) and its span not compared with the
    other rows' (:func:`stages.scales_of_rows_spanning_alike` would give it the page's scale): its leads drift
    against the simultaneous leads above and the page is not 'ok'. The page is read again with every row on the
    page's grid scale, which the self-check prefers; a page whose rows agree is not read twice."""
    page = page_mod.render_page(signal, 500, page_mod.STANDARD_LEADS, page_mod.PageSpec(dpi=150, layout="3x4+1"), rng=0)
    plain = pipeline.digitize_page(page.image)
    assert plain.check.status == "ok" and not pipeline.rows_scaled_apart(plain.row_timings)
    own = stages.row_scales_px_per_mm_x

    def disturbed(grid, rows, ppx, params=stages.DEFAULT_PARAMS):
        return own(grid, rows, ppx, params)[:-1] + [1.025 * ppx]

    monkeypatch.setattr(stages, "row_scales_px_per_mm_x", disturbed)
    by_span = pipeline._digitize_page(page.image)  # the strip spans the other rows' pixels: on their scale
    assert by_span.check.status == "ok" and not pipeline.rows_scaled_apart(by_span.row_timings)
    monkeypatch.setattr(stages, "scales_of_rows_spanning_alike", lambda row_ppx, spans, ppx: list(row_ppx))
    as_measured = pipeline._digitize_page(page.image)
    assert as_measured.check.status != "ok" and pipeline.rows_scaled_apart(as_measured.row_timings)
    chosen = pipeline.digitize_page(page.image)
    assert chosen.check.status == "ok" and not pipeline.rows_scaled_apart(chosen.row_timings)
    assert any("page's grid scale" in w for w in chosen.warnings)
    assert snr_db(signal, chosen.signal) > snr_db(signal, as_measured.signal)
