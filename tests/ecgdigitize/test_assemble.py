"""Sampling helpers of ecgdigitize.assemble."""

from __future__ import annotations

import numpy as np

from ecgdigitize.assemble import SMOOTH_S, smooth_samples


def test_smooth_samples_keeps_nan_gaps_and_runs_apart():
    y = np.r_[np.zeros(10), np.full(3, np.nan), np.full(10, 10.0)]
    out = smooth_samples(y, 2.0)
    assert np.isnan(out[10:13]).all()
    np.testing.assert_allclose(out[:10], 0.0)
    np.testing.assert_allclose(out[13:], 10.0)


def test_smooth_samples_removes_sample_zigzag_not_the_wave():
    fs = 500.0
    t = np.arange(2000) / fs
    wave = 20.0 * np.sin(2 * np.pi * 5.0 * t)  # pixels; 5 Hz, far below the cut-off
    zigzag = 0.8 * (-1.0) ** np.arange(t.size)  # sample-to-sample tracing jitter
    out = smooth_samples(wave + zigzag, SMOOTH_S * fs)
    err_before = np.sqrt(np.mean(zigzag[50:-50] ** 2))
    err_after = np.sqrt(np.mean((out - wave)[50:-50] ** 2))
    assert err_after < 0.1 * err_before
    # the wave itself keeps its amplitude (within 1 %)
    assert abs(np.max(out[50:-50]) / 20.0 - 1.0) < 0.01


def test_smooth_samples_tiny_sigma_is_identity():
    rng = np.random.default_rng(0)
    y = rng.normal(size=50)
    np.testing.assert_array_equal(smooth_samples(y, 0.05), y)


def test_unprinted_lead_start_takes_the_leads_level_not_an_r_peak():
    """A lead whose trace is missed for its first 0.1 s and resumes on the top of an R wave: its first samples
    are the lead's level next to them (the median of its nearest 0.2 s), not a plateau at the peak; a gap inside
    the window is still interpolated, and without ``fs`` the nearest value is held as before."""
    from ecgdigitize.assemble import LeadTrace, place
    from ecgdigitize.layout import LeadBox

    fs = 500.0
    v = np.zeros(1250)
    v[:50] = np.nan  # 0.1 s not traced
    v[50:60] = 1.2  # the R wave's top, then back to the level
    v[600:610] = np.nan
    box = LeadBox("V6", 2, 3, 0.0, 1.0, 7.5, 10.0, 0.0)
    lt = LeadTrace("V6", box, np.zeros(0), np.zeros(0), 3750, v)
    out = place([lt], ["I", "V6"], 5000, fs)[:, 1]
    np.testing.assert_allclose(out[3750:3800], 0.0)
    np.testing.assert_allclose(out[4350:4360], 0.0)
    assert np.isnan(out[:3750]).all()
    held = place([lt], ["I", "V6"], 5000)[:, 1]
    np.testing.assert_allclose(held[3750:3800], 1.2)


def test_ink_under_a_pulse_fall_and_under_ticks_is_not_read():
    """The generator draws a calibration pulse's fall over a row's first samples and a separator tick over the
    samples at each lead boundary: without ``x_pulse_end`` and ``read_x`` the first lead starts on the pulse's
    stroke and ends on the tick; with them both ends stay at the lead's level."""
    from ecgdigitize.assemble import RowTiming, place, sample_lead
    from ecgdigitize.layout import LeadBox
    from ecgdigitize.vectorise import TraceCurve

    base, pps, fs = 300.0, 200.0, 500.0
    y = np.full(800, base)
    y[:21] = base - 40.0  # the pulse's top (4 mV at 10 px/mV ... any height)
    y[21:24] = base - 20.0  # its falling stroke's column centres
    y[399:404] = base - 20.0  # the tick's columns (its ink through the baseline)
    y[404:412] = base + 30.0  # the next lead starts in an S wave
    curve = TraceCurve(0, y)
    timing = RowTiming(x_t0=21.0, px_per_s=pps, duration_s=3.8, base_y=base, mv_per_px=0.01)
    xb = 401.5
    box_a = LeadBox("I", 0, 0, 21.0, xb, 0.0, (xb - 21.0) / pps, base)

    def ends(lt):
        out = place([lt], ["I"], 2000, fs)[:, 0]
        ok = np.flatnonzero(np.isfinite(out))
        return out[ok[:3]], out[ok[-3:]]

    first, last = ends(sample_lead(curve, box_a, timing, fs, 2000))
    assert first.max() > 0.1 and np.abs(last).max() > 0.1  # the failure: pulse and tick read as lead I
    timing.x_pulse_end = 24.0
    first, last = ends(sample_lead(curve, box_a, timing, fs, 2000, read_x=(-np.inf, 398.0)))
    np.testing.assert_allclose(first, 0.0, atol=1e-6)
    np.testing.assert_allclose(last, 0.0, atol=1e-6)


def test_a_row_whose_start_was_misread_takes_the_start_its_end_gives():
    """A 100 Hz reading of a generator page (200 DPI, 196.85 px/s): three rows start at 122.2 px; row 0's pulse end was
    read 8.3 px (0.04 s) late, while its last traced sample, one sample period before the 10 s span's end, puts its
    start at 118.0 px like the others' ends: it starts with them."""
    from ecgdigitize.assemble import RowTiming, align_row_starts

    pps = 196.85

    def row(x_start: float, x_last: float) -> RowTiming:
        x_end = x_last - (10.0 - 0.01) * pps
        return RowTiming(x_start, pps, 10.0, 700.0, 0.0127, "grid+span", x_start, x_end, x_last)

    timings = [row(130.5, 2084.5), row(122.2, 2084.7), row(122.2, 2084.7), row(122.6, 2084.3)]
    align_row_starts(timings, tol_px=0.01 * pps, sample_s=0.01)
    assert [round(t.x_t0, 1) for t in timings] == [122.2, 122.2, 122.2, 122.6]
    assert timings[0].source.endswith("+aligned")


def test_rows_whose_starts_scatter_start_where_their_ends_agree():
    """A 100-DPI generator page read upsampled (178.96 px/s): pulse ends misread put the four rows' starts at
    111.4-132.4 px, while their traced ends give 107.3-107.8: every row starts at the ends' 107.7. Where the starts
    agree among themselves, they stay, whatever the ends say (a grid scale a little off moves every end alike)."""
    from ecgdigitize.assemble import RowTiming, align_row_starts

    pps = 178.96

    def row(x_start: float, x_end: float) -> RowTiming:
        return RowTiming(x_start, pps, 10.0, 700.0, 0.0127, "grid+span", x_start, x_end, x_end + (10.0 - 0.01) * pps)

    timings = [row(119.4, 107.8), row(132.4, 107.3), row(111.4, 107.8), row(112.0, 107.6)]
    align_row_starts(timings, tol_px=0.01 * pps, sample_s=0.01)
    assert [round(t.x_t0, 1) for t in timings] == [107.7] * 4
    assert all(t.source.endswith("+ends") for t in timings)
    timings = [row(122.2, 118.0), row(122.3, 118.1), row(122.2, 118.0), row(122.4, 118.2)]
    align_row_starts(timings, tol_px=0.01 * pps, sample_s=0.01)
    assert [round(t.x_t0, 1) for t in timings] == [122.2, 122.3, 122.2, 122.4]
