"""Page orientation: grid line families, rotation/keystone rectification, 90/180 degree turns.

Angles of the two line families are found by a shear projection search: for a candidate angle the
grid map is projected along lines of that slope and the sharpness of the projection (sum of squared
bin mass) peaks when the projection direction follows the grid lines. Measuring the horizontal family
in the top and bottom thirds and the vertical family in the left and right thirds gives four lines
whose intersections form a quadrilateral; mapping it to an axis-aligned rectangle removes rotation and
keystone (perspective). Conventions: image x to the right, y down; a horizontal-family angle
``alpha`` (degrees) means lines ``y = y0 + tan(alpha) * x``; a vertical-family angle ``beta`` means
lines ``x = x0 + tan(beta) * y``. For a pure rotation of the page, ``beta == -alpha``.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

log = logging.getLogger(__name__)


@dataclass
class Orientation:
    """Geometry correction found for a page.

    angle_deg: rotation removed (degrees, the horizontal family's slope angle; positive = lines going
      down to the right in the input image).
    quarter_turns: number of 90-degree counter-clockwise turns applied first (0..3).
    homography: 3x3 matrix mapping input-image pixel coordinates (after the quarter turns) to the
      rectified image, at the working resolution.
    keystone: True when a perspective (non-parallel families) correction was applied.
    """

    angle_deg: float = 0.0
    vertical_angle_deg: float = 0.0
    quarter_turns: int = 0
    keystone: bool = False
    homography: np.ndarray = field(default_factory=lambda: np.eye(3))
    output_shape: tuple[int, int] = (0, 0)
    family_angles: dict[str, float] = field(default_factory=dict)
    source: str = "grid"
    confidence: float = 0.0
    warnings: list[str] = field(default_factory=list)


def _points(weight_map: np.ndarray, region: tuple[slice, slice] | None = None, max_points: int = 250_000,
            thresh: float = 0.15) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates (x, y) and weights of the map's significant pixels, optionally in a region."""
    m = weight_map if region is None else weight_map[region]
    ys, xs = np.nonzero(m > thresh)
    w = m[ys, xs].astype(np.float64)
    if region is not None:
        ys = ys + (region[0].start or 0)
        xs = xs + (region[1].start or 0)
    if xs.size > max_points:
        step = int(math.ceil(xs.size / max_points))
        xs, ys, w = xs[::step], ys[::step], w[::step]
    return xs.astype(np.float64), ys.astype(np.float64), w


def _projection_score(u: np.ndarray, v: np.ndarray, w: np.ndarray, angles_deg: np.ndarray,
                      smooth: int = 0) -> np.ndarray:
    """Sharpness of the projection of points along lines ``v = v0 + tan(a) * u`` for each angle."""
    scores = np.zeros(len(angles_deg))
    if u.size == 0:
        return scores
    uc = u - u.mean()
    for i, a in enumerate(angles_deg):
        s = v - math.tan(math.radians(a)) * uc
        s = s - s.min()
        hist = np.bincount(s.astype(np.int64), weights=w)
        if smooth > 1:
            hist = np.convolve(hist, np.ones(smooth) / smooth, mode="same")
        scores[i] = float(np.dot(hist, hist))
    return scores


def family_angle(u: np.ndarray, v: np.ndarray, w: np.ndarray, max_deg: float = 10.0,
                 around: float | None = None) -> tuple[float, float]:
    """Angle (degrees) of the dominant line family ``v = v0 + tan(a) u`` and a peak contrast score."""
    if u.size < 50:
        return 0.0, 0.0
    if around is None:
        coarse = np.arange(-max_deg, max_deg + 1e-9, 0.25)
        sc = _projection_score(u, v, w, coarse, smooth=3)
        a0 = float(coarse[int(np.argmax(sc))])
        contrast = float(sc.max() / max(np.median(sc), 1e-12))
    else:
        a0, contrast = float(around), 0.0
    fine = np.arange(a0 - 0.3, a0 + 0.3 + 1e-9, 0.02)
    sf = _projection_score(u, v, w, fine)
    i = int(np.argmax(sf))
    a = float(fine[i])
    if 0 < i < len(fine) - 1:
        y0, y1, y2 = sf[i - 1], sf[i], sf[i + 1]
        den = y0 - 2 * y1 + y2
        if den < 0:
            a += 0.02 * 0.5 * (y0 - y2) / den
    if around is not None:
        contrast = float(sf.max() / max(sf.min(), 1e-12))
    return a, contrast


def _line_intersection(h: tuple[float, float, float], vline: tuple[float, float, float]) -> tuple[float, float]:
    """Intersection of ``y = yh + t_h (x - xh)`` (h = (xh, yh, t_h)) and ``x = xv + t_v (y - yv)``."""
    xh, yh, th = h
    xv, yv, tv = vline
    # x = xv + tv*(yh + th*(x - xh) - yv)  ->  x (1 - tv th) = xv + tv (yh - th xh - yv)
    x = (xv + tv * (yh - th * xh - yv)) / (1.0 - tv * th)
    y = yh + th * (x - xh)
    return x, y


def estimate_orientation(grid_map: np.ndarray, trace_prob: np.ndarray, max_deg: float = 10.0,
                         keystone_tol_deg: float = 0.35) -> Orientation:
    """Find rotation (and keystone) of a page from its grid map (H, W) (falls back to the trace map).

    Maps are at the geometry working resolution; the homography in the result is in those pixels.
    """
    h, w = grid_map.shape
    warnings: list[str] = []
    source = "grid"
    gx, gy, gw = _points(grid_map, thresh=0.08)
    if gx.size < 0.002 * h * w:
        source = "trace"
        gx, gy, gw = _points(trace_prob, thresh=0.5)
    if gx.size < 100:
        return Orientation(output_shape=(h, w), source="none", warnings=["no grid or trace found for orientation"])
    alpha, c_h = family_angle(gx, gy, gw, max_deg)
    fam = {"horizontal": alpha, "horizontal_contrast": c_h}
    beta = -alpha
    keystone = False
    H = None
    if source == "grid":
        beta, c_v = family_angle(gy, gx, gw, max_deg, around=-alpha)
        beta_free, c_vf = family_angle(gy, gx, gw, max_deg)
        if c_vf > 0 and abs(beta_free + alpha) > 1.0:
            beta = beta_free
        fam["vertical"] = beta
        # local angles for keystone
        t3, b3 = slice(0, h // 3), slice(h - h // 3, h)
        l3, r3 = slice(0, w // 3), slice(w - w // 3, w)
        full = slice(0, None)
        sub: dict[str, float] = {}
        for name, region, swap, ref in (("top", (t3, full), False, alpha), ("bottom", (b3, full), False, alpha),
                                        ("left", (full, l3), True, beta), ("right", (full, r3), True, beta)):
            x, y, ww = _points(grid_map, region, thresh=0.08)
            if x.size < 200:
                sub = {}
                break
            a, _ = (family_angle(y, x, ww, max_deg, around=ref) if swap else family_angle(x, y, ww, max_deg, around=ref))
            sub[name] = a
        fam.update(sub)
        if sub and (abs(sub["top"] - sub["bottom"]) > keystone_tol_deg
                    or abs(sub["left"] - sub["right"]) > keystone_tol_deg
                    or abs(alpha + beta) > keystone_tol_deg):
            keystone = True
            xc, yc = w / 2.0, h / 2.0
            ht = (xc, h / 6.0, math.tan(math.radians(sub["top"])))
            hb = (xc, h - h / 6.0, math.tan(math.radians(sub["bottom"])))
            vl = (w / 6.0, yc, math.tan(math.radians(sub["left"])))
            vr = (w - w / 6.0, yc, math.tan(math.radians(sub["right"])))
            quad = np.array([_line_intersection(ht, vl), _line_intersection(ht, vr),
                             _line_intersection(hb, vr), _line_intersection(hb, vl)], np.float32)
            top_len = np.linalg.norm(quad[1] - quad[0])
            bot_len = np.linalg.norm(quad[2] - quad[3])
            left_len = np.linalg.norm(quad[3] - quad[0])
            right_len = np.linalg.norm(quad[2] - quad[1])
            rw, rh = 0.5 * (top_len + bot_len), 0.5 * (left_len + right_len)
            cx, cy = quad[:, 0].mean(), quad[:, 1].mean()
            rect = np.array([[cx - rw / 2, cy - rh / 2], [cx + rw / 2, cy - rh / 2], [cx + rw / 2, cy + rh / 2],
                             [cx - rw / 2, cy + rh / 2]], np.float32)
            H = cv2.getPerspectiveTransform(quad, rect).astype(np.float64)
    if H is None:
        ang = alpha if source != "grid" else float(np.mean([alpha, -beta]))
        R = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), ang, 1.0)
        H = np.vstack([R, [0.0, 0.0, 1.0]])
    else:
        ang = alpha
    if abs(alpha) >= max_deg - 0.3:
        warnings.append(f"rotation search hit its limit ({alpha:.1f} deg)")
    conf = float(np.clip((c_h - 1.0) / 2.0, 0.0, 1.0))
    return Orientation(angle_deg=float(ang), vertical_angle_deg=float(beta), keystone=keystone,
                       homography=H, output_shape=(h, w), family_angles=fam, source=source,
                       confidence=conf, warnings=warnings)


def scale_homography(H: np.ndarray, factor: float) -> np.ndarray:
    """Homography for images scaled by ``factor`` (new px per old px) on both sides."""
    S = np.diag([factor, factor, 1.0])
    return S @ H @ np.linalg.inv(S)


def warp(image: np.ndarray, H: np.ndarray, shape: tuple[int, int], border: float | tuple = 0,
         interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Apply homography ``H`` (input -> output pixels) producing an output of ``shape`` (H, W)."""
    if np.allclose(H, np.eye(3)):
        return image
    hh, ww = shape
    if np.allclose(H[2], [0, 0, 1]):
        return cv2.warpAffine(image, H[:2], (ww, hh), flags=interpolation, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=border)
    return cv2.warpPerspective(image, H, (ww, hh), flags=interpolation, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=border)


def rot90_image(arr: np.ndarray, k: int) -> np.ndarray:
    """Rotate an (H, W[, C]) array by k quarter turns counter-clockwise (np.rot90 on the first 2 axes)."""
    k = k % 4
    return np.ascontiguousarray(np.rot90(arr, k, axes=(0, 1))) if k else arr


def rows_are_horizontal(trace_prob: np.ndarray) -> float:
    """Evidence (log ratio) that trace rows run horizontally: peakiness of the row profile versus the
    column profile of the trace map. Positive = horizontal rows; strongly negative = page turned 90."""
    p = trace_prob.astype(np.float32)
    if p.sum() <= 0:
        return 0.0
    def peakiness(profile: np.ndarray) -> float:
        k = max(3, profile.size // 100)
        sm = np.convolve(profile, np.ones(k) / k, mode="same")
        m = sm.mean()
        return float(sm.std() / max(m, 1e-9))
    return math.log(max(peakiness(p.sum(axis=1)), 1e-6) / max(peakiness(p.sum(axis=0)), 1e-6))
