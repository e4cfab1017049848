"""Everyday use and scale: the digitize CLI, data-parallel training (two Gloo processes), parallel inference
(byte-identical to the serial official run) and resumable training."""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import helper_code as hc

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # training and subprocess runs: tens of seconds each


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    env.pop("ECG_STOP_AFTER_EPOCHS", None)
    env.update(extra)
    return env


def _tiny(tiny_env: str, **overrides) -> "TrainConfig":  # noqa: F821
    from ecgentry.config import TrainConfig

    data = json.loads(tiny_env)
    data.update(overrides)
    return TrainConfig.from_dict(data)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_data, tiny_config_env) -> Path:
    from ecgentry.train import train

    folder = tmp_path_factory.mktemp("scale") / "model"
    train(str(tiny_data), str(folder), _tiny(tiny_config_env, epochs=1))
    return folder


def test_digitize_cli_images_csv_wfdb_and_bad_file(tmp_path, tiny_data, trained):
    from PIL import Image

    from ecgentry.__main__ import main

    png = sorted(tiny_data.glob("*-0.png"))[0]
    page = Image.open(png).convert("RGB")
    inp = tmp_path / "in"
    (inp / "sub").mkdir(parents=True)
    shutil.copy(png, inp / "page.png")
    page.save(inp / "sub" / "photo.jpg", quality=95)
    page.save(inp / "two.tiff", save_all=True, append_images=[page.rotate(0)])
    (inp / "broken.png").write_bytes(b"this is not an image")
    out = tmp_path / "out"
    code = main(["digitize", str(inp), "-m", "classical", "-o", str(out), "--format", "both", "--overlay"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["files"] == 4 and summary["unreadable_files"] == 1 and summary["pages"] == 4
    # every page gives a signal; whether the self-check finds it ok is tested in tests/ecgdigitize (this 100-DPI
    # synthetic page's aV leads are small and sit at the Goldberger limit)
    assert summary["pages_ok"] + summary["pages_suspect"] == 4 and summary["pages_failed"] == 0
    assert any("broken.png" in r["file"] and "unreadable" in r["error"] for r in summary["results"])
    for base in (out / "page", out / "sub" / "photo", out / "two-p1", out / "two-p2"):
        header = hc.load_header(str(base))
        assert hc.get_signal_names(header) == [
            "I",
            "II",
            "III",
            "aVR",
            "aVL",
            "aVF",
            "V1",
            "V2",
            "V3",
            "V4",
            "V5",
            "V6",
        ]
        assert hc.get_num_samples(header) == 5000 and hc.get_sampling_frequency(header) == 500
        assert set(hc.get_signal_formats(header)) == {"16"} and set(hc.get_adc_gains(header)) == {1000.0}
        signal, _ = hc.load_signals(str(base))
        with open(f"{base}.csv", newline="") as f:
            rows = list(csv.reader(f))
        assert rows[0][0] == "time_s" and len(rows[0]) == 13 and len(rows) == 5001
        assert float(rows[501][0]) == pytest.approx(1.0)
        from_csv = np.array([[float(v) if v else np.nan for v in r[1:]] for r in rows[1:]])
        np.testing.assert_array_equal(np.isnan(from_csv), np.isnan(signal))  # NaN is an empty cell
        np.testing.assert_allclose(from_csv[np.isfinite(from_csv)], signal[np.isfinite(signal)], atol=1.5e-3)
        assert np.isfinite(signal).mean() > 0.2
        report = json.loads(Path(f"{base}.json").read_text())
        assert report["status"] in ("ok", "suspect") and report["layout"]["name"] and "px_per_mm_x" in report["scale"]
        assert report["self_check"]["checks"] and (report["status"] == "ok") == (not report["status_reasons"])
        assert report["labels"] is None and "calibration" in report
        assert Path(f"{base}_overlay.png").is_file()
    # The same page through a model folder: labels from its Dx head; CSV only.
    out2 = tmp_path / "out2"
    assert main(["digitize", str(inp / "page.png"), "-m", str(trained), "-o", str(out2), "--format", "csv"]) == 0
    report = json.loads((out2 / "page.json").read_text())
    assert report["labels"] and set(report["labels"]) <= set(report["probabilities"])
    assert (out2 / "page.csv").is_file() and not (out2 / "page.hea").exists()
    # Nothing readable: exit code 1.
    assert main(["digitize", str(inp / "broken.png"), "-m", "classical", "-o", str(tmp_path / "out3")]) == 1


def test_parallel_run_matches_serial_official_run(tmp_path, tiny_data, trained):
    from ecgentry.__main__ import main

    data = tmp_path / "data"
    data.mkdir()
    for rec in hc.find_records(str(tiny_data))[:3]:
        for f in tiny_data.glob(f"{rec}*"):
            shutil.copy(f, data / f.name)
    serial = tmp_path / "serial"
    proc = subprocess.run(
        [sys.executable, "run_model.py", "-d", str(data), "-m", str(trained), "-o", str(serial)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    parallel = tmp_path / "parallel"
    assert main(["run", "-d", str(data), "-m", str(trained), "-o", str(parallel), "--workers", "2"]) == 0
    files = sorted(p.relative_to(serial) for p in serial.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(parallel) for p in parallel.rglob("*") if p.is_file())
    assert any(str(f).endswith(".dat") for f in files)
    for f in files:
        assert (serial / f).read_bytes() == (parallel / f).read_bytes(), f


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_shard_data_and_agree(tmp_path, tiny_data, tiny_config_env):
    trace = tmp_path / "trace"
    model = tmp_path / "model"
    cfg = dict(json.loads(tiny_config_env), epochs=2, trace_source="classical", device="cpu")
    env = _env(ECG_TRAIN_CONFIG=json.dumps(cfg), ECG_TRAIN_TRACE_DIR=str(trace))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(_free_port()),
            "train_model.py",
            "-d",
            str(tiny_data),
            "-m",
            str(model),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((trace / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world_size"] == ranks[1]["world_size"] == 2
    assert ranks[0]["state_sha256"] == ranks[1]["state_sha256"]  # identical weights on both ranks
    summary = json.loads((model / "entry.json").read_text())
    n = summary["train_pages"]
    assert summary["world_size"] == 2 and len(summary["history"]) == 2
    for epoch in range(2):
        a, b = (set(r["examples"][epoch]) for r in ranks)
        assert a and b and not (a & b)  # disjoint shards (12 pages split evenly: no padding)
        assert a | b == set(range(n))
    assert ranks[0]["examples"][0] != ranks[0]["examples"][1]  # reshuffled per epoch
    assert not (model / "checkpoint").exists()


def test_kill_and_resume(tmp_path, tiny_data, tiny_config_env, monkeypatch, caplog):
    import team_code
    from ecgentry.checkpoint import read_checkpoint_meta
    from ecgentry.train import TrainingInterrupted, train

    cfg = _tiny(tiny_config_env, epochs=3, trace_source="classical")
    model = tmp_path / "model"
    monkeypatch.setenv("ECG_STOP_AFTER_EPOCHS", "1")
    with pytest.raises(TrainingInterrupted):
        train(str(tiny_data), str(model), cfg)
    meta = read_checkpoint_meta(model)
    assert meta is not None and meta["epoch"] == 1 and len(meta["history"]) == 1
    assert not (model / "entry.json").exists()
    with pytest.raises(FileNotFoundError):
        team_code.load_models(str(model), False)
    first = meta["history"][0]

    # A different configuration does not resume: it starts again (and is stopped again after one epoch).
    with pytest.raises(TrainingInterrupted):
        train(str(tiny_data), str(model), _tiny(tiny_config_env, epochs=3, trace_source="classical", lr=1e-3))
    assert "not resuming" in caplog.text and read_checkpoint_meta(model)["history"][0] != first
    monkeypatch.delenv("ECG_STOP_AFTER_EPOCHS")
    shutil.rmtree(model)
    monkeypatch.setenv("ECG_STOP_AFTER_EPOCHS", "1")
    with pytest.raises(TrainingInterrupted):
        train(str(tiny_data), str(model), cfg)
    monkeypatch.delenv("ECG_STOP_AFTER_EPOCHS")

    summary = train(str(tiny_data), str(model), cfg)  # resumes after epoch 1
    assert [row["epoch"] for row in summary["history"]] == [1, 2, 3]
    assert summary["history"][0] == first
    assert (model / "entry.json").is_file() and not (model / "checkpoint").exists()
    team_code.load_models(str(model), False)
    with open(model / "training_report.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"] and "train_total" in rows[0]
    assert (model / "training_report.png").stat().st_size > 1000

    # The resumed run ends where an uninterrupted one does.
    straight = tmp_path / "straight"
    full = train(str(tiny_data), str(straight), cfg)
    for a, b in zip(full["history"], summary["history"]):
        assert a["train_total"] == pytest.approx(b["train_total"], rel=1e-5)


def test_model_folder_carries_the_lead_label_classifier(trained, monkeypatch):
    """Training stores the lead-label classifier; loading the model uses it instead of training one."""
    from ecgdigitize import lead_labels as ll
    from ecgentry.infer import load_entry

    assert (trained / ll.CLASSIFIER_FILE).is_file()
    monkeypatch.setattr(ll, "_active", None)
    monkeypatch.setattr(ll, "_train_classifier", lambda: pytest.fail("trained although the model folder has one"))
    load_entry(str(trained), device="cpu")
    assert ll._classifier().members
