"""Synthetic, labelled 12-lead ECGs from a cardiac-dipole (vectorcardiogram) model.

Each heartbeat is a set of dipole components: 3-D vectors (mV) with asymmetric Gaussian time courses
(P, QRS, T waves) and smooth plateaus (ST-segment injury currents), placed on a beat timeline that a
rhythm model (sinus with respiratory variability, premature beats, atrial fibrillation or flutter)
produces.  The dipole is projected onto lead vectors: leads I and II from the frontal plane, the
precordial leads V1-V6 from electrode directions around the horizontal plane.  Noise is generated per
electrode (RA, LA, LL, C1-C6) and enters I, II and V1-V6 the way it does in a real recorder; III, aVR,
aVL and aVF are then derived with the Einthoven/Goldberger identities, so they hold to float precision.

Dipole frame (unit vectors): x = patient's left, y = inferior (towards the feet), z = anterior.
Angles of the frontal plane follow the hexaxial convention (0 deg = lead I, +90 deg = aVF).

Public API: :data:`CLASSES`, :data:`STANDARD_LEADS`, :func:`synthesize_ecg`, :func:`sample_labels`,
:func:`write_synthetic_records`, :func:`main` (``python -m ecgrender synth``).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ecgvocab import ADC_GAIN_PER_MV, DEFAULT_FORMAT, STANDARD_LEADS, to_format16
from ecgvocab import DX_CLASSES as CLASSES

log = logging.getLogger(__name__)


_CLASS_LOOKUP = {c.lower(): c for c in CLASSES}
_CLASS_LOOKUP.update({"afib": "AFIB/AFL", "afl": "AFIB/AFL", "mi": "Old MI"})

# --------------------------------------------------------------------------------------------------
# Lead geometry
# --------------------------------------------------------------------------------------------------


def _unit(v: Sequence[float]) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    n = float(np.linalg.norm(a))
    return a / n if n > 0 else a


_U_I = np.array([1.0, 0.0, 0.0])
_U_II = np.array([math.cos(math.radians(60.0)), math.sin(math.radians(60.0)), 0.0])

# Precordial electrodes: (angle in the horizontal plane from +x towards +z in degrees, inferior tilt,
# lead-vector length).  V2-V4 sit closest to the heart, hence the longer lead vectors.
_PRECORDIAL_GEOMETRY = [
    (118.0, -0.10, 1.25),  # V1
    (96.0, -0.08, 1.75),  # V2
    (74.0, 0.00, 1.85),  # V3
    (54.0, 0.06, 1.80),  # V4
    (30.0, 0.10, 1.55),  # V5
    (6.0, 0.12, 1.25),  # V6
]


def _precordial_matrix() -> np.ndarray:
    """Lead vectors of V1-V6, shape (3, 6): column k projects the dipole (mV) onto lead V(k+1)."""
    cols = []
    for ang, tilt, gain in _PRECORDIAL_GEOMETRY:
        a = math.radians(ang)
        cols.append(gain * _unit([math.cos(a), tilt, math.sin(a)]))
    return np.stack(cols, axis=1)


_U_PREC = _precordial_matrix()
# Full 12-lead lead matrix (12, 3) in STANDARD_LEADS order (used for calibration of noiseless templates).
_LEAD_MATRIX = np.stack(
    [
        _U_I,
        _U_II,
        _U_II - _U_I,
        -(_U_I + _U_II) / 2.0,
        _U_I - _U_II / 2.0,
        _U_II - _U_I / 2.0,
        *_U_PREC.T,
    ]
)
_LIDX = {name: i for i, name in enumerate(STANDARD_LEADS)}

_TERRITORY_LEADS = {
    "inferior": ["II", "III", "aVF"],
    "anterior": ["V1", "V2", "V3", "V4"],
    "lateral": ["I", "aVL", "V5", "V6"],
}
# Direction (dipole frame) pointing from the heart's centre towards each territory.
_TERRITORY_DIRECTION = {
    "inferior": _unit([-0.05, 1.0, -0.05]),
    "anterior": _unit([0.05, -0.8, 1.0]),
    "lateral": _unit([0.9, -0.45, 0.05]),
}


def _rot_frontal(v: np.ndarray, deg: float) -> np.ndarray:
    """Rotate vectors (..., 3) by ``deg`` degrees in the frontal (x, y) plane (positive = clockwise
    on the hexaxial chart, i.e. towards +y = inferior)."""
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    out = np.array(v, dtype=float, copy=True)
    x, y = out[..., 0].copy(), out[..., 1].copy()
    out[..., 0] = c * x - s * y
    out[..., 1] = s * x + c * y
    return out


# --------------------------------------------------------------------------------------------------
# Components
# --------------------------------------------------------------------------------------------------


@dataclass
class _Wave:
    """One asymmetric-Gaussian dipole component of a beat. Times in s relative to QRS onset."""

    centre: float
    sigma_left: float
    sigma_right: float
    vector: np.ndarray  # (3,) mV
    role: str = ""

    def scaled(self, factor: float) -> "_Wave":
        return _Wave(self.centre, self.sigma_left, self.sigma_right, self.vector * factor, self.role)


@dataclass
class _Morphology:
    """Per-record beat shapes (all times in s relative to QRS onset, vectors in mV)."""

    qrs: list[_Wave]
    qrs_ms: float
    p: list[_Wave]  # sinus P (times relative to P onset)
    p_ectopic: list[_Wave]  # PAC P (times relative to P onset)
    t_vec: np.ndarray  # T-wave dipole (mV)
    t_extra: list[tuple[np.ndarray, float]] = field(default_factory=list)  # (vector, width factor)
    st_vec: np.ndarray = field(default_factory=lambda: np.zeros(3))  # ST plateau (mV)
    pvc_qrs: list[_Wave] = field(default_factory=list)
    pvc_qrs_ms: float = 0.0
    pvc_t_vec: np.ndarray = field(default_factory=lambda: np.zeros(3))
    r_offset: float = 0.0  # s from QRS onset to the R peak (max spatial magnitude)
    pvc_r_offset: float = 0.0


def _render_waves(
    D: np.ndarray, fs: float, centres: np.ndarray, sl: np.ndarray, sr: np.ndarray, vecs: np.ndarray
) -> None:
    """Add asymmetric Gaussians ``vec * exp(-(t-c)^2 / 2 sigma^2)`` to the dipole ``D`` (N, 3) in place.

    Times in s; only a +-5 sigma window around each centre is evaluated (fast, exact to 4e-6)."""
    n = D.shape[0]
    lo = np.floor((centres - 5.0 * sl) * fs).astype(np.int64)
    hi = np.ceil((centres + 5.0 * sr) * fs).astype(np.int64) + 1
    lo = np.clip(lo, 0, n)
    hi = np.clip(hi, 0, n)
    for k in range(len(centres)):
        a, b = lo[k], hi[k]
        if b <= a:
            continue
        tt = np.arange(a, b) / fs - centres[k]
        s = np.where(tt < 0.0, sl[k], sr[k])
        g = np.exp(-0.5 * (tt / s) ** 2)
        D[a:b] += g[:, None] * vecs[k][None, :]


def _render_plateaus(D: np.ndarray, fs: float, starts: np.ndarray, ends: np.ndarray, vecs: np.ndarray) -> None:
    """Add smooth plateaus (ST-segment currents) rising at ``starts`` (tau 4 ms) and decaying around
    ``ends`` (tau 25 ms) to ``D`` (N, 3) in place.  Times in s."""
    n = D.shape[0]
    for k in range(len(starts)):
        a = max(0, int(math.floor((starts[k] - 0.05) * fs)))
        b = min(n, int(math.ceil((ends[k] + 0.2) * fs)) + 1)
        if b <= a or not np.any(vecs[k]):
            continue
        tt = np.arange(a, b) / fs
        prof = _sigmoid((tt - starts[k]) / 0.004) * _sigmoid((ends[k] - tt) / 0.025)
        D[a:b] += prof[:, None] * vecs[k][None, :]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _template(waves: list[_Wave], t0: float = -0.05, t1: float = 0.35, fs: float = 2000.0) -> np.ndarray:
    """Noiseless 12-lead template (M, 12) in mV of ``waves`` on a fine grid from t0 to t1 s."""
    n = int(round((t1 - t0) * fs))
    D = np.zeros((n, 3))
    if waves:
        _render_waves(
            D,
            fs,
            np.array([w.centre - t0 for w in waves]),
            np.array([w.sigma_left for w in waves]),
            np.array([w.sigma_right for w in waves]),
            np.stack([w.vector for w in waves]),
        )
    return D @ _LEAD_MATRIX.T


def _r_offset(waves: list[_Wave]) -> float:
    """Time (s after QRS onset) of the maximal spatial dipole magnitude of a QRS."""
    t0, fs = -0.05, 2000.0
    n = int(round(0.4 * fs))
    D = np.zeros((n, 3))
    _render_waves(
        D,
        fs,
        np.array([w.centre - t0 for w in waves]),
        np.array([w.sigma_left for w in waves]),
        np.array([w.sigma_right for w in waves]),
        np.stack([w.vector for w in waves]),
    )
    # Lead II weighted a little more so that the "R peak" is the one a clinician would mark.
    mag = np.linalg.norm(D, axis=1) + 0.5 * np.abs(D @ _U_II)
    return float(np.argmax(mag) / fs + t0)


def _sokolow(waves: list[_Wave]) -> tuple[float, float, float]:
    """(S in V1, R in V5, R in V6) of a QRS in mV, all >= 0."""
    tpl = _template(waves)
    return (
        max(0.0, -float(tpl[:, _LIDX["V1"]].min())),
        max(0.0, float(tpl[:, _LIDX["V5"]].max())),
        max(0.0, float(tpl[:, _LIDX["V6"]].max())),
    )


# --------------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------------


def _normalise_labels(labels: Sequence[str] | str | None) -> list[str]:
    """Canonical class names, order of CLASSES, duplicates removed; unknown names raise ValueError."""
    if labels is None:
        return ["NORM"]
    if isinstance(labels, str):
        labels = [s for s in labels.split(",")]
    out = set()
    for lab in labels:
        key = str(lab).strip().lower()
        if not key:
            continue
        if key not in _CLASS_LOOKUP:
            raise ValueError(f"unknown ECG class {lab!r}; expected one of {CLASSES}")
        out.add(_CLASS_LOOKUP[key])
    if not out:
        out = {"NORM"}
    if "NORM" in out and len(out) > 1:
        raise ValueError(f"NORM cannot be combined with other classes: {sorted(out)}")
    if "TACHY" in out and "BRADY" in out:
        raise ValueError("TACHY and BRADY are mutually exclusive")
    return [c for c in CLASSES if c in out]


_LABEL_WEIGHTS = {
    "Acute MI": 0.06,
    "Old MI": 0.13,
    "STTC": 0.17,
    "CD": 0.16,
    "HYP": 0.09,
    "PAC": 0.07,
    "PVC": 0.08,
    "AFIB/AFL": 0.10,
    "TACHY": 0.07,
    "BRADY": 0.07,
}


def sample_labels(rng: np.random.Generator | int | None = None) -> list[str]:
    """Draw a plausible label set: ``["NORM"]`` with probability ~0.35, otherwise 1-3 abnormal classes.

    Rules: NORM never combines with another class; TACHY and BRADY are exclusive; PAC does not combine
    with AFIB/AFL (no organised atrial activity); BRADY does not combine with AFIB/AFL.  Returned in
    CLASSES order."""
    rng = np.random.default_rng(rng)
    if rng.random() < 0.35:
        return ["NORM"]
    names = list(_LABEL_WEIGHTS)
    w = np.array([_LABEL_WEIGHTS[n] for n in names])
    k = int(rng.choice([1, 2, 3], p=[0.55, 0.33, 0.12]))
    chosen: set[str] = set()
    for _ in range(20):
        if len(chosen) >= k:
            break
        cand = str(rng.choice(names, p=w / w.sum()))
        if cand in chosen:
            continue
        trial = chosen | {cand}
        if {"TACHY", "BRADY"} <= trial or {"PAC", "AFIB/AFL"} <= trial or {"BRADY", "AFIB/AFL"} <= trial:
            continue
        chosen = trial
    return [c for c in CLASSES if c in chosen]


# --------------------------------------------------------------------------------------------------
# Morphology
# --------------------------------------------------------------------------------------------------


def _normal_qrs(rng: np.random.Generator, qrs_s: float) -> list[_Wave]:
    """Normal QRS in the canonical frame (mean frontal axis ~55 deg): septal, apical, lateral, basal."""
    s = qrs_s / 0.090
    j = lambda: 1.0 + 0.08 * rng.standard_normal()  # noqa: E731 - per-record shape jitter
    return [
        _Wave(0.012 * s, 0.006 * s, 0.006 * s, np.array([-0.22, 0.10, 0.42]) * 0.32 * j(), "septal"),
        _Wave(0.036 * s, 0.0085 * s, 0.0085 * s, np.array([0.50, 0.75, 0.55]) * 0.95 * j(), "lv"),
        _Wave(0.050 * s, 0.009 * s, 0.009 * s, np.array([0.85, 0.25, -0.42]) * 1.0 * j(), "lv"),
        _Wave(0.074 * s, 0.008 * s, 0.008 * s, np.array([-0.25, -0.40, -0.55]) * 0.28 * j(), "basal"),
    ]


def _rbbb_qrs(rng: np.random.Generator, qrs_s: float) -> list[_Wave]:
    """Right bundle branch block: normal early forces, then a slow right-anterior terminal lobe (R' in V1)."""
    waves = _normal_qrs(rng, 0.088)[:3]
    sig = 0.016 * qrs_s / 0.135
    centre = qrs_s - 2.0 * sig
    waves.append(_Wave(centre, sig, sig, np.array([-0.85, 0.0, 0.50]) * rng.uniform(0.75, 1.0), "rv"))
    return waves


def _lbbb_qrs(rng: np.random.Generator, qrs_s: float) -> list[_Wave]:
    """Left bundle branch block: leftward septal activation, two broad left-posterior lobes (notched R in
    V6/I, deep QS in V1)."""
    s = qrs_s / 0.140
    sig = 0.020 * s
    return [
        _Wave(0.018 * s, 0.009 * s, 0.009 * s, np.array([0.45, 0.25, -0.35]) * 0.35, "septal"),
        _Wave(0.052 * s, sig, sig, np.array([0.80, 0.35, -0.62]) * rng.uniform(0.9, 1.1), "lv"),
        _Wave(qrs_s - 2.0 * sig, sig, sig, np.array([0.72, 0.20, -0.72]) * rng.uniform(0.9, 1.1), "lv"),
    ]


def _pvc_qrs(rng: np.random.Generator, qrs_s: float) -> list[_Wave]:
    """Premature ventricular beat: broad, bizarre QRS from an ectopic focus (random direction)."""
    sig = 0.020 * qrs_s / 0.150
    d1 = _unit(rng.normal(size=3) + np.array([0.0, 0.3, 0.0]))
    d2 = _unit(d1 + 0.9 * rng.normal(size=3))
    amp = rng.uniform(1.2, 2.0)
    return [
        _Wave(2.0 * sig + 0.004, sig, sig * 1.2, d1 * amp, "pvc"),
        _Wave(qrs_s - 2.0 * sig, sig, sig, d2 * amp * rng.uniform(0.4, 0.8), "pvc"),
    ]


def _frontal_axis(waves: list[_Wave]) -> float:
    """Mean frontal QRS axis (deg) from the net areas of the components."""
    area = sum(w.vector * (w.sigma_left + w.sigma_right) for w in waves)
    return math.degrees(math.atan2(area[1], area[0]))


def _qrs_area_vector(waves: list[_Wave]) -> np.ndarray:
    return sum(w.vector * (w.sigma_left + w.sigma_right) for w in waves)


def _calibrate_qrs_amplitude(waves: list[_Wave], target_mv: float) -> list[_Wave]:
    """Scale the QRS so that its maximal frontal-plane dipole magnitude equals ``target_mv``."""
    tpl = _template(waves)
    frontal = np.hypot(tpl[:, 0], (2.0 * tpl[:, 1] - tpl[:, 0]) / math.sqrt(3.0))
    peak = float(frontal.max())
    return [w.scaled(target_mv / peak) for w in waves] if peak > 0 else waves


def _build_morphology(rng: np.random.Generator, labels: list[str], info: dict) -> _Morphology:
    """Draw the per-record beat shapes for ``labels``; records the chosen sub-types in ``info``."""
    lab = set(labels)
    # --- conduction / QRS shape --------------------------------------------------------------------
    cd_type = None
    if "CD" in lab:
        cd_type = str(rng.choice(["RBBB", "LBBB", "AVB1"], p=[0.42, 0.33, 0.25]))
    if cd_type == "RBBB":
        qrs_s = rng.uniform(0.125, 0.155)
        qrs = _rbbb_qrs(rng, qrs_s)
        axis = rng.uniform(20.0, 100.0)
    elif cd_type == "LBBB":
        qrs_s = rng.uniform(0.130, 0.165)
        qrs = _lbbb_qrs(rng, qrs_s)
        axis = rng.uniform(-30.0, 60.0)
    else:
        qrs_s = rng.uniform(0.080, 0.100)
        qrs = _normal_qrs(rng, qrs_s)
        axis = rng.uniform(10.0, 80.0) if lab <= {"NORM", "TACHY", "BRADY", "PAC"} else rng.uniform(-20.0, 90.0)
        if "HYP" in lab:
            axis = rng.uniform(-20.0, 60.0)
    rot = axis - _frontal_axis(qrs)
    qrs = [_Wave(w.centre, w.sigma_left, w.sigma_right, _rot_frontal(w.vector, rot), w.role) for w in qrs]

    # --- old MI: initial forces away from the infarct, loss of forces towards it ----------------------
    old_terr = None
    if "Old MI" in lab:
        old_terr = str(rng.choice(["inferior", "anterior", "lateral"], p=[0.45, 0.35, 0.20]))
        u = _TERRITORY_DIRECTION[old_terr]
        loss = rng.uniform(0.8, 1.0)
        new = []
        for w in qrs:
            if w.role == "septal" and old_terr == "anterior":
                continue
            proj = float(w.vector @ u)
            v = w.vector - loss * max(proj, 0.0) * u if w.role != "rv" else w.vector
            new.append(_Wave(w.centre, w.sigma_left, w.sigma_right, v, w.role))
        qrs = new
    qrs = _calibrate_qrs_amplitude(qrs, rng.uniform(0.9, 1.5))
    if old_terr is not None:
        u = _TERRITORY_DIRECTION[old_terr]
        q_amp = rng.uniform(0.45, 0.75)
        # Activation around the scar is late: the remaining forces start ~14 ms later.
        qrs = [_Wave(w.centre + 0.014, w.sigma_left, w.sigma_right, w.vector, w.role) for w in qrs]
        qrs.insert(0, _Wave(0.028, 0.011, 0.018, -u * q_amp, "q_mi"))
        qrs_s += 0.014
        info["old_mi_territory"] = old_terr

    # --- precordial voltage: HYP raises left-ventricular forces, the rest stays below 3 mV ---------
    s_v1, r_v5, r_v6 = _sokolow(qrs)
    if "HYP" in lab:
        target = rng.uniform(3.8, 5.2)
        for _ in range(6):
            s_v1, r_v5, r_v6 = _sokolow(qrs)
            cur = s_v1 + r_v5
            if cur >= target * 0.995:
                break
            f = min(3.0, target / max(cur, 1e-3))
            qrs = [w.scaled(f) if w.role in ("lv",) else w for w in qrs]
        else:  # left-ventricular forces alone did not get there: scale the whole QRS
            s_v1, r_v5, r_v6 = _sokolow(qrs)
            qrs = [w.scaled(target / max(s_v1 + r_v5, 1e-3)) for w in qrs]
    else:
        limit = rng.uniform(1.8, 3.0)
        cur = s_v1 + max(r_v5, r_v6)
        if cur > limit:
            qrs = [w.scaled(limit / cur) for w in qrs]
    s_v1, r_v5, r_v6 = _sokolow(qrs)
    info["sokolow_lyon_mv"] = float(s_v1 + max(r_v5, r_v6))

    # --- P waves ------------------------------------------------------------------------------------
    p_axis = rng.uniform(35.0, 70.0)
    p_ra = _rot_frontal(np.array([1.0, 0.0, 0.0]), p_axis) * 0.8 + np.array([0.0, 0.0, 0.35])
    p_la = _rot_frontal(np.array([1.0, 0.0, 0.0]), p_axis - 15.0) * 0.8 + np.array([0.0, 0.0, -0.30])
    p_amp = rng.uniform(0.08, 0.20)
    p_dur = rng.uniform(0.085, 0.110)
    sig = p_dur / 6.0
    p = [_Wave(2.0 * sig, sig, sig, p_ra, "p"), _Wave(p_dur - 2.0 * sig, sig, sig, p_la, "p")]
    tpl = _template(p, 0.0, 0.15)
    p = [w.scaled(p_amp / max(float(tpl[:, 1].max()), 1e-6)) for w in p]
    # Ectopic atrial P: other axis (often low-atrial, inverted in the inferior leads), other width.
    e_axis = rng.choice([rng.uniform(-110.0, -60.0), rng.uniform(90.0, 160.0)])
    e_vec = _rot_frontal(np.array([1.0, 0.0, 0.0]), e_axis) * p_amp * rng.uniform(0.9, 1.4)
    e_vec = e_vec + np.array([0.0, 0.0, rng.uniform(-0.1, 0.1)])
    e_sig = rng.uniform(0.012, 0.02)
    p_ectopic = [_Wave(2.5 * e_sig, e_sig, e_sig, e_vec, "p_ectopic")]

    # --- T wave, concordant with the mean QRS vector ------------------------------------------------
    qa = _unit(_qrs_area_vector(qrs))
    base_t = _rot_frontal(np.array([0.55, 0.62, 0.40]), axis - 50.0)
    t_dir = _unit(0.6 * _unit(base_t) + 0.4 * _unit(qa * np.array([1.0, 1.0, 0.0]) + np.array([0, 0, 0.5])))
    t_amp = rng.uniform(0.28, 0.45)
    t_vec = t_dir * t_amp
    st_vec = np.zeros(3)
    t_extra: list[tuple[np.ndarray, float]] = []

    if cd_type in ("RBBB", "LBBB"):
        # Secondary repolarisation changes, discordant to the terminal / main QRS forces.
        if cd_type == "LBBB":
            lv_dir = _unit(sum(w.vector for w in qrs if w.role == "lv"))
            t_vec = -lv_dir * rng.uniform(0.35, 0.55)
            st_vec = -lv_dir * rng.uniform(0.08, 0.16)
        else:
            rv_dir = _unit(sum(w.vector for w in qrs if w.role == "rv"))
            t_vec = _unit(t_dir - 0.8 * rv_dir) * t_amp
    info["cd_type"] = cd_type

    if "HYP" in lab:
        # Strain: down-sloping ST depression and T inversion in the lateral leads.
        lat = _unit(_LEAD_MATRIX[_LIDX["V5"]] + _LEAD_MATRIX[_LIDX["V6"]] + _LEAD_MATRIX[_LIDX["I"]])
        depth = rng.uniform(0.06, 0.15)
        st_vec = st_vec - lat * depth / float(np.max(_LEAD_MATRIX[[_LIDX[n] for n in ("I", "V5", "V6")]] @ lat))
        t_vec = t_vec - lat * rng.uniform(0.45, 0.75) / 1.2

    if "STTC" in lab:
        # Subendocardial ischaemia: ST vector towards aVR (depression in inferolateral leads) ...
        leads = ["I", "II", "aVF", "V4", "V5", "V6"]
        d = _unit(-(_LEAD_MATRIX[_LIDX["II"]] + _LEAD_MATRIX[_LIDX["V5"]] + 0.5 * _LEAD_MATRIX[_LIDX["I"]]))
        proj = _LEAD_MATRIX[[_LIDX[n] for n in leads]] @ d
        depth = rng.uniform(0.10, 0.20)
        st_vec = st_vec + d * depth / float(-proj.min())
        # ... and inverted T waves in some leads.
        t_vec = -t_vec * rng.uniform(0.4, 0.8)
        info["sttc_st_depression_mv"] = float(depth)

    acute_terr = None
    if "Acute MI" in lab:
        choices = ["inferior", "anterior", "lateral"]
        if old_terr in choices and len(choices) > 1:
            choices.remove(old_terr)
        acute_terr = str(rng.choice(choices))
        u = _TERRITORY_DIRECTION[acute_terr]
        idx = [_LIDX[n] for n in _TERRITORY_LEADS[acute_terr]]
        elev = rng.uniform(0.15, 0.35)
        st_vec = st_vec + u * elev / float(np.max(_LEAD_MATRIX[idx] @ u))
        # Hyperacute T waves in the same territory.
        t_extra.append((u * rng.uniform(0.15, 0.35), 1.0))
        info["acute_mi_territory"] = acute_terr
        info["st_elevation_mv"] = float(elev)

    # --- premature ventricular beats ----------------------------------------------------------------
    pvc_qrs: list[_Wave] = []
    pvc_qrs_ms = 0.0
    pvc_t = np.zeros(3)
    if "PVC" in lab:
        pvc_s = rng.uniform(0.135, 0.175)
        pvc_qrs = _pvc_qrs(rng, pvc_s)
        pvc_qrs_ms = pvc_s * 1000.0
        pvc_t = -_unit(_qrs_area_vector(pvc_qrs)) * rng.uniform(0.4, 0.7)

    morph = _Morphology(
        qrs=qrs,
        qrs_ms=qrs_s * 1000.0,
        p=p,
        p_ectopic=p_ectopic,
        t_vec=t_vec,
        t_extra=t_extra,
        st_vec=st_vec,
        pvc_qrs=pvc_qrs,
        pvc_qrs_ms=pvc_qrs_ms,
        pvc_t_vec=pvc_t,
    )
    morph.r_offset = _r_offset(qrs)
    morph.pvc_r_offset = _r_offset(pvc_qrs) if pvc_qrs else 0.0
    info["axis_deg"] = float(axis)
    return morph


# --------------------------------------------------------------------------------------------------
# Rhythm
# --------------------------------------------------------------------------------------------------


@dataclass
class _Beat:
    onset: float  # QRS onset, s
    kind: str  # "N" normal, "A" premature atrial, "V" premature ventricular
    p_onset: float | None  # P onset, s (None: no P wave)


def _rate_range(lab: set[str], af: bool) -> tuple[float, float]:
    if "TACHY" in lab:
        return (105.0, 150.0)
    if "BRADY" in lab:
        return (42.0, 55.0)
    return (66.0, 95.0) if af else (62.0, 95.0)


def _sinus_beats(
    rng: np.random.Generator, t_start: float, t_end: float, rr_mean: float, pr: float, resp: tuple[float, float, float]
) -> list[_Beat]:
    """Sinus rhythm with respiratory sinus arrhythmia (``resp`` = frequency Hz, relative amplitude, phase)."""
    f_r, a_r, ph_r = resp
    sinus: list[float] = []
    t = t_start
    while t < t_end:
        sinus.append(t)
        rr = rr_mean * (1.0 + a_r * math.sin(2 * math.pi * f_r * t + ph_r) + 0.008 * rng.standard_normal())
        t += rr
    return [_Beat(s, "N", s - pr) for s in sinus]


def _place_ectopics(
    rng: np.random.Generator, beats: list[_Beat], rr_mean: float, duration: float, lab: set[str], af: bool
) -> list[_Beat]:
    """Insert PACs and PVCs into ``beats`` (sorted, normal). PVC: coupling 0.45-0.65 RR, the next sinus
    beat is blocked (compensatory pause). PAC: coupling 0.6-0.8 RR, sinus node reset (non-compensatory)."""
    first: list[str] = []
    extra: list[str] = []
    if "PVC" in lab:
        first.append("V")
        extra += ["V"] * int(rng.integers(0, 3))
    if "PAC" in lab and not af:
        first.append("A")
        extra += ["A"] * int(rng.integers(0, 3))
    if not first:
        return beats
    # One of each requested kind comes first, so that a short record still shows every kind.
    rng.shuffle(first)
    rng.shuffle(extra)
    want = first + extra
    # Eligible "parent" beats: inside the record, with room for the premature beat and its pause.
    elig = [i for i, b in enumerate(beats[:-2]) if 0.15 <= b.onset and b.onset + 1.0 * rr_mean < duration - 0.25]
    if not elig:
        elig = [i for i, b in enumerate(beats[:-2]) if 0.0 <= b.onset < duration - 0.2] or [0]
    # Spread them out: no two ectopics after adjacent parents.
    chosen: list[int] = []
    for i in rng.permutation(elig):
        if len(chosen) >= len(want):
            break
        if all(abs(int(i) - c) >= 2 for c in chosen):
            chosen.append(int(i))
    kinds = {c: want[k] for k, c in enumerate(chosen)}
    out: list[_Beat] = []
    shift = 0.0
    skip_next = False
    for i, b in enumerate(beats):
        if skip_next:
            skip_next = False
            continue
        nb = _Beat(b.onset + shift, b.kind, None if b.p_onset is None else b.p_onset + shift)
        out.append(nb)
        kind = kinds.get(i)
        if kind is None or i + 1 >= len(beats):
            continue
        rr = beats[i + 1].onset - b.onset
        if kind == "V":
            t = nb.onset + rng.uniform(0.45, 0.65) * rr
            out.append(_Beat(t, "V", None))
            if not af:
                skip_next = True  # the next sinus impulse finds the ventricles refractory
            else:
                shift += t + rr * rng.uniform(0.9, 1.3) - (b.onset + shift + rr)
        else:
            t = nb.onset + rng.uniform(0.60, 0.80) * rr
            pr_e = rng.uniform(0.11, 0.17)
            out.append(_Beat(t, "A", t - pr_e))
            new_next = t + rr * rng.uniform(0.98, 1.08)
            shift += new_next - (b.onset + shift + rr)
    return out


def _af_beats(rng: np.random.Generator, t_start: float, t_end: float, rr_mean: float) -> list[_Beat]:
    """Irregularly irregular ventricular response (no P waves); RR coefficient of variation ~0.2-0.35."""
    cv = rng.uniform(0.22, 0.33)
    shape = 1.0 / cv**2
    beats = []
    t = t_start
    while t < t_end:
        beats.append(_Beat(t, "N", None))
        rr = max(0.28, rng.gamma(shape, rr_mean / shape))
        t += rr
    return beats


def _flutter_beats(
    rng: np.random.Generator, t_start: float, t_end: float, rr_target: float, f_cycle: float
) -> tuple[list[_Beat], float]:
    """Atrial flutter with variable AV conduction (2:1 .. 4:1); QRS a fixed delay after a flutter wave."""
    ratios = np.array([2, 3, 4])
    mean_ratio = rr_target / f_cycle
    # Weights that reproduce the target mean ratio while keeping conduction variable.
    w = np.exp(-0.9 * (ratios - mean_ratio) ** 2) + 0.15
    w = w / w.sum()
    delay = rng.uniform(0.16, 0.24)
    beats = []
    t = t_start
    while t < t_end:
        beats.append(_Beat(t + delay, "N", None))
        t += int(rng.choice(ratios, p=w)) * f_cycle
    return beats, delay


def _in_record_rr(beats: list[_Beat], r_offset: dict[str, float], duration: float) -> np.ndarray:
    r = np.array([b.onset + r_offset[b.kind] for b in beats])
    r = r[(r >= 0.0) & (r < duration)]
    return np.diff(r)


# --------------------------------------------------------------------------------------------------
# Noise
# --------------------------------------------------------------------------------------------------


def _bandlimited(rng: np.random.Generator, n: int, fs: float, f_lo: float, f_hi: float, m: int) -> np.ndarray:
    """``m`` independent band-limited Gaussian noises (n, m) with unit RMS, pass band f_lo..f_hi Hz."""
    spec = rng.standard_normal((n // 2 + 1, m)) + 1j * rng.standard_normal((n // 2 + 1, m))
    f = np.fft.rfftfreq(n, 1.0 / fs)
    spec[(f < f_lo) | (f > f_hi)] = 0.0
    x = np.fft.irfft(spec, n=n, axis=0)
    rms = np.sqrt(np.mean(x**2, axis=0))
    rms[rms == 0] = 1.0
    return x / rms


def _electrode_noise(rng: np.random.Generator, n: int, fs: float, info: dict) -> np.ndarray:
    """Noise at the 9 electrodes RA, LA, LL, C1..C6, shape (n, 9) in mV: baseline wander (< 0.5 Hz),
    muscle noise (band-limited 20-150 Hz), mains hum (50 or 60 Hz) and a little white noise."""
    t = np.arange(n) / fs
    e = np.zeros((n, 9))
    # Baseline wander: a few slow sinusoids per electrode (respiration, electrode drift).
    bw_amp = float(rng.choice([rng.uniform(0.0, 0.05), rng.uniform(0.05, 0.25)], p=[0.5, 0.5]))
    for _ in range(3):
        f = rng.uniform(0.05, 0.45, size=9)
        ph = rng.uniform(0, 2 * np.pi, size=9)
        a = bw_amp * rng.uniform(0.2, 1.0, size=9)
        e += a[None, :] * np.sin(2 * np.pi * f[None, :] * t[:, None] + ph[None, :])
    # Muscle (EMG) noise.
    emg_rms = float(rng.choice([rng.uniform(0.0, 0.01), rng.uniform(0.01, 0.04)], p=[0.7, 0.3]))
    f_hi = min(150.0, 0.45 * fs)
    if emg_rms > 0 and f_hi > 20.0:
        e += emg_rms * rng.uniform(0.3, 1.0, size=9)[None, :] * _bandlimited(rng, n, fs, 20.0, f_hi, 9)
    # Mains hum: common phase, electrode-specific amplitude (the common mode cancels in the leads).
    mains = float(rng.choice([50.0, 60.0]))
    hum_amp = float(rng.uniform(0.0, 0.02))
    if mains < 0.5 * fs - 1.0:
        ph = rng.uniform(0, 2 * np.pi)
        e += hum_amp * rng.uniform(0.2, 1.0, size=9)[None, :] * np.sin(2 * np.pi * mains * t + ph)[:, None]
    e += 0.003 * rng.standard_normal((n, 9))
    info["noise"] = {
        "baseline_wander_mv": bw_amp,
        "emg_rms_mv": emg_rms,
        "mains_hz": mains,
        "mains_mv": hum_amp if mains < 0.5 * fs - 1.0 else 0.0,
    }
    return e


def _atrial_activity(rng: np.random.Generator, n: int, fs: float, kind: str, info: dict) -> np.ndarray:
    """Atrial dipole (n, 3) in mV: fibrillatory waves (4-9 Hz) or a flutter sawtooth (~300/min)."""
    t = np.arange(n) / fs
    if kind == "afib":
        f0 = rng.uniform(5.0, 8.0)
        inst = f0 + 0.8 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 6.3))
        inst = np.clip(inst, 4.0, 9.0)
        phase = 2 * np.pi * np.cumsum(inst) / fs
        env = 1.0 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t + rng.uniform(0, 6.3))
        w = env * (np.sin(phase) + 0.35 * np.sin(2 * phase + rng.uniform(0, 6.3)))
        w = w / max(float(np.abs(w).max()), 1e-9)
        amp = rng.uniform(0.04, 0.12)
        vec = _unit([-0.15, 0.45, 0.88]) * amp
        info["f_wave_hz"] = float(f0)
        return w[:, None] * vec[None, :]
    rate = info["flutter_rate_per_min"]
    ph = (t * rate / 60.0 + rng.uniform(0, 1)) % 1.0
    # Negative sawtooth in the inferior leads: slow descent, brisk return.
    w = np.where(ph < 0.7, 1.0 - 2.0 * ph / 0.7, -1.0 + 2.0 * (ph - 0.7) / 0.3)
    k = max(1, int(round(0.012 * fs)))
    w = np.convolve(w, np.ones(k) / k, mode="same")
    vec = _unit([0.05, -0.75, 0.65]) * rng.uniform(0.12, 0.25)
    return w[:, None] * vec[None, :]


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def synthesize_ecg(
    labels: Sequence[str] | str | None,
    fs: float = 500.0,
    duration_s: float = 10.0,
    rng: np.random.Generator | int | None = None,
    noise: bool = True,
) -> tuple[np.ndarray, dict]:
    """Synthesise a 12-lead ECG showing the features of ``labels`` (names from :data:`CLASSES`).

    Args:
        labels: class names (e.g. ``["AFIB/AFL", "CD"]``); ``NORM`` must stand alone, TACHY and BRADY
            are exclusive; case-insensitive.
        fs: sampling frequency in Hz (>= 50).
        duration_s: length in s.
        rng: numpy Generator or seed (same seed -> identical output).
        noise: add baseline wander, muscle noise, mains hum and white noise.

    Returns:
        ``(signal, info)``: signal float64 (round(fs*duration_s), 12) in mV, columns in
        :data:`STANDARD_LEADS` order; info with ``heart_rate_bpm`` (60 / mean in-record RR), ``rr_s``
        (in-record RR intervals, s), ``r_peak_samples``, ``qrs_onset_samples``, ``beat_types`` ("N",
        "A" PAC, "V" PVC), ``premature_beats`` (indices into r_peak_samples), ``pac_indices``,
        ``pvc_indices``, ``qrs_ms`` (conducted beats), ``pvc_qrs_ms`` (None without PVCs), ``pr_ms``
        (None without P waves), ``qt_ms`` (mean), ``qtc_ms``, ``axis_deg`` (frontal QRS axis),
        ``rhythm`` ("sinus", "afib", "aflutter"), ``labels`` (canonical), ``cd_type`` ("RBBB", "LBBB",
        "AVB1" or None), ``old_mi_territory`` / ``acute_mi_territory`` ("inferior", "anterior",
        "lateral"), ``st_elevation_mv``, ``sttc_st_depression_mv``, ``sokolow_lyon_mv`` (noiseless
        template), ``f_wave_hz`` / ``flutter_rate_per_min``, ``noise`` (parameters or None), ``fs``,
        ``duration_s``.

    Short records (< ~3 s) may hold too few beats to show every rhythm feature (e.g. the AF RR spread).
    """
    labs = _normalise_labels(labels)
    fs = float(fs)
    duration_s = float(duration_s)
    if not (math.isfinite(fs) and fs >= 50.0):
        raise ValueError(f"fs must be >= 50 Hz, got {fs}")
    if not (math.isfinite(duration_s) and duration_s > 0.0):
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    n = int(round(fs * duration_s))
    if n < 2:
        raise ValueError(f"fs * duration_s gives {n} samples")
    rng = np.random.default_rng(rng)
    lab = set(labs)
    info: dict = {"labels": labs, "fs": fs, "duration_s": duration_s}

    morph = _build_morphology(rng, labs, info)
    af_kind = None
    if "AFIB/AFL" in lab:
        af_kind = "afib" if rng.random() < 0.75 else "aflutter"
    rhythm = af_kind or "sinus"
    lo, hi = _rate_range(lab, af_kind is not None)
    hr_target = rng.uniform(lo, hi)
    rr_mean = 60.0 / hr_target

    pr: float | None = None
    if af_kind is None:
        if info.get("cd_type") == "AVB1":
            pr = rng.uniform(0.215, 0.320)
        else:
            pr = rng.uniform(0.125, 0.190) - 0.02 * max(0.0, hr_target - 100.0) / 50.0
    qtc = rng.uniform(0.39, 0.44) + (0.03 if info.get("cd_type") in ("RBBB", "LBBB") else 0.0)
    resp = (rng.uniform(0.15, 0.33), rng.uniform(0.01, 0.035), rng.uniform(0, 2 * np.pi))
    r_offset = {"N": morph.r_offset, "A": morph.r_offset, "V": morph.pvc_r_offset}

    t_start = -rng.uniform(0.4, 1.2) * rr_mean - 0.6
    t_end = duration_s + 0.8
    beats: list[_Beat] = []
    if af_kind == "afib":
        for _ in range(30):
            beats = _af_beats(rng, t_start, t_end, rr_mean)
            beats = _place_ectopics(rng, beats, rr_mean, duration_s, lab, True)
            rr = _in_record_rr(beats, r_offset, duration_s)
            if len(rr) < 2 or (np.std(rr) / np.mean(rr) > 0.16 and lo <= 60.0 / np.mean(rr) <= hi):
                break
    elif af_kind == "aflutter":
        rate = rng.uniform(260.0, 340.0)
        info["flutter_rate_per_min"] = float(rate)
        for _ in range(30):
            beats, _delay = _flutter_beats(rng, t_start, t_end, rr_mean, 60.0 / rate)
            beats = _place_ectopics(rng, beats, rr_mean, duration_s, lab, True)
            rr = _in_record_rr(beats, r_offset, duration_s)
            if len(rr) < 2 or (np.std(rr) / np.mean(rr) > 0.16 and lo <= 60.0 / np.mean(rr) <= hi):
                break
    else:
        assert pr is not None
        beats = _sinus_beats(rng, t_start, t_end, rr_mean, pr, resp)
        beats = _place_ectopics(rng, beats, rr_mean, duration_s, lab, False)
    info["rhythm"] = rhythm
    if "PAC" in lab and af_kind is not None:
        log.warning("PAC requested together with AFIB/AFL: no premature atrial beats are drawn")

    # --- dipole components for all beats ------------------------------------------------------------
    cen: list[float] = []
    sl: list[float] = []
    sr: list[float] = []
    vec: list[np.ndarray] = []
    st_s: list[float] = []
    st_e: list[float] = []
    st_v: list[np.ndarray] = []
    qt_list: list[float] = []
    f_r, a_r, ph_r = resp
    prev_onset = None
    for b in beats:
        rr_prev = rr_mean if prev_onset is None else float(np.clip(b.onset - prev_onset, 0.3, 2.0))
        prev_onset = b.onset
        # Respiratory modulation of QRS amplitude, small per-beat jitter.
        amp = 1.0 + 0.05 * math.sin(2 * math.pi * f_r * b.onset + ph_r + 1.0) + 0.01 * rng.standard_normal()
        if b.p_onset is not None:
            for w in morph.p if b.kind != "A" else morph.p_ectopic:
                cen.append(b.p_onset + w.centre)
                sl.append(w.sigma_left)
                sr.append(w.sigma_right)
                vec.append(w.vector)
        if b.kind == "V":
            qrs, q_s, t_vec, extras, st_vec = morph.pvc_qrs, morph.pvc_qrs_ms / 1000.0, morph.pvc_t_vec, [], None
        else:
            qrs, q_s, t_vec, extras, st_vec = morph.qrs, morph.qrs_ms / 1000.0, morph.t_vec, morph.t_extra, morph.st_vec
        for w in qrs:
            cen.append(b.onset + w.centre)
            sl.append(w.sigma_left)
            sr.append(w.sigma_right)
            vec.append(w.vector * amp)
        qt = qtc * math.sqrt(rr_prev) + (0.04 if b.kind == "V" else 0.0)
        qt = max(qt, q_s + 0.16)
        qt_list.append(qt)
        sig_r = 0.034 * qt / 0.40
        sig_l = 0.058 * qt / 0.40
        t_peak = b.onset + qt - 2.6 * sig_r
        for v, wf in [(t_vec, 1.0)] + list(extras):
            cen.append(t_peak)
            sl.append(sig_l * wf)
            sr.append(sig_r * wf)
            vec.append(v)
        if st_vec is not None and np.any(st_vec):
            st_s.append(b.onset + q_s)
            st_e.append(t_peak)
            st_v.append(st_vec)

    D = np.zeros((n, 3))
    if cen:
        _render_waves(D, fs, np.array(cen), np.array(sl), np.array(sr), np.stack(vec))
    if st_s:
        _render_plateaus(D, fs, np.array(st_s), np.array(st_e), np.stack(st_v))
    if af_kind is not None:
        D += _atrial_activity(rng, n, fs, af_kind, info)

    # --- projection onto the leads (+ electrode noise), derived limb leads ------------------------
    lead_i = D @ _U_I
    lead_ii = D @ _U_II
    prec = D @ _U_PREC
    if noise:
        e = _electrode_noise(rng, n, fs, info)
        ra, la, ll = e[:, 0], e[:, 1], e[:, 2]
        lead_i = lead_i + (la - ra)
        lead_ii = lead_ii + (ll - ra)
        prec = prec + (e[:, 3:] - ((ra + la + ll) / 3.0)[:, None])
    else:
        info["noise"] = None
    sig = np.empty((n, 12))
    sig[:, 0] = lead_i
    sig[:, 1] = lead_ii
    sig[:, 2] = lead_ii - lead_i
    sig[:, 3] = -(lead_i + lead_ii) / 2.0
    sig[:, 4] = lead_i - lead_ii / 2.0
    sig[:, 5] = lead_ii - lead_i / 2.0
    sig[:, 6:] = prec

    # --- annotations ----------------------------------------------------------------------------------
    r_times = np.array([b.onset + r_offset[b.kind] for b in beats])
    keep = (r_times >= 0.0) & (r_times < duration_s)
    kept = [b for b, k in zip(beats, keep) if k]
    r_samples = [int(min(n - 1, round(t * fs))) for t in r_times[keep]]
    rr_s = np.diff(r_times[keep]).tolist()
    types = [b.kind for b in kept]
    qts = [q for q, k in zip(qt_list, keep) if k]
    onsets = [int(min(n - 1, max(0, round(b.onset * fs)))) for b in kept]
    info.update(
        {
            "heart_rate_bpm": float(60.0 / np.mean(rr_s)) if rr_s else float(hr_target),
            "rr_s": [float(x) for x in rr_s],
            "r_peak_samples": r_samples,
            "qrs_onset_samples": onsets,
            "beat_types": types,
            "premature_beats": [i for i, k in enumerate(types) if k in ("A", "V")],
            "pac_indices": [i for i, k in enumerate(types) if k == "A"],
            "pvc_indices": [i for i, k in enumerate(types) if k == "V"],
            "qrs_ms": float(morph.qrs_ms),
            "pvc_qrs_ms": float(morph.pvc_qrs_ms) if morph.pvc_qrs else None,
            "pr_ms": None if pr is None else float(pr * 1000.0),
            "qt_ms": float(np.mean(qts) * 1000.0) if qts else float(qtc * math.sqrt(rr_mean) * 1000.0),
            "qtc_ms": float(qtc * 1000.0),
        }
    )
    return sig, info


def _demographics(rng: np.random.Generator, labels: list[str]) -> tuple[int, str]:
    """Age in years and sex ("Male"/"Female"), older for MI/HYP/AFIB."""
    older = bool(set(labels) & {"Acute MI", "Old MI", "HYP", "AFIB/AFL", "CD"})
    age = int(np.clip(rng.normal(66 if older else 50, 13 if older else 17), 18, 95))
    sex = "Male" if rng.random() < (0.6 if older else 0.5) else "Female"
    return age, sex


def write_synthetic_records(
    folder: str | os.PathLike, n: int, fs: float = 500.0, duration_s: float = 10.0, seed: int = 0
) -> list[str]:
    """Write ``n`` labelled synthetic WFDB records (``.hea`` + ``.dat``, format 16, 1000 ADU/mV) to
    ``folder``; header comments ``# Age:``, ``# Sex:``, ``# Labels: a, b``.  Returns the record names.

    Record ``i`` depends only on ``(seed, i)``, so a larger ``n`` extends a smaller one."""
    import wfdb  # lazy: heavy import, only needed for writing

    if int(n) < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    for i in range(int(n)):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), i]))
        labels = sample_labels(rng)
        sig, _info = synthesize_ecg(labels, fs=fs, duration_s=duration_s, rng=rng, noise=True)
        age, sex = _demographics(rng, labels)
        name = f"synth_{i:05d}"
        wfdb.wrsamp(
            name,
            fs=float(fs),
            units=["mV"] * 12,
            sig_name=list(STANDARD_LEADS),
            d_signal=to_format16(sig),
            fmt=[DEFAULT_FORMAT] * 12,
            adc_gain=[ADC_GAIN_PER_MV] * 12,
            baseline=[0] * 12,
            comments=[f"Age: {age}", f"Sex: {sex}", f"Labels: {', '.join(labels)}"],
            write_dir=str(out),
        )
        names.append(name)
    log.info("wrote %d synthetic records to %s", len(names), out)
    return names


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m ecgrender synth -o FOLDER -n N [--fs 500] [--seconds 10] [--seed S]``."""
    ap = argparse.ArgumentParser(
        prog="python -m ecgrender synth", description="Write labelled synthetic 12-lead WFDB records."
    )
    ap.add_argument("-o", "--output", required=True, help="output folder (created if missing)")
    ap.add_argument("-n", "--num", type=int, default=10, help="number of records (default 10)")
    ap.add_argument("--fs", type=float, default=500.0, help="sampling frequency in Hz (default 500)")
    ap.add_argument("--seconds", type=float, default=10.0, help="record length in s (default 10)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = ap.parse_args(list(argv) if argv is not None else None)
    if args.num < 0:
        ap.error("-n must be >= 0")
    if args.fs < 50:
        ap.error("--fs must be >= 50")
    if args.seconds <= 0:
        ap.error("--seconds must be > 0")
    if args.verbose and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    names = write_synthetic_records(args.output, args.num, fs=args.fs, duration_s=args.seconds, seed=args.seed)
    print(f"wrote {len(names)} records to {args.output}")
    return 0
