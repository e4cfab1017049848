"""Grid period read from a projection profile: periods that are no whole number of pixels."""
from __future__ import annotations

import numpy as np
import pytest

from ecgdigitize.scale import grid_period


def _profile(px_per_mm: float, length_px: int = 1100, minor: float = 0.04) -> np.ndarray:
    """Column profile of a grid with 5 mm major lines (1 px, strength 1) and faint 1 mm minor lines, drawn at
    the nearest pixel as a renderer does (the phase of a non-integer period repeats every few periods)."""
    p = np.zeros(length_px)
    k = 0
    while k * px_per_mm < length_px - 1:
        x = int(round(k * px_per_mm))
        p[x] = max(p[x], 1.0 if k % 5 == 0 else minor)
        k += 1
    return p


@pytest.mark.parametrize("px_per_mm", [3.937, 4.1, 5.91, 7.874])
def test_aliased_major_period_gives_the_fundamental(px_per_mm):
    """100 DPI (3.937 px/mm: 5 mm = 19.69 px) peaks strongest at three periods (59 px); the scale is still
    the fundamental, not 1/3 of it."""
    got, strength = grid_period(_profile(px_per_mm))
    assert got is not None and strength > 0.2
    assert got == pytest.approx(px_per_mm, rel=0.01)
