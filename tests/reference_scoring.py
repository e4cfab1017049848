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
