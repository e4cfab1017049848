"""Perspective (keystone) rectification from the vanishing points of the grid's two line families."""

from __future__ import annotations

import cv2
import numpy as np

from ecgdigitize.orientation import (
    TileAngle,
    estimate_orientation,
    projective_rectification,
    tile_angles,
    vanishing_point,
)


def _grid_map(h: int = 900, w: int = 1200, step: int = 8) -> np.ndarray:
    """(H, W) float32 map of 1-px grid lines every ``step`` px, bolder every 5th (as the 1 mm / 5 mm grid)."""
    g = np.zeros((h, w), np.float32)
    g[::step] = 0.5
    g[:, ::step] = 0.5
    g[:: 5 * step] = 1.0
    g[:, :: 5 * step] = 1.0
    return g


def _photographed(g: np.ndarray, corner_shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The map seen in perspective: corners moved by ``corner_shift`` (4, 2) px; returns (map, homography)."""
    h, w = g.shape
    src = np.float32([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
    H = cv2.getPerspectiveTransform(src, (src + corner_shift).astype(np.float32))
    return cv2.warpPerspective(g, H, (w, h), flags=cv2.INTER_LINEAR), H


def _angles(g: np.ndarray) -> np.ndarray:
    return np.array([t.angle_deg for t in tile_angles(g)])


def test_keystone_is_removed():
    g = _grid_map()
    shift = np.array([[40, 30], [-50, 10], [-20, -40], [30, -20]], np.float64)
    seen, H_true = _photographed(g, shift)
    assert np.ptp(_angles(seen)) > 2.0  # the families converge: tile angles differ by degrees
    o = estimate_orientation(seen, np.zeros_like(seen))
    assert o.keystone
    # page lines through the rectification: rows keep one y within 1 px over 1000 px, columns one x within 3 px
    # over 700 px (0.25 degrees at the page's left and right edges, where the tiles' fit is extrapolated)
    composite = o.homography @ H_true
    h, w = g.shape
    for y in (100, 450, 800):
        pts = cv2.perspectiveTransform(np.float32([[[x, y] for x in range(100, w - 100, 50)]]), composite)[0]
        assert np.ptp(pts[:, 1]) < 1.0, pts[:, 1]
    for x in (100, 600, 1100):
        pts = cv2.perspectiveTransform(np.float32([[[x, y] for y in range(100, h - 100, 50)]]), composite)[0]
        assert np.ptp(pts[:, 0]) < 3.0, pts[:, 0]


def test_plain_rotation_is_no_keystone():
    g = _grid_map()
    h, w = g.shape
    M = cv2.getRotationMatrix2D((w / 2, h / 2), 2.0, 1.0)
    o = estimate_orientation(cv2.warpAffine(g, M, (w, h)), np.zeros_like(g))
    assert not o.keystone
    assert abs(o.angle_deg + 2.0) < 0.1


def test_vanishing_point_of_converging_lines():
    centre, unit = (0.0, 0.0), 100.0
    vp = np.array([1000.0, 50.0])  # pixels
    tiles = []
    for x, y in [(-60, -40), (60, -40), (-60, 40), (60, 40), (0, 0)]:
        d = vp - (x, y)
        tiles.append(TileAngle(x, y, "horizontal", float(np.degrees(np.arctan2(d[1], d[0]))), 1.0))
    v = vanishing_point(tiles, centre, unit)
    assert v is not None
    assert np.allclose(v[:2] / v[2] * unit, vp, rtol=1e-3)
    noisy = [TileAngle(t.x, t.y, t.family, a, 1.0) for t, a in zip(tiles, [3.0, -4.0, 5.0, -2.0, 0.5])]
    assert vanishing_point(noisy, centre, unit) is None  # no consistent meeting point


def test_rectification_sends_both_points_to_infinity():
    vh, vv = np.array([10.0, 0.5, 1.0]), np.array([-0.3, 8.0, 1.0])
    H = projective_rectification(vh, vv, (0.0, 0.0), 1.0)
    assert H is not None
    img_h, img_v = H @ vh, H @ vv
    assert abs(img_h[2]) < 1e-9 * np.abs(img_h).max() and abs(img_h[1]) < 1e-9 * np.abs(img_h).max()
    assert abs(img_v[2]) < 1e-9 * np.abs(img_v).max() and abs(img_v[0]) < 1e-9 * np.abs(img_v).max()
    assert projective_rectification(vh, vh, (0.0, 0.0), 1.0) is None  # one family only


def test_tiles_overrule_a_whole_page_search_that_locked_on_noise(monkeypatch):
    """A noisy page where the whole-page projection peaks at the wrong angle: the tiles, which agree with each
    other, give the rotation (the ecg-image-kit rotation + noise case: whole page -5.2 deg, true -9.0)."""
    from ecgdigitize import orientation as ori

    g = _grid_map()
    h, w = g.shape
    rotated = cv2.warpAffine(g, cv2.getRotationMatrix2D((w / 2, h / 2), 9.0, 1.0), (w, h))
    real = ori.family_angle
    whole_page = len(ori._points(rotated, thresh=0.08)[0])

    def noisy_whole_page_search(u, v, wt, max_deg=10.0, around=None):
        if around is None and u.size == whole_page:  # the free searches over the whole page (not the tiles')
            return -5.2, 1.02
        return real(u, v, wt, max_deg, around)

    monkeypatch.setattr(ori, "family_angle", noisy_whole_page_search)
    o = ori.estimate_orientation(rotated, np.zeros_like(g))
    assert not o.keystone and abs(o.angle_deg + 9.0) < 0.15
    assert any("tiles" in m for m in o.warnings)
    monkeypatch.setattr(ori, "family_angle", real)
    plain = ori.estimate_orientation(rotated, np.zeros_like(g))  # an honest search is left alone
    assert abs(plain.angle_deg + 9.0) < 0.15 and not any("tiles" in m for m in plain.warnings)


def test_tiles_overrule_a_whole_page_vertical_search_that_locked_on_noise(monkeypatch):
    """The vertical family's free whole-page search peaks off the grid while the horizontal one is right (a rotated,
    noisy generator page: horizontal -3.00, vertical 1.94 where every tile said 3.00, read as a rotation of -2.47
    degrees that left every row sloping 0.43 degrees): the tiles give both families."""
    from ecgdigitize import orientation as ori

    g = _grid_map()
    h, w = g.shape
    rotated = cv2.warpAffine(g, cv2.getRotationMatrix2D((w / 2, h / 2), 3.0, 1.0), (w, h))
    real = ori.family_angle
    whole_page = len(ori._points(rotated, thresh=0.08)[0])
    free_searches = []

    def noisy_vertical_search(u, v, wt, max_deg=10.0, around=None):
        if around is None and u.size == whole_page:
            free_searches.append(u)
            if len(free_searches) == 2:  # the second free whole-page search is the vertical family's
                return 1.94, 1.05
        return real(u, v, wt, max_deg, around)

    monkeypatch.setattr(ori, "family_angle", noisy_vertical_search)
    o = ori.estimate_orientation(rotated, np.zeros_like(g))
    assert len(free_searches) == 2
    assert not o.keystone and abs(o.angle_deg + 3.0) < 0.1 and abs(o.vertical_angle_deg - 3.0) < 0.1
    assert any("tiles" in m for m in o.warnings)


def _curled(g: np.ndarray, amplitude_px: float = 2.0, waves: float = 3.0) -> np.ndarray:
    """The map on paper that curls: every point moved up or down by a slow wave along x (``waves`` periods across the
    page), so the horizontal lines' angle changes by about a degree from tile to tile."""
    h, w = g.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    dy = amplitude_px * np.sin(2 * np.pi * waves * xs / w + 0.7 * ys / h)
    return cv2.remap(g, xs, (ys + dy).astype(np.float32), cv2.INTER_LINEAR)


def test_strong_keystone_on_curled_paper_is_removed():
    """A page photographed from below its bottom edge (its vertical lines lean up to 10 degrees at the sides) on
    curling paper (its horizontal lines meet in no consistent point): the converging family alone gives the
    keystone, the other is taken as parallel; the columns come out upright."""
    g = _curled(_grid_map())
    h, w = g.shape
    shift = np.array([[130, 0], [-130, 0], [0, 0], [0, 0]], np.float64)  # the top edge 260 px shorter
    seen, H_true = _photographed(g, shift)
    vertical = [t.angle_deg for t in tile_angles(seen) if t.family == "vertical"]
    assert np.ptp(vertical) > 10.0
    o = estimate_orientation(seen, np.zeros_like(seen))
    assert o.keystone
    composite = o.homography @ H_true
    for x in (100, 600, 1100):
        pts = cv2.perspectiveTransform(np.float32([[[x, y] for y in range(100, h - 100, 50)]]), composite)[0]
        assert np.ptp(pts[:, 0]) < 12.0, pts[:, 0]  # 73 px at x = 100 and 1100 from the page's thirds alone


def test_scattered_family_is_parallel_only_beside_a_strong_keystone():
    """The missing family is set at infinity along its tiles' median angle only where the other family converges by
    degrees across the page; beside a nearly parallel family nothing is made up."""
    from ecgdigitize.orientation import _with_parallel_family

    centre, unit, w, h = (600.0, 450.0), 600.0, 1200, 900
    horizontal = [TileAngle(x, y, "horizontal", a, 1.0) for (x, y), a in zip(_TILES, [0.4, -0.6, 1.2, 0.1, 0.9])]
    converging = np.array([0.0, -4.0, 1.0])  # far below the page: vertical lines lean by about 8 degrees at its sides
    parallel = np.array([0.02, 1.0, 0.0])
    out = _with_parallel_family({"horizontal": None, "vertical": converging}, horizontal, w, h, centre, unit)
    assert out["horizontal"] is not None and out["horizontal"][2] == 0.0
    assert abs(np.degrees(np.arctan2(out["horizontal"][1], out["horizontal"][0])) - 0.4) < 1e-6  # weighted median
    kept = _with_parallel_family({"horizontal": None, "vertical": parallel}, horizontal, w, h, centre, unit)
    assert kept["horizontal"] is None


_TILES = [(150, 150), (450, 150), (750, 450), (1050, 450), (300, 750), (900, 750)]


def test_converging_family_with_curl_still_meets():
    """Tiles of a strongly converging family, each up to a degree off (curl), still meet in a point; tiles
    scattered by a few degrees without converging do not."""
    centre, unit = (600.0, 450.0), 600.0
    vp = np.array([600.0, 450.0 + 3000.0])  # pixels, below the page
    rng = np.random.default_rng(3)
    tiles, scattered = [], []
    for x in range(100, 1200, 200):
        for y in (150, 450, 750):
            d = vp - (x, y)
            a = float(np.degrees(np.arctan2(d[0], d[1]))) + float(rng.uniform(-1.0, 1.0))
            tiles.append(TileAngle(x, y, "vertical", a, 1.0))
            scattered.append(TileAngle(x, y, "vertical", float(rng.uniform(-2.0, 2.0)), 1.0))
    assert np.ptp([t.angle_deg for t in tiles]) > 15.0
    assert vanishing_point(tiles, centre, unit) is not None
    assert vanishing_point(scattered, centre, unit) is None
