"""Image distortions for rendered pages: scan/photo/print artefacts with exact ground-truth bookkeeping.

Each distortion is a function of the page and explicit parameters; parameters not given are drawn from
the rng, and every parameter actually used is recorded in ``sidecar["distortions"]`` as
``{"name": ..., **params}`` so that a distortion can be replayed exactly with :func:`apply_distortions`.

Geometric distortions (rotation, perspective, scanner_skew, crop_pad) are projective maps of the whole
image; they compose into ``sidecar["homography"]``, a 3x3 list mapping undistorted pixel coordinates
(x, y, 1) to distorted ones.  The page keeps its pixel size.  Masks are warped by the same maps with
nearest-neighbour interpolation.  The wrinkle displacement is a small local field (<= 1.5 px by default)
that is not part of the homography; its parameters are recorded.
"""

from __future__ import annotations

import io
import logging
import math
from typing import Any, Callable, Sequence

import cv2
import numpy as np
from PIL import Image

from ecgrender.page import CLASS_BACKGROUND, CLASS_TEXT, RenderedPage

logger = logging.getLogger(__name__)

Params = dict[str, Any]


class _State:
    """Working copy of a page: float32 image (0..255), masks, pending homography."""

    def __init__(self, page: RenderedPage) -> None:
        self.image = page.image.astype(np.float32)
        self.lead_mask = page.lead_mask.copy()
        self.class_mask = page.class_mask.copy()
        self.h, self.w = page.image.shape[:2]
        self.H = np.asarray(page.sidecar.get("homography", np.eye(3)), np.float64).reshape(3, 3)
        self.pending = np.eye(3)
        self.fill = (255.0, 255.0, 255.0)

    def flush(self) -> None:
        """Warp image and masks by the pending homography (one resampling for consecutive ones)."""
        if np.allclose(self.pending, np.eye(3)):
            return
        size = (self.w, self.h)
        self.image = cv2.warpPerspective(
            self.image,
            self.pending,
            size,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=self.fill,
        )
        self.lead_mask = cv2.warpPerspective(
            self.lead_mask, self.pending, size, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
        self.class_mask = cv2.warpPerspective(
            self.class_mask,
            self.pending,
            size,
            flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=CLASS_BACKGROUND,
        )
        self.H = self.pending @ self.H
        self.H /= self.H[2, 2]
        self.pending = np.eye(3)

    def compose(self, M: np.ndarray) -> None:
        self.pending = M @ self.pending


def _get(params: Params, key: str, draw: Callable[[], Any]) -> Any:
    """Use params[key] if given, else draw it and store it back (so it gets recorded)."""
    if key not in params or params[key] is None:
        params[key] = draw()
    return params[key]


def _fill_value(params: Params, rng: np.random.Generator) -> tuple[float, float, float]:
    fill = _get(params, "fill", lambda: [255, 255, 255])
    return tuple(float(v) for v in fill)  # type: ignore[return-value]


def _centre_rotation(
    w: int, h: int, angle_deg: float, scale: float = 1.0, tx: float = 0.0, ty: float = 0.0
) -> np.ndarray:
    M = np.eye(3)
    M[:2] = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle_deg, scale)
    M[0, 2] += tx
    M[1, 2] += ty
    return M


# ---------------------------------------------------------------------------------------------------- geometric


def rotation(st: _State, p: Params, rng: np.random.Generator) -> None:
    """Rotate about the image centre by ``angle_deg`` (+-10 degrees; positive = counter-clockwise)."""
    angle = float(_get(p, "angle_deg", lambda: float(rng.uniform(-10, 10))))
    st.fill = _fill_value(p, rng)
    st.compose(_centre_rotation(st.w, st.h, angle))


def scanner_skew(st: _State, p: Params, rng: np.random.Generator) -> None:
    """Small rotation (+-2 degrees) plus shift (pixels) as from a flatbed scanner."""
    angle = float(_get(p, "angle_deg", lambda: float(rng.uniform(-2, 2))))
    diag = math.hypot(st.w, st.h)
    tx = float(_get(p, "shift_x_px", lambda: float(rng.uniform(-0.01, 0.01) * diag)))
    ty = float(_get(p, "shift_y_px", lambda: float(rng.uniform(-0.01, 0.01) * diag)))
    st.fill = _fill_value(p, rng)
    st.compose(_centre_rotation(st.w, st.h, angle, 1.0, tx, ty))


def perspective(st: _State, p: Params, rng: np.random.Generator) -> None:
    """Photographed page: each corner moved by up to ``max_shift`` of the image size (keystone)."""
    m = float(_get(p, "max_shift", lambda: float(rng.uniform(0.02, 0.08))))
    offsets = _get(p, "corner_offsets", lambda: (rng.uniform(-1, 1, size=(4, 2)) * m).round(5).tolist())
    w, h = st.w, st.h
    src = np.float32([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
    off = np.asarray(offsets, np.float64).reshape(4, 2) * [w, h]
    # push corners inwards or outwards consistently so the page stays mostly in view
    dst = (src + off).astype(np.float32)
    st.fill = _fill_value(p, rng)
    st.compose(cv2.getPerspectiveTransform(src, dst).astype(np.float64))


def crop_pad(st: _State, p: Params, rng: np.random.Generator) -> None:
    """Zoom about the centre by ``scale`` (> 1 crops, < 1 pads) and shift (pixels); size kept."""
    s = float(_get(p, "scale", lambda: float(rng.uniform(0.9, 1.08))))
    tx = float(_get(p, "shift_x_px", lambda: float(rng.uniform(-0.02, 0.02) * st.w)))
    ty = float(_get(p, "shift_y_px", lambda: float(rng.uniform(-0.02, 0.02) * st.h)))
    st.fill = _fill_value(p, rng)
    st.compose(_centre_rotation(st.w, st.h, 0.0, s, tx, ty))


# ---------------------------------------------------------------------------------------------------- photometric


def _smooth_field(h: int, w: int, seed: int, cells: int = 6) -> np.ndarray:
    """Smooth random field in [-1, 1] (H, W) float32 from a ``seed``."""
    r = np.random.default_rng(seed)
    gy = max(2, int(round(cells * h / max(h, w))) + 1)
    gx = max(2, int(round(cells * w / max(h, w))) + 1)
    small = r.uniform(-1, 1, size=(gy, gx)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(-1, 1)


def _coarse_grid(h: int, w: int, factor: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Full-resolution pixel coordinates (y, x) of a coarse grid whose bilinear resize covers (h, w)."""
    hs, ws = max(2, -(-h // factor)), max(2, -(-w // factor))
    ys = (np.arange(hs, dtype=np.float32) + 0.5) * (h / hs) - 0.5
    xs = (np.arange(ws, dtype=np.float32) + 0.5) * (w / ws) - 0.5
    return np.meshgrid(ys, xs, indexing="ij")


def _upsample(field: np.ndarray, h: int, w: int) -> np.ndarray:
    return cv2.resize(field.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)


def blur(st: _State, p: Params, rng: np.random.Generator) -> None:
    """Gaussian blur with ``sigma_px`` (pixels)."""
    sigma = float(_get(p, "sigma_px", lambda: float(rng.uniform(0.4, 1.6))))
    if sigma > 0:
        st.image = cv2.GaussianBlur(st.image, (0, 0), sigma)


def gaussian_noise(st: _State, p: Params, rng: np.random.Generator) -> None:
    """Additive Gaussian noise of standard deviation ``sigma`` (grey levels 0..255)."""
    sigma = float(_get(p, "sigma", lambda: float(rng.uniform(2, 12))))
    seed = int(_get(p, "seed", lambda: int(rng.integers(2**31))))
    noise = np.random.default_rng(seed).standard_normal((st.h, st.w, 1), dtype=np.float32) * sigma
    st.image += noise


def salt_pepper(st: _State, p: Params, rng: np.random.Generator) -> None:
    """Set a fraction ``amount`` of pixels to black or white (half each)."""
    amount = float(_get(p, "amount", lambda: float(rng.uniform(0.0005, 0.005))))
    seed = int(_get(p, "seed", lambda: int(rng.integers(2**31))))
    r = np.random.default_rng(seed)
    n = int(amount * st.h * st.w)
    ys, xs = r.integers(0, st.h, n), r.integers(0, st.w, n)
    vals = np.where(r.random(n) < 0.5, 0.0, 255.0).astype(np.float32)
    st.image[ys, xs] = vals[:, None]


def jpeg(st: _State, p: Params, rng: np.random.Generator) -> None:
    """Re-encode as JPEG at ``quality`` (PIL)."""
    q = int(_get(p, "quality", lambda: int(rng.integers(25, 95))))
    buf = io.BytesIO()
    Image.fromarray(np.clip(st.image + 0.5, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=q)
    buf.seek(0)
    st.image = np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32)


def brightness_contrast(st: _State, p: Params, rng: np.random.Generator) -> None:
    """out = (in - 128) * contrast + 128 + brightness, then colour temperature (+ warmer, - cooler)."""
    b = float(_get(p, "brightness", lambda: float(rng.uniform(-25, 20))))
    c = float(_get(p, "contrast", lambda: float(rng.uniform(0.75, 1.15))))
    t = float(_get(p, "temperature", lambda: float(rng.uniform(-0.12, 0.12))))
    st.image = (st.image - 128.0) * c + 128.0 + b
    st.image *= np.array([1.0 + t, 1.0, 1.0 - t], np.float32)


def lighting(st: _State, p: Params, rng: np.random.Generator) -> None:
    """Uneven illumination: linear gradient, vignette and an optional soft-edged shadow (multiplicative)."""
    ang = float(_get(p, "gradient_angle_deg", lambda: float(rng.uniform(0, 360))))
    g = float(_get(p, "gradient_strength", lambda: float(rng.uniform(0.05, 0.3))))
    v = float(_get(p, "vignette", lambda: float(rng.uniform(0.0, 0.3))))
    shadow = bool(_get(p, "shadow", lambda: bool(rng.random() < 0.5)))
    s_ang = float(_get(p, "shadow_angle_deg", lambda: float(rng.uniform(0, 360))))
    s_off = float(_get(p, "shadow_offset", lambda: float(rng.uniform(0.15, 0.45))))
    s_dark = float(_get(p, "shadow_darkness", lambda: float(rng.uniform(0.15, 0.45))))
    s_soft = float(_get(p, "shadow_softness", lambda: float(rng.uniform(0.01, 0.08))))
    yy, xx = _coarse_grid(st.h, st.w, 8)
    u = xx / st.w - 0.5
    w_ = yy / st.h - 0.5
    proj = u * math.cos(math.radians(ang)) + w_ * math.sin(math.radians(ang))
    field = 1.0 - g * (proj + 0.5)
    field *= 1.0 - v * (u * u + w_ * w_) * 2.0
    if shadow:
        d = u * math.cos(math.radians(s_ang)) + w_ * math.sin(math.radians(s_ang)) - (0.5 - s_off)
        field *= 1.0 - s_dark / (1.0 + np.exp(-d / max(s_soft, 1e-3)))
    st.image *= _upsample(field, st.h, st.w)[..., None]


def paper_texture(st: _State, p: Params, rng: np.random.Generator) -> None:
    """Paper tint (RGB multiplier), low-frequency blotches and fine grain."""
    tint = _get(p, "tint", lambda: [1.0, float(rng.uniform(0.96, 1.0)), float(rng.uniform(0.88, 0.99))])
    strength = float(_get(p, "blotch_strength", lambda: float(rng.uniform(0.01, 0.06))))
    grain = float(_get(p, "grain", lambda: float(rng.uniform(1.0, 5.0))))
    seed = int(_get(p, "seed", lambda: int(rng.integers(2**31))))
    field = 1.0 + strength * _smooth_field(st.h, st.w, seed, cells=8)
    r = np.random.default_rng(seed + 1)
    fine = cv2.GaussianBlur(r.standard_normal((st.h, st.w), dtype=np.float32), (0, 0), 0.8) * grain
    st.image = st.image * (field[..., None] * np.asarray(tint, np.float32)) + fine[..., None]


def bw(st: _State, p: Params, rng: np.random.Generator) -> None:
    """Black-and-white copy: greyscale (grid turns grey), optionally binarised at ``threshold``."""
    mode = str(_get(p, "mode", lambda: "binary" if rng.random() < 0.5 else "grey"))
    thr = float(_get(p, "threshold", lambda: float(rng.uniform(150, 215))))
    grey = st.image @ np.array([0.299, 0.587, 0.114], np.float32)
    if mode == "binary":
        grey = np.where(grey < thr, 0.0, 255.0).astype(np.float32)
    st.image = np.repeat(grey[..., None], 3, axis=2)


def wrinkles(st: _State, p: Params, rng: np.random.Generator) -> None:
    """Creases (dark/bright smooth lines with a small local displacement) and wrinkle shading.

    Each crease: a line through (cx, cy) px at ``angle_deg``; shading profile of width ``width_px``;
    displacement ``displacement_px`` (<= ~1.5 px) along its normal with a Gaussian profile.
    """
    n = int(_get(p, "num_creases", lambda: int(rng.integers(1, 5))))
    creases = _get(
        p,
        "creases",
        lambda: [
            {
                "cx": float(rng.uniform(0.1, 0.9) * st.w),
                "cy": float(rng.uniform(0.1, 0.9) * st.h),
                "angle_deg": float(rng.choice([0.0, 90.0]) + rng.uniform(-15, 15)),
                "width_px": float(rng.uniform(0.003, 0.012) * max(st.w, st.h)),
                "darkness": float(rng.uniform(0.05, 0.25)),
                "brightness": float(rng.uniform(0.0, 0.12)),
                "displacement_px": float(rng.uniform(-1.5, 1.5)),
            }
            for _ in range(n)
        ],
    )
    shade = float(_get(p, "shading_strength", lambda: float(rng.uniform(0.02, 0.08))))
    seed = int(_get(p, "shading_seed", lambda: int(rng.integers(2**31))))
    yy, xx = _coarse_grid(st.h, st.w, 4)
    field = 1.0 + shade * cv2.resize(
        _smooth_field(st.h, st.w, seed, cells=14), (xx.shape[1], xx.shape[0]), interpolation=cv2.INTER_AREA
    )
    dx = np.zeros(xx.shape, np.float32)
    dy = np.zeros(xx.shape, np.float32)
    for c in creases:
        a = math.radians(c["angle_deg"])
        nx, ny = -math.sin(a), math.cos(a)  # unit normal
        d = (xx - c["cx"]) * nx + (yy - c["cy"]) * ny
        wpx = max(c["width_px"], 0.5)
        prof = np.exp(-((d / wpx) ** 2))
        field *= 1.0 - c["darkness"] * prof + c["brightness"] * np.exp(-(((d - 1.5 * wpx) / wpx) ** 2))
        disp = c["displacement_px"] * np.exp(-((d / (3 * wpx)) ** 2))
        dx += disp * nx
        dy += disp * ny
    st.image *= _upsample(field, st.h, st.w)[..., None]
    if np.abs(dx).max() > 1e-3 or np.abs(dy).max() > 1e-3:
        gy, gx = np.mgrid[0 : st.h, 0 : st.w].astype(np.float32)
        mx = gx - _upsample(dx, st.h, st.w)  # output(x) = input(x - disp)
        my = gy - _upsample(dy, st.h, st.w)
        st.image = cv2.remap(st.image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        st.lead_mask = cv2.remap(st.lead_mask, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        st.class_mask = cv2.remap(
            st.class_mask, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )


#: pen colours of handwritten marks (RGB): blue and black ballpoint, red and green felt pen
PEN_COLOURS: tuple[tuple[int, int, int], ...] = ((20, 40, 150), (30, 30, 40), (170, 30, 40), (30, 110, 60))


def _pen_stroke(rng: np.random.Generator, w: int, h: int, kind: str) -> np.ndarray:
    """Points (N, 2) px of one handwritten mark: a cursive-like line of loops ("writing"), a loose circle
    around something ("circle"), or a tick/arrow-like pair of strokes ("tick")."""
    scale = min(w, h)
    cx, cy = rng.uniform(0.05, 0.95) * w, rng.uniform(0.05, 0.95) * h
    if kind == "writing":  # a trochoid: loops of letter height marching along a slanted baseline
        n_loops = int(rng.integers(3, 14))
        letter = rng.uniform(0.008, 0.02) * scale
        t = np.linspace(0, 2 * math.pi * n_loops, 40 * n_loops)
        x = letter * (0.55 * t / math.pi + 0.5 * np.cos(t + rng.uniform(0, 6.3)))
        y = letter * (0.8 * np.sin(t) + 0.15 * np.sin(0.37 * t))
        slant = rng.uniform(-0.15, 0.15)
        pts = np.stack([cx + x + slant * y, cy + y + slant * x], axis=1)
    elif kind == "circle":
        r = rng.uniform(0.02, 0.08) * scale
        t = np.linspace(0, 2 * math.pi * rng.uniform(1.0, 1.3), 200)
        wobble = 1.0 + 0.08 * np.sin(3 * t + rng.uniform(0, 6.3))
        pts = np.stack([cx + r * rng.uniform(0.8, 1.6) * wobble * np.cos(t), cy + r * wobble * np.sin(t)], axis=1)
    else:
        a = rng.uniform(0.01, 0.04) * scale
        pts = np.array([[cx - a * 0.4, cy - a * 0.3], [cx, cy + a * 0.2], [cx + a, cy - a]])
    return pts


def pen_marks(st: _State, p: Params, rng: np.random.Generator) -> None:
    """Handwritten marks on the page: words written in the margins or over the grid, circles round a lead,
    ticks; ``num_marks`` marks in ``colour`` (RGB), ``width_px`` wide. Class mask: text where the pen went (a
    trace under the pen is hidden there, its lead-mask pixels cleared)."""
    n = int(_get(p, "num_marks", lambda: int(rng.integers(1, 6))))
    colour = _get(p, "colour", lambda: list(PEN_COLOURS[int(rng.integers(len(PEN_COLOURS)))]))
    width = int(_get(p, "width_px", lambda: int(rng.integers(1, 4))))
    seed = int(_get(p, "seed", lambda: int(rng.integers(2**31))))
    r = np.random.default_rng(seed)
    ink = np.zeros((st.h, st.w), np.uint8)
    for _ in range(n):
        kind = str(r.choice(["writing", "writing", "circle", "tick"]))
        pts = _pen_stroke(r, st.w, st.h, kind)
        cv2.polylines(ink, [np.round(pts).astype(np.int32)], False, 255, width, cv2.LINE_AA)
    alpha = (ink.astype(np.float32) / 255.0) * 0.9
    st.image = st.image * (1.0 - alpha[..., None]) + alpha[..., None] * np.asarray(colour, np.float32)
    covered = ink > 127
    st.class_mask[covered] = CLASS_TEXT
    st.lead_mask[covered] = 0


def print_texture(st: _State, p: Params, rng: np.random.Generator) -> None:
    """The printer's texture on the ink: banding (periodic stripes across the page, ``band_period_px``,
    ``band_strength``), a halftone screen that breaks light tones (thin grid lines) into dots
    (``halftone_period_px``, ``halftone_strength``) and toner speckle in the paper (``speckle``: fraction)."""
    period = float(_get(p, "band_period_px", lambda: float(rng.uniform(6, 40))))
    band = float(_get(p, "band_strength", lambda: float(rng.uniform(0.0, 0.25))))
    ht_period = float(_get(p, "halftone_period_px", lambda: float(rng.uniform(2.5, 5.0))))
    ht = float(_get(p, "halftone_strength", lambda: float(rng.uniform(0.0, 0.6))))
    speckle = float(_get(p, "speckle", lambda: float(rng.uniform(0.0, 0.0015))))
    seed = int(_get(p, "seed", lambda: int(rng.integers(2**31))))
    yy = np.arange(st.h, dtype=np.float32)[:, None]
    xx = np.arange(st.w, dtype=np.float32)[None, :]
    keep = 1.0 - band * 0.5 * (1.0 + np.sin(2 * math.pi * yy / period))  # (H, 1): share of the ink printed
    darkness = 255.0 - st.image
    light = np.clip(1.0 - darkness.max(axis=2) / 160.0, 0.0, 1.0)  # 1 for faint ink, 0 for solid ink
    screen = 0.5 * (1.0 + np.sin(2 * math.pi * xx / ht_period) * np.sin(2 * math.pi * yy / ht_period))
    keep = keep * (1.0 - ht * light * (1.0 - screen))
    st.image = 255.0 - darkness * keep[..., None]
    if speckle > 0:
        r = np.random.default_rng(seed)
        dots = r.random((st.h, st.w)) < speckle
        st.image[dots] *= 0.4


GEOMETRIC: dict[str, Callable[[_State, Params, np.random.Generator], None]] = {
    "rotation": rotation,
    "perspective": perspective,
    "scanner_skew": scanner_skew,
    "crop_pad": crop_pad,
}
PHOTOMETRIC: dict[str, Callable[[_State, Params, np.random.Generator], None]] = {
    "blur": blur,
    "gaussian_noise": gaussian_noise,
    "salt_pepper": salt_pepper,
    "jpeg": jpeg,
    "brightness_contrast": brightness_contrast,
    "lighting": lighting,
    "paper_texture": paper_texture,
    "bw": bw,
    "wrinkles": wrinkles,
    "pen_marks": pen_marks,
    "print_texture": print_texture,
}
DISTORTIONS = {**GEOMETRIC, **PHOTOMETRIC}


def apply_distortions(
    page: RenderedPage, distortions: Sequence[str | Params], rng: np.random.Generator | int | None = None
) -> RenderedPage:
    """Apply distortions in order; each is a name (parameters drawn) or a dict ``{"name", **params}``
    (missing parameters drawn).  Returns a new page; the input is not modified."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    st = _State(page)
    record: list[Params] = []
    for item in distortions:
        p: Params = {"name": item} if isinstance(item, str) else dict(item)
        name = p.get("name")
        if name not in DISTORTIONS:
            raise ValueError(f"unknown distortion {name!r}; known: {sorted(DISTORTIONS)}")
        if name in PHOTOMETRIC:
            st.flush()
        DISTORTIONS[name](st, p, rng)
        record.append(p)
    st.flush()
    sidecar = dict(page.sidecar)
    sidecar["distortions"] = list(page.sidecar.get("distortions", [])) + record
    sidecar["homography"] = st.H.tolist()
    image = np.clip(st.image + 0.5, 0, 255).astype(np.uint8)
    return RenderedPage(image=image, lead_mask=st.lead_mask, class_mask=st.class_mask, sidecar=sidecar)


# ---------------------------------------------------------------------------------------------------- presets


def _dark_fill(rng: np.random.Generator) -> list[int]:
    base = int(rng.integers(20, 120))
    return [int(np.clip(base + rng.integers(-15, 15), 0, 255)) for _ in range(3)]


def _preset_list(preset: str, rng: np.random.Generator) -> list[Params]:
    """The distortion list of a preset (some steps optional, drawn from ``rng``)."""

    def maybe(prob: float, item: Params) -> list[Params]:
        return [item] if rng.random() < prob else []

    if preset == "clean":
        return []
    if preset == "scan":
        return (
            [{"name": "paper_texture"}, {"name": "scanner_skew"}]
            + maybe(0.5, {"name": "brightness_contrast", "temperature": 0.0})
            + maybe(0.6, {"name": "blur", "sigma_px": float(rng.uniform(0.3, 1.0))})
            + maybe(0.6, {"name": "gaussian_noise", "sigma": float(rng.uniform(1, 6))})
            + maybe(0.7, {"name": "jpeg", "quality": int(rng.integers(50, 95))})
        )
    if preset == "photo":
        fill = _dark_fill(rng)
        return (
            [
                {"name": "paper_texture"},
                {"name": "perspective", "fill": fill},
                {"name": "rotation", "angle_deg": float(rng.uniform(-5, 5)), "fill": fill},
                {"name": "lighting"},
                {"name": "brightness_contrast"},
            ]
            + maybe(0.7, {"name": "blur"})
            + [{"name": "gaussian_noise"}]
            + [{"name": "jpeg", "quality": int(rng.integers(40, 90))}]
        )
    if preset == "bw":
        return (
            [{"name": "scanner_skew"}, {"name": "bw"}]
            + maybe(0.6, {"name": "salt_pepper"})
            + maybe(0.5, {"name": "jpeg", "quality": int(rng.integers(50, 95))})
        )
    if preset == "wrinkled":
        return (
            [
                {"name": "paper_texture"},
                {"name": "wrinkles"},
                {"name": "rotation", "angle_deg": float(rng.uniform(-4, 4))},
                {"name": "lighting", "shadow": False},
            ]
            + maybe(0.5, {"name": "blur", "sigma_px": float(rng.uniform(0.3, 1.0))})
            + maybe(0.5, {"name": "jpeg", "quality": int(rng.integers(50, 95))})
        )
    if preset == "real":
        # a printed page that lived a while: printer texture, handwriting, then scanned or photographed
        fill = _dark_fill(rng)
        base = (
            [{"name": "paper_texture"}, {"name": "print_texture"}]
            + maybe(0.7, {"name": "pen_marks"})
            + maybe(0.4, {"name": "wrinkles"})
        )
        if rng.random() < 0.5:
            return base + (
                [{"name": "scanner_skew"}]
                + maybe(0.6, {"name": "blur", "sigma_px": float(rng.uniform(0.3, 1.2))})
                + [
                    {"name": "gaussian_noise", "sigma": float(rng.uniform(1, 6))},
                    {"name": "jpeg", "quality": int(rng.integers(40, 90))},
                ]
            )
        return base + (
            [{"name": "perspective", "fill": fill}, {"name": "lighting"}, {"name": "brightness_contrast"}]
            + maybe(0.7, {"name": "blur"})
            + [{"name": "gaussian_noise"}, {"name": "jpeg", "quality": int(rng.integers(35, 85))}]
        )
    if preset == "ecg-image-kit-like":
        # ecg-image-kit's --augment: rotate, crop, additive noise, colour temperature; optional wrinkles
        return maybe(0.3, {"name": "wrinkles"}) + [
            {"name": "rotation", "angle_deg": float(rng.uniform(-10, 10))},
            {"name": "crop_pad", "scale": float(rng.uniform(1.0, 1.05)), "shift_x_px": 0.0, "shift_y_px": 0.0},
            {"name": "gaussian_noise", "sigma": float(rng.uniform(0, 10))},
            {"name": "brightness_contrast", "brightness": 0.0, "contrast": 1.0},
        ]
    raise ValueError(f"unknown preset {preset!r}; known: {PRESETS}")


PRESETS: tuple[str, ...] = ("clean", "scan", "photo", "bw", "wrinkled", "real", "mixed", "ecg-image-kit-like")
_MIXED_CHOICES = ("clean", "scan", "photo", "bw", "wrinkled", "real", "ecg-image-kit-like")
_MIXED_P = (0.15, 0.2, 0.15, 0.1, 0.1, 0.15, 0.15)


def apply_preset(page: RenderedPage, preset: str, rng: np.random.Generator | int | None = None) -> RenderedPage:
    """Apply a named preset (see ``PRESETS``; "mixed" draws one of the others per image).

    The sidecar gains ``"preset"`` (the preset actually applied), ``"distortions"`` and ``"homography"``.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {PRESETS}")
    chosen = str(rng.choice(_MIXED_CHOICES, p=_MIXED_P)) if preset == "mixed" else preset
    out = apply_distortions(page, _preset_list(chosen, rng), rng)
    out.sidecar["preset"] = chosen
    if preset == "mixed":
        out.sidecar["preset_requested"] = "mixed"
    return out
