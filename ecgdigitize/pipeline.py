"""One call from a page image (and optional trace probability map) to per-lead signals.

Steps (each its own module, each result kept in :class:`DigitizationResult`): image normalisation
(:mod:`image_io`, hairline pages upsampled), trace/grid maps (:mod:`trace_map`), orientation (:mod:`orientation`),
scale (:mod:`scale`), rows (:mod:`layout`), printed lead labels (:mod:`lead_labels`, erased from the trace map),
vectorisation (:mod:`vectorise`), calibration pulses (:mod:`calibration`), per-row time axes, layout and lead
identity from templates and labels (:mod:`lead_identity`), assembly (:mod:`assemble`) with column timing checked
against the rhythm strip (:mod:`column_timing`), and the page's self-check (:mod:`selfcheck`), which sets its
status; rows still tilted after all this make the page be read once more.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from ecgvocab import STANDARD_LEADS, lead_index, lead_key

from . import assemble as asm
from .boundaries import BoundaryZone, retrace_boundaries
from .column_timing import retime_columns
from .calibration import Calibration, Pulse, amplitude_calibration, find_pulse, standard_gain
from .image_io import PreparedImage, downscale, prepare_image, upsample_hairline
from .layout import (FIFTEEN_LEAD_EXTRAS, LABELLED_TEMPLATES, TEMPLATES, Layout, Row, boundary_evidence,
                     find_rows, fit_layout, row_map, template_rows)
from .lead_identity import RowSpan, choose_layout
from .lead_labels import LabelRead, labels_by_row, read_lead_labels
from .paper import paper_mask
from .orientation import Orientation, estimate_orientation, rot90_image, rows_are_horizontal, warp
from .separators import find_ticks, retrace_near_ticks, subtract_ticks
from .scale import Scale, estimate_scale, scale_from_page_width
from .selfcheck import SelfCheck, check_signal
from .trace_map import TraceMap, classical_trace_map, given_trace_map, line_width_px
from .vectorise import TraceCurve, drop_foreign_stretches, trace_band, trace_rows

log = logging.getLogger(__name__)

GEOMETRY_MAX_SIDE = 1600
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
GRID_PULSE_MISMATCH = 0.25


@dataclass
class DigitizationResult:
    """Everything the digitizer found for one page.

    signal: (num_samples, len(lead_names)) float64 mV; NaN outside the printed window of each lead.
    rectified: (H, W, 3) uint8 rectified working image (coordinates of rows, boxes and traces).
    """

    signal: np.ndarray
    lead_names: list[str]
    fs: float
    orientation: Orientation | None = None
    scale: Scale | None = None
    layout: Layout | None = None
    traces: list[asm.LeadTrace] = field(default_factory=list)
    row_curves: list[TraceCurve] = field(default_factory=list)
    row_timings: list[asm.RowTiming] = field(default_factory=list)
    calibration: Calibration | None = None
    warnings: list[str] = field(default_factory=list)
    confidence: float = 0.0
    rectified: np.ndarray | None = None
    trace_prob: np.ndarray | None = None
    work_scale: float = 1.0
    timings_s: dict[str, float] = field(default_factory=dict)
    debug: dict[str, Any] = field(default_factory=dict)
    #: the page's self-check (:mod:`selfcheck`: laws of the limb leads, rhythm strips, timing, ranges, plus the
    #: layout fit and the scale's source); None when no signal was read
    check: SelfCheck | None = None

    @property
    def status(self) -> str:
        """'ok', 'suspect' or 'failed' (no signal read, or the self-check found the page wrong)."""
        return self.check.status if self.check is not None else "failed"

    @property
    def status_reasons(self) -> list[str]:
        """Why the page is not 'ok' (empty when it is)."""
        if self.check is not None:
            return list(self.check.reasons)
        return list(self.warnings[-1:]) or ["no signal read"]


def _empty(num_samples: int, lead_names: list[str], fs: float, warnings: list[str], **kw: Any) -> DigitizationResult:
    return DigitizationResult(np.full((num_samples, len(lead_names)), np.nan), list(lead_names), fs,
                              warnings=warnings, confidence=0.0, **kw)


def _rectify(tm: TraceMap, rgb: np.ndarray) -> tuple[Orientation, np.ndarray, TraceMap, float]:
    """Orientation on downscaled maps, applied at working resolution with an enlarged canvas."""
    g_small, f = downscale(tm.grid, GEOMETRY_MAX_SIDE)
    p_small, _ = downscale(tm.prob, GEOMETRY_MAX_SIDE)
    orient = estimate_orientation(g_small, p_small)
    H = np.asarray(orient.homography, np.float64)
    if f != 1.0:
        S = np.diag([f, f, 1.0])
        H = np.linalg.inv(S) @ H @ S
    h, w = rgb.shape[:2]
    # a rotation that moves no pixel by a whole pixel only blurs thin traces (their map then falls below the
    # row finder's threshold and rows are cut short): not applied
    sub_pixel = math.radians(abs(orient.angle_deg)) * 0.5 * math.hypot(h, w) < 1.0
    if np.allclose(H, np.eye(3), atol=1e-6) or (sub_pixel and not orient.keystone):
        orient.homography = np.eye(3)
        orient.output_shape = (h, w)
        return orient, rgb, tm, f
    corners = np.array([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]], np.float64).T
    tc = H @ corners
    tc = tc[:2] / tc[2]
    x_lo, y_lo = tc[0].min(), tc[1].min()
    x_hi, y_hi = tc[0].max(), tc[1].max()
    ow = int(min(math.ceil(x_hi - x_lo), 1.5 * w))
    oh = int(min(math.ceil(y_hi - y_lo), 1.5 * h))
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


def _classical_map_of_rectified(rgb_r: np.ndarray, warped: TraceMap, H: np.ndarray, sheet: np.ndarray | None,
                                in_shape: tuple[int, int]) -> TraceMap:
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
    return replace(tm, prob=rot90_image(tm.prob, k), grid=rot90_image(tm.grid, k), ink=rot90_image(tm.ink, k),
                   warnings=list(tm.warnings))


def _upside_down_score(prob: np.ndarray, rows: list[Row], ppm_y: float) -> float:
    """> 0 when ink sits mostly above the row baselines (upright: labels, R waves, pulses up)."""
    if not rows:
        return 0.0
    above = below = 0.0
    for r in rows:
        b = r.baseline_y
        a0, a1 = r.y0, int(max(r.y0, b - 1.0 * ppm_y))
        b0, b1 = int(min(r.y1, b + 1.0 * ppm_y)), r.y1
        sub = prob[:, r.x0:r.x1]
        above += float(sub[a0:a1].sum())
        below += float(sub[b0:b1].sum())
    tot = above + below
    return 0.0 if tot <= 0 else (above - below) / tot


def _pulse_votes(prob: np.ndarray, rows: list[Row], sc: Scale, paper_speed: float) -> tuple[int, int]:
    """(rows with a calibration pulse at their left start, rows with an upside-down pulse at their right
    end): the pulse is the most reliable up/down cue where a printer puts lead labels below the
    traces or the QRS complexes point mostly down."""
    left = right = 0
    ppx, ppy = sc.px_per_mm_x, sc.px_per_mm_y
    reach = int(round((0.6 * paper_speed + 8.0) * ppx))
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


#: Ink-balance score (:func:`_upside_down_score`) below which a page without pulse votes is upside down, and the
#: margin around it within which the printed lead labels decide instead (real scan ecg00003, labels below the
#: traces: -0.36 upright, -0.41 once upsampled).
UPSIDE_DOWN_INK = -0.4
UPSIDE_DOWN_MARGIN = 0.15
#: Label confidence from which a label counts in the up/down vote.
ORIENTATION_LABEL_SCORE = 0.8


def _looks_upside_down(prob: np.ndarray, rows: list[Row], sc: Scale, paper_speed: float) -> tuple[bool, bool]:
    """(upside down?, sure?): calibration pulses vote first; without pulses, most ink (labels, R waves) clearly
    below the baselines (printers differ: some put the labels below); not sure when the ink balance lies within
    :data:`UPSIDE_DOWN_MARGIN` of :data:`UPSIDE_DOWN_INK`."""
    left, right = _pulse_votes(prob, rows, sc, paper_speed)
    if left > right:
        return False, True
    ink = _upside_down_score(prob, rows, sc.px_per_mm_y)
    if right > left and right >= max(2, len(rows) // 2):
        return ink < 0.0, True  # mirrored row ends can mimic a pulse: the ink must not contradict
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


def digitize_page(image: np.ndarray, trace_prob: np.ndarray | None = None, **kwargs: Any) -> DigitizationResult:
    """Digitise one ECG page image (see :func:`_digitize_page` for the arguments); never raises for a bad
    page: unexpected failures give an all-NaN signal and a warning."""
    try:
        result = _digitize_page(image, trace_prob, **kwargs)
        flags: dict[str, Any] = {}
        if result.scale is not None and any(w.startswith(SUB_HARMONIC_NOTE) for w in result.scale.warnings):
            # a small page or a crop of one: the grid period as read is the other hypothesis
            as_read = _digitize_page(image, trace_prob, trust_grid_period=True, **kwargs)
            if reading_rank(as_read) > reading_rank(result):
                as_read.warnings.append(f"grid period kept as read ({as_read.scale.px_per_mm_x:.2f} px/mm): the "
                                        "self-check prefers it to a sub-harmonic (the image shows part of a page)")
                result, flags = as_read, {"trust_grid_period": True}
        if result.check is not None and result.check.status != "ok" and row_starts_disagree(result.row_timings):
            # rows print from one time on: their common start is the other hypothesis
            common = _digitize_page(image, trace_prob, common_row_start=True, **flags, **kwargs)
            if reading_rank(common) > reading_rank(result):
                common.warnings.append("rows read from their common start: the self-check prefers it to each "
                                       "row's first ink")
                result = common
        if trace_prob is None:
            result = _with_residual_tilt_removed(result, kwargs)
        return result
    except Exception as exc:  # noqa: BLE001 - a page must never crash the caller
        log.exception("digitisation failed")
        names = list(kwargs.get("lead_names") or STANDARD_LEADS)
        return _empty(int(kwargs.get("num_samples", 5000)), names, float(kwargs.get("fs", 500.0)),
                      [f"digitisation failed: {type(exc).__name__}: {exc}"])


#: A residual tilt of the traced rows (degrees) at least this large, shared by the rows (median absolute deviation
#: under :data:`TILT_AGREEMENT_DEG`), makes the page be read again turned by it; that reading is kept unless its
#: self-check status is worse (the Challenge generator's rotated, noisy pages: grid angles read 2-4 degrees short
#: under the noise, every row sloping across the page). Baseline wander shared by the rows tilts them too: a
#: rendered PTB-XL page whose rows sloped 0.43 degrees lost 2.7 dB when read again turned.
RESIDUAL_TILT_DEG = 1.0
TILT_AGREEMENT_DEG = 0.2
#: Bins along a row for its tilt: the median height per bin ignores QRS complexes.
TILT_BINS = 10


def row_tilts_deg(curves: list[TraceCurve]) -> list[float]:
    """Tilt (degrees; positive = the row falls to the right, image y down) of each traced row: a line through the
    median heights of :data:`TILT_BINS` stretches of the row."""
    out = []
    for c in curves:
        ok = np.flatnonzero(np.isfinite(c.y))
        if ok.size < 10 * TILT_BINS:
            continue
        bins = np.array_split(ok, TILT_BINS)
        xs = np.array([float(np.median(b)) for b in bins])
        ys = np.array([float(np.median(c.y[b])) for b in bins])
        slope = float(np.polyfit(xs, ys, 1)[0])
        out.append(math.degrees(math.atan(slope)))
    return out


#: Order of the self-check's statuses when readings of one page compete.
STATUS_RANK = {"failed": 0, "suspect": 1, "ok": 2}


def _check_rank(check: SelfCheck) -> tuple[int, float]:
    """Sort key of a reading's self-check: status first, then score."""
    return STATUS_RANK.get(check.status, 0), float(check.score)


#: bridged rows (gaps of thin traces closed) replace as many unbridged ones when they cover this much more
BRIDGED_MIN_GAIN = 1.1


def prefer_bridged_rows(found: list[Row], bridged: list[Row]) -> bool:
    """Are the rows found with the thin traces' gaps bridged better than those found without? Yes when they are
    more (fewer than two found without), or one more or less covering 30 % more of the page, or as many covering
    :data:`BRIDGED_MIN_GAIN` more with the shortest of them longer (a faint flat lead cut its row in two: a 100-DPI
    generator page's row II-aVL-V2-V5 was found from V2 on, 874 of 1827 px)."""
    spans = [r.x1 - r.x0 for r in found]
    spans_b = [r.x1 - r.x0 for r in bridged]
    if len(found) < 2:
        return len(bridged) > len(found)
    if abs(len(bridged) - len(found)) <= 1 and sum(spans_b) > 1.3 * sum(spans):
        return True
    return len(bridged) == len(found) and sum(spans_b) > BRIDGED_MIN_GAIN * sum(spans) and min(spans_b) > min(spans)


def reading_rank(result: DigitizationResult) -> tuple[int, float]:
    """Sort key of competing readings of one page (higher is better): self-check status, then its score; a
    reading without a self-check (nothing read) ranks lowest."""
    return (-1, 0.0) if result.check is None else _check_rank(result.check)


def _with_residual_tilt_removed(result: DigitizationResult, kwargs: dict[str, Any]) -> DigitizationResult:
    """``result``, or the page read again from its rectified image turned by the rows' common residual tilt when
    that reading's self-check scores higher (see :data:`RESIDUAL_TILT_DEG`)."""
    tilts = row_tilts_deg(result.row_curves)
    if len(tilts) < 2 or result.rectified is None or result.check is None:
        return result
    tilt = float(np.median(tilts))
    if abs(tilt) < RESIDUAL_TILT_DEG or float(np.median(np.abs(np.asarray(tilts) - tilt))) > TILT_AGREEMENT_DEG:
        return result
    h, w = result.rectified.shape[:2]
    M = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), tilt, 1.0)
    paper = tuple(int(v) for v in np.median(result.rectified.reshape(-1, 3), axis=0))
    turned = cv2.warpAffine(result.rectified, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=paper)
    again = _digitize_page(turned, None, **kwargs)
    # rows sloping alike by a degree or more are evidence of a geometry error in themselves: the new reading is
    # kept unless its self-check status is worse
    if again.check is None or _check_rank(again.check)[0] < _check_rank(result.check)[0]:
        return result
    again.warnings.append(f"rows tilted {tilt:.2f} degrees after rectification: read again turned by it")
    again.work_scale = result.work_scale * again.work_scale
    return again


def _digitize_page(image: np.ndarray, trace_prob: np.ndarray | None = None, *, fs: float = 500.0,
                  num_samples: int = 5000, lead_names: list[str] | None = None, paper_speed: float | None = None,
                  gain: float = 10.0, layout: str = "auto", debug: bool = False,
                  trust_grid_period: bool = False, common_row_start: bool = False) -> DigitizationResult:
    """Digitise one ECG page image.

    image: (H, W, 3) uint8 RGB (grayscale, RGBA, 16-bit and float accepted).
    trace_prob: optional (H, W) trace probability in [0, 1] (e.g. from a segmentation net); None uses
      the classical colour/darkness map.
    fs, num_samples, lead_names: the output's sampling rate (Hz), length (samples) and columns.
    paper_speed: mm/s; None reads it from the calibration pulses (10 mm wide: 50 mm/s), else 25.
    gain: nominal mm/mV when no standard calibration pulse is found. layout: "auto" or a template name.
    trust_grid_period: keep the grid period as read even when it implies a page under 120 mm (a crop).
    Returns a :class:`DigitizationResult` whose ``signal`` is (num_samples, len(lead_names)) in mV.
    Never raises for unreadable pages: the signal is NaN and ``warnings`` says why.
    """
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    speed_given = paper_speed is not None
    paper_speed = float(paper_speed) if speed_given else NOMINAL_PAPER_SPEED
    lead_names = list(STANDARD_LEADS if lead_names is None else lead_names)
    fs = float(fs)
    num_samples = int(num_samples)
    warnings: list[str] = []

    def tick(name: str, t0: list[float] = [t_start]) -> None:  # noqa: B006 - local timer state
        now = time.perf_counter()
        timings[name] = round(now - t0[0], 4)
        t0[0] = now

    try:
        prep: PreparedImage = prepare_image(image)
    except (ValueError, TypeError) as exc:
        return _empty(num_samples, lead_names, fs, [f"unreadable image: {exc}"])
    warnings += prep.warnings
    rgb = prep.rgb
    h, w = rgb.shape[:2]
    if min(h, w) < 16:
        return _empty(num_samples, lead_names, fs, warnings + ["image too small to digitise"])
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
            warnings.append(prep.warnings[-1])
            tm = classical_trace_map(rgb)
    warnings += tm.warnings
    sheet = paper_mask(rgb)
    if sheet is not None:
        # photographed page: the sheet's edge and the background beyond it are no trace
        tm.prob = (tm.prob * sheet).astype(np.float32)
        tm.grid = (tm.grid * sheet).astype(np.float32)
        warnings.append(f"paper sheet found ({100.0 * float(sheet.mean()):.0f}% of the image); outside ignored")
    tick("trace_map")
    if float((tm.prob > 0.5).mean()) < 1e-4:
        return _empty(num_samples, lead_names, fs, warnings + ["no trace ink found (blank page?)"],
                      trace_prob=tm.prob, rectified=rgb, work_scale=prep.scale, timings_s=timings)

    # quarter turns: rows must run horizontally
    quarter = 0
    small_p, _ = downscale(tm.prob, 800)
    portrait = rgb.shape[0] >= rgb.shape[1]
    if rows_are_horizontal(small_p) < (TURN_EVIDENCE_PORTRAIT if portrait else TURN_EVIDENCE_LANDSCAPE):
        quarter = 1
        rgb = rot90_image(rgb, 1)
        tm = _rot_tm(tm, 1)
        sheet = rot90_image(sheet, 1) if sheet is not None else None
        warnings.append("page turned by 90 degrees")

    orient, rgb_r, tm_r, _ = _rectify(tm, rgb)
    if trace_prob is None and rgb_r is not rgb and not tm.binarised and orient.source == "grid":
        # (a binarised page keeps its map: resampled, it would no longer look binarised; a page without a grid has
        # no grid lines to remove)
        tm_r = _classical_map_of_rectified(rgb_r, tm_r, orient.homography, sheet, rgb.shape[:2])
    orient.quarter_turns = quarter
    warnings += orient.warnings
    tick("orientation")

    sc = estimate_scale(tm_r.grid)
    if not np.isfinite(sc.px_per_mm_x):
        fallback = scale_from_page_width(rgb_r.shape[1], rgb_r.shape[0])
        fallback.warnings = sc.warnings + fallback.warnings
        sc = fallback
    if not trust_grid_period:
        sc = _plausible_scale(sc, rgb_r.shape[0], rgb_r.shape[1])
    warnings += sc.warnings
    tick("scale")

    def analyse(tm_cur: TraceMap, sc_cur: Scale) -> tuple[list[Row], np.ndarray]:
        ppm = 0.5 * (sc_cur.px_per_mm_x + sc_cur.px_per_mm_y)
        rmap = row_map(tm_cur.prob, ppm)
        found = find_rows(rmap, sc_cur.px_per_mm_y, sc_cur.px_per_mm_x)
        width = tm_cur.prob.shape[1]
        spans = [r.x1 - r.x0 for r in found]
        span = sum(spans)
        short = span < 0.5 * width * max(len(found), 1) or (bool(spans) and min(spans) < 0.6 * max(spans))
        if len(found) < 2 or short:
            # thin, broken traces (scans; anti-aliased 100-DPI lines): pieces too small to keep, so rows are
            # missed or some are cut short (rows of a layout span about the same width): label
            # components with gaps bridged (see prefer_bridged_rows)
            rmap_b = row_map(tm_cur.prob, ppm, bridge=True)
            found_b = find_rows(rmap_b, sc_cur.px_per_mm_y, sc_cur.px_per_mm_x)
            if prefer_bridged_rows(found, found_b):
                return found_b, rmap_b
        return found, rmap

    rows, rmap = analyse(tm_r, sc)
    # 180 degrees: ink (labels, pulses, R waves) should sit above the baselines
    flip, sure = _looks_upside_down(tm_r.prob, rows, sc, paper_speed) if rows else (False, True)
    both_ways = None if sure else _labels_both_ways(tm_r.ink, sc)
    if both_ways is not None and _confident(both_ways[0]) != _confident(both_ways[1]):
        flip = _confident(both_ways[1]) > _confident(both_ways[0])  # the printed labels decide
    if rows and flip:
        rgb_r = rot90_image(rgb_r, 2)
        tm_r = _rot_tm(tm_r, 2)
        orient.quarter_turns = (orient.quarter_turns + 2) % 4
        warnings.append("page turned by 180 degrees")
        rows, rmap = analyse(tm_r, sc)
    tick("rows")
    if not rows:
        return _empty(num_samples, lead_names, fs, warnings + ["no trace rows found: page fits no template"], orientation=orient, scale=sc,
                      rectified=rgb_r, trace_prob=tm_r.prob, work_scale=prep.scale, timings_s=timings)

    # vectorise each row band
    ppx, ppy = sc.px_per_mm_x, sc.px_per_mm_y
    curves: list[TraceCurve] = []
    pulses: list[Pulse] = []
    pulse_of_row: dict[int, Pulse] = {}
    # (labels already read both ways for the turn are not read again)
    labels = both_ways[int(flip)] if both_ways is not None else _read_labels(tm_r, sc, warnings)
    if labels:
        tm_r = replace(tm_r, prob=erase_label_glyphs(tm_r.prob, labels))
    tick("labels")
    curves = trace_rows(tm_r.prob, [(r.y0, r.y1, r.x0, r.x1, r.baseline_y) for r in rows])
    if drop_foreign_stretches(curves, [r.baseline_y for r in rows], ppx):
        warnings.append("stretches of rows traced on a neighbouring row's line were left out")
    for i, (r, c) in enumerate(zip(rows, curves)):
        p = find_pulse(c.y, c.x0, r.baseline_y, i, ppx, ppy, paper_speed)
        if p is None:
            # a segmentation net may leave the pulses out, and a row may be found starting after its pulse
            # (a wide lead label between them): look for them in the image's ink left of the row
            xa = int(max(0, r.x0 - (0.2 * paper_speed + 12.0) * ppx))
            ink_p = np.clip((tm_r.ink - 0.3) / 0.2, 0.0, 1.0)
            ci = trace_band(ink_p, r.y0, r.y1, xa, r.x0 + 2, r.baseline_y)
            ok_i = np.flatnonzero(np.isfinite(ci.y))
            if ok_i.size:
                p = find_pulse(ci.y[ok_i[0]:], ci.x0 + int(ok_i[0]), r.baseline_y, i, ppx, ppy, paper_speed)
                if p is not None:
                    p.trace_start_x = float(c.x0 + np.argmax(np.isfinite(c.y)))
        if p is not None:
            pulses.append(p)
            pulse_of_row[i] = p
    tick("vectorise")

    corrected = _grid_scale_from_pulses(sc, pulses, len(rows))
    if corrected is not None:
        sc = corrected
        ppx, ppy = sc.px_per_mm_x, sc.px_per_mm_y
        warnings.append(sc.warnings[-1])

    # paper speed: a calibration pulse lasts 0.2 s, so 10 mm wide pulses on a measured grid or a page of a
    # standard size (pulse heights of a standard gain confirm the scale) mean 50 mm/s
    if not speed_given and sc.source in ("grid", "dpi", "pulse") and len(pulses) >= max(1, len(rows) // 2):
        w_mm = float(np.median([(p.x1 - p.x0) / ppx for p in pulses]))
        h_mm = float(np.median([p.height_px / ppy for p in pulses]))
        standard_height = standard_gain(h_mm, 0.15) is not None  # the scale is right
        if standard_height and abs(w_mm - 0.2 * 50.0) <= 0.2 * 0.2 * 50.0:
            paper_speed = 50.0
            warnings.append(f"calibration pulses {w_mm:.1f} mm wide: paper speed 50 mm/s")
    # scale fallback from the pulses when the grid gave nothing
    if sc.source == "dpi" and len(pulses) >= 2:
        hmm = float(np.median([p.height_px for p in pulses]))
        wmm = float(np.median([p.x1 - p.x0 for p in pulses]))
        sy = hmm / gain
        sx = wmm / (0.2 * paper_speed)
        # pulses of a standard height on the page-size scale (a 5 or 20 mm/mV page) confirm that scale when they
        # agree with it within their precision, else (a cropped scan, another sheet) they give it
        g_std = standard_gain(hmm / ppy, 0.1)
        if g_std is not None and abs(hmm / g_std / ppy - 1.0) <= PULSE_SCALE_TOLERANCE:
            sc = Scale(ppx, ppy, "pulse", confidence=0.5, warnings=["page-size scale confirmed by the calibration pulses"])
            warnings.append("page-size scale confirmed by the calibration pulses")
        elif g_std is not None:
            ppx = ppy = hmm / g_std
            msg = (f"scale from the calibration pulses ({g_std:g} mm/mV; the page size implied "
                   f"{sc.px_per_mm_y:.3f} px/mm)")
            sc = Scale(ppx, ppy, "pulse", confidence=0.5, warnings=[msg])
            warnings.append(msg)
        elif 0.5 < sx / sy < 2.0:
            sx = sy  # pulse heights are measured more precisely than widths; pixels are square
            sc = Scale(sx, sy, "pulse", confidence=0.5, warnings=["scale from the calibration pulses"])
            warnings.append("scale from the calibration pulses")
            ppx, ppy = sc.px_per_mm_x, sc.px_per_mm_y
    calib = amplitude_calibration(pulses, ppy, gain)
    warnings += calib.warnings

    # row timing and layout
    px_per_s = paper_speed * ppx
    timings_rows: list[asm.RowTiming] = []
    durations: list[float] = []
    evidence: list[list[float]] = []
    base_pred = _baselines_from_pulses(rows, pulse_of_row, ppy)
    _consistent_trace_starts(pulse_of_row, tol_px=max(1.5, 0.01 * px_per_s))
    start_pred = trace_starts_from_pulses(rows, curves, pulse_of_row, tol_px=max(1.5, 0.01 * px_per_s),
                                          max_shift_px=PULSE_WIDTH_MAX_S * px_per_s)
    if common_row_start:
        start_pred = common_trace_starts(rows, curves, pulse_of_row, start_pred,
                                         max_shift_px=ROW_START_MAX_SPREAD_S * px_per_s)
    for i, (r, c) in enumerate(zip(rows, curves)):
        p = pulse_of_row.get(i)
        ok = np.flatnonzero(np.isfinite(c.y))
        half = c.half_width_px
        if p is not None:
            x_t0, base_y = p.trace_start_x + half, p.base_y
        else:
            x_t0 = start_pred.get(i, float(c.x0 + ok[0]) if ok.size else float(r.x0) - half) + half
            base_y = base_pred.get(i, _curve_mode(c, r.baseline_y, ppy))
        row_pps = paper_speed * row_px_per_mm_x(tm_r.grid, r, rows, ppx) if sc.source == "grid" else px_per_s
        rt = asm.row_timing(c, x_t0, row_pps, base_y, calib.mv_per_px, fs,
                            trust_scale=sc.source == "grid" and sc.confidence >= 0.5)
        timings_rows.append(rt)
        durations.append(rt.duration_s)
        x_end = x_t0 + rt.duration_s * rt.px_per_s
        evidence.append(boundary_evidence(tm_r.ink, r, x_t0, x_end, ppx, ppy))

    keep = _rows_without_edge_text(rows, durations, evidence, set(pulse_of_row))
    if len(keep) < len(rows):
        dropped = [i for i in range(len(rows)) if i not in keep]
        warnings.append(f"short edge rows {dropped} ignored (text, not traces)")
        rows = [rows[i] for i in keep]
        curves = [curves[i] for i in keep]
        timings_rows = [timings_rows[i] for i in keep]
        durations = [durations[i] for i in keep]
        evidence = [evidence[i] for i in keep]
    asm.align_row_starts(timings_rows, max(1.5, 0.01 * px_per_s))
    extras = {lead_key(n) for n in FIFTEEN_LEAD_EXTRAS}
    templates = TEMPLATES + (LABELLED_TEMPLATES if layout in LABELLED_TEMPLATES
                             or any(lead_key(lab.name) in extras for lab in labels) else ())
    name, cost, costs = fit_layout(rows, durations, evidence, templates=templates)
    lay_warn: list[str] = []
    forced = None
    if layout != "auto":
        if layout not in costs:
            lay_warn.append(f"unknown layout {layout!r}; using the detected {name}")
        else:
            forced = layout
    spacing = float(np.median(np.diff([r.baseline_y for r in rows]))) if len(rows) >= 2 else 30.0 * ppy
    labels_per_row = labels_by_row(labels, [r.baseline_y for r in rows], spacing)
    spans = [RowSpan(rt.x_t0, rt.px_per_s, rt.duration_s, rt.base_y) for rt in timings_rows]
    name, cost, combined, boxes, id_warn, label_ev = choose_layout(costs, rows, spans, labels_per_row, ppx, forced)
    lay_warn += id_warn
    trows = template_rows(name)
    fits = len(trows) == len(rows) and cost < 0.75
    if not fits:
        lay_warn.append(f"page fits no template well (best {name}, cost {cost:.2f}, {len(rows)} rows)")
    lay = Layout(name, float(cost), bool(fits), rows, max((len(t) for t in trows), default=0), boxes, combined,
                 evidence, lay_warn, [_label_dict(lab) for lab in labels], [e.to_dict() for e in label_ev])
    warnings += lay_warn
    tick("layout")

    # column-separator ticks: subtract visible ones and re-trace around them; blank the columns only
    # where no tick was recognised (the old fallback); leave ticks hidden inside a stroke to the trace
    seps = [(b.row, b.x0, timings_rows[b.row].base_y) for b in boxes if b.column > 0 and b.row < len(timings_rows)]
    ticks = find_ticks(tm_r.prob, seps, ppx, ppy)
    row_spans = [(r.y0, r.y1, r.x0, r.x1, r.baseline_y) for r in rows]
    window = int(round(0.2 * px_per_s))
    prob_nt = tm_r.prob
    if any(not t.hidden for t in ticks):
        prob_nt = subtract_ticks(tm_r.prob, ticks)
        retrace_near_ticks(prob_nt, curves, row_spans, ticks, window_px=window)
    # boundaries without a visible tick: re-trace so each lead keeps its own ink
    visible = {(t.row, t.boundary_x) for t in ticks if not t.hidden}
    reach = 2.0 * float(np.median([c.line_width_px or c.thickness_px for c in curves])) + 2.0
    zones = [BoundaryZone(row, x, x - reach, x + reach) for row, x, _ in seps if (row, x) not in visible]
    retrace_boundaries(prob_nt, curves, row_spans, zones, window_px=window)
    handled = {(t.row, t.boundary_x) for t in ticks}
    for i, rt in enumerate(timings_rows):
        inner = [b.x0 for b in boxes if b.row == i and b.column > 0 and (i, b.x0) not in handled]
        if inner:
            asm.remove_separators(curves[i], inner, rt.base_y, ppx, ppy)
    traces = [asm.sample_lead(curves[b.row], b, timings_rows[b.row], fs, num_samples) for b in boxes]
    retimed = retime_columns(traces, fs)
    if retimed:
        warnings.append(retimed)
    traces = _assign_rhythm(traces)
    signal = asm.place(traces, lead_names, num_samples)
    unknown = [n for n in lead_names if lead_index(n) is None]
    if unknown:
        warnings.append(f"unknown lead names (left NaN): {unknown}")
    tick("assemble")

    check = page_check(signal, lead_names, fs, traces, lay, sc)
    tick("self_check")

    cov = float(np.mean([c.coverage for c in curves])) if curves else 0.0
    conf = {"grid": 1.0, "pulse": 0.7, "dpi": 0.35}.get(sc.source, 0.3)
    conf *= 1.0 if fits else 0.5
    conf *= float(np.clip(cov, 0.0, 1.0))
    conf *= 0.5 + 0.5 * max(orient.confidence, 0.0) if orient.source == "grid" else 0.8
    timings["total"] = round(time.perf_counter() - t_start, 4)
    result = DigitizationResult(signal, lead_names, fs, orient, sc, lay, traces, curves, timings_rows, calib,
                                warnings, float(np.clip(conf, 0.0, 1.0)), rgb_r, tm_r.prob if debug else None,
                                prep.scale, timings)
    result.check = check
    if debug:
        result.debug = {"row_map": rmap, "grid": tm_r.grid, "ink": tm_r.ink}
    return result


def page_check(signal: np.ndarray, lead_names: list[str], fs: float, traces: list[asm.LeadTrace],
               layout: Layout | None, scale: Scale | None) -> SelfCheck:
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
            strip[t.start_sample:end] = t.values_mv[:end - t.start_sample]
            rhythm.setdefault(t.name, strip)
    try:
        check = check_signal(signal, lead_names, fs, rhythm=rhythm or None)
    except Exception as exc:  # noqa: BLE001 - a check that cannot run must not lose the page's signal
        log.exception("self-check failed")
        check = SelfCheck("suspect", [f"the self-check could not run ({type(exc).__name__}: {exc})"], [], 0.0)
    extra: list[str] = []
    if layout is not None and not layout.fits:
        extra.append(f"the rows fit no layout template (best {layout.name}, cost {layout.cost:.2f}, "
                     f"{len(layout.rows)} rows)")
    if scale is not None and scale.source == "dpi":
        extra.append("the scale was assumed from the page size (no grid period, no calibration pulse)")
    if extra:
        check.reasons = check.reasons + extra
        if check.status == "ok":
            check.status = "suspect"
    return check


def _read_labels(tm: TraceMap, sc: Scale, warnings: list[str]) -> list[LabelRead]:
    """The lead labels printed on the rectified page (:mod:`lead_labels`); [] (with a warning) when reading fails."""
    try:
        return read_lead_labels(tm.ink, 0.5 * (sc.px_per_mm_x + sc.px_per_mm_y))
    except Exception as exc:  # noqa: BLE001 - labels are evidence; the templates decide without them
        log.exception("lead label reading failed")
        warnings.append(f"lead labels not read ({type(exc).__name__}: {exc})")
        return []


def _label_dict(lab: LabelRead) -> dict[str, Any]:
    return {"name": lab.name, "score": round(float(lab.score), 3),
            "box": [round(float(v), 1) for v in (lab.x0, lab.y0, lab.x1, lab.y1)]}


def erase_label_glyphs(prob: np.ndarray, labels: list[LabelRead], margin_px: float = 2.0) -> np.ndarray:
    """``prob`` (H, W) without the ink of the printed labels: connected pieces of ink (above 0.5) that lie wholly
    inside a label's box (grown by ``margin_px``); a trace passing through the box reaches its border and stays.
    Labels never enter a lead's signal (ecg-image-kit prints them just below the baseline after each column's
    start, where the tracker followed them)."""
    out = prob.copy()
    H, W = prob.shape
    for lab in labels:
        x0, y0 = max(0, int(lab.x0 - margin_px)), max(0, int(lab.y0 - margin_px))
        x1, y1 = min(W, int(np.ceil(lab.x1 + margin_px)) + 1), min(H, int(np.ceil(lab.y1 + margin_px)) + 1)
        if x1 - x0 < 3 or y1 - y0 < 3:
            continue
        sub = (out[y0:y1, x0:x1] > 0.5).astype(np.uint8)
        n, lab_img = cv2.connectedComponents(sub, connectivity=8)
        if n <= 1:
            continue
        edge = np.unique(np.r_[lab_img[0], lab_img[-1], lab_img[:, 0], lab_img[:, -1]])
        inner = np.isin(lab_img, edge, invert=True) & (lab_img > 0)
        out[y0:y1, x0:x1][inner] = 0.0
    return out


#: A row's own grid period (x, in its band) replaces the page's when it differs by more than this fraction and
#: at most :data:`ROW_SCALE_MAX_DEVIATION`: a photographed or curved page keeps a keystone or bulge after
#: rectification, and rows printed at the same time then drift apart across the row (on a flat page the local
#: and page periods agree within 0.1-0.2 %).
ROW_SCALE_MIN_DEVIATION = 0.004
ROW_SCALE_MAX_DEVIATION = 0.08


def row_px_per_mm_x(grid: np.ndarray, row: Row, rows: list[Row], page_px_per_mm_x: float) -> float:
    """Pixels per mm along x of the grid in ``row``'s band (halfway to its neighbours, its traced x extent), or
    ``page_px_per_mm_x`` when the band's period is unsure or agrees with it (see :data:`ROW_SCALE_MIN_DEVIATION`)."""
    bases = sorted(r.baseline_y for r in rows)
    spacing = float(np.median(np.diff(bases))) if len(bases) >= 2 else 20.0 * page_px_per_mm_x
    y0 = int(max(0, row.baseline_y - 0.5 * spacing))
    y1 = int(min(grid.shape[0], row.baseline_y + 0.5 * spacing))
    if y1 - y0 < 10 or row.x1 - row.x0 < 100:
        return page_px_per_mm_x
    local = estimate_scale(grid, region=(int(row.x0), y0, int(row.x1), y1))
    if not np.isfinite(local.px_per_mm_x) or local.confidence < 0.5:
        return page_px_per_mm_x
    dev = abs(local.px_per_mm_x / page_px_per_mm_x - 1.0)
    return float(local.px_per_mm_x) if ROW_SCALE_MIN_DEVIATION < dev <= ROW_SCALE_MAX_DEVIATION else page_px_per_mm_x


def _grid_scale_from_pulses(sc: Scale, pulses: list[Pulse], n_rows: int) -> Scale | None:
    """The grid's scale corrected by the calibration pulses, or None when they confirm it or cannot tell.

    A grid period read at a wrong harmonic (photographed pages: 5/6 of the true period, 6 minor periods taken
    for one 5 mm major one) makes every pulse the same non-standard height. Pulses on at least half the rows
    (two or more) whose heights agree within :data:`PULSE_AGREEMENT`, that are no standard gain on the grid's
    scale (beyond 8 %) but within :data:`GRID_PULSE_MISMATCH` of one, give the y scale; x follows where the
    grid read both axes within 5 % of each other (one error in both), else it keeps the grid's x period."""
    if sc.source != "grid" or len(pulses) < max(2, n_rows // 2):
        return None
    heights = np.array([p.height_px for p in pulses], np.float64)
    h_mm = float(np.median(heights)) / sc.px_per_mm_y
    g_near = standard_gain(h_mm, GRID_PULSE_MISMATCH)
    if (g_near is None or standard_gain(h_mm, 0.08) is not None
            or float(np.ptp(heights) / np.median(heights)) > PULSE_AGREEMENT):
        return None
    f = h_mm / g_near
    same = abs(sc.px_per_mm_x / sc.px_per_mm_y - 1.0) <= 0.05
    ppx, ppy = sc.px_per_mm_x * (f if same else 1.0), sc.px_per_mm_y * f
    msg = (f"calibration pulses {h_mm:.2f} mm tall on the grid's scale: scale from the pulses ({g_near:g} mm/mV), "
           f"{ppx:.3f}/{ppy:.3f} px/mm")
    return Scale(ppx, ppy, "pulse", period_px=dict(sc.period_px), confidence=0.5, warnings=sc.warnings + [msg])


def _rows_without_edge_text(rows: list[Row], durations: list[float], evidence: list[list[float]],
                            pulse_rows: set[int], short: float = 0.6, gain: float = 0.1,
                            very_short: float = 0.2) -> list[int]:
    """Indices of the rows to keep: the first and/or last row is dropped when it is short (a traced
    span under ``short`` times the longest row, no calibration pulse) and off the regular spacing of
    the other rows (by more than 15 %), as header or footer text is, or very short (under ``very_short``
    times the longest row: a sliver of background at a photo's edge can sit on the spacing), and the
    remaining rows fit a layout template better by at least ``gain`` in cost."""
    n = len(rows)
    if n < 3 or not durations:
        return list(range(n))
    dmax = max(durations)

    bases = [r.baseline_y for r in rows]

    def droppable(i: int) -> bool:
        # text lines sit off the rows' regular spacing; a short trace row (cut, faint) does not
        inner = bases[1:-1] if n >= 4 else bases[1:] if i == 0 else bases[:-1]
        spacing = float(np.median(np.diff(inner))) if len(inner) >= 2 else 0.0
        gap = abs(bases[1] - bases[0]) if i == 0 else abs(bases[-1] - bases[-2])
        off_grid = spacing <= 0 or abs(gap - spacing) > 0.15 * spacing
        return i not in pulse_rows and durations[i] < short * dmax and (off_grid or durations[i] < very_short * dmax)

    def cost_of(idx: list[int]) -> float:
        return fit_layout([rows[i] for i in idx], [durations[i] for i in idx], [evidence[i] for i in idx])[1]

    best, best_cost = list(range(n)), cost_of(list(range(n)))
    for drop in ({0}, {n - 1}, {0, n - 1}):
        if not all(droppable(i) for i in drop):
            continue
        idx = [i for i in range(n) if i not in drop]
        c = cost_of(idx)
        if c + gain < best_cost:
            best, best_cost = idx, c
    return best


#: start of the scale warning of :func:`_plausible_scale` (the page is then also read with the period as read)
SUB_HARMONIC_NOTE = "grid period implies a"


def _plausible_scale(sc: Scale, h: int, w: int, min_mm: float = 120.0) -> Scale:
    """Guard against a grid period locked onto an alias (e.g. a subsampled minor grid): when the page's
    long side would be shorter than ``min_mm``, the sub-harmonic (period / k, k = 2..5) closest to a
    letter-size page is used instead (within 35 %), with low confidence."""
    if sc.source != "grid" or not np.isfinite(sc.px_per_mm_x):
        return sc
    long_side = float(max(h, w))
    if long_side / max(sc.px_per_mm_x, 1e-9) >= min_mm:
        return sc
    ref = scale_from_page_width(w, h).px_per_mm_x
    best = min(range(2, 6), key=lambda k: abs(math.log(sc.px_per_mm_x / k / ref)))
    if abs(math.log(sc.px_per_mm_x / best / ref)) > math.log(1.35):
        return sc
    msg = f"{SUB_HARMONIC_NOTE} {long_side / sc.px_per_mm_x:.0f} mm page; using 1/{best} of it"
    log.debug(msg)
    return Scale(sc.px_per_mm_x / best, sc.px_per_mm_y / best, "grid", {k: v / best for k, v in sc.period_px.items()},
                 0.3, sc.warnings + [msg])


def _curve_mode(curve: TraceCurve, fallback: float, px_per_mm_y: float) -> float:
    """Isoelectric level (pixels) of a traced row: the most frequent curve height (0.25 px bins,
    smoothed over ~0.3 mm), if within 4 mm of ``fallback`` (the row-profile baseline)."""
    y = curve.y[np.isfinite(curve.y)]
    if y.size < 50:
        return fallback
    lo = float(y.min())
    bins = np.floor((y - lo) / 0.25).astype(np.int64)
    hist = np.bincount(bins).astype(np.float64)
    k = max(1, int(round(0.3 * px_per_mm_y / 0.25)))
    sm = np.convolve(hist, np.ones(k) / k, mode="same")
    mode = lo + (int(np.argmax(sm)) + 0.5) * 0.25
    near = np.abs(y - mode) <= 0.15 * px_per_mm_y + 0.5
    if near.sum() >= 10:
        mode = float(np.median(y[near]))
    return mode if abs(mode - fallback) <= 4.0 * px_per_mm_y else fallback


def _consistent_trace_starts(pulse_of_row: dict[int, Pulse], tol_px: float) -> None:
    """Rows of a standard layout start at one x: where at least two pulses' trace starts agree (within
    ``tol_px`` of their median), a pulse whose trace start is off by more while its falling edge lies
    with the others' (within 2 ``tol_px``) had its first ink missed or a speck taken; it gets the
    common start (in place)."""
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
        if i not in agree and abs(p.x1 - edge) <= 2.0 * tol_px:
            p.trace_start_x = common


#: Longest calibration pulse (s): a row's first ink this close to the start its neighbours' pulses give is the same
#: start with the pulse's ink missed (the signal starts late) or an unrecognised pulse taken for signal (early).
PULSE_WIDTH_MAX_S = 0.5


def trace_starts_from_pulses(rows: list[Row], curves: list[TraceCurve], pulse_of_row: dict[int, Pulse],
                             tol_px: float, max_shift_px: float) -> dict[int, float]:
    """Trace starts (x, pixels) of rows without a pulse, from the rows with one: the rows of a printed page start at
    one time, so where at least two pulses' trace starts lie on a line in the rows' heights (within ``tol_px``; a
    straight line allows for a keystone), a row whose first ink lies within ``max_shift_px`` of that line starts on
    it. {} where the pulses disagree or no row lacks one."""
    idx = sorted(pulse_of_row)
    if len(idx) < 2 or len(idx) == len(rows):
        return {}
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
        ok = np.flatnonzero(np.isfinite(c.y))
        pred = float(a + b * r.baseline_y)
        if ok.size and abs(float(c.x0 + ok[0]) - pred) <= max_shift_px:
            out[i] = pred
    return out


#: Rows whose starts (trace start of the row's time axis) spread more than the tolerance of
#: :func:`trace_starts_from_pulses` but at most this many seconds are also read from their common start (their
#: median), and the self-check chooses (a real scan: row II's first ink 36 ms after rows I and III's, Einthoven's
#: residual 0.82 as read).
ROW_START_MAX_SPREAD_S = 0.1


def row_starts_disagree(timings: list[asm.RowTiming]) -> bool:
    """Do the rows' time axes start at slightly different x (more than 1 % of a second or 1.5 px, at most
    :data:`ROW_START_MAX_SPREAD_S`)?"""
    if len(timings) < 2:
        return False
    x0 = np.array([t.x_t0 for t in timings], np.float64)
    pps = float(np.median([t.px_per_s for t in timings]))
    spread = float(np.ptp(x0))
    return max(1.5, 0.01 * pps) < spread <= ROW_START_MAX_SPREAD_S * pps


def common_trace_starts(rows: list[Row], curves: list[TraceCurve], pulse_of_row: dict[int, Pulse],
                        start_pred: dict[int, float], max_shift_px: float) -> dict[int, float]:
    """``start_pred`` with every other row without a pulse started at the rows' median start (pulse trace starts,
    predicted starts and first ink) where its first ink lies within ``max_shift_px`` of it."""
    starts: dict[int, float] = {}
    for i, c in enumerate(curves):
        ok = np.flatnonzero(np.isfinite(c.y))
        if i in pulse_of_row:
            starts[i] = pulse_of_row[i].trace_start_x
        elif i in start_pred:
            starts[i] = start_pred[i]
        elif ok.size:
            starts[i] = float(c.x0 + ok[0])
    if len(starts) < 2:
        return start_pred
    common = float(np.median(list(starts.values())))
    out = dict(start_pred)
    for i, x in starts.items():
        if i not in pulse_of_row and i not in start_pred and abs(x - common) <= max_shift_px:
            out[i] = common
    return out


def _baselines_from_pulses(rows: list[Row], pulse_of_row: dict[int, Pulse], px_per_mm_y: float) -> dict[int, float]:
    """Baselines (pixels) of rows without a pulse, predicted from the pulse feet of the other rows
    when those lie on an evenly spaced line (base = a + b * row, residual < 0.3 mm) and the prediction
    is within 3 mm of the row's own profile baseline; {} when that does not hold."""
    idx = sorted(pulse_of_row)
    if len(idx) < 2 or len(idx) == len(rows):
        return {}
    ii = np.array(idx, np.float64)
    bb = np.array([pulse_of_row[i].base_y for i in idx])
    b, a = np.polyfit(ii, bb, 1)
    if len(idx) >= 3 and np.max(np.abs(a + b * ii - bb)) > 0.3 * px_per_mm_y:
        return {}
    if len(idx) == 2:
        # two rows only: their own spacing must match the rows' spacing
        own = np.array([r.baseline_y for r in rows])
        if np.max(np.abs(own[idx] - bb)) > 3.0 * px_per_mm_y:
            return {}
    out: dict[int, float] = {}
    for i, r in enumerate(rows):
        if i in pulse_of_row:
            continue
        pred = float(a + b * i)
        if abs(pred - r.baseline_y) <= 3.0 * px_per_mm_y:
            out[i] = pred
    return out


def _assign_rhythm(traces: list[asm.LeadTrace]) -> list[asm.LeadTrace]:
    """Rename rhythm strips by correlation with the short segments of the same time window when a
    different lead matches clearly better than the template's default."""
    short = [t for t in traces if not t.box.rhythm]
    used: set[str] = set()
    for t in traces:
        if not t.box.rhythm or t.values_mv.size == 0 or t.box.named_by_label:
            used.add(t.name)
            continue
        best_name, best_r, default_r = t.name, -1.0, -1.0
        for s in short:
            if s.values_mv.size < 20:
                continue
            a = s.start_sample - t.start_sample
            if a < 0 or a + s.values_mv.size > t.values_mv.size:
                continue
            u = t.values_mv[a:a + s.values_mv.size]
            v = s.values_mv
            ok = np.isfinite(u) & np.isfinite(v)
            if ok.sum() < 20 or np.std(u[ok]) < 1e-6 or np.std(v[ok]) < 1e-6:
                continue
            r = float(np.corrcoef(u[ok], v[ok])[0, 1])
            if s.name == t.name:
                default_r = r
            if r > best_r and s.name not in used:
                best_name, best_r = s.name, r
        if best_name != t.name and best_r > 0.9 and best_r > default_r + 0.1:
            log.debug("rhythm strip %s re-assigned to %s (r=%.2f vs %.2f)", t.name, best_name, best_r, default_r)
            t.name = best_name
            t.box.name = best_name
        used.add(t.name)
    return traces
