"""Calibration pulses at row starts: a 1 mV step lasting 0.2 s drawn from the baseline.

Found on a row's traced curve: a plateau above the baseline of plausible height (2.5..25 mm) and
width (0.1..0.5 s at the paper speed) beginning within the first few mm of the row; its foot gives
the exact baseline, its height the pixels per mV, and the first ink after it the trace start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

STANDARD_GAINS = (5.0, 10.0, 20.0)  # mm/mV printed on paper ECGs
#: A flat lead-in before a pulse's rise is its foot (the exact baseline) only when the pulse measured from it is at
#: least this fraction of the pulse measured from the row's baseline: a thick rising stroke seen column by column
#: has its centres halfway up (rotated, noisy Challenge-generator pages: read as 5 mm/mV with the baseline 5 mm
#: high; ratio 0.5), while a real foot sits at the bottom (ratio about 1, less where the row baseline is off).
FOOT_LEVEL_FRACTION = 0.75
#: A pulse cut by the page's edge (the curve starts on its flat top) is taken only where the curve's first ink lies
#: within this many mm of the image's left edge, ...
CUT_EDGE_MM = 1.0
#: ... its top is level to this standard deviation (mm; a printed pulse is a ruled line) ...
CUT_TOP_LEVEL_MM = 0.3
#: ... and within this many mm after its fall the curve comes back to within this many mm of the row's baseline.
CUT_FALL_WINDOW_MM = 1.0
CUT_FALL_TO_BASELINE_MM = 1.5


@dataclass
class Pulse:
    """One calibration pulse (pixels of the rectified working image)."""

    row: int
    x0: float  # rising edge
    x1: float  # falling edge
    top_y: float
    base_y: float
    trace_start_x: float  # first column of the signal after the pulse

    @property
    def height_px(self) -> float:
        return self.base_y - self.top_y


@dataclass
class Calibration:
    """Amplitude calibration of a page: pulses found and the resulting scale."""

    pulses: list[Pulse] = field(default_factory=list)
    mv_per_px: float = float("nan")
    gain_mm_per_mv: float = 10.0
    source: str = "gain"  # "pulse" | "gain"
    warnings: list[str] = field(default_factory=list)


def find_pulse(
    y: np.ndarray,
    x0: int,
    baseline: float,
    row: int,
    px_per_mm_x: float,
    px_per_mm_y: float,
    paper_speed: float,
    use_foot: bool = True,
) -> Pulse | None:
    """Look for a calibration pulse at the start of a traced row curve ``y`` (pixels, NaN gaps) whose
    first column is ``x0``; returns the pulse or None. ``use_foot``: take the flat ink before the rise as the
    baseline (see :data:`FOOT_LEVEL_FRACTION`); where that finds none, the row's ``baseline`` is tried too (a
    pulse cut by the page's edge begins with its flat top, which would otherwise be taken for its foot)."""
    pulse = _find_pulse(y, x0, baseline, row, px_per_mm_x, px_per_mm_y, paper_speed, use_foot)
    if pulse is None and use_foot:
        pulse = _find_pulse(y, x0, baseline, row, px_per_mm_x, px_per_mm_y, paper_speed, use_foot=False, cut=True)
    return pulse


def _find_pulse(
    y: np.ndarray,
    x0: int,
    baseline: float,
    row: int,
    px_per_mm_x: float,
    px_per_mm_y: float,
    paper_speed: float,
    use_foot: bool,
    cut: bool = False,
) -> Pulse | None:
    """:func:`find_pulse` with the foot rule on or off; ``cut``: only a pulse whose top is the curve's first
    ink (cut by the page's edge)."""
    row_baseline = baseline
    n = y.size
    if n < 10:
        return None
    search = int(min(n, round((0.6 * paper_speed + 6.0) * px_per_mm_x)))
    seg = y[:search]
    ok = np.isfinite(seg)
    if ok.sum() < 5:
        return None
    first = int(np.argmax(ok))
    # the pulse foot (flat ink before the rise) is the exact baseline; the row-profile baseline can be
    # several mm off on high-gain pages (the trace's mode height is not its isoelectric level)
    lead_in = seg[first : first + max(3, int(round(2.0 * px_per_mm_x)))]
    n_flat = (
        int(np.argmax(~(np.abs(lead_in - lead_in[0]) <= 0.3 * px_per_mm_y + 1.0)))
        if not np.all(np.abs(lead_in - lead_in[0]) <= 0.3 * px_per_mm_y + 1.0)
        else lead_in.size
    )
    lead_in = lead_in[:n_flat]
    used_foot = use_foot and lead_in.size >= 3 and abs(float(np.median(lead_in)) - baseline) <= 12.0 * px_per_mm_y
    if used_foot:
        baseline = float(np.median(lead_in))
    h = baseline - seg  # height above the baseline, pixels
    high = ok & (h > 2.5 * px_per_mm_y)
    if not high.any():
        return None
    a = int(np.argmax(high))
    if (a - first) > (1 if cut else 4.0 * px_per_mm_x):
        return None
    b = a
    while b + 1 < search and high[b + 1]:
        b += 1
    width_s = (b - a + 1) / px_per_mm_x / paper_speed
    if not (0.1 <= width_s <= 0.5):
        return None
    core = h[a : b + 1]
    inner = core[len(core) // 5 : len(core) - len(core) // 5] if len(core) >= 5 else core
    top_h = float(np.median(inner))
    if np.nanstd(inner) > 0.15 * top_h + 1.5 or not (2.5 * px_per_mm_y <= top_h <= 25.0 * px_per_mm_y):
        return None
    if cut and not _cut_pulse_shape(y, x0 + first, inner, b, baseline, px_per_mm_x, px_per_mm_y):
        return None
    # baseline from the feet (before the rise and right after the fall)
    top_y = baseline - top_h
    if used_foot and top_h < FOOT_LEVEL_FRACTION * (row_baseline - top_y):
        # the "foot" lies far above the row's baseline relative to the pulse: the rising stroke's column centres
        return _find_pulse(y, x0, row_baseline, row, px_per_mm_x, px_per_mm_y, paper_speed, use_foot=False)
    feet = np.r_[seg[first:a][np.isfinite(seg[first:a])]]
    base_y = (
        float(np.median(feet))
        if use_foot and feet.size >= 2 and np.all(np.abs(feet - baseline) < 3 * px_per_mm_y)
        else float(baseline)
    )
    # trace start: after the fall, the foot, and the gap (first ink after a run of >= 0.4 mm empty columns)
    rest = np.isfinite(y[b + 1 :])
    start = b + 1 + int(round(1.0 * px_per_mm_x))
    empty_run = 0
    gap_found = False
    for i, v in enumerate(rest[: int(round(6.0 * px_per_mm_x))]):
        if not v:
            empty_run += 1
        elif empty_run >= max(1, 0.4 * px_per_mm_x):
            start = b + 1 + i
            gap_found = True
            break
        else:
            empty_run = 0
    if not gap_found:
        start = b
    return Pulse(row, float(x0 + a), float(x0 + b), float(top_y), base_y, float(x0 + start))


def _cut_pulse_shape(
    y: np.ndarray, first_x: float, top: np.ndarray, fall: int, baseline: float, px_per_mm_x: float, px_per_mm_y: float
) -> bool:
    """Whether a plateau at a curve's start is a pulse cut by the page's edge: the curve begins at the image's
    left edge (first ink at column ``first_x`` within :data:`CUT_EDGE_MM`), its top ``top`` (pixels) is level
    (:data:`CUT_TOP_LEVEL_MM`), and right after the fall (index ``fall`` of ``y``) the curve is back at the
    ``baseline`` (within :data:`CUT_FALL_TO_BASELINE_MM`)."""
    if first_x > CUT_EDGE_MM * px_per_mm_x or float(np.nanstd(top)) > CUT_TOP_LEVEL_MM * px_per_mm_y:
        return False
    after = y[fall + 1 : fall + 2 + int(round(CUT_FALL_WINDOW_MM * px_per_mm_x))]
    after = after[np.isfinite(after)]
    return bool(after.size) and float(np.min(np.abs(after - baseline))) <= CUT_FALL_TO_BASELINE_MM * px_per_mm_y


def standard_gain(height_mm: float, tol: float) -> float | None:
    """The standard gain (mm/mV, :data:`STANDARD_GAINS`) nearest a 1 mV pulse ``height_mm`` tall when it lies
    within the relative tolerance ``tol`` of it, else None."""
    if not np.isfinite(height_mm) or height_mm <= 0:
        return None
    g = min(STANDARD_GAINS, key=lambda s: abs(np.log(s / height_mm)))
    return g if abs(height_mm / g - 1.0) <= tol else None


def amplitude_calibration(pulses: list[Pulse], px_per_mm_y: float, gain: float) -> Calibration:
    """mV per pixel from the pulses (median height = 1 mV), snapped to a standard gain (5, 10, 20 mm/mV) when
    within 8 % of it (the grid then gives the precise value); otherwise the nominal ``gain`` (mm/mV)."""
    nominal = 1.0 / (gain * px_per_mm_y)
    if not pulses:
        return Calibration([], nominal, gain, "gain")
    hpx = float(np.median([p.height_px for p in pulses]))
    gain_meas = hpx / px_per_mm_y
    warnings: list[str] = []
    g = standard_gain(gain_meas, 0.08)
    if g is not None:
        if abs(g - gain) > 1e-6:
            warnings.append(f"calibration pulse says {g:g} mm/mV (nominal {gain:g})")
        return Calibration(pulses, 1.0 / (g * px_per_mm_y), g, "pulse", warnings)
    # A pulse that fits no standard gain is more often a mis-measured one (clipped by a neighbouring row,
    # merged with a trace) than an exotic printer setting: keep the nominal gain.
    warnings.append(
        f"calibration pulse height {gain_meas:.2f} mm is not a standard gain; using the nominal {gain:g} mm/mV"
    )
    return Calibration(pulses, nominal, gain, "gain", warnings)
