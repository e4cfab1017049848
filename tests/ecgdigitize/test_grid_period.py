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


def _lines(n: int, period: float) -> np.ndarray:
    """A profile of 2-px lines every ``period`` px (anti-aliased positions)."""
    x = np.arange(n, dtype=np.float64)
    d = np.abs((x / period) - np.round(x / period)) * period
    return np.clip(1.5 - d, 0.0, 1.0)


def test_axes_a_sixth_apart_are_reconciled():
    """A rectified letter page (2200 x 1700 px, 7.87 px/mm, 5 mm lines only) whose x period was read at 5/6 of
    its value: the grid is square, so the axis that makes a letter-size page is used for both."""
    from ecgdigitize.scale import estimate_scale

    true = 7.874
    grid = np.maximum(_lines(1700, 5 * true)[:, None], _lines(2200, 5 * true * 5 / 6)[None, :]).astype(np.float32)
    sc = estimate_scale(grid * 0.3)
    assert sc.px_per_mm_x == pytest.approx(sc.px_per_mm_y) and sc.px_per_mm_y == pytest.approx(true, rel=0.01)
    assert any("disagree" in w for w in sc.warnings)
    # a few percent of printer stretch is kept as it is
    stretched = np.maximum(_lines(1700, 5 * true)[:, None], _lines(2200, 5 * true * 1.03)[None, :]).astype(np.float32)
    sc = estimate_scale(stretched * 0.3)
    assert sc.px_per_mm_x == pytest.approx(true * 1.03, rel=0.01) and sc.px_per_mm_y == pytest.approx(true, rel=0.01)
