"""One call from a page image (and optional trace probability map) to per-lead signals.

:func:`digitize_page` reads the page once (:func:`_digitize_page`: the stages of :mod:`ecgdigitize.stages` in
order, each result kept in :class:`DigitizationResult`) and, where that reading leaves a doubt, again under the
other hypothesis, keeping the reading its self-check ranks higher (:func:`reading_rank`). Thresholds come from
one :class:`~ecgdigitize.params.DigitizerParams` (``params=``).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from ecgvocab import STANDARD_LEADS

from . import assemble as asm
from .calibration import Calibration
from .layout import Layout
from .orientation import Orientation
from .params import DEFAULT_PARAMS, DigitizerParams
from .scale import Scale
from .selfcheck import SelfCheck
from .stages import (
    NOMINAL_PAPER_SPEED,
    SUB_HARMONIC_NOTE,
    NoReading,
    ReadingOptions,
    _consistent_trace_starts,
    _grid_scale_from_pulses,
    _rows_without_edge_text,
    assemble_signal,
    calibrate_page,
    common_trace_starts,
    erase_label_glyphs,
    find_upright_rows,
    fit_rows_layout,
    make_trace_map,
    measure_scale,
    orient_page,
    page_check,
    prefer_bridged_rows,
    prepare_page,
    pulses_in_lead_boxes,
    read_labels,
    reading_confidence,
    row_px_per_mm_x,
    row_starts_disagree,
    time_rows,
    trace_starts_from_pulses,
    vectorise_rows,
)
from .vectorise import TraceCurve

__all__ = [
    "DigitizationResult",
    "digitize_page",
    "reading_rank",
    "row_tilts_deg",
    "STATUS_RANK",
    "DigitizerParams",
    # the stages' helpers, importable from here as before
    "SUB_HARMONIC_NOTE",
    "_consistent_trace_starts",
    "_grid_scale_from_pulses",
    "_rows_without_edge_text",
    "common_trace_starts",
    "erase_label_glyphs",
    "page_check",
    "prefer_bridged_rows",
    "row_px_per_mm_x",
    "row_starts_disagree",
    "trace_starts_from_pulses",
]

log = logging.getLogger(__name__)


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
    return DigitizationResult(
        np.full((num_samples, len(lead_names)), np.nan), list(lead_names), fs, warnings=warnings, confidence=0.0, **kw
    )


def digitize_page(image: np.ndarray, trace_prob: np.ndarray | None = None, **kwargs: Any) -> DigitizationResult:
    """Digitise one ECG page image (see :func:`_digitize_page` for the arguments); never raises for a bad
    page: unexpected failures give an all-NaN signal and a warning.

    The page is read once; each doubt that reading leaves makes it be read again under the other hypothesis, and
    the reading the self-check ranks higher is kept: a grid period divided down to a sub-harmonic (the page may be
    a crop) is also kept as read; rows whose starts disagree slightly on a page not 'ok' are also read from their
    common start; rows timed on scales of their own on a page not 'ok' are also timed on the page's grid scale;
    rows of a classical reading still sloping alike are read again turned by their tilt."""
    try:
        params = kwargs.get("params", DEFAULT_PARAMS)
        result = _digitize_page(image, trace_prob, **kwargs)
        flags: dict[str, Any] = {}
        if _grid_period_divided(result):
            as_read = _digitize_page(image, trace_prob, trust_grid_period=True, **kwargs)
            if reading_rank(as_read) > reading_rank(result):
                as_read.warnings.append(
                    f"grid period kept as read ({as_read.scale.px_per_mm_x:.2f} px/mm): the "
                    "self-check prefers it to a sub-harmonic (the image shows part of a page)"
                )
                result, flags = as_read, {"trust_grid_period": True}
        if result.check is not None and result.check.status != "ok" and row_starts_disagree(result.row_timings, params):
            # rows print from one time on: their common start is the other hypothesis
            common = _digitize_page(image, trace_prob, common_row_start=True, **flags, **kwargs)
            if reading_rank(common) > reading_rank(result):
                common.warnings.append(
                    "rows read from their common start: the self-check prefers it to each row's first ink"
                )
                result, flags = common, {**flags, "common_row_start": True}
        if result.check is not None and result.check.status != "ok" and rows_scaled_apart(result.row_timings):
            # a row's own scale comes from its grid band, which text or a fold can disturb: the page's is the other
            page_scale = _digitize_page(image, trace_prob, page_scale_rows=True, **flags, **kwargs)
            if reading_rank(page_scale) > reading_rank(result):
                page_scale.warnings.append(
                    "rows timed on the page's grid scale: the self-check prefers it to the rows' own scales"
                )
                result = page_scale
        if trace_prob is None:
            result = _with_residual_tilt_removed(result, kwargs)
        return result
    except Exception as exc:  # noqa: BLE001 - a page must never crash the caller
        log.exception("digitisation failed")
        names = list(kwargs.get("lead_names") or STANDARD_LEADS)
        return _empty(
            int(kwargs.get("num_samples", 5000)),
            names,
            float(kwargs.get("fs", 500.0)),
            [f"digitisation failed: {type(exc).__name__}: {exc}"],
        )


class _StageClock:
    """Seconds spent per stage (``timings``), each ``tick`` closing the stage named."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.start = self.last = time.perf_counter()

    def tick(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self.last, 4)
        self.last = now

    def total(self) -> dict[str, float]:
        self.timings["total"] = round(time.perf_counter() - self.start, 4)
        return self.timings


def _digitize_page(
    image: np.ndarray,
    trace_prob: np.ndarray | None = None,
    *,
    fs: float = 500.0,
    num_samples: int = 5000,
    lead_names: list[str] | None = None,
    paper_speed: float | None = None,
    gain: float = 10.0,
    layout: str = "auto",
    debug: bool = False,
    trust_grid_period: bool = False,
    common_row_start: bool = False,
    page_scale_rows: bool = False,
    params: DigitizerParams = DEFAULT_PARAMS,
) -> DigitizationResult:
    """Digitise one ECG page image: the stages of :mod:`ecgdigitize.stages`, in order.

    image: (H, W, 3) uint8 RGB (grayscale, RGBA, 16-bit and float accepted).
    trace_prob: optional (H, W) trace probability in [0, 1] (e.g. from a segmentation net); None uses
      the classical colour/darkness map.
    fs, num_samples, lead_names: the output's sampling rate (Hz), length (samples) and columns.
    paper_speed: mm/s; None reads it from the calibration pulses (10 mm wide: 50 mm/s), else 25.
    gain: nominal mm/mV when no standard calibration pulse is found. layout: "auto" or a template name.
    trust_grid_period: keep the grid period as read even when it implies a page under 120 mm (a crop).
    common_row_start: start rows without a pulse of their own at the rows' common start.
    page_scale_rows: time every row on the page's grid scale (no row's own scale from its grid band).
    params: the thresholds (:class:`~ecgdigitize.params.DigitizerParams`).
    Returns a :class:`DigitizationResult` whose ``signal`` is (num_samples, len(lead_names)) in mV.
    Never raises for unreadable pages: the signal is NaN and ``warnings`` says why.
    """
    opts = ReadingOptions(
        float(fs),
        int(num_samples),
        list(STANDARD_LEADS if lead_names is None else lead_names),
        NOMINAL_PAPER_SPEED if paper_speed is None else float(paper_speed),
        paper_speed is not None,
        gain,
        layout,
        trust_grid_period,
        common_row_start,
        page_scale_rows,
    )
    P, notes, clock = params, [], _StageClock()
    try:
        prep = prepare_page(image, P, notes)
        page = make_trace_map(prep, trace_prob, P, notes)
        clock.tick("trace_map")
        geometry = orient_page(page, P, notes)
        clock.tick("orientation")
        scale = measure_scale(geometry, opts.trust_grid_period, P, notes)
        clock.tick("scale")
        found = find_upright_rows(geometry, scale, opts.paper_speed, P, notes)
        clock.tick("rows")
        labels = read_labels(found, scale, P, notes)
        clock.tick("labels")
        traces = vectorise_rows(found.rows, labels.trace_map, scale, opts.paper_speed, P, notes)
        clock.tick("vectorise")
        mark = len(notes)
        cal = calibrate_page(traces, len(found.rows), scale, opts, P, notes)
        timed = time_rows(found.rows, traces, cal, labels.trace_map, opts, P)
        laid = fit_rows_layout(found.rows, traces, timed, labels.labels, cal, opts, P, notes)
        if pulses_in_lead_boxes(found.rows, traces, laid, cal.scale.px_per_mm_x):
            # a part of a page starting left of the image: what looked like its pulses is signal; read it again
            del notes[mark:]
            notes.append("the pulses found lie inside the lead boxes of a part of a page: signal, not calibration")
            traces = replace(traces, pulses=[], pulse_of_row={})
            cal = calibrate_page(traces, len(found.rows), scale, opts, P, notes)
            timed = time_rows(found.rows, traces, cal, labels.trace_map, opts, P)
            laid = fit_rows_layout(found.rows, traces, timed, labels.labels, cal, opts, P, notes)
        clock.tick("layout")
        out = assemble_signal(laid, labels.trace_map.prob, cal, opts, P, notes)
        clock.tick("assemble")
        check = page_check(out.signal, opts.lead_names, opts.fs, out.traces, laid.layout, cal.scale)
        clock.tick("self_check")
    except NoReading as stop:
        return _empty(
            opts.num_samples, opts.lead_names, opts.fs, notes + [stop.reason], timings_s=clock.timings, **stop.partial
        )
    geometry = found.geometry
    result = DigitizationResult(
        out.signal,
        opts.lead_names,
        opts.fs,
        geometry.orientation,
        cal.scale,
        laid.layout,
        out.traces,
        laid.curves,
        laid.timings,
        cal.calibration,
        notes,
        reading_confidence(cal.scale, laid.layout, laid.curves, geometry.orientation, P),
        geometry.rgb,
        labels.trace_map.prob if debug else None,
        geometry.work_scale,
        clock.total(),
        check=check,
    )
    if debug:
        result.debug = {"row_map": found.row_map, "grid": labels.trace_map.grid, "ink": labels.trace_map.ink}
    return result


# --- the alternative readings ---------------------------------------------------------------------------------

#: Order of the self-check's statuses when readings of one page compete.
STATUS_RANK = {"failed": 0, "suspect": 1, "ok": 2}
#: A residual tilt of the traced rows (degrees) at least this large, shared by the rows (median absolute deviation
#: under :data:`TILT_AGREEMENT_DEG`), makes the page be read again turned by it; that reading is kept unless its
#: self-check status is worse (the Challenge generator's rotated, noisy pages: grid angles read 2-4 degrees short
#: under the noise, every row sloping across the page). Baseline wander shared by the rows tilts them too: a
#: rendered PTB-XL page whose rows sloped 0.43 degrees lost 2.7 dB when read again turned.
RESIDUAL_TILT_DEG = 1.0
TILT_AGREEMENT_DEG = 0.2
#: Bins along a row for its tilt: the median height per bin ignores QRS complexes.
TILT_BINS = 10


def _check_rank(check: SelfCheck) -> tuple[int, float]:
    """Sort key of a reading's self-check: status first, then score."""
    return STATUS_RANK.get(check.status, 0), float(check.score)


def reading_rank(result: DigitizationResult) -> tuple[int, float]:
    """Sort key of competing readings of one page (higher is better): self-check status, then its score; a
    reading without a self-check (nothing read) ranks lowest."""
    return (-1, 0.0) if result.check is None else _check_rank(result.check)


#: Rows whose px per second differ by more than this fraction were timed on their own scales.
ROW_SCALES_APART = 1e-3


def rows_scaled_apart(timings: list[asm.RowTiming]) -> bool:
    """Were some rows timed on a scale of their own (:func:`~ecgdigitize.stages.row_scales_px_per_mm_x`)?"""
    pps = [t.px_per_s for t in timings if np.isfinite(t.px_per_s) and t.px_per_s > 0]
    return len(pps) >= 2 and max(pps) > (1.0 + ROW_SCALES_APART) * min(pps)


def _grid_period_divided(result: DigitizationResult) -> bool:
    """Was the grid period as read divided down to a sub-harmonic (a small page or a crop of one)?"""
    return result.scale is not None and any(w.startswith(SUB_HARMONIC_NOTE) for w in result.scale.warnings)


def row_tilts_deg(curves: list[TraceCurve], params: DigitizerParams = DEFAULT_PARAMS) -> list[float]:
    """Tilt (degrees; positive = the row falls to the right, image y down) of each traced row: a line through the
    median heights of :data:`TILT_BINS` stretches of the row."""
    out = []
    for c in curves:
        ok = np.flatnonzero(np.isfinite(c.y))
        if ok.size < params.tilt_min_points_per_bin * TILT_BINS:
            continue
        bins = np.array_split(ok, TILT_BINS)
        xs = np.array([float(np.median(b)) for b in bins])
        ys = np.array([float(np.median(c.y[b])) for b in bins])
        slope = float(np.polyfit(xs, ys, 1)[0])
        out.append(math.degrees(math.atan(slope)))
    return out


def _with_residual_tilt_removed(result: DigitizationResult, kwargs: dict[str, Any]) -> DigitizationResult:
    """``result``, or the page read again from its rectified image turned by the rows' common residual tilt when
    that reading's self-check scores higher (see :data:`RESIDUAL_TILT_DEG`)."""
    tilts = row_tilts_deg(result.row_curves, kwargs.get("params", DEFAULT_PARAMS))
    if len(tilts) < 2 or result.rectified is None or result.check is None:
        return result
    tilt = float(np.median(tilts))
    if abs(tilt) < RESIDUAL_TILT_DEG or float(np.median(np.abs(np.asarray(tilts) - tilt))) > TILT_AGREEMENT_DEG:
        return result
    h, w = result.rectified.shape[:2]
    M = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), tilt, 1.0)
    paper = tuple(int(v) for v in np.median(result.rectified.reshape(-1, 3), axis=0))
    turned = cv2.warpAffine(
        result.rectified, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=paper
    )
    again = _digitize_page(turned, None, **kwargs)
    # rows sloping alike by a degree or more are evidence of a geometry error in themselves: the new reading is
    # kept unless its self-check status is worse
    if again.check is None or _check_rank(again.check)[0] < _check_rank(result.check)[0]:
        return result
    again.warnings.append(f"rows tilted {tilt:.2f} degrees after rectification: read again turned by it")
    again.work_scale = result.work_scale * again.work_scale
    return again
