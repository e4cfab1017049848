"""Image input: the one opener of image files, and any array normalised to RGB uint8 at a bounded size.

Everything downstream works on ``(H, W, 3)`` uint8 RGB. Files are opened only through :func:`iter_pages` /
:func:`load_image`: the size is read from the header before anything is decoded (:data:`MAX_PAGE_PIXELS`, the
memory available), large pages are decoded at reduced size, multi-page TIFFs one frame at a time, and palette,
greyscale, 16-bit, CMYK and alpha images are converted strip by strip. Arrays (grayscale, RGBA composited over
white, 16-bit, float) are converted by :func:`to_rgb_uint8`; huge images are downscaled to a working cap and tiny
ones are flagged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

#: images whose longest side exceeds this (pixels) are downscaled before any processing
MAX_WORK_SIDE = 4000
#: below this shortest side (pixels) an image is considered too small to read reliably
MIN_SIDE = 200


@dataclass
class PreparedImage:
    """An input image normalised for digitisation.

    rgb: (H, W, 3) uint8 RGB at working resolution.
    scale: working pixels per input pixel (1.0 unless the image was downscaled or upsampled).
    original_shape: (H, W) of the input array.
    """

    rgb: np.ndarray
    scale: float = 1.0
    original_shape: tuple[int, int] = (0, 0)
    warnings: list[str] = field(default_factory=list)


class ImageRefused(ValueError):
    """An image file this module will not decode: above :data:`MAX_PAGE_PIXELS`, more than the memory available
    allows, not an image, truncated or corrupt. The message names the file and why."""


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says, read without decoding: size in pixels, Pillow mode, format, frames."""

    width: int
    height: int
    mode: str
    format: str
    frames: int = 1

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_image_header(path: str | Path) -> ImageHeader:
    """The first frame's size, mode, format and the number of frames, from the file header only;
    :class:`ImageRefused` when the file is no image or its first frame exceeds :data:`MAX_PAGE_PIXELS`."""
    with _open(path) as im:
        head = ImageHeader(
            int(im.width), int(im.height), str(im.mode), str(im.format or "?"), int(getattr(im, "n_frames", 1) or 1)
        )
    _check_pixels(path, head.width, head.height)
    return head


def load_image(path: str | Path, reduce_to: int | None = MAX_WORK_SIDE) -> np.ndarray:
    """The first page of an image file as (H, W, 3) uint8 RGB (see :func:`iter_pages`)."""
    pages = iter_pages(path, reduce_to=reduce_to, max_pages=1)
    try:
        return next(pages)
    finally:
        pages.close()


def iter_pages(
    path: str | Path, reduce_to: int | None = MAX_WORK_SIDE, max_pages: int | None = None
) -> Iterator[np.ndarray]:
    """Every page of an image file, one at a time, as (H, W, 3) uint8 RGB: one for PNG/JPEG/BMP, one per frame
    of a multi-page TIFF (only one frame is decoded at a time).

    The size is read from the header before decoding: pages above :data:`MAX_PAGE_PIXELS`, or whose decoded
    size exceeds :data:`DECODE_MEMORY_FRACTION` of the memory available, raise :class:`ImageRefused`. A page whose
    long side is at least twice ``reduce_to`` (pixels; None: never) is decoded at reduced size by an integer
    factor that keeps its long side >= ``reduce_to`` (JPEG: in the decoder, by 2, 4 or 8; other formats: decoded,
    then box-averaged strip by strip). Palette, greyscale, 16-bit, CMYK and alpha (composited over white) are
    converted strip by strip (no whole-page float copy); EXIF orientation is applied.
    Unreadable or truncated files raise :class:`ImageRefused`."""
    from PIL import Image

    with _open(path) as im:
        frames = int(getattr(im, "n_frames", 1) or 1)
        for k in range(frames if max_pages is None else min(frames, max_pages)):
            try:
                if k:
                    im.seek(k)
                page = _decode_page(im, path, reduce_to)
            except ImageRefused:
                raise
            except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
                raise ImageRefused(f"{_name(path)}: unreadable image ({type(exc).__name__}: {exc})") from exc
            yield page


#: Most pixels (width x height) of a page the opener decodes: a letter page scanned at 1200 DPI
#: (13200 x 10200 = 134.6 Mpx) and an A4 page at 1200 DPI (14032 x 9921 = 139.2 Mpx) pass. Pillow's own
#: decompression-bomb error (2 x ``Image.MAX_IMAGE_PIXELS`` = 179 Mpx) lies above, so a larger page gets this
#: module's error (with the size and the limit) before Pillow's; its warning (above 89 Mpx) is silenced for pages
#: within this limit.
MAX_PAGE_PIXELS = 150_000_000
#: A full-size decode (PNG, TIFF, BMP; a JPEG after draft reduction) may take at most this share of the memory
#: the system reports available (``MemAvailable``); otherwise the page is refused rather than risking the
#: process being killed for memory (and every record after it lost).
DECODE_MEMORY_FRACTION = 0.5
#: Pixels converted per strip (rows x width): bounds the conversion's temporaries (about 16 bytes per pixel).
STRIP_PIXELS = 4_000_000
#: EXIF orientation tag values -> the Pillow transposition that displays the image upright.
_EXIF_ORIENTATION_TAG = 0x0112


def _name(path: str | Path) -> str:
    return Path(path).name


def _open(path: str | Path):
    """``PIL.Image.open`` (lazy: reads the header only) with Pillow's bomb warning silenced and its bomb error
    and identification errors turned into :class:`ImageRefused`."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ImageRefused(f"{_name(path)}: image too large ({exc}); the limit is {MAX_PAGE_PIXELS} pixels") from exc
    except FileNotFoundError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageRefused(f"{_name(path)}: not a readable image ({type(exc).__name__}: {exc})") from exc


def _check_pixels(path: str | Path, width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageRefused(f"{_name(path)}: empty image ({width}x{height} px)")
    if width * height > MAX_PAGE_PIXELS:
        raise ImageRefused(
            f"{_name(path)}: image {width}x{height} px has {width * height} pixels, more than the "
            f"{MAX_PAGE_PIXELS} pixels of the limit (a letter page at 1200 DPI is 13200x10200)"
        )


def available_memory_bytes() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes; None where the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def decoded_bytes(mode: str, width: int, height: int) -> int:
    """Bytes Pillow holds for a decoded ``width`` x ``height`` image of ``mode``: 1 per pixel for 1/L/P, 2 for
    16-bit, 4 otherwise (Pillow stores RGB, LA, CMYK and 32-bit modes in 4 bytes)."""
    per_pixel = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
    return per_pixel * width * height


def reduction_factor(width: int, height: int, reduce_to: int | None) -> int:
    """The integer factor (>= 1) by which a ``width`` x ``height`` page is decoded: the largest that keeps its long
    side >= ``reduce_to`` pixels (1 when ``reduce_to`` is None)."""
    if not reduce_to or reduce_to <= 0:
        return 1
    return max(1, int(max(width, height) // int(reduce_to)))


def _decode_page(im, path: str | Path, reduce_to: int | None) -> np.ndarray:
    """The current frame of the open image ``im`` as (H, W, 3) uint8 RGB (see :func:`iter_pages`)."""
    from PIL import Image

    _check_pixels(path, im.width, im.height)
    k = reduction_factor(im.width, im.height, reduce_to)
    if k > 1 and im.format == "JPEG":
        scale = 1
        for s in (8, 4, 2):
            if s <= k:
                scale = s
                break
        if scale > 1:
            im.draft(im.mode, (max(1, im.width // scale), max(1, im.height // scale)))
            k = reduction_factor(im.width, im.height, reduce_to)
    need = decoded_bytes(im.mode, im.width, im.height)
    avail = available_memory_bytes()
    if avail is not None and need > DECODE_MEMORY_FRACTION * avail:
        raise ImageRefused(
            f"{_name(path)}: decoding {im.width}x{im.height} px ({im.mode}) needs {need / 2**20:.0f} "
            f"MiB, more than {DECODE_MEMORY_FRACTION:.0%} of the {avail / 2**20:.0f} MiB available"
        )
    im.load()
    try:
        orientation = int(im.getexif().get(_EXIF_ORIENTATION_TAG, 1) or 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block only loses the orientation
        orientation = 1
    rgb = _to_rgb_reduced(im, k)
    transpose = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }.get(orientation)
    if transpose is not None:
        rgb = np.asarray(Image.fromarray(rgb).transpose(transpose))
    return rgb


def _to_rgb_reduced(im, k: int) -> np.ndarray:
    """A loaded PIL image -> (ceil(H/k), ceil(W/k), 3) uint8 RGB, converted and box-averaged by ``k`` in strips
    of rows (a multiple of ``k``), so no whole-page copy other than the output is made."""
    from PIL import Image

    w, h = im.size
    numeric = im.mode in ("I", "F") or im.mode.startswith("I;16")
    top = 255.0
    if numeric:  # one scale for the whole page, from its extrema (as :func:`_to_uint8` scales an array)
        lo, hi = im.getextrema()
        hi = float(hi) if np.isfinite(hi) else 255.0
        if im.mode == "F":
            top = 1.0 if hi <= 1.0 + 1e-6 else 255.0
        else:
            top = 255.0 if hi <= 255 else (65535.0 if hi <= 65535 else hi)
    alpha = im.mode in ("RGBA", "RGBa", "LA", "La", "PA") or (
        im.mode in ("P", "L", "RGB") and "transparency" in im.info
    )
    rows = max(k, (max(1, STRIP_PIXELS // max(w, 1)) // k) * k)
    out = np.empty((-(-h // k), -(-w // k), 3), np.uint8)
    for y0 in range(0, h, rows):
        y1 = min(h, y0 + rows)
        strip = im.crop((0, y0, w, y1))
        if numeric:
            a = np.asarray(strip, dtype=np.float32)
            a = np.nan_to_num(a, nan=top, posinf=top, neginf=0.0)
            g = np.clip(np.rint(a * (255.0 / top)), 0, 255).astype(np.uint8)
            strip = Image.fromarray(g, "L").convert("RGB")
        elif alpha:
            rgba = strip.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            strip = Image.alpha_composite(white, rgba).convert("RGB")
        elif strip.mode != "RGB":
            strip = strip.convert("RGB")
        if k > 1:
            strip = strip.reduce(k)
        out[y0 // k : y0 // k + strip.height] = np.asarray(strip)
    return out


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale any numeric array to uint8 (16-bit by its dtype range, floats by [0,1] or [0,255])."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if arr.dtype == np.uint16:  # integer arithmetic (no float copy); n * 255 / top is never exactly half-way
        hi = int(arr.max()) if arr.size else 0
        if hi <= 255:
            return arr.astype(np.uint8)
        return ((arr.astype(np.uint32) * 255 + 65535 // 2) // 65535).astype(np.uint8)
    a = arr.astype(np.float64)
    finite = np.isfinite(a)
    if not finite.all():
        a = np.where(finite, a, 255.0 if finite.any() and np.nanmax(a[finite]) > 1.5 else 1.0)
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        hi = float(a.max()) if a.size else 255.0
        if info.max > 255:
            # 16/32-bit: use the dtype's range when the data fills it, else the data's range
            top = 65535.0 if hi <= 65535 and hi > 255 else max(hi, 1.0)
            if hi <= 255:
                top = 255.0
            a = a * (255.0 / top)
    else:
        hi = float(a.max()) if a.size else 1.0
        if hi <= 1.0 + 1e-6:
            a = a * 255.0
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Convert grayscale (H,W)/(H,W,1), RGB, RGBA (over white) or LA arrays of any numeric dtype
    to (H, W, 3) uint8 RGB. Raises ValueError for shapes that are not images."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        g = _to_uint8(arr)
        return np.repeat(g[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (2, 3, 4):
        raise ValueError(f"expected an image of shape (H,W), (H,W,3) or (H,W,4), got {arr.shape}")
    if arr.shape[2] in (2, 4) and arr.dtype == np.uint8:
        # over white in integers, row blocks at a time: (c a + 255 (255 - a)) / 255, rounded
        out = np.empty(arr.shape[:2] + (3,), np.uint8)
        rows = max(1, STRIP_PIXELS // max(arr.shape[1], 1))
        for y0 in range(0, arr.shape[0], rows):
            block = arr[y0 : y0 + rows]
            a = block[..., -1:].astype(np.uint32)
            c = block[..., :-1].astype(np.uint32)
            mixed = ((c * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)
            out[y0 : y0 + rows] = mixed if mixed.shape[2] == 3 else np.repeat(mixed, 3, axis=2)
        return out
    if arr.shape[2] in (2, 4):
        colour = arr[..., :-1]
        alpha = _to_uint8(arr[..., -1]).astype(np.float32) / 255.0
        c8 = _to_uint8(colour).astype(np.float32)
        if c8.shape[2] == 1:
            c8 = np.repeat(c8, 3, axis=2)
        out = c8 * alpha[..., None] + 255.0 * (1.0 - alpha[..., None])
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(_to_uint8(arr))


def prepare_image(image: np.ndarray, max_side: int = MAX_WORK_SIDE) -> PreparedImage:
    """Normalise ``image`` to RGB uint8 and downscale it so its longest side is <= ``max_side``."""
    warnings: list[str] = []
    rgb = to_rgb_uint8(image)
    h, w = rgb.shape[:2]
    scale = 1.0
    if max(h, w) > max_side:
        scale = max_side / float(max(h, w))
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        warnings.append(f"image {w}x{h} px downscaled by {scale:.3f} for processing")
    if min(h, w) < MIN_SIDE:
        warnings.append(f"image is tiny ({w}x{h} px); the signal is probably unreadable")
    return PreparedImage(rgb=rgb, scale=scale, original_shape=(h, w), warnings=warnings)


#: Images whose long side is shorter than this (pixels) and whose trace is a hairline (see
#: :data:`HAIRLINE_PX`) are upsampled to it, by at most :data:`UPSAMPLE_MAX`, before tracing: a letter page at
#: 100 DPI (1100 px) from the Challenge generator prints a 1-px anti-aliased line whose steep QRS strokes and faint
#: flat stretches fall apart below the trace map's threshold, and rows jump to their neighbours at the holes
#: (its 12 clean 100-DPI pages: 1.2 dB; upsampled twice: 7.2 dB).
MIN_TRACE_SIDE = 2000
UPSAMPLE_MAX = 2.0
#: Median vertical ink extent (pixels) of the trace map's columns at or below which the trace is a hairline.
HAIRLINE_PX = 1.5


def upsample_hairline(prep: PreparedImage, line_px: float, min_side: int = MIN_TRACE_SIDE) -> PreparedImage:
    """``prep`` with its image upsampled (bicubic) so that its long side reaches ``min_side`` pixels (by at most
    :data:`UPSAMPLE_MAX`) when its trace's line width ``line_px`` (pixels) is a hairline; else unchanged."""
    h, w = prep.rgb.shape[:2]
    f = min(UPSAMPLE_MAX, min_side / float(max(h, w)))
    if f <= 1.05 or not (0.0 < line_px <= HAIRLINE_PX):
        return prep
    rgb = cv2.resize(prep.rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_CUBIC)
    return PreparedImage(
        rgb=rgb,
        scale=prep.scale * f,
        original_shape=prep.original_shape,
        warnings=prep.warnings + [f"image {w}x{h} px with a hairline trace upsampled by {f:.2f}"],
    )


def downscale(arr: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Area-downscale ``arr`` (2-D or 3-D) so that its longest side is <= ``max_side``.

    Returns (array, factor) with factor = new pixels per old pixel (<= 1)."""
    h, w = arr.shape[:2]
    if max(h, w) <= max_side:
        return arr, 1.0
    f = max_side / float(max(h, w))
    out = cv2.resize(arr, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return out, f
