"""Tests for ecgrender.distort: presets, recorded parameters and homography, mask warping, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecgrender.distort import DISTORTIONS, PRESETS, apply_distortions, apply_preset
from ecgrender.page import STANDARD_LEADS, PageSpec, RenderedPage, render_page


def _signal(fs: float = 250.0, seconds: float = 10.0) -> np.ndarray:
    t = np.arange(int(fs * seconds)) / fs
    return np.stack([0.7 * np.sin(2 * np.pi * 1.1 * t + j) + 0.2 * np.sin(2 * np.pi * 4.0 * t) for j in range(12)], 1)


@pytest.fixture(scope="module")
def page() -> RenderedPage:
    return render_page(_signal(), 250.0, STANDARD_LEADS, PageSpec(dpi=100), rng=0)


def _points(sidecar: dict) -> np.ndarray:
    """All sidecar trace points (N, 2) in undistorted pixel coordinates."""
    xs = np.concatenate([lead["x_px"] for lead in sidecar["leads"]])
    ys = np.concatenate([lead["y_px"] for lead in sidecar["leads"]])
    return np.stack([xs, ys], 1)


def _map(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    q = np.c_[pts, np.ones(len(pts))] @ np.asarray(H).T
    return q[:, :2] / q[:, 2:]


def _fraction_on_trace(mask: np.ndarray, pts: np.ndarray, radius: int = 2) -> float:
    h, w = mask.shape
    xi, yi = np.round(pts[:, 0]).astype(int), np.round(pts[:, 1]).astype(int)
    ok = (xi >= radius) & (xi < w - radius) & (yi >= radius) & (yi < h - radius)
    xi, yi = xi[ok], yi[ok]
    hit = np.zeros(xi.size, bool)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            hit |= mask[yi + dy, xi + dx] > 0
    assert ok.mean() > 0.8
    return float(hit.mean())


@pytest.mark.parametrize("preset", PRESETS)
def test_presets(page: RenderedPage, preset: str) -> None:
    out = apply_preset(page, preset, rng=3)
    assert out.image.shape == page.image.shape and out.image.dtype == np.uint8
    assert out.lead_mask.shape == page.lead_mask.shape and out.class_mask.dtype == np.uint8
    sc = out.sidecar
    H = np.asarray(sc["homography"])
    assert H.shape == (3, 3)
    assert isinstance(sc["distortions"], list) and all("name" in d for d in sc["distortions"])
    json.dumps(sc, allow_nan=False)
    # masks are nearest-neighbour warps: no new label values
    assert set(np.unique(out.lead_mask)) <= set(np.unique(page.lead_mask))
    assert set(np.unique(out.class_mask)) <= {0, 1, 2, 3}
    if sc["preset"] == "clean":
        assert np.array_equal(out.image, page.image) and np.allclose(H, np.eye(3))
    else:
        assert not np.array_equal(out.image, page.image)
    # ground truth still lands on the warped trace
    assert _fraction_on_trace(out.lead_mask, _map(H, _points(sc))) > 0.95
    assert page.sidecar["distortions"] == []  # input untouched


@pytest.mark.parametrize(
    "item",
    [
        {"name": "rotation", "angle_deg": 8.0},
        {"name": "perspective", "max_shift": 0.07},
        {"name": "scanner_skew"},
        {"name": "crop_pad", "scale": 0.93},
    ],
)
def test_geometric_homography_maps_points_onto_traces(page: RenderedPage, item: dict) -> None:
    out = apply_distortions(page, [item], rng=1)
    H = np.asarray(out.sidecar["homography"])
    assert not np.allclose(H, np.eye(3))
    pts = _map(H, _points(page.sidecar))
    assert _fraction_on_trace(out.lead_mask, pts) > 0.95
    # the distorted image is dark there too
    h, w = out.lead_mask.shape
    xi, yi = np.round(pts[:, 0]).astype(int), np.round(pts[:, 1]).astype(int)
    ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    on_mask = out.lead_mask[yi[ok], xi[ok]] > 0
    grey = out.image[yi[ok], xi[ok]].mean(axis=1)
    assert np.median(grey[on_mask]) < 100
    # identity check: the unmapped points are NOT on the rotated trace as often
    if item["name"] in ("rotation", "perspective"):
        assert _fraction_on_trace(out.lead_mask, _points(page.sidecar), radius=0) < 0.5


def test_composed_geometry_and_wrinkles(page: RenderedPage) -> None:
    out = apply_distortions(
        page,
        ["wrinkles", {"name": "rotation", "angle_deg": -5.0}, "blur", {"name": "perspective", "max_shift": 0.04}],
        rng=2,
    )
    H = np.asarray(out.sidecar["homography"])
    assert _fraction_on_trace(out.lead_mask, _map(H, _points(page.sidecar))) > 0.95
    creases = out.sidecar["distortions"][0]["creases"]
    assert all(abs(c["displacement_px"]) <= 1.5 for c in creases)


def test_recorded_parameters_replay_exactly(page: RenderedPage) -> None:
    out = apply_preset(page, "photo", rng=11)
    recorded = out.sidecar["distortions"]
    replay = apply_distortions(page, recorded, rng=999)  # other rng: all parameters come from the record
    assert np.array_equal(replay.image, out.image)
    assert np.array_equal(replay.lead_mask, out.lead_mask)
    assert np.allclose(replay.sidecar["homography"], out.sidecar["homography"])


def test_each_distortion_runs_and_is_recorded(page: RenderedPage) -> None:
    for name in DISTORTIONS:
        out = apply_distortions(page, [name], rng=0)
        rec = out.sidecar["distortions"]
        assert len(rec) == 1 and rec[0]["name"] == name and len(rec[0]) > 1, name
        assert not np.array_equal(out.image, page.image), name


def test_determinism_and_mixed(page: RenderedPage) -> None:
    a = apply_preset(page, "mixed", rng=5)
    b = apply_preset(page, "mixed", rng=5)
    assert a.image.tobytes() == b.image.tobytes()
    assert json.dumps(a.sidecar) == json.dumps(b.sidecar)
    chosen = {apply_preset(page, "mixed", rng=s).sidecar["preset"] for s in range(12)}
    assert len(chosen) >= 3 and "mixed" not in chosen


def test_bw_is_grey(page: RenderedPage) -> None:
    out = apply_distortions(page, [{"name": "bw", "mode": "binary", "threshold": 180.0}], rng=0)
    assert np.array_equal(out.image[..., 0], out.image[..., 2])
    assert set(np.unique(out.image)) <= {0, 255}


def test_errors(page: RenderedPage) -> None:
    with pytest.raises(ValueError):
        apply_preset(page, "sepia", rng=0)
    with pytest.raises(ValueError):
        apply_distortions(page, ["melt"], rng=0)


def test_pen_marks_are_text_in_the_class_mask(page: RenderedPage) -> None:
    from ecgrender.page import CLASS_TEXT

    out = apply_distortions(
        page, [{"name": "pen_marks", "num_marks": 6, "colour": [20, 40, 150], "width_px": 3}], rng=2
    )
    changed = np.abs(out.image.astype(int) - page.image.astype(int)).max(axis=2) > 60
    assert changed.sum() > 200  # the pen left visible ink
    pen = (out.class_mask == CLASS_TEXT) & (page.class_mask != CLASS_TEXT)
    assert pen.sum() > 100 and (out.lead_mask[pen] == 0).all()
    blue = out.image[pen].astype(int)
    assert np.median(blue[:, 2] - blue[:, 0]) > 40  # drawn in the pen's colour, not the trace's


def test_print_texture_keeps_solid_ink_and_breaks_faint_lines(page: RenderedPage) -> None:
    from ecgrender.page import CLASS_GRID, CLASS_TRACE

    out = apply_distortions(
        page,
        [
            {
                "name": "print_texture",
                "band_strength": 0.0,
                "halftone_strength": 0.8,
                "halftone_period_px": 4.0,
                "speckle": 0.0,
            }
        ],
        rng=0,
    )
    dark_before = 255.0 - page.image.astype(float).mean(axis=2)
    dark_after = 255.0 - out.image.astype(float).mean(axis=2)
    trace = (page.class_mask == CLASS_TRACE) & (dark_before > 200)
    grid = (page.class_mask == CLASS_GRID) & (dark_before > 20) & (dark_before < 80)
    assert trace.any() and grid.any()
    assert np.median(dark_after[trace] / dark_before[trace]) > 0.95  # solid ink prints whole
    assert np.std(dark_after[grid] / dark_before[grid]) > 0.15  # faint ink is screened into dots
    np.testing.assert_array_equal(out.class_mask, page.class_mask)


def test_real_preset_is_replayable(page: RenderedPage) -> None:
    out = apply_preset(page, "real", rng=11)
    names = [d["name"] for d in out.sidecar["distortions"]]
    assert names[:2] == ["paper_texture", "print_texture"] and "jpeg" in names
    again = apply_distortions(page, out.sidecar["distortions"], rng=999)
    np.testing.assert_array_equal(again.image, out.image)
