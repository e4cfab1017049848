"""Classification path of the entry on tiny synthetic data: the fused Dx head (image + signal features) learns,
the signal-feature-only head tells TACHY from BRADY on rendered pages it digitizes itself, and training uses
records that lack an image or a signal file."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ecgentry.config import TrainConfig
from ecgentry.train import train

FS = 100.0  # Hz: small records, fast features and rendering


@pytest.fixture()
def config(tiny_config_env, monkeypatch):
    """``config(**overrides)``: the tiny test TrainConfig (tests/conftest.py) with these overrides."""
    monkeypatch.delenv("ECG_TRAIN_CONFIG", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def make(**overrides) -> TrainConfig:
        return _config(json.loads(tiny_config_env), **overrides)

    return make


def _config(data: dict, **overrides) -> TrainConfig:
    data.update({"trace_source": "classical", "trace_source_pages": 0})
    data.update(overrides)
    return TrainConfig.from_env(**data)


def _write_records(folder: Path, labels: list[list[str]], seed: int, fs: float = FS) -> list[str]:
    """Synthetic WFDB records (10 s, ``fs`` Hz) with the given labels; returns the record names."""
    import wfdb

    from ecgrender.page import STANDARD_LEADS
    from ecgrender.synth import synthesize_ecg

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, labs in enumerate(labels):
        rng = np.random.default_rng([seed, i])
        sig, _ = synthesize_ecg(labs, fs=fs, duration_s=10.0, rng=rng)
        name = f"rec_{i:03d}"
        wfdb.wrsamp(name, fs=fs, units=["mV"] * 12, sig_name=list(STANDARD_LEADS), p_signal=np.clip(sig, -30, 30),
                    fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12,
                    comments=[f"Labels: {', '.join(labs)}"], write_dir=str(folder))
        names.append(name)
    return names


def _render(signals: Path, out: Path, seed: int) -> Path:
    from ecgrender import render_cli

    code = render_cli.main(["-i", str(signals), "-o", str(out), "--preset", "clean", "--seed", str(seed),
                            "--layout", "3x4+1", "--dpi", "100"])
    assert code == 0
    return out


def test_fused_head_trains_and_loss_falls(tiny_data, tmp_path, config):
    """Image + signal features into the Dx head: the model has both inputs and its training loss falls."""
    cfg = config(signal_features=True, dx_use_image=True, segmentation=False, epochs=5, lr=1e-2)
    summary = train(str(tiny_data), str(tmp_path / "model"), cfg)
    losses = [row["train_dx"] for row in summary["history"]]
    assert len(losses) == 5
    assert losses[-1] < 0.92 * losses[0] and min(losses[1:]) < losses[0], losses
    saved = json.loads((tmp_path / "model" / "model" / "config.json").read_text())
    dx = saved["model"]["dx_head"]
    assert dx.get("extra_features", 0) > 0 and dx.get("use_image", True)


def test_signal_feature_head_separates_tachy_from_brady(tmp_path, config):
    """Signal features only, trained on true signals (digitization-like corruptions); evaluated on rendered
    pages whose signal and labels are hidden, so the features come from the entry's own digitization."""
    import subprocess
    import sys

    import team_code

    train_labels = [["TACHY"], ["BRADY"]] * 4
    test_labels = [["TACHY"], ["BRADY"]] * 2
    _write_records(tmp_path / "train_sig", train_labels, seed=11)
    train_dir = _render(tmp_path / "train_sig", tmp_path / "train", 1)
    _write_records(tmp_path / "test_sig", test_labels, seed=99)
    test_dir = _render(tmp_path / "test_sig", tmp_path / "test", 2)
    hidden = tmp_path / "hidden"
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, str(root / "remove_hidden_data.py"), "-i", str(test_dir), "-o", str(hidden), "-m"],
                   check=True, cwd=root)
    assert not list(hidden.glob("*.dat")) and list(hidden.glob("*.png"))

    cfg = config(signal_features=True, dx_use_image=False, segmentation=False, epochs=12, lr=2e-2)
    summary = train(str(train_dir), str(tmp_path / "model"), cfg)
    assert summary["classes"] == ["TACHY", "BRADY"]
    entry, _ = team_code.load_models(str(tmp_path / "model"), False)
    for i, labs in enumerate(test_labels):
        signal, predicted = team_code.run_models(str(hidden / f"rec_{i:03d}"), entry, entry, False)
        assert np.isfinite(signal).any(), "the page was not digitized"
        assert predicted == labs, (i, labs, predicted)


def test_records_without_image_or_signal_are_used(tmp_path, make_folder, config):
    """Records with a signal but no image train through rendered pages; records with an image but no signal
    file through their image; entry.json counts them all."""
    data = make_folder(tmp_path / "mixed", 6, FS, seed=5)
    records = sorted(p.with_suffix("") for p in data.rglob("*.hea"))
    no_image, no_signal = records[:2], records[2:4]
    for rec in no_image:
        for png in rec.parent.glob(rec.name + "-*.png"):
            png.unlink()
    for rec in no_signal:
        for dat in rec.parent.glob(rec.name + ".dat"):
            dat.unlink()
    cfg = config(signal_features=True, segmentation=True, pages_per_record=1, epochs=1)
    summary = train(str(data), str(tmp_path / "model"), cfg)
    entry = json.loads((tmp_path / "model" / "entry.json").read_text())
    assert entry["records_used"] == summary["records_used"] == 6
    assert entry["records_skipped"] == 0
    # own images: 4 records still have one; rendered pages: 4 records still have a signal
    assert entry["train_pages"] == 4 + 4
