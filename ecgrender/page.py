"""Paper-ECG page model and renderer with pixel-exact ground truth.

A page is drawn in millimetres (paper coordinates) and rasterised at ``dpi``.  Pixel convention: pixel
centres lie at integer coordinates, so a point ``x_mm`` millimetres from the left paper edge lies at
``x_px = x_mm * px_per_mm_x - 0.5`` (same for y, measured downwards from the top edge).  This is the
convention of OpenCV drawing functions, and of every coordinate in the sidecar.

Mapping a plotted sample back to mV / seconds (the inverse used by tests and the digitizer)::

    value_mV = (baseline_y_px - y_px) / (gain_mm_mv * px_per_mm_y)
    sample   = start_sample + (x_px - x0_px) * fs / (paper_speed_mm_s * px_per_mm_x)

where ``x0_px`` is the lead's ``x0_px`` sidecar entry (x of its first sample, ``start_sample``).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import cv2
import numpy as np

from ecgvocab import STANDARD_LEADS, canonical_lead_name

logger = logging.getLogger(__name__)

LAYOUTS: tuple[str, ...] = ("3x4+1", "3x4+3", "3x4", "6x2", "12x1")
PAPER_SIZES_MM: dict[str, tuple[float, float]] = {"letter": (279.4, 215.9), "a4": (297.0, 210.0)}
GRID_COLORS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]] | None] = {
    # name: (minor line RGB, major line RGB)
    "red": ((250, 185, 185), (235, 105, 105)),
    "pink": ((252, 212, 224), (240, 150, 175)),
    "blue": ((190, 208, 245), (105, 140, 220)),
    "green": ((190, 230, 192), (95, 175, 105)),
    "brown": ((228, 200, 176), (170, 112, 72)),
    "grey": ((212, 212, 212), (150, 150, 150)),
    "none": None,
}
CLASS_BACKGROUND, CLASS_GRID, CLASS_TEXT, CLASS_TRACE = 0, 1, 2, 3
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_PX_PER_SCALE = 22.0  # cap height-ish of FONT_HERSHEY_SIMPLEX at fontScale 1, pixels
_DEFAULT_RHYTHM = {"3x4+1": ("II",), "3x4+3": ("II", "V1", "V5")}


@dataclass
class PageSpec:
    """Everything that determines a clean page.  Lengths in mm, speed mm/s, gain mm/mV, widths pt."""

    paper: str = "letter"
    dpi: float = 200.0
    paper_speed: float = 25.0
    gain: float = 10.0
    layout: str = "3x4+1"
    grid_color: str = "red"
    calibration_pulse: bool = True
    header_text: bool = True
    column_separators: bool = True
    trace_width_pt: float = 1.0
    trace_color: tuple[int, int, int] = (0, 0, 0)
    rhythm_leads: tuple[str, ...] | None = None  # None -> layout default: ("II",) / ("II", "V1", "V5")
    lead_labels: bool = True
    grid_extent: str = "page"  # "page" (whole sheet) or "plot" (only the plotting area)
    duration_s: float = 10.0  # time span of the layout at 25 mm/s (shortened if it does not fit)
    minor_line_mm: float = 0.1
    major_line_mm: float = 0.25
    label_height_mm: float = 3.0
    header_lines: tuple[str, ...] | None = None  # None -> plausible lines drawn from the rng
    text_color: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self) -> None:
        if self.paper not in PAPER_SIZES_MM:
            raise ValueError(f"paper must be one of {sorted(PAPER_SIZES_MM)}, got {self.paper!r}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.grid_color not in GRID_COLORS:
            raise ValueError(f"grid_color must be one of {sorted(GRID_COLORS)}, got {self.grid_color!r}")
        if not (20.0 <= float(self.dpi) <= 1200.0):
            raise ValueError(f"dpi must be in [20, 1200], got {self.dpi}")
        if self.paper_speed <= 0 or self.gain <= 0 or self.duration_s <= 0:
            raise ValueError("paper_speed, gain and duration_s must be positive")
        if self.grid_extent not in ("page", "plot"):
            raise ValueError(f"grid_extent must be 'page' or 'plot', got {self.grid_extent!r}")
        if self.rhythm_leads is None:
            self.rhythm_leads = _DEFAULT_RHYTHM.get(self.layout, ())
        names = []
        for name in self.rhythm_leads:
            canon = canonical_lead_name(name)
            if canon is None:
                raise ValueError(f"unknown rhythm lead {name!r}")
            names.append(canon)
        self.rhythm_leads = tuple(names)
        self.trace_color = tuple(int(c) for c in self.trace_color)  # type: ignore[assignment]
        self.text_color = tuple(int(c) for c in self.text_color)  # type: ignore[assignment]

    @classmethod
    def random(cls, rng: np.random.Generator | int | None = None, **overrides: Any) -> "PageSpec":
        """A varied spec resembling real printouts and ecg-image-kit output; ``overrides`` win."""
        rng = np.random.default_rng(rng)
        layout = overrides.get("layout") or str(rng.choice(LAYOUTS, p=[0.5, 0.1, 0.15, 0.15, 0.1]))
        if layout == "3x4+1":
            rhythm: tuple[str, ...] = ("II",) if rng.random() < 0.8 else (str(rng.choice(["V1", "V5", "II"])),)
        elif layout == "3x4+3":
            rhythm = ("II", "V1", "V5")
        else:
            rhythm = ()
        dark = [(0, 0, 0), (0, 0, 0), (20, 20, 20), (10, 10, 70), (40, 40, 40), (0, 0, 40)]
        params: dict[str, Any] = dict(
            paper="letter" if rng.random() < 0.75 else "a4",
            dpi=float(rng.choice([100, 150, 200, 200, 200, 250, 300])),
            paper_speed=25.0 if rng.random() < 0.9 else 50.0,
            gain=float(rng.choice([10.0, 10.0, 10.0, 10.0, 5.0, 20.0])),
            layout=layout,
            grid_color=str(
                rng.choice(
                    ["red", "pink", "blue", "green", "brown", "grey", "none"],
                    p=[0.45, 0.15, 0.1, 0.05, 0.05, 0.12, 0.08],
                )
            ),
            calibration_pulse=bool(rng.random() < 0.8),
            header_text=bool(rng.random() < 0.8),
            column_separators=bool(rng.random() < 0.7),
            trace_width_pt=float(rng.uniform(0.5, 1.5)),
            trace_color=dark[int(rng.integers(len(dark)))],
            rhythm_leads=rhythm,
            lead_labels=bool(rng.random() < 0.95),
            grid_extent="page" if rng.random() < 0.8 else "plot",
            minor_line_mm=float(rng.uniform(0.06, 0.14)),
            major_line_mm=float(rng.uniform(0.18, 0.32)),
            label_height_mm=float(rng.uniform(2.5, 3.5)),
        )
        if layout == "12x1" and "gain" not in overrides and rng.random() < 0.5:
            params["gain"] = 5.0
        if "layout" in overrides and "rhythm_leads" not in overrides:
            params["rhythm_leads"] = None
        params.update(overrides)
        return cls(**params)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of the spec."""
        d = dataclasses.asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


@dataclass
class RenderedPage:
    """A rendered page: RGB image (H, W, 3) uint8, lead mask (0 none, k = STANDARD_LEADS[k-1]),
    class mask (0 background, 1 grid, 2 text/label/pulse/separator, 3 trace) and the sidecar dict."""

    image: np.ndarray
    lead_mask: np.ndarray
    class_mask: np.ndarray
    sidecar: dict[str, Any] = field(default_factory=dict)

    def copy(self) -> "RenderedPage":
        import copy

        return RenderedPage(
            self.image.copy(), self.lead_mask.copy(), self.class_mask.copy(), copy.deepcopy(self.sidecar)
        )


# ----------------------------------------------------------------------------------------------------
# Layout geometry (mm)


@dataclass
class _Panel:
    lead: str
    row: int
    column: int
    t0: float  # seconds, start time of the panel in the record
    t1: float  # seconds, end time (exclusive)
    x0_mm: float
    x1_mm: float
    baseline_mm: float
    rhythm: bool


def _layout_grid(layout: str) -> tuple[list[list[str]], int]:
    """Rows x columns of lead names (column-major lead order as printed)."""
    if layout.startswith("3x4"):
        return [[STANDARD_LEADS[c * 3 + r] for c in range(4)] for r in range(3)], 4
    if layout == "6x2":
        return [[STANDARD_LEADS[c * 6 + r] for c in range(2)] for r in range(6)], 2
    if layout == "12x1":
        return [[name] for name in STANDARD_LEADS], 1
    raise ValueError(f"unknown layout {layout!r}")


def _page_geometry(spec: PageSpec) -> dict[str, Any]:
    """Place rows, columns, pulses in mm; returns panels and plot-area bounds."""
    width_mm, height_mm = PAPER_SIZES_MM[spec.paper]
    grid, ncols = _layout_grid(spec.layout)
    rows = [list(r) for r in grid] + [[name] for name in spec.rhythm_leads or ()]
    n_grid_rows = len(grid)
    pulse_mm = 0.2 * spec.paper_speed + 2.0 if spec.calibration_pulse else 0.0  # pulse plus 1 mm feet
    gap_mm = 1.5 if spec.calibration_pulse else 0.0
    side_margin = 6.0
    available = width_mm - 2 * side_margin - pulse_mm - gap_mm
    span_s = min(spec.duration_s, available / spec.paper_speed)
    span_s = math.floor(span_s * 2.0 + 1e-9) / 2.0 if span_s >= 1.0 else span_s  # multiple of 0.5 s
    span_mm = span_s * spec.paper_speed
    block_mm = pulse_mm + gap_mm + span_mm
    left_mm = (width_mm - block_mm) / 2.0
    trace_left = left_mm + pulse_mm + gap_mm
    top_mm = 22.0 if spec.header_text else 10.0
    bottom_mm = 8.0
    band = (height_mm - top_mm - bottom_mm) / len(rows)
    panels: list[_Panel] = []
    for r, names in enumerate(rows):
        baseline = top_mm + band * (r + 0.6)
        is_rhythm = r >= n_grid_rows
        cols = 1 if is_rhythm else ncols
        col_s = span_s / cols
        for c, name in enumerate(names):
            panels.append(
                _Panel(
                    name,
                    r,
                    c,
                    c * col_s,
                    (c + 1) * col_s,
                    trace_left + c * col_s * spec.paper_speed,
                    trace_left + (c + 1) * col_s * spec.paper_speed,
                    baseline,
                    is_rhythm,
                )
            )
    return dict(
        width_mm=width_mm,
        height_mm=height_mm,
        panels=panels,
        n_rows=len(rows),
        band_mm=band,
        trace_left_mm=trace_left,
        trace_right_mm=trace_left + span_mm,
        span_s=span_s,
        pulse_left_mm=left_mm,
        pulse_mm=pulse_mm,
        top_mm=top_mm,
        bottom_mm=bottom_mm,
    )


# ----------------------------------------------------------------------------------------------------
# Grid (cached per size/dpi/colour)


def _line_coverage(
    n_px: int, origin_px: float, step_px: float, width_px: float, lo_px: float, hi_px: float
) -> np.ndarray:
    """Fraction of each pixel (centres 0..n_px-1) covered by lines at origin + k*step within [lo, hi]."""
    kmin = math.ceil((lo_px - origin_px) / step_px - 1e-9)
    kmax = math.floor((hi_px - origin_px) / step_px + 1e-9)
    if kmax < kmin:
        return np.zeros(n_px, np.float32)
    centres = origin_px + step_px * np.arange(kmin, kmax + 1)
    a = centres - width_px / 2.0
    edges = np.arange(n_px + 1, dtype=np.float64) - 0.5
    # F(x) = total line length left of x, evaluated at pixel edges; chunk lines to bound memory
    cum = np.zeros(n_px + 1, np.float64)
    for s in range(0, len(a), 256):
        cum += np.clip(edges[None, :] - a[s : s + 256, None], 0.0, width_px).sum(axis=0)
    return np.clip(np.diff(cum), 0.0, 1.0).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _grid_layer(
    width_px: int,
    height_px: int,
    ppm_x: float,
    ppm_y: float,
    color: str,
    origin_x_mm: float,
    origin_y_mm: float,
    extent_mm: tuple[float, float, float, float],
    minor_mm: float,
    major_mm: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Grid image (H, W, 3) uint8 and grid class mask (H, W) bool; read-only cached arrays."""
    image = np.full((height_px, width_px, 3), 255, np.uint8)
    mask = np.zeros((height_px, width_px), bool)
    colors = GRID_COLORS[color]
    if colors is not None:
        x_lo, y_lo, x_hi, y_hi = extent_mm
        lo_x, hi_x = x_lo * ppm_x - 0.5, x_hi * ppm_x - 0.5
        lo_y, hi_y = y_lo * ppm_y - 0.5, y_hi * ppm_y - 0.5
        ox, oy = origin_x_mm * ppm_x - 0.5, origin_y_mm * ppm_y - 0.5
        min_w = 0.6
        minor_x = _line_coverage(width_px, ox, ppm_x, max(minor_mm * ppm_x, min_w), lo_x, hi_x)
        minor_y = _line_coverage(height_px, oy, ppm_y, max(minor_mm * ppm_y, min_w), lo_y, hi_y)
        major_x = _line_coverage(width_px, ox, 5 * ppm_x, max(major_mm * ppm_x, 1.0), lo_x, hi_x)
        major_y = _line_coverage(height_px, oy, 5 * ppm_y, max(major_mm * ppm_y, 1.0), lo_y, hi_y)
        inside_x = ((np.arange(width_px) >= lo_x - 0.5) & (np.arange(width_px) <= hi_x + 0.5)).astype(np.float32)
        inside_y = ((np.arange(height_px) >= lo_y - 0.5) & (np.arange(height_px) <= hi_y + 0.5)).astype(np.float32)
        minor = np.maximum(minor_x[None, :] * inside_y[:, None], minor_y[:, None] * inside_x[None, :])
        major = np.maximum(major_x[None, :] * inside_y[:, None], major_y[:, None] * inside_x[None, :])
        minor_rgb = np.asarray(colors[0], np.float32)
        major_rgb = np.asarray(colors[1], np.float32)
        img = np.full((height_px, width_px, 3), 255.0, np.float32)
        img += minor[..., None] * (minor_rgb - img)
        img += major[..., None] * (major_rgb - img)
        image = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        mask = (minor >= 0.35) | (major >= 0.35)
    image.setflags(write=False)
    mask.setflags(write=False)
    return image, mask


# ----------------------------------------------------------------------------------------------------
# Text


def _default_header_lines(spec: PageSpec, rng: np.random.Generator, fs: float) -> tuple[str, ...]:
    """Plausible printed header: ID, name, age, sex, date; recording settings."""
    first = ["J. Doe", "A. Smith", "M. Garcia", "L. Chen", "K. Novak", "R. Patel", "S. Muller", "Anonymous"]
    date = datetime.date(1990, 1, 1) + datetime.timedelta(days=int(rng.integers(0, 12000)))
    hh, mm = int(rng.integers(0, 24)), int(rng.integers(0, 60))
    line1 = (
        f"ID: {int(rng.integers(10000, 99999))}   Name: {first[int(rng.integers(len(first)))]}   "
        f"Age: {int(rng.integers(18, 95))}   Sex: {'F' if rng.random() < 0.5 else 'M'}   "
        f"Date: {date.isoformat()} {hh:02d}:{mm:02d}"
    )
    line2 = (
        f"Vent. rate: {int(rng.integers(45, 130))} BPM   PR: {int(rng.integers(120, 200))} ms   "
        f"QRS: {int(rng.integers(70, 120))} ms   QT/QTc: {int(rng.integers(340, 440))}/"
        f"{int(rng.integers(380, 470))} ms"
    )
    line3 = f"{spec.paper_speed:g}mm/s   {spec.gain:g}mm/mV   {fs:g} Hz   0.05-150 Hz"
    return (line1, line2, line3)


def _put_text(
    image: np.ndarray,
    cmask: np.ndarray,
    text: str,
    x: float,
    y: float,
    height_px: float,
    color: tuple[int, int, int],
    boxes: list[dict[str, Any]],
    kind: str,
) -> list[int]:
    """Draw text with its baseline-left corner at (x, y) px; marks class 2; returns bbox [x0,y0,x1,y1]."""
    scale = max(height_px / _FONT_PX_PER_SCALE, 0.2)
    thickness = max(1, int(round(scale * 1.6)))
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, thickness)
    org = (int(round(x)), int(round(y)))
    cv2.putText(image, text, org, _FONT, scale, color, thickness, cv2.LINE_AA)
    cv2.putText(cmask, text, org, _FONT, scale, CLASS_TEXT, thickness, cv2.LINE_8)
    h, w = cmask.shape
    bbox = [max(org[0], 0), max(org[1] - th - thickness, 0), min(org[0] + tw, w - 1), min(org[1] + base, h - 1)]
    boxes.append({"text": text, "kind": kind, "bbox": [int(v) for v in bbox]})
    return [int(v) for v in bbox]


# ----------------------------------------------------------------------------------------------------
# Rendering


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _match_leads(lead_names: Sequence[str], num_leads: int) -> dict[str, int]:
    """Canonical lead name -> column of the signal (first occurrence wins)."""
    if len(lead_names) != num_leads:
        raise ValueError(f"{len(lead_names)} lead names for a signal with {num_leads} leads")
    out: dict[str, int] = {}
    for j, name in enumerate(lead_names):
        canon = canonical_lead_name(name)
        if canon is not None and canon not in out:
            out[canon] = j
    return out


def _split_runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index runs where ``valid`` is True."""
    if valid.size == 0:
        return []
    padded = np.concatenate([[False], valid, [False]]).astype(np.int8)
    d = np.diff(padded)
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def render_page(
    signal: np.ndarray,
    fs: float,
    lead_names: Sequence[str],
    spec: PageSpec | None = None,
    rng: np.random.Generator | int | None = None,
) -> RenderedPage:
    """Render ``signal`` (num_samples, num_leads) in mV sampled at ``fs`` Hz as a paper-ECG page.

    Only the 12 standard leads (matched case-insensitively) are drawn; missing ones are left blank.
    NaN samples are not drawn.  Returns image, lead/class masks and the sidecar (see module docstring).
    """
    spec = PageSpec() if spec is None else spec
    rng = _as_rng(rng)
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim == 1:
        signal = signal[:, None]
    if signal.ndim != 2:
        raise ValueError(f"signal must be (num_samples, num_leads), got shape {signal.shape}")
    fs = float(fs)
    if not fs > 0:
        raise ValueError(f"fs must be positive, got {fs}")
    lead_col = _match_leads(list(lead_names), signal.shape[1])
    num_samples = signal.shape[0]

    geo = _page_geometry(spec)
    width_mm, height_mm = geo["width_mm"], geo["height_mm"]
    width_px = int(round(width_mm / 25.4 * spec.dpi))
    height_px = int(round(height_mm / 25.4 * spec.dpi))
    ppm_x, ppm_y = width_px / width_mm, height_px / height_mm

    def px_x(x_mm: float) -> float:
        return x_mm * ppm_x - 0.5

    def px_y(y_mm: float) -> float:
        return y_mm * ppm_y - 0.5

    # grid aligned so that the first trace column starts on a major line
    if spec.grid_extent == "page":
        extent = (0.0, 0.0, width_mm, height_mm)
    else:
        plot_top = geo["top_mm"] - 2.0
        extent = (geo["pulse_left_mm"] - 2.0, plot_top, geo["trace_right_mm"] + 2.0, height_mm - geo["bottom_mm"] + 4.0)
    origin_x = geo["trace_left_mm"]
    origin_y = geo["top_mm"]
    grid_img, grid_mask = _grid_layer(
        width_px,
        height_px,
        ppm_x,
        ppm_y,
        spec.grid_color,
        origin_x,
        origin_y,
        tuple(round(v, 6) for v in extent),
        round(spec.minor_line_mm, 6),
        round(spec.major_line_mm, 6),
    )
    image = grid_img.copy()
    class_mask = grid_mask.astype(np.uint8)  # CLASS_GRID == 1
    lead_mask = np.zeros((height_px, width_px), np.uint8)
    text_boxes: list[dict[str, Any]] = []
    width_px_line = spec.trace_width_pt / 72.0 * 25.4 * (ppm_x + ppm_y) / 2.0
    thickness = max(1, int(round(width_px_line)))
    shift = 4
    scale_fix = float(1 << shift)

    # header
    if spec.header_text:
        lines = spec.header_lines if spec.header_lines is not None else _default_header_lines(spec, rng, fs)
        th = 2.8 * ppm_y
        for i, line in enumerate(lines[:4]):
            _put_text(
                image,
                class_mask,
                line,
                px_x(geo["pulse_left_mm"]),
                px_y(6.5 + 4.5 * i),
                th,
                spec.text_color,
                text_boxes,
                "header",
            )

    # calibration pulses and separators (class 2), drawn below the traces
    pulses: list[dict[str, float]] = []
    rows_done: set[int] = set()
    panels: list[_Panel] = geo["panels"]
    sep_thick = max(1, int(round(0.25 * ppm_x)))
    for p in panels:
        if spec.calibration_pulse and p.row not in rows_done:
            rows_done.add(p.row)
            x0 = geo["pulse_left_mm"]
            w = 0.2 * spec.paper_speed
            b = p.baseline_mm
            top = b - spec.gain  # 1 mV
            pts_mm = [(x0, b), (x0 + 1, b), (x0 + 1, top), (x0 + 1 + w, top), (x0 + 1 + w, b), (x0 + 2 + w, b)]
            pts = np.array([[px_x(x), px_y(y)] for x, y in pts_mm])
            ipts = np.round(pts * scale_fix).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(image, [ipts], False, spec.trace_color, thickness, cv2.LINE_AA, shift)
            cv2.polylines(class_mask, [ipts], False, CLASS_TEXT, thickness, cv2.LINE_8, shift)
            pulses.append({"row": p.row, "x0": px_x(x0 + 1), "y0": px_y(top), "x1": px_x(x0 + 1 + w), "y1": px_y(b)})
        if spec.column_separators and p.column > 0:
            xs = int(round(px_x(p.x0_mm)))
            y0, y1 = int(round(px_y(p.baseline_mm - 3.0))), int(round(px_y(p.baseline_mm + 3.0)))
            cv2.line(image, (xs, y0), (xs, y1), spec.trace_color, sep_thick, cv2.LINE_AA)
            cv2.line(class_mask, (xs, y0), (xs, y1), CLASS_TEXT, sep_thick, cv2.LINE_8)
            text_boxes.append({"text": "|", "kind": "separator", "bbox": [xs - sep_thick, y0, xs + sep_thick, y1]})

    # traces
    leads_out: list[dict[str, Any]] = []
    label_h = spec.label_height_mm * ppm_y
    gain_px = spec.gain * ppm_y
    step_px = spec.paper_speed * ppm_x / fs  # px per sample
    for p in panels:
        k = STANDARD_LEADS.index(p.lead) + 1
        start = int(math.ceil(p.t0 * fs - 1e-9))
        end_full = int(math.ceil(p.t1 * fs - 1e-9))
        end = min(end_full, num_samples)
        x0_px = px_x(p.x0_mm) + (start / fs - p.t0) * spec.paper_speed * ppm_x
        base_px = px_y(p.baseline_mm)
        entry: dict[str, Any] = {
            "name": p.lead,
            "lead_index": k - 1,
            "row": p.row,
            "column": p.column,
            "rhythm": p.rhythm,
            "start_sample": start,
            "end_sample": max(end, start),
            "bbox": [
                round(px_x(p.x0_mm), 3),
                round(px_y(p.baseline_mm - geo["band_mm"] * 0.6), 3),
                round(px_x(p.x1_mm), 3),
                round(px_y(p.baseline_mm + geo["band_mm"] * 0.4), 3),
            ],
            "label_bbox": None,
            "baseline_y_px": round(base_px, 4),
            "x0_px": round(x0_px, 4),
            "x_px": [],
            "y_px": [],
            "missing_samples": [],
            "clipped_samples": [],
        }
        col = lead_col.get(p.lead)
        if end > start:
            idx = np.arange(start, end)
            values = signal[start:end, col] if col is not None else np.full(end - start, np.nan)
            valid = np.isfinite(values)
            xs = x0_px + (idx - start) * step_px
            ys = base_px - np.where(valid, values, 0.0) * gain_px
            entry["x_px"] = np.round(xs[valid], 3).tolist()
            entry["y_px"] = np.round(ys[valid], 3).tolist()
            entry["missing_samples"] = idx[~valid].tolist()
            clipped = valid & ((ys < -0.5) | (ys > height_px - 0.5))
            entry["clipped_samples"] = idx[clipped].tolist()
            ys_draw = np.clip(ys, -1.0, height_px)
            polys = []
            for a, b in _split_runs(valid):
                pts = np.stack([xs[a:b], ys_draw[a:b]], axis=1)
                polys.append(np.round(pts * scale_fix).astype(np.int32).reshape(-1, 1, 2))
            if polys:
                cv2.polylines(image, polys, False, spec.trace_color, thickness, cv2.LINE_AA, shift)
                cv2.polylines(lead_mask, polys, False, k, thickness, cv2.LINE_8, shift)
        if spec.lead_labels:
            lx = px_x(p.x0_mm + 0.8)
            ly = px_y(p.baseline_mm) - max(spec.gain * 0.6, 4.0) * ppm_y
            entry["label_bbox"] = _put_text(
                image, class_mask, p.lead, lx, ly, label_h, spec.text_color, text_boxes, "label"
            )
        leads_out.append(entry)
    class_mask[lead_mask > 0] = CLASS_TRACE

    sidecar: dict[str, Any] = {
        "width_px": width_px,
        "height_px": height_px,
        "width_mm": width_mm,
        "height_mm": height_mm,
        "dpi": float(spec.dpi),
        "px_per_mm_x": ppm_x,
        "px_per_mm_y": ppm_y,
        "paper_speed_mm_s": float(spec.paper_speed),
        "gain_mm_mv": float(spec.gain),
        "layout": spec.layout,
        "fs": fs,
        "num_samples": int(num_samples),
        "span_s": geo["span_s"],
        "grid_color": spec.grid_color,
        "grid_origin_px": [px_x(origin_x), px_y(origin_y)],
        "grid_extent_px": [px_x(extent[0]), px_y(extent[1]), px_x(extent[2]), px_y(extent[3])],
        "trace_width_px": width_px_line,
        "pixel_convention": "pixel centres at integer coordinates",
        "rhythm_leads": list(spec.rhythm_leads or ()),
        "leads": leads_out,
        "calibration_pulses": pulses,
        "text_boxes": text_boxes,
        "spec": spec.to_dict(),
        "distortions": [],
        "homography": np.eye(3).tolist(),
    }
    return RenderedPage(image=image, lead_mask=lead_mask, class_mask=class_mask, sidecar=sidecar)
