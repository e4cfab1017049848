"""Classical per-pixel trace probability and grid maps from an RGB page.

Trace ink is dark and nearly colourless; grid lines are light and coloured (red, pink, blue, green...)
or light grey. The map uses darkness relative to the local paper brightness measured on the brightest
channel (so coloured grid lines stay "light"), an adaptive threshold between grid and ink darkness,
and, for grey/black-and-white pages, removal of long thin straight lines (grid) by morphology.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

log = logging.getLogger(__name__)

#: Faint ink on a coloured grid (hysteresis): coloured grid lines have a bright maximum channel, so their darkness
#: on it stays near 0; a thin (1-2 px) anti-aliased trace spreads its ink over two pixels of half darkness each,
#: below the Otsu threshold between faint and solid ink. Pixels at least this dark (fraction of the local paper
#: brightness) are trace when they touch a pixel above the threshold...
FAINT_INK_MIN_DARKNESS = 0.2
#: ... and at most this far below the threshold (darkness units), so that a page with a low threshold keeps it.
FAINT_INK_MAX_BELOW_THRESHOLD = 0.3
#: ... only where such faint pixels are rare (fraction of the page): shaded photographs and JPEG noise have many.
FAINT_INK_MAX_PAGE_FRACTION = 0.05
#: ... only where they join the solid ink into far fewer pieces (connected components after / before): the
#: solid pixels of a thin anti-aliased trace are a dotted line of hundreds of fragments that its faint pixels
#: join (0.04-0.16 on 100-DPI generator pages and thin-line scans), while a solid trace is already whole (about 1)
#: and widening it by its faint rim only shifts the traced centre where the rim is uneven (-0.9 dB on 200-DPI
#: generator pages).
FAINT_INK_MAX_COMPONENT_RATIO = 0.5
#: ... and only for thin lines (median vertical run of solid ink, pixels; 1-2 on those pages): a thicker line broken
#: into pieces is broken by other things (a resampled turned page's specks and text: -4 dB with its rim added).
FAINT_INK_MAX_LINE_WIDTH_PX = 2.0
#: ... only on grids light on their brightest channel (pink, red, light blue: about 0; a dark green grid's lines are
#: as dark as faint ink and would join the trace).
FAINT_INK_MAX_GRID_DARKNESS = 0.1
#: trace probability given to a faint ink pixel kept by hysteresis (just above the 0.5 tracing threshold)
FAINT_INK_PROB = 0.6
#: Dense grey grids: an ECG trace covers 1-8 % of a page (1-4 % on the Challenge generator's grey-grid pages, up to 8 %
#: on its coloured ones, measured after line removal); where more of a grey-grid page is above the trace threshold,
#: the grid itself passed it...
DENSE_GRID_MAX_INK_FRACTION = 0.12
#: ... and the threshold is split again above it, to at most this darkness (a trace lighter than that is not
#: separable from such a grid by darkness).
DENSE_GRID_MAX_THRESHOLD = 0.7
#: ... and ink above the first split within this many pixels of the ink above the second joins it (the trace's
#: lighter stretches between its darker ones), not further (grid lines crossing the trace stay out).
DENSE_GRID_GROW_PX = 3
#: ... growing only from pieces of at least this many pixels per (guessed) pixel per mm, i.e. a 1-px line this many
#: mm long (the grid-line crossings left above the second split are specks of 1-4 px on a 5 px/mm page).
DENSE_GRID_SEED_MIN_MM = 3.0
#: Shadows: a pixel's darkness is also measured against the paper within this many mm (a grey closing of the brightest
#: channel, i.e. a black top-hat: Serra, Image Analysis and Mathematical Morphology, 1982). Printed ink is thinner than
#: this (traces 0.2-0.6 mm, label strokes under 0.5 mm) and keeps its darkness there; the edge of a crease's or
#: wrinkle's shadow is a dark band wider than it and keeps little (on the Challenge generator's wrinkled pages such
#: edges were traced as spikes and pulled traces off their rows). A page's first scale guess sets the size in pixels
#: (:data:`PAGE_WIDTH_MM`).
SHADOW_KERNEL_MM = 2.0
#: ... a pixel keeping less than this share of its darkness there is no trace ink. A trace keeps about all of it, also
#: under a shadow (the shadow darkens its paper and its ink alike: 0.97 median on a grey-grid photograph); a shadow's
#: edge keeps little. Only the trace map changes: its threshold, the line width, the labels' ink and the grid come from
#: the darkness as it is. Tried: taking the lower darkness everywhere (+2.2 dB on the generator's wrinkled pages, but a
#: grey-grid photograph's threshold fell, its line width halved and it failed) and a share of 0.75 (that photograph's
#: wave tops and a rotated page's dark corners went too: both worse); 0.5 changed no page for the worse.
SHADOW_INK_SHARE = 0.5
#: width of a landscape letter/A4 ECG page (mm), rounded (:data:`ecgdigitize.scale.LETTER_WIDTH_MM` is the sheet's),
#: for a first pixels-per-mm guess before the grid is measured
PAGE_WIDTH_MM = 280.0


@dataclass
class TraceMap:
    """Per-pixel maps of one page (all (H, W) float32 in [0, 1]).

    prob: probability that a pixel is trace ink (signal, and for the classical map also text/pulses).
    grid: strength of grid-line evidence (trace pixels suppressed).
    ink: darkness of every pixel (1 = black), independent of the trace map source.
    paper_rgb / grid_rgb: estimated paper and grid colours (0..255), grid None if not found.
    source: "classical" or "given".
    binarised: the page is black and white (a copy or a thresholded scan): its grid lines were removed by
      shape, as thin straight lines, not by colour.
    """

    prob: np.ndarray
    grid: np.ndarray
    ink: np.ndarray
    paper_rgb: tuple[float, float, float] = (255.0, 255.0, 255.0)
    grid_rgb: tuple[float, float, float] | None = None
    grid_is_grey: bool = False
    threshold: float = 0.5
    source: str = "classical"
    warnings: list[str] = field(default_factory=list)
    binarised: bool = False


def _local_background(channel: np.ndarray, ksize: int) -> np.ndarray:
    """Local paper level of a (H, W) float32 channel: grey dilation (max filter) then box blur."""
    k = max(3, int(ksize) | 1)
    bg = cv2.dilate(channel, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    bg = cv2.blur(bg, (k, k))
    return np.maximum(bg, 1.0)


def _darkness_near(channel: np.ndarray, size_px: float) -> np.ndarray:
    """Darkness (H, W) in [0, 1] of a (H, W) float32 channel against the paper within ``size_px`` pixels: a grey closing
    (dilation then erosion) with a square of that side (odd, at least 5 px) gives that paper; ink narrower than it keeps
    its darkness, dark regions wider than it (shadows) get none (see :data:`SHADOW_KERNEL_MM`)."""
    k = max(5, int(round(size_px)) | 1)
    paper = np.maximum(
        cv2.morphologyEx(channel, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))), 1.0
    )
    return np.clip(1.0 - channel / paper, 0.0, 1.0)


def otsu_threshold(values: np.ndarray, lo: float = 0.0, hi: float = 1.0, bins: int = 128) -> float:
    """Otsu threshold of 1-D ``values`` in [lo, hi]."""
    if values.size < 10:
        return 0.5 * (lo + hi)
    hist, edges = np.histogram(values, bins=bins, range=(lo, hi))
    hist = hist.astype(np.float64)
    centres = 0.5 * (edges[1:] + edges[:-1])
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1e-9)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1e-9)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(centres[int(np.argmax(between))])


def remove_straight_lines(binary: np.ndarray, min_length: int) -> np.ndarray:
    """Mask (bool, (H, W)) of pixels of ``binary`` lying on horizontal or vertical straight runs
    at least ``min_length`` pixels long (grid lines); thin 1-3 px lines only."""
    b = binary.astype(np.uint8)
    L = max(5, int(min_length))
    horiz = cv2.morphologyEx(b, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (L, 1)))
    vert = cv2.morphologyEx(b, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, L)))
    lines = (horiz | vert).astype(bool)
    return lines


def _line_angle(ys: np.ndarray, xs: np.ndarray, max_deg: float = 3.0, step_deg: float = 0.1) -> float:
    """Skew angle (degrees) of an axis-aligned line grid from its pixel coordinates: the shear that makes
    the row and column projections sharpest (sum of squared counts)."""
    ys = ys.astype(np.float64)
    xs = xs.astype(np.float64)
    best, best_a = -1.0, 0.0
    for a in np.arange(-max_deg, max_deg + 1e-9, step_deg):
        t = math.tan(math.radians(a))
        yh = np.round(ys - xs * t).astype(np.int64)
        xv = np.round(xs + ys * t).astype(np.int64)
        sc = float(
            (np.bincount(yh - yh.min()).astype(np.float64) ** 2).sum()
            + (np.bincount(xv - xv.min()).astype(np.float64) ** 2).sum()
        )
        if sc > best:
            best, best_a = sc, float(a)
    return best_a


def thin_grid_lines(binary: np.ndarray, min_length: int, thick_px: int = 4) -> np.ndarray:
    """Mask (bool, (H, W)) of thin straight grid lines in a binarised page ((H, W) bool), for pages
    where grid and trace have the same darkness (black-and-white copies).

    Thin: not covered by any ``thick_px`` x ``thick_px`` square of ink (grid lines are 1-3 px; a trace
    pixel inside a thick stroke is kept, including where a grid line crosses the trace). Straight: on a
    horizontal or vertical run of at least ``min_length`` pixels after deskewing by the grid angle
    (gaps of 1-2 px bridged)."""
    b = binary.astype(np.uint8)
    thick = cv2.morphologyEx(b, cv2.MORPH_OPEN, np.ones((thick_px, thick_px), np.uint8))
    thin = (b > 0) & (thick == 0)
    ys, xs = np.nonzero(thin)
    if ys.size < 100:
        return np.zeros_like(thin)
    step = max(1, ys.size // 200_000)
    angle = _line_angle(ys[::step], xs[::step])
    h, w = thin.shape
    M = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    tr = cv2.warpAffine(thin.astype(np.uint8), M, (w, h), flags=cv2.INTER_NEAREST)
    tr = cv2.dilate(tr, np.ones((3, 3), np.uint8))
    L = max(5, int(min_length))
    horiz = cv2.morphologyEx(tr, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (L, 1)))
    vert = cv2.morphologyEx(tr, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, L)))
    lines_r = horiz | vert
    # shorter thin pieces on the same grid lines (between trace crossings, beside the trace, in labels)
    row_on = (horiz > 0).sum(axis=1) >= 0.2 * w
    col_on = (vert > 0).sum(axis=0) >= 0.2 * h
    if row_on.any() or col_on.any():
        L2 = max(5, L // 8)
        on_h = cv2.dilate(row_on.astype(np.uint8)[:, None], np.ones((3, 1), np.uint8)).astype(bool)
        on_v = cv2.dilate(col_on.astype(np.uint8)[None, :], np.ones((1, 3), np.uint8)).astype(bool)
        short_h = cv2.morphologyEx(tr * on_h, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (L2, 1)))
        short_v = cv2.morphologyEx(tr * on_v, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, L2)))
        lines_r = lines_r | short_h | short_v
    back = cv2.warpAffine(lines_r, M, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    back = cv2.dilate(back, np.ones((3, 3), np.uint8))
    mask = thin & (back > 0)
    # thick horizontal grid lines (a dark major grid binarised as heavy as the trace): every pixel row
    # that carries a long straight horizontal line across the page; on those rows, ink in horizontal
    # runs is grid, except pixels of vertical strokes crossing the line (a flat stretch of trace lying on
    # a grid line goes too; it is bridged by interpolation later)
    tr_all = cv2.dilate(cv2.warpAffine(b, M, (w, h), flags=cv2.INTER_NEAREST), np.ones((1, 3), np.uint8))
    horiz_all = cv2.morphologyEx(tr_all, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (L, 1)))
    rows_all = (horiz_all > 0).sum(axis=1) >= 0.3 * w
    if rows_all.any():
        L2 = max(5, L // 8)
        on = rows_all.astype(np.uint8)[:, None]
        flat = cv2.morphologyEx(tr_all * on, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (L2, 1)))
        flat_back = cv2.warpAffine(flat | (horiz_all * on), M, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
        flat_back = cv2.dilate(flat_back, np.ones((1, 3), np.uint8))
        line_px = int(rows_all.sum())
        n_lines = max(1, int(np.count_nonzero(np.diff(np.r_[0, rows_all.astype(np.int8)]) == 1)))
        k = 2 * max(1, int(round(line_px / n_lines))) + 3  # taller than a grid line: a crossing stroke
        strokes = cv2.morphologyEx(b, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, k)))
        mask |= (b > 0) & (flat_back > 0) & (strokes == 0)
    return mask


#: The image's outermost pixel rows and columns inked along at least this share of their length are a frame, never a
#: trace: the Challenge generator draws a 1-px black one round its pages (scanners leave dark edges too), and a
#: rhythm strip whose row band reached the bottom edge was traced along it for its first 0.15 s (-2.1 mV there; the
#: page failed its self-check).
FRAME_MIN_INK_SHARE = 0.8
#: ... looked for up to this many pixels in from each edge (a frame line one to a few pixels wide).
FRAME_MAX_PX = 3


def without_image_frame(prob: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Copy of the trace probability ``prob`` (H, W) without the image's frame (see :data:`FRAME_MIN_INK_SHARE`):
    from each edge inwards, pixel rows (columns) inked along most of their length go, up to :data:`FRAME_MAX_PX`."""
    out = prob.copy()
    h, w = out.shape
    sides = (
        [(slice(k, k + 1), slice(None)) for k in range(min(FRAME_MAX_PX, h))],
        [(slice(h - 1 - k, h - k), slice(None)) for k in range(min(FRAME_MAX_PX, h))],
        [(slice(None), slice(k, k + 1)) for k in range(min(FRAME_MAX_PX, w))],
        [(slice(None), slice(w - 1 - k, w - k)) for k in range(min(FRAME_MAX_PX, w))],
    )
    for lines in sides:
        for sl in lines:
            if float((out[sl] > threshold).mean()) < FRAME_MIN_INK_SHARE:
                break
            out[sl] = 0.0
    return out


def classical_trace_map(rgb: np.ndarray) -> TraceMap:
    """Trace probability and grid maps of an (H, W, 3) uint8 RGB page without a neural network."""
    h, w = rgb.shape[:2]
    img = rgb.astype(np.float32)
    maxc = img.max(axis=2)
    minc = img.min(axis=2)
    lum = img @ np.array([0.299, 0.587, 0.114], np.float32)
    k = max(15, int(round(max(h, w) / 60)))
    bg_max = _local_background(maxc, k)
    bg_lum = _local_background(lum, k)
    # darkness on the brightest channel: coloured grid lines stay near 0, black ink near 1
    dark = np.clip(1.0 - maxc / bg_max, 0.0, 1.0)
    lum_dark = np.clip(1.0 - lum / bg_lum, 0.0, 1.0)
    sat = (maxc - minc) / np.maximum(maxc, 1.0)

    warnings: list[str] = []
    # paper colour: median of the brightest pixels
    flat_lum = lum.ravel()
    step = max(1, flat_lum.size // 200_000)
    sub_lum = flat_lum[::step]
    bright_thr = np.percentile(sub_lum, 60)
    sub_rgb = img.reshape(-1, 3)[::step]
    paper = (
        np.median(sub_rgb[sub_lum >= bright_thr], axis=0) if np.any(sub_lum >= bright_thr) else np.array([255.0] * 3)
    )

    # adaptive threshold between grid and ink darkness (Otsu over clearly non-paper pixels)
    sub_dark = dark.ravel()[::step]
    cand = sub_dark[sub_dark > 0.12]
    thr = 0.45
    if cand.size > 50:
        thr = float(np.clip(otsu_threshold(cand, 0.12, 1.0), 0.3, 0.6))
    soft = 0.08
    prob = np.clip((dark - (thr - soft)) / (2 * soft), 0.0, 1.0)

    # grid colour: mid-dark (in luminance) pixels that are not ink
    gmask_sub = (lum_dark.ravel()[::step] > 0.08) & (sub_dark < thr - soft)
    grid_rgb = None
    grid_is_grey = False
    if gmask_sub.sum() > 100:
        grid_rgb_arr = np.median(sub_rgb[gmask_sub], axis=0)
        grid_rgb = tuple(float(v) for v in grid_rgb_arr)
        gs = (grid_rgb_arr.max() - grid_rgb_arr.min()) / max(grid_rgb_arr.max(), 1.0)
        grid_is_grey = bool(gs < 0.12)

    if (
        not grid_is_grey
        and grid_rgb is not None
        and 1.0 - max(grid_rgb) / max(float(np.max(paper)), 1.0) < FAINT_INK_MAX_GRID_DARKNESS
    ):
        prob = _with_faint_ink(prob, dark, thr)

    # grey / bw pages: dark grid lines may pass the threshold; remove long straight thin lines
    prob = _without_straight_lines(prob, dark, thr)
    if grid_is_grey and float((prob > 0.5).mean()) > DENSE_GRID_MAX_INK_FRACTION:
        # a dense grey grid as dark as the Otsu split: most of "ink" is grid broken into short pieces (JPEG,
        # uneven scan) that line removal misses; split the ink class again (three-class Otsu: paper, grid, trace)
        above = sub_dark[sub_dark > thr]
        if above.size > 50:
            thr2 = float(min(otsu_threshold(above, thr, 1.0), DENSE_GRID_MAX_THRESHOLD))
            if thr2 > thr:
                log.debug("dense grey grid: trace threshold raised from %.2f to %.2f", thr, thr2)
                weak = prob > 0.5  # above the first split, straight lines removed
                thr = thr2
                prob = np.clip((dark - (thr - soft)) / (2 * soft), 0.0, 1.0)
                prob = _without_straight_lines(prob, dark, thr)
                seed_px = DENSE_GRID_SEED_MIN_MM * max(h, w) / PAGE_WIDTH_MM
                prob = _grown_into(prob, weak, DENSE_GRID_GROW_PX, seed_px)
    # shadows: no ink where the darkness is mostly that of a shadow (SHADOW_KERNEL_MM)
    near = _darkness_near(maxc, SHADOW_KERNEL_MM * max(h, w) / PAGE_WIDTH_MM)
    prob = np.where(near < SHADOW_INK_SHARE * dark, 0.0, prob).astype(np.float32)
    # black-and-white copies: grid lines as dark as the trace; remove thin straight lines by shape (only on
    # binarised pages: elsewhere, e.g. on light grey grids, thin flat stretches of a thin trace would go too)
    binary = prob > 0.5
    thin_lines = np.zeros((h, w), bool)
    # Binarised pages have almost no mid-grey pixels among the non-paper ones (anti-aliased renders and scans do).
    nonpaper = sub_lum < 0.85 * float(np.max(paper))
    midgrey = nonpaper & (sub_lum > 60.0) & (sub_lum < 190.0)
    binarised = bool(nonpaper.sum() > 0 and midgrey.sum() < 0.08 * nonpaper.sum())
    if binary.any() and binarised:
        ppm_est = max(h, w) / PAGE_WIDTH_MM  # a landscape letter/A4 page filling the image
        thin_lines = thin_grid_lines(binary, int(round(15.0 * ppm_est)))
        frac = thin_lines.sum() / max(binary.sum(), 1)
        if frac > 0.1:
            prob = np.where(thin_lines, 0.0, prob).astype(np.float32)
            log.debug("removed %.1f%% thin grid-line pixels from the trace map", 100 * frac)
        else:
            thin_lines[:] = False

    # grid evidence: light coloured or grey lines, away from ink and its anti-aliased halo
    halo = cv2.dilate(prob, np.ones((5, 5), np.uint8))
    grid = np.maximum(lum_dark, np.clip(sat - 0.05, 0, 1) * (1.0 - dark)) * (1.0 - halo)
    grid = np.where(dark > thr, 0.0, grid).astype(np.float32)
    if thin_lines.any():
        grid = np.maximum(grid, thin_lines.astype(np.float32))
    return TraceMap(
        prob=prob.astype(np.float32),
        grid=grid,
        ink=dark.astype(np.float32),
        paper_rgb=tuple(float(v) for v in paper),
        grid_rgb=grid_rgb,
        grid_is_grey=grid_is_grey,
        threshold=thr,
        source="classical",
        warnings=warnings,
        binarised=binarised,
    )


def _without_straight_lines(prob: np.ndarray, dark: np.ndarray, thr: float) -> np.ndarray:
    """``prob`` (H, W) with the pixels of long straight horizontal and vertical runs of ink removed (grid lines of grey
    and black-and-white pages that pass the threshold ``thr``), keeping the darkest ink on them (a trace crossing a
    line) unless most of the ink is on lines."""
    h, w = prob.shape
    binary = prob > 0.5
    if not binary.any():
        return prob
    L = max(40, int(round(max(h, w) * 0.12)))
    lines = remove_straight_lines(binary, L)
    frac = lines.sum() / max(binary.sum(), 1)
    if frac <= 0.02:
        return prob
    very_dark = dark > min(0.95, thr + 0.3)
    kill = lines & ~very_dark if frac < 0.6 else lines
    log.debug("removed %.1f%% straight-line pixels from the trace map", 100 * frac)
    return np.where(kill, 0.0, prob).astype(np.float32)


def _grown_into(prob: np.ndarray, weak: np.ndarray, steps_px: int, min_seed_px: float) -> np.ndarray:
    """``prob`` (H, W) with the ``weak`` pixels (bool, (H, W)) within ``steps_px`` 8-connected steps of its ink pieces
    of at least ``min_seed_px`` pixels raised to FAINT_INK_PROB: a geodesic dilation that closes the short gaps of a
    trace cut by a raised threshold, without following the grid lines that cross it further than that (nor growing
    from the specks where grid lines cross, which are smaller)."""
    ink = prob > 0.5
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    big = stats[:, cv2.CC_STAT_AREA] >= min_seed_px
    big[0] = False
    grown = big[labels]
    kernel = np.ones((3, 3), np.uint8)
    for _ in range(max(0, int(steps_px))):
        grown = (cv2.dilate(grown.astype(np.uint8), kernel) > 0) & (weak | ink)
    return np.where(grown & ~ink, FAINT_INK_PROB, prob).astype(np.float32)


def _with_faint_ink(prob: np.ndarray, dark: np.ndarray, thr: float) -> np.ndarray:
    """``prob`` (H, W) with the faint ink pixels that are 8-connected to solid ink (darkness ``dark`` above the
    threshold ``thr``) raised to FAINT_INK_PROB: the anti-aliased halves of a thin trace on a coloured grid
    (hysteresis thresholding; Canny 1986 uses the same two-threshold rule for edges). Unchanged where faint pixels
    are common (shading, noise), since they would then join the trace in blobs, and where the solid ink is
    already in one piece per line (:data:`FAINT_INK_MAX_COMPONENT_RATIO`), and where lines are thick."""
    low = max(FAINT_INK_MIN_DARKNESS, thr - FAINT_INK_MAX_BELOW_THRESHOLD)
    weak = dark > low
    if (
        low >= thr - 0.05
        or weak.mean() > FAINT_INK_MAX_PAGE_FRACTION
        or line_width_px(prob) > FAINT_INK_MAX_LINE_WIDTH_PX
    ):
        return prob
    strong = prob > 0.5
    n, labels = cv2.connectedComponents(weak.astype(np.uint8), connectivity=8)
    if n <= 1:
        return prob
    touching = np.zeros(n, bool)
    touching[np.unique(labels[strong])] = True
    touching[0] = False
    keep = touching[labels] & ~strong
    n_strong = cv2.connectedComponents(strong.astype(np.uint8), connectivity=8)[0] - 1
    n_joined = cv2.connectedComponents((strong | keep).astype(np.uint8), connectivity=8)[0] - 1
    if n_joined > FAINT_INK_MAX_COMPONENT_RATIO * n_strong:
        return prob
    return np.where(keep, np.maximum(prob, FAINT_INK_PROB), prob).astype(np.float32)


def line_width_px(prob: np.ndarray, threshold: float = 0.5) -> float:
    """Median vertical extent (pixels) of the runs of ``prob`` (H, W) above ``threshold`` in each column: about the
    printed line width (flat stretches dominate; steep strokes and text are fewer); 0 when there is no ink."""
    b = (prob > threshold).astype(np.int8)
    d = np.diff(np.pad(b, ((1, 1), (0, 0))), axis=0).T  # columns as rows: starts +1, ends -1
    starts = np.flatnonzero(d.ravel() == 1)
    ends = np.flatnonzero(d.ravel() == -1)
    if starts.size == 0:
        return 0.0
    return float(np.median(ends - starts))


def given_trace_map(rgb: np.ndarray, trace_prob: np.ndarray) -> TraceMap:
    """Wrap a neural trace probability (H, W) in [0, 1] (resized to the image if needed) and compute
    the grid map from the image (for orientation and scale)."""
    base = classical_trace_map(rgb)
    p = np.asarray(trace_prob, dtype=np.float32)
    if p.ndim == 3:
        p = p[..., 0]
    h, w = rgb.shape[:2]
    warnings = list(base.warnings)
    if p.shape != (h, w):
        warnings.append(f"trace_prob shape {p.shape} resized to the image ({h}, {w})")
        p = cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR)
    p = np.nan_to_num(p, nan=0.0)
    if p.max() > 1.0 + 1e-6:
        p = p / max(float(p.max()), 1e-6)
    p = np.clip(p, 0.0, 1.0)
    grid = base.grid * (1.0 - p)
    return TraceMap(
        prob=p,
        grid=grid.astype(np.float32),
        ink=base.ink,
        paper_rgb=base.paper_rgb,
        grid_rgb=base.grid_rgb,
        grid_is_grey=base.grid_is_grey,
        threshold=0.5,
        source="given",
        warnings=warnings,
    )
