"""End-to-end tests of ``python -m ecgrender render`` (ecgrender.render_cli.main) and ecgrender.records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import wfdb
from PIL import Image

from ecgrender import render_cli
from ecgrender.page import STANDARD_LEADS
from ecgrender.records import load_record_12, write_challenge_record


def _make_inputs(root: Path) -> None:
    """Two small 12-lead records (one in a subfolder, lowercase names) and one corrupt record."""
    fs = 250
    t = np.arange(10 * fs) / fs
    sig = np.stack([0.8 * np.sin(2 * np.pi * 1.2 * t + j) for j in range(12)], 1)
    (root / "sub").mkdir(parents=True)
    wfdb.wrsamp(
        "rec_a",
        fs=fs,
        units=["mV"] * 12,
        sig_name=list(STANDARD_LEADS),
        p_signal=sig,
        fmt=["16"] * 12,
        adc_gain=[1000.0] * 12,
        baseline=[0] * 12,
        comments=["Age: 50", "Sex: Female", "Labels: NORM"],
        write_dir=str(root),
    )
    wfdb.wrsamp(
        "rec_b",
        fs=fs,
        units=["mV"] * 12,
        sig_name=[n.lower() for n in STANDARD_LEADS],
        p_signal=sig[: 6 * fs] * 0.5,
        fmt=["16"] * 12,
        adc_gain=[1000.0] * 12,
        baseline=[0] * 12,
        comments=["Labels: AFIB/AFL, CD"],
        write_dir=str(root / "sub"),
    )
    (root / "broken.hea").write_text("broken 12 250 2500\nbroken.dat 16 1000/mV 16 0 0 0 0 I\n")


def _args(inp: Path, out: Path, *extra: str) -> list[str]:
    return ["-i", str(inp), "-o", str(out), "--images-per-record", "2", "--dpi", "80", "--seed", "3", *extra]


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    _make_inputs(inp)
    assert render_cli.main(_args(inp, out, "--preset", "scan")) == 0
    summary = capsys.readouterr().out
    assert "rendered 2 records (4 images)" in summary and "skipped 1" in summary
    for rec in ("rec_a", "sub/rec_b"):
        base = out / rec
        name = base.name
        header = base.with_suffix(".hea").read_text()
        assert f"# Image: {name}-0.png, {name}-1.png" in header
        assert "# Labels:" in header
        for k in range(2):
            img = np.asarray(Image.open(base.parent / f"{name}-{k}.png"))
            leads = np.asarray(Image.open(base.parent / f"{name}-{k}_leads.png"))
            classes = np.asarray(Image.open(base.parent / f"{name}-{k}_classes.png"))
            sc = json.loads((base.parent / f"{name}-{k}.json").read_text())
            assert img.shape[:2] == leads.shape == classes.shape == (sc["height_px"], sc["width_px"])
            assert leads.max() <= 12 and classes.max() == 3
            assert sc["preset"] == "scan" and len(sc["homography"]) == 3 and sc["record"] == rec
        sig, fs, present, comments = load_record_12(base)
        assert fs == 250 and present == STANDARD_LEADS and sig.shape[0] == (2500 if name == "rec_a" else 1500)
        assert not np.isnan(sig).any()
    assert "Age: 50" in (out / "rec_a.hea").read_text()
    assert not (out / "broken.hea").exists()
    # the mask files never match the <record>-<k>.png image pattern
    pngs = sorted(p.name for p in out.glob("rec_a-*.png"))
    assert pngs == [
        "rec_a-0.png",
        "rec_a-0_classes.png",
        "rec_a-0_leads.png",
        "rec_a-1.png",
        "rec_a-1_classes.png",
        "rec_a-1_leads.png",
    ]


def test_cli_workers_do_not_change_results(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    _make_inputs(inp)
    assert render_cli.main(_args(inp, tmp_path / "o1", "--preset", "mixed")) == 0
    assert render_cli.main(_args(inp, tmp_path / "o2", "--preset", "mixed", "--workers", "2")) == 0
    files = sorted(p.relative_to(tmp_path / "o1") for p in (tmp_path / "o1").rglob("*") if p.is_file())
    assert len(files) == 2 * (2 + 2 * 4)
    for f in files:
        assert (tmp_path / "o1" / f).read_bytes() == (tmp_path / "o2" / f).read_bytes(), f


def test_cli_mask_unplotted(tmp_path: Path) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    _make_inputs(inp)
    args = [
        "-i",
        str(inp),
        "-o",
        str(out),
        "--images-per-record",
        "1",
        "--dpi",
        "60",
        "--layout",
        "3x4",
        "--preset",
        "clean",
        "--mask-unplotted",
    ]
    assert render_cli.main(args) == 0
    sig, fs, _, _ = load_record_12(out / "rec_a")
    # 3x4: lead I shown in [0, 2.5) s only, aVR in [2.5, 5) s
    assert np.isfinite(sig[:625, 0]).all() and np.isnan(sig[625:, 0]).all()
    assert np.isnan(sig[:625, 3]).all() and np.isfinite(sig[625:1250, 3]).all()


def test_failed_image_not_named_in_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    _make_inputs(inp)
    real = render_cli.apply_preset
    calls = {"n": 0}

    def flaky(page, preset, rng):  # every second image fails
        calls["n"] += 1
        if calls["n"] % 2 == 0:
            raise RuntimeError("simulated failure")
        return real(page, preset, rng)

    monkeypatch.setattr(render_cli, "apply_preset", flaky)
    assert render_cli.main(_args(inp, out, "--preset", "clean")) == 0
    header = (out / "rec_a.hea").read_text()
    assert "# Image: rec_a-0.png\n" in header + "\n" and "rec_a-1.png" not in header
    assert not any(out.glob("rec_a-1*"))


def test_cli_bad_input_folder(tmp_path: Path) -> None:
    assert render_cli.main(["-i", str(tmp_path / "nope"), "-o", str(tmp_path / "o")]) == 2


def test_write_challenge_record_round_trip(tmp_path: Path) -> None:
    sig = np.stack([np.linspace(-40, 40, 500)] + [np.linspace(-1, 1, 500)] * 11, 1)
    sig[10:20, 5] = np.nan
    write_challenge_record(tmp_path, "r", sig, 500, STANDARD_LEADS, ["Labels: NORM", "Image: old.png"], ["r-0.png"])
    text = (tmp_path / "r.hea").read_text()
    assert "old.png" not in text and "# Image: r-0.png" in text and "# Labels: NORM" in text
    assert " 16 1000" in text.splitlines()[1]
    back, fs, present, _ = load_record_12(tmp_path / "r")
    assert np.isnan(back[10:20, 5]).all() and np.isfinite(back[20:, 5]).all()
    assert back[:, 0].max() == pytest.approx(32.767) and back[:, 0].min() == pytest.approx(-32.767)
    assert np.allclose(back[:, 1], sig[:, 1], atol=6e-4)
    with pytest.raises(ValueError):
        write_challenge_record(tmp_path, "x", sig, 500, STANDARD_LEADS[:3])
