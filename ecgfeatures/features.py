"""Hand-crafted signal features of a 12-lead ECG (true or digitised) for the diagnosis head.

Pipeline of :func:`extract_features` (one record, ``signal`` (num_samples, 12) mV, NaN = unknown):

1. NaN gaps < 50 ms are interpolated linearly.  Baseline removal: every finite run of every lead is band-passed (2nd-order Butterworth high-pass
   0.5 Hz, low-pass ``min(40 Hz, 0.4 fs)``, zero phase); runs shorter than 0.3 s stay NaN.
2. R peaks (``neurokit2.ecg_peaks``) on the rhythm lead: lead II when its longest finite run is at
   least 80 % as long as the longest run of any lead, else the lead with the longest finite run; only
   that run is used.  A squared-slope energy detector runs as well; where the two rates differ by > 10 % the
   peak train that the other leads' QRS complexes confirm better (peaks without a QRS in them plus QRS
   complexes without a peak, :func:`_train_errors`) wins, or, where they do not tell, the one whose QRS windows
   look alike and that misses no beats.  Without neurokit2 the energy detector alone is used.  Detections on P
   or T waves are moved to the QRS beside them or dropped (:func:`_tidy_peaks`).
3. Rhythm: heart rate, RR mean/std/CV, RMSSD, premature beats (RR < 0.8 x local median of 5 RR) and
   compensatory pauses (a premature RR followed by an RR > 1.1 x local median).  Ectopy (made for PVC and PAC):
   every beat's QRS window (R +- 60 ms) on the rhythm lead is correlated with the median QRS of the normal beats;
   ``ectopic_wide_fraction`` = beats whose QRS differs (correlation < 0.8 or peak-to-peak outside 0.6-1.7 x the
   median's) and that come early or before a pause (ventricular), ``ectopic_narrow_fraction`` = premature beats
   whose QRS is the normal one (supraventricular), both as fractions of all beats.
   Atrial activity (group "atrial", made for AF and rate classes on digitised input): median |successive RR
   difference| / median RR (irregular irregularity, robust to a few ectopic beats), and from the rhythm lead's
   pre-QRS windows (R -0.25 s .. R -0.05 s, normal beats) the median window's peak-to-peak amplitude (mV), the
   median correlation of each beat's window with it (P waves repeat, f-waves and noise do not) and their ratio
   to the beat-to-beat residual (P-wave SNR); ``af_score`` = min(1, irregularity / 0.15) x clip((3.5 - SNR) /
   2, 0, 1); ``tachy_score`` = clip((HR - 100) / 20, -1, 1), ``brady_score`` = clip((60 - HR) / 20, -1, 1).
4. Delineation (``neurokit2.ecg_delineate``, "dwt", falling back to "peak") on the rhythm run: fraction
   of beats with a P wave (a delineated P whose pre-QRS window also correlates > 0.5 with the median window,
   so that f-waves taken for P waves do not count), PR interval (P onset to QRS onset), QT (QRS onset to T offset), QTc (Bazett).
5. Median beats per lead (R -0.30 s .. +0.50 s, premature beats excluded), QRS onset/offset from the
   spatial velocity of all leads aligned on the rhythm lead's R peaks; isoelectric (PR) level 10-40 ms
   before QRS onset.  From them: QRS width, frontal axis (net QRS area in I and aVF), R/S voltages
   (Sokolow-Lyon, Cornell, max R, max S), ST level at J + 60 ms per lead, signed T amplitude per lead,
   Q-wave depth/width per territory (inferior II/III/aVF, anterior V2-V4, lateral I/aVL/V5/V6).

Features that cannot be measured are NaN; every group ends with ``<group>_measured`` = fraction of
that group's other features that are finite (0..1).  :func:`features_to_model_input` applies a fixed
scaling (:data:`FEATURE_SCALES`) and replaces NaN by 0.

Public API: :data:`FEATURE_NAMES`, :data:`FEATURE_GROUPS`, :data:`FEATURE_SCALES`,
:func:`extract_features`, :func:`features_to_model_input`, :func:`nothing_measured`.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np
from scipy import signal as sps

from ecgvocab import STANDARD_LEADS

log = logging.getLogger(__name__)

LEADS: list[str] = STANDARD_LEADS  # the column order of the signals measured here
_L = {name: i for i, name in enumerate(LEADS)}
TERRITORIES: dict[str, list[str]] = {
    "inferior": ["II", "III", "aVF"],
    "anterior": ["V2", "V3", "V4"],
    "lateral": ["I", "aVL", "V5", "V6"],
}

# Groups in output order; the last name of each group is its indicator.
FEATURE_GROUPS: dict[str, list[str]] = {
    "rhythm": [
        "heart_rate_bpm",
        "rr_mean_s",
        "rr_std_s",
        "rr_cv",
        "rmssd_s",
        "premature_fraction",
        "compensatory_pause_fraction",
        "ectopic_wide_fraction",
        "ectopic_narrow_fraction",
        "rhythm_measured",
    ],
    "atrial": [
        "rr_diff_median_ratio",
        "p_wave_corr",
        "p_wave_amp_mv",
        "p_wave_snr",
        "af_score",
        "tachy_score",
        "brady_score",
        "atrial_measured",
    ],
    "intervals": ["p_present_fraction", "pr_ms", "qrs_ms", "qt_ms", "qtc_ms", "intervals_measured"],
    "axis": ["axis_deg", "axis_cos", "axis_sin", "axis_measured"],
    "voltage": ["sokolow_lyon_mv", "cornell_mv", "max_r_mv", "max_s_mv", "voltage_measured"],
    "st": [f"st_{ld}_mv" for ld in LEADS] + ["st_measured"],
    "t": [f"t_{ld}_mv" for ld in LEADS] + ["t_measured"],
    "q": [f"q_depth_{t}_mv" for t in TERRITORIES] + [f"q_width_{t}_ms" for t in TERRITORIES] + ["q_measured"],
}
FEATURE_NAMES: list[str] = [n for names in FEATURE_GROUPS.values() for n in names]
_IDX = {n: i for i, n in enumerate(FEATURE_NAMES)}


def _scale_of(name: str) -> float:
    if name == "heart_rate_bpm":
        return 1.0 / 100.0  # bpm / 100
    if name.endswith("_ms"):
        return 1.0 / 100.0  # ms / 100 == s * 10
    if name.endswith("_s"):
        return 10.0  # s * 10
    if name == "axis_deg":
        return 1.0 / 180.0  # deg / 180
    if name == "p_wave_snr":
        return 1.0 / 5.0  # ratio / 5
    if name == "rr_diff_median_ratio":
        return 5.0  # ratio * 5
    return 1.0  # mV, fractions, ratios, cos/sin as they are


#: Multiplicative scale per feature used by :func:`features_to_model_input` (fixed, no fitting).
FEATURE_SCALES: np.ndarray = np.array([_scale_of(n) for n in FEATURE_NAMES], dtype=np.float32)
_MODEL_INPUT_CLIP = 10.0

_PRE_S = 0.30  # median-beat window before R (s)
_POST_S = 0.50  # median-beat window after R (s)
_MIN_RUN_S = 0.3
_EDGE_S = 0.05  # R peaks this close to a segment's end are dropped (s)
_MIN_RR_FRACTION = 0.45  # of two R peaks closer than this x the median RR, the weaker is dropped
_WEAK_SLOPE = 0.4  # a detection whose QRS slope is under this x the median is a P or T wave (or noise) ...
_WEAK_SIZE = 0.6  # ... unless its peak-to-peak size (R +- 60 ms) reaches this x the median (a wide QRS) ...
_SEARCH_S = 0.3  # ... moved to the steepest QRS within this many seconds when one is there, else dropped
_END_SIZE = 0.4  # a weak first or last detection with no QRS near stays when at least this x the median size
_QRS_SLOPE = 0.25  # other leads' mean normalised slope that confirms a QRS (see _spatial_slope)
_ARBITRATION_MARGIN = 0.2  # other-lead errors per QRS by which one detector's train must beat the other's


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _finite_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open (start, end) index ranges of the True runs of a 1-D bool mask."""
    m = np.concatenate([[False], mask.astype(bool), [False]])
    d = np.diff(m.astype(np.int8))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return list(zip(starts.tolist(), ends.tolist()))


def _longest_run(mask: np.ndarray) -> tuple[int, int]:
    runs = _finite_runs(mask)
    if not runs:
        return (0, 0)
    return max(runs, key=lambda r: r[1] - r[0])


def _fill_short_gaps(sig: np.ndarray, fs: float, max_gap_s: float = 0.05) -> np.ndarray:
    """Linearly interpolate NaN gaps shorter than ``max_gap_s`` (s) that have finite samples on both
    sides; ``sig`` (N, 12) mV, returns a copy."""
    out = sig.copy()
    max_gap = max(1, int(round(max_gap_s * fs)))
    for j in range(sig.shape[1]):
        x = out[:, j]
        bad = ~np.isfinite(x)
        if not bad.any() or bad.all():
            continue
        for a, b in _finite_runs(bad):
            if a > 0 and b < len(x) and b - a <= max_gap:
                x[a:b] = np.interp(np.arange(a, b), [a - 1, b], [x[a - 1], x[b]])
    return out


def _filter_leads(sig: np.ndarray, fs: float) -> np.ndarray:
    """Band-pass (0.5 Hz .. min(40, 0.4 fs) Hz, zero phase) every finite run >= 0.3 s of every lead.

    ``sig`` (N, 12) mV with NaN; returns (N, 12) float64 mV, NaN outside the filtered runs."""
    out = np.full(sig.shape, np.nan)
    nyq = fs / 2.0
    hp = sps.butter(2, 0.5 / nyq, btype="highpass", output="sos")
    lp_hz = min(40.0, 0.4 * fs)
    lp = sps.butter(2, lp_hz / nyq, btype="lowpass", output="sos") if lp_hz < 0.95 * nyq else None
    min_len = max(8, int(_MIN_RUN_S * fs))
    for j in range(sig.shape[1]):
        for a, b in _finite_runs(np.isfinite(sig[:, j])):
            if b - a < min_len:
                continue
            x = sig[a:b, j] - np.median(sig[a:b, j])
            pad = min(b - a - 1, int(1.0 * fs))
            y = sps.sosfiltfilt(hp, x, padlen=pad)
            if lp is not None:
                y = sps.sosfiltfilt(lp, y, padlen=min(b - a - 1, 3 * 5))
            out[a:b, j] = y
    return out


def _nk() -> Any | None:
    try:
        import neurokit2 as nk  # lazy: heavy import

        return nk
    except Exception as exc:  # pragma: no cover - depends on the environment
        log.warning("neurokit2 unavailable (%s); using the scipy R-peak detector", exc)
        return None


def _scipy_peaks(x: np.ndarray, fs: float) -> np.ndarray:
    """Fallback R-peak detector: squared-slope energy, peaks >= 0.25 s apart above 30 % of the
    95th percentile; each moved to the max |x| within 50 ms.  Returns sample indices."""
    e = np.convolve(np.gradient(x) ** 2, np.ones(max(1, int(0.08 * fs))), mode="same")
    thr = 0.3 * np.percentile(e, 98)
    pk, _ = sps.find_peaks(e, height=thr, distance=max(1, int(0.25 * fs)))
    w = max(1, int(0.05 * fs))
    out = []
    for p in pk:
        a, b = max(0, p - w), min(len(x), p + w + 1)
        out.append(a + int(np.argmax(np.abs(x[a:b]))))
    return np.unique(np.asarray(out, dtype=np.int64))


def _qrs_windows(x: np.ndarray, peaks: np.ndarray, fs: float) -> tuple[list[int], np.ndarray]:
    """Indices of the ``peaks`` whose QRS window (R +- 60 ms) of ``x`` lies inside and is finite, and those
    windows with their mean removed (K, W)."""
    half = max(2, int(round(0.06 * fs)))
    idx = [
        i
        for i, p in enumerate(peaks)
        if p - half >= 0 and p + half < len(x) and np.isfinite(x[p - half : p + half + 1]).all()
    ]
    if not idx:
        return idx, np.zeros((0, 2 * half + 1))
    w = np.stack([x[peaks[i] - half : peaks[i] + half + 1] for i in idx])
    return idx, w - w.mean(axis=1, keepdims=True)


def _corr_with(windows: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Correlation (K,) of each mean-removed window with a mean-removed template (0 for flat ones)."""
    den = np.sqrt(np.sum(windows * windows, axis=1) * np.sum(template * template))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, windows @ template / np.where(den > 0, den, 1.0), 0.0)


def _beat_train_score(x: np.ndarray, peaks: np.ndarray, fs: float) -> float:
    """Plausibility of an R-peak train on the filtered signal ``x``: the median correlation of the beats' QRS
    windows (R +- 60 ms) with their median (T waves taken for R peaks do not look like the QRS) minus the
    fraction of RR intervals longer than 1.6 x the median RR (missed beats)."""
    _, w = _qrs_windows(x, peaks, fs)
    if len(peaks) < 3 or len(w) < 3:
        return -math.inf
    rr = np.diff(peaks)
    return float(np.median(_corr_with(w, np.median(w, axis=0))) - np.mean(rr > 1.6 * np.median(rr)))


def _tidy_peaks(x: np.ndarray, peaks: np.ndarray, fs: float) -> np.ndarray:
    """R peaks (sorted sample indices into ``x``) without the detections within ``_EDGE_S`` of either end of the
    segment (filter edge effects, cut beats) and, of two detections closer than ``_MIN_RR_FRACTION`` x the
    median RR, the one with the smaller QRS slope (T waves, double detections; a premature beat comes at
    0.6-0.85 x the RR). A detection whose QRS slope (max |dx/dt| within 50 ms) is under ``_WEAK_SLOPE`` x the
    median and whose size (peak-to-peak within 60 ms) is under ``_WEAK_SIZE`` x the median (a wide ectopic QRS is
    large) sits on a P or T wave: it moves to the steepest point within ``_SEARCH_S`` (not past half-way to its
    neighbours) when that is at least half the median slope (a small QRS beside a large P or T wave; the R
    peak is then the extremum of the other peaks' polarity within 50 ms), else it is dropped when it lies
    between two peaks at most 1.5 median RR apart (an extra detection; one in a longer gap is a faint beat
    and stays) and, as the first or last peak, when under ``_END_SIZE`` x the median size (a cut T wave). On
    digitized PTB-XL pages such detections were the first T wave of a record and the P waves of small QRS
    complexes, read as premature beats."""
    edge = int(round(_EDGE_S * fs))
    p = np.unique(np.asarray(peaks, np.int64))
    p = p[(p >= edge) & (p < len(x) - edge)]
    if len(p) < 3:
        return p
    xf = np.nan_to_num(np.asarray(x, float))
    slope = np.abs(np.gradient(xf))
    w = max(1, int(round(0.05 * fs)))

    def strength_at(q: int) -> float:
        return float(slope[max(0, q - w) : q + w + 1].max())

    p = _without_close_pairs(p, np.array([strength_at(q) for q in p]))
    if len(p) < 3:
        return p
    strength = np.array([strength_at(q) for q in p])
    typical = float(np.median(strength))
    h = max(2, int(round(0.06 * fs)))
    size = np.array([np.ptp(xf[max(0, q - h) : q + h + 1]) for q in p])
    size_med = float(np.median(size))
    weak = (strength < _WEAK_SLOPE * typical) & (size < _WEAK_SIZE * size_med)
    rr_med = float(np.median(np.diff(p)))
    polarity = 1.0 if np.median(xf[p] - np.median(xf)) >= 0 else -1.0
    kept: list[int] = []
    for k, q in enumerate(p):
        if not weak[k]:
            kept.append(int(q))
            continue
        lo = max(int(q - _SEARCH_S * fs), (int(p[k - 1]) + int(q)) // 2 if k else edge)
        hi = min(int(q + _SEARCH_S * fs), (int(q) + int(p[k + 1])) // 2 if k + 1 < len(p) else len(x) - edge)
        if hi - lo < 2:
            continue
        steep = lo + int(np.argmax(slope[lo:hi]))
        if slope[steep] < 0.5 * typical:
            # no QRS near: an extra detection between two beats one RR apart goes, one whose neighbours are
            # over 1.5 RR apart is a faint beat and stays; a first or last one stays when it is not tiny (a
            # wide ectopic beat, not a cut T wave)
            inner = 0 < k < len(p) - 1
            if (inner and p[k + 1] - p[k - 1] > 1.5 * rr_med) or (not inner and size[k] >= _END_SIZE * size_med):
                kept.append(int(q))
            continue
        a, b = max(0, steep - w), min(len(x), steep + w + 1)
        kept.append(a + int(np.argmax(polarity * xf[a:b])))
    p = np.unique(np.asarray(kept, np.int64))
    p = p[(p >= edge) & (p < len(x) - edge)]
    return _without_close_pairs(p, np.array([strength_at(q) for q in p])) if len(p) >= 3 else p


def _without_close_pairs(p: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """Of two peaks ``p`` closer than ``_MIN_RR_FRACTION`` x the median RR, the one with the smaller
    ``strength`` goes, until none are."""
    while len(p) >= 3:
        rr = np.diff(p)
        k = int(np.argmin(rr))
        if rr[k] >= _MIN_RR_FRACTION * np.median(rr):
            break
        drop = k if strength[k] < strength[k + 1] else k + 1
        p, strength = np.delete(p, drop), np.delete(strength, drop)
    return p


def _spatial_slope(others: np.ndarray | None, fs: float) -> np.ndarray | None:
    """Mean over the leads of ``others`` (N, L) filtered mV, NaN where not printed, of |dx/dt| divided by each
    lead's 95th percentile (a QRS in every lead reaches about 1; P and T waves stay low); NaN where no lead is
    finite; None without at least one lead finite over 1 s."""
    if others is None or others.ndim != 2 or others.shape[1] == 0:
        return None
    total = np.zeros(others.shape[0])
    count = np.zeros(others.shape[0])
    for j in range(others.shape[1]):
        x = others[:, j]
        fin = np.isfinite(x)
        if fin.sum() < int(1.0 * fs):
            continue
        d = np.abs(np.gradient(np.where(fin, x, 0.0)))
        d[~fin | ~np.roll(fin, 1) | ~np.roll(fin, -1)] = np.nan
        scale = float(np.nanpercentile(d, 95))
        if not scale > 0:
            continue
        ok = np.isfinite(d)
        total[ok] += np.minimum(d[ok] / scale, 3.0)
        count[ok] += 1
    if not count.any():
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _train_errors(peaks: np.ndarray, spatial: np.ndarray, fs: float) -> float | None:
    """Errors of an R-peak train against the other leads' ``spatial`` slope (:func:`_spatial_slope`) where
    that is known: peaks without a QRS there (max within 60 ms < ``_QRS_SLOPE``) plus QRS complexes there
    (peaks of at least ``2 x _QRS_SLOPE``, 0.25 s apart) with no peak within 100 ms, per QRS; None when the
    other leads cover under 2 s."""
    known = np.isfinite(spatial)
    if known.sum() < int(2.0 * fs):
        return None
    s = np.where(known, spatial, 0.0)
    w = max(1, int(round(0.06 * fs)))
    judged = [q for q in peaks if known[max(0, q - w) : q + w + 1].all()]
    unconfirmed = sum(s[max(0, q - w) : q + w + 1].max() < _QRS_SLOPE for q in judged)
    qrs, _ = sps.find_peaks(s, height=2 * _QRS_SLOPE, distance=max(1, int(0.25 * fs)))
    tol = int(round(0.1 * fs))
    missed = sum(not np.any(np.abs(np.asarray(peaks) - q) <= tol) for q in qrs) if len(peaks) else len(qrs)
    return (unconfirmed + missed) / max(len(qrs), 1)


def _detect_r_peaks(raw: np.ndarray, fs: float, others: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """R peaks (sample indices into ``raw``) and the cleaned signal used for delineation.

    Two detectors: NeuroKit2's and a squared-slope energy detector (:func:`_scipy_peaks`, polarity-free). When
    their heart rates agree within 10 % NeuroKit2's peaks are kept; otherwise the train with fewer errors against
    the QRS complexes of the ``others`` leads (N, L) filtered mV, NaN where not printed (:func:`_train_errors`,
    when they differ by ``_ARBITRATION_MARGIN``: big ectopic beats in the rhythm lead had the energy detector
    keep only those, PTB-XL 00256 read at 40 instead of 83 bpm), else the one that scores better in
    :func:`_beat_train_score` (on digitized PTB-XL lead II strips this halved the rates off by > 10 %: 28 -> 19
    of 353, mostly negative-QRS leads where one detector misses beats)."""
    nk = _nk()
    clean = raw
    nk_peaks = None
    if nk is not None and len(raw) >= int(1.0 * fs):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clean = np.asarray(nk.ecg_clean(raw, sampling_rate=int(round(fs))), dtype=float)
                _, info = nk.ecg_peaks(clean, sampling_rate=int(round(fs)))
            peaks = np.asarray(info["ECG_R_Peaks"], dtype=np.int64)
            nk_peaks = np.unique(peaks[(peaks >= 0) & (peaks < len(raw))])
        except Exception as exc:
            log.debug("neurokit2 R-peak detection failed: %s", exc)
            clean = raw
    try:
        energy_peaks = _scipy_peaks(raw, fs)
    except Exception as exc:
        log.debug("scipy R-peak detection failed: %s", exc)
        energy_peaks = np.zeros(0, dtype=np.int64)
    energy_peaks = _tidy_peaks(raw, energy_peaks, fs)
    if nk_peaks is None:
        return energy_peaks, raw
    nk_peaks = _tidy_peaks(clean, nk_peaks, fs)
    if len(nk_peaks) >= 2 and len(energy_peaks) >= 2:
        rate_nk = float(np.mean(np.diff(nk_peaks)))
        rate_en = float(np.mean(np.diff(energy_peaks)))
        if abs(rate_nk / rate_en - 1.0) > 0.1:
            spatial = _spatial_slope(others, fs)
            err_nk = _train_errors(nk_peaks, spatial, fs) if spatial is not None else None
            err_en = _train_errors(energy_peaks, spatial, fs) if spatial is not None else None
            if err_nk is not None and err_en is not None and abs(err_nk - err_en) >= _ARBITRATION_MARGIN:
                return (energy_peaks, clean) if err_en < err_nk else (nk_peaks, clean)
            if _beat_train_score(clean, energy_peaks, fs) > _beat_train_score(clean, nk_peaks, fs):
                return energy_peaks, clean
    return nk_peaks, clean


def _local_median(rr: np.ndarray, half: int = 2) -> np.ndarray:
    return np.array([np.median(rr[max(0, i - half) : i + half + 1]) for i in range(len(rr))])


def _rhythm(peaks: np.ndarray, fs: float, out: np.ndarray) -> np.ndarray:
    """Fill the rhythm features; returns a bool mask over ``peaks`` of premature beats."""
    premature_beat = np.zeros(len(peaks), dtype=bool)
    if len(peaks) < 2:
        return premature_beat
    rr = np.diff(peaks) / fs
    rr_mean = float(rr.mean())
    out[_IDX["heart_rate_bpm"]] = 60.0 / rr_mean
    out[_IDX["rr_mean_s"]] = rr_mean
    if len(rr) >= 2:
        std = float(rr.std(ddof=1))
        out[_IDX["rr_std_s"]] = std
        out[_IDX["rr_cv"]] = std / rr_mean
        out[_IDX["rmssd_s"]] = float(np.sqrt(np.mean(np.diff(rr) ** 2)))
        med = _local_median(rr)
        prem = rr < 0.8 * med
        comp = prem[:-1] & (rr[1:] > 1.1 * med[1:])
        out[_IDX["premature_fraction"]] = float(prem.mean())
        out[_IDX["compensatory_pause_fraction"]] = float(comp.sum() / len(rr))
        premature_beat[1:] = prem
    return premature_beat


def _ectopy(x: np.ndarray, peaks: np.ndarray, premature: np.ndarray, fs: float, out: np.ndarray) -> None:
    """Fill ``ectopic_wide_fraction`` and ``ectopic_narrow_fraction`` from the filtered rhythm lead ``x`` (N,)
    mV, its R ``peaks`` (sample indices) and the premature-beat mask (see the module docstring)."""
    ok, wins = _qrs_windows(x, peaks, fs)
    normal = [k for k, i in enumerate(ok) if not premature[i]]
    if len(ok) < 3 or len(normal) < 2:
        return
    tpl = np.median(wins[normal], axis=0)
    corr = _corr_with(wins, tpl)
    ratio = np.ptp(wins, axis=1) / max(float(np.ptp(tpl)), 1e-6)
    different = (corr < 0.8) | (ratio < 0.6) | (ratio > 1.7)
    rr = np.diff(peaks).astype(float)
    med_rr = float(np.median(rr)) if rr.size else np.nan
    wide = narrow = 0
    for k, i in enumerate(ok):
        pause_after = i < rr.size and math.isfinite(med_rr) and rr[i] > 1.15 * med_rr
        if different[k] and (premature[i] or pause_after):
            wide += 1
        elif premature[i] and not different[k]:
            narrow += 1
    out[_IDX["ectopic_wide_fraction"]] = wide / len(ok)
    out[_IDX["ectopic_narrow_fraction"]] = narrow / len(ok)


def _atrial(x: np.ndarray, peaks: np.ndarray, premature: np.ndarray, fs: float, out: np.ndarray) -> np.ndarray | None:
    """Fill the "atrial" features from the filtered rhythm lead ``x`` (N,) mV and its R ``peaks`` (global
    sample indices); returns the correlation of every beat's pre-QRS window with the median window (NaN for
    beats without a complete window or premature ones), or None when fewer than 3 windows exist."""
    rr_mean = out[_IDX["rr_mean_s"]]
    if math.isfinite(rr_mean) and rr_mean > 0:
        hr = 60.0 / rr_mean
        out[_IDX["tachy_score"]] = float(np.clip((hr - 100.0) / 20.0, -1.0, 1.0))
        out[_IDX["brady_score"]] = float(np.clip((60.0 - hr) / 20.0, -1.0, 1.0))
    rr = np.diff(peaks) / fs
    irregularity = np.nan
    if len(rr) >= 3:
        irregularity = float(np.median(np.abs(np.diff(rr))) / max(np.median(rr), 1e-6))
        out[_IDX["rr_diff_median_ratio"]] = irregularity
    w0, w1 = int(round(0.25 * fs)), int(round(0.05 * fs))
    if w0 - w1 < 4:
        return None
    corr = np.full(len(peaks), np.nan)
    use = [
        i
        for i, p in enumerate(peaks)
        if not premature[i] and p - w0 >= 0 and p - w1 <= len(x) and np.isfinite(x[p - w0 : p - w1]).all()
    ]
    if len(use) < 3:
        return None
    segs = np.stack([x[peaks[i] - w0 : peaks[i] - w1] for i in use])
    segs = segs - segs.mean(axis=1, keepdims=True)
    med = np.median(segs, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        for k, i in enumerate(use):
            s = segs[k]
            den = float(np.sqrt(np.sum(s * s) * np.sum(med * med)))
            corr[i] = float(np.sum(s * med) / den) if den > 0 else 0.0
    amp = float(np.ptp(med))
    noise = float(np.median(np.std(segs - med[None, :], axis=1)))
    snr = amp / (noise + 1e-3)
    out[_IDX["p_wave_corr"]] = float(np.nanmedian(corr))
    out[_IDX["p_wave_amp_mv"]] = amp
    out[_IDX["p_wave_snr"]] = snr
    if math.isfinite(irregularity):
        out[_IDX["af_score"]] = float(min(1.0, irregularity / 0.15) * np.clip((3.5 - snr) / 2.0, 0.0, 1.0))
    return corr


def _delineate(clean: np.ndarray, peaks: np.ndarray, fs: float) -> dict[str, np.ndarray] | None:
    """neurokit2 delineation of ``clean`` at ``peaks``: arrays (len(peaks),) float of sample indices
    (NaN = not found) for P_Onsets, P_Peaks, T_Offsets; None when it failed."""
    nk = _nk()
    if nk is None or len(peaks) < 3:
        return None
    for method in ("dwt", "peak"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, d = nk.ecg_delineate(clean, peaks, sampling_rate=int(round(fs)), method=method)
        except Exception as exc:
            log.debug("ecg_delineate(%s) failed: %s", method, exc)
            continue
        res: dict[str, np.ndarray] = {}
        for key in ("P_Onsets", "P_Peaks", "T_Offsets"):
            v = d.get(f"ECG_{key}")
            arr = np.full(len(peaks), np.nan)
            if v is not None and len(v) == len(peaks):
                arr = np.array([np.nan if x is None else float(x) for x in v])
            res[key] = arr
        return res
    return None


def _median_beats(filt: np.ndarray, peaks: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Median beats (12, W) mV around ``peaks`` (R at index ``pre``) and the number of beats used
    per lead (12,); NaN rows where a lead has no complete window."""
    pre, post = int(round(_PRE_S * fs)), int(round(_POST_S * fs))
    w = pre + post + 1
    tpl = np.full((12, w), np.nan)
    count = np.zeros(12, dtype=int)
    n = filt.shape[0]
    pk = peaks[(peaks - pre >= 0) & (peaks + post < n)]
    if len(pk) == 0:
        return tpl, count
    idx = pk[:, None] + np.arange(-pre, post + 1)[None, :]
    for j in range(12):
        win = filt[idx, j]
        ok = np.all(np.isfinite(win), axis=1)
        if ok.any():
            tpl[j] = np.median(win[ok], axis=0)
            count[j] = int(ok.sum())
    return tpl, count


def _qrs_bounds(tpl: np.ndarray, fs: float, pre: int) -> tuple[int, int] | None:
    """QRS onset/offset (indices into the median-beat window) from the spatial velocity of the finite
    rows of ``tpl`` (k, W): samples within R -0.16 s .. +0.20 s whose velocity (above its 10th percentile) exceeds a fraction of its
    maximum (12 %), bridged over gaps < 20 ms, taking the run that contains (or is closest to) R."""
    rows = tpl[np.all(np.isfinite(tpl), axis=1)]
    if rows.shape[0] == 0:
        return None
    vel = np.sqrt(np.sum(np.gradient(rows, axis=1) ** 2, axis=0)) * fs  # mV/s
    k = max(1, int(round(0.01 * fs)))
    vel = np.convolve(vel, np.ones(k) / k, mode="same")
    a = max(0, pre - int(0.16 * fs))
    b = min(len(vel), pre + int(0.20 * fs) + 1)
    seg = vel[a:b]
    if seg.size == 0 or not np.isfinite(seg).all() or seg.max() <= 0:
        return None
    base = float(np.percentile(vel, 10))
    thr = base + 0.12 * (seg.max() - base)
    above = seg > thr
    gap = int(round(0.02 * fs))
    runs = _finite_runs(above)
    merged: list[list[int]] = []
    for s, e in runs:
        if merged and s - merged[-1][1] < gap:
            merged[-1][1] = e
        else:
            merged.append([s, e])
    if not merged:
        return None
    r = pre - a
    best = min(merged, key=lambda m: 0 if m[0] <= r < m[1] else min(abs(m[0] - r), abs(m[1] - r)))
    on, off = a + best[0], a + best[1] - 1
    if off - on < max(2, int(0.02 * fs)):
        return None
    return on, off


def _angle(x: float, y: float) -> float:
    return math.degrees(math.atan2(y, x))


# --------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------


def extract_features(signal: np.ndarray, fs: float) -> np.ndarray:
    """Signal features of one 12-lead ECG.

    Args:
        signal: (num_samples, 12) mV, leads I, II, III, aVR, aVL, aVF, V1..V6; NaN where unknown.
        fs: sampling frequency in Hz.

    Returns:
        (len(FEATURE_NAMES),) float32, NaN where a feature could not be measured (the
        ``*_measured`` indicators are never NaN).  Never raises: bad input gives all-NaN features and
        zero indicators.
    """
    out = np.full(len(FEATURE_NAMES), np.nan)
    try:
        _extract(signal, fs, out)
    except Exception as exc:  # safety net: features are optional inputs of the model
        log.warning("feature extraction failed (%s: %s); returning what was measured", type(exc).__name__, exc)
    for names in FEATURE_GROUPS.values():
        vals = out[[_IDX[n] for n in names[:-1]]]
        out[_IDX[names[-1]]] = float(np.isfinite(vals).mean())
    return out.astype(np.float32)


def _extract(signal: np.ndarray, fs: float, out: np.ndarray) -> None:
    try:
        fs = float(fs)
    except (TypeError, ValueError):
        log.warning("invalid fs %r", fs)
        return
    sig = np.asarray(signal, dtype=float)
    if not math.isfinite(fs) or fs < 50.0:
        log.warning("fs %.3g Hz is too low for ECG features", fs)
        return
    if sig.ndim != 2 or sig.shape[0] < 2:
        log.warning("signal of shape %s is not (num_samples, 12)", sig.shape)
        return
    if sig.shape[1] != 12:
        fixed = np.full((sig.shape[0], 12), np.nan)
        fixed[:, : min(12, sig.shape[1])] = sig[:, :12]
        sig = fixed
    sig = _fill_short_gaps(np.where(np.isfinite(sig), sig, np.nan), fs)
    filt = _filter_leads(sig, fs)
    fin = np.isfinite(filt)
    runs = [_longest_run(fin[:, j]) for j in range(12)]
    lengths = np.array([b - a for a, b in runs])
    if lengths.max() < int(1.0 * fs):
        return
    ref = _L["II"] if lengths[_L["II"]] >= 0.8 * lengths.max() else int(np.argmax(lengths))
    a0, b0 = runs[ref]
    raw = sig[a0:b0, ref]
    others = np.delete(filt[a0:b0], ref, axis=1)
    local_peaks, clean = _detect_r_peaks(raw, fs, others)
    peaks = local_peaks + a0
    if len(peaks) < 2:
        return
    premature = _rhythm(peaks, fs, out)
    _ectopy(filt[:, ref], peaks, premature, fs, out)
    beat_corr = _atrial(filt[:, ref], peaks, premature, fs, out)

    # --- median beats (normal beats; all beats when too few) ----------------------------------------
    normal = peaks[~premature] if (~premature).sum() >= 2 else peaks
    pre = int(round(_PRE_S * fs))
    tpl, count = _median_beats(filt, normal, fs)
    aligned = count > 0
    # leads that the rhythm lead's beats do not cover (e.g. 2.5 s columns of a page): own R peaks
    for j in np.flatnonzero(~aligned):
        a, b = runs[j]
        if b - a < int(1.0 * fs):
            continue
        own, _ = _detect_r_peaks(sig[a:b, j], fs)
        if len(own):
            t_j, c_j = _median_beats(filt, own + a, fs)
            tpl[j], count[j] = t_j[j], c_j[j]
    have = count > 0
    if not have.any():
        return

    bounds: list[tuple[int, int] | None] = [None] * 12
    common = _qrs_bounds(tpl[aligned], fs, pre) if aligned.any() else None
    for j in range(12):
        if not have[j]:
            continue
        bounds[j] = common if aligned[j] else _qrs_bounds(tpl[j : j + 1], fs, pre)
    main = common if common is not None else next((b for b in bounds if b is not None), None)
    if main is not None:
        out[_IDX["qrs_ms"]] = (main[1] - main[0]) / fs * 1000.0

    iso_a, iso_b = int(round(0.04 * fs)), max(1, int(round(0.01 * fs)))
    rr_mean = out[_IDX["rr_mean_s"]]
    r_amp = np.full(12, np.nan)
    s_amp = np.full(12, np.nan)
    area = np.full(12, np.nan)
    q_depth = np.full(12, np.nan)
    q_width = np.full(12, np.nan)
    w = tpl.shape[1]
    for j in range(12):
        bj = bounds[j]
        if bj is None:
            continue
        on, off = bj
        lo = max(0, on - iso_a)
        hi = max(lo + 1, on - iso_b)
        x = tpl[j] - float(np.median(tpl[j, lo:hi]))  # relative to the PR (isoelectric) level
        q = x[on : off + 1]
        r_amp[j] = max(0.0, float(q.max()))
        s_amp[j] = max(0.0, float(-q.min()))
        area[j] = float(q.sum() / fs)
        # ST level at J + 60 ms
        st = off + int(round(0.06 * fs))
        if st < w:
            out[_IDX[f"st_{LEADS[j]}_mv"]] = float(x[st])
        # T wave: largest deviation from J + 60 ms to R + min(0.45 s, 0.7 RR)
        t_end_s = 0.45 if not math.isfinite(rr_mean) else min(0.45, 0.7 * rr_mean)
        t0, t1 = st, min(w, pre + int(round(t_end_s * fs)))
        if t1 - t0 >= 3:
            seg = x[t0:t1]
            out[_IDX[f"t_{LEADS[j]}_mv"]] = float(seg[int(np.argmax(np.abs(seg)))])
        # Q wave: initial negative deflection (> 0.05 mV) before the first positive one
        dev = np.flatnonzero(np.abs(q) > 0.05)
        if dev.size == 0 or q[dev[0]] > 0:
            q_depth[j], q_width[j] = 0.0, 0.0
        else:
            back = np.flatnonzero(q[dev[0] :] >= 0.0)
            end = dev[0] + (int(back[0]) if back.size else len(q) - dev[0])
            q_depth[j] = float(-q[:end].min())
            q_width[j] = end / fs * 1000.0
    for t, leads in TERRITORIES.items():
        d = q_depth[[_L[ld] for ld in leads]]
        wq = q_width[[_L[ld] for ld in leads]]
        if np.isfinite(d).any():
            out[_IDX[f"q_depth_{t}_mv"]] = float(np.nanmax(d))
            out[_IDX[f"q_width_{t}_ms"]] = float(np.nanmax(wq))

    # --- axis from the net QRS areas (I: x; aVF = (sqrt(3)/2) y; II = x/2 + (sqrt(3)/2) y) ----------
    x_a = area[_L["I"]]
    if np.isfinite(area[_L["aVF"]]):
        y_a = 2.0 * area[_L["aVF"]] / math.sqrt(3.0)
    elif np.isfinite(area[_L["II"]]) and np.isfinite(x_a):
        y_a = (2.0 * area[_L["II"]] - x_a) / math.sqrt(3.0)
    else:
        y_a = np.nan
    if np.isfinite(x_a) and np.isfinite(y_a) and (x_a != 0.0 or y_a != 0.0):
        ang = _angle(x_a, y_a)
        out[_IDX["axis_deg"]] = ang
        out[_IDX["axis_cos"]] = math.cos(math.radians(ang))
        out[_IDX["axis_sin"]] = math.sin(math.radians(ang))

    # --- voltages ----------------------------------------------------------------------------------
    r_lat = np.nanmax(r_amp[[_L["V5"], _L["V6"]]]) if np.isfinite(r_amp[[_L["V5"], _L["V6"]]]).any() else np.nan
    out[_IDX["sokolow_lyon_mv"]] = s_amp[_L["V1"]] + r_lat
    out[_IDX["cornell_mv"]] = r_amp[_L["aVL"]] + s_amp[_L["V3"]]
    if np.isfinite(r_amp).any():
        out[_IDX["max_r_mv"]] = float(np.nanmax(r_amp))
        out[_IDX["max_s_mv"]] = float(np.nanmax(s_amp))

    # --- delineation on the rhythm run: P presence, PR, QT, QTc -------------------------------------
    d = _delineate(clean, local_peaks, fs)
    if d is not None and main is not None:
        on_off = main[0] - pre  # QRS onset relative to R (samples)
        qrs_on = local_peaks + on_off
        p_peak, p_on, t_off = d["P_Peaks"], d["P_Onsets"], d["T_Offsets"]
        pr_gap = (local_peaks - p_peak) / fs
        p_ok = np.isfinite(p_peak) & (pr_gap > 0.04) & (pr_gap < 0.45)
        if beat_corr is not None:
            p_ok &= ~(beat_corr <= 0.5)  # beats without a window (NaN) keep the delineator's answer
        out[_IDX["p_present_fraction"]] = float(p_ok.mean())
        pr = (qrs_on - p_on) / fs * 1000.0
        pr = pr[p_ok & np.isfinite(pr) & (pr > 60.0) & (pr < 450.0)]
        if pr.size and p_ok.mean() >= 0.5:
            out[_IDX["pr_ms"]] = float(np.median(pr))
        qt = (t_off - qrs_on) / fs * 1000.0
        qt = qt[np.isfinite(qt) & (qt > 200.0) & (qt < 700.0)]
        if qt.size:
            qt_ms = float(np.median(qt))
            out[_IDX["qt_ms"]] = qt_ms
            if math.isfinite(rr_mean) and rr_mean > 0:
                out[_IDX["qtc_ms"]] = qt_ms / math.sqrt(rr_mean)


def nothing_measured(features: np.ndarray) -> bool:
    """True when a feature vector (E,) from :func:`extract_features` has no group measured (every
    ``<group>_measured`` is 0 or NaN): the signal had no usable trace."""
    f = np.asarray(features, dtype=float).reshape(-1)
    flags = f[[_IDX[f"{g}_measured"] for g in FEATURE_GROUPS]]
    return not bool(np.any(np.nan_to_num(flags) > 0))


def features_to_model_input(features: np.ndarray) -> np.ndarray:
    """Fixed scaling of features (N, E) or (E,) -> same shape float32 for the model.

    Each column is multiplied by :data:`FEATURE_SCALES` (bpm / 100, ms / 100 (= s * 10), s * 10,
    degrees / 180; mV, fractions, ratios, cos/sin unchanged), clipped to [-10, 10], and NaN/inf become
    0 (the ``*_measured`` indicators tell the model which zeros are missing values)."""
    f = np.asarray(features, dtype=np.float32)
    if f.shape[-1] != len(FEATURE_NAMES):
        raise ValueError(f"expected last dimension {len(FEATURE_NAMES)}, got shape {f.shape}")
    x = f * FEATURE_SCALES
    x = np.where(np.isfinite(x), x, 0.0)
    return np.clip(x, -_MODEL_INPUT_CLIP, _MODEL_INPUT_CLIP).astype(np.float32)
