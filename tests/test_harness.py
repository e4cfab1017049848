"""The official flow end to end: train_model.py, run_model.py (with and without -f) and evaluate_model.py
on a tiny rendered data set, with a corrupt image and a missing image in the test folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import helper_code as hc

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_official_flow_with_bad_images(tmp_path, tiny_data, tiny_config_env, make_folder):
    env = dict(os.environ, PYTHONPATH=str(ROOT), ECG_TRAIN_CONFIG=tiny_config_env, HF_HUB_OFFLINE="1")
    model = tmp_path / "model"
    proc = _run(["train_model.py", "-d", str(tiny_data), "-m", str(model)], env)
    assert proc.returncode == 0, proc.stderr[-2000:]

    test = make_folder(tmp_path / "test", 3, 500.0, seed=99)
    hidden = tmp_path / "hidden"
    assert _run(["remove_hidden_data.py", "-i", str(test), "-o", str(hidden), "-m"], env).returncode == 0
    records = hc.find_records(str(hidden))
    assert len(records) == 3
    (hidden / f"{records[0]}-0.png").write_bytes(b"not a png at all")  # corrupt image
    os.remove(hidden / f"{records[1]}-0.png")  # missing image

    for flags in ([], ["-f"]):
        out = tmp_path / f"out{len(flags)}"
        proc = _run(["run_model.py", "-d", str(hidden), "-m", str(model), "-o", str(out), *flags], env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        for record in records:
            header = hc.load_header(str(out / record))
            signal, _ = hc.load_signals(str(out / record))
            assert signal.shape == (hc.get_num_samples(header), hc.get_num_signals(header))
            assert hc.load_labels(str(out / record))  # the fallback class when no image could be read
        proc = _run(["evaluate_model.py", "-d", str(test), "-o", str(out)], env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        lines = proc.stdout.strip().splitlines()
        assert lines[0].startswith("SNR: ") and lines[1].startswith("F-measure: ")
        float(lines[0].split()[1]), float(lines[1].split()[1])
