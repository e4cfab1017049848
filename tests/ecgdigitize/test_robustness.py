"""Digitizer robustness: high gain, 1000 Hz records, keystone pages, image file variants, sizes, row finding."""

from __future__ import annotations

import numpy as np
import pytest
from reference_scoring import snr_db

from ecgdigitize.image_io import load_image
from ecgdigitize.layout import row_map
from ecgdigitize.pipeline import digitize_page

page_mod = pytest.importorskip("ecgrender.page")
synth_mod = pytest.importorskip("ecgrender.synth")
STANDARD_LEADS = page_mod.STANDARD_LEADS


def test_gain_20_page_amplitude(signal):
    """A 20 mm/mV page: the 20 mm pulse is measured from its foot, rows are not cut by tall excursions."""
    page = page_mod.render_page(signal, 500, STANDARD_LEADS, page_mod.PageSpec(dpi=200, gain=20.0), rng=0)
    r = digitize_page(page.image)
    assert r.calibration.gain_mm_per_mv == 20.0 and r.calibration.source == "pulse"
    assert len(r.calibration.pulses) == 4
    assert r.layout.name == "3x4+1" and r.layout.fits
    assert snr_db(signal, r.signal) >= 14.0  # measured 15.9 dB (was -5.4 dB: pulse mis-measured)


def test_1000_hz_record():
    sig, _ = synth_mod.synthesize_ecg(["NORM"], 1000, 10, rng=2)
    page = page_mod.render_page(sig, 1000, STANDARD_LEADS, page_mod.PageSpec(dpi=150), rng=0)
    r = digitize_page(page.image, fs=1000.0, num_samples=10000)
    assert r.signal.shape == (10000, 12)
    assert np.isfinite(r.signal[:, 1]).mean() > 0.95  # rhythm strip II spans the whole record
    assert snr_db(sig, r.signal) >= 14.0


def test_keystone_page_processed(signal):
    """A photographed (keystone) page is rectified enough to find the layout. The SNR is still far
    from the 12 dB target (measured 3.6 dB): the threshold documents today's level."""
    distort = pytest.importorskip("ecgrender.distort")
    page = page_mod.render_page(signal, 500, STANDARD_LEADS, page_mod.PageSpec(dpi=150), rng=0)
    pg = distort.apply_distortions(page, [{"name": "perspective", "max_shift": 0.02}], rng=3)
    r = digitize_page(pg.image)
    assert r.orientation.keystone
    assert r.layout is not None and r.layout.name == "3x4+1"
    assert snr_db(signal, r.signal) >= 2.0


def _page_image(signal: np.ndarray) -> np.ndarray:
    return page_mod.render_page(signal, 500, STANDARD_LEADS, page_mod.PageSpec(dpi=100), rng=0).image


def test_load_image_exif_rotation(tmp_path):
    from PIL import Image

    img = np.zeros((40, 60, 3), np.uint8)
    img[:5, :10] = 255  # a white mark at the top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display after turning 90 degrees clockwise
    Image.fromarray(img).save(tmp_path / "r.jpg", quality=95, exif=exif)
    out = load_image(tmp_path / "r.jpg")
    assert out.shape == (60, 40, 3) and out.dtype == np.uint8
    # turned clockwise: the top-left mark moves to the top-right
    assert out[:10, -5:].mean() > 200 and out[-10:, :5].mean() < 50


def test_load_image_palette_and_16bit(tmp_path, signal):
    from PIL import Image

    rgb = _page_image(signal)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(tmp_path / "p.png")
    pal = load_image(tmp_path / "p.png")
    assert pal.shape == rgb.shape and pal.dtype == np.uint8
    assert np.abs(pal.astype(int) - rgb.astype(int)).mean() < 12
    g16 = (rgb.mean(axis=2) * 257).astype(np.uint16)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    gray = load_image(tmp_path / "g16.png")
    assert gray.shape == rgb.shape and abs(float(gray.mean()) - float(rgb.mean())) < 3
    r = digitize_page(gray)
    assert r.layout is not None and r.layout.name == "3x4+1"


@pytest.mark.parametrize("shape", [(150, 190, 3), (120, 10500, 3)])
def test_tiny_and_huge_images(shape):
    img = np.full(shape, 255, np.uint8)
    img[shape[0] // 2, :] = 0  # one dark line
    r = digitize_page(img)
    assert r.signal.shape == (5000, 12) and np.isnan(r.signal).all()
    assert r.warnings


def test_row_map_keeps_broken_thin_trace():
    """Thin scanned traces break along steep strokes; the pieces still form one row."""
    h, w = 200, 1200
    prob = np.zeros((h, w), np.float32)
    x = np.arange(w)
    y = 100 + 3 * np.sin(x / 15.0)
    prob[np.round(y).astype(int), x] = 1.0
    for q in range(40, w, 80):  # QRS strokes: 1 px wide, with broken vertical ink
        prob[40:100:2, q] = 1.0
        prob[100:150:2, q + 1] = 1.0
    prob[:, 38:44] = 0.0  # a gap every ~80 px: pieces shorter than 12 mm at 5 px/mm
    prob[:, 118:124] = 0.0
    for g in range(200, w, 50):
        prob[:, g : g + 2] = 0.0
    kept = row_map(prob, 5.0, bridge=True) > 0.5
    assert kept.sum() >= 0.9 * (prob > 0.5).sum()
    assert (row_map(prob, 5.0) > 0.5).sum() < 0.5 * (prob > 0.5).sum()  # unbridged: pieces dropped


def test_binarised_bw_page_grid_removed(signal):
    """Binarised black-and-white copy: the grid is as black as the trace; thin straight lines must be
    removed by shape so that scale, layout and traces are found (measured 14.3 dB; -6.8 dB before)."""
    from reference_scoring import snr_db

    from ecgdigitize.pipeline import digitize_page
    from ecgrender.distort import apply_preset
    from ecgrender.page import STANDARD_LEADS, PageSpec, render_page

    rng = np.random.default_rng(1)
    page = render_page(signal, 500, STANDARD_LEADS, PageSpec(dpi=200), rng=rng)
    bw = apply_preset(page, "bw", rng)
    assert any(d.get("mode") == "binary" for d in bw.sidecar["distortions"] if d["name"] == "bw")
    r = digitize_page(bw.image)
    assert r.layout.name == "3x4+1" and r.layout.fits
    assert abs(r.scale.px_per_mm_x / page.sidecar["px_per_mm_x"] - 1) < 0.02
    assert snr_db(signal, r.signal) >= 12.5


def test_thin_grid_lines_keeps_thick_trace():
    """Synthetic binarised page: 2 px grid lines (skewed 1 degree) go, a 5 px trace crossing them stays."""
    import cv2

    from ecgdigitize.trace_map import thin_grid_lines

    h, w = 400, 800
    img = np.zeros((h, w), np.uint8)
    t = np.tan(np.radians(1.0))
    for y in range(20, h, 40):
        cv2.line(img, (0, y), (w - 1, int(round(y + t * w))), 1, 2)
    for x in range(20, w, 40):
        cv2.line(img, (x, 0), (int(round(x - t * h)), h - 1), 1, 2)
    trace = np.zeros_like(img)
    xs = np.arange(w)
    pts = np.stack([xs, 200 + 60 * np.sin(xs / 40.0)], axis=1).astype(np.int32)
    cv2.polylines(trace, [pts], False, 1, 5)
    binary = (img | trace) > 0
    lines = thin_grid_lines(binary, 120)
    grid_only = (img > 0) & (trace == 0)
    assert lines[grid_only].mean() > 0.9
    assert lines[trace > 0].mean() < 0.05  # measured 0.022 (trace edges where a grid line touches)


def test_thick_horizontal_grid_lines_go_but_crossing_strokes_stay():
    """A binarised major grid as heavy as the trace (4 px horizontal lines across the page): the lines go,
    the steep strokes of a QRS crossing them stay (a flat stretch lying on a line may go too)."""
    import cv2

    from ecgdigitize.trace_map import thin_grid_lines

    h, w = 400, 800
    img = np.zeros((h, w), np.uint8)
    for y in range(40, h, 80):
        cv2.line(img, (0, y), (w - 1, y), 1, 4)
    trace = np.zeros_like(img)
    ys = 260.0 + 8.0 * np.sin(np.arange(w) / 25.0)  # a wandering baseline (a perfectly flat one is a line)
    for c in range(100, w, 200):  # QRS spikes from the baseline up through the line at y = 200 to y = 150
        ys[c - 6 : c + 1] = np.linspace(ys[c - 6], 150, 7)
        ys[c : c + 7] = np.linspace(150, ys[c + 6], 7)
    pts = np.stack([np.arange(w), ys], axis=1).astype(np.int32)
    cv2.polylines(trace, [pts], False, 1, 4)
    binary = (img | trace) > 0
    lines = thin_grid_lines(binary, 120)
    grid_only = (img > 0) & (trace == 0)
    assert lines[grid_only].mean() > 0.9
    crossing = (trace > 0) & (img > 0)
    assert lines[crossing].mean() < 0.2  # strokes through the line are kept
    assert lines[(trace > 0) & (img == 0)].mean() < 0.02


def test_thin_trace_on_grey_grid_is_kept(tmp_path):
    """A 100-DPI page with a light grey grid and a 0.54 pt trace (under 1 px), rendered by the render command:
    the thin-line grid removal meant for binarised pages must not erase the trace (it did: 2 % of the samples
    were read and the layout failed)."""
    import json

    import wfdb

    from ecgrender import render_cli

    sig, _ = synth_mod.synthesize_ecg(["BRADY"], fs=500.0, duration_s=10.0, rng=np.random.default_rng([99, 1]))
    (tmp_path / "sig").mkdir()
    wfdb.wrsamp(
        "rec_001",
        fs=500,
        units=["mV"] * 12,
        sig_name=list(STANDARD_LEADS),
        p_signal=np.clip(sig, -30, 30),
        fmt=["16"] * 12,
        adc_gain=[1000.0] * 12,
        baseline=[0] * 12,
        write_dir=str(tmp_path / "sig"),
    )
    assert (
        render_cli.main(
            [
                "-i",
                str(tmp_path / "sig"),
                "-o",
                str(tmp_path / "out"),
                "--preset",
                "clean",
                "--seed",
                "2",
                "--layout",
                "3x4+1",
                "--dpi",
                "100",
            ]
        )
        == 0
    )
    sidecar = json.loads((tmp_path / "out" / "rec_001-0.json").read_text())
    assert sidecar["grid_color"] == "grey" and sidecar["spec"]["trace_width_pt"] < 0.6  # the case under test
    res = digitize_page(load_image(tmp_path / "out" / "rec_001-0.png"), fs=500, num_samples=5000)
    assert res.layout.name == "3x4+1" and res.layout.fits
    assert np.isfinite(res.signal).mean() > 0.25
