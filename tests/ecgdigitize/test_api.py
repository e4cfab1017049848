"""The Python API (``ecgdigitize.digitize_image``) on a page our renderer draws: the signal, its report, the CSV and
WFDB writers, the 12-lead plot and the overlay; the ``ecg-digitize`` command gives the same signal and report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

STANDARD = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def render_test_page(path: Path, seed: int = 0, dpi: float = 200.0) -> np.ndarray:
    """A clean 3x4+1 page of a synthetic NORM record at ``dpi``, saved as PNG; returns the true signal."""
    from ecgrender.page import PageSpec, render_page
    from ecgrender.synth import synthesize_ecg

    signal, _ = synthesize_ecg(["NORM"], fs=500.0, duration_s=10.0, rng=seed)
    page = render_page(signal, 500.0, STANDARD, PageSpec(layout="3x4+1", dpi=dpi), rng=seed)
    Image.fromarray(page.image).save(path)
    return signal


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("api") / "page.png"
    render_test_page(path)
    return path


@pytest.fixture(scope="module")
def result(page):
    from ecgdigitize import digitize_image

    return digitize_image(page)


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], np.array([[float(v) if v else np.nan for v in r] for r in rows[1:]])


def test_result_fields(result, page):
    assert result.signal.shape == (5000, 12) and result.signal.dtype == np.float64
    assert result.fs == 500.0 and result.lead_names == STANDARD and result.layout == "3x4+1"
    assert result.status == "ok" and result.status_reasons == [] and 0.5 < result.confidence <= 1.0
    finite = np.isfinite(result.signal)
    assert finite[:, 1].mean() > 0.9  # lead II: the rhythm strip
    assert 0.2 < finite[:, 0].mean() < 0.3  # lead I: its quarter of the page, NaN elsewhere
    rep = result.report
    assert rep["status"] == "ok" and rep["name"] == "page" and rep["source"] == str(page.resolve())
    assert rep["layout"]["name"] == "3x4+1" and rep["scale"]["source"] == "grid" and rep["model"] == "classical"
    assert rep["leads"] == STANDARD and rep["num_samples"] == 5000 and rep["labels"] is None
    json.dumps(rep, allow_nan=False)  # JSON-ready: no NaN, no numpy types
    np.testing.assert_allclose(result.time_s[[0, 500]], [0.0, 1.0])


def test_report_schema_lists_every_field(result):
    schema = json.loads((Path(__file__).resolve().parents[2] / "docs" / "report.schema.json").read_text())
    assert set(result.report) <= set(schema["properties"]), set(result.report) - set(schema["properties"])
    assert set(schema["required"]) <= set(result.report)
    for name, prop in schema["properties"].items():
        assert prop.get("description"), name


def test_csv_and_wfdb(result, tmp_path):
    import wfdb

    header, table = _read_csv(result.to_csv(tmp_path / "page.csv"))
    assert header == ["time_s", *STANDARD] and table.shape == (5000, 13)
    np.testing.assert_allclose(table[:, 0], result.time_s, atol=1e-6)
    np.testing.assert_array_equal(np.isnan(table[:, 1:]), np.isnan(result.signal))  # NaN: empty cell
    np.testing.assert_allclose(table[:, 1:], result.signal, atol=6e-5, equal_nan=True)
    hea = result.to_wfdb(tmp_path / "rec" / "page", comments=["Source: page.png"])
    assert hea == tmp_path / "rec" / "page.hea" and "# Source: page.png" in hea.read_text()
    signal, fields = wfdb.rdsamp(str(tmp_path / "rec" / "page"))
    assert fields["sig_name"] == STANDARD and fields["fs"] == 500 and fields["units"] == ["mV"] * 12
    np.testing.assert_array_equal(np.isnan(signal), np.isnan(result.signal))
    np.testing.assert_allclose(signal, result.signal, atol=6e-4, equal_nan=True)  # 1000 ADC units per mV
    with pytest.raises(ValueError):
        result.to_wfdb(tmp_path / "bad name")


def test_plot_and_overlay(result, tmp_path):
    for style in ("rows", "3x4+1"):
        result.plot(tmp_path / f"plot_{style}.png", style=style)
        with Image.open(tmp_path / f"plot_{style}.png") as im:
            assert im.width > 800 and im.height > 800
    picture = result.overlay(tmp_path / "overlay.png")
    page_h, page_w = result.result.rectified.shape[:2]
    assert picture.shape[1] == page_w and picture.shape[0] > page_h  # the text sits in a margin above the page
    assert Image.open(tmp_path / "overlay.png").size == (picture.shape[1], picture.shape[0])


def test_nan_gaps_are_shaded_in_the_plot():
    from ecgdigitize.plot import nan_runs, plot_ecg

    sig = np.zeros((1000, 12))
    sig[200:400, 3] = np.nan
    assert nan_runs(sig[:, 3]) == [(200, 400)] and nan_runs(sig[:, 0]) == []
    fig = plot_ecg(sig, 100.0, STANDARD)
    ax = fig.axes[3]
    spans = [p for p in ax.patches]
    assert len(spans) == 1 and "mV" in ax.get_ylabel() and fig.axes[-1].get_xlabel() == "time (s)"


def test_api_matches_the_command(result, page, tmp_path):
    from ecgentry.__main__ import main

    out = tmp_path / "out"
    assert main(["digitize", str(page), "-o", str(out), "--plot", "-q"]) == 0
    header, table = _read_csv(out / "page.csv")
    np.testing.assert_array_equal(table[:, 1:], _read_csv(result.to_csv(tmp_path / "api.csv"))[1][:, 1:])
    report = json.loads((out / "page.json").read_text())
    expected = dict(result.report)
    for rep in (report, expected):
        rep.pop("timings_s"), rep.pop("outputs")
    assert report == expected
    for suffix in (".hea", ".dat", ".csv", "_overlay.png", "_plot.png", ".json"):
        assert (out / f"page{suffix}").is_file(), suffix


def test_array_input_and_pages(page):
    from ecgdigitize import digitize_image
    from ecgdigitize.image_io import ImageRefused

    blank = np.full((400, 600, 3), 255, np.uint8)
    empty = digitize_image(blank, seconds=2.0, fs=250.0)
    assert empty.status == "failed" and empty.signal.shape == (500, 12) and np.isnan(empty.signal).all()
    assert empty.status_reasons and empty.report["status"] == "failed"
    with pytest.raises(ValueError):
        digitize_image(page, page=2)
    with pytest.raises(FileNotFoundError):
        digitize_image(page.with_name("missing.png"))
    bad = page.with_name("bad.png")
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageRefused):
        digitize_image(bad)
