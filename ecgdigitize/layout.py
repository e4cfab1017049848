"""Layout: trace rows, their extents and the page template (3x4+1, 3x4+3, 3x4, 6x2, 12x1).

Rows come from the horizontal projection profile of the trace map after removing small connected
components (text, labels); each row's baseline is the profile's peak (the mode of trace height). The
template is chosen by a cost over the number of rows, the row durations and the column-boundary
evidence (separator ticks, lead labels, trace discontinuities at 1/4, 1/2, 3/4 of the row).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.signal import find_peaks

from ecgvocab import STANDARD_LEADS

log = logging.getLogger(__name__)


@dataclass
class Row:
    """A detected row of traces (pixels of the rectified working image)."""

    baseline_y: float
    y0: int
    y1: int
    x0: int
    x1: int
    strength: float = 0.0
    #: a row whose leads were printed at different heights (merged from profile peaks over different columns at
    #: least ROW_MERGE_MM apart): (x0, x1, height) in pixels of each part; empty for a row printed at one height
    levels: list[tuple[int, int, float]] = field(default_factory=list)

    def level_at(self, x: float) -> float:
        """The printed height (pixels) of the row's part at column ``x``: the nearest part's, or the baseline."""
        if not self.levels:
            return self.baseline_y
        return min(self.levels, key=lambda lv: max(lv[0] - x, x - lv[1], 0.0))[2]


@dataclass
class LeadBox:
    """Where one printed lead segment lies: row index, pixel x range, time window in seconds."""

    name: str
    row: int
    column: int
    x0: float
    x1: float
    t0: float
    t1: float
    baseline_y: float
    rhythm: bool = False
    #: the name was read from (or confirmed by) the lead label printed at the box's start
    named_by_label: bool = False


@dataclass
class Layout:
    """Chosen template and the lead boxes on the page."""

    name: str
    cost: float
    fits: bool
    rows: list[Row] = field(default_factory=list)
    columns: int = 0
    boxes: list[LeadBox] = field(default_factory=list)
    costs: dict[str, float] = field(default_factory=dict)
    column_evidence: list[list[float]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: lead labels read on the page (name, box, score) and each box compared with its label
    labels: list[dict] = field(default_factory=list)
    label_evidence: list[dict] = field(default_factory=list)
    #: the template's leads that are not on the image when it shows part of a page (placed by its labels); empty
    #: for a whole page
    absent: list[str] = field(default_factory=list)


def template_rows(name: str, rhythm: tuple[str, ...] | None = None) -> list[list[str]]:
    """Lead names per printed row of a template (rhythm rows are single-lead rows at the end)."""
    if name.startswith("3x4"):
        rows = [[STANDARD_LEADS[c * 3 + r] for c in range(4)] for r in range(3)]
        if rhythm is None:
            rhythm = {"3x4+1": ("II",), "3x4+3": ("II", "V1", "V5")}.get(name, ())
        return rows + [[r] for r in rhythm]
    if name == "3x5":
        return [[STANDARD_LEADS[c * 3 + r] for c in range(4)] + [FIFTEEN_LEAD_EXTRAS[r]] for r in range(3)]
    if name == "6x2":
        return [[STANDARD_LEADS[c * 6 + r] for c in range(2)] for r in range(6)]
    if name == "12x1":
        return [[n] for n in STANDARD_LEADS]
    raise ValueError(f"unknown layout {name!r}")


def grid_rows(name: str) -> list[list[str]]:
    """Lead names per row of a template's grid: :func:`template_rows` without the rhythm strips."""
    rows = template_rows(name)
    return rows[:3] if name.startswith(("3x4", "3x5")) else rows


TEMPLATES = ("3x4+1", "3x4+3", "3x4", "6x2", "12x1")
#: the 15-lead printout (3 rows of 5 columns of 2 s: the 3x4 grid and V4R, V8, V9 as a fifth column): a candidate
#: only on pages where one of its extra leads' labels is read (without labels it cannot be told from a 3x4 page
#: whose column boundaries went unseen)
FIFTEEN_LEAD_EXTRAS = ("V4R", "V8", "V9")
LABELLED_TEMPLATES = ("3x5",)


def row_map(prob: np.ndarray, px_per_mm: float, threshold: float = 0.5, bridge: bool = False) -> np.ndarray:
    """Trace map (float32) with small connected components (text, labels, specks) removed.

    bridge: thin (1 px) scanned traces break into pieces along steep QRS strokes and into dashes along
    faint flat stretches; with ``bridge`` the components are labelled on a dilated mask (about 0.6 mm up
    and down, at most 3 px, and 0.6 mm sideways, at most 4 px) so one trace stays one component (the original
    pixels are kept). Off by default: it can also chain the lines of header text into wide components."""
    b = (prob > threshold).astype(np.uint8)
    k = int(np.clip(round(0.6 * px_per_mm), 1, 3)) if bridge else 1
    kx = int(np.clip(round(0.6 * px_per_mm), 1, 4)) if bridge else 1
    lab_src = cv2.dilate(b, np.ones((2 * k + 1, 2 * kx + 1), np.uint8)) if bridge else b
    n, lab, stats, _ = cv2.connectedComponentsWithStats(lab_src, connectivity=8)
    if n <= 1:
        return np.zeros_like(prob, dtype=np.float32)
    wmm = stats[:, cv2.CC_STAT_WIDTH] / px_per_mm
    hmm = stats[:, cv2.CC_STAT_HEIGHT] / px_per_mm
    keep = (wmm >= 12.0) | ((hmm >= 6.0) & (wmm >= 2.0))
    keep[0] = False
    return np.where(keep[lab] & (b > 0), prob, 0.0).astype(np.float32)


#: gaps (mm) in a row's ink that do not end the row (a faint flat stretch, a broken stroke)
ROW_GAP_MM = 6.0
#: a blank gap (mm) between printed columns that a row still spans, to a neighbouring stretch of at least
#: COLUMN_MIN_MM (a scan whose printer left 7 mm between V1 and V4: the row ended before V4)
COLUMN_GAP_MM = 10.0
COLUMN_MIN_MM = 20.0


#: Neighbouring peaks of the row profile whose ink covers different columns are one row whose leads sit at
#: different heights when they are closer than this (mm): baseline wander, or tall QRS strokes of a high-gain page
#: (20 mm/mV) making a second peak; the row keeps one baseline ...
ROW_MERGE_MM = 12.0
#: ... or, further apart, when closer than this fraction of the page's median peak spacing: a printer that draws
#: each lead at its own offset (V6 drawn 12.8 mm above III, aVF and V3 of its row, 0.67 of the spacing of 19 mm);
#: the row then keeps each part's height (:attr:`Row.levels`) and each lead is read from its own level (taking the
#: parts of a high-gain page's row as levels cost it 12 dB).
ROW_MERGE_SPACING = 0.75


#: half height (mm) of the band around a merged part's own height in which its ink marks its columns
LEVEL_CORE_MM = 3.0


def _stretches(cols: np.ndarray, max_gap_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices into the sorted, non-empty column indices ``cols`` of the first and last column of each run whose gaps
    are at most ``max_gap_px``."""
    breaks = np.flatnonzero(np.diff(cols) > max_gap_px)
    return np.r_[0, breaks + 1], np.r_[breaks, cols.size - 1]


def _longest_stretch(cols: np.ndarray, max_gap_px: float) -> tuple[int, int] | None:
    """First and last of the longest run of sorted column indices ``cols`` whose gaps are at most ``max_gap_px``."""
    if cols.size == 0:
        return None
    starts, ends = _stretches(cols, max_gap_px)
    k = int(np.argmax(cols[ends] - cols[starts]))
    return int(cols[starts[k]]), int(cols[ends[k]])


def find_rows(rmap: np.ndarray, px_per_mm_y: float, px_per_mm_x: float) -> list[Row]:
    """Rows of traces from the cleaned trace map: baselines at the peaks of the row profile, bands
    halfway to the neighbours, x extent from the covered columns near the baseline."""
    H, W = rmap.shape
    prof = rmap.sum(axis=1).astype(np.float64)
    if prof.max() <= 0:
        return []
    k = max(1, int(round(3.0 * px_per_mm_y)))
    sm = np.convolve(prof, np.ones(k) / k, mode="same") if k > 1 else prof
    dist = max(2, int(round(8.0 * px_per_mm_y)))
    peaks, _ = find_peaks(sm, distance=dist, prominence=0.1 * sm.max())
    if peaks.size == 0:
        return []
    peaks = np.sort(peaks)
    # bands halfway between peaks; x extent = covered columns inside the band's core
    mids = np.r_[0, ((peaks[1:] + peaks[:-1]) // 2), H]
    cand: list[tuple[int, int, int, np.ndarray]] = []
    for i, pk in enumerate(peaks):
        lo, hi = mids[i], mids[i + 1]
        # the band reaches 90 % of the way to the neighbouring peaks: traces printed at a high gain
        # (20 mm/mV) and their calibration pulses leave a narrow core around the baseline for long
        # stretches, which would cut the row's x extent into pieces
        if len(peaks) > 1:
            a = int(round(pk - 0.9 * (pk - lo))) if i > 0 else int(round(pk - 0.9 * min(hi - pk, pk - lo)))
            b = (
                int(round(pk + 0.9 * (hi - pk))) + 1
                if i < len(peaks) - 1
                else int(round(pk + 0.9 * min(pk - lo, hi - pk))) + 1
            )
            a, b = max(0, min(a, pk - 2)), min(H, max(b, pk + 3))
        else:
            a, b = max(0, pk - int(12 * px_per_mm_y)), min(H, pk + int(12 * px_per_mm_y) + 1)
        cov = rmap[a:b].max(axis=0) > 0.5
        cand.append((int(pk), a, b, cov))
    # merge neighbouring peaks whose covered columns hardly overlap (one row whose leads sit at
    # different heights because of baseline wander)
    merged: list[tuple[int, int, int, np.ndarray]] = []
    parts: list[list[tuple[int, np.ndarray]]] = []  # the peaks merged into each row, with their columns
    spacing = float(np.median(np.diff(peaks))) if len(peaks) >= 3 else 0.0
    near = max(ROW_MERGE_MM * px_per_mm_y, ROW_MERGE_SPACING * spacing)
    for c in cand:
        if merged:
            p0, a0, b0, cov0 = merged[-1]
            close = (c[0] - p0) < near
            overlap = float((cov0 & c[3]).sum()) / max(1.0, float(min(cov0.sum(), c[3].sum())))
            if close and overlap < 0.3:
                w0, w1 = float(cov0.sum()), float(c[3].sum())
                pk = int(round((p0 * w0 + c[0] * w1) / max(w0 + w1, 1.0)))
                merged[-1] = (pk, min(a0, c[1]), max(b0, c[2]), cov0 | c[3])
                parts[-1].append((c[0], c[3]))
                continue
        merged.append(c)
        parts.append([(c[0], c[3])])
    rows: list[Row] = []
    for (pk, a, b, cov), row_parts in zip(merged, parts):
        if cov.sum() < 20.0 * px_per_mm_x:
            continue
        # longest stretch of covered columns allowing gaps up to ROW_GAP_MM, extended over blank gaps between
        # printed columns (up to COLUMN_GAP_MM) to neighbouring stretches of at least COLUMN_MIN_MM
        xs = np.flatnonzero(cov)
        seg_starts, seg_ends = _stretches(xs, ROW_GAP_MM * px_per_mm_x)
        lens = xs[seg_ends] - xs[seg_starts]
        s = int(np.argmax(lens))
        first = last = s
        while (
            first > 0
            and lens[first - 1] >= COLUMN_MIN_MM * px_per_mm_x
            and xs[seg_starts[first]] - xs[seg_ends[first - 1]] <= COLUMN_GAP_MM * px_per_mm_x
        ):
            first -= 1
        while (
            last < len(lens) - 1
            and lens[last + 1] >= COLUMN_MIN_MM * px_per_mm_x
            and xs[seg_starts[last + 1]] - xs[seg_ends[last]] <= COLUMN_GAP_MM * px_per_mm_x
        ):
            last += 1
        x0, x1 = int(xs[seg_starts[first]]), int(xs[seg_ends[last]])
        if x1 - x0 < 20.0 * px_per_mm_x:
            continue
        # baseline: mode of the trace height in the band (sharp raw-profile peak near the smoothed one)
        sub = rmap[a:b, x0 : x1 + 1].sum(axis=1)
        j = int(np.argmax(np.convolve(sub, np.ones(3) / 3, mode="same")))
        j0, j1 = max(0, j - 2), min(sub.size, j + 3)
        wts = sub[j0:j1]
        base = a + float(np.dot(np.arange(j0, j1), wts) / max(wts.sum(), 1e-9))
        levels = []
        heights = [peak for peak, _ in row_parts]
        if max(heights) - min(heights) >= ROW_MERGE_MM * px_per_mm_y:  # (closer: one baseline, see ROW_MERGE_MM)
            # each part's columns: its ink within LEVEL_CORE_MM of its own height (another part's tall QRS strokes
            # cross that height only briefly), the longest stretch with gaps up to ROW_GAP_MM
            core = int(round(LEVEL_CORE_MM * px_per_mm_y))
            for peak, _ in row_parts:
                near_cols = rmap[max(0, peak - core) : peak + core + 1, x0 : x1 + 1].max(axis=0) > 0.5
                stretch = _longest_stretch(np.flatnonzero(near_cols), ROW_GAP_MM * px_per_mm_x)
                if stretch is not None:
                    levels.append((x0 + stretch[0], x0 + stretch[1] + 1, float(peak)))
        rows.append(Row(base, 0, H, x0, x1 + 1, float(sm[pk]), levels if len(levels) > 1 else []))
    # merge rows that are too close (a tall QRS profile can make two peaks)
    rows.sort(key=lambda r: r.baseline_y)
    for i, r in enumerate(rows):
        r.y0 = 0 if i == 0 else int(round(0.5 * (rows[i - 1].baseline_y + r.baseline_y)))
        r.y1 = H if i == len(rows) - 1 else int(round(0.5 * (r.baseline_y + rows[i + 1].baseline_y)))
    # widen the outer bands to at most ~ the inner spacing
    if len(rows) >= 2:
        spacing = float(np.median(np.diff([r.baseline_y for r in rows])))
        rows[0].y0 = max(0, int(round(rows[0].baseline_y - 0.65 * spacing)))
        rows[-1].y1 = min(H, int(round(rows[-1].baseline_y + 0.65 * spacing)))
    elif rows:
        rows[0].y0 = max(0, int(round(rows[0].baseline_y - 30 * px_per_mm_y)))
        rows[0].y1 = min(H, int(round(rows[0].baseline_y + 30 * px_per_mm_y)))
    return rows


def boundary_evidence(
    ink: np.ndarray,
    row: Row,
    x_start: float,
    x_end: float,
    px_per_mm_x: float,
    px_per_mm_y: float,
    fractions: tuple[float, ...] = (0.25, 0.5, 0.75),
) -> list[float]:
    """Evidence (0..1+) of a lead boundary at each fraction of the row's trace span: ink of separator
    ticks / labels just around and above the baseline at the boundary, compared with other places."""
    H, W = ink.shape
    span = x_end - x_start
    if span <= 10:
        return [0.0] * len(fractions)
    b = row.baseline_y
    ya, yb = int(max(0, b - 10.0 * px_per_mm_y)), int(min(H, b - 3.5 * px_per_mm_y))
    if yb <= ya:
        return [0.0] * len(fractions)
    zone = ink[ya:yb] > 0.5
    colsum = zone.sum(axis=0).astype(np.float64)
    wlen = max(2, int(round(5.0 * px_per_mm_x)))
    cs = np.r_[0.0, np.cumsum(colsum)]

    def window(x: float) -> float:
        a = int(np.clip(x - 0.6 * px_per_mm_x, 0, W))
        return float(cs[min(W, a + wlen)] - cs[a])

    ref_fr = np.arange(0.0625, 1.0, 0.125)
    ref = np.array([window(x_start + f * span) for f in ref_fr])
    base_level = float(np.median(ref)) if ref.size else 0.0
    # label ink: ~3 mm tall text a few mm wide
    label_ink = 1.5 * px_per_mm_x * 3.0 * px_per_mm_y * 0.15
    out = []
    for f in fractions:
        v = window(x_start + f * span)
        out.append(float(np.clip((v - base_level) / max(label_ink, 1.0), 0.0, 2.0)))
    return out


def fit_layout(
    rows: list[Row],
    durations_s: list[float],
    evidence: list[list[float]],
    rhythm: dict[str, tuple[str, ...]] | None = None,
    templates: tuple[str, ...] = TEMPLATES,
) -> tuple[str, float, dict[str, float]]:
    """Template (of ``templates``) with the lowest cost for the found rows; returns (name, cost, all costs).

    Cost = |rows - template rows| + mean relative deviation of row durations from the longest row
    (short rows are unexpected in every template) + column-boundary mismatch."""
    n = len(rows)
    costs: dict[str, float] = {}
    dmax = max(durations_s) if durations_s else 0.0
    dur_cost = float(np.mean([abs(d - dmax) / max(dmax, 1e-6) for d in durations_s])) if durations_s else 1.0
    for name in templates:
        trows = template_rows(name)
        c = abs(n - len(trows)) * 1.0
        c += dur_cost
        # column evidence: expected boundaries per row at fractions 1/4, 1/2, 3/4
        mism = []
        for i, row_leads in enumerate(trows[:n]):
            ncol = len(row_leads)
            # (5 columns: boundaries at 1/5 ... 4/5, none at the measured fractions)
            expect = {1: (0, 0, 0), 2: (0, 1, 0), 4: (1, 1, 1), 5: (0, 0, 0)}[ncol]
            if i < len(evidence):
                e = np.clip(np.asarray(evidence[i]), 0, 1)
                mism.append(float(np.mean(np.abs(np.asarray(expect) - e))))
        c += 0.6 * (float(np.mean(mism)) if mism else 0.5)
        costs[name] = round(c, 4)
    best = min(costs, key=costs.get)
    return best, costs[best], costs
