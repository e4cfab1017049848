"""Self-check of a digitized 12-lead page against the physics of the leads.

:func:`check_signal` takes the digitizer's output (``(num_samples, n_leads)`` in mV, NaN where a lead was not
printed) and tells whether it is physically consistent:

* **Limb-lead laws.** The six limb leads are projections of one 2-D heart vector: with
  aVR = -(I + II)/2, aVL = I - II/2, aVF = II - I/2,

  - Einthoven: II = I + III;
  - Goldberger: aVR + aVL + aVF = 0;
  - aVF - aVR = (3/2) II, so II = (2/3)(aVF - aVR) (check ``goldberger:II``);
  - aVL - aVR = (3/2) I, so I = (2/3)(aVL - aVR) (``goldberger:I``);
  - aVF - aVL = (3/2)(II - I), so III = (2/3)(aVF - aVL) (``goldberger:III``).

  Each identity sum(c_k lead_k) = 0 is checked on the samples where all its leads are finite (at least
  MIN_SIMULTANEOUS_S), per contiguous run, after the same linear processing of every lead (so the law stays
  exact): removal of a cubic trend (the arbitrary offset of each digitized lead, a tilted scan, slow tracing drift)
  and a zero-phase low-pass at IDENTITY_LOWPASS_HZ. The value is the relative residual
  rms(sum c_k x_k) / sqrt(sum c_k^2 ms(x_k) + IDENTITY_FLOOR_MV^2): 0 for a perfect page, about 1 for unrelated
  traces, up to 2 for a sign flip; the floor keeps flat segments from dividing by ~0. The detail also gives the
  correlation of the predicted lead (e.g. II) with its prediction (I + III). On a 3x4+1 page Einthoven (column 0
  with the rhythm strip II), Goldberger and ``goldberger:II`` (column 1 with the rhythm strip II) apply; on 6x2
  and 12x1 pages all five.
* **Rhythm strip vs segment** (optional ``rhythm`` argument): correlation and amplitude ratio of a full-length
  rhythm strip with the same lead's short segment over their common samples.
* **QRS timing.** QRS complexes are detected per lead (own detector: squared 5-25 Hz band, smoothed envelope,
  relative threshold, T-wave rejection); for every pair of simultaneous leads with clear QRS the median distance
  of each lead's beats to the other's nearest beat is taken in both directions and the smaller kept (a beat one
  lead misses raises only one direction; a shifted or stretched lead raises both); the page value is the
  largest over pairs (ms).
* **R-R agreement.** For the same pairs, the time scale between the two QRS envelopes (scan of
  ea(t) ~ eb(sigma t)): a row read with a wrong px/s shows its R-R intervals scaled by sigma. The page value is
  the largest |sigma - 1| (either way). On pages without a lead spanning the columns the mean R-R of each column
  is compared with the page's (``rr_windows``, loose: heart rate changes between columns).
* **Ranges.** Heart rate 25-250 bpm; per-lead peak-to-peak 0.05-8 mV (``flat``, ``amplitude``); coverage of each
  lead's printed window; calibration pulse (a square step of 0.4-3 mV lasting 0.1-0.3 s within the first
  0.35 s of a lead); adjacent precordial leads not anti-correlated (``precordial``, a statistical check, not a
  law); two leads that are the same trace (``duplicate``).

Status: ``failed`` when the page is clearly wrong (no lead has signal, amplitude absurd, two limb identities
grossly violated, or FAILED_CHECKS_FATAL different checks failed), ``suspect`` when a check fails or the limb
laws could not be verified (too few simultaneous limb leads), else ``ok``. ``score`` (0..1) is the geometric
mean over the applicable checks of 1 / (1 + (value/limit)^4) (value/limit oriented so that > 1 fails), times
(0.5 + 0.5 * fraction of named leads with samples), times UNVERIFIED_SCORE when no limb law could be verified,
scaled by 0.25 for a failed page: higher is more physically consistent, usable to choose between digitization
hypotheses of one page.

Measured (a script outside the project): PTB-XL true signals (353 records at 100 Hz, 244 of them at 500 Hz)
turned into simulated digitizations - per-lead offset N(0, 0.5) mV, Gaussian noise 0.02-0.05 mV, 2 ms Gaussian
smoothing, 0-8 ms time shift per lead, per-lead gain 0.95-1.05 - masked to 3x4+1 (each lead its 2.5 s column,
II the full 10 s):

* true signals 'ok': 100 Hz 350/353 = 99.2 % (second noise draw 98.6 %), 500 Hz 240/244 = 98.4 % (98.8 %).
  With an extra 0.05 mV, 0.1-0.5 Hz drift per lead 98.6 % [500 Hz 98.4 %]; with a 0-0.04 mV/s tilt per lead
  99.2 % [98.4 %]. Other layouts, 100 Hz [500 Hz]: 3x4 98.6 % [98.8 %], 6x2 99.2 % [98.8 %], 12x1 98.6 % [98.4 %],
  3x4 + a separate rhythm strip II (``rhythm``) 99.2 % [98.8 %]. JS00001 (500 Hz): 80/80 noise draws and layouts
  ok, the clean record ok. The few true pages flagged: a bigeminy record whose leads see different beats
  (``qrs_timing``, ``rr_agreement``) and anti-correlated adjacent precordial leads (``precordial``).
* errors detected ('suspect' or 'failed'), 100 Hz [500 Hz]:
  (a) swapped / misassigned rows: II<->III 99.4 % [98.8 %], aVL<->aVF 72.5 % [70.9 %], aVR<->aVL 90.1 %
  [91.0 %], rows 1<->2 100 % [100 %], row 2 copied onto row 0 100 % [100 %], rhythm strip traced from row 0
  100 % [100 %]. Not detectable by physics: I<->III 1.7 % [1.6 %] (Einthoven is symmetric in I and III; no other
  identity has them on a 3x4 page), V1<->V2 7.1 % [7.0 %], V4<->V6 0.8 % [1.2 %] (no law for precordial leads).
  A swap is visible only as far as the swapped leads differ (aVL<->aVF leaves a residual III).
  (b) one lead sign-flipped: I 99.2 % [99.2 %], II 100 % [100 %], III 97.5 % [97.1 %], aVR 99.4 % [99.2 %],
  aVL 96.0 % [93.0 %], aVF 98.0 % [98.0 %]; V1-V6 (``precordial`` only) 73.7 / 93.5 / 70.5 / 89.0 / 98.0 / 93.8 %
  [77.9 / 95.1 / 69.3 / 86.9 / 97.5 / 91.8 %].
  (c) one row or column stretched 1.2-1.65x: rows 0-3 100 % [100 %], columns 0 and 1 99.2 % / 100 %
  [99.2 % / 100 %], columns 2 and 3 (V leads: timing against the rhythm strip only) 96.0 % / 94.9 %
  [98.4 % / 97.5 %].
  (d) one row x2: row 0 (I, aVR, V1, V4) 94.9 % [90.6 %], row 1 (aVL, V2, V5) 50.4 % [44.3 %], row 2 (III, aVF,
  V3, V6) 79.0 % [74.6 %], the rhythm strip II 98.3 % [95.1 %]. With a separate rhythm strip, the short II x2
  100 % [100 %] (``rhythm_amplitude``).
  (e) calibration pulse (0.5 / 1 / 2 mV, 0.16-0.24 s) at the start of a lead: I 99.7 %, II 97.7 %, III 97.7 %,
  aVR 99.7 %, V1 93.8 %, V4 87.3 % [99.2 / 96.3 / 97.1 / 100 / 93.9 / 88.1 %]; the pulse check alone finds
  92.9 % [90.6 %] of the pulses and raised no false alarm on 4236 [2928] true leads.
  Other: a grid line traced as V2 (0.005 mV jitter) 100 % [100 %] (``flat``); a random walk traced as I 92.4 %
  [95.1 %]; 0.02-0.05 mV noise traced as V2 0.8 % [4.1 %] (not told from a low-amplitude lead); with a separate
  rhythm strip: short II traced from row 2 95.5 % [94.3 %], rhythm strip stretched 100 % [100 %] or flipped
  100 % [100 %].
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Sequence

import numpy as np
from scipy.ndimage import median_filter, uniform_filter1d
from scipy.signal import butter, find_peaks, sosfiltfilt

from ecgvocab import STANDARD_LEAD_KEYS, lead_key

# ----------------------------------------------------------------------------------------------------------------
# Thresholds. "Measured" = on the simulated digitizations of the 353 PTB-XL records (100 Hz) and 244 records
# (500 Hz) described in the module docstring; p99.5 / max are over pages.
# ----------------------------------------------------------------------------------------------------------------

#: least simultaneous duration (s) for a limb identity, a timing comparison or a rhythm comparison: less than one
#: beat at 60 bpm says little (design choice)
MIN_SIMULTANEOUS_S = 1.0
#: least contiguous run (s) of a lead in which QRS complexes are detected (design choice, as above)
MIN_RUN_S = 1.0
#: noise floor (mV) added in quadrature to the denominator of a relative residual: 2-5x the simulated
#: digitization noise, so that flat or tiny leads cannot blow the ratio up
IDENTITY_FLOOR_MV = 0.1
#: rms (mV) of an identity's leads below which it is not applicable (flat leads are reported by ``flat``)
IDENTITY_MIN_SIGNAL_MV = 0.03
#: processing of the leads before an identity or rhythm comparison (the same linear operation on every lead, so
#: the laws stay exact): a polynomial trend of this degree removed (offsets, tilt of a rotated scan, slow tracing
#: drift), then a zero-phase low-pass (Hz) against the digitization noise and the 0-8 ms misalignment of separately
#: traced rows. Measured (100 Hz, identity alone, limit at the true p99.5): with offsets only removed and no
#: low-pass the true p99.5 residual is 0.43-0.49 and a row x2 (row 0) is caught in 67 %; with the low-pass
#: 0.26-0.30 and 99 %. Degree 3 keeps that and stands a 0.05 mV, 0.1-0.5 Hz drift per lead (1 % of true pages
#: flagged, vs 67 % without detrending, 39 % linear, 11 % quadratic) and a 0.04 mV/s tilt per lead (0 %, vs 23 %),
#: at the price of a few % of sensitivity (aVL<->aVF 82 % vs 90 %, row 1 x2 60 % vs 68 % at that limit)
IDENTITY_DETREND_DEG = 3
IDENTITY_LOWPASS_HZ = 15.0
#: relative residual above which a limb identity fails. Measured on true pages (all layouts and identities): p99.5
#: 0.25-0.31 and max 0.344 at 100 Hz (2118 pages), p99.5 0.18-0.23 and max 0.27 at 500 Hz; a swap or flip gives
#: 0.5-2
IDENTITY_LIMIT = 0.35
#: relative residual of a gross violation (2x the limit); two of them fail the page
IDENTITY_GROSS = 0.7
#: least correlation (after the same processing) of a rhythm strip with its short segment, both traced with
#: independent noise. Measured: true min 0.811 (100 Hz), 0.904 (500 Hz)
RHYTHM_CORR_MIN = 0.8
#: largest amplitude ratio (rms, either way) of a rhythm strip and its short segment. Measured: true max 1.20
#: (100 Hz), 1.13 (500 Hz) with independent 5 % gain errors
RHYTHM_AMP_RATIO_MAX = 1.25
#: QRS detector: band (Hz) and smoothing (s) of the squared envelope; a peak is a QRS when above QRS_REL_HEIGHT of
#: the typical beat energy (median of the largest peaks, one per QRS_TYPICAL_S), QRS_REFRACTORY_S after the
#: previous one, and not within QRS_TWAVE_S of a peak with 1/QRS_TWAVE_RATIO its energy (T or P wave). Tuned on
#: the true pages (100 Hz) against beats found on all 12 clean leads: among leads of clarity >= QRS_SNR_MIN, 0.2 %
#: have an extra and 0.7 % a missed beat (tolerance 100 ms)
QRS_BAND_HZ = (5.0, 25.0)
QRS_SMOOTH_S = 0.05
QRS_REL_HEIGHT = 0.25
QRS_REFRACTORY_S = 0.25
QRS_TYPICAL_S = 1.5
QRS_TWAVE_S = 0.36
QRS_TWAVE_RATIO = 0.5
#: least QRS clarity (envelope max / median) of a lead used for timing. Measured: keeps 92 % of the true leads;
#: the page p99 of ``qrs_timing`` falls from 147 ms (clarity 10) to 77 ms (30)
QRS_SNR_MIN = 30.0
#: beats closer than this (s) to the edges of a comparison interval are not compared (filter edge effects)
EDGE_S = 0.1
#: largest QRS time disagreement (ms) of two simultaneous leads. Measured on true pages: p99 65-105 ms (290 ms on
#: 12x1 pages at 500 Hz), p99.5 72-121 ms (wide QRS: the energy peaks of different leads differ by up to ~120 ms);
#: one bigeminy record (PTB-XL 00436, its leads see different beats) reaches 460 ms
QRS_TIMING_LIMIT_MS = 120.0
#: A limb-lead law that holds to this relative residual (half its limit) confirms that its leads are aligned in time
#: (a shift of a few tens of ms breaks it at every QRS); their detected QRS times are then not compared where the law
#: was checked (LAW_ALIGNED_MIN_OVERLAP of the pair's window), nor their R-R intervals (a stretched lead breaks the
#: law too): leads that see different beats (bigeminy: ectopic
#: beats tall in III, sinus beats in I) disagree there by several hundred ms (a real page: 374 ms, residual 0.04).
LAW_ALIGNED_MAX_RESIDUAL = 0.175
LAW_ALIGNED_MIN_OVERLAP = 0.9
#: cap (ms) of a QRS time disagreement
QRS_TIMING_CAP_MS = 1000.0
#: largest relative R-R disagreement (|sigma - 1|) of two simultaneous leads. Measured on true pages: p99
#: 0.01-0.07 (0.34 in one 500 Hz run), 0-3 pages of a run above the limit (ectopic beats); a 1.2x stretch gives
#: 0.2
RR_LIMIT = 0.12
#: R-R scale scan: range and number of scales, least gain of envelope correlation over the unscaled one, and
#: largest unscaled correlation for which another scale may win. Measured on pairs of leads: with these, 0.1 % of
#: true pairs (1960) vs. all pairs involving a stretched column report sigma != 1
RR_SCALE_RANGE = (0.5, 2.0)
RR_SCALE_STEPS = 141
RR_SCALE_MARGIN = 0.2
RR_UNSCALED_MAX = 0.5
#: largest relative difference of a column's mean R-R from the page's, on pages without a lead spanning the
#: columns. Measured on true 3x4 pages (no rhythm strip): p99 0.33-0.38, p99.5 0.40-0.45, max 0.49
#: (arrhythmias): only gross stretches are caught this way
RR_WINDOWS_LIMIT = 0.45
#: heart rate range (bpm), from the brief; measured on the true pages: 31-170 bpm
RATE_MIN_BPM, RATE_MAX_BPM = 25.0, 250.0
#: peak-to-peak (0.5-99.5 percentile) amplitude range (mV) of a lead, from the brief. Measured on true pages: the
#: smallest lead 0.15 mV (with noise), the largest 6.1 mV in 2.5 s windows; one PTB-XL artefact (00292 V1) 9.6 mV
AMP_MIN_MV, AMP_MAX_MV = 0.05, 8.0
#: peak-to-peak amplitude (mV) of a lead that fails the page (no ECG reaches it)
AMP_ABSURD_MV = 20.0
#: least fraction of a lead's printed window (its span, at least the median span of the leads) that holds samples
#: (design choice: the digitizer interpolates short gaps, so true pages have 1.0)
COVERAGE_MIN = 0.8
#: calibration pulse: searched within the first PULSE_SEARCH_S of a lead; a plateau of PULSE_WIDTH_S (s) and
#: PULSE_HEIGHT_MV (mV) from the isoelectric level (mode of the next PULSE_BASE_S), spread <= PULSE_FLAT_FRAC and
#: thirds agreeing within PULSE_DOME_FRAC of the height (a T wave is a dome), left (and entered unless it starts
#: the lead) by a step of PULSE_STEP_FRAC of the height within PULSE_EDGE_S. Measured: 0 false alarms in 7164 true
#: leads (100 + 500 Hz); 91-93 % of simulated 0.5/1/2 mV pulses found (misses: a QRS right after the pulse). A
#: 0.3 mV height limit gave 2 false alarms (T-wave tops)
PULSE_SEARCH_S = 0.35
PULSE_WIDTH_S = (0.1, 0.3)
PULSE_HEIGHT_MV = (0.4, 3.0)
PULSE_FLAT_FRAC = 0.15
PULSE_DOME_FRAC = 0.1
PULSE_STEP_FRAC = 0.7
PULSE_EDGE_S = 0.02
PULSE_BASE_S = 1.5
#: least correlation of adjacent precordial leads (V1/V2 ... V5/V6) on simultaneous samples, for all pairs but the
#: lowest: the QRS turns from mostly negative to mostly positive once along V1-V6 (the R/S transition), and the one
#: pair it falls between may be anti-correlated. Not a law: measured on true pages, per pair and 2.5 s window p0.5
#: -0.28 .. -0.53, min -0.9 (V2/V3 transition); per page, the lowest pair's p1 -0.46 .. -0.55 (the 353 PTB-XL
#: records of ../shared/data: 2 below the limit, -0.60 and -0.56, both V4/V5, and a real scan at -0.58, every lead
#: right), the second lowest pair's minimum 0.06 (none below the limit). A lead printed upside down leaves two of
#: its pairs below it.
PRECORDIAL_CORR_MIN = -0.55
#: correlation of two different leads above which they are the same trace (identical pixels give ~1). Measured:
#: the most similar true pair of a page reaches 0.997 with independent noise; the clean JS00001 has V4 and V5 at
#: 0.9997 (max difference 0.02 mV), which a 0.998 limit flagged
DUPLICATE_CORR = 0.9999
#: number of distinct failed checks that fails the page (design choice)
FAILED_CHECKS_FATAL = 3
#: score factor of a page whose limb laws could not be verified (design choice)
UNVERIFIED_SCORE = 0.8

STANDARD_LEADS: tuple[str, ...] = STANDARD_LEAD_KEYS  # matching keys (upper case)
LIMB_LEADS: tuple[str, ...] = STANDARD_LEADS[:6]
PRECORDIAL_LEADS: tuple[str, ...] = STANDARD_LEADS[6:]
_DISPLAY = {"AVR": "aVR", "AVL": "aVL", "AVF": "aVF"} | {
    k: k for k in ("I", "II", "III", "V1", "V2", "V3", "V4", "V5", "V6")
}

#: limb identities sum(c_k * lead_k) = 0: (check name, lead the others predict or None, coefficients)
LIMB_IDENTITIES: tuple[tuple[str, str | None, dict[str, float]], ...] = (
    ("einthoven", "II", {"II": 1.0, "I": -1.0, "III": -1.0}),
    ("goldberger", None, {"AVR": 1.0, "AVL": 1.0, "AVF": 1.0}),
    ("goldberger:II", "II", {"II": 1.0, "AVF": -2.0 / 3.0, "AVR": 2.0 / 3.0}),
    ("goldberger:I", "I", {"I": 1.0, "AVL": -2.0 / 3.0, "AVR": 2.0 / 3.0}),
    ("goldberger:III", "III", {"III": 1.0, "AVF": -2.0 / 3.0, "AVL": 2.0 / 3.0}),
)


@dataclass
class Check:
    """One check of a digitized page.

    ``value`` is the measured quantity in the check's unit (relative residual, correlation, ms, mV, bpm ...),
    ``limit`` the threshold it is compared with, ``passed`` None when not applicable. ``leads``: the leads (their
    names as given) the value is about: the worst lead or pair, the leads of a law; when the check fails, the leads
    it blames (empty for page-level checks: rate, R-R windows)."""

    name: str
    value: float
    limit: float
    passed: bool | None
    detail: str
    leads: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN -> None)."""
        return {
            "name": self.name,
            "value": _json_float(self.value),
            "limit": _json_float(self.limit),
            "passed": self.passed,
            "detail": self.detail,
            "leads": list(self.leads),
        }


@dataclass
class SelfCheck:
    """Verdict on a digitized page: ``status`` 'ok' | 'suspect' | 'failed', ``reasons`` (empty when ok), the
    ``checks`` and a ``score`` in 0..1 (higher = more physically consistent)."""

    status: str
    reasons: list[str]
    checks: list[Check]
    score: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN -> None)."""
        return {
            "status": self.status,
            "reasons": list(self.reasons),
            "checks": [c.to_dict() for c in self.checks],
            "score": _json_float(self.score),
        }


def _json_float(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


# ----------------------------------------------------------------------------------------------------------------
# signal helpers
# ----------------------------------------------------------------------------------------------------------------


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of the True runs of a boolean array."""
    m = np.r_[False, np.asarray(mask, bool), False].astype(np.int8)
    d = np.diff(m)
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation (NaN when either is constant)."""
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / den if den > 0 else float("nan")


def _p2p(x: np.ndarray) -> float:
    """Peak-to-peak (mV) between the 0.5 and 99.5 percentiles (single outliers ignored)."""
    lo, hi = np.percentile(x, [0.5, 99.5])
    return float(hi - lo)


def _band(x: np.ndarray, fs: float) -> np.ndarray:
    """``x`` (mV, one contiguous run) less a polynomial trend of degree IDENTITY_DETREND_DEG, low-passed at
    IDENTITY_LOWPASS_HZ (zero-phase).

    A linear operation applied alike to every lead of an identity over the same samples keeps the identity exact;
    this one removes the leads' offsets, tilts (a rotated scan) and slow tracing drift, and the noise and small
    time misalignments of separately traced rows above the cut-off."""
    n = x.size
    if n < 2 * (IDENTITY_DETREND_DEG + 1):
        return x - x.mean()
    t = np.linspace(-1.0, 1.0, n)
    y = x - np.polynomial.polynomial.polyval(t, np.polynomial.polynomial.polyfit(t, x, IDENTITY_DETREND_DEG))
    if n <= 15:
        return y
    sos = butter(2, min(IDENTITY_LOWPASS_HZ, 0.4 * fs), btype="low", fs=fs, output="sos")
    return sosfiltfilt(sos, y)


def _mode(x: np.ndarray, bin_mv: float = 0.02) -> float:
    """Most frequent level (mV) of ``x``: the isoelectric line of an ECG."""
    lo, hi = float(np.min(x)), float(np.max(x))
    if hi - lo < 2 * bin_mv:
        return float(np.median(x))
    cnt, edges = np.histogram(x, bins=int(math.ceil((hi - lo) / bin_mv)))
    i = int(np.argmax(np.convolve(np.pad(cnt, 2), [1, 2, 3, 2, 1], mode="valid")))  # one value per bin
    return 0.5 * float(edges[i] + edges[i + 1])


def qrs_envelope(x: np.ndarray, fs: float) -> np.ndarray:
    """QRS energy envelope (mV^2) of a finite run ``x`` (mV) at ``fs`` Hz: the square of the QRS band
    (QRS_BAND_HZ, zero-phase) smoothed over QRS_SMOOTH_S."""
    hi = min(QRS_BAND_HZ[1], 0.45 * fs)
    lo = min(QRS_BAND_HZ[0], 0.5 * hi)
    sos = butter(2, [lo, hi], btype="band", fs=fs, output="sos")
    y = x - np.median(x)
    y = sosfiltfilt(sos, y, padlen=min(3 * (2 * len(sos) + 1), y.size - 1))
    return uniform_filter1d(y * y, size=max(1, int(round(QRS_SMOOTH_S * fs))), mode="nearest")


def detect_qrs(x: np.ndarray, fs: float, env: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """QRS sample indices in a finite run ``x`` (mV) at ``fs`` Hz, and the run's QRS clarity (envelope max /
    median; about 3-8 for noise, tens to hundreds for a clear ECG lead). ``env``: its :func:`qrs_envelope`, when
    already computed.

    Peaks of the envelope at least QRS_REFRACTORY_S apart and above QRS_REL_HEIGHT of the typical beat (the median
    of the largest peaks, one per QRS_TYPICAL_S of the run, so that one large ectopic beat does not hide the
    others); a peak within QRS_TWAVE_S of one with 1 / QRS_TWAVE_RATIO its energy is a T (or P) wave."""
    if x.size < max(8, int(MIN_RUN_S * fs)):
        return np.zeros(0, int), 0.0
    e = qrs_envelope(x, fs) if env is None else env
    top = float(e.max())
    if top <= 0:
        return np.zeros(0, int), 0.0
    clarity = top / max(float(np.median(e)), 1e-12)
    pk, pr = find_peaks(e, height=0.01 * top, distance=max(1, int(round(QRS_REFRACTORY_S * fs))))
    h = pr["peak_heights"]
    nn = max(1, int(math.ceil(x.size / fs / QRS_TYPICAL_S)))
    typical = float(np.median(np.sort(h)[::-1][:nn]))
    keep = h >= QRS_REL_HEIGHT * typical
    pk, h = pk[keep], h[keep]
    if pk.size > 1:
        near = int(round(QRS_TWAVE_S * fs))
        drop = np.zeros(pk.size, bool)
        for i in range(pk.size):
            for k in (i - 1, i + 1):
                if 0 <= k < pk.size and abs(int(pk[k]) - int(pk[i])) < near and h[i] < QRS_TWAVE_RATIO * h[k]:
                    drop[i] = True
        pk = pk[~drop]
    return pk.astype(int), clarity


def rr_scale(ea: np.ndarray, eb: np.ndarray, fs: float) -> tuple[float, float, float] | None:
    """Time scale between two simultaneous QRS envelopes ``ea``, ``eb`` (same samples at ``fs`` Hz):
    ``(sigma, r at 1, r at sigma)`` with ea(t) ~ eb(sigma t), t from the segment start, sigma scanned over
    RR_SCALE_RANGE on the envelopes' square roots. sigma stays 1 unless the unscaled correlation is at most
    RR_UNSCALED_MAX and another scale correlates better by RR_SCALE_MARGIN. A lead read stretched by k shows
    sigma = 1/k against a true one. None when the envelopes are too short or constant."""
    step = max(1, int(fs // 100))
    a = np.sqrt(np.maximum(ea[::step], 0.0))
    b = np.sqrt(np.maximum(eb[::step], 0.0))
    n = a.size
    if n < 10 or a.std() <= 0 or b.std() <= 0:
        return None
    sig = np.exp(np.linspace(math.log(RR_SCALE_RANGE[0]), math.log(RR_SCALE_RANGE[1]), RR_SCALE_STEPS))
    sig = np.unique(np.r_[sig, 1.0])
    t = np.arange(n, dtype=float)
    src = t[None, :] * sig[:, None]
    w = (src <= n - 1).astype(float)
    bs = np.interp(np.minimum(src, n - 1), t, b)
    cnt = w.sum(axis=1)
    da = (a[None, :] - (w * a[None, :]).sum(axis=1, keepdims=True) / cnt[:, None]) * w
    db = (bs - (w * bs).sum(axis=1, keepdims=True) / cnt[:, None]) * w
    den = np.sqrt((da * da).sum(axis=1) * (db * db).sum(axis=1))
    r = np.where(den > 0, (da * db).sum(axis=1) / np.maximum(den, 1e-12), -1.0)
    r[cnt < 0.5 * n] = -1.0
    i1 = int(np.flatnonzero(sig == 1.0)[0])
    ib = int(np.argmax(r))
    if r[ib] < r[i1] + RR_SCALE_MARGIN or r[i1] > RR_UNSCALED_MAX:
        return 1.0, float(r[i1]), float(r[i1])
    return float(sig[ib]), float(r[i1]), float(r[ib])


def find_pulse(x: np.ndarray, fs: float) -> tuple[float, float] | None:
    """(height mV, width s) of a square calibration pulse starting within the first PULSE_SEARCH_S of the finite
    run ``x`` (mV) at ``fs`` Hz, else None (see PULSE_* for the criteria)."""
    e = max(1, int(round(PULSE_EDGE_S * fs)))
    w0, w1 = (max(2, int(round(w * fs))) for w in PULSE_WIDTH_S)
    span = int(round(PULSE_SEARCH_S * fs))
    need = span + w1 + 3 * e + 1
    if x.size < need:
        return None
    k = max(1, int(round(0.01 * fs))) | 1
    rest = x[need : need + int(round(PULSE_BASE_S * fs))]
    base = _mode(median_filter(rest if rest.size >= 0.5 * fs else x, size=k, mode="nearest"))
    y = median_filter(x[:need], size=k, mode="nearest")
    c1 = np.r_[0.0, np.cumsum(y)]
    c2 = np.r_[0.0, np.cumsum(y * y)]

    def mean_sd(i0: np.ndarray, i1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cnt = np.maximum(i1 - i0, 1)
        m = (c1[i1] - c1[i0]) / cnt
        return m, np.sqrt(np.maximum((c2[i1] - c2[i0]) / cnt - m * m, 0.0))

    step = max(1, int(round(0.01 * fs)))
    a = np.arange(0, span, step)[:, None]  # plateau start
    b = a + np.arange(w0, w1 + 1, step)[None, :]  # plateau stop (exclusive)
    p, sd = mean_sd(a, b)
    h = p - base
    ah = np.abs(h)
    tol = (1 - PULSE_STEP_FRAC) * ah
    thirds = [mean_sd(a + i * (b - a) // 3, a + (i + 1) * (b - a) // 3)[0] for i in range(3)]
    dome = np.max([np.abs(thirds[i] - thirds[j]) for i, j in ((0, 1), (1, 2), (0, 2))], axis=0)
    after, after_sd = mean_sd(b + e, b + 3 * e)
    has_before = a >= 3 * e
    before, before_sd = mean_sd(np.maximum(a - 3 * e, 0), np.maximum(a - e, 0))
    before = np.where(has_before, before, np.inf)
    exit_ok = (np.abs(y[b + e] - p) >= PULSE_STEP_FRAC * ah) & (np.abs(y[b - 1] - p) <= tol)
    entry_ok = ~has_before | ((np.abs(y[np.maximum(a - e, 0)] - p) >= PULSE_STEP_FRAC * ah) & (np.abs(y[a] - p) <= tol))
    back = ((np.abs(after - base) <= tol) & (after_sd <= tol)) | ((np.abs(before - base) <= tol) & (before_sd <= tol))
    ok = (
        (ah >= PULSE_HEIGHT_MV[0])
        & (ah <= PULSE_HEIGHT_MV[1])
        & (sd <= PULSE_FLAT_FRAC * ah)
        & (dome <= PULSE_DOME_FRAC * ah)
        & exit_ok
        & entry_ok
        & back
    )
    if not ok.any():
        return None
    width = b - a
    ia, ib = np.unravel_index(np.argmax(np.where(ok, width, -1)), ok.shape)
    return float(h[ia, ib]), float(width[ia, ib]) / fs


# ----------------------------------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class _Lead:
    """One lead of the page: samples (0 where not finite), finite mask, QRS detections."""

    name: str
    x: np.ndarray
    ok: np.ndarray
    runs: list[tuple[int, int]] = field(default_factory=list)
    env: np.ndarray = field(default_factory=lambda: np.zeros(0))
    beats: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    clear: bool = False


class _Checks:
    """Checks collected with their badness (value / limit oriented so that > 1 fails; used by the score)."""

    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.badness: list[float] = []

    def add(
        self,
        name: str,
        value: float,
        limit: float,
        passed: bool | None,
        detail: str,
        badness: float = float("nan"),
        leads: Sequence[str] = (),
    ) -> Check:
        c = Check(
            name,
            float(value),
            float(limit),
            None if passed is None else bool(passed),
            detail,
            tuple(dict.fromkeys(leads)),
        )
        self.checks.append(c)
        self.badness.append(float(badness))
        return c


def _check_coverage(
    out: _Checks, leads: dict[str, _Lead], missing: list[str], windows: dict[str, int] | None = None
) -> None:
    spans = {}
    for k, L in leads.items():
        idx = np.flatnonzero(L.ok)
        spans[k] = int(idx[-1] - idx[0] + 1)
    window = float(np.median(list(spans.values())))
    # each lead's printed window: the one the caller knows (a part of a page cuts leads short), else the leads' usual
    cov = {
        k: float(L.ok.sum()) / max(spans[k], windows[k] if windows and k in windows else window)
        for k, L in leads.items()
    }
    worst = min(cov, key=cov.get)
    low = [leads[k].name for k in cov if cov[k] < COVERAGE_MIN]
    value = 0.0 if missing else cov[worst]
    lowest = f"lowest coverage {cov[worst]:.2f} of the printed window ({leads[worst].name}, limit {COVERAGE_MIN})"
    # leads without samples named first; the others' lowest coverage only where it fails too (named when it passes,
    # it read as if that lead had failed)
    detail = lowest if not missing else f"no samples in {', '.join(missing)}" + (f"; {lowest}" if low else "")
    out.add(
        "coverage",
        value,
        COVERAGE_MIN,
        not low and not missing,
        detail,
        (1 - value) / (1 - COVERAGE_MIN),
        leads=(low + list(missing)) if (low or missing) else [leads[worst].name],
    )


def _check_amplitude(out: _Checks, leads: dict[str, _Lead]) -> dict[str, float]:
    p2p = {k: _p2p(L.x[L.ok]) for k, L in leads.items()}
    flat = [leads[k].name for k, v in p2p.items() if v < AMP_MIN_MV]
    lo = min(p2p, key=p2p.get)
    out.add(
        "flat",
        p2p[lo],
        AMP_MIN_MV,
        not flat,
        f"flat leads (peak-to-peak < {AMP_MIN_MV} mV): {', '.join(flat)}"
        if flat
        else f"smallest peak-to-peak {p2p[lo]:.2f} mV ({leads[lo].name}, limit {AMP_MIN_MV} mV)",
        AMP_MIN_MV / max(p2p[lo], 1e-6),
        leads=flat or [leads[lo].name],
    )
    hi = max(p2p, key=p2p.get)
    out.add(
        "amplitude",
        p2p[hi],
        AMP_MAX_MV,
        p2p[hi] <= AMP_MAX_MV,
        f"largest peak-to-peak {p2p[hi]:.2f} mV ({leads[hi].name}, limit {AMP_MAX_MV} mV)",
        p2p[hi] / AMP_MAX_MV,
        leads=[leads[hi].name],
    )
    return p2p


def _format_law(coefs: dict[str, float], leads: dict[str, _Lead]) -> str:
    """'II - I - III' for {'II': 1, 'I': -1, 'III': -1}."""
    text = ""
    for k, c in coefs.items():
        f = Fraction(abs(c)).limit_denominator(10)
        term = leads[k].name if f == 1 else f"{f} {leads[k].name}"
        text += (" - " if c < 0 else " + ") + term if text else ("-" if c < 0 else "") + term
    return text


def _check_identity(
    out: _Checks, leads: dict[str, _Lead], name: str, target: str | None, coefs: dict[str, float], fs: float
) -> Check | None:
    if not all(k in leads for k in coefs):
        return None
    m = np.logical_and.reduce([leads[k].ok for k in coefs])
    n = int(m.sum())
    if n < MIN_SIMULTANEOUS_S * fs:
        return None
    parts: dict[str, list[np.ndarray]] = {k: [] for k in coefs}
    for s0, s1 in _runs(m):
        for k in coefs:
            parts[k].append(_band(leads[k].x[s0:s1], fs))
    xs = {k: np.concatenate(v) for k, v in parts.items()}
    r = sum(c * xs[k] for k, c in coefs.items())
    res = float(np.sqrt(np.mean((r - np.mean(r)) ** 2)))
    sig = math.sqrt(sum(c * c * float(np.mean(xs[k] ** 2)) for k, c in coefs.items()))
    rel = res / math.sqrt(sig**2 + IDENTITY_FLOOR_MV**2)
    law = _format_law(coefs, leads)
    if sig < IDENTITY_MIN_SIGNAL_MV:
        return out.add(
            name,
            rel,
            IDENTITY_LIMIT,
            None,
            f"{law} = 0 not verifiable: {sig:.3f} mV rms over {n / fs:.1f} s",
            leads=[leads[k].name for k in coefs],
        )
    extra = ""
    if target is not None:
        pred = -sum(c * xs[k] for k, c in coefs.items() if k != target)
        extra = f", correlation of {leads[target].name} with its prediction {_corr(xs[target], pred):.2f}"
    return out.add(
        name,
        rel,
        IDENTITY_LIMIT,
        rel <= IDENTITY_LIMIT,
        f"{law} = 0: relative residual {rel:.2f} (limit {IDENTITY_LIMIT}) over {n / fs:.1f} s{extra}",
        rel / IDENTITY_LIMIT,
        leads=[leads[k].name for k in coefs],
    )


def _check_rhythm(out: _Checks, leads: dict[str, _Lead], rhythm: dict[str, np.ndarray], fs: float) -> None:
    n = next(iter(leads.values())).x.size
    for rname, strip in rhythm.items():
        key = lead_key(rname)
        if key not in leads:
            continue
        L = leads[key]
        strip = np.asarray(strip, dtype=float).ravel()[:n]
        sok = np.zeros(n, bool)
        sok[: strip.size] = np.isfinite(strip)
        sx = np.zeros(n)
        sx[: strip.size] = np.where(sok[: strip.size], strip, 0.0)
        m = sok & L.ok
        cnt = int(m.sum())
        name = f"rhythm_vs_segment:{_DISPLAY.get(key, L.name)}"
        if cnt < MIN_SIMULTANEOUS_S * fs:
            out.add(
                name,
                float("nan"),
                RHYTHM_CORR_MIN,
                None,
                f"rhythm strip {L.name}: only {cnt / fs:.1f} s in common with its segment",
                leads=[L.name],
            )
            continue
        a_parts, s_parts = [], []
        for s0, s1 in _runs(m):
            a_parts.append(_band(sx[s0:s1], fs))
            s_parts.append(_band(L.x[s0:s1], fs))
        a, s = np.concatenate(a_parts), np.concatenate(s_parts)
        r = _corr(a, s)
        r = -1.0 if not math.isfinite(r) else r
        sa, ss = float(np.std(a)), float(np.std(s))
        ratio = ss / sa if sa > 0 else float("inf")
        either = max(ratio, 1 / ratio) if ratio > 0 else float("inf")
        out.add(
            name,
            r,
            RHYTHM_CORR_MIN,
            r >= RHYTHM_CORR_MIN,
            f"rhythm strip {L.name} vs its segment: correlation {r:.2f} (limit {RHYTHM_CORR_MIN}) over "
            f"{cnt / fs:.1f} s",
            (1 - r) / (1 - RHYTHM_CORR_MIN),
            leads=[L.name],
        )
        out.add(
            f"rhythm_amplitude:{_DISPLAY.get(key, L.name)}",
            either,
            RHYTHM_AMP_RATIO_MAX,
            either <= RHYTHM_AMP_RATIO_MAX,
            f"segment / rhythm strip {L.name} amplitude ratio {ratio:.2f} (limit {RHYTHM_AMP_RATIO_MAX} either way)",
            math.log(either) / math.log(RHYTHM_AMP_RATIO_MAX) if math.isfinite(either) else 10.0,
            leads=[L.name],
        )


def _detect_all(leads: dict[str, _Lead], fs: float) -> None:
    for L in leads.values():
        L.runs = [(s0, s1) for s0, s1 in _runs(L.ok) if s1 - s0 >= MIN_RUN_S * fs]
        L.env = np.full(L.x.size, np.nan)
        beats, clarity = [], 0.0
        for s0, s1 in L.runs:
            e = qrs_envelope(L.x[s0:s1], fs)
            L.env[s0:s1] = e
            pk, q = detect_qrs(L.x[s0:s1], fs, e)
            beats.append(pk + s0)
            clarity = max(clarity, q)
        L.beats = np.concatenate(beats) if beats else np.zeros(0, int)
        L.clear = clarity >= QRS_SNR_MIN and L.beats.size > 0


def _check_timing(
    out: _Checks, leads: dict[str, _Lead], fs: float, aligned: dict[frozenset[str], np.ndarray] | None = None
) -> None:
    """QRS times and R-R intervals of simultaneous clear leads; ``aligned``: pairs of leads (keys) whose alignment a
    limb-lead law already confirms, with the samples where it does: their detected QRS times and R-R intervals are
    not compared there (see LAW_ALIGNED_MAX_RESIDUAL)."""
    aligned = aligned or {}
    clear = [(k, L) for k, L in leads.items() if L.clear]
    edge = int(round(EDGE_S * fs))
    worst_t: tuple[float, str, tuple[str, ...]] = (float("nan"), "", ())
    worst_rr: tuple[float, str, tuple[str, ...]] = (float("nan"), "", ())
    for ia, (ka, A) in enumerate(clear):
        for kb, B in clear[ia + 1 :]:
            for s0, s1 in _runs(A.ok & B.ok):
                if s1 - s0 < MIN_SIMULTANEOUS_S * fs:
                    continue
                where = f"{A.name}/{B.name} at {s0 / fs:.1f}-{s1 / fs:.1f} s"
                confirmed = aligned.get(frozenset((ka, kb)))
                if confirmed is not None and confirmed[s0:s1].mean() >= LAW_ALIGNED_MIN_OVERLAP:
                    continue  # aligned and scaled alike by a law: beats and R-R not compared
                med = []
                for P, Q in ((A, B), (B, A)):
                    inner = P.beats[(P.beats >= s0 + edge) & (P.beats < s1 - edge)]
                    if inner.size and Q.beats.size:
                        med.append(float(np.median(np.min(np.abs(inner[:, None] - Q.beats[None, :]), axis=1))))
                if len(med) == 2:
                    dt = min(min(med) / fs * 1e3, QRS_TIMING_CAP_MS)
                    if not dt <= worst_t[0]:
                        worst_t = (dt, where, (A.name, B.name))
                sc = rr_scale(A.env[s0:s1], B.env[s0:s1], fs)
                if sc is not None:
                    rel = max(sc[0], 1 / sc[0]) - 1
                    if not rel <= worst_rr[0]:
                        worst_rr = (
                            rel,
                            f"{where}: R-R of {A.name} = {1 / sc[0]:.2f} x {B.name}'s, envelope "
                            f"correlation {sc[2]:.2f} vs {sc[1]:.2f} unscaled",
                            (A.name, B.name),
                        )
    if math.isfinite(worst_t[0]):
        v = worst_t[0]
        out.add(
            "qrs_timing",
            v,
            QRS_TIMING_LIMIT_MS,
            v <= QRS_TIMING_LIMIT_MS,
            f"largest QRS time disagreement {v:.0f} ms ({worst_t[1]}, limit {QRS_TIMING_LIMIT_MS:.0f} ms)",
            v / QRS_TIMING_LIMIT_MS,
            leads=worst_t[2],
        )
    if math.isfinite(worst_rr[0]):
        v = worst_rr[0]
        out.add(
            "rr_agreement",
            v,
            RR_LIMIT,
            v <= RR_LIMIT,
            f"largest relative R-R disagreement {v:.2f} ({worst_rr[1]}, limit {RR_LIMIT})",
            v / RR_LIMIT,
            leads=worst_rr[2],
        )

    # columns that share no lead: compare their mean R-R
    groups: dict[tuple[int, int], list[float]] = {}
    for _, L in clear:
        for s0, s1 in L.runs:
            bb = L.beats[(L.beats >= s0) & (L.beats < s1)]
            if bb.size >= 3:
                key = (int(round(10 * s0 / fs)), int(round(10 * s1 / fs)))  # 0.1 s units
                groups.setdefault(key, []).append(float(bb[-1] - bb[0]) / (bb.size - 1) / fs)
    spans = sorted(groups)
    overlap = any(g[1] > h[0] and h[1] > g[0] for i, g in enumerate(spans) for h in spans[i + 1 :])
    if len(groups) >= 2 and not overlap:
        rr = {g: float(np.median(v)) for g, v in groups.items()}
        ref = float(np.median(list(rr.values())))
        g = max(rr, key=lambda q: max(rr[q], ref) / min(rr[q], ref))
        v = max(rr[g], ref) / min(rr[g], ref) - 1
        out.add(
            "rr_windows",
            v,
            RR_WINDOWS_LIMIT,
            v <= RR_WINDOWS_LIMIT,
            f"mean R-R {rr[g] * 1e3:.0f} ms in {g[0] / 10:.1f}-{g[1] / 10:.1f} s vs {ref * 1e3:.0f} ms on the "
            f"page (relative {v:.2f}, limit {RR_WINDOWS_LIMIT})",
            v / RR_WINDOWS_LIMIT,
        )


def _check_rate(out: _Checks, leads: dict[str, _Lead], fs: float) -> None:
    cand = sorted(
        ((s1 - s0, L.name, s0, s1, L) for L in leads.values() if L.clear for s0, s1 in L.runs),
        key=lambda c: c[0],
        reverse=True,
    )
    for _, name, s0, s1, L in cand[:3]:
        bb = L.beats[(L.beats >= s0) & (L.beats < s1)]
        if bb.size >= 3:
            hr = 60.0 * fs * (bb.size - 1) / float(bb[-1] - bb[0])
            lim = RATE_MAX_BPM if hr > RATE_MIN_BPM else RATE_MIN_BPM
            out.add(
                "rate",
                hr,
                lim,
                RATE_MIN_BPM <= hr <= RATE_MAX_BPM,
                f"heart rate {hr:.0f} bpm from {name} (range {RATE_MIN_BPM:.0f}-{RATE_MAX_BPM:.0f} bpm)",
                max(hr / RATE_MAX_BPM, RATE_MIN_BPM / hr),
            )
            return


def _check_pulse(out: _Checks, leads: dict[str, _Lead], fs: float) -> None:
    found = []
    for L in leads.values():
        if L.runs:
            s0, s1 = L.runs[0]
            p = find_pulse(L.x[s0:s1], fs)
            if p is not None:
                found.append((L.name, p))
    hmax = max((abs(p[0]) for _, p in found), default=0.0)
    out.add(
        "pulse",
        hmax,
        PULSE_HEIGHT_MV[0],
        not found,
        (
            "calibration pulse left at the start of "
            + ", ".join(f"{nm} ({p[0]:+.2f} mV, {p[1] * 1e3:.0f} ms)" for nm, p in found)
        )
        if found
        else "no calibration pulse at the start of a lead",
        2.0 if found else 0.0,
        leads=[nm for nm, _ in found],
    )


def _check_precordial(out: _Checks, leads: dict[str, _Lead], fs: float) -> None:
    vs = [k for k in PRECORDIAL_LEADS if k in leads]
    pairs = []
    for a, c in zip(vs, vs[1:]):
        m = leads[a].ok & leads[c].ok
        if m.sum() >= MIN_SIMULTANEOUS_S * fs:
            r = _corr(leads[a].x[m], leads[c].x[m])
            if math.isfinite(r):
                pairs.append((r, f"{leads[a].name}/{leads[c].name}"))
    if len(pairs) >= 2:
        (low, low_nm), (v, nm) = sorted(pairs)[:2]
        out.add(
            "precordial",
            v,
            PRECORDIAL_CORR_MIN,
            v >= PRECORDIAL_CORR_MIN,
            f"second lowest correlation of adjacent precordial leads {v:.2f} ({nm}, limit {PRECORDIAL_CORR_MIN}; "
            f"the lowest, {low:.2f} ({low_nm}), may be the R/S transition)",
            (1 - v) / (1 - PRECORDIAL_CORR_MIN),
            leads=sorted(set(nm.split("/")) | set(low_nm.split("/"))),
        )


def _check_duplicate(out: _Checks, leads: dict[str, _Lead], fs: float) -> None:
    Ls = list(leads.values())
    dup, best = [], (float("nan"), "")
    for i, A in enumerate(Ls):
        for B in Ls[i + 1 :]:
            m = A.ok & B.ok
            if m.sum() < MIN_SIMULTANEOUS_S * fs:
                continue
            c = _corr(A.x[m], B.x[m])
            if not math.isfinite(c):
                continue
            if not c <= best[0]:
                best = (c, f"{A.name}/{B.name}")
            if c >= DUPLICATE_CORR:
                dup.append(f"{A.name}/{B.name}")
    if math.isfinite(best[0]):
        out.add(
            "duplicate",
            best[0],
            DUPLICATE_CORR,
            not dup,
            f"same trace in different leads: {', '.join(dup)}"
            if dup
            else f"highest correlation of two different leads {best[0]:.3f} ({best[1]}, limit {DUPLICATE_CORR})",
            (1 - DUPLICATE_CORR) / max(1 - best[0], 1e-9),
            leads=[n for pair in (dup or [best[1]]) for n in pair.split("/")],
        )


def _verdict(
    out: _Checks, leads: dict[str, _Lead], p2p: dict[str, float], missing: list[str], identities: list[Check]
) -> SelfCheck:
    reasons = [f"{c.name} failed: {c.detail}." for c in out.checks if c.passed is False]
    failed = {c.name for c in out.checks if c.passed is False}
    fatal = []
    if all(v < AMP_MIN_MV for v in p2p.values()):
        fatal.append("No lead has signal: every lead is flat.")
    if max(p2p.values()) > AMP_ABSURD_MV:
        fatal.append(f"Absurd amplitude: {max(p2p.values()):.1f} mV peak-to-peak (limit {AMP_ABSURD_MV:.0f} mV).")
    gross = [c for c in identities if c.passed is False and c.value > IDENTITY_GROSS]
    if len(gross) >= 2:
        fatal.append(
            "Limb-lead laws grossly violated: "
            + ", ".join(f"{c.name} {c.value:.2f}" for c in gross)
            + f" (> {IDENTITY_GROSS})."
        )
    if len(failed) >= FAILED_CHECKS_FATAL:
        fatal.append(f"{len(failed)} checks failed: {', '.join(sorted(failed))}.")
    verified = [c for c in identities if c.passed is not None]
    if not verified:
        limb = [leads[k].name for k in LIMB_LEADS if k in leads]
        why = (
            "no limb lead"
            if not limb
            else "too little signal"
            if identities
            else f"fewer than 3 limb leads simultaneous for {MIN_SIMULTANEOUS_S:g} s (limb leads: {', '.join(limb)})"
        )
        reasons.append(f"Limb-lead laws (Einthoven, Goldberger) could not be verified: {why}.")
    soft = [
        1.0 / (1.0 + max(bd, 0.0) ** 4)
        for c, bd in zip(out.checks, out.badness)
        if c.passed is not None and math.isfinite(bd)
    ]
    score = float(np.exp(np.mean(np.log(np.maximum(soft, 1e-6))))) if soft else 0.0
    score *= 0.5 + 0.5 * len(leads) / (len(leads) + len(missing))
    if not verified:
        score *= UNVERIFIED_SCORE
    if fatal:
        # a failed page scores below 0.25, in the order of its checks (competing readings stay comparable)
        return SelfCheck("failed", fatal + reasons, out.checks, float(np.clip(0.25 * score, 0.0, 1.0)))
    return SelfCheck("suspect" if reasons else "ok", reasons, out.checks, float(np.clip(score, 0.0, 1.0)))


def check_signal(
    signal: np.ndarray,
    lead_names: list[str],
    fs: float,
    rhythm: dict[str, np.ndarray] | None = None,
    absent: Sequence[str] = (),
    windows: dict[str, int] | None = None,
) -> SelfCheck:
    """Check a digitized page against the physics of the leads.

    ``signal``: (num_samples, n_leads) in mV, NaN where a lead was not printed; ``lead_names``: one per column,
    matched case-insensitively (any subset / order of I, II, III, aVR, aVL, aVF, V1-V6; other names take part in
    the amplitude, coverage, timing and pulse checks only); ``fs``: sampling rate (Hz); ``rhythm``: optional
    lead name -> full-length rhythm strip (mV, NaN where not printed, same sampling), compared with the same lead's
    short segment in ``signal``; ``absent``: leads known not to be on the page (an image showing part of one), not
    counted as missing; ``windows``: lead name -> samples printed of that lead, where the leads' windows differ (a lead
    cut by the image's edge), for the coverage check. Never raises on missing or partial data (only on a
    non-positive ``fs``)."""
    fs = float(fs)
    if not math.isfinite(fs) or fs <= 0:
        raise ValueError(f"fs must be a positive number of Hz, got {fs}")
    sig = np.asarray(signal, dtype=float)
    if sig.ndim == 1:
        sig = sig[:, None]
    out = _Checks()
    leads: dict[str, _Lead] = {}
    missing: list[str] = []
    off_page = {lead_key(nm) for nm in absent}
    for j, nm in enumerate(list(lead_names)[: sig.shape[1]]):
        key = lead_key(nm)
        if key in leads or key in missing:
            continue
        ok = np.isfinite(sig[:, j])
        if not ok.any():
            if key not in off_page:
                missing.append(str(nm))
            continue
        leads[key] = _Lead(str(nm), np.where(ok, sig[:, j], 0.0), ok)
    if not leads:
        out.add("coverage", 0.0, COVERAGE_MIN, False, "no lead has samples", 1e3)
        return SelfCheck("failed", ["No lead has signal: every lead is empty (NaN)."], out.checks, 0.0)

    _check_coverage(out, leads, missing, {lead_key(k): int(v) for k, v in windows.items()} if windows else None)
    p2p = _check_amplitude(out, leads)
    identities: list[Check] = []
    aligned: dict[frozenset[str], np.ndarray] = {}
    for name, target, coefs in LIMB_IDENTITIES:
        c = _check_identity(out, leads, name, target, coefs, fs)
        if c is None:
            continue
        identities.append(c)
        if c.passed and c.value <= LAW_ALIGNED_MAX_RESIDUAL:
            m = np.logical_and.reduce([leads[k].ok for k in coefs])
            for ka, kb in itertools.combinations(coefs, 2):
                pair = frozenset((ka, kb))
                aligned[pair] = aligned[pair] | m if pair in aligned else m
    if rhythm:
        _check_rhythm(out, leads, rhythm, fs)
    _detect_all(leads, fs)
    _check_timing(out, leads, fs, aligned)
    _check_rate(out, leads, fs)
    _check_pulse(out, leads, fs)
    _check_precordial(out, leads, fs)
    _check_duplicate(out, leads, fs)
    return _verdict(out, leads, p2p, missing, identities)
