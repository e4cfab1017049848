"""Tests for ecgrender.page: geometry round trip, layouts, masks, lead sets, sampling rates, edge cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecgrender.page import LAYOUTS, STANDARD_LEADS, PageSpec, RenderedPage, canonical_lead_name, render_page
from ecgvocab import snr_db


def make_signal(fs: float, seconds: float, num_leads: int = 12, seed: int = 0) -> np.ndarray:
    """ECG-like test signal (num_samples, num_leads) in mV: baseline wander + narrow QRS-like spikes."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(fs * seconds))) / fs
    out = np.empty((t.size, num_leads))
    for j in range(num_leads):
        beat = np.zeros_like(t)
        for c in np.arange(0.3, seconds, 0.85):
            beat += rng.uniform(0.6, 1.5) * np.exp(-(((t - c) / 0.012) ** 2))
            beat += 0.25 * np.exp(-(((t - c - 0.25) / 0.05) ** 2))
        out[:, j] = beat * rng.choice([-1, 1]) + 0.1 * np.sin(2 * np.pi * 0.3 * t + j)
    return out


def reconstruct(page: RenderedPage, num_samples: int) -> np.ndarray:
    """Map every sidecar point back to (sample, mV) with the recorded scales; NaN where not plotted."""
    sc = page.sidecar
    out = np.full((num_samples, 12), np.nan)
    for lead in sc["leads"]:
        x = np.asarray(lead["x_px"])
        y = np.asarray(lead["y_px"])
        if x.size == 0:
            continue
        n = lead["start_sample"] + (x - lead["x0_px"]) * sc["fs"] / (sc["paper_speed_mm_s"] * sc["px_per_mm_x"])
        idx = np.round(n).astype(int)
        assert np.allclose(n, idx, atol=0.01), "x_px does not map back to integer samples"
        out[idx, STANDARD_LEADS.index(lead["name"])] = (lead["baseline_y_px"] - y) / (
            sc["gain_mm_mv"] * sc["px_per_mm_y"]
        )
    return out


@pytest.mark.parametrize("layout", LAYOUTS)
def test_geometry_round_trip_and_lead_boxes(layout: str) -> None:
    fs = 500.0
    sig = make_signal(fs, 10.0)
    page = render_page(sig, fs, STANDARD_LEADS, PageSpec(layout=layout, dpi=100), rng=1)
    expected = {"3x4+1": 13, "3x4+3": 15, "3x4": 12, "6x2": 12, "12x1": 12}[layout]
    assert len(page.sidecar["leads"]) == expected
    assert sorted(set(np.unique(page.lead_mask)) - {0}) == list(range(1, 13))
    rec = reconstruct(page, sig.shape[0])
    plotted = np.isfinite(rec)
    # each lead shows its column's share of the 10 s; rhythm strips show all of it
    per_lead = {"3x4+1": 1250, "3x4+3": 1250, "3x4": 1250, "6x2": 2500, "12x1": 5000}[layout]
    rhythm = {"3x4+1": 1, "3x4+3": 3}.get(layout, 0)
    assert plotted.sum() == (12 - rhythm) * per_lead + rhythm * 5000
    assert snr_db(sig[plotted], rec[plotted]) >= 30.0
    json.dumps(page.sidecar, allow_nan=False)


def test_columns_continue_in_time() -> None:
    fs = 500.0
    page = render_page(make_signal(fs, 10.0), fs, STANDARD_LEADS, PageSpec(layout="3x4"), rng=0)
    by_name = {lead["name"]: lead for lead in page.sidecar["leads"]}
    assert (by_name["I"]["start_sample"], by_name["I"]["end_sample"]) == (0, 1250)
    assert (by_name["aVR"]["start_sample"], by_name["aVR"]["end_sample"]) == (1250, 2500)
    assert (by_name["V6"]["start_sample"], by_name["V6"]["end_sample"]) == (3750, 5000)
    assert by_name["V6"]["column"] == 3 and by_name["III"]["row"] == 2


def test_sidecar_points_lie_on_lead_mask() -> None:
    """Pixels drawn for a lead agree with its sidecar coordinates."""
    fs = 500.0
    page = render_page(make_signal(fs, 10.0), fs, STANDARD_LEADS, PageSpec(layout="12x1", gain=5.0), rng=0)
    h, w = page.lead_mask.shape
    hits = total = 0
    for lead in page.sidecar["leads"]:
        k = STANDARD_LEADS.index(lead["name"]) + 1
        xs = np.round(lead["x_px"]).astype(int)
        ys = np.round(lead["y_px"]).astype(int)
        ok = (xs >= 1) & (xs < w - 1) & (ys >= 1) & (ys < h - 1)
        xs, ys = xs[ok], ys[ok]
        win = np.stack([page.lead_mask[ys + dy, xs + dx] == k for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
        hits += int(win.any(axis=0).sum())
        total += xs.size
    assert total > 0 and hits / total > 0.97


def test_image_trace_matches_signal() -> None:
    """A column-wise centroid of the rhythm strip's mask pixels reproduces lead II (image-level check)."""
    fs = 500.0
    t = np.arange(5000) / fs
    sig = np.stack([0.6 * np.sin(2 * np.pi * 1.3 * t + j) + 0.3 * np.sin(2 * np.pi * 3.1 * t) for j in range(12)], 1)
    page = render_page(sig, fs, STANDARD_LEADS, PageSpec(layout="3x4+1", dpi=200), rng=0)
    rhythm = [lead for lead in page.sidecar["leads"] if lead["rhythm"]][0]
    x = np.asarray(rhythm["x_px"])
    base = rhythm["baseline_y_px"]
    band = page.lead_mask[int(base) - 120 : int(base) + 120]
    cols = np.arange(int(np.ceil(x[0])) + 2, int(x[-1]) - 2)
    ys, xs = np.nonzero(band[:, cols] == 2)
    est = np.full(cols.size, np.nan)
    sums = np.bincount(xs, weights=ys + int(base) - 120, minlength=cols.size)
    counts = np.bincount(xs, minlength=cols.size)
    est[counts > 0] = sums[counts > 0] / counts[counts > 0]
    sc = page.sidecar
    t = (cols - rhythm["x0_px"]) / (sc["paper_speed_mm_s"] * sc["px_per_mm_x"])
    ref = np.interp(t * fs, np.arange(sig.shape[0]), sig[:, 1])
    val = (base - est) / (sc["gain_mm_mv"] * sc["px_per_mm_y"])
    good = np.isfinite(val)
    assert good.mean() > 0.99
    assert snr_db(ref[good], val[good]) > 25.0


@pytest.mark.parametrize("grid", ["red", "none"])
def test_masks_consistent_with_image(grid: str) -> None:
    fs = 250.0
    page = render_page(make_signal(fs, 10.0), fs, STANDARD_LEADS, PageSpec(grid_color=grid, dpi=150), rng=2)
    h, w = page.image.shape[:2]
    assert page.image.dtype == np.uint8 and page.image.shape == (h, w, 3)
    assert page.lead_mask.shape == page.class_mask.shape == (h, w)
    grey = page.image.mean(axis=2)
    trace = page.lead_mask > 0
    assert np.array_equal(trace, page.class_mask == 3)
    assert np.median(grey[trace]) < 60 and (grey[trace] < 128).mean() > 0.9
    assert (page.class_mask == 2).sum() > 100  # labels, pulses, header
    if grid == "none":
        assert not (page.class_mask == 1).any()
        assert (grey[page.class_mask == 0] > 250).mean() > 0.95
    else:
        assert (page.class_mask == 1).mean() > 0.05
        # grid pixels are reddish
        px = page.image[page.class_mask == 1].astype(int)
        assert (px[:, 0] - px[:, 2]).mean() > 30
    assert len(page.sidecar["calibration_pulses"]) == 4


def test_determinism() -> None:
    fs = 500.0
    sig = make_signal(fs, 10.0)
    spec = PageSpec.random(np.random.default_rng(5))
    a = render_page(sig, fs, STANDARD_LEADS, spec, rng=7)
    b = render_page(sig, fs, STANDARD_LEADS, PageSpec.random(np.random.default_rng(5)), rng=7)
    assert a.image.tobytes() == b.image.tobytes()
    assert json.dumps(a.sidecar) == json.dumps(b.sidecar)
    c = render_page(sig, fs, STANDARD_LEADS, spec, rng=8)  # another seed: other header text
    assert a.image.tobytes() != c.image.tobytes()


def test_page_sizes_and_scales() -> None:
    sig = make_signal(500.0, 10.0)
    p = render_page(sig, 500.0, STANDARD_LEADS, PageSpec(), rng=0)
    assert p.image.shape == (1700, 2200, 3)
    assert p.sidecar["px_per_mm_x"] == pytest.approx(200 / 25.4, rel=1e-3)
    p = render_page(sig, 500.0, STANDARD_LEADS, PageSpec(paper="a4", dpi=100), rng=0)
    assert p.image.shape == (827, 1169, 3)
    p = render_page(sig, 500.0, STANDARD_LEADS, PageSpec(paper_speed=50.0, dpi=100, layout="3x4"), rng=0)
    assert p.sidecar["span_s"] == 5.0
    assert max(lead["end_sample"] for lead in p.sidecar["leads"]) == 2500


def test_other_lead_sets_and_lowercase_names() -> None:
    fs = 1000.0
    sig = make_signal(fs, 10.0, num_leads=15)
    names = [n.lower() for n in STANDARD_LEADS] + ["vx", "vy", "vz"]
    page = render_page(sig, fs, names, PageSpec(dpi=100), rng=0)
    assert sorted(set(np.unique(page.lead_mask)) - {0}) == list(range(1, 13))
    rec = reconstruct(page, sig.shape[0])
    assert snr_db(sig[:, :12][np.isfinite(rec)], rec[np.isfinite(rec)]) >= 30
    # AVR spelling and a partial lead set: missing leads are blank
    subset = ["I", "II", "AVR", "V1", "V2", "V3", "V4", "V5", "V6"]
    page = render_page(make_signal(fs, 10.0, num_leads=9), fs, subset, PageSpec(dpi=100), rng=0)
    present = set(np.unique(page.lead_mask)) - {0}
    assert present == {1, 2, 4, 7, 8, 9, 10, 11, 12}
    missing = [lead for lead in page.sidecar["leads"] if lead["name"] == "aVF"][0]
    assert missing["x_px"] == [] and len(missing["missing_samples"]) == 2500
    assert canonical_lead_name("avl") == "aVL" and canonical_lead_name("vx") is None


@pytest.mark.parametrize("fs", [100.0, 250.0, 500.0, 1000.0])
def test_sampling_rates(fs: float) -> None:
    sig = make_signal(fs, 10.0)
    page = render_page(sig, fs, STANDARD_LEADS, PageSpec(dpi=100), rng=0)
    sc = page.sidecar
    lead = sc["leads"][0]
    assert len(lead["x_px"]) == int(2.5 * fs)
    assert np.diff(lead["x_px"]).mean() == pytest.approx(25.0 * sc["px_per_mm_x"] / fs, rel=1e-3)
    rec = reconstruct(page, sig.shape[0])
    assert snr_db(sig[np.isfinite(rec)], rec[np.isfinite(rec)]) >= 30


def test_short_and_long_records() -> None:
    fs = 500.0
    short = render_page(make_signal(fs, 4.0), fs, STANDARD_LEADS, PageSpec(dpi=100), rng=0)
    by = {(lead["name"], lead["rhythm"]): lead for lead in short.sidecar["leads"]}
    assert by[("II", True)]["end_sample"] == 2000
    assert by[("V1", False)]["x_px"] == [] and by[("V1", False)]["end_sample"] == by[("V1", False)]["start_sample"]
    assert by[("aVR", False)]["end_sample"] == 2000 and len(by[("aVR", False)]["x_px"]) == 750
    assert 7 not in np.unique(short.lead_mask)  # V1 never drawn
    long = render_page(make_signal(fs, 25.0), fs, STANDARD_LEADS, PageSpec(dpi=100), rng=0)
    assert max(lead["end_sample"] for lead in long.sidecar["leads"]) == 5000


def test_nan_samples_not_drawn() -> None:
    fs = 500.0
    sig = make_signal(fs, 10.0)
    sig[:, :] = 0.0
    sig[300:600, 0] = np.nan  # lead I, column 0, 0.6-1.2 s
    page = render_page(sig, fs, STANDARD_LEADS, PageSpec(dpi=200, lead_labels=False, calibration_pulse=False), rng=0)
    lead = [lead for lead in page.sidecar["leads"] if lead["name"] == "I"][0]
    assert lead["missing_samples"] == list(range(300, 600))
    assert len(lead["x_px"]) == 1250 - 300
    assert all(np.isfinite(lead["x_px"])) and all(np.isfinite(lead["y_px"]))
    step = 25.0 * page.sidecar["px_per_mm_x"] / fs
    x_a = int(np.ceil(lead["x0_px"] + 310 * step))
    x_b = int(lead["x0_px"] + 590 * step)
    y = int(round(lead["baseline_y_px"]))
    assert not (page.lead_mask[y - 5 : y + 6, x_a:x_b] == 1).any()
    assert (page.lead_mask[y - 5 : y + 6, x_b + 10 : x_b + 50] == 1).any()


def test_clipping_at_page_edge() -> None:
    fs = 500.0
    sig = make_signal(fs, 10.0)
    sig[100:110, 0] = 40.0  # 400 mm above the baseline: leaves the page
    page = render_page(sig, fs, STANDARD_LEADS, PageSpec(dpi=100), rng=0)
    lead = page.sidecar["leads"][0]
    assert lead["clipped_samples"] == list(range(100, 110))
    assert min(lead["y_px"]) < -100  # true, unclipped coordinate kept
    rec = reconstruct(page, sig.shape[0])
    assert rec[105, 0] == pytest.approx(40.0, abs=1e-3)


def test_spec_validation_and_random() -> None:
    with pytest.raises(ValueError):
        PageSpec(layout="4x3")
    with pytest.raises(ValueError):
        PageSpec(grid_color="purple")
    with pytest.raises(ValueError):
        render_page(np.zeros((100, 3)), 500.0, ["I", "II"])
    assert PageSpec(layout="3x4+3").rhythm_leads == ("II", "V1", "V5")
    assert PageSpec(layout="6x2").rhythm_leads == ()
    rng = np.random.default_rng(0)
    specs = [PageSpec.random(rng) for _ in range(40)]
    assert len({s.layout for s in specs}) >= 4 and len({s.grid_color for s in specs}) >= 4
    assert all(0.5 <= s.trace_width_pt <= 1.5 for s in specs)
    s = PageSpec.random(rng, layout="3x4+3", dpi=50.0)
    assert s.layout == "3x4+3" and s.dpi == 50.0 and s.rhythm_leads == ("II", "V1", "V5")
    page = render_page(make_signal(100.0, 10.0), 100.0, STANDARD_LEADS, s, rng=0)
    assert page.image.shape[1] == int(round(s.dpi * (279.4 if s.paper == "letter" else 297.0) / 25.4))


def test_shared_data_records_render(shared_data) -> None:
    from ecgrender.records import load_record_12

    paths = [shared_data / "js00001" / "JS00001", shared_data / "ptbdb_s0010" / "s0010_re"]
    ptbxl = sorted((shared_data / "ptbxl" / "records100").rglob("*.hea"))
    if ptbxl:
        paths.append(ptbxl[0].with_suffix(""))
    for path in paths:
        sig, fs, present, comments = load_record_12(path)
        assert sig.shape[1] == 12 and present == STANDARD_LEADS
        page = render_page(sig, fs, STANDARD_LEADS, PageSpec(dpi=100), rng=0)
        rec = reconstruct(page, sig.shape[0])
        ok = np.isfinite(rec)
        assert ok.sum() == min(sig.shape[0], int(10 * fs)) * (11 / 4 + 1)
        assert snr_db(sig[ok], rec[ok]) >= 30
    _, _, _, comments = load_record_12(shared_data / "js00001" / "JS00001")
    assert any(c.startswith("Labels:") for c in comments)
