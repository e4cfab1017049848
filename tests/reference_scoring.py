"""Independent, straightforward numpy pieces of the official scorer, shared by the scoring tests."""

from __future__ import annotations

import numpy as np


def gaussian_smooth(picture: np.ndarray, sigma: float = 0.5) -> np.ndarray:
    """Separable Gaussian smoothing, radius int(4 sigma + 0.5), symmetric (half-sample) edges."""
    radius = int(4 * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    out = picture
    for axis in (0, 1):
        padded = np.pad(out, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)], mode='symmetric')
        n = out.shape[axis]
        out = sum(taps[k] * np.take(padded, np.arange(k, k + n), axis=axis) for k in range(2 * radius + 1))
    return out


def snr_reference(x_ref: np.ndarray, x_est: np.ndarray) -> float:
    """Straightforward SNR: finite-in-both samples, times the covered fraction of the reference; 0 dB if none."""
    n = max(len(x_ref), len(x_est))
    r = np.full(n, np.nan)
    e = np.full(n, np.nan)
    r[: len(x_ref)] = x_ref
    e[: len(x_est)] = x_est
    finite_ref = np.isfinite(r)
    both = finite_ref & np.isfinite(e)
    if not finite_ref.any():
        return float('nan')
    if not both.any():
        return 0.0
    power_signal = np.mean(r[both] ** 2)
    power_noise = np.mean((r[both] - e[both]) ** 2)
    if power_noise == 0:
        return float('inf')
    return 10 * np.log10(power_signal / power_noise) * both.sum() / finite_ref.sum()


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    """10 log10(sum ref^2 / sum err^2) over samples finite in both (dB)."""
    ok = np.isfinite(ref) & np.isfinite(est)
    return float(10 * np.log10(np.sum(ref[ok] ** 2) / max(np.sum((ref[ok] - est[ok]) ** 2), 1e-12)))
