"""Rows without a calibration pulse start where the pulses of the other rows say (the rows of a page start at one
time)."""

from __future__ import annotations

import numpy as np

from ecgdigitize.calibration import Pulse
from ecgdigitize.layout import Row
from ecgdigitize.pipeline import trace_starts_from_pulses
from ecgdigitize.vectorise import TraceCurve

PX_PER_S = 170.0


def _rows_and_curves(first_ink: list[int]) -> tuple[list[Row], list[TraceCurve]]:
    rows, curves = [], []
    for i, f in enumerate(first_ink):
        y = np.full(1700, 100.0 + 250 * i)
        y[:f] = np.nan
        rows.append(Row(baseline_y=100.0 + 250 * i, y0=250 * i, y1=250 * (i + 1), x0=0, x1=1700))
        curves.append(TraceCurve(x0=0, y=y))
    return rows, curves


def _pulse(row: int, start: float) -> Pulse:
    return Pulse(row=row, x0=0.0, x1=start, top_y=0.0, base_y=100.0 + 250 * row, trace_start_x=start)


def test_row_whose_pulse_ink_was_missed_starts_with_the_others():
    """Row 1's pulse was not traced: its first ink (the signal, 6 px late) is not its start."""
    rows, curves = _rows_and_curves([0, 30, 0])
    got = trace_starts_from_pulses(
        rows, curves, {0: _pulse(0, 24.0), 2: _pulse(2, 24.0)}, tol_px=1.7, max_shift_px=0.5 * PX_PER_S
    )
    assert got == {1: 24.0}


def test_keystone_start_follows_the_line_of_the_pulses():
    rows, curves = _rows_and_curves([0, 0, 5, 0])
    pulses = {0: _pulse(0, 20.0), 1: _pulse(1, 24.0), 3: _pulse(3, 32.0)}
    got = trace_starts_from_pulses(rows, curves, pulses, tol_px=1.7, max_shift_px=0.5 * PX_PER_S)
    assert abs(got[2] - 28.0) < 1e-6


def test_disagreeing_pulses_or_far_ink_give_nothing():
    rows, curves = _rows_and_curves([0, 30, 0, 0])
    disagree = {0: _pulse(0, 24.0), 2: _pulse(2, 60.0), 3: _pulse(3, 24.0)}
    assert trace_starts_from_pulses(rows, curves, disagree, tol_px=1.7, max_shift_px=0.5 * PX_PER_S) == {}
    rows, curves = _rows_and_curves([0, 400, 0])  # ink starts 2.2 s later and ends 2 s earlier: another stretch
    curves[1].y[1360:] = np.nan
    agree = {0: _pulse(0, 24.0), 2: _pulse(2, 24.0)}
    assert trace_starts_from_pulses(rows, curves, agree, tol_px=1.7, max_shift_px=0.5 * PX_PER_S) == {}


def test_rows_beginning_where_the_only_pulse_rises_start_where_it_ends():
    """One pulse found (the others merged with an R wave right after their fall): rows whose first ink is where the
    pulse row's begins start where its pulse ends; a row whose ink begins elsewhere keeps its own start."""
    rows, curves = _rows_and_curves([0, 1, 60])
    curves[2].y[1500:] = np.nan  # and ends elsewhere
    pulse = Pulse(row=0, x0=0.0, x1=44.0, top_y=0.0, base_y=100.0, trace_start_x=44.0)
    assert trace_starts_from_pulses(rows, curves, {0: pulse}, tol_px=1.7, max_shift_px=0.5 * PX_PER_S) == {1: 44.0}


def test_common_start_of_rows_without_pulses():
    """No pulses: in the common-start reading every row whose first ink lies near the rows' median starts there."""
    from ecgdigitize.pipeline import common_trace_starts

    rows, curves = _rows_and_curves([16, 21, 16])
    assert common_trace_starts(rows, curves, {}, {}, max_shift_px=0.1 * PX_PER_S) == {0: 16.0, 1: 16.0, 2: 16.0}
    rows, curves = _rows_and_curves([16, 60, 16])  # 0.26 s late: a row of its own, left alone
    assert 1 not in common_trace_starts(rows, curves, {}, {}, max_shift_px=0.1 * PX_PER_S)


def test_row_starts_disagree_only_slightly():
    from ecgdigitize.assemble import RowTiming
    from ecgdigitize.pipeline import row_starts_disagree

    def timings(*x0: float) -> list[RowTiming]:
        return [
            RowTiming(x_t0=x, px_per_s=PX_PER_S, duration_s=10.0, base_y=0.0, mv_per_px=0.01, source="grid") for x in x0
        ]

    assert row_starts_disagree(timings(16.0, 21.0, 16.0))
    assert not row_starts_disagree(timings(16.0, 16.5, 16.0))  # within 1 % of a second: one start
    assert not row_starts_disagree(timings(16.0, 60.0, 16.0))  # more than 0.1 s: not one start misread


def test_row_whose_beginning_was_lost_starts_with_the_rows_it_ends_with():
    """Row 1's first 0.8 s lie under a shadow (its first ink far after the pulses' line), but it ends where the pulse
    rows end: it starts with them. A row that also ends elsewhere keeps its own start."""
    rows, curves = _rows_and_curves([0, 160, 0])
    pulses = {0: _pulse(0, 24.0), 2: _pulse(2, 24.0)}
    assert trace_starts_from_pulses(rows, curves, pulses, tol_px=1.7, max_shift_px=0.5 * PX_PER_S) == {1: 24.0}
    curves[1].y[1500:] = np.nan
    assert trace_starts_from_pulses(rows, curves, pulses, tol_px=1.7, max_shift_px=0.5 * PX_PER_S) == {}
    single = {0: _pulse(0, 24.0)}
    curves[1].y[1500:] = 100.0 + 250
    got = trace_starts_from_pulses(rows, curves, single, tol_px=1.7, max_shift_px=0.5 * PX_PER_S)
    assert got == {1: 24.0, 2: 24.0}  # row 2 begins where row 0 does


def test_rows_whose_labels_line_up_start_together():
    """A 15-lead scan: rows began at 14, 0 and 5 px (two on grid lines at the image's edge); their labels stand at
    the same x in three columns, so the early rows start at 14 px and keep their traced end. A row with a pulse, a
    start further off than the largest shift or nearer than the least, or labels in one shared column only, is left
    alone; pulse rows give the start."""
    from ecgdigitize.assemble import RowTiming
    from ecgdigitize.lead_labels import LabelRead
    from ecgdigitize.stages import start_rows_with_their_labels

    pps = 120.0

    def timings(starts: list[float]) -> list[RowTiming]:
        return [RowTiming(x, pps, (1180.0 - x) / pps, 100.0 + 170.0 * i, 0.02) for i, x in enumerate(starts)]

    def lab(x: float, row: int) -> LabelRead:
        return LabelRead("V1", x, 110.0 + 170.0 * row, x + 15.0, 122.0 + 170.0 * row, 0.9)

    per_row = [[lab(256, 0), lab(741, 0)], [lab(257, 1), lab(742, 1), lab(984, 1)], [lab(984, 2)]]
    rows = timings([14.0, 0.0, 5.0])
    assert start_rows_with_their_labels(rows, per_row, set(), 5.0, 1.5, 30.0) == [1, 2]
    assert [t.x_t0 for t in rows] == [14.0, 14.0, 14.0]
    assert rows[1].x_t0 + rows[1].duration_s * pps == 1180.0  # the traced end is kept
    rows = timings([14.0, 0.0, 5.0])
    # a pulse row's start is the anchor: rows starting after it are not this rule's to move, nor is the pulse row
    assert start_rows_with_their_labels(rows, per_row, {1}, 5.0, 1.5, 30.0) == []
    assert start_rows_with_their_labels(rows, per_row, {2}, 5.0, 1.5, 30.0) == [1]
    assert [t.x_t0 for t in rows] == [14.0, 5.0, 5.0]
    rows = timings([14.0, 0.0, 5.0])
    assert start_rows_with_their_labels(rows, per_row, set(), 5.0, 10.0, 30.0) == [1]  # 9 px is too near for row 2
    rows = timings([14.0, 0.0, 5.0])
    assert start_rows_with_their_labels(rows, per_row, set(), 5.0, 1.5, 10.0) == [2]  # 14 px is too far for row 1
    rows = timings([14.0, 0.0, 5.0])
    one_column = [[lab(256, 0)], [lab(257, 1)], []]
    assert start_rows_with_their_labels(rows, one_column, set(), 5.0, 1.5, 30.0) == []
    apart = [[lab(256, 0), lab(741, 0)], [lab(270, 1), lab(760, 1)], []]  # a keystone: labels 3 mm apart
    assert start_rows_with_their_labels(rows, apart, set(), 5.0, 1.5, 30.0) == []
    assert [t.x_t0 for t in rows] == [14.0, 0.0, 5.0]


def test_a_pulse_of_no_standard_height_apart_from_the_others_is_no_pulse():
    """A wrinkled generator page: a shadow's edge at the first row's start read as an 18 mm pulse ending at 59 px,
    the second row's 10 mm pulse at 122 px. The first is dropped, and every row (their beginnings lost in the shadow,
    all ending at 2085 px) starts with the true pulse. A pulse of no standard height where the others start stays,
    and so do all pulses when none has a standard height."""
    from ecgdigitize.stages import pulses_of_standard_height

    ppm = 7.87

    def pulse(row: int, start: float, height_mm: float) -> Pulse:
        base = 700.0 + 290 * row
        return Pulse(row=row, x0=start - 40, x1=start, top_y=base - height_mm * ppm, base_y=base, trace_start_x=start)

    shadow, true = pulse(0, 59.0, 17.74), pulse(1, 122.0, 10.03)
    assert pulses_of_standard_height({0: shadow, 1: true}, ppm, 2.0, 0.08) == {1: true}
    level = pulse(0, 122.5, 17.74)
    assert pulses_of_standard_height({0: level, 1: true}, ppm, 2.0, 0.08) == {0: level, 1: true}
    odd = pulse(1, 122.0, 13.0)
    assert pulses_of_standard_height({0: shadow, 1: odd}, ppm, 2.0, 0.08) == {0: shadow, 1: odd}
    # with the shadow's pulse gone, the rows without a pulse start with the true one: they end with its row
    rows, curves = _rows_and_curves([59, 77, 278, 985])
    for c in curves:
        c.y[2085:] = np.nan
    starts = trace_starts_from_pulses(rows, curves, {1: true}, tol_px=2.0, max_shift_px=98.0)
    assert starts == {0: 122.0, 2: 122.0, 3: 122.0}
    assert trace_starts_from_pulses(rows, curves, {0: shadow, 1: true}, tol_px=2.0, max_shift_px=98.0) == {}
