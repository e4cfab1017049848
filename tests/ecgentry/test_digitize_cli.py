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
    return {"page": tmp_path / "page.png", "corrupt": tmp_path / "corrupt.png", "file": tmp_path / "afile",
            "model": model, "tmp": tmp_path}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ecgentry", "digitize", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


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
    proc = _cli(str(inputs["page"]), str(inputs["corrupt"]), "-m", str(inputs["model"]), "-o",
                str(inputs["tmp"] / "out"))
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
