"""Tests of the synthetic 12-lead ECG generator (ecgrender.synth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import signal as sps

from ecgrender import synth
from ecgrender.synth import CLASSES, STANDARD_LEADS, sample_labels, synthesize_ecg

FS = 500.0
L = {name: i for i, name in enumerate(STANDARD_LEADS)}
INDEPENDENT = [L[n] for n in ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")]


# ------------------------------------------------------------------------------------------------
# Independent measurement helpers (do not use the generator's internals)
# ------------------------------------------------------------------------------------------------


def detect_r_peaks(sig: np.ndarray, fs: float, leads: list[int] | None = None) -> np.ndarray:
    """Crude QRS detector: 5-25 Hz band-pass energy summed over ``leads``, scipy find_peaks."""
    leads = [L["II"]] if leads is None else leads
    b, a = sps.butter(2, [5.0 / (fs / 2), min(25.0, 0.45 * fs) / (fs / 2)], btype="band")
    x = sps.filtfilt(b, a, sig[:, leads], axis=0)
    energy = np.sum(x**2, axis=1)
    energy = np.convolve(energy, np.ones(int(0.04 * fs)) / int(0.04 * fs), mode="same")
    peaks, _ = sps.find_peaks(energy, height=0.25 * np.percentile(energy, 99.5), distance=int(0.25 * fs))
    return peaks


def crude_qrs_width_ms(sig: np.ndarray, fs: float, r: int) -> float:
    """Width (ms) of the region around sample ``r`` where the summed absolute slope of the independent
    leads exceeds 8 % of its local maximum, gaps < 20 ms bridged (noise-free signals)."""
    a, b = max(0, r - int(0.15 * fs)), min(len(sig), r + int(0.15 * fs))
    slope = np.sum(np.abs(np.diff(sig[a:b, INDEPENDENT], axis=0)), axis=1) * fs
    thr = 0.08 * slope.max()
    idx = np.nonzero(slope > thr)[0]
    # Runs of supra-threshold slope, merged across gaps < 20 ms (wave peaks, notches have zero slope).
    runs = np.split(idx, np.nonzero(np.diff(idx) > int(0.02 * fs))[0] + 1)
    c = int(np.argmax(slope))
    run = next(r for r in runs if r[0] <= c <= r[-1])
    return (run[-1] - run[0] + 1) / fs * 1000.0


def seed_where(labels: list[str], pred, start: int = 0, tries: int = 200) -> int:
    for s in range(start, start + tries):
        _, info = synthesize_ecg(labels, fs=FS, rng=s, noise=False, duration_s=2.0)
        if pred(info):
            return s
    raise AssertionError(f"no seed found for {labels}")


# ------------------------------------------------------------------------------------------------
# Structure, leads, determinism
# ------------------------------------------------------------------------------------------------


def test_constants() -> None:
    assert CLASSES == ["NORM", "Acute MI", "Old MI", "STTC", "CD", "HYP", "PAC", "PVC", "AFIB/AFL", "TACHY", "BRADY"]
    assert STANDARD_LEADS == ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


@pytest.mark.parametrize(
    "labels", [["NORM"], ["AFIB/AFL", "CD"], ["PVC", "HYP"], ["Acute MI", "STTC"], ["Old MI", "PAC", "TACHY"]]
)
@pytest.mark.parametrize("noise", [True, False])
def test_lead_consistency(labels: list[str], noise: bool) -> None:
    sig, _ = synthesize_ecg(labels, fs=FS, rng=3, noise=noise)
    i, ii, iii, avr, avl, avf = (sig[:, k] for k in range(6))
    assert np.max(np.abs(iii - (ii - i))) < 1e-9
    assert np.max(np.abs(avr + avl + avf)) < 1e-9
    assert np.max(np.abs(avr + (i + ii) / 2)) < 1e-9
    assert np.max(np.abs(avl - (i - ii / 2))) < 1e-9
    assert np.max(np.abs(avf - (ii - i / 2))) < 1e-9
    # The leads carry a real signal, not zeros.
    assert np.ptp(ii) > 0.3 and np.ptp(sig[:, L["V2"]]) > 0.3


@pytest.mark.parametrize("fs", [100.0, 250.0, 500.0, 1000.0])
@pytest.mark.parametrize("duration", [5.0, 10.0, 12.0])
def test_shapes(fs: float, duration: float) -> None:
    sig, info = synthesize_ecg(["NORM"], fs=fs, duration_s=duration, rng=1)
    assert sig.shape == (round(fs * duration), 12)
    assert sig.dtype == np.float64
    assert np.all(np.isfinite(sig))
    r = np.asarray(info["r_peak_samples"])
    assert len(r) >= int(duration * 60 / 100) - 1
    assert r.min() >= 0 and r.max() < sig.shape[0]
    assert np.all(np.diff(r) > 0)
    assert len(info["rr_s"]) == len(r) - 1
    assert len(info["beat_types"]) == len(r) == len(info["qrs_onset_samples"])


def test_determinism() -> None:
    a, ia = synthesize_ecg(["AFIB/AFL", "PVC"], rng=42)
    b, ib = synthesize_ecg(["AFIB/AFL", "PVC"], rng=np.random.default_rng(42))
    c, _ = synthesize_ecg(["AFIB/AFL", "PVC"], rng=43)
    assert np.array_equal(a, b)
    assert ia["r_peak_samples"] == ib["r_peak_samples"]
    assert a.shape == c.shape and not np.allclose(a, c)
    d, _ = synthesize_ecg(["NORM"], rng=7)
    e, _ = synthesize_ecg(["NORM"], rng=7)
    assert np.array_equal(d, e)


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        synthesize_ecg(["NORM", "CD"])
    with pytest.raises(ValueError):
        synthesize_ecg(["TACHY", "BRADY"])
    with pytest.raises(ValueError):
        synthesize_ecg(["Wolff-Parkinson-White"])
    with pytest.raises(ValueError):
        synthesize_ecg(["NORM"], fs=10.0)
    with pytest.raises(ValueError):
        synthesize_ecg(["NORM"], duration_s=0.0)
    # Case-insensitive names, duplicates, canonical order.
    _, info = synthesize_ecg(["cd", "afib/afl", "CD"], rng=0, duration_s=2.0)
    assert info["labels"] == ["CD", "AFIB/AFL"]


# ------------------------------------------------------------------------------------------------
# Rate and rhythm
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("label,lo,hi", [("NORM", 60.0, 100.0), ("TACHY", 100.0, 160.0), ("BRADY", 35.0, 60.0)])
def test_heart_rate(label: str, lo: float, hi: float) -> None:
    for seed in range(6):
        sig, info = synthesize_ecg([label], fs=FS, rng=seed)
        assert lo < info["heart_rate_bpm"] < hi, info["heart_rate_bpm"]
        rr = np.diff(info["r_peak_samples"]) / FS
        assert lo < 60.0 / rr.mean() < hi
        peaks = detect_r_peaks(sig, FS)
        hr = 60.0 / (np.mean(np.diff(peaks)) / FS)
        assert lo < hr < hi, (seed, hr)
        assert abs(len(peaks) - len(info["r_peak_samples"])) <= 1
        # Detected peaks sit on the annotated R peaks.
        ann = np.asarray(info["r_peak_samples"])
        d = np.abs(peaks[:, None] - ann[None, :]).min(axis=1)
        assert np.median(d) <= 0.03 * FS


def test_r_amplitude_in_lead_ii() -> None:
    for seed in range(8):
        sig, info = synthesize_ecg(["NORM"], fs=FS, rng=seed, noise=False)
        r = np.asarray(info["r_peak_samples"])
        amp = np.median([sig[k - 25 : k + 25, L["II"]].max() for k in r[1:-1]])
        assert 0.4 <= amp <= 1.7, amp
        assert 120.0 <= info["pr_ms"] <= 200.0
        assert 80.0 <= info["qrs_ms"] <= 100.0
        assert -30.0 <= info["axis_deg"] <= 90.0


def test_rr_variability_afib_vs_norm() -> None:
    seen = set()
    for seed in range(12):
        sig, info = synthesize_ecg(["AFIB/AFL"], fs=FS, rng=seed)
        seen.add(info["rhythm"])
        rr = np.asarray(info["rr_s"])
        assert rr.std() / rr.mean() > 0.15, (seed, info["rhythm"])
        assert info["pr_ms"] is None
        peaks = detect_r_peaks(sig, FS, INDEPENDENT)
        drr = np.diff(peaks) / FS
        assert drr.std() / drr.mean() > 0.15, seed
    assert seen == {"afib", "aflutter"}
    for seed in range(6):
        sig, info = synthesize_ecg(["NORM"], fs=FS, rng=seed)
        rr = np.asarray(info["rr_s"])
        assert rr.std() / rr.mean() < 0.08
        drr = np.diff(detect_r_peaks(sig, FS, INDEPENDENT)) / FS
        assert drr.std() / drr.mean() < 0.08


def test_afib_has_fibrillatory_waves_and_no_p() -> None:
    s = seed_where(["AFIB/AFL"], lambda i: i["rhythm"] == "afib")
    sig, info = synthesize_ecg(["AFIB/AFL"], fs=FS, rng=s, noise=False)
    f0 = info["f_wave_hz"]
    assert 4.0 <= f0 <= 9.0
    # Spectrum of V1 between beats: a peak in 4-9 Hz.
    v1 = sig[:, L["V1"]] - sig[:, L["V1"]].mean()
    spec = np.abs(np.fft.rfft(v1 * np.hanning(len(v1))))
    f = np.fft.rfftfreq(len(v1), 1 / FS)
    band = (f >= 4.0) & (f <= 9.0)
    assert spec[band].max() > 2.0 * np.median(spec[(f > 1.0) & (f < 40.0)])


def test_pvc_premature_wide_compensatory() -> None:
    for seed in range(4):
        sig, info = synthesize_ecg(["PVC"], fs=FS, rng=seed, noise=False)
        pv = info["pvc_indices"]
        assert pv, "no PVC in the record"
        assert info["pvc_qrs_ms"] > 120.0
        assert info["qrs_ms"] < 110.0
        r = np.asarray(info["r_peak_samples"]) / FS
        types = info["beat_types"]
        normal_rr = np.median([r[k + 1] - r[k] for k in range(len(r) - 1) if types[k] == types[k + 1] == "N"])
        for k in pv:
            if 0 < k < len(r) - 1 and types[k - 1] == "N" and types[k + 1] == "N":
                assert r[k] - r[k - 1] < 0.8 * normal_rr  # premature
                assert r[k + 1] - r[k - 1] == pytest.approx(2 * normal_rr, rel=0.12)  # compensatory pause
            if 0 < k < len(r) - 1:
                w = crude_qrs_width_ms(sig, FS, info["r_peak_samples"][k])
                assert w > 120.0, (seed, w)


def test_pac_premature_narrow_noncompensatory() -> None:
    for seed in range(4):
        sig, info = synthesize_ecg(["PAC"], fs=FS, rng=seed, noise=False)
        pa = info["pac_indices"]
        assert pa
        r = np.asarray(info["r_peak_samples"]) / FS
        rr = np.diff(r)
        normal_rr = np.median(rr)
        for k in pa:
            if 0 < k < len(r) - 1:
                assert r[k] - r[k - 1] < 0.85 * normal_rr
                assert r[k + 1] - r[k - 1] < 1.95 * normal_rr  # sinus node reset
                assert crude_qrs_width_ms(sig, FS, info["r_peak_samples"][k]) < 110.0


# ------------------------------------------------------------------------------------------------
# Morphology
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cd_type", ["RBBB", "LBBB"])
def test_bundle_branch_block_is_wide(cd_type: str) -> None:
    s = seed_where(["CD"], lambda i: i["cd_type"] == cd_type)
    sig, info = synthesize_ecg(["CD"], fs=FS, rng=s, noise=False)
    assert info["qrs_ms"] > 120.0
    widths = [crude_qrs_width_ms(sig, FS, r) for r in info["r_peak_samples"][1:-1]]
    assert np.median(widths) > 120.0, widths
    if cd_type == "RBBB":
        # rSR': V1 has a late positive wave after a negative one.
        r = info["r_peak_samples"][2]
        on = info["qrs_onset_samples"][2]
        v1 = sig[on : on + int(info["qrs_ms"] / 1000 * FS) + 5, L["V1"]]
        k_min = int(np.argmin(v1))
        assert v1[k_min] < -0.1 and v1[k_min:].max() > 0.3
        assert r > on


def test_norm_is_narrow() -> None:
    for seed in range(5):
        sig, info = synthesize_ecg(["NORM"], fs=FS, rng=seed, noise=False)
        assert info["qrs_ms"] < 110.0
        widths = [crude_qrs_width_ms(sig, FS, r) for r in info["r_peak_samples"][1:-1]]
        assert np.median(widths) < 110.0, widths


def test_first_degree_av_block() -> None:
    s = seed_where(["CD"], lambda i: i["cd_type"] == "AVB1")
    _, info = synthesize_ecg(["CD"], fs=FS, rng=s)
    assert info["pr_ms"] > 200.0 and info["qrs_ms"] < 110.0


def _sokolow(sig: np.ndarray, info: dict) -> float:
    vals = []
    for k, r in enumerate(info["r_peak_samples"]):
        if info["beat_types"][k] != "N" or r < 50 or r + 60 > len(sig):
            continue
        s_v1 = -sig[r - 50 : r + 50, L["V1"]].min()
        r_v5 = max(sig[r - 50 : r + 50, L["V5"]].max(), sig[r - 50 : r + 50, L["V6"]].max())
        vals.append(s_v1 + r_v5)
    return float(np.median(vals))


def test_hypertrophy_voltage() -> None:
    for seed in range(6):
        sig, info = synthesize_ecg(["HYP"], fs=FS, rng=seed, noise=False)
        assert _sokolow(sig, info) > 3.5
        assert info["sokolow_lyon_mv"] > 3.5
        sig, info = synthesize_ecg(["NORM"], fs=FS, rng=seed, noise=False)
        assert _sokolow(sig, info) < 3.5


def _st60(sig: np.ndarray, info: dict, k: int) -> np.ndarray:
    """ST level 60 ms after the J point minus the PR-segment level, all 12 leads (mV)."""
    on = info["qrs_onset_samples"][k]
    j = on + int(round(info["qrs_ms"] / 1000 * FS))
    return sig[j + int(0.06 * FS)] - sig[on - int(0.01 * FS)]


def test_acute_mi_st_elevation_with_reciprocal_depression() -> None:
    for seed in range(6):
        sig, info = synthesize_ecg(["Acute MI"], fs=FS, rng=seed, noise=False)
        terr = info["acute_mi_territory"]
        st = _st60(sig, info, 2)
        idx = [L[n] for n in synth._TERRITORY_LEADS[terr]]
        assert st[idx].max() >= 0.1, (terr, st)
        assert st.min() <= -0.05  # reciprocal depression somewhere


def test_sttc_st_depression_and_t_inversion() -> None:
    for seed in range(4):
        sig, info = synthesize_ecg(["STTC"], fs=FS, rng=seed, noise=False)
        st = _st60(sig, info, 2)
        assert -0.25 <= st.min() <= -0.08
        base, _ = synthesize_ecg(["NORM"], fs=FS, rng=seed, noise=False)
        # T wave in V5 (largest deflection 150-400 ms after the R peak) is inverted.
        r = info["r_peak_samples"][2]
        tw = sig[r + int(0.15 * FS) : r + int(0.4 * FS), L["V5"]]
        assert tw[np.argmax(np.abs(tw))] < 0


def test_old_mi_pathological_q() -> None:
    for seed in range(6):
        sig, info = synthesize_ecg(["Old MI"], fs=FS, rng=seed, noise=False)
        terr = info["old_mi_territory"]
        on = info["qrs_onset_samples"][2]
        q_leads = 0
        for name in synth._TERRITORY_LEADS[terr]:
            x = sig[on - 2 : on + int(0.12 * FS), L[name]] - sig[on - 5, L[name]]
            neg = np.nonzero(x < -0.02)[0]
            if len(neg) == 0 or neg[0] > int(0.015 * FS):
                continue  # first deflection is not negative
            # Duration of the initial negative deflection and its depth relative to the R wave.
            end = neg[0]
            while end + 1 < len(x) and x[end + 1] < 0:
                end += 1
            width_ms = (end - neg[0] + 1) / FS * 1000
            depth = -x[: end + 1].min()
            r_amp = max(x.max(), 1e-6)
            if width_ms >= 40 and depth > 0.25 * r_amp:
                q_leads += 1
        assert q_leads >= 2, (seed, terr)


def test_combined_labels() -> None:
    sig, info = synthesize_ecg(["AFIB/AFL", "CD", "TACHY"], fs=FS, rng=5)
    assert info["heart_rate_bpm"] > 100 and info["pr_ms"] is None
    assert info["labels"] == ["CD", "AFIB/AFL", "TACHY"]
    assert np.all(np.isfinite(sig))


# ------------------------------------------------------------------------------------------------
# Labels and records
# ------------------------------------------------------------------------------------------------


def test_sample_labels() -> None:
    rng = np.random.default_rng(0)
    draws = [sample_labels(rng) for _ in range(3000)]
    norm = sum(d == ["NORM"] for d in draws) / len(draws)
    assert 0.30 <= norm <= 0.40
    seen: set[str] = set()
    for d in draws:
        assert d and all(c in CLASSES for c in d)
        assert len(set(d)) == len(d)
        assert d == [c for c in CLASSES if c in d]
        assert "NORM" not in d or d == ["NORM"]
        assert not {"TACHY", "BRADY"} <= set(d)
        seen |= set(d)
    assert seen == set(CLASSES)
    assert sum(len(d) > 1 for d in draws) > 300
    assert sample_labels(3) == sample_labels(3)


def test_cli_writes_wfdb_records(tmp_path: Path) -> None:
    wfdb = pytest.importorskip("wfdb")
    from ecgrender.__main__ import main as ecgrender_main

    out = tmp_path / "synth"
    rc = ecgrender_main(["synth", "-o", str(out), "-n", "3", "--fs", "250", "--seconds", "5", "--seed", "7"])
    assert rc == 0
    heas = sorted(out.glob("*.hea"))
    assert len(heas) == 3 and len(list(out.glob("*.dat"))) == 3
    for k, hea in enumerate(heas):
        name = hea.with_suffix("")
        sig, fields = wfdb.rdsamp(str(name))
        assert sig.shape == (1250, 12)
        assert fields["fs"] == 250
        assert fields["sig_name"] == STANDARD_LEADS
        assert all(u == "mV" for u in fields["units"])
        hdr = wfdb.rdheader(str(name))
        assert hdr.fmt == ["16"] * 12 and list(hdr.adc_gain) == [1000.0] * 12
        comments = {c.split(":", 1)[0].strip(): c.split(":", 1)[1].strip() for c in hdr.comments}
        labels = [s.strip() for s in comments["Labels"].split(",")]
        assert labels and all(lab in CLASSES for lab in labels)
        assert 18 <= int(comments["Age"]) <= 95
        assert comments["Sex"] in ("Male", "Female")
        # The stored signal is the generator's output (quantised to 1 uV).
        rng = np.random.default_rng(np.random.SeedSequence([7, k]))
        assert sample_labels(rng) == labels
        ref, _ = synthesize_ecg(labels, fs=250.0, duration_s=5.0, rng=rng)
        assert np.max(np.abs(sig - ref)) < 1e-3
        text = hea.read_text()
        assert "# Labels: " in text and "# Age: " in text and "# Sex: " in text


def test_write_records_prefix_stable(tmp_path: Path) -> None:
    pytest.importorskip("wfdb")
    a = synth.write_synthetic_records(tmp_path / "a", 2, fs=100.0, duration_s=3.0, seed=1)
    b = synth.write_synthetic_records(tmp_path / "b", 3, fs=100.0, duration_s=3.0, seed=1)
    assert b[:2] == a
    assert (tmp_path / "a" / f"{a[1]}.dat").read_bytes() == (tmp_path / "b" / f"{b[1]}.dat").read_bytes()
    with pytest.raises(ValueError):
        synth.write_synthetic_records(tmp_path / "c", -1)
