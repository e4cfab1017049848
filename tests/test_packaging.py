"""The package as a user installs it: pyproject.toml builds a wheel (offline, without build isolation), the wheel
installs into a fresh virtual environment, and its ``ecg-digitize`` command and Python API work on a rendered page.

Dependencies are not downloaded: the fresh environment sees this environment's site-packages through a ``.pth``
file and the wheel is installed with ``--no-deps``. Skip with ``-k "not wheel"`` or ``ECG_SKIP_WHEEL_TEST=1``.
"""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "helper_code.py",
    "team_code.py",
    "run_model.py",
    "ecgvocab",
    "ecgdigitize",
    "ecgentry",
    "ecgrender",
    "ecgfeatures",
    "models",
]


def _setuptools_ok() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 77


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", line.strip())
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_requirements_pins_satisfy_pyproject():
    """requirements.txt (the pinned set of the Challenge image and the tests) lies inside pyproject's ranges."""
    tomllib = pytest.importorskip("tomllib")
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins(ROOT / "requirements.txt")
    reqs = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["model"]]
    named = {r.name.lower().replace("_", "-"): r for r in reqs}
    assert set(pins) == set(named), set(pins) ^ set(named)
    for name, version in pins.items():
        assert named[name].specifier.contains(version.split("+")[0], prereleases=True), (name, version)
    assert project["requires-python"] == ">=3.10,<3.13"
    assert set(project["scripts"]) == {"ecg-digitize", "ecg-render"}


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("ECG_SKIP_WHEEL_TEST") == "1", reason="ECG_SKIP_WHEEL_TEST=1")
@pytest.mark.skipif(not _setuptools_ok(), reason="building the wheel offline needs setuptools >= 77")
def test_wheel_installs_and_runs(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:  # a copy: the build writes build/ and *.egg-info next to the sources
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(ROOT / name, src / name)
    dist = tmp_path / "dist"
    run = dict(capture_output=True, text=True, timeout=300)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)],
        **run,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    wheel = next(dist.glob("ecg_digitize-*.whl"))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, **run)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True, **run
    ).stdout.strip()
    outer = [p for p in site.getsitepackages() + [sysconfig.get_paths()["purelib"]] if os.path.isdir(p)]
    Path(purelib, "_outer_site.pth").write_text("\n".join(dict.fromkeys(outer)) + "\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        **run,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["OMP_NUM_THREADS"] = "1"
    work = tmp_path / "work"  # outside the repository: nothing imported from the checkout
    work.mkdir()
    help_ = subprocess.run([str(bindir / "ecg-digitize"), "--help"], cwd=work, env=env, **run)
    assert help_.returncode == 0 and "usage: ecg-digitize" in help_.stdout, help_.stderr
    render_help = subprocess.run([str(bindir / "ecg-render"), "--help"], cwd=work, env=env, **run)
    assert render_help.returncode == 0 and "usage: ecg-render" in render_help.stdout, render_help.stderr

    script = f"""
import numpy as np, ecgdigitize, ecgentry
from PIL import Image
from ecgrender.page import PageSpec, render_page
from ecgrender.synth import synthesize_ecg
assert ecgdigitize.__file__.startswith({purelib!r}), ecgdigitize.__file__
leads = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
signal, _ = synthesize_ecg(["NORM"], fs=500.0, duration_s=10.0, rng=0)
Image.fromarray(render_page(signal, 500.0, leads, PageSpec(layout="3x4+1", dpi=200), rng=0).image).save("scan.png")
from ecgdigitize import digitize_image
result = digitize_image("scan.png")
result.to_csv("scan.csv"); result.to_wfdb("rec/scan")
print(result.status, result.layout, result.signal.shape, result.fs, ",".join(result.lead_names))
"""
    api = subprocess.run([str(python), "-c", script], cwd=work, env=env, **run)
    assert api.returncode == 0, api.stderr[-3000:]
    assert api.stdout.split()[:2] == ["ok", "3x4+1"] and "(5000, 12) 500.0 I,II,III" in api.stdout, api.stdout
    assert (work / "scan.csv").is_file() and (work / "rec" / "scan.hea").is_file()
