"""Tests of ecgfeatures.features on synthetic ECGs with known truth (ecgrender.synth)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from ecgfeatures import FEATURE_NAMES, FEATURE_SCALES, extract_features, features_to_model_input, nothing_measured
from ecgrender.synth import synthesize_ecg

E = len(FEATURE_NAMES)
IDX = {n: i for i, n in enumerate(FEATURE_NAMES)}
SEEDS = [0, 1, 2]


def _feat(labels, seed, fs=500.0, duration_s=10.0):
    sig, info = synthesize_ecg(labels, fs=fs, duration_s=duration_s, rng=seed)
    return extract_features(sig, fs), info


def test_feature_names_fixed():
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) == E == FEATURE_SCALES.shape[0]
    for lead in ["I", "aVR", "V6"]:
        assert f"st_{lead}_mv" in IDX and f"t_{lead}_mv" in IDX
    assert sum(n.endswith("_measured") for n in FEATURE_NAMES) == 8


@pytest.mark.parametrize("label", ["NORM", "TACHY", "BRADY"])
@pytest.mark.parametrize("seed", SEEDS)
def test_heart_rate(label, seed):
    f, info = _feat([label], seed)
    assert f.shape == (E,) and f.dtype == np.float32
    assert abs(f[IDX["heart_rate_bpm"]] - info["heart_rate_bpm"]) < 0.05 * info["heart_rate_bpm"]
    assert f[IDX["rhythm_measured"]] == 1.0


@pytest.mark.parametrize("seed", SEEDS)
def test_heart_rate_on_an_inverted_rhythm_lead(seed):
    """Negative QRS complexes in the rhythm lead (lead II of a strongly deviated axis): the rate holds."""
    sig, info = synthesize_ecg(["NORM"], fs=500.0, duration_s=10.0, rng=seed)
    f = extract_features(-sig, 500.0)
    assert abs(f[IDX["heart_rate_bpm"]] - info["heart_rate_bpm"]) < 0.05 * info["heart_rate_bpm"]


def test_beat_train_score_prefers_the_true_r_peaks():
    """The detector arbiter: the true R-peak train scores above one that misses two beats and above one that
    also counts the T waves."""
    from ecgfeatures.features import _beat_train_score, _detect_r_peaks

    fs = 500.0
    sig, info = synthesize_ecg(["NORM"], fs=fs, duration_s=10.0, rng=3)
    x = sig[:, 1] - np.median(sig[:, 1])
    peaks, _ = _detect_r_peaks(sig[:, 1], fs)
    assert abs(60.0 * fs / np.mean(np.diff(peaks)) - info["heart_rate_bpm"]) < 0.05 * info["heart_rate_bpm"]
    t_waves = peaks + int(0.3 * fs)
    doubled = np.sort(np.r_[peaks, t_waves[t_waves < len(x)]])
    good = _beat_train_score(x, peaks, fs)
    missed = np.delete(peaks, [3, 7])
    assert good > _beat_train_score(x, missed, fs) and good > _beat_train_score(x, doubled, fs)


def test_tidy_peaks_drops_edge_and_t_wave_detections():
    """Detections at the segment's ends and a T wave detected 0.3 s after an R peak are dropped; the R peaks
    of a record with premature atrial beats stay."""
    from ecgfeatures.features import _tidy_peaks

    fs = 500.0
    sig, info = synthesize_ecg(["NORM"], fs=fs, duration_s=10.0, rng=4)
    x = sig[:, 1]
    true = np.asarray(info["r_peak_samples"], np.int64)
    inner = true[(true > 0.1 * fs) & (true < len(x) - 0.1 * fs)]
    t_wave = inner[4] + int(0.3 * fs)
    noisy = np.sort(np.r_[2, inner, t_wave, len(x) - 3])
    assert np.array_equal(_tidy_peaks(x, noisy, fs), inner)
    sig, info = synthesize_ecg(["PAC"], fs=fs, duration_s=10.0, rng=4)
    x = sig[:, 1]
    peaks = np.asarray(info["r_peak_samples"], np.int64)
    peaks = peaks[(peaks > 0.1 * fs) & (peaks < len(x) - 0.1 * fs)]
    assert len(info["pac_indices"]) > 0
    assert np.array_equal(_tidy_peaks(x, peaks, fs), peaks)


def test_tidy_peaks_moves_or_drops_p_and_t_wave_detections():
    """A detection on the first beat's T wave moves to its QRS, one on a P wave moves to the QRS after it, and an
    extra T-wave detection 0.55 RR after a beat (later than a double detection) goes."""
    from ecgfeatures.features import _tidy_peaks

    fs = 500.0
    sig, info = synthesize_ecg(["NORM"], fs=fs, duration_s=10.0, rng=4)
    x = sig[:, 1]
    true = np.asarray(info["r_peak_samples"], np.int64)
    inner = true[(true > 0.1 * fs) & (true < len(x) - 0.1 * fs)]
    rr = float(np.median(np.diff(inner)))
    onset = np.asarray(info["qrs_onset_samples"], np.int64)
    p_wave = int(onset[np.searchsorted(true, inner[3])] - 0.08 * fs)  # inside the P wave before beat 3
    moved = inner.copy()
    moved[0] += int(0.25 * fs)  # on the T wave
    moved[3] = p_wave
    out = _tidy_peaks(x, moved, fs)
    assert len(out) == len(inner) and np.max(np.abs(out - inner)) <= int(0.01 * fs)
    extra = np.sort(np.r_[inner, inner[5] + int(0.55 * rr)])
    assert np.array_equal(_tidy_peaks(x, extra, fs), inner)


def test_other_leads_arbitrate_between_detectors():
    """Every third beat of the rhythm lead 16 x larger than the others (big ectopic beats, PTB-XL 00256): the
    energy detector keeps only the big ones and its train looks the more uniform; the other leads' QRS
    complexes decide for the full train."""
    from ecgfeatures.features import _detect_r_peaks, _filter_leads, _spatial_slope, _train_errors

    fs = 100.0
    sig, info = synthesize_ecg(["NORM"], fs=fs, duration_s=10.0, rng=3)
    true = np.asarray(info["r_peak_samples"], np.int64)
    raw = sig[:, 1].copy()
    for k, q in enumerate(true):
        raw[max(0, q - 15) : q + 15] *= 8.0 if k % 3 == 1 else 0.5
    inner = true[(true > 0.1 * fs) & (true < len(raw) - 0.1 * fs)]
    alone, _ = _detect_r_peaks(raw, fs)
    assert len(alone) < 0.5 * len(inner)  # the case under test
    others = np.delete(_filter_leads(sig, fs), 1, axis=1)
    both, _ = _detect_r_peaks(raw, fs, others)
    assert len(both) == len(inner) and np.max(np.abs(both - inner)) <= 2
    spatial = _spatial_slope(others, fs)
    assert _train_errors(true, spatial, fs) == 0.0
    assert _train_errors(inner[::2], spatial, fs) > 0.4  # half the QRS complexes missed
    assert _train_errors(np.sort(np.r_[inner, inner[:-1] + 30]), spatial, fs) > 0.5  # T waves taken for beats
    assert _spatial_slope(np.full((1000, 3), np.nan), fs) is None


@pytest.mark.parametrize("seed", SEEDS)
def test_rr_variability(seed):
    f_af, _ = _feat(["AFIB/AFL"], seed)
    f_n, _ = _feat(["NORM"], seed)
    assert f_af[IDX["rr_cv"]] > 0.15
    assert f_n[IDX["rr_cv"]] < 0.08
    assert f_n[IDX["premature_fraction"]] == 0.0


@pytest.mark.parametrize("seed", SEEDS)
def test_ectopy_tells_pvc_from_pac(seed):
    """PVC: an early beat with a different, wide QRS -> ectopic_wide_fraction; PAC: an early beat with the
    normal QRS -> ectopic_narrow_fraction; sinus rhythm: neither."""
    f_pvc, _ = _feat(["PVC"], seed)
    f_pac, _ = _feat(["PAC"], seed)
    f_n, _ = _feat(["NORM"], seed)
    assert f_pvc[IDX["ectopic_wide_fraction"]] > 0.0
    assert f_pvc[IDX["ectopic_wide_fraction"]] > f_pvc[IDX["ectopic_narrow_fraction"]]
    assert f_pac[IDX["ectopic_narrow_fraction"]] > 0.0
    assert f_pac[IDX["ectopic_wide_fraction"]] == 0.0
    assert f_n[IDX["ectopic_wide_fraction"]] == 0.0 and f_n[IDX["ectopic_narrow_fraction"]] == 0.0


@pytest.mark.parametrize("seed", SEEDS)
def test_atrial_features_tell_af_from_sinus(seed):
    """AF: irregular RR and no repeating P wave -> high af_score, few P waves; sinus: the opposite (also on a
    digitized-looking signal: only the 3x4 windows + the lead II strip, the rest NaN)."""
    sig_af, _ = synthesize_ecg(["AFIB/AFL"], fs=500.0, duration_s=10.0, rng=seed)
    sig_n, _ = synthesize_ecg(["NORM"], fs=500.0, duration_s=10.0, rng=seed)
    for masked in (False, True):
        feats = []
        for sig in (sig_af, sig_n):
            s = sig.copy()
            if masked:
                w = s.shape[0] // 4
                for col in range(4):
                    rows = [j for j in range(3 * col, 3 * col + 3) if j != 1]
                    s[np.r_[0 : col * w, (col + 1) * w : s.shape[0]][:, None], rows] = np.nan
            feats.append(extract_features(s, 500.0))
        f_af, f_n = feats
        assert f_af[IDX["af_score"]] > 0.4 > f_n[IDX["af_score"]]
        assert f_n[IDX["p_wave_corr"]] > 0.8 and f_n[IDX["p_wave_snr"]] > 4.0
        assert f_af[IDX["p_present_fraction"]] < f_n[IDX["p_present_fraction"]]
        assert f_af[IDX["atrial_measured"]] == 1.0


@pytest.mark.parametrize("label,sign", [("TACHY", 1.0), ("BRADY", -1.0)])
def test_rate_scores(label, sign):
    f, info = _feat([label], 0)
    hr = info["heart_rate_bpm"]
    assert f[IDX["tachy_score"]] == pytest.approx(np.clip((hr - 100) / 20, -1, 1), abs=0.1)
    assert f[IDX["brady_score"]] == pytest.approx(np.clip((60 - hr) / 20, -1, 1), abs=0.1)
    assert sign * (f[IDX["tachy_score"]] - f[IDX["brady_score"]]) > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_qrs_width_and_axis(seed):
    f_n, info_n = _feat(["NORM"], seed)
    # find a bundle-branch block (CD may also draw first-degree AV block)
    for s in range(seed * 100, seed * 100 + 50):
        f_cd, info_cd = _feat(["CD"], s)
        if info_cd["cd_type"] in ("RBBB", "LBBB"):
            break
    assert abs(f_n[IDX["qrs_ms"]] - info_n["qrs_ms"]) < 30.0
    assert f_cd[IDX["qrs_ms"]] > f_n[IDX["qrs_ms"]] + 20.0
    for f, info in [(f_n, info_n), (f_cd, info_cd)]:
        diff = (f[IDX["axis_deg"]] - info["axis_deg"] + 180.0) % 360.0 - 180.0
        assert abs(diff) < 30.0
    assert f_n[IDX["intervals_measured"]] > 0.5
    assert abs(f_n[IDX["pr_ms"]] - info_n["pr_ms"]) < 40.0


@pytest.mark.parametrize("seed", SEEDS)
def test_sokolow_lyon(seed):
    f_h, info_h = _feat(["HYP"], seed)
    f_n, _ = _feat(["NORM"], seed)
    assert f_h[IDX["sokolow_lyon_mv"]] > 3.5
    assert f_n[IDX["sokolow_lyon_mv"]] < 3.5
    assert abs(f_h[IDX["sokolow_lyon_mv"]] - info_h["sokolow_lyon_mv"]) < 0.6


def test_st_elevation_in_acute_mi():
    for s in range(40):
        f, info = _feat(["Acute MI"], s)
        if info.get("acute_mi_territory") == "inferior":
            break
    st = [f[IDX[f"st_{ld}_mv"]] for ld in ("II", "III", "aVF")]
    f_n, _ = _feat(["NORM"], 0)
    st_n = [f_n[IDX[f"st_{ld}_mv"]] for ld in ("II", "III", "aVF")]
    assert np.nanmax(st) > np.nanmax(st_n) + 0.05
    assert f[IDX["st_measured"]] == 1.0 and f[IDX["t_measured"]] == 1.0


def _bad_inputs():
    rng = np.random.default_rng(3)
    sig, _ = synthesize_ecg(["NORM"], fs=500.0, duration_s=10.0, rng=1)
    gaps = sig.copy()
    gaps[rng.random(gaps.shape) < 0.05] = np.nan
    gaps[1000:1600, :] = np.nan
    page = np.full_like(sig, np.nan)  # 3x4 page layout: 2.5 s per lead, lead II full length
    for j in range(12):
        k = j // 3
        page[k * 1250 : (k + 1) * 1250, j] = sig[k * 1250 : (k + 1) * 1250, j]
    page[:, 1] = sig[:, 1]
    low, _ = synthesize_ecg(["NORM"], fs=100.0, duration_s=10.0, rng=2)
    return {
        "all_nan": (np.full((5000, 12), np.nan), 500.0),
        "flat": (np.zeros((5000, 12)), 500.0),
        "short_1s": (sig[:500], 500.0),
        "nan_gaps": (gaps, 500.0),
        "page_layout": (page, 500.0),
        "fs_100": (low, 100.0),
        "empty": (np.zeros((0, 12)), 500.0),
        "wrong_shape": (np.zeros(100), 500.0),
        "bad_fs": (sig, float("nan")),
        "inf": (np.full((5000, 12), np.inf), 500.0),
    }


@pytest.mark.parametrize("name", list(_bad_inputs()))
def test_bad_inputs_do_not_raise(name):
    sig, fs = _bad_inputs()[name]
    f = extract_features(sig, fs)
    assert f.shape == (E,) and f.dtype == np.float32
    ind = [i for i, n in enumerate(FEATURE_NAMES) if n.endswith("_measured")]
    assert np.all(np.isfinite(f[ind])) and np.all((f[ind] >= 0) & (f[ind] <= 1))
    x = features_to_model_input(f[None])
    assert x.shape == (1, E) and np.all(np.isfinite(x))
    if name in ("all_nan", "flat", "empty", "wrong_shape", "bad_fs", "inf"):
        assert np.all(f[ind] == 0.0) and nothing_measured(f)
    elif name != "short_1s":
        assert not nothing_measured(f)


def test_degraded_inputs_still_measure():
    bad = _bad_inputs()
    for name in ("nan_gaps", "page_layout", "fs_100"):
        sig, fs = bad[name]
        f = extract_features(sig, fs)
        assert 55.0 < f[IDX["heart_rate_bpm"]] < 100.0, name
        assert f[IDX["voltage_measured"]] == 1.0, name
        assert f[IDX["st_measured"]] > 0.9, name


def test_deterministic():
    sig, _ = synthesize_ecg(["PVC"], fs=500.0, duration_s=10.0, rng=5)
    a = extract_features(sig, 500.0)
    b = extract_features(sig.copy(), 500.0)
    np.testing.assert_array_equal(a, b)


def test_model_input_scaling():
    f = np.full((2, E), np.nan, dtype=np.float32)
    f[0, IDX["heart_rate_bpm"]] = 75.0
    f[0, IDX["qrs_ms"]] = 100.0
    f[0, IDX["rr_mean_s"]] = 0.8
    f[0, IDX["axis_deg"]] = 90.0
    f[0, IDX["sokolow_lyon_mv"]] = 2.5
    f[1, 0] = 1e9
    x = features_to_model_input(f)
    assert x.shape == (2, E) and x.dtype == np.float32
    assert x[0, IDX["heart_rate_bpm"]] == pytest.approx(0.75)
    assert x[0, IDX["qrs_ms"]] == pytest.approx(1.0)
    assert x[0, IDX["rr_mean_s"]] == pytest.approx(8.0)
    assert x[0, IDX["axis_deg"]] == pytest.approx(0.5)
    assert x[0, IDX["sokolow_lyon_mv"]] == pytest.approx(2.5)
    assert x[1, 0] == 10.0 and x[1, 1] == 0.0
    with pytest.raises(ValueError):
        features_to_model_input(np.zeros((2, E + 1)))


def test_speed():
    sig, _ = synthesize_ecg(["NORM"], fs=500.0, duration_s=10.0, rng=0)
    extract_features(sig, 500.0)  # warm-up (lazy neurokit2 import)
    t = time.process_time()  # CPU time of this process: robust to other jobs on a shared machine
    for _ in range(3):
        extract_features(sig, 500.0)
    assert (time.process_time() - t) / 3 < 0.3
