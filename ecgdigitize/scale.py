"""Page scale (pixels per millimetre on both axes) from the grid period, with fallbacks.

The grid map is projected onto each axis; the projection's autocorrelation gives the line period.
A 1 mm minor grid repeats every ``p`` pixels and its 5 mm major lines every ``5 p``; the period is
refined to sub-pixel precision from the zero-padded spectrum. Fallbacks: calibration pulse size
(1 mV = ``gain`` mm high, 0.2 s = ``0.2 * paper_speed`` mm wide), then the page width assuming a
landscape letter (279.4 mm) or A4 (297 mm) sheet, whichever matches the image's aspect ratio.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

LETTER_WIDTH_MM = 279.4
A4_WIDTH_MM = 297.0
#: Sheets a whole-page image is matched to by aspect ratio: name -> (long side, short side) mm.
SHEETS_MM: dict[str, tuple[float, float]] = {"letter": (LETTER_WIDTH_MM, 215.9), "A4": (A4_WIDTH_MM, 210.0)}
#: Largest relative difference of aspect ratios for an image to count as a whole sheet (letter 1.294, A4 1.414).
SHEET_ASPECT_TOLERANCE = 0.03


@dataclass
class Scale:
    """Pixels per millimetre along x and y (rectified page at working resolution) and where from."""

    px_per_mm_x: float
    px_per_mm_y: float
    source: str = "grid"  # "grid" | "pulse" | "dpi"
    period_px: dict[str, float] = field(default_factory=dict)
    confidence: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def scaled(self, factor: float) -> "Scale":
        """The same scale for an image resized by ``factor`` (new px per old px)."""
        return Scale(
            self.px_per_mm_x * factor,
            self.px_per_mm_y * factor,
            self.source,
            {k: v * factor for k, v in self.period_px.items()},
            self.confidence,
            list(self.warnings),
        )


def _autocorr(x: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation of a 1-D profile (mean removed), lags 0..n-1."""
    x = x - x.mean()
    n = x.size
    f = np.fft.rfft(x, 2 * n)
    ac = np.fft.irfft(f * np.conj(f))[:n]
    return ac / max(ac[0], 1e-12)


def _local_peaks(ac: np.ndarray, lo: int, hi: int) -> list[int]:
    hi = min(hi, ac.size - 2)
    if hi <= lo:
        return []
    seg = ac[lo : hi + 1]
    left = ac[lo - 1 : hi]
    right = ac[lo + 1 : hi + 2]
    idx = np.flatnonzero((seg > left) & (seg >= right)) + lo
    return idx.tolist()


def _refine_period(profile: np.ndarray, period: float) -> float:
    """Sub-pixel period from the spectral peak near 1/period (zero-padded FFT + parabolic fit)."""
    x = profile - profile.mean()
    n = x.size
    pad = 1 << int(math.ceil(math.log2(max(n * 16, 1024))))
    spec = np.abs(np.fft.rfft(x * np.hanning(n), pad))
    f0 = pad / period
    lo, hi = int(f0 * 0.93), int(math.ceil(f0 * 1.07)) + 1
    hi = min(hi, spec.size - 2)
    if hi <= lo + 2:
        return period
    i = lo + int(np.argmax(spec[lo:hi]))
    y0, y1, y2 = spec[i - 1], spec[i], spec[i + 1]
    den = y0 - 2 * y1 + y2
    di = 0.5 * (y0 - y2) / den if den < 0 else 0.0
    return pad / (i + di)


#: A grid period that is no whole number of pixels aliases: lines land on the same pixel phase only every few
#: periods, and the autocorrelation is strongest there (ecg-image-kit's 100-DPI pages: the 5 mm period is 19.69 px,
#: peaks 0.63 at lag 20 and 39, 0.88 at 59 = three periods; JS00001's page, 7.33 px minor lines: 0.48 at 7, 0.42
#: at 15, 0.92 at 22). A divisor of the strongest lag whose every multiple below it is a peak of at least this
#: fraction of the strongest is the fundamental (the 1 mm minor lines of a 5 mm major period reach 0.05-0.15 of
#: it on the Challenge generator's pages; divisors by 5, which minor lines are, are not tried).
ALIAS_PEAK_FRACTION = 0.4


def _aliased_fundamental(ac: np.ndarray, peaks: list[int], best: int, top: float, lo: int) -> int:
    """The period (lag, pixels) of which ``best`` is a whole multiple by pixel-phase aliasing, or ``best``: the
    smallest divisor ``best / k`` (k = 2..4, at least ``lo``) with a peak of :data:`ALIAS_PEAK_FRACTION` of the
    strongest ``top`` within a pixel of each of its multiples below ``best``."""
    strong = [p for p in peaks if ac[p] >= ALIAS_PEAK_FRACTION * top]
    for k in (4, 3, 2):
        d = best / k
        if d < lo:
            continue
        if all(any(abs(p - j * d) <= 1.0 for p in strong) for j in range(1, k)):
            return int(round(d))
    return best


def grid_period(
    profile: np.ndarray, min_px_per_mm: float = 1.5, max_px_per_mm: float = 60.0
) -> tuple[float | None, float]:
    """Pixels per mm from a grid projection profile; returns (px_per_mm or None, strength 0..1).

    Looks for the 5 mm major period (strongest autocorrelation peak) and a 1 mm minor period (a peak at
    a fifth of it); the finest resolvable harmonic is refined in the spectrum.
    """
    n = profile.size
    if n < 40 or not np.isfinite(profile).all() or profile.std() <= 1e-9:
        return None, 0.0
    ac = _autocorr(profile.astype(np.float64))
    lo = max(2, int(math.floor(min_px_per_mm)))
    hi = int(min(max_px_per_mm * 5 * 1.05, n / 3))
    peaks = _local_peaks(ac, lo, hi)
    if not peaks:
        return None, 0.0
    vals = ac[peaks]
    if not np.all(np.isfinite(vals)):
        return None, 0.0
    top = float(vals.max())
    # the fundamental: the shortest lag whose peak is nearly as strong as the strongest one
    best = next((p for p, v in zip(peaks, vals) if v >= 0.8 * top), peaks[int(np.argmax(vals))])
    strength = float(max(ac[best], 0.0))
    if strength < 0.2:
        return None, strength
    best = _aliased_fundamental(ac, peaks, best, top, lo)
    if best / 5.0 > max_px_per_mm:
        # only some lines survive (a binarised copy keeps every few major lines): the period is the
        # largest divisor of the strongest lag on which every clearly positive peak falls
        strong = [p for p, v in zip(peaks, vals) if v > 0.25]
        for k in range(2, 13):
            d = best / k
            if d / 5.0 < min_px_per_mm:
                break
            if all(abs(p / d - round(p / d)) * d <= max(1.5, 0.05 * d) for p in strong):
                best = int(round(d))
                break
    # candidate interpretation 1: ``best`` is the 5 mm major period with minor lines at best/5
    minor = best / 5.0
    has_minor = False
    if minor >= 2.0:
        near = [p for p in peaks if abs(p - minor) <= max(1.0, 0.08 * minor)]
        has_minor = bool(near) and ac[near[0]] > 0.05
        if near:
            minor = float(near[0])
    if has_minor:
        px_mm = _refine_period(profile, minor)
        # consistency with the major period
        if abs(px_mm * 5 - best) > 0.08 * best:
            px_mm = best / 5.0
    else:
        # either only major lines are resolved (best = 5 mm) or all lines are alike (best = 1 mm):
        # choose by plausibility of the page width (letter/A4 ~ 280-300 mm; allow crops)
        as_major = best / 5.0
        as_minor = float(best)
        width_mm_major = n / as_major
        width_mm_minor = n / as_minor
        # if a smaller periodic component exists at best/5 we would have found it; prefer major when
        # the page width then looks plausible
        if 60.0 <= width_mm_major <= 450.0 and as_major >= min_px_per_mm:
            px_mm = _refine_period(profile, float(best)) / 5.0
        elif 60.0 <= width_mm_minor <= 450.0:
            px_mm = _refine_period(profile, float(best))
        else:
            px_mm = _refine_period(profile, float(best)) / 5.0
    if not (min_px_per_mm <= px_mm <= max_px_per_mm):
        return None, strength
    return float(px_mm), strength


#: mean grid probability below which a page has no grid
MIN_GRID_MASS = 1e-4

#: implied extent (mm) of a grid profile that a page (or a crop of one) can have
PLAUSIBLE_EXTENT_MM = (60.0, 450.0)


def _detrended(profile: np.ndarray) -> np.ndarray:
    """The profile minus its running mean over ~2 % of its length (>= 15 px): uneven lighting (photos) and
    shadows are slow compared with grid lines and would otherwise dominate the autocorrelation."""
    x = np.asarray(profile, np.float64)
    w = max(15, x.size // 50) | 1
    pad = np.pad(x, w // 2, mode="edge")
    return x - np.convolve(pad, np.ones(w) / w, mode="valid")


def profile_period(profile: np.ndarray) -> tuple[float | None, float, bool]:
    """:func:`grid_period` with a fallback: when the raw profile gives no period, or one that would make the
    profile shorter than 60 mm or longer than 450 mm, the detrended profile is tried. Returns (px_per_mm or
    None, strength, detrended?)."""
    n = profile.size
    lo, hi = PLAUSIBLE_EXTENT_MM
    px, strength = grid_period(profile)
    if px is not None and lo <= n / px <= hi:
        return px, strength, False
    px2, strength2 = grid_period(_detrended(profile)) if n >= 40 else (None, 0.0)
    if px2 is not None and lo <= n / px2 <= hi:
        return px2, strength2, True
    return None, strength, False


#: ECG paper's grid is square (1 mm both ways); a rectified page whose x and y periods differ by more than this
#: ratio has one axis locked on a wrong harmonic (a noisy photographed page: x read at 5/6 of its period).
#: Printers and scanners stretch one axis by a few percent at most.
MAX_GRID_ANISOTROPY = 1.1


def estimate_scale(grid_map: np.ndarray, *, region: tuple[int, int, int, int] | None = None) -> Scale:
    """Pixels per mm from the grid map (H, W) of a rectified page; source "grid" or a failure scale
    with NaN values (the caller applies fallbacks)."""
    g = grid_map if region is None else grid_map[region[1] : region[3], region[0] : region[2]]
    warnings: list[str] = []
    # a printed grid covers percents of the page (minor lines every 4-8 px); a map that is all but empty (a page
    # without grid: stray anti-aliasing) has no period worth reading, whatever its normalised autocorrelation says
    if g.size == 0 or float(g.mean()) < MIN_GRID_MASS:
        return Scale(math.nan, math.nan, "none", warnings=["no grid found"])
    # vertical lines -> column profile (x period); horizontal lines -> row profile (y period)
    col = g.mean(axis=0)
    row = g.mean(axis=1)
    px_x, s_x, det_x = profile_period(col)
    px_y, s_y, det_y = profile_period(row)
    if det_x or det_y:
        warnings.append("grid period read from the detrended grid profile (uneven lighting)")
    if px_x is None and px_y is None:
        return Scale(math.nan, math.nan, "none", confidence=0.0, warnings=["grid period not found"])
    if px_x is None:
        px_x = px_y
        warnings.append("x grid period not found; using the y period")
    if px_y is None:
        px_y = px_x
        warnings.append("y grid period not found; using the x period")
    assert px_x is not None and px_y is not None
    if max(px_x, px_y) / min(px_x, px_y) > MAX_GRID_ANISOTROPY:
        # very different axes usually mean one axis locked onto a wrong harmonic: trust the stronger
        # prefer the value whose implied sheet width is closest to a letter/A4 page
        long_side = max(g.shape)
        err_x = abs(np.log(long_side / px_x / LETTER_WIDTH_MM))
        err_y = abs(np.log(long_side / px_y / LETTER_WIDTH_MM))
        if err_x <= err_y:
            px_y = px_x
        else:
            px_x = px_y
        warnings.append("x and y grid periods disagree; using the stronger one")
    conf = float(np.clip(min(s_x, s_y) / 0.3, 0.0, 1.0))
    return Scale(float(px_x), float(px_y), "grid", {"x": float(px_x), "y": float(px_y)}, conf, warnings)


def sheet_of_image(width_px: int, height_px: int) -> str:
    """The sheet (:data:`SHEETS_MM` key) whose aspect ratio is within :data:`SHEET_ASPECT_TOLERANCE` of the
    image's (long side / short side); "letter" when none is (a cropped scan or photo)."""
    long_side, short_side = max(width_px, height_px), max(min(width_px, height_px), 1)
    aspect = long_side / short_side
    name = min(SHEETS_MM, key=lambda k: abs(math.log(aspect * SHEETS_MM[k][1] / SHEETS_MM[k][0])))
    a, b = SHEETS_MM[name]
    return name if abs(aspect / (a / b) - 1.0) <= SHEET_ASPECT_TOLERANCE else "letter"


def scale_from_page_width(width_px: int, height_px: int) -> Scale:
    """Last-resort scale: the image is a whole landscape sheet, letter or A4 by its aspect ratio
    (:func:`sheet_of_image`); square pixels."""
    sheet = sheet_of_image(width_px, height_px)
    ppm = max(width_px, height_px) / SHEETS_MM[sheet][0]
    return Scale(ppm, ppm, "dpi", confidence=0.2, warnings=[f"scale assumed from the page size ({sheet})"])
