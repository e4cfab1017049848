"""Read the printed lead names (I, II, III, aVR, aVL, aVF, V1-V6, V3R, V4R, V7-V9) on an ECG page.

Method (no OCR engine, no downloaded weights):

1. Binarise the ink map (grid already removed) at one or two thresholds: just above the paper level (keeps
   thin anti-aliased text) and the Otsu split of the inked pixels (separates text from a leftover grey grid).
2. Strip long strokes: pixels on horizontal runs longer than ``TRACE_RUN_H_MM`` or vertical runs longer than
   ``TRACE_RUN_V_MM`` (trace baselines, grid lines, separators, QRS spikes) are removed, which also frees
   most labels that touch the trace.
3. Connected components of text size are glyphs; each glyph is chained to its nearest right neighbour of
   similar height sharing its text baseline (gap below ``WORD_GAP_FACTOR`` glyph heights).  Every run of
   1..``MAX_SPAN_GLYPHS`` consecutive glyphs of a chain is a candidate word.
4. Each candidate crop (only the ink of the components inside its box) is normalised to ``NORM_H`` x
   ``NORM_W`` pixels preserving the aspect ratio, described by HOG-like gradient histograms (8 signed
   orientations per 4 x 4 cell), pooled pixels and its aspect ratio, and classified by a small numpy MLP
   ensemble into the lead names or a reject class.  The MLPs are trained (fixed seed, a few seconds on one
   core; once per training, stored in the model folder by :func:`save_classifier`, else at first use) on
   synthetic crops: the names (and case variants 'AVR', 'avr', 'V4r'...)
   printed with the fonts bundled with matplotlib and OpenCV's Hershey fonts on canvases that are degraded
   like a page (size, stroke width, rotation, shear, blur, noise, resolution loss, JPEG blockiness, a trace
   or grid crossing or touching the text, strokes erased through it, binarisation threshold), and reject
   examples (page text, lead names with a character changed such as '12' for 'V2' or 'ID' for 'II',
   names with text glued on, pieces of synthetic traces) passed through the same binarise/strip/crop steps.
5. A first pass with sizes in mm finds confidently read labels; their median height sets a second pass that
   strips strokes longer than about a label height (freeing labels that touch the trace).  Page context then
   adjusts the classifier's probability: labels line up (same text line, or same column start) with other
   confidently read labels, stand alone (not inside a chain of text), are not part of a trace-sized stroke,
   have the page's label height and lie inside the image; lone bars ('I'), easily confused with strokes,
   need that context.  Overlapping candidates are resolved greedily (longer words preferred when confident,
   so 'III' beats 'II' + 'I').

All lengths given in millimetres are converted with the page's ``px_per_mm``.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

from ecgvocab import STANDARD_LEADS, lead_key

from .trace_map import otsu_threshold

log = logging.getLogger(__name__)

#: canonical lead names the reader knows (the classifier's classes, plus the reject class)
LEAD_NAMES: tuple[str, ...] = tuple(STANDARD_LEADS) + ("V3R", "V4R", "V7", "V8", "V9")
REJECT = "reject"
CLASSES: tuple[str, ...] = LEAD_NAMES + (REJECT,)

# --- page analysis (lengths in mm) ---
#: Printers' type is often narrower than the fonts the classifier learnt from: a phone photograph's bold condensed
#: 'V4', glyphs 0.6 of their height wide, was read as no label and its 'V5' at 0.56. A word standing alone (no ink
#: just left of it) is in condensed type when its glyphs other than bars are in the median narrower than this
#: fraction of their height (the bundled fonts' capitals and digits: 0.75-1.0) ...
CONDENSED_ASPECT = 0.7
#: ... (a glyph narrower than this fraction of its height is a bar: 'I', '1') ...
BAR_ASPECT = 0.35
#: ... and is then also read widened to this width / height, by at most :data:`MAX_WIDEN`; the widened reading is kept
#: where its most probable lead name is the more probable (that 'V4' then reads 0.98, 'V5' 0.98) ...
TYPE_ASPECT = 0.85
MAX_WIDEN = 1.6
#: ... and at least this probable (pieces of a trace, widened, read 'aVL' at 0.5-0.7). Training on condensed type
#: instead lost labels of other fonts (docs/DECISIONS.md, "Tried and not kept").
WIDENED_MIN_PROB = 0.8
#: ink darkness threshold range (0..1) for the adaptive (Otsu) binarisation
INK_THRESHOLD_MIN, INK_THRESHOLD_MAX = 0.30, 0.60
#: darkness below which a pixel is paper, for the Otsu statistics
INK_FLOOR = 0.12
#: the paper (and leftover grid) level is this percentile of the ink map; the low threshold lies PAPER_MARGIN
#: above it and at least LOW_THRESHOLD_MIN; a second (Otsu) threshold is used when THRESHOLD_MIN_STEP above it
PAPER_PERCENTILE = 90.0
PAPER_MARGIN = 0.12
LOW_THRESHOLD_MIN = 0.25
THRESHOLD_MIN_STEP = 0.08
#: horizontal / vertical runs longer than these (mm) are trace, grid or separator strokes, not text
TRACE_RUN_H_MM = 4.0
TRACE_RUN_V_MM = 7.0
#: glyph (connected component) heights and width of text, mm
GLYPH_MIN_H_MM = 0.7
GLYPH_MAX_H_MM = 7.5
GLYPH_MAX_W_MM = 6.0
#: smallest readable glyph height, pixels
GLYPH_MIN_H_PX = 4
#: ruled lines (grid lines, trace baselines) are ink on straight runs at least this long, mm: horizontally longer
#: than any word's stroke, vertically twice the tallest label (so that a glyph's upright stroke is never one)
RULED_LINE_H_MM = 8.0
RULED_LINE_V_MM = 15.0
#: ... except ink this much darker (0..1) than the line under it, which keeps its own darkness: a stroke crossing a
#: grid line stays whole (a QRS cut there into short pieces survives the long-run stripping and reads as 'I')
RULED_LINE_STROKE = 0.35
#: label (word) cap height range, mm
LABEL_MIN_H_MM = 1.2
LABEL_MAX_H_MM = 7.5
#: components smaller than this many pixels are specks (ignored in crops); components inside a word's box
#: that are not among its glyphs go into its crop when at least PIECE_MIN_FRACTION of the word height long
SPECK_AREA_PX = 3
PIECE_MIN_FRACTION = 0.2
#: word grouping: horizontal gap below this many glyph heights, some overlap allowed
WORD_GAP_FACTOR = 0.6
WORD_OVERLAP_FACTOR = 0.35
#: glyphs of one word: vertical overlap fraction of the smaller glyph, height ratio, baseline offset (heights)
WORD_MIN_V_OVERLAP = 0.4
WORD_MAX_HEIGHT_RATIO = 2.6
WORD_MAX_BASELINE_SHIFT = 0.3
#: candidate words have 1..MAX_SPAN_GLYPHS glyphs and a width/height ratio below MAX_WORD_ASPECT
MAX_SPAN_GLYPHS = 4
MAX_WORD_ASPECT = 4.0
#: priority bonus per extra glyph when overlapping candidates compete (score units)
LONGER_WORD_BONUS = 0.15
#: candidates overlapping a better one by more than this fraction of the smaller box are dropped
MAX_OVERLAP = 0.3
#: context: labels read with at least ANCHOR_SCORE (two or more glyphs, not I/II/III, standing alone) are
#: anchors, at least MIN_ANCHORS of them set the page's label height; a candidate lined up with an anchor
#: (tops and bottoms, or left edges and heights, within ALIGN_TOLERANCE of the height or ALIGN_MIN_PX) and
#: read with at least ALIGNED_MIN_PROB (a lone bar read as 'I': ALIGNED_MIN_PROB_BAR) gets
#: ALIGNED_REJECT_SHARE of its reject probability added; a lone bar read as 'I' otherwise is multiplied by
#: LONE_BAR_PENALTY; BAR_MIN_PROB: least 'I' probability of a bar (best read as reject) kept as a candidate
ANCHOR_SCORE = 0.8
MIN_ANCHORS = 3
ALIGN_TOLERANCE = 0.08
ALIGN_MIN_PX = 1.0
ALIGNED_REJECT_SHARE = 0.5
ALIGNED_MIN_PROB = 0.3
ALIGNED_MIN_PROB_BAR = 0.15
LONE_BAR_PENALTY = 0.45
BAR_MIN_PROB = 0.05
BAR_NAMES = ("I", "II", "III")
#: a lone bar with more than LEFT_CLEAR_INK * h^2 ink pixels within LEFT_CLEAR_FACTOR * h to its left (h: its
#: height) may be the rest of a broken word ('1' of 'V1'): it gets no help from aligned labels
LEFT_CLEAR_FACTOR = 0.6
LEFT_CLEAR_INK = 0.03
#: candidates whose glyphs were part of a trace-sized component before stripping (larger than
#: ATTACH_SIZE_FACTOR word heights) are multiplied by ATTACHED_PENALTY (ATTACHED_BAR_PENALTY for I/II/III,
#: which pieces of QRS complexes resemble)
ATTACH_SIZE_FACTOR = 1.8
ATTACHED_PENALTY = 0.7
ATTACHED_BAR_PENALTY = 0.5
#: candidates that are part of a longer chain of glyphs (text line, label glued to strokes) are multiplied by
#: IN_TEXT_PENALTY (IN_TEXT_BAR_PENALTY for I/II/III) per extra glyph, up to MAX_EXTRA_GLYPHS of them
IN_TEXT_PENALTY = 0.75
IN_TEXT_BAR_PENALTY = 0.5
MAX_EXTRA_GLYPHS = 4
#: a word with TEXT_LINE_EXTRA glyphs chained around it at one binarisation is in a text line at all of them
#: (boxes overlapping by SAME_WORD_OVERLAP of the smaller one)
TEXT_LINE_EXTRA = 3
SAME_WORD_OVERLAP = 0.8
#: second pass, relative to the page's label height: stripped run lengths, least glyph height, widest glyph
REFINED_RUN_H = 1.2
REFINED_RUN_V = 1.3
REFINED_GLYPH_MIN = 0.4
REFINED_GLYPH_MAX_W = 1.6
#: candidates within BORDER_MARGIN_PX pixels of the image edge are multiplied by BORDER_PENALTY
BORDER_MARGIN_PX = 3
BORDER_PENALTY = 0.5
#: labels whose height differs from the page's median label height by more than this factor are penalised
HEIGHT_TOLERANCE = 1.2
HEIGHT_PENALTY = 0.3
#: default minimum score of a returned label
DEFAULT_MIN_SCORE = 0.5
#: number of alternatives reported per label
N_ALTERNATIVES = 3

# --- crop normalisation and features (pixels of the normalised crop) ---
NORM_H, NORM_W = 24, 72
HOG_CELL = 4
FEATURE_CHUNK = 512
POOL = 4

# --- classifier training ---
TRAIN_SEED = 20240
SAMPLES_PER_LEAD = 180
SAMPLES_REJECT_TEXT = 2600
SAMPLES_REJECT_TRACE = 600
HIDDEN_UNITS = 128
EPOCHS = 18
#: MLPs (different initialisations and batch orders) whose probabilities are averaged
ENSEMBLE_SIZE = 2
#: share of synthetic words drawn in OpenCV Hershey fonts (the rest in matplotlib's TrueType fonts)
LEAD_HERSHEY_PROB = 0.3
REJECT_HERSHEY_PROB = 0.5
#: I, II and III (bars, easily confused with strokes and with each other) get this many times more samples
BAR_SAMPLE_FACTOR = 2
BATCH = 256
LEARNING_RATE = 2e-3
WEIGHT_DECAY = 1e-4
#: synthetic cap heights, pixels (labels on scans are about 7-40 px tall)
TRAIN_CAP_PX = (6.0, 34.0)
#: a synthetic word whose binarised crop kept less than this fraction of its ink (or width) is dropped
MIN_TEXT_RETAINED = 0.6
#: probability of erasing a vertical (and, as often, a horizontal) band across a synthetic word
ERASE_PROB = 0.1
#: probability of a trace drawn along a synthetic word; of faint grid lines on a canvas
WORD_TRACE_PROB = 0.4
GRID_PROB = 0.1
#: synthetic words and trace stretches share canvases (one size, degradation and binarisation per canvas)
WORDS_PER_CANVAS = 40
FRAGMENTS_PER_CANVAS = 12
CANVAS_WIDTH = 1200
NOISE_FIELD_SIZE = 2048
MAX_CANVAS_ROUNDS = 4


@dataclass
class LabelRead:
    """One printed lead label found on the page.

    name: canonical lead name; x0, y0, x1, y1: pixel box (inclusive corners) in the input image;
    score: 0..1 confidence that the crop is this lead name (classifier probability adjusted by page context);
    alternatives: the next-best classes ('reject' included) and their classifier probabilities.
    """

    name: str
    x0: float
    y0: float
    x1: float
    y1: float
    score: float
    alternatives: dict[str, float] = field(default_factory=dict)

    @property
    def cx(self) -> float:
        return 0.5 * (self.x0 + self.x1)

    @property
    def cy(self) -> float:
        return 0.5 * (self.y0 + self.y1)

    @property
    def height(self) -> float:
        return self.y1 - self.y0 + 1.0


# ------------------------------------------------------------------------------------------------------
# Binary image helpers shared by page analysis and training


def strip_long_runs(binary: np.ndarray, run_h_px: int, run_v_px: int) -> np.ndarray:
    """``binary`` (uint8 0/1) without pixels on horizontal runs >= run_h_px or vertical runs >= run_v_px."""
    h_k = cv2.getStructuringElement(cv2.MORPH_RECT, (max(3, int(run_h_px)), 1))
    v_k = cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(3, int(run_v_px))))
    long_h = cv2.morphologyEx(binary, cv2.MORPH_OPEN, h_k)
    long_v = cv2.morphologyEx(binary, cv2.MORPH_OPEN, v_k)
    return binary & ~(long_h | long_v) & 1


def without_ruled_lines(ink: np.ndarray, px_per_mm: float) -> np.ndarray:
    """``ink`` (H, W) float32 darkness less the ruled lines under it: at each pixel, the darkness of a horizontal
    line of at least :data:`RULED_LINE_H_MM` or a vertical one of at least :data:`RULED_LINE_V_MM` through it (a
    grey-scale opening along each direction) is subtracted. Text printed over a dense grid of the trace's own
    grey keeps only what is darker than the grid line it crosses, and the grid between the glyphs vanishes,
    where any single binarisation either keeps the grid or breaks a serif font's thin strokes."""
    kh = max(3, int(round(RULED_LINE_H_MM * px_per_mm)))
    kv = max(3, int(round(RULED_LINE_V_MM * px_per_mm)))
    ink = np.asarray(ink, np.float32)
    along_h = cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((1, kh), np.uint8))
    along_v = cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((kv, 1), np.uint8))
    above = ink - np.maximum(along_h, along_v)
    return np.where(above >= RULED_LINE_STROKE, ink, np.clip(above, 0.0, 1.0)).astype(np.float32)


def _normalise_crop(mask: np.ndarray) -> tuple[np.ndarray, float]:
    """A binary crop (h, w) -> (NORM_H, NORM_W) float32 image (left aligned, aspect kept up to the canvas
    width) and its width/height ratio."""
    h, w = mask.shape
    aspect = w / max(h, 1)
    nw = int(min(NORM_W, max(1, round(NORM_H * aspect))))
    src = mask.astype(np.float32)
    interp = cv2.INTER_AREA if (h > NORM_H or w > nw) else cv2.INTER_LINEAR
    small = cv2.resize(src, (nw, NORM_H), interpolation=interp)
    out = np.zeros((NORM_H, NORM_W), np.float32)
    out[:, :nw] = small
    return out, aspect


def _pool(stack: np.ndarray, k: int) -> np.ndarray:
    """Mean over k x k blocks of (N, H, W) images, (N, H/k, W/k), via one area resize of the stacked images."""
    n, h, w = stack.shape
    tall = np.ascontiguousarray(stack.reshape(n * h, w), dtype=np.float32)
    return cv2.resize(tall, (w // k, n * h // k), interpolation=cv2.INTER_AREA).reshape(n, h // k, w // k)


def _features(crops: np.ndarray, aspects: np.ndarray) -> np.ndarray:
    """Feature vectors (N, F) of normalised crops (N, NORM_H, NORM_W): HOG-like per-cell sums of the positive
    and negative parts of the gradient along 4 directions (8 signed orientation channels), square-rooted and
    L2-normalised; pooled pixels; the log aspect ratio and the ink fraction."""
    if crops.shape[0] > FEATURE_CHUNK:  # in cache-sized chunks
        return np.concatenate(
            [
                _features(crops[i : i + FEATURE_CHUNK], aspects[i : i + FEATURE_CHUNK])
                for i in range(0, crops.shape[0], FEATURE_CHUNK)
            ],
            axis=0,
        )
    n = crops.shape[0]
    x = crops.astype(np.float32)
    gx = np.zeros_like(x)
    gy = np.zeros_like(x)
    gx[:, :, 1:-1] = x[:, :, 2:] - x[:, :, :-2]
    gy[:, 1:-1, :] = x[:, 2:, :] - x[:, :-2, :]
    d1 = (gx + gy) * np.float32(math.sqrt(0.5))
    d2 = (gx - gy) * np.float32(math.sqrt(0.5))
    chans = []
    for g in (gx, gy, d1, d2):
        chans.append(_pool(np.maximum(g, 0.0), HOG_CELL))
        chans.append(_pool(np.maximum(-g, 0.0), HOG_CELL))
    hist = np.sqrt(np.stack(chans, axis=-1).reshape(n, -1))
    hist /= np.linalg.norm(hist, axis=1, keepdims=True) + 1e-6
    pooled = _pool(x, POOL).reshape(n, -1)
    extra = np.stack([np.log(np.clip(aspects, 0.05, 20.0)), x.mean(axis=(1, 2))], axis=1).astype(np.float32)
    return np.concatenate([hist, pooled, extra], axis=1).astype(np.float32)


# ------------------------------------------------------------------------------------------------------
# Synthetic training data


def _font_dir() -> str:
    import matplotlib

    return os.path.join(matplotlib.get_data_path(), "fonts", "ttf")


#: TrueType fonts bundled with matplotlib used for training (file name, weight in the sampling)
_TTF_FONTS: tuple[tuple[str, float], ...] = (
    ("DejaVuSans.ttf", 1.0),
    ("DejaVuSans-Bold.ttf", 1.0),
    ("DejaVuSerif.ttf", 0.8),
    ("DejaVuSerif-Bold.ttf", 0.5),
    ("DejaVuSansMono.ttf", 0.5),
    ("DejaVuSansMono-Bold.ttf", 0.3),
    ("STIXGeneral.ttf", 1.2),
    ("STIXGeneralBol.ttf", 0.8),
    ("STIXGeneralItalic.ttf", 0.2),
    ("DejaVuSans-Oblique.ttf", 0.2),
    ("DejaVuSerif-Italic.ttf", 0.2),
    ("STIXGeneralBolIta.ttf", 0.2),
    ("cmr10.ttf", 0.5),
    ("cmss10.ttf", 0.5),
)
_HERSHEY_FONTS: tuple[tuple[int, float], ...] = (
    (cv2.FONT_HERSHEY_SIMPLEX, 1.2),
    (cv2.FONT_HERSHEY_PLAIN, 0.6),
    (cv2.FONT_HERSHEY_DUPLEX, 0.8),
    (cv2.FONT_HERSHEY_COMPLEX, 0.6),
    (cv2.FONT_HERSHEY_TRIPLEX, 0.6),
)

#: printed forms of each lead name (case variants) with their sampling weights
_VARIANTS: dict[str, tuple[tuple[str, float], ...]] = {
    "I": (("I", 1.0),),
    "II": (("II", 1.0),),
    "III": (("III", 1.0),),
    "aVR": (("aVR", 4.0), ("AVR", 1.0), ("avr", 0.7), ("aVr", 0.3)),
    "aVL": (("aVL", 4.0), ("AVL", 1.0), ("avl", 0.7), ("aVl", 0.3)),
    "aVF": (("aVF", 4.0), ("AVF", 1.0), ("avf", 0.7), ("aVf", 0.3)),
    "V3R": (("V3R", 2.0), ("V3r", 1.0)),
    "V4R": (("V4R", 2.0), ("V4r", 1.0)),
}

_REJECT_WORDS: tuple[str, ...] = (
    "25mm/s",
    "50mm/s",
    "10mm/mV",
    "5mm/mV",
    "20mm/mV",
    "Hz",
    "0.5Hz",
    "150Hz",
    "40Hz",
    "0.05-150",
    "ID",
    "ID:",
    "HR",
    "HR:",
    "bpm",
    "BPM",
    "ms",
    "mm",
    "mV",
    "Sinus",
    "rhythm",
    "Normal",
    "ECG",
    "Age",
    "Sex",
    "Date",
    "QRS",
    "QT",
    "QTc",
    "PR",
    "Axis",
    "Vent",
    "rate",
    "Name",
    "Male",
    "Female",
    "Report",
    "AC60",
    "Lead",
    "Off",
    "MAC",
    "12:34",
    "2019",
    "1/2",
    "%",
    "#",
    "-",
    "(",
    ")",
    "x",
    "/",
    "a",
    "V",
    "aV",
    "AV",
    "av",
    "VR",
    "VL",
    "VF",
    "R",
    "L",
    "F",
    "4R",
    "3R",
    "Vl",
    "VI",
    "IV",
    "VII",
    "IIV",
    "aVRx",
    "V1a",
    "V12",
    "V10",
    "V0",
    "HR 72",
    "P",
    "T",
    "Q",
    "S",
    "mm/s",
    "mm/mV",
    "Rate",
    "Ve",
    "V-",
    "aVX",
    "aW",
    "W",
    "v",
    "N",
    "M",
    "A",
    "H",
    "E",
    "Y",
    "X",
    "K",
)
_REJECT_CHARS = "ABCDEFGHJKMNOPQRSTUWXYZabcdefghjkmnopqrstuwxyz0123456789:/-.%"


#: characters that look like those of lead names (hard negatives replace one character of a name with these)
_CONFUSABLE: dict[str, str] = {
    "V": "1IlYWUNvyrX7/",
    "I": "DLTHEFJP[]",
    "a": "aeosdgu",
    "R": "RPBKAH8",
    "L": "LlEIk",
    "F": "FEPTf",
    "r": "rnft",
    "1": "17IlJ",
    "2": "27Z",
    "3": "38B",
    "4": "4AH9",
    "5": "56S",
    "6": "65bG0",
    "7": "71T",
    "8": "83B0",
    "9": "96g",
}


_NOT_V = "0123456789123456789AEFHKLNTUWXYZ1Yy/7"


def _is_lead_like(text: str) -> bool:
    """True if ``text`` reads as a lead name (or is visually a bar string that could be one)."""
    t = lead_key(text)
    return t in {lead_key(n) for n in LEAD_NAMES} or set(text) <= set("Il|")


@functools.lru_cache(maxsize=512)
def _ttf(name: str, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(os.path.join(_font_dir(), name), size)


@functools.lru_cache(maxsize=32)
def _ttf_cap_ratio(name: str) -> float:
    """Cap height / font size of a TrueType font."""
    f = _ttf(name, 100)
    x0, y0, x1, y1 = f.getbbox("H")
    return max((y1 - y0) / 100.0, 0.3)


#: blank margin around a rendered word, in cap heights
RENDER_MARGIN = 0.6
#: cap heights (pixels) at which words are rendered (cached); other sizes are resampled from the next larger
_RENDER_CAPS: tuple[int, ...] = (10, 20, 34)


@functools.lru_cache(maxsize=4096)
def _render_ttf(text: str, name: str, cap_px: int, stroke: int) -> np.ndarray:
    """Darkness image of ``text`` in a TrueType font at cap height ``cap_px`` (cached, read-only)."""
    from PIL import Image, ImageDraw

    size = max(4, int(round(cap_px / _ttf_cap_ratio(name))))
    font = _ttf(name, size)
    x0, y0, x1, y1 = font.getbbox(text, stroke_width=stroke)
    m = int(math.ceil(RENDER_MARGIN * cap_px)) + 3
    w, h = (x1 - x0) + 2 * m, (y1 - y0) + 2 * m
    img = Image.new("L", (max(w, 4), max(h, 4)), 0)
    ImageDraw.Draw(img).text((m - x0, m - y0), text, fill=255, font=font, stroke_width=stroke, stroke_fill=255)
    out = np.asarray(img, np.float32) / 255.0
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=4096)
def _render_hershey(text: str, face: int, cap_px: int, thickness: int) -> np.ndarray:
    """Darkness image of ``text`` in an OpenCV Hershey font at cap height ``cap_px`` (cached, read-only)."""
    (tw, th), _ = cv2.getTextSize(text, face, 1.0, 1)
    scale = cap_px / max(th, 1)
    (tw, th), base = cv2.getTextSize(text, face, scale, thickness)
    m = int(math.ceil(RENDER_MARGIN * cap_px)) + 3 + thickness
    img = np.zeros((th + base + 2 * m, tw + 2 * m), np.uint8)
    cv2.putText(img, text, (m, m + th), face, scale, 255, thickness, cv2.LINE_AA)
    out = img.astype(np.float32) / 255.0
    out.setflags(write=False)
    return out


def _render_word(text: str, rng: np.random.Generator, cap_px: float, hershey_prob: float = 0.3) -> np.ndarray:
    """Darkness image (0 paper .. 1 ink) of ``text`` in a random font at about ``cap_px`` cap height, with a
    margin around it (a fresh writable array)."""
    level = next((c for c in _RENDER_CAPS if c >= 0.9 * cap_px), _RENDER_CAPS[-1])
    if rng.random() < hershey_prob:
        faces, w = zip(*_HERSHEY_FONTS)
        face = faces[int(rng.choice(len(faces), p=np.asarray(w) / sum(w)))]
        thick = max(1, int(round(level / rng.choice([7.0, 10.0, 12.0, 14.0, 22.0]))))
        img = _render_hershey(text, face, level, thick)
    else:
        names, w = zip(*_TTF_FONTS)
        name = names[int(rng.choice(len(names), p=np.asarray(w) / sum(w)))]
        stroke = int(rng.random() < 0.15 and level >= 16)
        img = _render_ttf(text, name, level, stroke)
    f = cap_px / level
    if abs(f - 1.0) > 0.03:
        h, w = img.shape
        return cv2.resize(
            img,
            (max(4, int(round(w * f))), max(4, int(round(h * f)))),
            interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR,
        )
    return img.copy()


def _ecg_like_curve(rng: np.random.Generator, width: int, cap_px: float) -> np.ndarray:
    """y offsets (px, down positive) of a trace-like curve across ``width`` pixels: a wandering baseline with
    P/T-like bumps and QRS-like spikes, in units of the label cap height ``cap_px``."""
    x = np.arange(width, dtype=np.float64)
    y = np.cumsum(rng.normal(0, 0.01 * cap_px, width))
    for _ in range(int(rng.integers(1, 4))):
        c, s, a = rng.uniform(0, width), rng.uniform(0.3, 1.5) * cap_px, rng.uniform(0.3, 1.5) * cap_px
        y -= a * np.sign(rng.normal()) * np.exp(-0.5 * ((x - c) / s) ** 2)
    for _ in range(int(rng.integers(0, 3))):
        c, s, a = rng.uniform(0, width), rng.uniform(0.1, 0.3) * cap_px, rng.uniform(1.0, 4.0) * cap_px
        y -= a * np.sign(rng.normal(0.5)) * np.exp(-0.5 * ((x - c) / s) ** 2)
    return y


def _draw_curve(img: np.ndarray, xs: np.ndarray, ys: np.ndarray, thick: int) -> None:
    pts = np.stack([xs, ys], axis=1)
    cv2.polylines(img, [np.round(pts * 16).astype(np.int32).reshape(-1, 1, 2)], False, 1.0, thick, cv2.LINE_AA, 4)


def _jitter_word(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Small rotation (+-3 deg) and, sometimes, shear (italic-like) of a word image."""
    h, w = img.shape
    shear = rng.uniform(-0.15, 0.15) if rng.random() < 0.25 else 0.0
    M = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), rng.uniform(-3.0, 3.0), 1.0)
    M[0, 1] += shear
    M[0, 2] -= shear * h / 2.0
    return cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)


@functools.lru_cache(maxsize=1)
def _noise_field() -> np.ndarray:
    """Standard normal noise (NOISE_FIELD_SIZE, NOISE_FIELD_SIZE) float32 (fixed seed, cached, read-only)."""
    field = np.random.default_rng(TRAIN_SEED + 7).standard_normal(
        (NOISE_FIELD_SIZE, NOISE_FIELD_SIZE), dtype=np.float32
    )
    field.setflags(write=False)
    return field


def _degrade_canvas(img: np.ndarray, rng: np.random.Generator, cap_px: float) -> np.ndarray:
    """Scan-like degradations of a darkness image: stroke width, blur, resolution loss, contrast, noise, JPEG."""
    h, w = img.shape
    r = rng.random()
    if cap_px >= 12 and r < 0.15:
        img = cv2.dilate(img, np.ones((2, 2), np.uint8))
    elif cap_px >= 14 and r < 0.3:
        img = cv2.erode(img, np.ones((2, 2), np.uint8))
    if rng.random() < 0.35:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 0.5 + 0.03 * cap_px))
    if cap_px >= 10 and rng.random() < 0.3:
        f = rng.uniform(0.6, 0.9)
        small = cv2.resize(img, (max(2, int(w * f)), max(2, int(h * f))), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    img = img * np.float32(rng.uniform(0.7, 1.0))
    if rng.random() < 0.5:  # pixel noise: a random window of a cached noise field (drawing fresh noise for a
        # whole canvas costs more than the rest of its degradation)
        field = _noise_field()
        oy, ox = int(rng.integers(0, field.shape[0] - h + 1)), int(rng.integers(0, field.shape[1] - w + 1))
        img = img + field[oy : oy + h, ox : ox + w] * np.float32(rng.uniform(0.01, 0.06))
    if rng.random() < 0.25:
        u8 = np.clip(255 - img * 255, 0, 255).astype(np.uint8)
        ok, enc = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 85))])
        if ok:
            img = 1.0 - cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def _binarise_and_strip(img: np.ndarray, rng: np.random.Generator, cap_px: float, floor: float) -> np.ndarray:
    """Binarise at a random threshold above ``floor`` and strip long runs scaled like a page's."""
    thr = rng.uniform(max(0.25, floor + 0.08), 0.55) * float(max(img.max(), 0.3))
    binary = (img > thr).astype(np.uint8)
    run_h = int(round(cap_px * rng.uniform(1.1, 2.6)))
    run_v = int(round(cap_px * rng.uniform(1.25, 3.2)))
    return strip_long_runs(binary, run_h, run_v)


def _pack(sizes: list[tuple[int, int]], gap: int) -> tuple[list[tuple[int, int]], int, int]:
    """Top-left corners of tiles of the given (h, w) packed in rows ``gap`` apart; canvas height, width."""
    corners, x, y, row_h, width = [], gap, gap, 0, 0
    for h, w in sizes:
        if x + w + gap > CANVAS_WIDTH and x > gap:
            x, y, row_h = gap, y + row_h + gap, 0
        corners.append((y, x))
        x += w + gap
        row_h = max(row_h, h)
        width = max(width, x)
    return corners, y + row_h + gap, max(width, CANVAS_WIDTH)


def _word_canvas(words: list[tuple[str, float]], rng: np.random.Generator) -> list[tuple[np.ndarray, float] | None]:
    """Normalised crops (and aspect ratios) of words (text, Hershey font probability) printed at one size on a
    canvas, each with its own font, jitter, crossing strokes and erasures; the canvas shares one degradation,
    binarisation and long-run stripping, as a page does. None for words the augmentation destroyed."""
    cap = float(np.exp(rng.uniform(np.log(TRAIN_CAP_PX[0]), np.log(TRAIN_CAP_PX[1]))))
    imgs = []
    for text, hershey_prob in words:
        img = _render_word(text, rng, cap, hershey_prob)
        imgs.append(_jitter_word(img, rng) if rng.random() < 0.7 else img)
    gap = int(round(0.2 * cap)) + 4  # the words' own margins keep neighbours' strokes out of their boxes
    corners, ch, cw = _pack([im.shape for im in imgs], gap)
    canvas = np.zeros((ch, cw), np.float32)
    boxes: list[tuple[int, int, int, int] | None] = []
    clean = []
    thick = max(1, int(round(cap * rng.uniform(0.04, 0.14))))
    for (y, x), img in zip(corners, imgs):
        h, w = img.shape
        ys_, xs_ = np.nonzero(img > 0.3)
        if ys_.size == 0:
            boxes.append(None)
            clean.append(0.0)
            continue
        x0, y0, x1, y1 = x + int(xs_.min()), y + int(ys_.min()), x + int(xs_.max()), y + int(ys_.max())
        boxes.append((x0, y0, x1, y1))
        clean.append(float(np.count_nonzero(img > 0.5)))
        tile = canvas[y : y + h, x : x + w]
        np.maximum(tile, img, out=tile)
        if rng.random() < WORD_TRACE_PROB:  # a trace along the word: touching its top or bottom, or through it
            yc = rng.choice(
                [
                    rng.uniform(y0 - 0.4 * cap, y0 + 0.1 * cap),
                    rng.uniform(y1 - 0.1 * cap, y1 + 0.4 * cap),
                    rng.uniform(y0, y1),
                ]
            )
            xs = np.arange(x, x + w, dtype=np.float64)
            _draw_curve(canvas, xs, yc + _ecg_like_curve(rng, w, cap) * rng.uniform(0.0, 0.15), thick)
        if rng.random() < 0.4 * WORD_TRACE_PROB:  # a spike or separator beside or through the word
            xc = rng.uniform(x0 - 0.5 * cap, x0 + 0.2 * cap) if rng.random() < 0.6 else rng.uniform(x0, x1)
            xb = xc + rng.uniform(-0.15, 0.15) * cap
            cv2.line(canvas, (int(xc * 16), y * 16), (int(xb * 16), (y + h - 1) * 16), 1.0, thick, cv2.LINE_AA, 4)
        r = rng.random()
        if r < ERASE_PROB:  # a stroke crossed the word and was stripped with the glyph pixels under it
            xe = int(rng.uniform(x0, x1))
            canvas[y : y + h, xe : xe + max(1, int(round(rng.uniform(0.08, 0.3) * cap)))] = 0.0
        elif r < 2 * ERASE_PROB:
            ye = int(rng.uniform(y0, y1))
            canvas[ye : ye + max(1, int(round(rng.uniform(0.05, 0.15) * cap))), x : x + w] = 0.0
    grid_level = 0.0
    if rng.random() < GRID_PROB:  # faint grid lines left in the ink map
        period = rng.uniform(0.8, 2.0) * cap
        grid_level = float(rng.uniform(0.1, 0.35))
        off = rng.uniform(0, period)
        rows_ = np.arange(off, ch, period).astype(int)
        cols_ = np.arange(off, cw, period).astype(int)
        canvas[rows_, :] = np.maximum(canvas[rows_, :], grid_level)
        canvas[:, cols_] = np.maximum(canvas[:, cols_], grid_level)
    canvas = _degrade_canvas(canvas, rng, cap)
    binary = _binarise_and_strip(canvas, rng, cap, grid_level)
    n, lab, st, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    cx0, cy0 = st[:, 0], st[:, 1]
    cx1, cy1 = cx0 + st[:, 2] - 1, cy0 + st[:, 3] - 1
    usable = (st[:, 4] >= SPECK_AREA_PX) & (np.maximum(st[:, 2], st[:, 3]) >= PIECE_MIN_FRACTION * cap)
    usable[0] = False
    tol = 0.2 * cap
    out: list[tuple[np.ndarray, float] | None] = []
    for box, n_clean in zip(boxes, clean):
        if box is None:
            out.append(None)
            continue
        bx0, by0, bx1, by1 = box
        sel = np.flatnonzero(usable & (cx0 >= bx0 - tol) & (cy0 >= by0 - tol) & (cx1 <= bx1 + tol) & (cy1 <= by1 + tol))
        if sel.size == 0:
            out.append(None)
            continue
        x0, y0, x1, y1 = int(cx0[sel].min()), int(cy0[sel].min()), int(cx1[sel].max()), int(cy1[sel].max())
        lut = np.zeros(n, bool)
        lut[sel] = True
        crop = lut[lab[y0 : y1 + 1, x0 : x1 + 1]]
        lost = crop.sum() < MIN_TEXT_RETAINED * n_clean or crop.shape[1] < MIN_TEXT_RETAINED * (bx1 - bx0)
        if lost or crop.shape[0] < 3:
            out.append(None)  # the word no longer reads as itself: not a useful example
            continue
        out.append(_normalise_crop(crop.astype(np.uint8)))
    return out


def _trace_canvas(n_fragments: int, rng: np.random.Generator) -> list[tuple[np.ndarray, float]]:
    """Normalised crops of text-sized pieces of synthetic trace stretches (wavy baselines, P/T bumps, QRS
    spikes) printed at one scale on a canvas, degraded, binarised and stripped of long runs like a page:
    runs of 1-3 neighbouring pieces, up to 3 per stretch."""
    cap = float(np.exp(rng.uniform(np.log(TRAIN_CAP_PX[0]), np.log(TRAIN_CAP_PX[1]))))
    sizes = [(int(cap * 5), int(cap * rng.uniform(4, 10))) for _ in range(n_fragments)]
    gap = int(round(cap)) + 4
    corners, ch, cw = _pack(sizes, gap)
    canvas = np.zeros((ch, cw), np.float32)
    for (y, x), (h, w) in zip(corners, sizes):
        xs = np.arange(x, x + w, dtype=np.float64)
        _draw_curve(
            canvas, xs, y + h / 2 + _ecg_like_curve(rng, w, cap), max(1, int(round(cap * rng.uniform(0.04, 0.14))))
        )
    canvas = _degrade_canvas(canvas, rng, cap)
    binary = _binarise_and_strip(canvas, rng, cap, 0.0)
    n, lab, st, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    out = []
    piece = (st[:, 3] >= 0.4 * cap) & (st[:, 3] <= 2.5 * cap) & (st[:, 2] <= 2.5 * cap) & (st[:, 4] >= SPECK_AREA_PX)
    piece[0] = False
    for (y, x), (h, w) in zip(corners, sizes):
        ok = np.flatnonzero(
            piece
            & (st[:, 0] >= x - gap / 2)
            & (st[:, 0] < x + w + gap / 2)
            & (st[:, 1] >= y - gap / 2)
            & (st[:, 1] < y + h)
        ).tolist()
        ok.sort(key=lambda i: st[i, 0])
        for a in rng.permutation(len(ok))[:3]:
            ids = ok[a : a + int(rng.integers(1, 4))]
            x0 = int(min(st[i, 0] for i in ids))
            y0 = int(min(st[i, 1] for i in ids))
            x1 = int(max(st[i, 0] + st[i, 2] - 1 for i in ids))
            y1 = int(max(st[i, 1] + st[i, 3] - 1 for i in ids))
            lut = np.zeros(n, bool)
            lut[ids] = True
            crop = lut[lab[y0 : y1 + 1, x0 : x1 + 1]]
            if crop.shape[0] >= 3 and crop.sum() >= 4:
                out.append(_normalise_crop(crop.astype(np.uint8)))
    return out


def _pick_variant(name: str, rng: np.random.Generator) -> str:
    forms = _VARIANTS.get(name, ((name, 1.0),))
    if len(forms) == 1:
        return forms[0][0]
    cum = np.cumsum([w for _, w in forms])
    return forms[int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))][0]


def _random_reject_text(rng: np.random.Generator) -> str:
    """Text that is no lead name: page words, random characters and digits, lead names with one character
    changed (hard negatives: '12' for 'V2', 'ID' for 'II', 'aVX'), lead names with text glued on."""
    r = rng.random()
    if r < 0.1:
        return str(rng.choice(_REJECT_WORDS))
    if r < 0.2:
        return "".join(rng.choice(list(_REJECT_CHARS), size=int(rng.integers(1, 4))))
    if r < 0.3:
        return "".join(rng.choice(list("0123456789"), size=int(rng.integers(1, 5))))
    if r < 0.45:  # a glyph other than V before a lead-like digit: '12', 'Y2', '45'
        return str(rng.choice(list(_NOT_V))) + str(rng.choice(list("123456789")))
    lead = _pick_variant(str(rng.choice(LEAD_NAMES)), rng)
    if r < 0.9:
        k = int(rng.integers(len(lead)))
        similar = _CONFUSABLE.get(lead[k], "")
        pool = similar if similar and rng.random() < 0.6 else _REJECT_CHARS
        return lead[:k] + str(rng.choice(list(pool))) + lead[k + 1 :]
    extra = "".join(rng.choice(list(_REJECT_CHARS), size=int(rng.integers(1, 3))))
    return lead + extra if rng.random() < 0.5 else extra + lead


def _training_set(seed: int = TRAIN_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic training features (N, F) and class indices (N,): lead names (case variants) and reject
    text printed on canvases of WORDS_PER_CANVAS words, and pieces of synthetic traces."""
    rng = np.random.default_rng(seed)
    reject = CLASSES.index(REJECT)
    wanted = [SAMPLES_PER_LEAD * (BAR_SAMPLE_FACTOR if name in BAR_NAMES else 1) for name in LEAD_NAMES]
    wanted.append(SAMPLES_REJECT_TEXT)
    have = [0] * len(CLASSES)
    crops, aspects, ys = [], [], []
    for _ in range(MAX_CANVAS_ROUNDS):  # destroyed words are redrawn on the next round's canvases
        jobs: list[tuple[str, float, int]] = []
        for k, name in enumerate(LEAD_NAMES):
            jobs += [(_pick_variant(name, rng), LEAD_HERSHEY_PROB, k) for _ in range(wanted[k] - have[k])]
        while len(jobs) < sum(wanted) - sum(have):
            text = _random_reject_text(rng)
            if not _is_lead_like(text):
                # rejects are mostly one-off strings: the (uncached) TrueType rendering is their main cost
                jobs.append((text, REJECT_HERSHEY_PROB, reject))
        if not jobs:
            break
        order = rng.permutation(len(jobs))
        for s0 in range(0, len(order), WORDS_PER_CANVAS):
            part = [jobs[i] for i in order[s0 : s0 + WORDS_PER_CANVAS]]
            for (text, _, k), sample in zip(part, _word_canvas([(t, hp) for t, hp, _ in part], rng)):
                if sample is not None:
                    crops.append(sample[0])
                    aspects.append(sample[1])
                    ys.append(k)
                    have[k] += 1
    n_trace = 0
    while n_trace < SAMPLES_REJECT_TRACE:
        for crop, aspect in _trace_canvas(FRAGMENTS_PER_CANVAS, rng)[: SAMPLES_REJECT_TRACE - n_trace]:
            crops.append(crop)
            aspects.append(aspect)
            ys.append(reject)
            n_trace += 1
    X = _features(np.stack(crops), np.asarray(aspects, np.float32))
    return X, np.asarray(ys, np.int64)


@dataclass
class _MLP:
    mean: np.ndarray
    std: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        z = (X - self.mean) / self.std
        hdn = np.maximum(z @ self.w1 + self.b1, 0.0)
        logits = hdn @ self.w2 + self.b2
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)


@dataclass
class _Ensemble:
    members: list[_MLP]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.mean([m.predict_proba(X) for m in self.members], axis=0)


def _train_mlp(X: np.ndarray, y: np.ndarray, seed: int = TRAIN_SEED) -> _MLP:
    """One-hidden-layer ReLU MLP, softmax cross-entropy, Adam, minibatches; numpy, deterministic."""
    rng = np.random.default_rng(seed + 1)
    mean = X.mean(axis=0)
    std = X.std(axis=0) + 1e-3
    Z = ((X - mean) / std).astype(np.float32)
    n, f = Z.shape
    c = len(CLASSES)
    params = [
        (rng.standard_normal((f, HIDDEN_UNITS)) * math.sqrt(2.0 / f)).astype(np.float32),
        np.zeros(HIDDEN_UNITS, np.float32),
        (rng.standard_normal((HIDDEN_UNITS, c)) * math.sqrt(1.0 / HIDDEN_UNITS)).astype(np.float32),
        np.zeros(c, np.float32),
    ]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    onehot = np.eye(c, dtype=np.float32)[y]
    t = 0
    steps = EPOCHS * int(math.ceil(n / BATCH))
    for epoch in range(EPOCHS):
        order = rng.permutation(n)
        for s in range(0, n, BATCH):
            idx = order[s : s + BATCH]
            xb, yb = Z[idx], onehot[idx]
            w1, b1, w2, b2 = params
            pre = xb @ w1 + b1
            hdn = np.maximum(pre, 0.0)
            logits = hdn @ w2 + b2
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
            g = (p - yb) / len(idx)
            gw2 = hdn.T @ g + WEIGHT_DECAY * w2
            gb2 = g.sum(axis=0)
            gh = (g @ w2.T) * (pre > 0)
            gw1 = xb.T @ gh + WEIGHT_DECAY * w1
            gb1 = gh.sum(axis=0)
            t += 1
            lr = LEARNING_RATE * 0.5 * (1.0 + math.cos(math.pi * t / steps))  # cosine decay
            for i, gr in enumerate((gw1, gb1, gw2, gb2)):
                m[i] = beta1 * m[i] + (1 - beta1) * gr
                v[i] = beta2 * v[i] + (1 - beta2) * gr * gr
                mh = m[i] / (1 - beta1**t)
                vh = v[i] / (1 - beta2**t)
                params[i] = params[i] - lr * mh / (np.sqrt(vh) + eps)
    return _MLP(mean.astype(np.float32), std.astype(np.float32), *params)


#: file a trained classifier is stored in, inside a model folder (safetensors; no pickle)
CLASSIFIER_FILE = "lead_labels.safetensors"
#: bump when the classifier's features or training change in a way the settings digest cannot see
CLASSIFIER_VERSION = 1
_MLP_FIELDS = ("mean", "std", "w1", "b1", "w2", "b2")

_active: _Ensemble | None = None


def _settings_digest() -> str:
    """Digest of everything a stored classifier must agree with: the version, the classes and every
    upper-case numeric/text setting of this module (crop size, features, training set, MLP)."""
    import hashlib

    settings = {
        k: v
        for k, v in globals().items()
        if k.isupper() and isinstance(v, (int, float, str, tuple)) and not k.startswith("_")
    }
    text = repr((CLASSIFIER_VERSION, tuple(CLASSES), sorted(settings.items())))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _train_classifier() -> _Ensemble:
    """The lead-name classifier trained from synthetic crops (deterministic, a few seconds per core)."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # thousands of tiny images: threading overhead dominates
    try:
        X, y = _training_set()
    finally:
        cv2.setNumThreads(threads)
    model = _Ensemble([_train_mlp(X, y, seed=TRAIN_SEED + k) for k in range(ENSEMBLE_SIZE)])
    log.debug("lead-label classifier trained on %d synthetic crops", len(y))
    return model


def _classifier() -> _Ensemble:
    """The classifier in use: the one loaded by :func:`load_classifier`, else trained on first use."""
    global _active
    if _active is None:
        _active = _train_classifier()
    return _active


def save_classifier(folder: str | os.PathLike) -> str:
    """Write the classifier (trained now if needed) to ``folder/CLASSIFIER_FILE``; returns the path."""
    from safetensors.numpy import save_file

    model = _classifier()
    tensors = {
        f"member{k}.{name}": np.ascontiguousarray(getattr(m, name), np.float32)
        for k, m in enumerate(model.members)
        for name in _MLP_FIELDS
    }
    path = os.path.join(os.fspath(folder), CLASSIFIER_FILE)
    os.makedirs(os.fspath(folder), exist_ok=True)
    save_file(
        tensors,
        path,
        metadata={"digest": _settings_digest(), "members": str(len(model.members)), "classes": ",".join(CLASSES)},
    )
    return path


def load_classifier(folder: str | os.PathLike) -> bool:
    """Use the classifier stored in ``folder`` (by :func:`save_classifier`). Returns False, keeping the current
    one (or training on first use), when the file is missing, unreadable or made with other settings."""
    global _active
    path = os.path.join(os.fspath(folder), CLASSIFIER_FILE)
    if not os.path.isfile(path):
        return False
    try:
        from safetensors import safe_open

        with safe_open(path, framework="numpy") as f:
            meta = f.metadata() or {}
            if meta.get("digest") != _settings_digest():
                log.info("%s was made with other lead-label settings; the classifier is trained instead", path)
                return False
            members = [
                _MLP(*(f.get_tensor(f"member{k}.{name}") for name in _MLP_FIELDS)) for k in range(int(meta["members"]))
            ]
    except Exception as exc:  # noqa: BLE001 - any unreadable file: fall back to training, say why
        log.warning("cannot read the lead-label classifier %s (%s); it is trained instead", path, exc)
        return False
    _active = _Ensemble(members)
    return True


def classify_crops(masks: list[np.ndarray], widen: float = 1.0) -> np.ndarray:
    """Class probabilities (N, len(CLASSES)) of binary word crops (each (h, w), ink = 1); ``widen``: read each crop
    stretched sideways by this factor (nearest neighbour)."""
    if not masks:
        return np.zeros((0, len(CLASSES)), np.float32)
    if widen != 1.0:
        masks = [
            cv2.resize(m, (max(1, int(round(m.shape[1] * widen))), m.shape[0]), interpolation=cv2.INTER_NEAREST)
            for m in masks
        ]
    norm = [_normalise_crop(m) for m in masks]
    X = _features(np.stack([a for a, _ in norm]), np.asarray([b for _, b in norm], np.float32))
    return _classifier().predict_proba(X)


def read_crops(masks: list[np.ndarray], aspects: Sequence[float]) -> np.ndarray:
    """Class probabilities (N, len(CLASSES)) of word crops whose glyphs (bars left out) stand ``aspects`` of their
    height wide (NaN: unknown); crops of condensed type (under :data:`CONDENSED_ASPECT`) are also read widened to
    :data:`TYPE_ASPECT`, and the widened reading is kept where it names a lead with at least
    :data:`WIDENED_MIN_PROB` and more surely than the crop as printed."""
    probs = classify_crops(masks)
    narrow = [i for i, a in enumerate(aspects) if a < CONDENSED_ASPECT]
    leads = [i for i, c in enumerate(CLASSES) if c != REJECT]
    for i in narrow:
        wide = classify_crops([masks[i]], min(TYPE_ASPECT / max(aspects[i], 1e-3), MAX_WIDEN))[0]
        if wide[leads].max() >= WIDENED_MIN_PROB and wide[leads].max() > probs[i, leads].max():
            probs[i] = wide
    return probs


# ------------------------------------------------------------------------------------------------------
# Page analysis


def _ink_thresholds(ink: np.ndarray) -> list[float]:
    """Darkness thresholds (0..1) to binarise the page at: just above the paper/grid level (keeps thin,
    anti-aliased text) and the Otsu split of the inked pixels (separates text from a leftover grey grid)."""
    flat = ink.ravel()
    step = max(1, flat.size // 400_000)
    sub = flat[::step]
    paper = float(np.percentile(sub, PAPER_PERCENTILE))
    vals = sub[sub > max(INK_FLOOR, paper)]
    otsu = otsu_threshold(vals, max(INK_FLOOR, paper), 1.0, bins=64) if vals.size >= 50 else 0.5
    hi = float(np.clip(otsu, INK_THRESHOLD_MIN, INK_THRESHOLD_MAX))
    lo = float(np.clip(paper + PAPER_MARGIN, LOW_THRESHOLD_MIN, hi))
    return [lo, hi] if hi - lo >= THRESHOLD_MIN_STEP else [hi]


@dataclass
class _Glyph:
    idx: int
    x0: int
    y0: int
    x1: int  # inclusive
    y1: int

    @property
    def h(self) -> int:
        return self.y1 - self.y0 + 1

    @property
    def w(self) -> int:
        return self.x1 - self.x0 + 1


def _linked(a: _Glyph, b: _Glyph) -> bool:
    """True if glyph ``b`` can follow ``a`` in a word."""
    hmax, hmin = max(a.h, b.h), min(a.h, b.h)
    if hmax > WORD_MAX_HEIGHT_RATIO * hmin:
        return False
    gap = b.x0 - a.x1 - 1
    if gap > WORD_GAP_FACTOR * hmax or gap < -WORD_OVERLAP_FACTOR * min(a.w, b.w):
        return False
    if b.x0 < a.x0 + 0.3 * a.w or b.x1 <= a.x1:
        return False
    overlap = min(a.y1, b.y1) - max(a.y0, b.y0) + 1
    if overlap < WORD_MIN_V_OVERLAP * hmin:
        return False
    return abs(a.y1 - b.y1) <= WORD_MAX_BASELINE_SHIFT * hmax


def _candidate_spans(
    glyphs: list[_Glyph], word_h: tuple[float, float], max_glyph_h: float
) -> list[tuple[list[int], int]]:
    """Runs of 1..MAX_SPAN_GLYPHS consecutive glyphs along nearest-right-neighbour chains (glyph indices)
    whose box height lies in ``word_h`` (pixels), each with the number of glyphs chained before and after it
    (0 for a word standing alone)."""
    order = sorted(range(len(glyphs)), key=lambda i: glyphs[i].x0)
    xs = np.array([glyphs[i].x0 for i in order])
    nxt: dict[int, int] = {}
    for pos, i in enumerate(order):
        a = glyphs[i]
        hi = np.searchsorted(xs, a.x1 + WORD_GAP_FACTOR * max_glyph_h + 1, side="right")
        best, best_gap = -1, 1e9
        for q in range(pos + 1, hi):
            j = order[q]
            b = glyphs[j]
            if _linked(a, b):
                gap = b.x0 - a.x1 + 0.25 * abs(a.y1 - b.y1)
                if gap < best_gap:
                    best, best_gap = j, gap
        if best >= 0:
            nxt[i] = best
    # glyphs chained before / after each glyph (longest path), to tell words standing alone from text lines
    before = {i: 0 for i in range(len(glyphs))}
    for i in order:
        if i in nxt:
            before[nxt[i]] = max(before[nxt[i]], before[i] + 1)
    after = {i: 0 for i in range(len(glyphs))}
    for i in reversed(order):
        if i in nxt:
            after[i] = after[nxt[i]] + 1
    spans = []
    for i in range(len(glyphs)):
        span = [i]
        x0, y0, x1, y1 = glyphs[i].x0, glyphs[i].y0, glyphs[i].x1, glyphs[i].y1
        while True:
            hh = y1 - y0 + 1
            if word_h[0] <= hh <= word_h[1] and (x1 - x0 + 1) <= MAX_WORD_ASPECT * hh:
                spans.append((list(span), before[i] + after[span[-1]]))
            if len(span) >= MAX_SPAN_GLYPHS or span[-1] not in nxt:
                break
            g = glyphs[nxt[span[-1]]]
            span.append(nxt[span[-1]])
            x0, y0, x1, y1 = min(x0, g.x0), min(y0, g.y0), max(x1, g.x1), max(y1, g.y1)
    return spans


@dataclass
class _Candidate:
    box: tuple[int, int, int, int]
    n_glyphs: int
    attached: bool  # part of a trace-sized stroke before long runs were stripped
    extra: int  # glyphs chained before and after the word (0: a word standing alone)
    mask: np.ndarray
    left_clear: bool = True  # no ink just left of the word (after stripping strokes)
    source: int = 0  # the map it was found on (0: the ink as it is, 1: without ruled lines)
    aspect: float = float("nan")  # median width / height of its glyphs that are no bars (:data:`BAR_ASPECT`)
    probs: np.ndarray | None = None
    name: str = REJECT
    score: float = 0.0

    @property
    def h(self) -> int:
        return self.box[3] - self.box[1] + 1

    @property
    def isolated(self) -> bool:
        return self.extra == 0


def _page_candidates(
    binary: np.ndarray,
    run_px: tuple[int, int],
    glyph_h: tuple[float, float],
    word_h: tuple[float, float],
    max_glyph_w: float,
    whole: tuple[np.ndarray, np.ndarray],
) -> list[_Candidate]:
    """Candidate words of a binarised page (uint8): long runs (``run_px`` horizontal, vertical) stripped,
    glyphs of height ``glyph_h`` and width below ``max_glyph_w`` chained, words of height ``word_h``.
    ``whole``: component labels and stats of the page binarised at the lowest threshold, unstripped (to tell
    which glyphs touch a stroke)."""
    lab0, st0 = whole
    stripped = strip_long_runs(binary, run_px[0], run_px[1])
    n, lab, st, _ = cv2.connectedComponentsWithStats(stripped, connectivity=8)
    if n <= 1:
        return []
    xs, ys_, ws, hs, areas = st[1:, 0], st[1:, 1], st[1:, 2], st[1:, 3], st[1:, 4]
    small = (areas >= SPECK_AREA_PX) & (hs <= glyph_h[1]) & (ws <= max_glyph_w)
    ok = small & (hs >= glyph_h[0])
    glyphs = [
        _Glyph(int(i) + 1, int(xs[i]), int(ys_[i]), int(xs[i] + ws[i] - 1), int(ys_[i] + hs[i] - 1))
        for i in np.flatnonzero(ok)
    ]
    if not glyphs:
        return []
    out = []
    for span, extra in _candidate_spans(glyphs, word_h, glyph_h[1]):
        g = [glyphs[k] for k in span]
        x0, x1 = min(q.x0 for q in g), max(q.x1 for q in g)
        y0, y1 = min(q.y0 for q in g), max(q.y1 for q in g)
        sub = lab[y0 : y1 + 1, x0 : x1 + 1]
        ids = np.unique(sub)
        # whole components inside the box (glyphs of the span and small pieces), not strokes crossing it
        piece = PIECE_MIN_FRACTION * (y1 - y0 + 1)
        keep = [
            int(i)
            for i in ids
            if i > 0
            and small[i - 1]
            and st[i, 0] >= x0
            and st[i, 1] >= y0
            and st[i, 0] + st[i, 2] - 1 <= x1
            and st[i, 1] + st[i, 3] - 1 <= y1
            and max(st[i, 2], st[i, 3]) >= piece
        ]
        keep = sorted(set(keep) | {q.idx for q in g})
        mask = np.isin(sub, keep)
        # the components these glyphs belonged to before stripping: trace-sized ones mean a stroke touches
        parents = np.unique(lab0[y0 : y1 + 1, x0 : x1 + 1][mask])
        parents = parents[parents > 0]
        hh, ww = y1 - y0 + 1, x1 - x0 + 1
        attached = bool(
            np.any((st0[parents, 3] > ATTACH_SIZE_FACTOR * hh) | (st0[parents, 2] > ww + ATTACH_SIZE_FACTOR * hh))
        )
        reach = int(round(LEFT_CLEAR_FACTOR * hh))
        left = stripped[y0 : y1 + 1, max(0, x0 - reach) : x0]
        left_clear = int(left.sum()) <= LEFT_CLEAR_INK * hh * hh
        aspects = [q.w / q.h for q in g if q.w >= BAR_ASPECT * q.h]
        aspect = float(np.median(aspects)) if aspects else float("nan")
        out.append(
            _Candidate((x0, y0, x1, y1), len(span), attached, extra, mask.astype(np.uint8), left_clear, aspect=aspect)
        )
    return out


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection area over the smaller box's area."""
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    area = min((a[2] - a[0] + 1) * (a[3] - a[1] + 1), (b[2] - b[0] + 1) * (b[3] - b[1] + 1))
    return iw * ih / max(area, 1)


def _aligned(a: _Candidate, b: _Candidate) -> bool:
    """True if two words line up like the labels of one page without overlapping: on the same text line (tops
    and bottoms agree) or at the start of the same column (left edges and heights agree)."""
    tol = max(ALIGN_MIN_PX, ALIGN_TOLERANCE * max(a.h, b.h))
    if _overlap(a.box, b.box) > 0.0:
        return False
    same_line = abs(a.box[1] - b.box[1]) <= tol and abs(a.box[3] - b.box[3]) <= tol
    same_column = abs(a.box[0] - b.box[0]) <= tol and abs(a.h - b.h) <= tol
    return same_line or same_column


def _classify(cands: list[_Candidate]) -> list[_Candidate]:
    """Set name/score of each candidate; drop those read as reject (keeping bars whose best lead is 'I')."""
    if not cands:
        return []
    # only words standing alone, with no ink just left of them, are read widened: 'VF' of an 'aVF' whose 'a' touches a
    # QRS stroke, widened, read 'V7' at 0.89
    probs = read_crops([c.mask for c in cands], [c.aspect if c.isolated and c.left_clear else math.nan for c in cands])
    reject = CLASSES.index(REJECT)
    i_class = CLASSES.index("I")
    out = []
    for c, p in zip(cands, probs):
        order = np.argsort(-p)
        best = int(order[0]) if int(order[0]) != reject else int(order[1])
        # a lone bar is 'I' or a stroke: keep it when 'I' is its best lead reading, context decides later
        if int(order[0]) == reject and not (best == i_class and p[best] >= BAR_MIN_PROB):
            continue
        c.probs, c.name, c.score = p, CLASSES[best], float(p[best])
        out.append(c)
    return out


def _anchors(cands: list[_Candidate]) -> list[_Candidate]:
    """Confidently read multi-glyph labels (not bar-like names) standing alone."""
    return [c for c in cands if c.score >= ANCHOR_SCORE and c.n_glyphs >= 2 and c.name not in BAR_NAMES and c.isolated]


def _share_text_lines(cands: list[_Candidate]) -> None:
    """A word found inside a text line (at least TEXT_LINE_EXTRA glyphs around it) at one binarisation is in
    that line at the others of the same map too (where letters may have merged or broken apart, ending the
    chain). Not across maps: without its ruled lines a glyph crossed by them falls into more pieces."""
    long = [c for c in cands if c.extra >= TEXT_LINE_EXTRA]
    for c in cands:
        for o in long:
            if (
                o.source == c.source
                and o.extra > c.extra
                and _overlap(c.box, o.box) >= SAME_WORD_OVERLAP
                and abs(c.h - o.h) <= max(ALIGN_MIN_PX, ALIGN_TOLERANCE * c.h)
            ):
                c.extra = o.extra


def _with_new_boxes(cands: list[_Candidate], more: list[_Candidate]) -> list[_Candidate]:
    """``cands`` and those of ``more`` whose box none of ``cands`` has (a word found alike on two maps counts once)."""
    seen = {c.box for c in cands}
    return cands + [c for c in more if c.box not in seen]


def _pass(
    ink: np.ndarray,
    thresholds: list[float],
    run_px: tuple[int, int],
    glyph_h: tuple[float, float],
    word_h: tuple[float, float],
    max_glyph_w: float,
    source: int = 0,
) -> list[_Candidate]:
    cands: list[_Candidate] = []
    _, lab0, st0, _ = cv2.connectedComponentsWithStats((ink > min(thresholds)).astype(np.uint8), connectivity=8)
    for thr in thresholds:
        cands += _page_candidates((ink > thr).astype(np.uint8), run_px, glyph_h, word_h, max_glyph_w, (lab0, st0))
    for c in cands:
        c.source = source
    return _classify(cands)


def read_lead_labels(
    ink: np.ndarray, px_per_mm: float, rgb: np.ndarray | None = None, min_score: float = DEFAULT_MIN_SCORE
) -> list[LabelRead]:
    """Find and read the printed lead names on a page.

    ink: (H, W) float32 in [0, 1], darkness of non-grid ink (text, traces, pulses; the grid already removed);
    px_per_mm: the page's scale (pixels per millimetre); rgb: the page (H, W, 3) uint8, optional and only
    checked for shape (the ink map carries what the reader needs); min_score: smallest confidence (0..1) of a
    returned label. Returns labels sorted by (y, x) of their box centres, labels on one text line (centres within
    half a label height) by x.

    Two passes: the first with stroke-stripping lengths and text sizes in mm; when it finds at least
    ``MIN_ANCHORS`` confident labels, a second pass strips strokes longer than about a label height
    (freeing labels that touch the trace) and looks for words of the page's label height only.
    """
    ink = np.asarray(ink, np.float32)
    if ink.ndim != 2:
        raise ValueError(f"ink must be (H, W), got shape {ink.shape}")
    if rgb is not None and np.asarray(rgb).shape[:2] != ink.shape:
        raise ValueError(f"rgb shape {np.asarray(rgb).shape} does not match ink {ink.shape}")
    ppm = float(px_per_mm)
    if not ppm > 0:
        raise ValueError(f"px_per_mm must be positive, got {px_per_mm}")
    # the page as it is and without its ruled lines: each gives candidates, the best reading of a place wins
    maps = [(m, _ink_thresholds(m)) for m in (ink, without_ruled_lines(ink, ppm))]
    min_glyph = max(float(GLYPH_MIN_H_PX), GLYPH_MIN_H_MM * ppm)
    cands: list[_Candidate] = []
    for source, (m, thresholds) in enumerate(maps):
        cands = _with_new_boxes(
            cands,
            _pass(
                m,
                thresholds,
                (int(round(TRACE_RUN_H_MM * ppm)), int(round(TRACE_RUN_V_MM * ppm))),
                (min_glyph, GLYPH_MAX_H_MM * ppm),
                (max(float(GLYPH_MIN_H_PX), LABEL_MIN_H_MM * ppm), LABEL_MAX_H_MM * ppm),
                GLYPH_MAX_W_MM * ppm,
                source,
            ),
        )
    anchors = _anchors(cands)
    # the page's label height from the ink as it is where that has enough anchors (the other map's words can be
    # cut differently by the lines taken out)
    sized = [a for a in anchors if a.source == 0]
    sized = sized if len(sized) >= MIN_ANCHORS else anchors
    ref_h = float(np.median([c.h for c in sized])) if len(sized) >= MIN_ANCHORS else None
    if ref_h is not None:
        run = (max(3, int(round(REFINED_RUN_H * ref_h))), max(3, int(round(REFINED_RUN_V * ref_h))))
        word_h = (ref_h / HEIGHT_TOLERANCE, ref_h * HEIGHT_TOLERANCE)
        glyph_h = (max(float(GLYPH_MIN_H_PX), REFINED_GLYPH_MIN * ref_h), word_h[1])
        refined: list[_Candidate] = []
        for source, (m, thresholds) in enumerate(maps):
            found = _pass(m, thresholds, run, glyph_h, word_h, REFINED_GLYPH_MAX_W * ref_h, source)
            refined = _with_new_boxes(refined, found)
        cands += refined
        anchors = _anchors(cands)
    _share_text_lines(cands)
    reject = CLASSES.index(REJECT)
    for c in cands:
        bar = c.name in BAR_NAMES
        lone_bar = c.name == "I" and c.n_glyphs == 1
        # context from the words of the same map: each map is read on its own, the best reading of a place wins
        tight = any(_aligned(c, a) for a in anchors if a.source == c.source) and (c.left_clear or not lone_bar)
        if tight and c.score >= (ALIGNED_MIN_PROB_BAR if lone_bar else ALIGNED_MIN_PROB):
            # on a text line with confidently read labels: what looks like a stroke is likely a glyph
            c.score = c.score + ALIGNED_REJECT_SHARE * float(c.probs[reject])
        elif lone_bar:
            c.score *= LONE_BAR_PENALTY
        if c.attached and (lone_bar or not tight):  # a lone bar touching a stroke is most likely part of it
            c.score *= ATTACHED_BAR_PENALTY if bar else ATTACHED_PENALTY
        if c.extra:  # part of a longer run of text (or of strokes): the more glyphs around, the less a label
            c.score *= (IN_TEXT_BAR_PENALTY if bar else IN_TEXT_PENALTY) ** min(c.extra, MAX_EXTRA_GLYPHS)
        if ref_h is not None and not (ref_h / HEIGHT_TOLERANCE <= c.h <= ref_h * HEIGHT_TOLERANCE):
            c.score *= HEIGHT_PENALTY
        x0, y0, x1, y1 = c.box
        if min(x0, y0, ink.shape[1] - 1 - x1, ink.shape[0] - 1 - y1) < BORDER_MARGIN_PX:
            c.score *= BORDER_PENALTY  # cut by the image edge: labels are printed inside the page
    kept = [c for c in cands if c.score >= min_score]
    kept.sort(key=lambda c: -(c.score + LONGER_WORD_BONUS * (c.n_glyphs - 1)))
    chosen: list[_Candidate] = []
    for c in kept:
        if any(_overlap(c.box, q.box) > MAX_OVERLAP for q in chosen):
            continue
        chosen.append(c)
    out: list[LabelRead] = []
    for c in chosen:
        assert c.probs is not None
        alt = [int(i) for i in np.argsort(-c.probs) if CLASSES[int(i)] != c.name][:N_ALTERNATIVES]
        x0, y0, x1, y1 = c.box
        out.append(
            LabelRead(
                c.name,
                float(x0),
                float(y0),
                float(x1),
                float(y1),
                float(min(c.score, 1.0)),
                {CLASSES[i]: float(c.probs[i]) for i in alt},
            )
        )
    return _sorted_by_lines(out)


def _sorted_by_lines(labels: list[LabelRead]) -> list[LabelRead]:
    """Labels sorted by (y, x), where y is that of the text line: labels whose centres lie within half a label
    height of the line's first label (in y order) share its line."""
    out: list[LabelRead] = []
    rest = sorted(labels, key=lambda r: r.cy)
    while rest:
        first = rest[0]
        line = [r for r in rest if r.cy - first.cy <= 0.5 * max(first.height, 1.0)]
        out += sorted(line, key=lambda r: r.cx)
        rest = rest[len(line) :]
    return out


def labels_by_row(labels: list[LabelRead], baselines_y: list[float], spacing_px: float) -> list[list[LabelRead]]:
    """Assign each label to the nearest trace row: a label belongs to the row whose baseline (y, pixels) is
    nearest its box centre, if within 0.6 * ``spacing_px`` (row spacing, pixels) of it; labels may be above or
    below the baseline. Returns one list per baseline (in the given order), each sorted by x."""
    rows: list[list[LabelRead]] = [[] for _ in baselines_y]
    if not baselines_y:
        return rows
    base = np.asarray(baselines_y, np.float64)
    for lab in labels:
        d = np.abs(base - lab.cy)
        i = int(np.argmin(d))
        if d[i] <= 0.6 * float(spacing_px):
            rows[i].append(lab)
    for r in rows:
        r.sort(key=lambda q: q.cx)
    return rows


def _clusters(values: list[float], tol: float) -> list[list[int]]:
    """Indices of ``values`` grouped where sorted neighbours lie within ``tol`` of each other."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    groups: list[list[int]] = []
    for i in order:
        if groups and values[i] - values[groups[-1][-1]] <= tol:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def unread_label_boxes(
    labels: list[LabelRead], min_score: float = ANCHOR_SCORE, also_read: Sequence[LabelRead] = ()
) -> list[tuple[float, float, float, float]]:
    """Boxes (x0, y0, x1, y1 pixels) where the page's label lattice says a label is printed but none was read.

    The lead labels of a page stand on a lattice: one text line per row of leads, one left edge per column (3x4, 6x2,
    12x1 and their rhythm strips alike). Lines are labels' centres within half a label height, columns their left
    edges within a label height, each with at least two labels, one of them read at ``min_score``; a label read at
    ``min_score`` on a line, alone in its column, makes a column too where it stands a whole number of steps of that
    spacing from the others (the last column's 'V4' read, its 'V5' and 'V6' touching their QRS); columns whose
    spacing skips whole steps of the smallest spacing get the skipped ones (a column none of whose labels was read).
    A box is the column's median label width and the line's height, at each crossing with no label of any score
    (among ``labels`` and ``also_read``, labels read that are no part of the lattice)."""
    if len(labels) < 4:
        return []
    h = float(np.median([lab.height for lab in labels]))
    lines = [g for g in _clusters([lab.cy for lab in labels], 0.5 * h) if len(g) >= 2]
    lines = [g for g in lines if any(labels[i].score >= min_score for i in g)]
    x_groups = _clusters([lab.x0 for lab in labels], h)
    cols = [g for g in x_groups if len(g) >= 2]
    cols = [g for g in cols if any(labels[i].score >= min_score for i in g)]
    if len(lines) < 2 or len(cols) < 2:
        return []
    col_w = {
        float(np.median([labels[i].x0 for i in g])): float(np.median([labels[i].x1 - labels[i].x0 for i in g]))
        for g in cols
    }
    col_x = sorted(col_w)
    step = float(np.min(np.diff(col_x)))
    lines_cy = [float(np.median([labels[i].cy for i in g])) for g in lines]
    for g in x_groups:
        lab = labels[g[0]]
        if len(g) != 1 or lab.score < min_score or not any(abs(lab.cy - cy) <= 0.5 * h for cy in lines_cy):
            continue
        gap = min(abs(lab.x0 - x) for x in col_x)
        if abs(gap - round(gap / step) * step) <= 0.5 * h:
            col_w[lab.x0] = lab.x1 - lab.x0
    col_x = sorted(col_w)
    filled = list(col_x)
    for a, b in zip(col_x[:-1], col_x[1:]):
        k = int(round((b - a) / step))
        if k >= 2 and abs(b - a - k * step) <= 0.5 * h:
            filled += [a + j * (b - a) / k for j in range(1, k)]
    widths = float(np.median(list(col_w.values())))
    boxes = []
    for cy in lines_cy:
        for x in sorted(filled):
            if any(abs(lab.x0 - x) <= h and abs(lab.cy - cy) <= 0.5 * h for lab in [*labels, *also_read]):
                continue
            w = col_w.get(x, widths)
            boxes.append((x, cy - 0.5 * h, x + w, cy + 0.5 * h))
    return boxes
