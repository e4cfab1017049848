"""Calibration pulses: where the signal starts after the pulse."""

from __future__ import annotations

import numpy as np
import pytest

from ecgdigitize.calibration import find_pulse

PPM = 7.874  # px/mm (200 DPI)
BASE = 100.0


def _row(gap_mm: float) -> np.ndarray:
    """A traced row curve (pixels, NaN = no ink): 1 mm foot, a 10 mm tall, 5 mm (0.2 s) wide pulse, then
    ``gap_mm`` without ink and a flat trace."""
    n = 400
    y = np.full(n, BASE)
    a, b = int(round(1 * PPM)), int(round(6 * PPM))
    y[a:b] = BASE - 10 * PPM
    if gap_mm > 0:
        y[b : b + int(round(gap_mm * PPM))] = np.nan
    return y


def test_trace_joined_to_the_pulse_starts_at_its_falling_edge():
    """The Challenge generator draws the signal from the pulse's falling edge on (no gap): the first sample
    is there, not 2.5 mm later (ecg-image-kit pages were read 0.11 s late)."""
    p = find_pulse(_row(0.0), 0, BASE, 0, PPM, PPM, 25.0)
    assert p is not None
    assert p.trace_start_x == pytest.approx(p.x1, abs=1.0)


def test_trace_after_a_gap_starts_after_the_gap():
    p = find_pulse(_row(1.5), 0, BASE, 0, PPM, PPM, 25.0)
    assert p is not None
    assert p.trace_start_x == pytest.approx(6 * PPM + 1.5 * PPM, abs=1.5)


def test_thick_rising_stroke_is_no_foot():
    """No foot before the pulse: the rising stroke's first columns (4 px wide) have their centre halfway up; the
    pulse is still 10 mm tall from the row's baseline (it had been read 5 mm tall, 5 mm above it)."""
    y = _row(0.0)[int(round(1 * PPM)) :]  # the row starts with the pulse
    y[:4] = BASE - 5 * PPM  # centroids of the vertical stroke's columns
    p = find_pulse(y, 0, BASE, 0, PPM, PPM, 25.0)
    assert p is not None
    assert p.base_y == pytest.approx(BASE, abs=1.0)
    assert p.height_px == pytest.approx(10 * PPM, abs=2.0)


def test_pulse_cut_by_the_page_edge_is_found():
    """A page cut through its calibration pulses starts each row on the pulse's flat top (no foot, no rising
    edge): the top is not taken for the baseline, and the signal starts after the falling edge."""
    y = _row(0.0)[int(round(3 * PPM)) :]  # the first 3 mm cut away: 2 mm of the pulse's top remain
    p = find_pulse(y, 0, BASE, 0, PPM, PPM, 25.0)
    assert p is not None
    assert p.height_px == pytest.approx(10 * PPM, abs=1.0)
    assert p.x1 == pytest.approx(round(6 * PPM) - round(3 * PPM), abs=1.5)
    assert p.trace_start_x >= p.x1


def test_flat_trace_has_no_pulse():
    y = np.full(400, BASE)
    assert find_pulse(y, 0, BASE, 0, PPM, PPM, 25.0) is None


def test_a_rows_level_is_predicted_from_the_pulse_feet_between_pulse_rows_only():
    """Pulse feet of rows 0, 2 and 3 evenly spaced (283.5 px): row 1 between them gets the line's level. Pulse feet of
    rows 0-2 and a rhythm strip below them without a pulse, printed at a spacing of its own (262 px, as the Challenge
    generator prints it; the line puts it 21.5 px, 2.7 mm, lower): the strip keeps its own level."""
    from ecgdigitize.calibration import Pulse
    from ecgdigitize.layout import Row
    from ecgdigitize.stages import _baselines_from_pulses

    def rows_and_pulses(ys: list[float], with_pulse: list[int]) -> tuple[list[Row], dict[int, Pulse]]:
        rows = [Row(y, int(y) - 100, int(y) + 100, 90, 2100) for y in ys]
        return rows, {i: Pulse(i, 90.0, 130.0, ys[i] - 78.7, ys[i], 140.0) for i in with_pulse}

    rows, pulses = rows_and_pulses([727.0, 1012.0, 1294.0, 1577.5], [0, 2, 3])
    assert _baselines_from_pulses(rows, pulses, 7.87) == {1: pytest.approx(1010.5, abs=0.5)}
    rows, pulses = rows_and_pulses([727.0, 1010.5, 1294.0, 1556.0], [0, 1, 2])
    assert _baselines_from_pulses(rows, pulses, 7.87) == {}
