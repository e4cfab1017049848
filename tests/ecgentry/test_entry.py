"""The entry's own pieces: configuration, record reading, training and inference through team_code."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import helper_code as hc
from ecgentry.config import TrainConfig
from ecgentry.records import resample_signal, scan_records, standard_leads
from ecgentry.train import macro_f, order_classes, split_by_record
from models.config import ConfigError


def test_train_config_env_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("ECG_TRAIN_CONFIG", json.dumps({"epochs": 2, "backbone": {"image_width": 512}}))
    cfg = TrainConfig.from_env(lr=0.01)
    assert cfg.epochs == 2 and cfg.backbone.image_width == 512 and cfg.lr == 0.01
    assert cfg.backbone.name == TrainConfig().backbone.name  # untouched nested keys keep their defaults
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"batch_size": 3}))
    monkeypatch.setenv("ECG_TRAIN_CONFIG", str(path))
    assert TrainConfig.from_env().batch_size == 3
    monkeypatch.setenv("ECG_TRAIN_CONFIG", json.dumps({"no_such_key": 1}))
    with pytest.raises(ConfigError):
        TrainConfig.from_env()
    with pytest.raises(ConfigError):
        TrainConfig(digitizer="regression", regression=False)


def test_standard_leads_and_resampling():
    sig = np.arange(12, dtype=float).reshape(4, 3)
    out = standard_leads(sig, ["avr", "II", "vx"])
    assert out.shape == (4, 12)
    np.testing.assert_array_equal(out[:, 3], sig[:, 0])  # aVR
    np.testing.assert_array_equal(out[:, 1], sig[:, 1])
    assert np.isnan(out[:, 0]).all()
    t = np.arange(100) / 100.0
    x = np.sin(2 * np.pi * t)[:, None]
    y = resample_signal(x, 100.0, 500.0, 500)
    assert np.isfinite(y).all()  # the last input sample is held to the end of its sampling interval
    inside = np.arange(496)  # up to the last input sample (t = 0.99 s)
    assert np.abs(y[inside, 0] - np.sin(2 * np.pi * inside / 500.0)).max() < 0.01
    z = resample_signal(x, 100.0, 100.0, 120)
    np.testing.assert_allclose(z[:100, 0], x[:, 0])
    assert np.isnan(z[100:]).all()


def test_class_order_split_and_macro_f():
    assert order_classes([["CD", "NORM"], ["Abnormal"], ["TACHY"]]) == ["NORM", "CD", "TACHY", "Abnormal"]
    tr, va = split_by_record(10, 0.2, 0)
    assert len(va) == 2 and not set(tr) & set(va) and len(tr) + len(va) == 10
    probs = np.array([[0.9, 0.1], [0.2, 0.7], [0.6, 0.4]])
    targets = np.array([[1, 0], [0, 1], [0, 1]])
    # class 0: tp 1, fp 1 -> F 2/3; class 1: tp 1 (record 1), fn 1 (record 2) -> F 2/3
    assert macro_f(probs, targets, np.array([0.5, 0.5])) == pytest.approx(2 / 3)


def test_scan_records_reports_and_skips(tmp_path, tiny_data):
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    (data / "broken.hea").write_text("this is not a header\n")
    first = sorted(data.glob("synth_*.hea"))[0]
    text = first.read_text()
    first.write_text("\n".join(l for l in text.splitlines() if "Labels" not in l) + "\n")
    infos, skipped = scan_records(str(data))
    reasons = dict(skipped)
    assert "broken" in reasons and first.stem in reasons and reasons[first.stem] == "no labels"
    assert len(infos) == 5 and all(i.image_files and i.has_signal for i in infos)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        scan_records(str(empty))


def test_train_run_and_shapes(tmp_path, tiny_data, tiny_config_env, monkeypatch, make_folder):
    """Training through team_code: the training loss falls, the folder is self-describing, and run_models
    returns the header's shape for 500 Hz and 100 Hz records."""
    import team_code

    monkeypatch.setenv("ECG_TRAIN_CONFIG", tiny_config_env)
    model_folder = tmp_path / "model"
    team_code.train_models(str(tiny_data), str(model_folder), False)
    summary = json.loads((model_folder / "entry.json").read_text())
    losses = [row["train_total"] for row in summary["history"]]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert (model_folder / "model" / "config.json").is_file() and (model_folder / "model" / "model.safetensors").is_file()
    assert summary["weights_source"] == "random" and summary["trace_source"] in ("classical", "segmentation", "combined")
    # dx_use_image="auto": without pre-trained weights the Dx head uses the signal features alone.
    saved = json.loads((model_folder / "model" / "config.json").read_text())
    assert saved["model"]["dx_head"]["use_image"] is False and saved["model"]["dx_head"]["extra_features"] > 0
    # Thresholds are tuned only where there are enough positives (each record gives 2 pages here).
    for c, t in zip(summary["classes"], summary["thresholds"]):
        if 2 * summary["class_counts"][c] < 3:
            assert t == 0.5, (c, t)

    digitizer, classifier = team_code.load_models(str(model_folder), False)
    low = make_folder(tmp_path / "low", 1, 100.0, seed=11)
    for folder in (tiny_data, low):
        record = str(folder / hc.find_records(str(folder))[0])
        header = hc.load_header(record)
        signal, labels = team_code.run_models(record, digitizer, classifier, False)
        assert signal.shape == (hc.get_num_samples(header), hc.get_num_signals(header))
        assert labels and set(labels) <= set(summary["classes"])


def test_incomplete_model_folder_is_refused(tmp_path):
    import team_code

    (tmp_path / "model").mkdir()
    with pytest.raises(FileNotFoundError, match="entry.json"):
        team_code.load_models(str(tmp_path), False)


def test_positive_weights_favour_rare_classes():
    from ecgentry.train import positive_weights

    labels = [["NORM"]] * 8 + [["AFIB/AFL"]] * 2 + [["NORM", "CD"]] * 10
    w = positive_weights(labels, ["NORM", "AFIB/AFL", "CD"], limit=5.0)
    assert w[0] == 1.0  # 18 of 20: clipped at 1
    assert w[1] == 5.0  # 2 of 20: 9, clipped at the limit
    assert w[2] == pytest.approx(1.0)  # 10 of 20
