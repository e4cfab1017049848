"""The one image opener (``ecgdigitize.image_io.iter_pages`` / ``load_image``): sizes read from the header before
decoding, refusals, reduced decoding of large pages, conversions, one TIFF frame at a time. All pages are small or
header-only, so these tests stay fast and low in memory."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ecgdigitize import image_io
from ecgdigitize.image_io import (
    MAX_PAGE_PIXELS,
    ImageRefused,
    iter_pages,
    load_image,
    read_image_header,
    reduction_factor,
)

LETTER_1200_DPI = (13200, 10200)  # width, height in pixels


def write_blank_png(path: Path, width: int, height: int, colour_type: int = 2, compressed: bool = True) -> Path:
    """A valid PNG of zeros, written row by row (never the whole page in memory); with ``compressed`` False only
    the header and one row of data (a file whose pixels would need far more than it holds: a bomb's header)."""
    channels = {0: 1, 2: 3, 6: 4}[colour_type]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)))
        z = zlib.compressobj(1)
        row = b"\x00" * (1 + width * channels)
        body = b"".join(z.compress(row) for _ in range(height if compressed else 1)) + z.flush()
        f.write(chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def page(h: int = 300, w: int = 400, seed: int = 0) -> np.ndarray:
    """A white page with dark lines and coloured blocks, (h, w, 3) uint8."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 255, np.uint8)
    for y in range(10, h, 23):
        img[y : y + 2] = (20, 20, 20)
    img[: h // 4, : w // 5] = rng.integers(0, 255, 3)
    img[-h // 5 :, -w // 4 :] = (200, 40, 40)
    return img


def test_bomb_header_is_refused_before_decoding(tmp_path):
    path = write_blank_png(tmp_path / "bomb.png", 30000, 30000, compressed=False)  # 900 Mpx from a few bytes
    assert path.stat().st_size < 10_000
    with pytest.raises(ImageRefused, match="too large|pixels"):
        read_image_header(path)
    with pytest.raises(ImageRefused, match="bomb.png"):
        load_image(path)


def test_page_between_the_limit_and_pillows_error_is_refused_by_the_limit(tmp_path):
    path = write_blank_png(tmp_path / "big.png", 13000, 12000, compressed=False)  # 156 Mpx
    assert 13000 * 12000 > MAX_PAGE_PIXELS
    with pytest.raises(ImageRefused, match=f"13000x12000 px .* {MAX_PAGE_PIXELS}"):
        load_image(path)


def test_1200_dpi_letter_page_passes_the_header_check(tmp_path):
    for colour_type in (2, 6):  # RGB and its RGBA twin
        path = write_blank_png(tmp_path / f"letter{colour_type}.png", *LETTER_1200_DPI, colour_type=colour_type)
        assert path.stat().st_size < 5_000_000  # a few MB on disk, 538 MB decoded
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # Pillow's bomb warning (above 89 Mpx) is not raised for it
            head = read_image_header(path)
        assert (head.width, head.height, head.pixels) == (13200, 10200, 13200 * 10200)
        assert head.mode == ("RGB" if colour_type == 2 else "RGBA")
    assert reduction_factor(*LETTER_1200_DPI, image_io.MAX_WORK_SIDE) == 3  # decoded as 4400 x 3400
    assert image_io.decoded_bytes("RGBA", *LETTER_1200_DPI) < 600 * 2**20


def test_decoding_needs_memory_available(tmp_path, monkeypatch):
    path = tmp_path / "p.png"
    Image.fromarray(page()).save(path)
    monkeypatch.setattr(image_io, "available_memory_bytes", lambda: 100_000)
    with pytest.raises(ImageRefused, match="MiB available"):
        load_image(path)


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_large_png_is_reduced_like_an_area_resize(tmp_path, mode):
    rgb = page(900, 1300)
    if mode == "RGBA":
        arr = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
        arr[:50, :, 3] = 0  # a transparent band: white after compositing
        Image.fromarray(arr, "RGBA").save(tmp_path / "p.png")
    else:
        Image.fromarray(rgb).save(tmp_path / "p.png")
    out = load_image(tmp_path / "p.png", reduce_to=400)  # long side 1300 -> factor 3
    assert out.shape == (300, 434, 3) and out.dtype == np.uint8
    ref = rgb.copy()
    if mode == "RGBA":
        ref[:50] = 255
    ref = cv2.resize(ref, (434, 300), interpolation=cv2.INTER_AREA)
    assert np.abs(out[:-1, :-1].astype(int) - ref[:-1, :-1].astype(int)).mean() < 2.0
    full = load_image(tmp_path / "p.png", reduce_to=None)
    assert full.shape == (900, 1300, 3)
    np.testing.assert_array_equal(load_image(tmp_path / "p.png", reduce_to=700), full)  # factor 1: unchanged


def test_large_jpeg_is_decoded_in_draft_mode(tmp_path):
    rgb = page(1600, 2400)
    Image.fromarray(rgb).save(tmp_path / "p.jpg", quality=95)
    out = load_image(tmp_path / "p.jpg", reduce_to=500)  # factor 4: the decoder scales by 4
    assert out.shape == (400, 600, 3)
    ref = cv2.resize(rgb, (600, 400), interpolation=cv2.INTER_AREA)
    assert np.abs(out.astype(int) - ref.astype(int)).mean() < 6.0


def test_exif_rotated_jpeg_also_when_reduced(tmp_path):
    img = np.zeros((400, 600, 3), np.uint8)
    img[:50, :100] = 255  # a white mark at the top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display after turning 90 degrees clockwise
    Image.fromarray(img).save(tmp_path / "r.jpg", quality=95, exif=exif)
    for reduce_to, shape in ((None, (600, 400, 3)), (150, (150, 100, 3))):
        out = load_image(tmp_path / "r.jpg", reduce_to=reduce_to)
        assert out.shape == shape
        h, w = shape[:2]
        assert out[: h // 12, -w // 16 :].mean() > 200 and out[-h // 12 :, : w // 16].mean() < 50


def test_palette_with_transparency_16_bit_and_greyscale(tmp_path):
    rgb = page()
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.info["transparency"] = pal.getpixel((0, 0))  # the top-left colour is transparent: white
    pal.save(tmp_path / "p.png", transparency=pal.getpixel((0, 0)))
    out = load_image(tmp_path / "p.png")
    assert out.shape == rgb.shape and (out[:5, :5] == 255).all()
    g16 = (rgb.mean(axis=2) * 257).astype(np.uint16)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    out = load_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(out[..., 0], np.rint(g16 / 257.0).astype(np.uint8))
    assert (out[..., 0] == out[..., 2]).all()
    small16 = np.full((30, 40), 200, np.uint16)  # 16-bit storage of 8-bit values: kept as they are
    Image.fromarray(small16).save(tmp_path / "s16.png")
    assert (load_image(tmp_path / "s16.png") == 200).all()
    Image.fromarray(rgb[..., 1]).save(tmp_path / "g.png")
    np.testing.assert_array_equal(load_image(tmp_path / "g.png")[..., 2], rgb[..., 1])
    la = Image.fromarray(np.dstack([rgb[..., 0], np.zeros(rgb.shape[:2], np.uint8)]), "LA")
    la.save(tmp_path / "la.png")
    assert (load_image(tmp_path / "la.png") == 255).all()  # fully transparent: white paper


def test_cmyk_jpeg(tmp_path):
    rgb = page()
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    out = load_image(tmp_path / "c.jpg")
    assert out.shape == rgb.shape and np.abs(out.astype(int) - rgb.astype(int)).mean() < 8


def test_truncated_and_non_image_files(tmp_path):
    Image.fromarray(page(600, 800)).save(tmp_path / "p.png")
    data = (tmp_path / "p.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageRefused, match="t.png"):
        load_image(tmp_path / "t.png")
    (tmp_path / "x.png").write_text("not an image")
    with pytest.raises(ImageRefused, match="x.png"):
        load_image(tmp_path / "x.png")
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "missing.png")


def test_multipage_tiff_one_frame_at_a_time(tmp_path, monkeypatch):
    frames = [Image.fromarray(page(seed=k)) for k in range(3)]
    frames[1] = frames[1].convert("L")
    frames[0].save(tmp_path / "m.tif", save_all=True, append_images=frames[1:])
    assert read_image_header(tmp_path / "m.tif").frames == 3
    decoded = []
    real = image_io._decode_page
    monkeypatch.setattr(image_io, "_decode_page", lambda im, path, r: decoded.append(im.tell()) or real(im, path, r))
    pages = iter_pages(tmp_path / "m.tif")
    first = next(pages)
    assert decoded == [0]  # the next frames are not decoded yet
    rest = list(pages)
    assert decoded == [0, 1, 2] and len(rest) == 2
    np.testing.assert_array_equal(first, np.asarray(frames[0]))
    assert rest[0].shape == (300, 400, 3) and (rest[0][..., 0] == rest[0][..., 1]).all()
