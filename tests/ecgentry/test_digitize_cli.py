"""``python -m ecgentry digitize``: arguments are checked before any model loads and bad ones are reported in one
line with exit code 2, never a traceback; unreadable images are reported before the model loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from ecgentry.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def inputs(tmp_path: Path) -> dict[str, Path]:
    """A blank page, a corrupt image, an existing plain file and a model folder whose model cannot be loaded."""
    Image.new("RGB", (300, 200), "white").save(tmp_path / "page.png")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "afile").write_text("x")
    model = tmp_path / "broken_model"
    model.mkdir()
    (model / "entry.json").write_text("{}")
    return {
        "page": tmp_path / "page.png",
        "corrupt": tmp_path / "corrupt.png",
        "file": tmp_path / "afile",
        "model": model,
        "tmp": tmp_path,
    }


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ecgentry", "digitize", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("case", ["output_is_a_file", "missing_input", "bad_fs", "bad_workers", "no_model"])
def test_bad_arguments_one_line_exit_2(inputs, case):
    page, model, out = str(inputs["page"]), str(inputs["model"]), str(inputs["tmp"] / "out")
    argv = {
        "output_is_a_file": [page, "-m", model, "-o", str(inputs["file"])],
        "missing_input": [page, str(inputs["tmp"] / "nothing.png"), "-m", model, "-o", out],
        "bad_fs": [page, "-m", "classical", "-o", out, "--fs", "nan"],
        "bad_workers": [page, "-m", "classical", "-o", out, "--workers", "0"],
        "no_model": [page, "-m", str(inputs["tmp"]), "-o", out],
    }[case]
    proc = _cli(*argv)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "model could not be loaded" not in proc.stderr  # reported before any model load


def test_model_that_cannot_load_is_one_line_and_after_the_corrupt_image(inputs):
    proc = _cli(
        str(inputs["page"]), str(inputs["corrupt"]), "-m", str(inputs["model"]), "-o", str(inputs["tmp"] / "out")
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 2, proc.stderr
    assert "corrupt.png" in lines[0] and "unreadable image" in lines[0]
    assert "could not be loaded" in lines[1]


def test_corrupt_image_reported_without_loading_the_model(inputs, monkeypatch, caplog):
    import ecgentry.digitize_cli as cli

    loads = []
    monkeypatch.setattr(cli, "_init_worker", lambda *a: loads.append(a))
    with caplog.at_level("ERROR"):
        code = main(["digitize", str(inputs["corrupt"]), "-m", str(inputs["model"]), "-o", str(inputs["tmp"] / "o")])
    assert code == 1 and not loads
    assert any("corrupt.png" in m and "unreadable image" in m for m in caplog.messages)


def test_outputs_never_written_through_a_symlink_pointing_out(inputs):
    import os

    out = inputs["tmp"] / "out"
    out.mkdir()
    victim = inputs["tmp"] / "victim.json"
    victim.write_text("keep")
    os.symlink(victim, out / "page.json")
    code = main(["digitize", str(inputs["page"]), "-m", "classical", "-o", str(out), "--format", "csv"])
    assert code == 1 and victim.read_text() == "keep"
    assert not (out / "page.csv").exists()


@pytest.mark.parametrize("argv", [["--no-such-option"], ["-o"], [], ["--layout", "5x5"], ["-q", "-v"]])
def test_argparse_errors_are_one_line(inputs, argv):
    extra = [] if argv == [] or argv == ["-o"] else ["-o", str(inputs["tmp"] / "out")]
    proc = _cli(str(inputs["page"]), *extra, *argv) if argv != [] else _cli()
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in proc.stderr, proc.stderr


def _render_page(path: Path) -> None:
    from ecgrender.page import PageSpec, render_page
    from ecgrender.synth import synthesize_ecg

    leads = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    signal, _ = synthesize_ecg(["NORM"], fs=500.0, duration_s=10.0, rng=0)
    Image.fromarray(render_page(signal, 500.0, leads, PageSpec(layout="3x4+1", dpi=200), rng=0).image).save(path)


@pytest.mark.slow  # a fresh process trains the lead-label classifier (about 12 s)
def test_without_a_model_writes_every_output_and_one_line_per_page(tmp_path):
    """No -m: the classical trace map; not a terminal: one status line per page, then the summary."""
    import json

    _render_page(tmp_path / "scan.png")
    out = tmp_path / "out"
    proc = _cli(str(tmp_path / "scan.png"), "-o", str(out), "--plot")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 2, proc.stderr
    assert lines[0].startswith("[1/1] ") and "-> scan: ok, layout 3x4+1" in lines[0]
    assert lines[1].startswith("digitized 1 of 1 page(s)")
    for suffix in (".hea", ".dat", ".csv", "_overlay.png", "_plot.png", ".json"):
        assert (out / f"scan{suffix}").is_file(), suffix
    report = json.loads((out / "scan.json").read_text())
    assert report["status"] == "ok" and report["model"] == "classical" and report["labels"] is None
    assert json.loads((out / "summary.json").read_text())["pages_ok"] == 1


def test_quiet_prints_nothing_but_errors(inputs, capsys):
    """-q: no progress, no summary; a page without signal is no error (exit code 1, status failed in its report)."""
    import json

    out = inputs["tmp"] / "quiet"
    assert main(["digitize", str(inputs["page"]), "-o", str(out), "-q", "--format", "csv"]) == 1
    assert capsys.readouterr().err.strip() == ""
    assert json.loads((out / "page.json").read_text())["status"] == "failed"
    assert (out / "page.csv").is_file() and not (out / "page.hea").exists()


def test_progress_bar_on_a_terminal_keeps_log_lines_whole(monkeypatch, capsys):
    """On a terminal a bar; a log line emitted while it runs is written above it, on a line of its own."""
    import logging

    import ecgentry.digitize_cli as cli

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    args = cli.get_parser().parse_args(["x.png", "-o", "out"])
    cli.configure_logging(args)
    progress = cli._Progress(3, quiet=False, verbose=False, output="out")
    assert progress.bar is not None
    page = {"name": "a", "page": 1, "status": "ok", "status_reasons": [], "confidence": 0.9, "layout": "3x4+1"}
    progress.file_done({"file": "a.png", "pages": [page]})
    logging.getLogger("ecgdigitize.pipeline").warning("a log line while the bar runs")
    progress.file_done(
        {"file": "b.png", "pages": [dict(page, name="b", status="suspect", status_reasons=["Einthoven's law fails"])]}
    )
    progress.close()
    err = capsys.readouterr().err
    whole = [seg.split("\r")[-1].strip() for seg in err.split("\n")]
    assert "WARNING ecgdigitize.pipeline: a log line while the bar runs" in whole
    assert any(seg.startswith("[2/3] b.png -> b: suspect") and "Einthoven" in seg for seg in whole)
    assert "digitizing" in err and "[1/3] a.png" not in err  # ok pages only move the bar
    logging.getLogger().handlers = [h for h in logging.getLogger().handlers if not isinstance(h, cli._TqdmHandler)]


def test_without_a_model_torch_is_not_needed(inputs, monkeypatch):
    """The digitizer alone (``pip install .`` without the model extra) runs the command."""
    for name in ("torch", "transformers", "neurokit2"):
        monkeypatch.setitem(sys.modules, name, None)  # any import of them now fails
    assert main(["digitize", str(inputs["page"]), "-o", str(inputs["tmp"] / "out"), "-q", "--plot"]) == 1
    assert (inputs["tmp"] / "out" / "page.json").is_file() and (inputs["tmp"] / "out" / "page_plot.png").is_file()
