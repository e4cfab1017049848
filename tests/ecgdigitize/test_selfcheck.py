"""Physical self-check of digitized pages (ecgdigitize.selfcheck) on synthetic vector-cardiograms."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ecgdigitize.selfcheck import check_signal

NAMES = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
FS = 250.0
DUR = 10.0
#: 3x4 layout: column of each short lead (2.5 s each); II is the full-length rhythm strip
COLUMN = {"I": 0, "III": 0, "aVR": 1, "aVL": 1, "aVF": 1, "V1": 2, "V2": 2, "V3": 2, "V4": 3, "V5": 3, "V6": 3}
ROWS = [["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"], ["III", "aVF", "V3", "V6"]]


def _waves(t: np.ndarray, beats: np.ndarray, parts: list[tuple[float, float, float]]) -> np.ndarray:
    """Sum over beats of Gaussian waves (offset s, width s, amplitude mV)."""
    y = np.zeros_like(t)
    for b in beats:
        for off, width, amp in parts:
            y += amp * np.exp(-0.5 * ((t - b - off) / width) ** 2)
    return y


def synthetic_ecg(hr: float = 72.0) -> np.ndarray:
    """(2500, 12) true 12-lead ECG in mV from a 3-D heart vector: I and II are projections of (Hx, Hy), the other
    limb leads follow from the standard formulas, the V leads are other projections."""
    t = np.arange(int(DUR * FS)) / FS
    rr = 60.0 / hr
    beats = 0.35 + rr * np.arange(int(DUR / rr) + 1) + 0.03 * np.sin(np.arange(int(DUR / rr) + 1))
    # frontal x: rS-like QRS and a tall T; frontal y: qR-like QRS, later flat T; z (back-to-front): rS in V1
    hx = _waves(t, beats, [(-0.17, 0.02, 0.1), (-0.005, 0.009, 0.45), (0.035, 0.012, -0.6), (0.22, 0.045, 0.35)])
    hy = _waves(t, beats, [(-0.14, 0.03, 0.12), (-0.03, 0.008, -0.2), (0.01, 0.012, 1.3), (0.32, 0.07, 0.12)])
    hz = _waves(t, beats, [(-0.15, 0.025, 0.05), (-0.01, 0.01, 0.5), (0.025, 0.012, -1.2), (0.25, 0.06, -0.15)])
    lead_i = hx
    lead_ii = 0.5 * hx + np.sqrt(3) / 2 * hy
    limb = [lead_i, lead_ii, lead_ii - lead_i, -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2, lead_ii - lead_i / 2]
    prec = [
        0.1 * hx + 1.0 * hz,
        0.3 * hx + 0.9 * hz,
        0.6 * hx - 0.2 * hy + 0.5 * hz,
        0.9 * hx - 0.2 * hy + 0.1 * hz,
        1.0 * hx - 0.1 * hy - 0.2 * hz,
        0.9 * hx - 0.3 * hz,
    ]
    return np.stack(limb + prec, axis=1)


def page(true: np.ndarray, seed: int = 0, noise: float = 0.02) -> np.ndarray:
    """Digitized 3x4+1 page: each lead only in its 2.5 s column (II the full strip), with a per-lead offset and
    Gaussian noise."""
    rng = np.random.default_rng(seed)
    n = true.shape[0]
    col = n // 4
    out = np.full_like(true, np.nan)
    for j, name in enumerate(NAMES):
        sl = slice(None) if name == "II" else slice(COLUMN[name] * col, (COLUMN[name] + 1) * col)
        seg = true[sl, j]
        out[sl, j] = seg + rng.normal(0.0, noise, seg.size) + rng.normal(0.0, 0.5)
    return out


def stretched(true: np.ndarray, leads: list[str], k: float) -> np.ndarray:
    """``true`` with each lead of ``leads`` read k times too slowly within its column (wrong px/s)."""
    out = true.copy()
    n = true.shape[0]
    col = n // 4
    t = np.arange(n, dtype=float)
    for name in leads:
        j = NAMES.index(name)
        a = COLUMN[name] * col
        tt = t[a : a + col]
        out[a : a + col, j] = np.interp(a + (tt - a) / k, t, true[:, j])
    return out


def by_name(result) -> dict:
    return {c.name: c for c in result.checks}


@pytest.fixture(scope="module")
def true_ecg() -> np.ndarray:
    return synthetic_ecg()


def test_synthetic_leads_obey_the_laws(true_ecg):
    i, ii, iii, avr, avl, avf = (true_ecg[:, k] for k in range(6))
    np.testing.assert_allclose(ii, i + iii, atol=1e-12)
    np.testing.assert_allclose(avr + avl + avf, 0.0, atol=1e-12)
    np.testing.assert_allclose(ii, 2.0 / 3.0 * (avf - avr), atol=1e-12)
    np.testing.assert_allclose(i, 2.0 / 3.0 * (avl - avr), atol=1e-12)


def test_true_page_is_ok(true_ecg):
    res = check_signal(page(true_ecg), NAMES, FS)
    checks = by_name(res)
    assert res.status == "ok", res.reasons
    assert res.reasons == []
    for name in ("einthoven", "goldberger", "goldberger:II", "qrs_timing", "rr_agreement", "rate", "pulse"):
        assert checks[name].passed is True, checks[name]
    assert checks["einthoven"].value < 0.2
    assert 65 < checks["rate"].value < 80
    assert res.score > 0.8


def test_names_case_insensitive_any_order(true_ecg):
    sig = page(true_ecg)
    order = [6, 0, 3, 11, 1, 7, 4, 2, 10, 5, 8, 9]
    res = check_signal(sig[:, order], [NAMES[k].lower() for k in order], FS)
    assert res.status == "ok", res.reasons
    assert "goldberger:II" in by_name(res)


@pytest.mark.parametrize("a,b,law", [("II", "III", "einthoven"), ("aVL", "aVF", "goldberger:II")])
def test_swapped_leads_fail(true_ecg, a, b, law):
    true = true_ecg.copy()
    ja, jb = NAMES.index(a), NAMES.index(b)
    true[:, [ja, jb]] = true[:, [jb, ja]]
    res = check_signal(page(true), NAMES, FS)
    assert res.status in ("suspect", "failed")
    assert by_name(res)[law].passed is False
    assert any(r.startswith(law) for r in res.reasons)
    assert res.score < check_signal(page(true_ecg), NAMES, FS).score


def test_row_copied_onto_another_fails(true_ecg):
    true = true_ecg.copy()
    for dst, src in zip(ROWS[0], ROWS[2]):  # row 0 shows row 2's traces
        true[:, NAMES.index(dst)] = true[:, NAMES.index(src)]
    res = check_signal(page(true), NAMES, FS)
    assert res.status in ("suspect", "failed")
    assert by_name(res)["goldberger"].passed is False and by_name(res)["einthoven"].passed is False


@pytest.mark.parametrize("lead,law", [("I", "einthoven"), ("aVR", "goldberger"), ("II", "einthoven")])
def test_sign_flip_fails(true_ecg, lead, law):
    true = true_ecg.copy()
    true[:, NAMES.index(lead)] *= -1
    res = check_signal(page(true), NAMES, FS)
    assert res.status in ("suspect", "failed")
    assert by_name(res)[law].passed is False


def test_precordial_sign_flip_is_suspect(true_ecg):
    true = true_ecg.copy()
    true[:, NAMES.index("V5")] *= -1
    res = check_signal(page(true), NAMES, FS)
    assert res.status == "suspect"
    assert by_name(res)["precordial"].passed is False


def test_one_anticorrelated_precordial_pair_is_the_transition(true_ecg):
    """V4 of opposite polarity to V5 and V6 (a late R/S transition, as on a real scan with V4/V5 at -0.58): one
    adjacent pair below the limit is allowed, and the page is ok; V5 upside down leaves two pairs below it."""
    true = true_ecg.copy()
    true[:, NAMES.index("V4")] *= -1
    res = check_signal(page(true), NAMES, FS)
    c = by_name(res)["precordial"]
    assert res.status == "ok" and c.passed
    assert "V4/V5" in c.detail and "transition" in c.detail


def test_stretched_precordial_column_fails(true_ecg):
    # V1-V3 read 1.4x too slowly: no law covers them, the QRS timing against the rhythm strip II does
    res = check_signal(page(stretched(true_ecg, ["V1", "V2", "V3"], 1.4)), NAMES, FS)
    checks = by_name(res)
    assert res.status in ("suspect", "failed")
    assert checks["qrs_timing"].passed is False or checks["rr_agreement"].passed is False
    assert checks["einthoven"].passed and checks["goldberger"].passed


def test_stretched_row_fails(true_ecg):
    res = check_signal(page(stretched(true_ecg, ROWS[0], 1.25)), NAMES, FS)  # I, aVR, V1, V4
    checks = by_name(res)
    assert res.status == "failed"
    assert checks["einthoven"].passed is False and checks["goldberger"].passed is False
    assert checks["rr_agreement"].passed is False
    assert "1.25" in checks["rr_agreement"].detail or checks["rr_agreement"].value > 0.15


def test_row_amplitude_doubled_fails(true_ecg):
    true = true_ecg.copy()
    for name in ROWS[0]:
        true[:, NAMES.index(name)] *= 2.0
    res = check_signal(page(true), NAMES, FS)
    assert res.status in ("suspect", "failed")
    assert by_name(res)["goldberger"].passed is False


def test_calibration_pulse_is_reported(true_ecg):
    sig = page(true_ecg)
    j = NAMES.index("V1")
    start = 2 * int(2.5 * FS)  # V1's column
    base = np.median(sig[start : start + int(2.5 * FS), j])
    sig[start + 5 : start + 5 + int(0.2 * FS), j] = base + 1.0 + np.random.default_rng(3).normal(0, 0.02, 50)
    res = check_signal(sig, NAMES, FS)
    pulse = by_name(res)["pulse"]
    assert res.status in ("suspect", "failed")
    assert pulse.passed is False
    assert "V1" in pulse.detail and 0.8 < pulse.value < 1.2
    assert any("pulse" in r for r in res.reasons)


def test_flat_lead_is_reported(true_ecg):
    sig = page(true_ecg)
    j = NAMES.index("V2")
    sig[np.isfinite(sig[:, j]), j] = 0.3  # a grid line traced as V2
    res = check_signal(sig, NAMES, FS)
    assert res.status in ("suspect", "failed")
    assert by_name(res)["flat"].passed is False


def test_absurd_amplitude_fails(true_ecg):
    res = check_signal(page(true_ecg * 12.0), NAMES, FS)
    assert res.status == "failed"
    assert by_name(res)["amplitude"].passed is False


def test_all_nan_is_failed():
    res = check_signal(np.full((2500, 12), np.nan), NAMES, FS)
    assert res.status == "failed"
    assert res.score == 0.0
    assert res.reasons
    json.dumps(res.to_dict(), allow_nan=False)


@pytest.mark.parametrize("with_limb_columns", [False, True])
def test_only_precordial_leads_is_suspect(true_ecg, with_limb_columns):
    sig = page(true_ecg)
    if with_limb_columns:
        sig[:, :6] = np.nan
        res = check_signal(sig, NAMES, FS)
    else:
        res = check_signal(sig[:, 6:], NAMES[6:], FS)
    assert res.status == "suspect"
    assert any("could not be verified" in r for r in res.reasons)
    assert not any(c.name.startswith(("einthoven", "goldberger")) for c in res.checks)
    json.dumps(res.to_dict(), allow_nan=False)


def test_partial_and_short_inputs_never_raise(true_ecg):
    sig = page(true_ecg)
    for cols in ([1], [0, 1], [0, 2, 6]):
        res = check_signal(sig[:, cols], [NAMES[c] for c in cols], FS)
        assert res.status in ("ok", "suspect", "failed")
    res = check_signal(sig[:100], NAMES, FS)  # 0.4 s
    assert res.status in ("suspect", "failed")
    res = check_signal(sig[:, 1], ["II"], FS)  # 1-D
    assert res.status == "suspect"
    json.dumps(res.to_dict(), allow_nan=False)


def test_rhythm_strip_vs_segment(true_ecg):
    short = page(true_ecg)
    short[int(2.5 * FS) :, 1] = np.nan  # II: the short segment only
    strip = page(true_ecg, seed=5)[:, 1]  # the rhythm strip, traced separately
    res = check_signal(short, NAMES, FS, rhythm={"ii": strip})
    checks = by_name(res)
    assert checks["rhythm_vs_segment:II"].passed is True
    assert checks["rhythm_amplitude:II"].passed is True
    # the segment traced from the wrong row (I's)
    wrong = short.copy()
    wrong[: int(2.5 * FS), 1] = page(true_ecg, seed=2)[: int(2.5 * FS), 0]
    res = check_signal(wrong, NAMES, FS, rhythm={"II": strip})
    assert by_name(res)["rhythm_vs_segment:II"].passed is False
    assert res.status in ("suspect", "failed")
    # the segment at twice the amplitude
    double = short.copy()
    double[: int(2.5 * FS), 1] *= 2.0
    res = check_signal(double, NAMES, FS, rhythm={"II": strip})
    assert by_name(res)["rhythm_amplitude:II"].passed is False


def test_to_dict_is_json_ready(true_ecg):
    d = check_signal(page(true_ecg), NAMES, FS).to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text)["status"] == "ok"
    assert {"name", "value", "limit", "passed", "detail"} <= set(d["checks"][0])


SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "ptbxl"


@pytest.mark.skipif(not (SHARED / "records100").is_dir(), reason="PTB-XL sample not present")
def test_true_ptbxl_records_pass():
    wfdb = pytest.importorskip("wfdb")
    heads = sorted((SHARED / "records100").glob("*/*.hea"))[:4]
    assert heads
    for k, head in enumerate(heads):
        rec = wfdb.rdrecord(str(head.with_suffix("")))
        upper = [s.upper() for s in rec.sig_name]
        true = rec.p_signal[:, [upper.index(n.upper()) for n in NAMES]]
        n = true.shape[0]
        col = n // 4
        rng = np.random.default_rng(k)
        sig = np.full_like(true, np.nan)
        for j, name in enumerate(NAMES):
            sl = slice(None) if name == "II" else slice(COLUMN[name] * col, (COLUMN[name] + 1) * col)
            sig[sl, j] = true[sl, j] + rng.normal(0, 0.03, true[sl, j].size) + rng.normal(0, 0.5)
        res = check_signal(sig, rec.sig_name, rec.fs)
        assert res.status == "ok", (head.name, res.reasons)


def test_mode_of_a_signal_spanning_few_bins():
    """Levels spread over fewer histogram bins than the smoothing kernel is long (a flat, stepped trace)."""
    from ecgdigitize.selfcheck import _mode

    x = np.r_[np.zeros(50), np.full(10, 0.05)]
    assert _mode(x) == pytest.approx(0.0, abs=0.02)
    assert _mode(np.r_[np.full(5, 0.1), np.full(40, 0.14)]) == pytest.approx(0.14, abs=0.02)


def bigeminy_ecg() -> np.ndarray:
    """(2500, 12) true ECG in mV whose limb leads see different beats: I only the sinus beats, III only the ectopic
    ones 0.55 s later (II = I + III sees both), the other limb leads by the standard formulas, the V leads mostly
    II (both beats)."""
    t = np.arange(int(DUR * FS)) / FS
    sinus = 0.4 + 1.2 * np.arange(int(DUR / 1.2) + 1)
    ectopic = sinus + 0.55
    lead_i = _waves(t, sinus, [(-0.15, 0.025, 0.1), (0.0, 0.01, 0.9), (0.25, 0.05, 0.25)])
    lead_iii = _waves(t, ectopic, [(0.0, 0.03, 1.2), (0.3, 0.06, -0.3)])
    lead_ii = lead_i + lead_iii
    limb = [lead_i, lead_ii, lead_iii, -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2, lead_ii - lead_i / 2]
    prec = [k * lead_ii + 0.1 * j * lead_i for j, k in enumerate((0.3, 0.5, 0.7, 0.8, 1.0, 0.9))]
    return np.stack(limb + prec, axis=1)


def test_bigeminy_leads_seeing_different_beats_are_aligned_by_the_laws():
    """Bigeminy: I and III detect different beats (0.55 s apart), but Einthoven holds, so their alignment is
    confirmed and their detected QRS times are not compared: the page is ok. Shifted by 60 ms, III breaks the law."""
    true = bigeminy_ecg()
    res = check_signal(page(true), NAMES, FS)
    checks = by_name(res)
    assert checks["einthoven"].passed and checks["einthoven"].value < 0.1
    assert checks["qrs_timing"].passed is not False, checks["qrs_timing"]
    assert res.status == "ok", res.reasons
    shifted = true.copy()
    shifted[:, 2] = np.roll(true[:, 2], int(round(0.06 * FS)))
    res = check_signal(page(shifted), NAMES, FS)
    assert by_name(res)["einthoven"].passed is False
    assert res.status != "ok"


def test_a_lead_without_samples_is_the_one_named():
    """A lead left without samples fails the coverage check under its own name; the others' coverage, which passes,
    is not named as if it had failed (the detail used to read "lowest coverage 1.00 (I, limit 0.8); no samples in
    V4", and the Dx trust's fallback for reports without a lead list then blamed I as well)."""
    from ecgfeatures.trust import untrusted_leads

    sig = page(synthetic_ecg())
    sig[:, NAMES.index("V4")] = np.nan
    cov = by_name(check_signal(sig, NAMES, FS))["coverage"]
    assert cov.passed is False and list(cov.leads) == ["V4"]
    assert cov.detail == "no samples in V4"
    as_text = {"status": "suspect", "checks": [{"name": "coverage", "passed": False, "detail": cov.detail}]}
    assert untrusted_leads(as_text) == {"V4"}
