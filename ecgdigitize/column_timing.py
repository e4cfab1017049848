"""Column timing: which stretch of the recording each printed column shows, checked against the rhythm strip.

Standard printers show the columns of a multi-column layout one after another (3x4: 0-2.5, 2.5-5, 5-7.5 and
7.5-10 s), but some print every column from the recording's start (the ECG image generator's sample page
JS00001-0.png: all four columns show 0-2.5 s; read sequentially its columns 2-4 scored -5 to +1 dB). A rhythm
strip printed under the columns runs the whole recording, and QRS complexes happen at the same time in every
lead, so the QRS energy of each column's leads lines up with the strip's at the stretch the column shows. The
two hypotheses (sequential, all from the start) are compared by that correlation over all columns after the
first; the sequential one is kept unless the other is clearly better (:data:`MARGIN`), so that a regular rhythm,
whose QRS pattern repeats, never moves a column on weak evidence.
"""

from __future__ import annotations

import logging

import numpy as np

from .assemble import LeadTrace
from .selfcheck import qrs_envelope

log = logging.getLogger(__name__)

#: Correlation (QRS envelopes, columns after the first pooled) by which the all-from-the-start hypothesis must beat
#: the sequential one, and the least it must reach. JS00001's page (atrial fibrillation): 0.69 against -0.16; the
#: Challenge generator's sequential pages: 0.48-0.98 sequential against 0.10-0.13 (00407, 00280, 00004).
MARGIN = 0.3
MIN_CORRELATION = 0.5
#: Shortest stretch (s) of a column and of the rhythm strip to compare.
MIN_OVERLAP_S = 1.0


def _filled(values: np.ndarray) -> np.ndarray | None:
    """``values`` with interior NaN gaps linearly interpolated; None when under half is finite."""
    ok = np.isfinite(values)
    if ok.sum() < max(8, 0.5 * values.size):
        return None
    idx = np.arange(values.size)
    return np.interp(idx, idx[ok], values[ok])


def _normalised(e: np.ndarray) -> np.ndarray:
    e = e - e.mean()
    n = float(np.linalg.norm(e))
    return e / n if n > 0 else e


def _column_envelopes(traces: list[LeadTrace], fs: float) -> dict[int, tuple[int, np.ndarray]]:
    """Per column index > 0: (first sample as placed, summed normalised QRS envelope of its leads)."""
    out: dict[int, tuple[int, np.ndarray]] = {}
    for t in traces:
        if t.box.rhythm or t.box.column == 0 or t.values_mv.size < MIN_OVERLAP_S * fs:
            continue
        v = _filled(t.values_mv)
        if v is None:
            continue
        env = _normalised(qrs_envelope(v, fs))
        if t.box.column in out:
            start, acc = out[t.box.column]
            n = min(acc.size, env.size)
            out[t.box.column] = (start, acc[:n] + env[:n])
        else:
            out[t.box.column] = (t.start_sample, env)
    return out


def _correlation(strip_env: np.ndarray, col_env: np.ndarray, start: int) -> float | None:
    end = start + col_env.size
    if start < 0 or end > strip_env.size:
        return None
    a, b = _normalised(strip_env[start:end]), _normalised(col_env)
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / den) if den > 0 else None


def retime_columns(traces: list[LeadTrace], fs: float) -> str | None:
    """Move the columns after the first to the recording's start (in place: ``start_sample`` and the boxes'
    ``t0``/``t1``) when the rhythm strip says they show it (see the module docstring). Returns a warning line
    when it did, else None."""
    strips = [t for t in traces if t.box.rhythm and t.values_mv.size]
    if not strips:
        return None
    strip = max(strips, key=lambda t: np.isfinite(t.values_mv).sum())
    v = _filled(strip.values_mv)
    if v is None or strip.start_sample != 0:
        return None
    strip_env = qrs_envelope(v, fs)
    cols = _column_envelopes(traces, fs)
    seq, alt = [], []
    for start, env in cols.values():
        r_seq = _correlation(strip_env, env, start)
        r_alt = _correlation(strip_env, env, 0)
        if r_seq is None or r_alt is None:
            continue
        seq.append(r_seq)
        alt.append(r_alt)
    if not seq:
        return None
    r_seq, r_alt = float(np.mean(seq)), float(np.mean(alt))
    log.debug("column timing: sequential r=%.2f, all from the start r=%.2f", r_seq, r_alt)
    if not (r_alt >= MIN_CORRELATION and r_alt >= r_seq + MARGIN):
        return None
    for t in traces:
        if t.box.rhythm or t.box.column == 0:
            continue
        shift_s = t.box.t0
        t.start_sample = max(0, t.start_sample - int(round(shift_s * fs)))
        t.box.t0, t.box.t1 = t.box.t0 - shift_s, t.box.t1 - shift_s
    return (
        f"every column shows the recording from its start (QRS timing against the rhythm strip: r={r_alt:.2f}, "
        f"sequential columns r={r_seq:.2f})"
    )
