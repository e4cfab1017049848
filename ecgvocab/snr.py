"""Signal-to-noise ratio of a signal estimate against its reference, in dB."""

from __future__ import annotations

import numpy as np

#: Smallest signal and noise energy (mV^2 summed over samples) used in the ratio: a perfect estimate or an empty
#: reference gives a large finite number instead of a division by zero.
MIN_ENERGY: float = 1e-12


def _snr(ref: np.ndarray, est: np.ndarray) -> float:
    ok = np.isfinite(ref) & np.isfinite(est)
    noise = np.sum((ref[ok] - est[ok]) ** 2)
    return float(10 * np.log10(max(np.sum(ref[ok] ** 2), MIN_ENERGY) / max(noise, MIN_ENERGY)))


def snr_db(ref: np.ndarray, est: np.ndarray, per_lead: bool = False) -> float:
    """``10 log10(sum ref^2 / sum (ref - est)^2)`` in dB over the samples finite in both.

    ``per_lead=False``: pooled over all samples of ``ref`` and ``est`` (same shape, any). ``per_lead=True``
    (``(num_samples, num_leads)``): each lead's SNR times the fraction of its finite reference samples that
    ``est`` covers (0 dB for an uncovered lead), averaged over the leads with a finite reference sample (0 dB
    when none has); this is the Challenge's SNR without its time-shift search.
    """
    ref = np.asarray(ref, dtype=np.float64)
    est = np.asarray(est, dtype=np.float64)
    if ref.shape != est.shape:
        raise ValueError(f"reference {ref.shape} and estimate {est.shape} differ in shape")
    if not per_lead:
        return _snr(ref, est)
    values = []
    for j in range(ref.shape[1]):
        finite_ref = np.isfinite(ref[:, j])
        ok = finite_ref & np.isfinite(est[:, j])
        if not finite_ref.any():
            continue
        values.append(_snr(ref[ok, j], est[ok, j]) * ok.sum() / finite_ref.sum() if ok.any() else 0.0)
    return float(np.mean(values)) if values else 0.0
