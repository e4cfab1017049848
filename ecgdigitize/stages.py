"""The digitizer's stages, in the order :func:`ecgdigitize.pipeline.digitize_page` runs them.

Each stage is a function taking the results of the stages before it and returning its own (a small dataclass,
or a type of the module that does the work); thresholds come from :class:`~ecgdigitize.params.DigitizerParams`.
Stages append what the reader of the result should know to ``notes`` (the result's ``warnings``, in order) and
raise :class:`NoReading` where the page cannot be read further (the pipeline then returns an all-NaN signal).

1. :func:`prepare_page` -> :class:`~ecgdigitize.image_io.PreparedImage` (the working image)
2. :func:`make_trace_map` -> :class:`TracedPage` (trace and grid maps, the paper sheet)
3. :func:`orient_page` -> :class:`PageGeometry` (quarter turns, rotation, keystone: the rectified page)
4. :func:`measure_scale` -> :class:`~ecgdigitize.scale.Scale` (px/mm from the grid, else the page size)
5. :func:`find_upright_rows` -> :class:`PageRows` (trace rows; the page turned by 180 degrees if upside down)
6. :func:`read_labels` -> :class:`PageLabels` (printed lead names, erased from the trace map)
7. :func:`vectorise_rows` -> :class:`RowTraces` (each row's centre line, its calibration pulse)
8. :func:`calibrate_page` -> :class:`PageCalibration` (scale corrected by the pulses, paper speed, gain)
9. :func:`time_rows` -> :class:`RowTimings` (each row's time axis and baseline, column evidence)
10. :func:`fit_rows_layout` -> :class:`RowsAndLayout` (edge text dropped, template and lead boxes)
11. :func:`assemble_signal` -> :class:`AssembledSignal` (traces at column boundaries, sampling, placement)
12. :func:`page_check` -> :class:`~ecgdigitize.selfcheck.SelfCheck` (the page's status), and
    :func:`reading_confidence` (a number in [0, 1]).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import cv2
import numpy as np
from scipy.ndimage import median_filter

from ecgvocab import lead_index, lead_key

from . import assemble as asm
from .boundaries import BoundaryZone, retrace_boundaries
from .calibration import Calibration, Pulse, amplitude_calibration, find_pulse, standard_gain
from .column_timing import retime_columns
from .image_io import PreparedImage, downscale, prepare_image, upsample_hairline
from .layout import (
    FIFTEEN_LEAD_EXTRAS,
    LABELLED_TEMPLATES,
    TEMPLATES,
    Layout,
    LeadBox,
    Row,
    boundary_evidence,
    find_rows,
    fit_layout,
    row_map,
    template_rows,
)
from .lead_identity import (
    EXTRA_LEAD_SCORE,
    PART_SPAN_SHARE,
    PRINTED_SPAN_MM,
    VOTE_SCORE,
    PagePart,
    RowSpan,
    choose_layout,
    labels_matched,
    place_page_part,
    unique_per_row,
)
from .lead_labels import (
    ANCHOR_SCORE,
    REFINED_RUN_H,
    REFINED_RUN_V,
    LabelRead,
    labels_by_row,
    read_lead_labels,
    strip_long_runs,
    unread_label_boxes,
)
from .orientation import Orientation, estimate_orientation, rot90_image, rows_are_horizontal, warp
from .paper import paper_mask, sheet_cuts_trace_rows
from .params import DEFAULT_PARAMS, DigitizerParams
from .row_extent import extend_rows_to_boxes
from .scale import Scale, estimate_scale, scale_from_page_width
from .selfcheck import SelfCheck, check_signal
from .separators import Tick, find_ticks, retrace_near_ticks, subtract_ticks
from .trace_map import TraceMap, classical_trace_map, given_trace_map, line_width_px, without_image_frame
from .vectorise import (
    TraceCurve,
    drop_foreign_stretches,
    drop_stretches_on_lines,
    trace_band,
    trace_rows,
    without_lines,
)

log = logging.getLogger(__name__)

#: paper speed (mm/s) assumed unless given or read from the calibration pulses
NOMINAL_PAPER_SPEED = 25.0
#: ``rows_are_horizontal`` evidence below which a page is turned by 90 degrees. A turned landscape printout is a
#: portrait image; on a landscape image the QRS spikes of a high-gain page, aligned down the rows, can make the
#: column profile peakier than the row profile (PTB-XL 00146 at 20 mm/mV: -0.56; upright pages of
#: ``real-scans`` turned by 90 degrees: -0.49 to -1.06 on portrait images), so landscape images need more.
TURN_EVIDENCE_PORTRAIT = -0.5
TURN_EVIDENCE_LANDSCAPE = -1.0
#: Relative disagreement between the page-size scale and the calibration pulses (height = a standard gain) above
#: which the pulses give the scale: pulse heights on rendered grid-less PTB-XL pages were within 1.6 % of the
#: truth, a letter-size assumption on an A4 page is 6 % off.
PULSE_SCALE_TOLERANCE = 0.03
#: Pulses agree with each other when their heights span at most this fraction of their median; such pulses that
#: are no standard gain on the grid's scale (beyond 8 %) but within this fraction of one give the scale instead.
PULSE_AGREEMENT = 0.03
#: Pulses on the grid's scale within this fraction of a standard gain (but beyond 8 %) correct the grid's period.
GRID_PULSE_MISMATCH = 0.25
#: Ink-balance score (:func:`_upside_down_score`) below which a page without pulse votes is upside down, and the
#: margin around it within which the printed lead labels decide instead (real scan ecg00003, labels below the
#: traces: -0.36 upright, -0.41 once upsampled).
UPSIDE_DOWN_INK = -0.4
UPSIDE_DOWN_MARGIN = 0.15
#: Label confidence from which a label counts in the up/down vote.
ORIENTATION_LABEL_SCORE = 0.8
#: bridged rows (gaps of thin traces closed) replace as many unbridged ones when they cover this much more
BRIDGED_MIN_GAIN = 1.1
#: A row's own grid period (x, in its band) replaces the page's when it differs by more than this fraction and
#: at most :data:`ROW_SCALE_MAX_DEVIATION`: a photographed or curved page keeps a keystone or bulge after
#: rectification, and rows printed at the same time then drift apart across the row (on a flat page the local
#: and page periods agree within 0.1-0.2 %).
ROW_SCALE_MIN_DEVIATION = 0.004
ROW_SCALE_MAX_DEVIATION = 0.08
#: ... and only when it lies within this fraction of an adjacent row's (a keystone or bulge changes the scale
#: smoothly down the page; a single row 7 % off between two rows on the page's scale was a noisy grid band on a rotated
#: generator page, which put its lead boxes 0.05-0.2 s off their separator ticks)
ROW_SCALE_STEP = 0.04
#: start of the scale warning of :func:`_plausible_scale` (the page is then also read with the period as read)
SUB_HARMONIC_NOTE = "grid period implies a"
#: Longest calibration pulse (s): a row's first ink this close to the start its neighbours' pulses give is the same
#: start with the pulse's ink missed (the signal starts late) or an unrecognised pulse taken for signal (early).
PULSE_WIDTH_MAX_S = 0.5
#: Rows whose starts (trace start of the row's time axis) spread more than the tolerance of
#: :func:`trace_starts_from_pulses` but at most this many seconds are also read from their common start (their
#: median), and the self-check chooses (a real scan: row II's first ink 36 ms after rows I and III's, Einthoven's
#: residual 0.82 as read).
ROW_START_MAX_SPREAD_S = 0.1
#: A row without a pulse whose last ink lies within this many start tolerances of the pulse rows' last ink ends
#: with them, and so starts with them (a trace's end varies by about a line width with the wave it ends on).
ROW_END_TOL_STARTS = 2.0
#: A pulse of no standard height whose trace start lies more than this many mm from the standard pulses' is no
#: pulse (:func:`pulses_of_standard_height`): a wrinkled page's shadow edge read as one lay 8 mm before them; true
#: pulses of one page start within 1 mm of each other (a real scan's 9.9-14.3 mm pulses: 45-51 px at 7.4 px/mm).
PULSE_APART_MM = 3.0
#: Rows whose printed labels stand at the same x in at least :data:`LABEL_COLUMNS_MIN` columns (within
#: :data:`LABEL_COLUMN_TOL_MM`) were printed on one time axis: a row without a pulse whose first ink lies
#: :data:`LABEL_START_MIN_MM` to :data:`LABEL_START_MAX_S` before their start (the median of their pulse rows', else
#: the latest) starts there (ink before a row's start is a grid line, a pulse cut by the image's edge or a label,
#: never the trace: a 15-lead scan's rows began at 0, 5 and 14 px, two of them on grid lines at the image's edge,
#: which put their columns 0.04-0.12 s early while their labels stood within 1 px of each other). Under a millimetre
#: the starts' own spread decides (:func:`~ecgdigitize.assemble.align_row_starts`; a scan's rows 0.4 mm apart, moved
#: onto one pulse row's start, broke Goldberger's law).
LABEL_COLUMN_TOL_MM = 1.0
LABEL_COLUMNS_MIN = 2
LABEL_START_MIN_MM = 1.0
LABEL_START_MAX_S = 0.25
#: A separator tick is printed where the next lead starts (the Challenge generator draws it at the next lead's first
#: sample, our renderer at the column's start), a sharper time mark than the calibration pulse, whose fall the
#: generator draws 1.5 samples after the signal's start. The page's time axis is moved onto its visible ticks when at
#: least :data:`TICK_SHIFT_MIN_TICKS` of them agree (median absolute deviation of their offsets at most
#: :data:`TICK_SHIFT_SPREAD_S`). Measured on generator pages: ticks 3-9 ms before the boundaries the pulses gave at
#: 500 Hz, 20 ms at 100 Hz, matching the digitized signals' lag behind the truth (3-8.5 and 19 ms).
TICK_SHIFT_MIN_TICKS = 2
TICK_SHIFT_SPREAD_S = 0.008
#: ... and only by at least this many pixels: a tick is printed and read in whole pixel columns, and a scan's
#: resampling blurs it further, so a smaller offset is no evidence (our renderer rounds its ticks to whole pixels:
#: offsets of 0.2-0.45 px, up to 0.6 px on its scanned pages, and moving those by 2.4-3 ms cost them 5-7 dB; the
#: generator's pages: 0.6-4 px)
TICK_SHIFT_MIN_PX = 1.0
#: Pixels beyond a calibration pulse's falling stroke (its last high column plus the trace's half width) that its
#: anti-aliased edge still darkens: the signal is read from there on.
PULSE_STROKE_MARGIN_PX = 1.0


class NoReading(Exception):
    """A stage found the page unreadable: ``reason`` (the last warning) and what was found so far (``partial``:
    fields of the pipeline's result)."""

    def __init__(self, reason: str, **partial: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.partial = partial


@dataclass
class ReadingOptions:
    """What the caller asked for: the output's sampling rate (Hz), length (samples) and columns; paper speed (mm/s,
    ``speed_given`` False when assumed), nominal gain (mm/mV), layout ("auto" or a template name), and the
    alternative readings (:func:`ecgdigitize.pipeline.digitize_page`)."""

    fs: float
    num_samples: int
    lead_names: list[str]
    paper_speed: float
    speed_given: bool
    gain: float
    layout: str
    trust_grid_period: bool = False
    common_row_start: bool = False
    #: time every row on the page's grid scale (no row's own scale)
    page_scale_rows: bool = False


@dataclass
class TracedPage:
    """The working image, its trace map (classical unless given) and the paper sheet of a photograph (or None)."""

    prep: PreparedImage
    trace_map: TraceMap
    sheet: np.ndarray | None
    classical: bool

    @property
    def rgb(self) -> np.ndarray:
        return self.prep.rgb


@dataclass
class PageGeometry:
    """The page upright and rectified: its orientation, image (H, W, 3) and trace map in rectified coordinates."""

    orientation: Orientation
    rgb: np.ndarray
    trace_map: TraceMap
    #: working pixels per input pixel
    work_scale: float


@dataclass
class PageRows:
    """Trace rows of the upright page (``geometry``, turned by 180 degrees where it was upside down), the row map
    they were found on, and the lead labels when they were read to decide the turn (else None)."""

    geometry: PageGeometry
    rows: list[Row]
    row_map: np.ndarray
    labels: list[LabelRead] | None


@dataclass
class PageLabels:
    """The printed lead labels and the trace map without their ink."""

    labels: list[LabelRead]
    trace_map: TraceMap


@dataclass
class RowTraces:
    """Each row's traced centre line, and the calibration pulses found (by row index)."""

    curves: list[TraceCurve]
    pulses: list[Pulse]
    pulse_of_row: dict[int, Pulse]


@dataclass
class PageCalibration:
    """The scale after the pulses had their say, the paper speed (mm/s) and the amplitude calibration."""

    scale: Scale
    paper_speed: float
    calibration: Calibration

    @property
    def px_per_s(self) -> float:
        """Pixels per second of signal along x."""
        return self.paper_speed * self.scale.px_per_mm_x


@dataclass
class RowTimings:
    """Per row: its time axis and baseline, its duration (s) and the column-boundary evidence along it."""

    timings: list[asm.RowTiming]
    durations: list[float]
    evidence: list[list[float]]


@dataclass
class RowsAndLayout:
    """The rows kept (edge text dropped), their curves and time axes, and the layout with its lead boxes."""

    rows: list[Row]
    curves: list[TraceCurve]
    timings: list[asm.RowTiming]
    layout: Layout
    #: the curves of the rows dropped as border lines or text at the page's edge (their ink is no trace)
    edge_lines: list[TraceCurve] = field(default_factory=list)


@dataclass
class AssembledSignal:
    """The output signal (num_samples, leads) mV and each lead box's sampled trace."""

    signal: np.ndarray
    traces: list[asm.LeadTrace]


# --- 1. the page ------------------------------------------------------------------------------------------------


def prepare_page(image: np.ndarray, params: DigitizerParams, notes: list[str]) -> PreparedImage:
    """The working image (:func:`image_io.prepare_image`); :class:`NoReading` when unreadable or too small."""
    try:
        prep = prepare_image(image)
    except (ValueError, TypeError) as exc:
        raise NoReading(f"unreadable image: {exc}") from exc
    notes += prep.warnings
    if min(prep.rgb.shape[:2]) < params.min_image_side_px:
        raise NoReading("image too small to digitise")
    return prep


# --- 2. the trace map -------------------------------------------------------------------------------------------


def make_trace_map(
    prep: PreparedImage, trace_prob: np.ndarray | None, params: DigitizerParams, notes: list[str]
) -> TracedPage:
    """The given trace probability (resized to the working image) or the classical map (a page of hairlines
    upsampled first), limited to the paper sheet of a photograph; :class:`NoReading` when no ink is found."""
    rgb = prep.rgb
    h, w = rgb.shape[:2]
    if trace_prob is not None:
        tp = np.asarray(trace_prob, np.float32)
        if tp.ndim == 3:
            tp = tp[..., 0]
        if tp.shape[:2] != (h, w):
            tp = cv2.resize(tp, (w, h), interpolation=cv2.INTER_AREA if prep.scale < 1 else cv2.INTER_LINEAR)
        tm = given_trace_map(rgb, tp)
    else:
        tm = classical_trace_map(rgb)
        # (a binarised page stays as it is: upsampled, it would no longer look binarised and keep its grid)
        up = prep if tm.binarised else upsample_hairline(prep, line_width_px(tm.ink, tm.threshold))
        if up is not prep:
            prep, rgb = up, up.rgb
            notes.append(prep.warnings[-1])
            tm = classical_trace_map(rgb)
    notes += tm.warnings
    tm.prob = without_image_frame(tm.prob)
    sheet = paper_mask(rgb)
    if sheet is not None and sheet_cuts_trace_rows(sheet, tm.prob):
        notes.append("the darker region around the page is shaded paper (trace rows cross into it): not masked")
        sheet = None
    if sheet is not None:
        # photographed page: the sheet's edge and the background beyond it are no trace
        tm.prob = (tm.prob * sheet).astype(np.float32)
        tm.grid = (tm.grid * sheet).astype(np.float32)
        notes.append(f"paper sheet found ({100.0 * float(sheet.mean()):.0f}% of the image); outside ignored")
    if float((tm.prob > params.ink_probability).mean()) < params.min_ink_fraction:
        raise NoReading("no trace ink found (blank page?)", trace_prob=tm.prob, rectified=rgb, work_scale=prep.scale)
    return TracedPage(prep, tm, sheet, classical=trace_prob is None)


# --- 3. orientation ---------------------------------------------------------------------------------------------


def orient_page(page: TracedPage, params: DigitizerParams, notes: list[str]) -> PageGeometry:
    """Rows made horizontal (a quarter turn), then rotation and keystone from the grid's line families
    (:func:`_rectify`); a classical map is made again on the rectified page where its grid lines moved."""
    rgb, tm, sheet = page.rgb, page.trace_map, page.sheet
    quarter = 0
    small_p, _ = downscale(tm.prob, params.turn_max_side_px)
    portrait = rgb.shape[0] >= rgb.shape[1]
    if rows_are_horizontal(small_p) < (TURN_EVIDENCE_PORTRAIT if portrait else TURN_EVIDENCE_LANDSCAPE):
        quarter = 1
        rgb = rot90_image(rgb, 1)
        tm = _rot_tm(tm, 1)
        sheet = rot90_image(sheet, 1) if sheet is not None else None
        notes.append("page turned by 90 degrees")
    orient, rgb_r, tm_r, _ = _rectify(tm, rgb, params)
    if page.classical and rgb_r is not rgb and not tm.binarised and orient.source == "grid":
        # (a binarised page keeps its map: resampled, it would no longer look binarised; a page without a grid has
        # no grid lines to remove)
        tm_r = _classical_map_of_rectified(rgb_r, tm_r, orient.homography, sheet, rgb.shape[:2])
    orient.quarter_turns = quarter
    notes += orient.warnings
    return PageGeometry(orient, rgb_r, tm_r, page.prep.scale)


# --- 4. scale ---------------------------------------------------------------------------------------------------


def measure_scale(geometry: PageGeometry, trust_grid_period: bool, params: DigitizerParams, notes: list[str]) -> Scale:
    """Pixels per mm from the grid's period (a sub-harmonic where the period implies too small a page, unless
    ``trust_grid_period``), else from the page's size."""
    h, w = geometry.rgb.shape[:2]
    sc = estimate_scale(geometry.trace_map.grid)
    if not np.isfinite(sc.px_per_mm_x):
        fallback = scale_from_page_width(w, h)
        fallback.warnings = sc.warnings + fallback.warnings
        sc = fallback
    if not trust_grid_period:
        sc = _plausible_scale(sc, h, w, params.min_page_mm, params)
    notes += sc.warnings
    return sc


# --- 5. rows ----------------------------------------------------------------------------------------------------


def find_upright_rows(
    geometry: PageGeometry, sc: Scale, paper_speed: float, params: DigitizerParams, notes: list[str]
) -> PageRows:
    """The trace rows; the page (``geometry``, changed in place) turned by 180 degrees and its rows found again when
    the pulses, the ink balance or the printed labels say it is upside down; :class:`NoReading` without rows."""
    tm_r = geometry.trace_map
    rows, rmap = _find_rows(tm_r, sc, params)
    # 180 degrees: ink (labels, pulses, R waves) should sit above the baselines
    flip, sure = _looks_upside_down(tm_r.prob, rows, sc, paper_speed, params) if rows else (False, True)
    both_ways = None if sure else _labels_both_ways(tm_r.ink, sc)
    if both_ways is not None and _confident(both_ways[0]) != _confident(both_ways[1]):
        flip = _confident(both_ways[1]) > _confident(both_ways[0])  # the printed labels decide
    if rows and flip:
        geometry.rgb = rot90_image(geometry.rgb, 2)
        geometry.trace_map = tm_r = _rot_tm(tm_r, 2)
        geometry.orientation.quarter_turns = (geometry.orientation.quarter_turns + 2) % 4
        notes.append("page turned by 180 degrees")
        rows, rmap = _find_rows(tm_r, sc, params)
    if not rows:
        raise NoReading(
            "no trace rows found: page fits no template",
            orientation=geometry.orientation,
            scale=sc,
            rectified=geometry.rgb,
            trace_prob=tm_r.prob,
            work_scale=geometry.work_scale,
        )
    return PageRows(geometry, rows, rmap, both_ways[int(flip)] if both_ways is not None else None)


# --- 6. lead labels ---------------------------------------------------------------------------------------------


def read_labels(page_rows: PageRows, sc: Scale, params: DigitizerParams, notes: list[str]) -> PageLabels:
    """The printed lead labels (those read to decide the turn are not read again) and the trace map without them and
    without the glyphs where the labels' lattice places a label that was not read
    (:func:`~ecgdigitize.lead_labels.unread_label_boxes`)."""
    tm_r = page_rows.geometry.trace_map
    labels = page_rows.labels if page_rows.labels is not None else _read_labels(tm_r, sc, notes)
    if labels:
        bases, margin = [r.baseline_y for r in page_rows.rows], params.label_margin_px
        off_trace = [lab for lab in labels if strips_glyphs(lab, bases, margin)]
        unread = [LabelRead("", *box, GLYPH_STRIP_MIN_SCORE) for box in unread_label_boxes(off_trace, also_read=labels)]
        tm_r = replace(tm_r, prob=erase_label_glyphs(tm_r.prob, labels + unread, margin, params, bases))
    return PageLabels(labels, tm_r)


# --- 7. vectorised traces ---------------------------------------------------------------------------------------


def vectorise_rows(
    rows: list[Row], tm: TraceMap, sc: Scale, paper_speed: float, params: DigitizerParams, notes: list[str]
) -> RowTraces:
    """Each row tracked jointly (:func:`vectorise.trace_rows`), stretches on a neighbour's line left out, and each
    row's calibration pulse: on its curve, else in the image's ink left of the row."""
    ppx, ppy = sc.px_per_mm_x, sc.px_per_mm_y
    pulses: list[Pulse] = []
    pulse_of_row: dict[int, Pulse] = {}
    curves = trace_rows(tm.prob, [(r.y0, r.y1, r.x0, r.x1, r.baseline_y) for r in rows])
    if drop_foreign_stretches(curves, [r.baseline_y for r in rows], ppx):
        notes.append("stretches of rows traced on a neighbouring row's line were left out")
    for i, (r, c) in enumerate(zip(rows, curves)):
        p = find_pulse(c.y, c.x0, r.baseline_y, i, ppx, ppy, paper_speed)
        if p is None:
            # a segmentation net may leave the pulses out, and a row may be found starting after its pulse
            # (a wide lead label between them): look for them in the image's ink left of the row
            xa = int(max(0, r.x0 - (params.pulse_duration_s * paper_speed + params.pulse_search_left_mm) * ppx))
            ink_p = np.clip((tm.ink - params.pulse_ink_floor) / params.pulse_ink_ramp, 0.0, 1.0)
            ci = trace_band(ink_p, r.y0, r.y1, xa, r.x0 + params.pulse_search_overlap_px, r.baseline_y)
            ok_i = np.flatnonzero(np.isfinite(ci.y))
            if ok_i.size:
                p = find_pulse(ci.y[ok_i[0] :], ci.x0 + int(ok_i[0]), r.baseline_y, i, ppx, ppy, paper_speed)
                if p is not None:
                    p.trace_start_x = float(c.x0 + np.argmax(np.isfinite(c.y)))
        if p is not None:
            pulses.append(p)
            pulse_of_row[i] = p
    kept = pulses_of_standard_height(pulse_of_row, ppy, PULSE_APART_MM * ppx, params.pulse_standard_tolerance)
    if len(kept) < len(pulse_of_row):
        dropped = sorted(set(pulse_of_row) - set(kept))
        notes.append(f"pulses of rows {dropped} ignored: no standard height, and they start apart from the others")
        pulse_of_row = kept
        pulses = [p for p in pulses if p.row in kept]
    return RowTraces(curves, pulses, pulse_of_row)


def pulses_of_standard_height(
    pulse_of_row: dict[int, Pulse], px_per_mm_y: float, tol_px: float, tol: float
) -> dict[int, Pulse]:
    """The pulses without those that are no calibration pulse: where some pulses are 1 mV at a standard gain
    (:func:`~ecgdigitize.calibration.standard_gain` within the relative ``tol``), a pulse that is not and whose
    trace start lies more than ``tol_px`` from theirs (median) is dropped. A shadow's edge at a wrinkled page's row
    start read as an 18 mm pulse 63 px (8 mm) before the 10 mm pulses; the rows then disagreed and took no common
    start."""
    standard = {i: p for i, p in pulse_of_row.items() if standard_gain(p.height_px / px_per_mm_y, tol) is not None}
    if not standard or len(standard) == len(pulse_of_row):
        return pulse_of_row
    ref = float(np.median([p.trace_start_x for p in standard.values()]))
    return {i: p for i, p in pulse_of_row.items() if i in standard or abs(p.trace_start_x - ref) <= tol_px}


# --- 8. calibration ---------------------------------------------------------------------------------------------


def calibrate_page(
    traces: RowTraces, n_rows: int, sc: Scale, opts: ReadingOptions, params: DigitizerParams, notes: list[str]
) -> PageCalibration:
    """The scale corrected by the calibration pulses (a grid period at a wrong harmonic; a page-size scale), the
    paper speed they imply (unless given), and the amplitude calibration (mV per pixel)."""
    P = params
    pulses = traces.pulses
    paper_speed = opts.paper_speed
    corrected = _grid_scale_from_pulses(sc, pulses, n_rows, P)
    if corrected is not None:
        sc = corrected
        notes.append(sc.warnings[-1])
    ppx, ppy = sc.px_per_mm_x, sc.px_per_mm_y

    # paper speed: a calibration pulse lasts 0.2 s, so 10 mm wide pulses on a measured grid or a page of a
    # standard size (pulse heights of a standard gain confirm the scale) mean 50 mm/s
    if not opts.speed_given and sc.source in ("grid", "dpi", "pulse") and len(pulses) >= max(1, n_rows // 2):
        w_mm = float(np.median([(p.x1 - p.x0) / ppx for p in pulses]))
        h_mm = float(np.median([p.height_px / ppy for p in pulses]))
        standard_height = standard_gain(h_mm, P.speed_pulse_gain_tolerance) is not None  # the scale is right
        fast_width = P.pulse_duration_s * P.fast_paper_speed
        if standard_height and abs(w_mm - fast_width) <= (
            P.pulse_width_tolerance * P.pulse_duration_s * P.fast_paper_speed
        ):
            paper_speed = P.fast_paper_speed
            notes.append(f"calibration pulses {w_mm:.1f} mm wide: paper speed 50 mm/s")
    # scale fallback from the pulses when the grid gave nothing
    if sc.source == "dpi" and len(pulses) >= P.min_pulses_for_scale:
        hmm = float(np.median([p.height_px for p in pulses]))
        wmm = float(np.median([p.x1 - p.x0 for p in pulses]))
        sy = hmm / opts.gain
        sx = wmm / (P.pulse_duration_s * paper_speed)
        # pulses of a standard height on the page-size scale (a 5 or 20 mm/mV page) confirm that scale when they
        # agree with it within their precision, else (a cropped scan, another sheet) they give it
        g_std = standard_gain(hmm / ppy, P.pulse_gain_tolerance)
        if g_std is not None and abs(hmm / g_std / ppy - 1.0) <= PULSE_SCALE_TOLERANCE:
            sc = Scale(
                ppx,
                ppy,
                "pulse",
                confidence=P.pulse_scale_confidence,
                warnings=["page-size scale confirmed by the calibration pulses"],
            )
            notes.append("page-size scale confirmed by the calibration pulses")
        elif g_std is not None:
            ppx = ppy = hmm / g_std
            msg = (
                f"scale from the calibration pulses ({g_std:g} mm/mV; the page size implied {sc.px_per_mm_y:.3f} px/mm)"
            )
            sc = Scale(ppx, ppy, "pulse", confidence=P.pulse_scale_confidence, warnings=[msg])
            notes.append(msg)
        elif 1.0 / P.max_pulse_aspect < sx / sy < P.max_pulse_aspect:
            sx = sy  # pulse heights are measured more precisely than widths; pixels are square
            sc = Scale(
                sx, sy, "pulse", confidence=P.pulse_scale_confidence, warnings=["scale from the calibration pulses"]
            )
            notes.append("scale from the calibration pulses")
    calib = amplitude_calibration(pulses, sc.px_per_mm_y, opts.gain)
    notes += calib.warnings
    return PageCalibration(sc, paper_speed, calib)


# --- 9. per-row time axes ---------------------------------------------------------------------------------------


def time_rows(
    rows: list[Row],
    traces: RowTraces,
    cal: PageCalibration,
    tm: TraceMap,
    opts: ReadingOptions,
    params: DigitizerParams,
) -> RowTimings:
    """Each row's time axis (its trace start: the pulse's, the other rows' pulses', or its first ink; pixels per
    second: the row's own grid band where it differs) and baseline (the pulse's foot, the other rows' pulse feet, or
    the curve's isoelectric level), and the column-boundary evidence along it."""
    P = params
    sc, curves, pulse_of_row = cal.scale, traces.curves, traces.pulse_of_row
    ppx, ppy = sc.px_per_mm_x, sc.px_per_mm_y
    px_per_s = cal.px_per_s
    tol_px = max(P.row_start_tol_px, P.row_start_tol_s * px_per_s)
    base_pred = _baselines_from_pulses(rows, pulse_of_row, ppy, P)
    _consistent_trace_starts(pulse_of_row, tol_px=tol_px, params=P)
    start_pred = trace_starts_from_pulses(
        rows, curves, pulse_of_row, tol_px=tol_px, max_shift_px=PULSE_WIDTH_MAX_S * px_per_s
    )
    if opts.common_row_start:
        start_pred = common_trace_starts(
            rows, curves, pulse_of_row, start_pred, max_shift_px=ROW_START_MAX_SPREAD_S * px_per_s
        )
    out = RowTimings([], [], [])
    starts = []
    for i, (r, c) in enumerate(zip(rows, curves)):
        p = pulse_of_row.get(i)
        half = c.half_width_px
        first = c.first_ink_x
        if p is not None:
            starts.append((p.trace_start_x + half, p.base_y))
        else:
            x_t0 = start_pred.get(i, first if first is not None else float(r.x0) - half) + half
            starts.append((x_t0, base_pred.get(i, _curve_mode(c, r.baseline_y, ppy, P))))
    own_scales = sc.source == "grid" and not opts.page_scale_rows
    row_ppx = row_scales_px_per_mm_x(tm.grid, rows, ppx, P) if own_scales else [ppx] * len(rows)
    if own_scales:
        spans = [asm.last_traced_x(c) - x_t0 for c, (x_t0, _) in zip(curves, starts)]
        row_ppx = scales_of_rows_spanning_alike(row_ppx, spans, ppx)
    for i, (r, c) in enumerate(zip(rows, curves)):
        p = pulse_of_row.get(i)
        x_t0, base_y = starts[i]
        row_pps = cal.paper_speed * row_ppx[i] if sc.source == "grid" else px_per_s
        rt = asm.row_timing(
            c,
            x_t0,
            row_pps,
            base_y,
            cal.calibration.mv_per_px,
            opts.fs,
            trust_scale=sc.source == "grid" and sc.confidence >= P.trust_grid_confidence,
        )
        if p is not None:
            rt.x_pulse_end = p.x1 + half + PULSE_STROKE_MARGIN_PX
        out.timings.append(rt)
        out.durations.append(rt.duration_s)
        x_end = x_t0 + rt.duration_s * rt.px_per_s
        out.evidence.append(boundary_evidence(tm.ink, r, x_t0, x_end, ppx, ppy))
    return out


# --- 10. rows and layout ----------------------------------------------------------------------------------------


def fit_rows_layout(
    rows: list[Row],
    traces: RowTraces,
    timed: RowTimings,
    labels: list[LabelRead],
    cal: PageCalibration,
    opts: ReadingOptions,
    params: DigitizerParams,
    notes: list[str],
) -> RowsAndLayout:
    """Short edge rows of text dropped, the rows' starts aligned, and the layout template (with the labels' votes
    and names) and its lead boxes."""
    P = params
    curves, timings, durations, evidence = traces.curves, timed.timings, timed.durations, timed.evidence
    pulses = set(traces.pulse_of_row)
    flat = {
        i
        for i, c in enumerate(curves)
        if row_deflection_mm(c, cal.scale.px_per_mm_y, cal.px_per_s, P) < P.edge_row_flat_mm
    }
    keep = _rows_without_edge_text(
        rows,
        durations,
        evidence,
        pulses,
        P.edge_row_short,
        P.edge_row_cost_gain,
        P.edge_row_very_short,
        P,
        flat,
    )
    inner = _rows_without_fragments(
        [rows[i] for i in keep],
        [durations[i] for i in keep],
        [evidence[i] for i in keep],
        {j for j, i in enumerate(keep) if i in pulses},
        P.edge_row_very_short,
        P.edge_row_cost_gain,
        P,
    )
    edge_lines: list[TraceCurve] = []
    if len(keep) < len(rows):
        dropped = [i for i in range(len(rows)) if i not in keep]
        edge_lines = [curves[i] for i in dropped]
        notes.append(f"edge rows {dropped} ignored (text or border lines, not traces)")
        if drop_stretches_on_lines(
            [curves[i] for i in keep],
            [rows[i].baseline_y for i in keep],
            [curves[i] for i in dropped],
            [rows[i].baseline_y for i in dropped],
            cal.scale.px_per_mm_x,
        ):
            notes.append("stretches of rows traced along an ignored edge row's line were left out")
    if len(inner) < len(keep):
        notes.append(f"short rows {[keep[j] for j in range(len(keep)) if j not in inner]} ignored (fragments)")
        keep = [keep[j] for j in inner]
    if len(keep) < len(rows):
        rows = [rows[i] for i in keep]
        curves = [curves[i] for i in keep]
        timings = [timings[i] for i in keep]
        durations = [durations[i] for i in keep]
        evidence = [evidence[i] for i in keep]
    tol_px = max(P.row_start_tol_px, P.row_start_tol_s * cal.px_per_s)
    asm.align_row_starts(timings, tol_px, 1.0 / opts.fs)
    ppx, ppy = cal.scale.px_per_mm_x, cal.scale.px_per_mm_y
    spacing = (
        float(np.median(np.diff([r.baseline_y for r in rows]))) if len(rows) >= 2 else P.single_row_spacing_mm * ppy
    )
    labels_per_row = labels_by_row(labels, [r.baseline_y for r in rows], spacing)
    with_pulse = {j for j, i in enumerate(keep) if i in pulses}
    moved = start_rows_with_their_labels(
        timings,
        labels_per_row,
        with_pulse,
        LABEL_COLUMN_TOL_MM * ppx,
        LABEL_START_MIN_MM * ppx,
        LABEL_START_MAX_S * cal.px_per_s,
    )
    if moved:
        notes.append(f"rows {moved} start with the rows their labels line up with (ink before that is no trace)")
    extras = {lead_key(n) for n in FIFTEEN_LEAD_EXTRAS}
    templates = TEMPLATES + (
        LABELLED_TEMPLATES
        if opts.layout in LABELLED_TEMPLATES
        or any(lead_key(lab.name) in extras and lab.score >= EXTRA_LEAD_SCORE for lab in labels)
        else ()
    )
    name, cost, costs = fit_layout(rows, durations, evidence, templates=templates)
    lay_warn: list[str] = []
    forced = None
    if opts.layout != "auto":
        if opts.layout not in costs:
            lay_warn.append(f"unknown layout {opts.layout!r}; using the detected {name}")
        else:
            forced = opts.layout
    spans = [RowSpan(rt.x_t0, rt.px_per_s, rt.duration_s, rt.base_y) for rt in timings]
    name, cost, combined, boxes, id_warn, label_ev = choose_layout(costs, rows, spans, labels_per_row, ppx, forced)
    lay_warn += id_warn
    trows = template_rows(name)
    fits = len(trows) == len(rows) and cost < P.layout_max_cost
    part = None
    traced_mm = max((t.duration_s * t.px_per_s for t in timings), default=0.0) / ppx
    if forced is None and (not labels_matched(label_ev) or traced_mm < PART_SPAN_SHARE * PRINTED_SPAN_MM):
        agreeing = sum(bool(e.agrees) and e.score >= VOTE_SCORE for e in label_ev)
        part = _page_part(combined, rows, spans, unique_per_row(labels_per_row), timings, ppx, agreeing)
    if part is not None:
        name, boxes, fits, trows = part.name, part.boxes, True, template_rows(part.name)
        lay_warn.append(
            f"the image shows part of a {name} page: its columns placed by the labels {', '.join(part.placed_by)}; "
            f"not on the image: {', '.join(part.absent)}"
        )
    if not fits:
        lay_warn.append(f"page fits no template well (best {name}, cost {cost:.2f}, {len(rows)} rows)")
    lay = Layout(
        name,
        float(cost),
        bool(fits),
        rows,
        max((len(t) for t in trows), default=0),
        boxes,
        combined,
        evidence,
        lay_warn,
        [_label_dict(lab) for lab in labels],
        [e.to_dict() for e in label_ev],
        list(part.absent) if part is not None else [],
    )
    notes += lay_warn
    return RowsAndLayout(rows, curves, timings, lay, edge_lines)


def _page_part(
    combined: dict[str, float],
    rows: list[Row],
    spans: list[RowSpan],
    labels_per_row: list[list[LabelRead]],
    timings: list[asm.RowTiming],
    px_per_mm_x: float,
    agreeing: int,
) -> PagePart | None:
    """The image read as part of a page (:func:`~ecgdigitize.lead_identity.place_page_part`) by the template whose
    grid more labels place than the ``agreeing`` ones of the whole-page reading, with the most support
    (:attr:`~ecgdigitize.lead_identity.PagePart.support`; ties in the order of the ``combined`` costs); its rows'
    time axes (``timings``, changed in place) then start where the page's do, left of the image where it is cut."""
    parts = []
    for name in sorted(combined, key=combined.get):
        grid = "3x4" if name.startswith("3x4") else name
        part = (
            None if grid in (p.name for p in parts) else place_page_part(grid, rows, spans, labels_per_row, px_per_mm_x)
        )
        if part is not None and len(part.placed_by) > agreeing:
            parts.append(part)
    if not parts:
        return None
    part = max(parts, key=lambda p: p.support)  # (the first of equals: the lowest cost)
    for i, x_t0 in part.origins.items():
        rt = timings[i]
        x_end = rt.x_last if np.isfinite(rt.x_last) else float(rows[i].x1)
        rt.duration_s = max(x_end - x_t0, 0.0) / rt.px_per_s
        rt.x_t0 = x_t0
        rt.source += "+labels"
    return part


#: A pulse found more than this many mm right of its row's t = 0 lies inside the row's first lead box.
PULSE_INSIDE_MM = 1.0


def pulses_in_lead_boxes(rows: list[Row], traces: RowTraces, laid: RowsAndLayout, px_per_mm_x: float) -> bool:
    """Does the layout read the page as part of a page (:attr:`Layout.absent`) whose rows' t = 0 lies left of every
    pulse found, by :data:`PULSE_INSIDE_MM` (``rows``: every row found, as ``traces.pulses`` count them)? A
    calibration pulse is printed before a row's t = 0; on such a part the page's start is off the image, and a
    'pulse' on it is a lead's signal (a crop cut mid-trace: a T wave read as a 5 mm pulse made the image 50 mm/s
    and 5 mm/mV)."""
    if not laid.layout.absent or not traces.pulses:
        return False
    timing_of = {id(r): t for r, t in zip(laid.rows, laid.timings)}
    for p in traces.pulses:
        rt = timing_of.get(id(rows[p.row])) if p.row < len(rows) else None
        if rt is None or not p.x0 > rt.x_t0 + PULSE_INSIDE_MM * px_per_mm_x:
            return False
    return True


# --- 11. the assembled signal -----------------------------------------------------------------------------------


def assemble_signal(
    rl: RowsAndLayout,
    prob: np.ndarray,
    cal: PageCalibration,
    opts: ReadingOptions,
    params: DigitizerParams,
    notes: list[str],
) -> AssembledSignal:
    """Rows found short traced over the rest of their lead boxes (:func:`row_extent.extend_rows_to_boxes`), rows
    traced again at column boundaries (separator ticks subtracted, each lead keeping its own ink), each lead box
    sampled at ``fs`` on its row's time axis, columns retimed against the rhythm strip, rhythm strips named by
    correlation, and the leads placed in the output's columns (NaN where not printed; a window's untraced first
    and last samples at the lead's level there)."""
    P = params
    rows, curves, timings_rows, boxes = rl.rows, rl.curves, rl.timings, rl.layout.boxes
    ppx, ppy = cal.scale.px_per_mm_x, cal.scale.px_per_mm_y
    if rl.edge_lines:
        prob = without_lines(prob, rl.edge_lines, ppy)
    longer = extend_rows_to_boxes(rows, curves, boxes, prob, ppx, ppy)
    if longer:
        notes.append(f"rows {longer} traced further over their lead boxes")
    # column-separator ticks: subtract visible ones and re-trace around them; blank the columns only
    # where no tick was recognised (the old fallback); leave ticks hidden inside a stroke to the trace
    seps = [(b.row, b.x0, timings_rows[b.row].base_y) for b in boxes if b.column > 0 and b.row < len(timings_rows)]
    ticks = find_ticks(prob, seps, ppx, ppy)
    shift_s = time_shift_from_ticks(ticks, boxes, timings_rows)
    if shift_s:
        notes.append(f"time axis moved {1000 * shift_s:+.0f} ms onto the separator ticks")
        for i, rt in enumerate(timings_rows):
            timings_rows[i] = replace(rt, x_t0=rt.x_t0 + shift_s * rt.px_per_s)
        for k, b in enumerate(boxes):
            dx = shift_s * timings_rows[b.row].px_per_s if b.row < len(timings_rows) else 0.0
            boxes[k] = replace(b, x0=b.x0 + dx, x1=b.x1 + dx)
        seps = [(b.row, b.x0, timings_rows[b.row].base_y) for b in boxes if b.column > 0 and b.row < len(timings_rows)]
        ticks = find_ticks(prob, seps, ppx, ppy)
    row_spans = [(r.y0, r.y1, r.x0, r.x1, r.baseline_y) for r in rows]
    levels = [r.level_at for r in rows]
    window = int(round(P.retrace_window_s * cal.px_per_s))
    prob_nt = prob
    if any(not t.hidden for t in ticks):
        prob_nt = subtract_ticks(prob, ticks)
        retrace_near_ticks(prob_nt, curves, row_spans, ticks, window_px=window, px_per_mm_x=ppx, levels=levels)
    # boundaries without a visible tick: re-trace so each lead keeps its own ink
    visible = {(t.row, t.boundary_x) for t in ticks if not t.hidden}
    reach = (
        P.boundary_reach_widths * float(np.median([c.line_width_px or c.thickness_px for c in curves]))
        + P.boundary_reach_px
    )
    zones = [BoundaryZone(row, x, x - reach, x + reach) for row, x, _ in seps if (row, x) not in visible]
    retrace_boundaries(prob_nt, curves, row_spans, zones, window_px=window, px_per_mm_x=ppx, levels=levels)
    handled = {(t.row, t.boundary_x) for t in ticks}
    for i, rt in enumerate(timings_rows):
        inner = [b.x0 for b in boxes if b.row == i and b.column > 0 and (i, b.x0) not in handled]
        if inner:
            asm.remove_separators(curves[i], inner, rt.base_y, ppx, ppy)
    traces = [
        asm.sample_lead(
            curves[b.row],
            b,
            _lead_timing(rows, curves, timings_rows, b, ppy, P),
            opts.fs,
            opts.num_samples,
            read_x=_beside_ticks(b, ticks),
        )
        for b in boxes
    ]
    retimed = retime_columns(traces, opts.fs)
    if retimed:
        notes.append(retimed)
    traces = _assign_rhythm(traces, P)
    signal = asm.place(traces, opts.lead_names, opts.num_samples, opts.fs)
    unknown = [n for n in opts.lead_names if lead_index(n) is None]
    if unknown:
        notes.append(f"unknown lead names (left NaN): {unknown}")
    return AssembledSignal(signal, traces)


def _beside_ticks(box: LeadBox, ticks: list[Tick]) -> tuple[float, float]:
    """The x range (pixels) of ``box`` not covered by a visible separator tick at either of its ends: the tick is
    printed over the lead's first samples (and the previous lead's last), which are therefore not read."""
    lo, hi = -math.inf, math.inf
    for t in ticks:
        if t.hidden or t.row != box.row:
            continue
        if abs(t.boundary_x - box.x0) < 0.5:
            lo = max(lo, t.x1 + 1.0)
        elif abs(t.boundary_x - box.x1) < 0.5:
            hi = min(hi, t.x0 - 1.0)
    return lo, hi


def start_rows_with_their_labels(
    timings: list[asm.RowTiming],
    labels_per_row: list[list[LabelRead]],
    with_pulse: set[int],
    tol_label_px: float,
    min_shift_px: float,
    max_shift_px: float,
) -> list[int]:
    """Rows printed on one time axis, as their labels show (:data:`LABEL_COLUMNS_MIN` label x positions shared
    with other rows, within ``tol_label_px``), start together: at the median start of those with a pulse
    (``with_pulse``: row indices), else at the latest start. Each such row without a pulse whose ``x_t0`` lies
    ``min_shift_px`` to ``max_shift_px`` before it moves there, keeping its traced end (in place). Returns the rows
    moved."""
    xs = [sorted(lab.x0 for lab in row) for row in labels_per_row[: len(timings)]]
    shared: set[int] = set()
    columns: list[float] = []
    for i in range(len(xs)):
        for j in range(i + 1, len(xs)):
            for a in xs[i]:
                if any(abs(a - b) <= tol_label_px for b in xs[j]):
                    shared |= {i, j}
                    if all(abs(a - c) > tol_label_px for c in columns):
                        columns.append(a)
    if len(columns) < LABEL_COLUMNS_MIN:
        return []
    members = [i for i in sorted(shared) if np.isfinite(timings[i].x_t0) and timings[i].px_per_s > 0]
    if len(members) < 2:
        return []
    pulsed = [timings[i].x_t0 for i in members if i in with_pulse]
    start = float(np.median(pulsed)) if pulsed else max(timings[i].x_t0 for i in members)
    moved = []
    for i in members:
        t = timings[i]
        shift = start - t.x_t0
        if i in with_pulse or not min_shift_px <= shift <= max_shift_px:
            continue
        t.duration_s = max(t.duration_s - shift / t.px_per_s, 0.0)
        t.x_t0 = start
        t.source += "+labels"
        moved.append(i)
    return moved


def time_shift_from_ticks(ticks: list[Tick], boxes: list[LeadBox], timings: list[asm.RowTiming]) -> float:
    """Seconds to add to every row's time axis so that the lead boundaries fall on the visible separator ticks'
    centres: the median offset of the ticks from the boundaries the axes give, when at least
    :data:`TICK_SHIFT_MIN_TICKS` ticks agree within :data:`TICK_SHIFT_SPREAD_S` and the offset reaches
    :data:`TICK_SHIFT_MIN_PX`; else 0."""
    start_of = {(b.row, b.x0): b.t0 for b in boxes}
    offsets = []
    for t in ticks:
        t0 = start_of.get((t.row, t.boundary_x))
        if t.hidden or t0 is None or t.row >= len(timings):
            continue
        rt = timings[t.row]
        offsets.append((0.5 * (t.x0 + t.x1) - (rt.x_t0 + t0 * rt.px_per_s)) / rt.px_per_s)
    if len(offsets) < TICK_SHIFT_MIN_TICKS:
        return 0.0
    med = float(np.median(offsets))
    if float(np.median(np.abs(np.asarray(offsets) - med))) > TICK_SHIFT_SPREAD_S:
        return 0.0
    return med if abs(med) * float(np.median([t.px_per_s for t in timings])) >= TICK_SHIFT_MIN_PX else 0.0


def _lead_timing(
    rows: list[Row],
    curves: list[TraceCurve],
    timings: list[asm.RowTiming],
    box: LeadBox,
    px_per_mm_y: float,
    params: DigitizerParams,
) -> asm.RowTiming:
    """The time axis and baseline a lead box is sampled on: its row's, with the lead's own isoelectric level as the
    baseline where the row's leads were printed at different heights (:attr:`Row.levels`; a printer that draws each
    lead at its own offset: a lead drawn 13 mm above its row read 1.3 mV high)."""
    rt = timings[box.row]
    row = rows[box.row] if box.row < len(rows) else None
    if row is None or not row.levels:
        return rt
    c = curves[box.row]
    inside = (c.x >= box.x0) & (c.x < box.x1)
    level = _height_mode(c.y[inside], row.level_at(0.5 * (box.x0 + box.x1)), px_per_mm_y, params)
    return replace(rt, base_y=level)


# --- 12. the self-check and the reading's confidence ------------------------------------------------------------


def page_check(
    signal: np.ndarray,
    lead_names: list[str],
    fs: float,
    traces: list[asm.LeadTrace],
    layout: Layout | None,
    scale: Scale | None,
) -> SelfCheck:
    """The self-check of a digitized page: :func:`selfcheck.check_signal` on the output ``signal``
    (num_samples, leads) mV with the rhythm strips of ``traces`` compared with their leads' segments, made at
    least 'suspect' when the rows fit no layout template or the scale was only assumed from the page size (the
    laws of the leads cannot catch a wrong time axis shared by all rows)."""
    n = signal.shape[0]
    rhythm: dict[str, np.ndarray] = {}
    for t in traces:
        if t.box.rhythm and t.values_mv.size:
            strip = np.full(n, np.nan)
            end = min(n, t.start_sample + t.values_mv.size)
            strip[t.start_sample : end] = t.values_mv[: end - t.start_sample]
            rhythm.setdefault(t.name, strip)
    absent: list[str] = list(layout.absent) if layout is not None else []
    # a part of a page: its leads cut by the image's edge are covered over their part on the image only
    windows = {b.name: int(round((b.t1 - b.t0) * fs)) for b in layout.boxes} if layout is not None and absent else None
    try:
        check = check_signal(signal, lead_names, fs, rhythm=rhythm or None, absent=absent, windows=windows)
    except Exception as exc:  # noqa: BLE001 - a check that cannot run must not lose the page's signal
        log.exception("self-check failed")
        check = SelfCheck("suspect", [f"the self-check could not run ({type(exc).__name__}: {exc})"], [], 0.0)
    extra: list[str] = []
    if layout is not None and not layout.fits:
        extra.append(
            f"the rows fit no layout template (best {layout.name}, cost {layout.cost:.2f}, {len(layout.rows)} rows)"
        )
    if scale is not None and scale.source == "dpi":
        extra.append("the scale was assumed from the page size (no grid period, no calibration pulse)")
    if extra:
        check.reasons = check.reasons + extra
        if check.status == "ok":
            check.status = "suspect"
    return check


def reading_confidence(
    scale: Scale, layout: Layout, curves: list[TraceCurve], orientation: Orientation, params: DigitizerParams
) -> float:
    """A number in [0, 1]: the scale's source, the layout's fit, the rows' coverage and the orientation's
    confidence multiplied."""
    P = params
    cov = float(np.mean([c.coverage for c in curves])) if curves else 0.0
    conf = {"grid": P.confidence_grid, "pulse": P.confidence_pulse, "dpi": P.confidence_dpi}.get(
        scale.source, P.confidence_other
    )
    conf *= 1.0 if layout.fits else P.confidence_no_template
    conf *= float(np.clip(cov, 0.0, 1.0))
    conf *= (
        0.5 + 0.5 * max(orientation.confidence, 0.0)
        if orientation.source == "grid"
        else P.confidence_no_grid_orientation
    )
    return float(np.clip(conf, 0.0, 1.0))


# --- helpers of the orientation stages --------------------------------------------------------------------------


def _rectify(
    tm: TraceMap, rgb: np.ndarray, params: DigitizerParams = DEFAULT_PARAMS
) -> tuple[Orientation, np.ndarray, TraceMap, float]:
    """Orientation on downscaled maps, applied at working resolution with an enlarged canvas."""
    g_small, f = downscale(tm.grid, params.geometry_max_side_px)
    p_small, _ = downscale(tm.prob, params.geometry_max_side_px)
    orient = estimate_orientation(g_small, p_small)
    H = np.asarray(orient.homography, np.float64)
    if f != 1.0:
        S = np.diag([f, f, 1.0])
        H = np.linalg.inv(S) @ H @ S
    h, w = rgb.shape[:2]
    # a rotation that moves no pixel by a whole pixel only blurs thin traces (their map then falls below the
    # row finder's threshold and rows are cut short): not applied
    sub_pixel = math.radians(abs(orient.angle_deg)) * 0.5 * math.hypot(h, w) < params.min_rotation_shift_px
    if np.allclose(H, np.eye(3), atol=1e-6) or (sub_pixel and not orient.keystone):
        orient.homography = np.eye(3)
        orient.output_shape = (h, w)
        return orient, rgb, tm, f
    corners = np.array([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]], np.float64).T
    tc = H @ corners
    tc = tc[:2] / tc[2]
    x_lo, y_lo = tc[0].min(), tc[1].min()
    x_hi, y_hi = tc[0].max(), tc[1].max()
    ow = int(min(math.ceil(x_hi - x_lo), params.max_canvas_growth * w))
    oh = int(min(math.ceil(y_hi - y_lo), params.max_canvas_growth * h))
    T = np.array([[1, 0, -x_lo], [0, 1, -y_lo], [0, 0, 1]], np.float64)
    H = T @ H
    paper = tuple(float(v) for v in tm.paper_rgb)
    rgb_r = warp(rgb, H, (oh, ow), border=paper)
    prob_r = warp(tm.prob, H, (oh, ow), border=0)
    grid_r = warp(tm.grid, H, (oh, ow), border=0)
    ink_r = warp(tm.ink, H, (oh, ow), border=0)
    orient.homography = H
    orient.output_shape = (oh, ow)
    tm2 = replace(tm, prob=prob_r, grid=grid_r, ink=ink_r, warnings=list(tm.warnings))
    return orient, rgb_r, tm2, f


def _classical_map_of_rectified(
    rgb_r: np.ndarray, warped: TraceMap, H: np.ndarray, sheet: np.ndarray | None, in_shape: tuple[int, int]
) -> TraceMap:
    """The classical trace map made again on the rectified page ``rgb_r``: dark grid lines are told from the
    trace by being long and straight along the image axes, which they are only once the page is upright (on a
    photographed page with a dark green or brown grid they had become trace rows). The new map may only
    remove ink from the ``warped`` map of the page as photographed (``H`` maps the input image, ``in_shape``, to
    ``rgb_r``): what lies beyond the image or the paper ``sheet``, now surrounded by paper colour, would look
    like ink (slivers of background the sheet mask misses, the seam at the image border)."""
    tm = classical_trace_map(rgb_r)
    inside = np.ones(in_shape, np.float32) if sheet is None else sheet.astype(np.float32)
    inside = warp(inside, H, rgb_r.shape[:2], border=0, interpolation=cv2.INTER_NEAREST)
    was_ink = cv2.dilate(warped.prob, np.ones((3, 3), np.uint8))
    tm.prob = (np.minimum(tm.prob, was_ink) * inside).astype(np.float32)
    tm.grid = (tm.grid * inside).astype(np.float32)
    return tm


def _rot_tm(tm: TraceMap, k: int) -> TraceMap:
    return replace(
        tm,
        prob=rot90_image(tm.prob, k),
        grid=rot90_image(tm.grid, k),
        ink=rot90_image(tm.ink, k),
        warnings=list(tm.warnings),
    )


def _upside_down_score(
    prob: np.ndarray, rows: list[Row], ppm_y: float, params: DigitizerParams = DEFAULT_PARAMS
) -> float:
    """> 0 when ink sits mostly above the row baselines (upright: labels, R waves, pulses up)."""
    if not rows:
        return 0.0
    skip = params.upside_down_skip_mm
    above = below = 0.0
    for r in rows:
        b = r.baseline_y
        a0, a1 = r.y0, int(max(r.y0, b - skip * ppm_y))
        b0, b1 = int(min(r.y1, b + skip * ppm_y)), r.y1
        sub = prob[:, r.x0 : r.x1]
        above += float(sub[a0:a1].sum())
        below += float(sub[b0:b1].sum())
    tot = above + below
    return 0.0 if tot <= 0 else (above - below) / tot


def _pulse_votes(
    prob: np.ndarray, rows: list[Row], sc: Scale, paper_speed: float, params: DigitizerParams = DEFAULT_PARAMS
) -> tuple[int, int]:
    """(rows with a calibration pulse at their left start, rows with an upside-down pulse at their right
    end): the pulse is the most reliable up/down cue where a printer puts lead labels below the
    traces or the QRS complexes point mostly down."""
    left = right = 0
    ppx, ppy = sc.px_per_mm_x, sc.px_per_mm_y
    reach = int(round((params.pulse_vote_reach_s * paper_speed + params.pulse_vote_reach_mm) * ppx))
    for i, r in enumerate(rows):
        if r.x1 - r.x0 < 2 * reach:
            continue
        cl = trace_band(prob, r.y0, r.y1, r.x0, r.x0 + reach, r.baseline_y)
        if find_pulse(cl.y, cl.x0, r.baseline_y, i, ppx, ppy, paper_speed) is not None:
            left += 1
        cr = trace_band(prob, r.y0, r.y1, r.x1 - reach, r.x1, r.baseline_y)
        yr = 2.0 * r.baseline_y - cr.y[::-1]
        if find_pulse(yr, 0, r.baseline_y, i, ppx, ppy, paper_speed) is not None:
            right += 1
    return left, right


def _looks_upside_down(
    prob: np.ndarray, rows: list[Row], sc: Scale, paper_speed: float, params: DigitizerParams = DEFAULT_PARAMS
) -> tuple[bool, bool]:
    """(upside down?, sure?): calibration pulses vote first; without pulses, most ink (labels, R waves) clearly
    below the baselines (printers differ: some put the labels below); not sure when the ink balance lies within
    :data:`UPSIDE_DOWN_MARGIN` of :data:`UPSIDE_DOWN_INK`."""
    left, right = _pulse_votes(prob, rows, sc, paper_speed, params)
    if left > right:
        return False, True
    ink = _upside_down_score(prob, rows, sc.px_per_mm_y, params)
    if right > left and right >= max(2, len(rows) // 2):
        # mirrored row ends can mimic a pulse (a crop's rows cut on a rising T wave): the ink must not contradict, and
        # a balance only slightly below zero leaves the turn to the printed labels
        return ink < 0.0, not -UPSIDE_DOWN_MARGIN <= ink < 0.0
    return ink < UPSIDE_DOWN_INK, abs(ink - UPSIDE_DOWN_INK) > UPSIDE_DOWN_MARGIN


def _labels_both_ways(ink: np.ndarray, sc: Scale) -> tuple[list[LabelRead], list[LabelRead]] | None:
    """The lead labels read on the page as it is and turned by 180 degrees (to compare how many are read with
    confidence, :data:`ORIENTATION_LABEL_SCORE`); None when reading fails."""
    ppm = 0.5 * (sc.px_per_mm_x + sc.px_per_mm_y)
    try:
        return read_lead_labels(ink, ppm), read_lead_labels(rot90_image(ink, 2), ppm)
    except Exception:  # noqa: BLE001 - labels are evidence only
        log.exception("lead label reading failed")
        return None


def _confident(labels: list[LabelRead]) -> int:
    return sum(lab.score >= ORIENTATION_LABEL_SCORE for lab in labels)


# --- helpers of the scale and row stages ------------------------------------------------------------------------


def _plausible_scale(
    sc: Scale, h: int, w: int, min_mm: float = 120.0, params: DigitizerParams = DEFAULT_PARAMS
) -> Scale:
    """Guard against a grid period locked onto an alias (e.g. a subsampled minor grid): when the page's
    long side would be shorter than ``min_mm``, the sub-harmonic (period / k, k = 2..5) closest to a
    letter-size page is used instead (within 35 %), with low confidence."""
    if sc.source != "grid" or not np.isfinite(sc.px_per_mm_x):
        return sc
    long_side = float(max(h, w))
    if long_side / max(sc.px_per_mm_x, 1e-9) >= min_mm:
        return sc
    ref = scale_from_page_width(w, h).px_per_mm_x
    best = min(range(2, params.max_sub_harmonic + 1), key=lambda k: abs(math.log(sc.px_per_mm_x / k / ref)))
    if abs(math.log(sc.px_per_mm_x / best / ref)) > math.log(params.sub_harmonic_page_ratio):
        return sc
    msg = f"{SUB_HARMONIC_NOTE} {long_side / sc.px_per_mm_x:.0f} mm page; using 1/{best} of it"
    log.debug(msg)
    return Scale(
        sc.px_per_mm_x / best,
        sc.px_per_mm_y / best,
        "grid",
        {k: v / best for k, v in sc.period_px.items()},
        params.sub_harmonic_confidence,
        sc.warnings + [msg],
    )


def _find_rows(tm: TraceMap, sc: Scale, params: DigitizerParams = DEFAULT_PARAMS) -> tuple[list[Row], np.ndarray]:
    """The trace rows on ``tm`` and the row map they were found on; found again with the gaps of thin traces
    bridged when too few or too short (see :func:`prefer_bridged_rows`)."""
    ppm = 0.5 * (sc.px_per_mm_x + sc.px_per_mm_y)
    rmap = row_map(tm.prob, ppm)
    found = find_rows(rmap, sc.px_per_mm_y, sc.px_per_mm_x)
    width = tm.prob.shape[1]
    spans = [r.x1 - r.x0 for r in found]
    span = sum(spans)
    short = span < params.rows_min_coverage * width * max(len(found), 1) or (
        bool(spans) and min(spans) < params.rows_min_span_ratio * max(spans)
    )
    if len(found) < 2 or short:
        # thin, broken traces (scans; anti-aliased 100-DPI lines): pieces too small to keep, so rows are
        # missed or some are cut short (rows of a layout span about the same width): label
        # components with gaps bridged (see prefer_bridged_rows)
        rmap_b = row_map(tm.prob, ppm, bridge=True)
        found_b = find_rows(rmap_b, sc.px_per_mm_y, sc.px_per_mm_x)
        if prefer_bridged_rows(found, found_b, params):
            return found_b, rmap_b
    return found, rmap


def prefer_bridged_rows(found: list[Row], bridged: list[Row], params: DigitizerParams = DEFAULT_PARAMS) -> bool:
    """Are the rows found with the thin traces' gaps bridged better than those found without? Yes when they are
    more (fewer than two found without), or one more or less covering 30 % more of the page, or as many covering
    :data:`BRIDGED_MIN_GAIN` more with the shortest of them longer (a faint flat lead cut its row in two: a 100-DPI
    generator page's row II-aVL-V2-V5 was found from V2 on, 874 of 1827 px)."""
    spans = [r.x1 - r.x0 for r in found]
    spans_b = [r.x1 - r.x0 for r in bridged]
    if len(found) < 2:
        return len(bridged) > len(found)
    if abs(len(bridged) - len(found)) <= 1 and sum(spans_b) > params.bridged_other_count_gain * sum(spans):
        return True
    return len(bridged) == len(found) and sum(spans_b) > BRIDGED_MIN_GAIN * sum(spans) and min(spans_b) > min(spans)


def _read_labels(tm: TraceMap, sc: Scale, warnings: list[str]) -> list[LabelRead]:
    """The lead labels printed on the rectified page (:mod:`lead_labels`); [] (with a warning) when reading fails."""
    try:
        return read_lead_labels(tm.ink, 0.5 * (sc.px_per_mm_x + sc.px_per_mm_y))
    except Exception as exc:  # noqa: BLE001 - labels are evidence; the templates decide without them
        log.exception("lead label reading failed")
        warnings.append(f"lead labels not read ({type(exc).__name__}: {exc})")
        return []


def _label_dict(lab: LabelRead) -> dict[str, Any]:
    return {
        "name": lab.name,
        "score": round(float(lab.score), 3),
        "box": [round(float(v), 1) for v in (lab.x0, lab.y0, lab.x1, lab.y1)],
    }


#: Only labels read at least this surely (the label reader's anchor score), and off every row's baseline,
#: lose the ink that joins their box to the trace: labels read at 0.52-0.53 lay on the trace itself (a QRS read as
#: 'V4'; stripping its short runs cut the trace there, a lead fell from 13.7 to -8.6 dB), and on our renderer's pages
#: a rhythm strip's QRS complexes read 'aVL' at 0.81-0.95, lined up in a text line of their own, across the baseline.
GLYPH_STRIP_MIN_SCORE = ANCHOR_SCORE


def strips_glyphs(label: LabelRead, baselines_y: Sequence[float], margin_px: float) -> bool:
    """Does ``label`` lose the ink joining it to the trace (:data:`GLYPH_STRIP_MIN_SCORE`, and its box grown by
    ``margin_px`` crosses none of the rows' ``baselines_y``, pixels)?"""
    return label.score >= GLYPH_STRIP_MIN_SCORE and not any(
        label.y0 - margin_px <= b <= label.y1 + margin_px for b in baselines_y
    )


def erase_label_glyphs(
    prob: np.ndarray,
    labels: list[LabelRead],
    margin_px: float = 2.0,
    params: DigitizerParams = DEFAULT_PARAMS,
    baselines_y: Sequence[float] = (),
) -> np.ndarray:
    """``prob`` (H, W) without the ink of the printed labels: in each label's box (grown by ``margin_px``), connected
    pieces of ink (above :attr:`~DigitizerParams.ink_probability`) that lie wholly inside it; for labels that
    :func:`strips_glyphs` (given the rows' ``baselines_y``), also the ink of pieces that leave it which lies on no long
    straight run (:data:`~ecgdigitize.lead_labels.REFINED_RUN_H` label heights across,
    :data:`~ecgdigitize.lead_labels.REFINED_RUN_V` down, measured beyond the box: the label reader's own rule for
    strokes that are no glyph). A trace passing through the box keeps its flat stretches and tall strokes; a glyph
    touching it goes. Labels never enter a lead's signal (the Challenge generator prints them just below the baseline
    after each column's start, where the tracker followed them, and a QRS reaching down joins them to the trace)."""
    out = prob.copy()
    H, W = prob.shape
    for lab in labels:
        x0, y0 = max(0, int(lab.x0 - margin_px)), max(0, int(lab.y0 - margin_px))
        x1, y1 = min(W, int(np.ceil(lab.x1 + margin_px)) + 1), min(H, int(np.ceil(lab.y1 + margin_px)) + 1)
        if x1 - x0 < 3 or y1 - y0 < 3:
            continue
        sub = (out[y0:y1, x0:x1] > params.ink_probability).astype(np.uint8)
        n, lab_img = cv2.connectedComponents(sub, connectivity=8)
        if n <= 1:
            continue
        edge = np.unique(np.r_[lab_img[0], lab_img[-1], lab_img[:, 0], lab_img[:, -1]])
        inner = np.isin(lab_img, edge, invert=True) & (lab_img > 0)
        if not strips_glyphs(lab, baselines_y, margin_px):
            out[y0:y1, x0:x1][inner] = 0.0
            continue
        run_h = max(3, int(round(REFINED_RUN_H * lab.height)))
        run_v = max(3, int(round(REFINED_RUN_V * lab.height)))
        wx0, wy0 = max(0, x0 - run_h), max(0, y0 - run_v)
        wx1, wy1 = min(W, x1 + run_h), min(H, y1 + run_v)
        around = (out[wy0:wy1, wx0:wx1] > params.ink_probability).astype(np.uint8)
        short = strip_long_runs(around, run_h, run_v)[y0 - wy0 : y1 - wy0, x0 - wx0 : x1 - wx0] > 0
        out[y0:y1, x0:x1][inner | short] = 0.0
    return out


# --- helpers of the calibration and time-axis stages ------------------------------------------------------------


def row_px_per_mm_x(
    grid: np.ndarray, row: Row, rows: list[Row], page_px_per_mm_x: float, params: DigitizerParams = DEFAULT_PARAMS
) -> float:
    """Pixels per mm along x of the grid in ``row``'s band (halfway to its neighbours, its traced x extent), or
    ``page_px_per_mm_x`` when the band's period is unsure or agrees with it (see :data:`ROW_SCALE_MIN_DEVIATION`)."""
    P = params
    bases = sorted(r.baseline_y for r in rows)
    spacing = float(np.median(np.diff(bases))) if len(bases) >= 2 else P.single_row_band_mm * page_px_per_mm_x
    y0 = int(max(0, row.baseline_y - 0.5 * spacing))
    y1 = int(min(grid.shape[0], row.baseline_y + 0.5 * spacing))
    if y1 - y0 < P.row_band_min_height_px or row.x1 - row.x0 < P.row_band_min_width_px:
        return page_px_per_mm_x
    local = estimate_scale(grid, region=(int(row.x0), y0, int(row.x1), y1))
    if not np.isfinite(local.px_per_mm_x) or local.confidence < P.row_band_min_confidence:
        return page_px_per_mm_x
    dev = abs(local.px_per_mm_x / page_px_per_mm_x - 1.0)
    return float(local.px_per_mm_x) if ROW_SCALE_MIN_DEVIATION < dev <= ROW_SCALE_MAX_DEVIATION else page_px_per_mm_x


def scales_of_rows_spanning_alike(row_ppx: list[float], spans_px: list[float], page_ppx: float) -> list[float]:
    """``row_ppx`` (px per mm along x, one per row) with the page's ``page_ppx`` for each row whose own scale the
    rows' traced spans (``spans_px``, pixels from time origin to last ink) contradict. The rows of a page print one
    span, so their spans in pixels stand in the ratio of their scales: a row on a scale of its own whose span is
    nearer to equal with most other rows' (those within :data:`ROW_SCALE_MAX_DEVIATION` of it) than to the ratio of
    the scales is on the page's. (A rotated generator page: its top row's grid band, beside the dark corner, read 3 %
    short; its ink spanned the same 1968 px as the other rows', and its lead boxes ended 60 px early.)"""
    out = list(row_ppx)
    for i, (v, s) in enumerate(zip(row_ppx, spans_px)):
        if abs(v / page_ppx - 1.0) < 1e-9 or not (math.isfinite(s) and s > 0):
            continue
        others = [
            (row_ppx[j], spans_px[j])
            for j in range(len(row_ppx))
            if j != i
            and math.isfinite(spans_px[j])
            and spans_px[j] > 0
            and abs(spans_px[j] / s - 1.0) <= ROW_SCALE_MAX_DEVIATION
        ]
        alike = sum(abs(s / sj - 1.0) < abs(s / sj - v / vj) for vj, sj in others)
        if others and 2 * alike > len(others):
            out[i] = page_ppx
    return out


def row_scales_px_per_mm_x(
    grid: np.ndarray, rows: list[Row], page_px_per_mm_x: float, params: DigitizerParams = DEFAULT_PARAMS
) -> list[float]:
    """Pixels per mm along x for each of ``rows``: its band's own (:func:`row_px_per_mm_x`) where an adjacent row's
    lies within :data:`ROW_SCALE_STEP` of it (or it has no adjacent row), else the page's."""
    own = [row_px_per_mm_x(grid, r, rows, page_px_per_mm_x, params) for r in rows]
    dev = [v / page_px_per_mm_x - 1.0 for v in own]
    order = sorted(range(len(rows)), key=lambda i: rows[i].baseline_y)
    out = list(own)
    for k, i in enumerate(order):
        near = [dev[order[j]] for j in (k - 1, k + 1) if 0 <= j < len(order)]
        if near and min(abs(dev[i] - d) for d in near) > ROW_SCALE_STEP:
            out[i] = page_px_per_mm_x
    return out


def _grid_scale_from_pulses(
    sc: Scale, pulses: list[Pulse], n_rows: int, params: DigitizerParams = DEFAULT_PARAMS
) -> Scale | None:
    """The grid's scale corrected by the calibration pulses, or None when they confirm it or cannot tell.

    A grid period read at a wrong harmonic (photographed pages: 5/6 of the true period, 6 minor periods taken
    for one 5 mm major one) makes every pulse the same non-standard height. Pulses on at least half the rows
    (two or more) whose heights agree within :data:`PULSE_AGREEMENT`, that are no standard gain on the grid's
    scale (beyond :attr:`~DigitizerParams.pulse_standard_tolerance`) but within :data:`GRID_PULSE_MISMATCH` of one,
    give the y scale; x follows where the grid read both axes within
    :attr:`~DigitizerParams.grid_axes_agreement` of each other (one error in both), else it keeps the grid's x
    period."""
    if sc.source != "grid" or len(pulses) < max(2, n_rows // 2):
        return None
    heights = np.array([p.height_px for p in pulses], np.float64)
    h_mm = float(np.median(heights)) / sc.px_per_mm_y
    g_near = standard_gain(h_mm, GRID_PULSE_MISMATCH)
    if (
        g_near is None
        or standard_gain(h_mm, params.pulse_standard_tolerance) is not None
        or float(np.ptp(heights) / np.median(heights)) > PULSE_AGREEMENT
    ):
        return None
    f = h_mm / g_near
    same = abs(sc.px_per_mm_x / sc.px_per_mm_y - 1.0) <= params.grid_axes_agreement
    ppx, ppy = sc.px_per_mm_x * (f if same else 1.0), sc.px_per_mm_y * f
    msg = (
        f"calibration pulses {h_mm:.2f} mm tall on the grid's scale: scale from the pulses ({g_near:g} mm/mV), "
        f"{ppx:.3f}/{ppy:.3f} px/mm"
    )
    return Scale(
        ppx,
        ppy,
        "pulse",
        period_px=dict(sc.period_px),
        confidence=params.pulse_scale_confidence,
        warnings=sc.warnings + [msg],
    )


def _layout_cost(rows: list[Row], durations: list[float], evidence: list[list[float]], idx: list[int]) -> float:
    """The layout fit's cost (:func:`fit_layout`) of the rows ``idx`` alone."""
    return fit_layout([rows[i] for i in idx], [durations[i] for i in idx], [evidence[i] for i in idx])[1]


def _rows_without_edge_text(
    rows: list[Row],
    durations: list[float],
    evidence: list[list[float]],
    pulse_rows: set[int],
    short: float = 0.6,
    gain: float = 0.1,
    very_short: float = 0.2,
    params: DigitizerParams = DEFAULT_PARAMS,
    flat_rows: set[int] | frozenset[int] = frozenset(),
) -> list[int]:
    """Indices of the rows to keep, after peeling up to :attr:`~DigitizerParams.edge_row_peel` rows off the top and the bottom.

    A peeled row has no calibration pulse and is no trace: short (a traced span under ``short`` times the longest
    row, as header or footer text is) or flat (in ``flat_rows``: no QRS complex, see :func:`row_deflection_mm`).
    The peeled row next to the kept ones also lies off their regular spacing (by more than
    :attr:`~DigitizerParams.edge_row_off_spacing`), unless it is very short (under ``very_short`` times the longest:
    a sliver of background at a photo's edge can sit on the spacing). Flat rows (border and rule lines) are peeled
    at once; a peel with a short row must make the kept rows fit a layout template better by at least ``gain`` in
    cost."""
    n = len(rows)
    if n < 3 or not durations:
        return list(range(n))
    dmax = max(durations)
    bases = [r.baseline_y for r in rows]

    def not_trace(i: int) -> bool:
        return i not in pulse_rows and (durations[i] < short * dmax or i in flat_rows)

    def off_spacing(i: int, kept: list[int]) -> bool:
        # text and border lines sit off the rows' regular spacing; a short trace row (cut, faint) does not
        spacing = float(np.median(np.diff([bases[k] for k in kept]))) if len(kept) >= 2 else 0.0
        gap = abs(bases[kept[0]] - bases[i]) if i < kept[0] else abs(bases[i] - bases[kept[-1]])
        return spacing <= 0 or abs(gap - spacing) > params.edge_row_off_spacing * spacing

    peels: dict[tuple[int, int], list[int]] = {}
    for top in range(params.edge_row_peel + 1):
        for bottom in range(params.edge_row_peel + 1):
            kept = list(range(top, n - bottom))
            dropped = [*range(top), *range(n - bottom, n)]
            if len(kept) < 2 or not all(not_trace(i) for i in dropped):
                continue
            nearest = ([top - 1] if top else []) + ([n - bottom] if bottom else [])
            if all(off_spacing(i, kept) or durations[i] < very_short * dmax for i in nearest):
                peels[(top, bottom)] = kept
    lines = max(
        (p for p in peels if all(i in flat_rows for i in range(n) if i not in peels[p])), key=sum, default=(0, 0)
    )

    best = peels.get(lines, list(range(n)))
    best_cost = _layout_cost(rows, durations, evidence, best)
    for (top, bottom), kept in peels.items():
        if top >= lines[0] and bottom >= lines[1] and (top, bottom) != lines:
            c = _layout_cost(rows, durations, evidence, kept)
            if c + gain < best_cost:
                best, best_cost = kept, c
    return best


def _rows_without_fragments(
    rows: list[Row],
    durations: list[float],
    evidence: list[list[float]],
    pulse_rows: set[int],
    very_short: float = 0.2,
    gain: float = 0.1,
    params: DigitizerParams = DEFAULT_PARAMS,
) -> list[int]:
    """Indices of the rows to keep: inner rows traced over under ``very_short`` times the longest row, without a
    calibration pulse, that sit between two rows lying one regular spacing apart (within
    :attr:`~DigitizerParams.edge_row_off_spacing`), are fragments (a crease's shadow, a stray mark), and go when the
    other rows then fit a layout template better by at least ``gain`` in cost."""
    n = len(rows)
    if n < 4 or not durations:
        return list(range(n))
    dmax = max(durations)
    bases = [r.baseline_y for r in rows]
    frags = []
    for i in range(1, n - 1):
        if i in pulse_rows or durations[i] >= very_short * dmax:
            continue
        others = bases[:i] + bases[i + 1 :]
        spacing = float(np.median(np.diff(others)))
        if spacing > 0 and abs(bases[i + 1] - bases[i - 1] - spacing) <= params.edge_row_off_spacing * spacing:
            frags.append(i)
    if not frags:
        return list(range(n))

    keep = [i for i in range(n) if i not in frags]
    full = list(range(n))
    return (
        keep
        if _layout_cost(rows, durations, evidence, keep) + gain < _layout_cost(rows, durations, evidence, full)
        else full
    )


def row_deflection_mm(
    curve: TraceCurve, px_per_mm_y: float, px_per_s: float, params: DigitizerParams = DEFAULT_PARAMS
) -> float:
    """How far (mm) a traced row leaves its running median over :attr:`~DigitizerParams.edge_row_flat_window_s`
    in all but 1 % of its traced columns: a QRS complex's few mm in a trace row, pixel noise in a straight line.
    Pixel noise is first smoothed over 3 columns. Infinite (not shown flat) when under two windows are traced."""
    y = np.asarray(curve.y, dtype=np.float64)
    y = y[np.isfinite(y)]
    win = int(params.edge_row_flat_window_s * px_per_s) | 1
    if y.size < 2 * win or px_per_mm_y <= 0:
        return math.inf
    y = median_filter(y, size=3, mode="nearest")
    away = np.abs(y - median_filter(y, size=win, mode="nearest"))
    return float(np.percentile(away, 99) / px_per_mm_y)


def _curve_mode(
    curve: TraceCurve, fallback: float, px_per_mm_y: float, params: DigitizerParams = DEFAULT_PARAMS
) -> float:
    """Isoelectric level (pixels) of a traced row: the most frequent curve height (bins of
    :attr:`~DigitizerParams.mode_bin_px`, smoothed over :attr:`~DigitizerParams.mode_smooth_mm`), if within
    :attr:`~DigitizerParams.mode_max_shift_mm` of ``fallback`` (the row-profile baseline)."""
    return _height_mode(curve.y, fallback, px_per_mm_y, params)


def _height_mode(y: np.ndarray, fallback: float, px_per_mm_y: float, params: DigitizerParams = DEFAULT_PARAMS) -> float:
    """The most frequent of the heights ``y`` (pixels; NaN ignored) as in :func:`_curve_mode`, or ``fallback``."""
    P = params
    y = y[np.isfinite(y)]
    if y.size < P.mode_min_points:
        return fallback
    lo = float(y.min())
    bins = np.floor((y - lo) / P.mode_bin_px).astype(np.int64)
    hist = np.bincount(bins).astype(np.float64)
    k = max(1, int(round(P.mode_smooth_mm * px_per_mm_y / P.mode_bin_px)))
    sm = np.convolve(hist, np.ones(k) / k, mode="same")
    mode = lo + (int(np.argmax(sm)) + 0.5) * P.mode_bin_px
    near = np.abs(y - mode) <= P.mode_near_mm * px_per_mm_y + P.mode_near_px
    if near.sum() >= P.mode_near_min_points:
        mode = float(np.median(y[near]))
    return mode if abs(mode - fallback) <= P.mode_max_shift_mm * px_per_mm_y else fallback


def _consistent_trace_starts(
    pulse_of_row: dict[int, Pulse], tol_px: float, params: DigitizerParams = DEFAULT_PARAMS
) -> None:
    """Rows of a standard layout start at one x: where at least two pulses' trace starts agree (within
    ``tol_px`` of their median), a pulse whose trace start is off by more while its falling edge lies
    with the others' (within :attr:`~DigitizerParams.pulse_edge_tolerances` ``tol_px``) had its first ink missed or
    a speck taken; it gets the common start (in place)."""
    if len(pulse_of_row) < 3:
        return
    starts = {i: p.trace_start_x for i, p in pulse_of_row.items()}
    med = float(np.median(list(starts.values())))
    agree = [i for i, v in starts.items() if abs(v - med) <= tol_px]
    if len(agree) < 2:
        return
    common = float(np.median([starts[i] for i in agree]))
    edge = float(np.median([pulse_of_row[i].x1 for i in agree]))
    for i, p in pulse_of_row.items():
        if i not in agree and abs(p.x1 - edge) <= params.pulse_edge_tolerances * tol_px:
            p.trace_start_x = common


def trace_starts_from_pulses(
    rows: list[Row], curves: list[TraceCurve], pulse_of_row: dict[int, Pulse], tol_px: float, max_shift_px: float
) -> dict[int, float]:
    """Trace starts (x, pixels) of rows without a pulse, from the rows with one: the rows of a printed page start at
    one time, so where at least two pulses' trace starts lie on a line in the rows' heights (within ``tol_px``; a
    straight line allows for a keystone), a row whose first ink lies within ``max_shift_px`` of that line starts on
    it. With a single pulse, only rows whose first ink lies within ``tol_px`` of the pulse row's first ink start on
    its trace start: they begin with a pulse too, one the detector missed (the generator's next R wave can merge with
    a pulse's fall). Either way, a row whose last ink lies within :data:`ROW_END_TOL_STARTS` start tolerances of the
    pulse rows' (median) last ink starts with them too, wherever its first ink: the rows of a page end together,
    and a row's beginning can be lost (a shadow, a stain) or lie on other ink. {} where the pulses disagree or no
    row lacks one."""
    idx = sorted(pulse_of_row)
    if len(idx) == len(rows) or not idx:
        return {}
    ends = [e for e in (curves[i].last_ink_x for i in idx) if e is not None]
    end = float(np.median(ends)) if ends else None

    def ends_with_pulse_rows(c: TraceCurve) -> bool:
        last = c.last_ink_x
        return end is not None and last is not None and abs(last - end) <= ROW_END_TOL_STARTS * tol_px

    if len(idx) == 1:
        p, own = pulse_of_row[idx[0]], curves[idx[0]].first_ink_x
        return {
            i: float(p.trace_start_x)
            for i, c in enumerate(curves)
            if i != idx[0]
            and (
                (own is not None and c.first_ink_x is not None and abs(c.first_ink_x - own) <= tol_px)
                or ends_with_pulse_rows(c)
            )
        }
    yy = np.array([rows[i].baseline_y for i in idx], np.float64)
    xx = np.array([pulse_of_row[i].trace_start_x for i in idx], np.float64)
    if np.ptp(yy) <= 0:
        return {}
    b, a = np.polyfit(yy, xx, 1) if len(idx) >= 3 else (0.0, float(np.mean(xx)))
    if np.max(np.abs(a + b * yy - xx)) > tol_px:
        return {}
    out: dict[int, float] = {}
    for i, (r, c) in enumerate(zip(rows, curves)):
        if i in pulse_of_row:
            continue
        pred = float(a + b * r.baseline_y)
        if (c.first_ink_x is not None and abs(c.first_ink_x - pred) <= max_shift_px) or ends_with_pulse_rows(c):
            out[i] = pred
    return out


def row_starts_disagree(timings: list[asm.RowTiming], params: DigitizerParams = DEFAULT_PARAMS) -> bool:
    """Do the rows' time axes start at slightly different x (more than the start tolerance,
    :attr:`~DigitizerParams.row_start_tol_s` or :attr:`~DigitizerParams.row_start_tol_px`, at most
    :data:`ROW_START_MAX_SPREAD_S`)?"""
    if len(timings) < 2:
        return False
    x0 = np.array([t.x_t0 for t in timings], np.float64)
    pps = float(np.median([t.px_per_s for t in timings]))
    spread = float(np.ptp(x0))
    return max(params.row_start_tol_px, params.row_start_tol_s * pps) < spread <= ROW_START_MAX_SPREAD_S * pps


def common_trace_starts(
    rows: list[Row],
    curves: list[TraceCurve],
    pulse_of_row: dict[int, Pulse],
    start_pred: dict[int, float],
    max_shift_px: float,
) -> dict[int, float]:
    """``start_pred`` with every other row without a pulse started at the rows' median start (pulse trace starts,
    predicted starts and first ink) where its first ink lies within ``max_shift_px`` of it."""
    starts: dict[int, float] = {}
    for i, c in enumerate(curves):
        if i in pulse_of_row:
            starts[i] = pulse_of_row[i].trace_start_x
        elif i in start_pred:
            starts[i] = start_pred[i]
        elif c.first_ink_x is not None:
            starts[i] = c.first_ink_x
    if len(starts) < 2:
        return start_pred
    common = float(np.median(list(starts.values())))
    out = dict(start_pred)
    for i, x in starts.items():
        if i not in pulse_of_row and i not in start_pred and abs(x - common) <= max_shift_px:
            out[i] = common
    return out


def _baselines_from_pulses(
    rows: list[Row], pulse_of_row: dict[int, Pulse], px_per_mm_y: float, params: DigitizerParams = DEFAULT_PARAMS
) -> dict[int, float]:
    """Baselines (pixels) of rows without a pulse between rows with one, predicted from the pulse feet of those rows
    when they lie on an evenly spaced line (base = a + b * row, residual under
    :attr:`~DigitizerParams.pulse_feet_line_mm`) and the prediction is within
    :attr:`~DigitizerParams.pulse_feet_reach_mm` of the row's own profile baseline; {} when that does not hold.
    Rows beyond the first or last pulse row are not predicted: the Challenge generator prints its rhythm strip at a
    spacing of its own (the line of the three rows above put a rhythm strip whose pulse was missed 2.96 mm, 0.29 mV,
    off its level, and missed the strip by 1.8-3.9 mm on six of its pages looked at)."""
    reach_px = params.pulse_feet_reach_mm * px_per_mm_y
    idx = sorted(pulse_of_row)
    if len(idx) < 2 or len(idx) == len(rows):
        return {}
    ii = np.array(idx, np.float64)
    bb = np.array([pulse_of_row[i].base_y for i in idx])
    b, a = np.polyfit(ii, bb, 1)
    if len(idx) >= 3 and np.max(np.abs(a + b * ii - bb)) > params.pulse_feet_line_mm * px_per_mm_y:
        return {}
    if len(idx) == 2:
        # two rows only: their own spacing must match the rows' spacing
        own = np.array([r.baseline_y for r in rows])
        if np.max(np.abs(own[idx] - bb)) > reach_px:
            return {}
    out: dict[int, float] = {}
    for i, r in enumerate(rows):
        if i in pulse_of_row or not idx[0] < i < idx[-1]:
            continue
        pred = float(a + b * i)
        if abs(pred - r.baseline_y) <= reach_px:
            out[i] = pred
    return out


# --- helpers of the assembly stage ------------------------------------------------------------------------------


def _assign_rhythm(traces: list[asm.LeadTrace], params: DigitizerParams = DEFAULT_PARAMS) -> list[asm.LeadTrace]:
    """Rename rhythm strips by correlation with the short segments of the same time window when a
    different lead matches clearly better than the template's default."""
    P = params
    short = [t for t in traces if not t.box.rhythm]
    used: set[str] = set()
    for t in traces:
        if not t.box.rhythm or t.values_mv.size == 0 or t.box.named_by_label:
            used.add(t.name)
            continue
        best_name, best_r, default_r = t.name, -1.0, -1.0
        for s in short:
            if s.values_mv.size < P.rhythm_min_samples:
                continue
            a = s.start_sample - t.start_sample
            if a < 0 or a + s.values_mv.size > t.values_mv.size:
                continue
            u = t.values_mv[a : a + s.values_mv.size]
            v = s.values_mv
            ok = np.isfinite(u) & np.isfinite(v)
            if ok.sum() < P.rhythm_min_samples or np.std(u[ok]) < 1e-6 or np.std(v[ok]) < 1e-6:
                continue
            r = float(np.corrcoef(u[ok], v[ok])[0, 1])
            if s.name == t.name:
                default_r = r
            if r > best_r and s.name not in used:
                best_name, best_r = s.name, r
        if (
            best_name != t.name
            and best_r > P.rhythm_min_correlation
            and best_r > default_r + P.rhythm_correlation_margin
        ):
            log.debug("rhythm strip %s re-assigned to %s (r=%.2f vs %.2f)", t.name, best_name, best_r, default_r)
            t.name = best_name
            t.box.name = best_name
        used.add(t.name)
    return traces
