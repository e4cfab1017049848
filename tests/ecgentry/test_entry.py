"""The entry's own pieces: configuration, record reading, training and inference through team_code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import helper_code as hc
from ecgentry.config import TRACE_SOURCES, TrainConfig
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
    assert (model_folder / "model" / "config.json").is_file() and (
        model_folder / "model" / "model.safetensors"
    ).is_file()
    assert summary["weights_source"] == "random" and summary["trace_source"] in TRACE_SOURCES[1:]
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


# ----------------------------------------------------------------------------------------------------
# A record is never lost: every failure gives NaN of the header's shape and the fallback labels
# ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def random_entry(tmp_path_factory):
    """A loaded untrained entry (tiny random model, combined trace source) and its folder."""
    import team_code
    from ecgentry.random_entry import write_random_entry

    folder = write_random_entry(tmp_path_factory.mktemp("random_model"))
    return team_code.load_models(str(folder), False)[0], folder


def _bomb_png(path: Path, width: int, height: int) -> None:
    """A PNG header claiming ``width`` x ``height`` RGB pixels, with one row of data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00" * (1 + 3 * width)))
        + chunk(b"IEND", b"")
    )


def _header(folder: Path, name: str, images: list[str], first_line: str | None = None) -> str:
    leads = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    lines = [first_line or f"{name} 12 500 5000"] + [f"{name}.dat 16 1000/mV 16 0 0 0 0 {n}" for n in leads]
    lines.append("# Image: " + ", ".join(images))
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n")
    return str(folder / name)


def test_bad_records_give_nan_and_fallback_labels(random_entry, tmp_path, caplog):
    from PIL import Image

    import team_code

    entry, _ = random_entry
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "outside.png").write_bytes(b"")
    Image.new("RGB", (60, 40), "white").save(tmp_path / "outside.png")
    (data / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    Image.new("RGB", (600, 400), "white").save(data / "full.png")
    (data / "truncated.png").write_bytes((data / "full.png").read_bytes()[:200])
    _bomb_png(data / "bomb.png", 30000, 30000)
    cases = {
        "missing": ["nothing.png"],
        "corrupt": ["corrupt.png"],
        "truncated": ["truncated.png"],
        "bomb": ["bomb.png"],
        "outside": ["../outside.png", str(tmp_path / "outside.png")],
    }
    for name, images in cases.items():
        record = _header(data, name, images)
        with caplog.at_level("WARNING"):
            signal, labels = team_code.run_models(record, entry, entry, False)
        assert signal.shape == (5000, 12) and np.isnan(signal).all(), name
        assert labels == ["NORM"], name
        assert any(name in m or "outside" in m for m in caplog.messages), name
    for first_line, shape in (("bad 12 fast 5000", (5000, 12)), ("bad x y z", None)):
        record = _header(data, "bad", ["full.png"], first_line)
        signal, labels = team_code.run_models(record, entry, entry, False)
        assert labels == ["NORM"]
        assert (signal is None) if shape is None else (signal.shape == shape and np.isnan(signal).all())
    (data / "garbage.hea").write_bytes(b"\xff\xfe\x00 not a header")
    signal, labels = team_code.run_models(str(data / "garbage"), entry, entry, False)
    assert signal is None and labels == ["NORM"]


def test_a_page_failing_in_any_step_keeps_the_record(random_entry, tmp_path, monkeypatch, caplog):
    from PIL import Image

    import ecgentry.infer as infer
    import team_code

    entry, _ = random_entry
    Image.new("RGB", (600, 400), "white").save(tmp_path / "p.png")
    record = _header(tmp_path, "rec", ["p.png", "p.png"])

    def boom(*args, **kwargs):
        raise MemoryError("no memory left for this page")

    monkeypatch.setattr(infer, "analyse_page", boom)
    with caplog.at_level("WARNING"):
        signal, labels = team_code.run_models(record, entry, entry, False)
    assert signal.shape == (5000, 12) and np.isnan(signal).all() and labels == ["NORM"]
    assert sum("MemoryError" in m for m in caplog.messages) == 2
    monkeypatch.setattr(infer, "header_facts", boom)  # even a step outside the page loop
    signal, labels = team_code.run_models(record, entry, entry, False)
    assert signal.shape == (5000, 12) and labels == ["NORM"]


@pytest.mark.parametrize("source", ["segmentation", "combined"])
def test_trace_map_is_made_at_working_size(random_entry, source):
    """A page larger than the digitizer's working size gets its trace map at that size (not at full size)."""
    import torch

    from ecgdigitize.image_io import MAX_WORK_SIDE
    from ecgentry.infer import trace_map

    entry, _ = random_entry
    image = np.full((2900, 4400, 3), 255, np.uint8)
    image[1450:1453] = 0
    pixel_values, transforms = entry.model.backbone.preprocess_with_transforms([image])
    with torch.no_grad():
        seg = entry.model.segmentation_head(entry.model.backbone(pixel_values))[0].float()
    prob = trace_map(entry.model, seg, transforms[0], image, source)
    assert prob.shape == (round(2900 * MAX_WORK_SIDE / 4400), MAX_WORK_SIDE) and prob.dtype == np.float32
